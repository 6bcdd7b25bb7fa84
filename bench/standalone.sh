#!/usr/bin/env bash
# duet vs ISC Kea 2.2: one standalone DHCPv6 server under perfdhcp load,
# same lab, same load, same run (issue 3, "Done when": the benchmark script).
#
# Usage (root):   bench/standalone.sh            # full sweep, then the summary
#                 bench/standalone.sh down       # only remove leftovers (lab, servers)
# Environment (defaults in brackets):
#   SERVERS   servers to measure, in this order per point ["duet kea-st kea-mt"]
#             duet       = target/release/duet, data-dir on $RUN (disk; one fdatasync per batch)
#             duet-b     = duet again, with the binary $DUET_B: an A/B of two builds in one run
#             duet-tmpfs = the same with data-dir on /dev/shm (fdatasync is ~free: the cost of
#                          durability is the difference)        [diagnostic, not in the default]
#             bare       = bench/bare-responder/src/main.rs: no allocation logic, no lease
#                          table, one blocking socket, one fdatasync'd 128-byte record per Reply
#                          (the issue's "bare responder": what an exchange costs on this machine
#                          before any server logic)      [calibration, not in the default]
#             bare-nosync = the same without the record and the fdatasync
#             kea-st     = kea-dhcp6, memfile (persist, no fsync), multi-threading off
#             kea-mt     = the same, multi-threading on (thread-pool-size 2, packet-queue-size 64)
#   RATES     offered 4-way exchanges/s ["1000 2000 4000 6000 8000 10000 12000 15000 18000"]
#   DURATION  seconds per point, perfdhcp -p [6]          REPEATS  runs per point [3]
#   CLIENTS   perfdhcp -R [100000]                        LEASE_TYPE  perfdhcp -e [address-only]
#   RUN       scratch dir for configs, stores, logs [/tmp/duet-bench]; it must be on the disk
#             you want duet to fsync to (here /tmp is ext4 on /dev/vda, not tmpfs)
#   OUT       CSV + raw perfdhcp output [bench/results]  TAG  CSV name suffix [standalone]
#   DUET      duet binary [target/release/duet; build with `cargo build --release -p duet`]
#   DUET_LOG  duet's --log filter [info]     DUET_QUEUE_SIZE / DUET_BATCH_MAX / DUET_COMMIT_WINDOW_US
#             / DUET_SEND_RATE / DUET_SEND_BURST  [config defaults]
#   EXIT_WAIT_US  if set, perfdhcp also gets `-W EXIT_WAIT_US`: after the test period it waits
#             that long for answers still in flight instead of counting them as drops (the
#             anchors' invocation has no -W; see bench/README.md) [unset]
#   NICE      if set (e.g. -10), servers and perfdhcp run at that nice level, so that other
#             people's jobs on a shared machine disturb the measurement less [unset]
#   PIN       if set (e.g. 1), servers run on CPU 0 and perfdhcp on CPU 1 (taskset), so the load
#             generator never shares the server's CPU, as a remote client would not; a diagnostic
#             of what the co-location costs, not the anchors' setup (kea-mt's 2 threads share
#             one CPU then)  [unset]
#   PERF_DUET_AT  if set (offered rates, e.g. "2000 12000"), also profile duet at each rate once,
#             after the sweep (`perf record -F 999 --call-graph $PERF_CALLGRAPH` [dwarf,32768],
#             all threads) into $RUN/perf-duet-RATE.data, text reports into $OUT/perf-duet-RATE*.txt
#             (perf_breakdown.py: share per thread and per category); SERVERS="" RATES=""
#             runs only the profiles
#   PERF_KIND  the server PERF_DUET_AT profiles [duet]; e.g. duet-tmpfs, bare
#   PERF_FREQ / PERF_EVENT  perf record -F [999] / -e [perf's default]; e.g. cpu-clock:u
#             samples user space only (where duet's own work is)
#   TRACE_DUET_AT  like PERF_DUET_AT, but `perf trace -s` (syscall counts and latencies per
#             thread) of the PERF_KIND server into $OUT/trace-duet-RATE.txt
#
# Lab: namespaces dbench-srv (eth0 2001:db8:1::1/64) and dbench-cli (eth0 2001:db8:1::100/64)
# joined by bridge br0 in dbench-br (multicast snooping off): the shape of
# ../shared/anchors/kea/lab.sh, so Kea's numbers here compare with the anchor's.
# perfdhcp sends real multicast Solicits to ff02::1:2 from the client namespace.
#
# Per point: the server starts with an EMPTY lease store, then
#   ip netns exec dbench-cli perfdhcp -6 -l eth0 -R $CLIENTS -r RATE -p $DURATION -e $LEASE_TYPE
# and one CSV row records perfdhcp's figures, the server's CPU seconds (user+sys of all its
# threads, /proc/PID/stat, sampled right before and after perfdhcp), perfdhcp's CPU, the whole
# machine's busy CPU (/proc/stat), UDP receive-buffer drops in each namespace (nstat) and,
# for duet, its own counters (ctl status). bench/summarize.py prints the tables and ratios.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SERVERS=${SERVERS-"duet kea-st kea-mt"}
RATES=${RATES-"1000 2000 4000 6000 8000 10000 12000 15000 18000"}
DURATION=${DURATION:-6}; REPEATS=${REPEATS:-3}; CLIENTS=${CLIENTS:-100000}
LEASE_TYPE=${LEASE_TYPE:-address-only}
RUN=${RUN:-/tmp/duet-bench}; OUT=${OUT:-$HERE/results}; TAG=${TAG:-standalone}
DUET=${DUET:-$ROOT/target/release/duet}; DUET_LOG=${DUET_LOG:-info}
BARE=${BARE:-$ROOT/target/release/bare_responder}  # cargo build --release -p duet-bench-bare
KEA_DHCP6=${KEA_DHCP6:-/usr/sbin/kea-dhcp6}; PERFDHCP=${PERFDHCP:-/usr/sbin/perfdhcp}
MT_THREADS=${MT_THREADS:-2}; MT_QUEUE=${MT_QUEUE:-64}
EXIT_WAIT_US=${EXIT_WAIT_US:-}; WFLAG=""; [ -n "$EXIT_WAIT_US" ] && WFLAG="-W $EXIT_WAIT_US"
NICE=${NICE:-}; NICE_CMD=""; [ -n "$NICE" ] && NICE_CMD="nice -n $NICE"
PIN=${PIN:-}; SRV_CMD=$NICE_CMD; CLI_CMD=$NICE_CMD
[ -n "$PIN" ] && { SRV_CMD="$NICE_CMD taskset -c 0"; CLI_CMD="$NICE_CMD taskset -c 1"; }
NS_BR=dbench-br; NS_SRV=dbench-srv; NS_CLI=dbench-cli
SRV_ADDR=2001:db8:1::1; CLI_ADDR=2001:db8:1::100
HZ=$(getconf CLK_TCK)
CSV="$OUT/$TAG.csv"; RAW="$OUT/raw"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
nsx() { ip netns exec "$@"; }

# ------------------------------------------------------------------ lab
lab_down() {
  local ns pid
  for ns in $NS_CLI $NS_SRV $NS_BR; do
    # leftovers of an earlier run of this script (only processes inside our namespaces)
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

lab_up() {
  lab_down
  ip netns add $NS_BR
  nsx $NS_BR sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  nsx $NS_BR ip link add br0 type bridge
  nsx $NS_BR ip link set br0 type bridge mcast_snooping 0   # ff02::1:2 reaches every port
  nsx $NS_BR ip link set br0 up
  nsx $NS_BR ip link set lo up
  local ns short addr
  for ns in $NS_SRV $NS_CLI; do
    short=${ns#dbench-}; addr=$SRV_ADDR; [ $ns = $NS_CLI ] && addr=$CLI_ADDR
    ip netns add $ns
    nsx $ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
    nsx $ns ip link set lo up
    ip link add "v-$short" netns $NS_BR type veth peer name eth0 netns $ns
    nsx $NS_BR ip link set "v-$short" master br0 up
    nsx $ns sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.accept_ra=0
    nsx $ns ip -6 addr add "$addr/64" dev eth0 nodad
    nsx $ns ip link set eth0 up
  done
  local i t
  for i in $(seq 50); do  # link-local usable, nothing tentative
    t=0
    for ns in $NS_SRV $NS_CLI; do
      nsx $ns ip -6 addr show dev eth0 scope link | grep -q inet6 || t=1
      nsx $ns ip -6 addr show dev eth0 | grep -q tentative && t=1
    done
    [ $t = 0 ] && break; sleep 0.1
  done
  log "lab up: $NS_SRV ($SRV_ADDR) <-> br0 <-> $NS_CLI ($CLI_ADDR)"
}

# ------------------------------------------------------------------ servers
SRV_PID=""; SRV_NAME=""

gen_duet() {  # gen_duet DIR DATA_DIR
  local dir=$1 data=$2
  mkdir -p "$dir"
  {
    echo '[server]'
    echo 'name = "bench"'
    echo "data-dir = \"$data\""
    echo 'interfaces = ["eth0"]'
    [ -n "${DUET_QUEUE_SIZE:-}" ] && echo "queue-size = $DUET_QUEUE_SIZE"
    [ -n "${DUET_BATCH_MAX:-}" ] && echo "batch-max = $DUET_BATCH_MAX"
    [ -n "${DUET_COMMIT_WINDOW_US:-}" ] && echo "commit-window-us = $DUET_COMMIT_WINDOW_US"
    [ -n "${DUET_SEND_RATE:-}" ] && echo "send-rate = $DUET_SEND_RATE"
    [ -n "${DUET_SEND_BURST:-}" ] && echo "send-burst = $DUET_SEND_BURST"
    echo
    echo '[control]'
    echo "socket = \"$dir/control.sock\""
    echo
    cat <<'EOC'
# The same subnet and pools as the Kea config: the /80 pool 2001:db8:1:0:1::/80 (2^48
# addresses, so 100,000 clients fit with room), PD pool 2001:db8:100::/40 cut into /60s.
[[subnet]]
prefix = "2001:db8:1::/64"
interface = "eth0"
pools = ["2001:db8:1:0:1::-2001:db8:1:0:1:ffff:ffff:ffff"]
pd-pools = [{ prefix = "2001:db8:100::/40", delegated-length = 60 }]
preferred-lifetime = 3000
valid-lifetime = 4000
renew-time = 1000
rebind-time = 2000
EOC
  } > "$dir/duet.toml"
}

gen_kea() {  # gen_kea DIR true|false  (adapted from ../shared/anchors/kea/common.sh:gen_conf, no HA)
  local dir=$1 mt=$2
  mkdir -p "$dir"
  cat > "$dir/kea-dhcp6.conf" <<EOC
{ "Dhcp6": {
  "interfaces-config": { "interfaces": [ "eth0" ] },
  "data-directory": "$dir",
  "control-socket": { "socket-type": "unix", "socket-name": "$dir/ctrl.sock" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$dir/leases6.csv", "lfc-interval": 0 },
  "multi-threading": { "enable-multi-threading": $mt, "thread-pool-size": $MT_THREADS, "packet-queue-size": $MT_QUEUE },
  "preferred-lifetime": 3000, "valid-lifetime": 4000, "renew-timer": 1000, "rebind-timer": 2000,
  "subnet6": [ {
    "id": 1, "subnet": "2001:db8:1::/64", "interface": "eth0",
    "pools": [ { "pool": "2001:db8:1:0:1::/80" } ],
    "pd-pools": [ { "prefix": "2001:db8:100::", "prefix-len": 40, "delegated-len": 60 } ]
  } ],
  "loggers": [
    { "name": "kea-dhcp6", "severity": "${KEA_SEVERITY:-WARN}",
      "output_options": [ { "output": "$dir/kea.log", "flush": true } ] }
  ]
} }
EOC
}

start_srv() {  # start_srv NAME: fresh store, started and ready, SRV_PID set
  local name=$1 dir="$RUN/$1" sock data
  rm -rf "$dir"; mkdir -p "$dir"
  case $name in
    duet|duet-tmpfs|duet-b)
      data="$dir/data"
      if [ $name = duet-tmpfs ]; then data=/dev/shm/duet-bench-data; rm -rf "$data"; fi
      gen_duet "$dir" "$data"
      local bin=$DUET; [ $name = duet-b ] && bin=$DUET_B
      $SRV_CMD ip netns exec $NS_SRV "$bin" serve --config "$dir/duet.toml" --log "$DUET_LOG" >"$dir/duet.log" 2>&1 &
      SRV_PID=$!; sock="$dir/control.sock" ;;
    bare|bare-nosync)
      local bdata="$dir/data"; [ $name = bare-nosync ] && bdata=""
      $SRV_CMD ip netns exec $NS_SRV "$BARE" eth0 2001:db8:1:0:1:: $bdata >"$dir/bare.log" 2>&1 &
      SRV_PID=$!; sock="" ;;
    kea-st|kea-mt)
      local mt=false; [ $name = kea-mt ] && mt=true
      gen_kea "$dir" $mt
      KEA_PIDFILE_DIR="$dir" KEA_LOCKFILE_DIR=none \
        $SRV_CMD ip netns exec $NS_SRV "$KEA_DHCP6" -c "$dir/kea-dhcp6.conf" >"$dir/stdout.log" 2>&1 &
      SRV_PID=$!; sock="$dir/ctrl.sock" ;;
    *) echo "unknown server $name" >&2; exit 2 ;;
  esac
  SRV_NAME=$name
  echo "$SRV_PID" > "$RUN/server.pid"
  local i
  for i in $(seq 200); do [ -z "$sock" ] || [ -S "$sock" ] && break; kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
  if [ -n "$sock" ] && ! [ -S "$sock" ]; then
    log "$name failed to start"; tail -20 "$dir"/*.log >&2 || true; return 1
  fi
  # the UDP socket must be bound before the load starts
  for i in $(seq 100); do nsx $NS_SRV ss -Hulnp 'sport = :547' | grep -q "pid=$SRV_PID" && break; sleep 0.05; done
  sleep 0.3
}

stop_srv() {
  [ -n "$SRV_PID" ] || return 0
  if kill -0 "$SRV_PID" 2>/dev/null; then
    kill -TERM "$SRV_PID" 2>/dev/null || true
    local i; for i in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$SRV_PID" 2>/dev/null && kill -KILL "$SRV_PID" 2>/dev/null
  fi
  wait "$SRV_PID" 2>/dev/null || true
  SRV_PID=""; rm -f "$RUN/server.pid"
  [ "$SRV_NAME" = duet-tmpfs ] && rm -rf /dev/shm/duet-bench-data
  return 0
}

cleanup() {
  stop_srv || true
  [ -f "$RUN/server.pid" ] && kill -KILL "$(cat "$RUN/server.pid")" 2>/dev/null
  rm -f "$RUN/server.pid"; rm -rf /dev/shm/duet-bench-data
  lab_down
}

# ------------------------------------------------------------------ measuring
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo ""; }        # utime+stime, all threads
user_sys_ticks() { awk '{print $14, $15}' "/proc/$1/stat" 2>/dev/null || echo "0 0"; }  # utime stime, all threads
ctx_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/{v+=$2} /^nonvoluntary_ctxt/{n+=$2} END{print v+0, n+0}'; }  # all threads
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }                   # whole machine, not idle/iowait
udp_drops() { nsx "$1" nstat -az Udp6RcvbufErrors 2>/dev/null | awk '/Udp6RcvbufErrors/{print $2}'; }  # NS

parse() {  # perfdhcp output -> rate,sa_sent,sa_rcvd,sa_drops,sa_avg_ms,sa_max_ms,rr_sent,rr_rcvd,rr_drops,rr_avg_ms,rr_max_ms
  awk '
    /^Rate:/ {rate=$2}
    /Statistics for: SOLICIT-ADVERTISE/ {b="sa"} /Statistics for: REQUEST-REPLY/ {b="rr"}
    /^sent packets:/ {s[b]=$3} /^received packets:/ {r[b]=$3} /^drops:/ {d[b]=$2}
    /^avg delay:/ {a[b]=$3} /^max delay:/ {m[b]=$3}
    END {printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s", rate,s["sa"],r["sa"],d["sa"],a["sa"],m["sa"],s["rr"],r["rr"],d["rr"],a["rr"],m["rr"]}' "$1"
}

duet_counters() {  # received,queue_overflow,replies_sent,commits,committed_records,dropped(sum),replies_paced
  local dir="$RUN/$SRV_NAME"
  "$DUET" ctl --config "$dir/duet.toml" status --json 2>/dev/null | python3 -c '
import json, sys
try:
    c = json.load(sys.stdin)["counters"]
    print(",".join(str(c.get(k, "")) for k in ("received", "socket-drops", "replies-sent", "commits", "committed-records")) + "," + str(sum(c.get("dropped", {}).values())) + "," + str(c.get("replies-paced", "")))
except Exception:
    print(",,,,,,")'
}

HDR="server,lease_type,offered,rep,duration,rate,sa_sent,sa_rcvd,sa_drops,sa_avg_ms,sa_max_ms,rr_sent,rr_rcvd,rr_drops,rr_avg_ms,rr_max_ms,srv_cpu_s,perfdhcp_cpu_s,machine_busy_s,udp_rcvbuf_errors,cli_udp_rcvbuf_errors,duet_received,duet_queue_overflow,duet_replies_sent,duet_commits,duet_committed_records,duet_dropped,log_warnings,load1,time,nice,exit_wait_us,duet_replies_paced,duet_send_rate,duet_send_burst"

run_point() {  # run_point SERVER RATE REP
  local srv=$1 rate=$2 rep=$3 f c0 c1 b0 b1 u0 u1 v0 v1 x0 x1 us0 us1 pc dc paced warn dir
  start_srv "$srv"
  f="$RAW/$TAG-$srv-$LEASE_TYPE-$rate-$rep.txt"
  u0=$(udp_drops $NS_SRV); v0=$(udp_drops $NS_CLI); b0=$(busy_ticks); c0=$(cpu_ticks "$SRV_PID"); x0=$(ctx_switches "$SRV_PID"); us0=$(user_sys_ticks "$SRV_PID")
  /usr/bin/time -f "PERFDHCP_CPU %U %S" -o "$f.time" \
    $CLI_CMD ip netns exec $NS_CLI "$PERFDHCP" -6 -l eth0 -R "$CLIENTS" -r "$rate" -p "$DURATION" -e "$LEASE_TYPE" $WFLAG >"$f" 2>&1 || true
  c1=$(cpu_ticks "$SRV_PID"); b1=$(busy_ticks); u1=$(udp_drops $NS_SRV); v1=$(udp_drops $NS_CLI); x1=$(ctx_switches "$SRV_PID"); us1=$(user_sys_ticks "$SRV_PID")
  pc=$(awk '/PERFDHCP_CPU/ {printf "%.2f", $2+$3}' "$f.time"); rm -f "$f.time"
  dc=",,,,,,"; case $srv in duet*) dc=$(duet_counters) ;; esac
  paced=${dc##*,}; dc=${dc%,*}
  stop_srv
  dir="$RUN/$srv"
  # warnings/errors in the server's log (duet: tracing WARN/ERROR; Kea: its WARN+ log, less
  # the two start-up notices it always logs at WARN)
  warn=$(cat "$dir"/*.log 2>/dev/null | grep -E ' (WARN|ERROR)|WARN |ERROR ' \
    | grep -cvE 'DHCP6_MULTI_THREADING_INFO|DHCP6_RESERVATIONS_LOOKUP_FIRST_ENABLED' || true)
  if [ "$warn" != 0 ]; then
    mkdir -p "$RAW/logs"; cp "$(ls "$dir"/*.log | head -1)" "$RAW/logs/$TAG-$srv-$rate-$rep.log"
  fi
  local cpu busy line
  cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{if (a!="" && b!="") printf "%.2f", (b-a)/hz}')
  busy=$(awk -v a="$b0" -v b="$b1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')
  line="$srv,$LEASE_TYPE,$rate,$rep,$DURATION,$(parse "$f"),$cpu,$pc,$busy,$((u1-u0)),$((v1-v0)),$dc,$warn,$(cut -d' ' -f1 /proc/loadavg),$(date +%FT%T),${NICE:-0},${EXIT_WAIT_US:-0},$paced,${DUET_SEND_RATE:-},${DUET_SEND_BURST:-}"
  echo "$line" >> "$CSV"
  log "$line"
  # Diagnostic, not in the CSV: the server's context switches (all threads) per Reply.
  # (Replies: perfdhcp's last "received packets" line, the Request/Reply exchange's.)
  local replies; replies=$(awk '/^received packets:/ {r = $NF} END {print r + 0}' "$f")
  log "$srv $rate/s: context switches voluntary / involuntary per Reply: $(per_reply "$x0" "$x1" "$replies" 1 '%.2f / %.2f')"
  # Diagnostic, not in the CSV: where the server's CPU went, user space vs kernel, per Reply.
  log "$srv $rate/s: CPU µs per Reply, user / kernel: $(per_reply "$us0" "$us1" "$replies" "$(awk -v hz="$HZ" 'BEGIN{print 1e6 / hz}')" '%.0f / %.0f')"
}

per_reply() {  # per_reply "A1 A2" "B1 B2" REPLIES SCALE FORMAT: (B-A)*SCALE/REPLIES for both fields
  awk -v a="$1" -v b="$2" -v r="$3" -v k="$4" -v fmt="$5" '
    BEGIN { split(a, p, " "); split(b, q, " "); if (r > 0) printf fmt, (q[1]-p[1])*k/r, (q[2]-p[2])*k/r }'
}

perf_duet() {  # perf_duet RATE: a profile of duet (all threads, call graphs) under that load
  local rate=$1 data="$RUN/perf-duet-$rate.data"
  start_srv "${PERF_KIND:-duet}"
  perf record -F "${PERF_FREQ:-999}" ${PERF_EVENT:+-e "$PERF_EVENT"} --call-graph "${PERF_CALLGRAPH:-dwarf,32768}" -p "$SRV_PID" -o "$data" -- sleep $((DURATION + 1)) >/dev/null 2>&1 &
  local ppid=$!
  sleep 0.2
  nsx $NS_CLI "$PERFDHCP" -6 -l eth0 -R "$CLIENTS" -r "$rate" -p "$DURATION" -e "$LEASE_TYPE" \
    >"$RAW/perf-duet-$rate.txt" 2>&1 || true
  wait "$ppid" || true
  stop_srv
  perf report -i "$data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | head -80 > "$OUT/perf-duet-$rate.txt" || true
  perf report -i "$data" --children --sort sym --stdio -g none 2>/dev/null | grep -v '(inlined)' | head -120 > "$OUT/perf-duet-$rate-children.txt" || true
  { echo "# duet at $rate/s offered; perfdhcp: $(grep -E '^Rate' "$RAW/perf-duet-$rate.txt")"
    perf script -i "$data" -F comm,tid,ip,sym 2>/dev/null | python3 "$HERE/perf_breakdown.py"; } > "$OUT/perf-duet-$rate-breakdown.txt" || true
  log "profile: $OUT/perf-duet-$rate.txt"
}

trace_duet() {  # trace_duet RATE: per-thread syscall counts and latencies of duet under that load
  local rate=$1 out="$OUT/trace-duet-$rate.txt"
  start_srv "${PERF_KIND:-duet}"
  perf trace -s -p "$SRV_PID" -o "$out.tmp" -- sleep $((DURATION + 1)) >/dev/null 2>&1 &
  local ppid=$!
  sleep 0.3
  $CLI_CMD ip netns exec $NS_CLI "$PERFDHCP" -6 -l eth0 -R "$CLIENTS" -r "$rate" -p "$DURATION" -e "$LEASE_TYPE" \
    >"$RAW/trace-duet-$rate.txt" 2>&1 || true
  wait "$ppid" || true
  local dc; dc=$(duet_counters || true)
  stop_srv
  { echo "# perf trace -s of duet, offered $rate/s for ${DURATION}s; perfdhcp:"
    grep -E '^Rate|^sent packets|^received packets|^drops:' "$RAW/trace-duet-$rate.txt"
    echo "# duet counters (received,queue_overflow,replies_sent,commits,committed_records,dropped): $dc"
    cat "$out.tmp"; } > "$out"
  rm -f "$out.tmp"
  log "syscall trace: $out"
}

# ------------------------------------------------------------------ main
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
mkdir -p "$RUN"
if [ "${1:-}" = down ]; then cleanup; echo "cleaned up"; exit 0; fi
for s in $SERVERS; do
  case $s in
    duet-b) [ -x "${DUET_B:-}" ] || { echo "duet-b needs DUET_B=<another duet binary>" >&2; exit 1; } ;;
    duet*) [ -x "$DUET" ] || { echo "no $DUET: cargo build --release -p duet" >&2; exit 1; } ;;
    kea*) [ -x "$KEA_DHCP6" ] || { echo "no $KEA_DHCP6 (Debian kea-dhcp6-server)" >&2; exit 1; } ;;
    bare*) [ -x "$BARE" ] || { echo "no $BARE: cargo build --release -p duet-bench-bare" >&2; exit 1; } ;;
  esac
done
[ -x "$PERFDHCP" ] || { echo "no $PERFDHCP (Debian kea-admin)" >&2; exit 1; }
mkdir -p "$OUT" "$RAW"
# Run a private copy: other people may rebuild target/release/duet during a long sweep.
if [[ " $SERVERS " == *" duet"* || -n "${PERF_DUET_AT:-}${TRACE_DUET_AT:-}" ]]; then
  cp "$DUET" "$RUN/duet-bin.new" && mv "$RUN/duet-bin.new" "$RUN/duet-bin"
  log "duet binary: $DUET (sha256 $(sha256sum "$RUN/duet-bin" | cut -c1-12); tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown))"
  DUET="$RUN/duet-bin"
fi
if [[ " $SERVERS " == *" duet-b "* ]]; then
  cp "$DUET_B" "$RUN/duet-b-bin.new" && mv "$RUN/duet-b-bin.new" "$RUN/duet-b-bin"
  log "duet-b binary: $DUET_B (sha256 $(sha256sum "$RUN/duet-b-bin" | cut -c1-12))"
  DUET_B="$RUN/duet-b-bin"
fi
[ -f "$CSV" ] || echo "$HDR" > "$CSV"
cleanup
trap 'cleanup' EXIT
trap 'exit 130' INT TERM
lab_up
log "store dirs under $RUN: $(stat -f -c %T "$RUN") ($(df --output=source "$RUN" | tail -1)); servers: $SERVERS; rates: $RATES; ${DURATION}s x $REPEATS"
log "machine: $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg); nice: ${NICE:-0}; pinned: ${PIN:-no}"
for rep in $(seq "$REPEATS"); do
  for rate in $RATES; do
    for srv in $SERVERS; do   # servers interleaved per point: background noise hits all of them
      run_point "$srv" "$rate" "$rep"
    done
  done
done
for rate in ${PERF_DUET_AT:-}; do perf_duet "$rate"; done
for rate in ${TRACE_DUET_AT:-}; do trace_duet "$rate"; done
[ -n "$SERVERS" ] && [ -n "$RATES" ] && python3 "$HERE/summarize.py" "$CSV"
exit 0
