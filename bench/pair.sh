#!/usr/bin/env bash
# The duet failover pair vs an ISC Kea 2.2 hot-standby pair: same lab, same load, same run
# (issue 6, "Done when", last bullet: the benchmark). bench/pair_summary.py prints the tables.
#
# Usage (root):   bench/pair.sh              # all phases: sweep, latency, frozen, frozen-load
#                 PHASES="latency frozen" bench/pair.sh
#                 bench/pair.sh down         # only remove leftovers (lab, servers)
# Environment (defaults in brackets):
#   PHASES    ["sweep latency frozen frozen-load"]
#     sweep       capacity + CPU: perfdhcp at each rate against each pair (KINDS), every point
#                 from empty stores and a pair in NORMAL (duet) / hot-standby (Kea) ready
#     latency     latency.py probe (a fresh client every 0.1 s, full 4-way exchange) against the
#                 pair and the same server alone (LAT_KINDS), interleaved, LAT_REPEATS x LAT_SECONDS
#     frozen      the pair with the probe running; after FROZEN_BEFORE s the secondary / standby
#                 gets SIGSTOP (its kernel still accepts TCP) for FROZEN_SECONDS, then SIGCONT,
#                 FROZEN_AFTER s more; the primary's failover state is polled every 0.5 s
#     frozen-load the same freeze under perfdhcp load (FROZEN_LOAD_RATE/s, -W 1 s) + the probe,
#                 then SIGCONT and the time until the tables agree again
#     handover    (not in the default PHASES: ~1 min per run, 4 runs) issue 26: a planned restart
#                 of the primary under load, and the primary killed, interleaved per repeat; see
#                 handover_one below and bench/README.md. bench/handover_summary.py prints the table
#   KINDS     pairs in the sweep, interleaved per point ["duet-pair kea-ha"]
#             duet-pair  = duet primary (dhcp-a) + secondary (dhcp-b), TLS 1.3 partner link on its
#                          own bridge, mclt $MCLT, keepalive $KEEPALIVE s, auto-partner-down off
#             kea-ha     = kea-dhcp6 hot-standby (srv1 primary, srv2 standby), MT on, HA dedicated
#                          HTTP listener on the server link: the anchors' `ha` case
#   LAT_KINDS ["duet-alone duet-pair duet-alone-shm duet-pair-shm kea-alone kea-ha"]  (alone = the same server, no partner:
#             duet without [[failover]], Kea MT without the HA hook). Diagnostic kinds:
#             duet-pair-bshm = duet-pair with the secondary's data-dir on /dev/shm (this VM has one
#             disk, so in duet-pair the secondary's fdatasyncs queue on the same disk as the
#             primary's, which two hosts would not do); duet-alone-shm / duet-pair-shm = every
#             data-dir on /dev/shm (fdatasync is free: what is left is the server's own latency);
#             duet-pair-shm-nocli = duet-pair-shm with the secondary's client-link interface down once
#             the pair is NORMAL (it no longer receives the clients' multicast, only the partner link)
#   RATES     offered 4-way exchanges/s ["1000 2000 3000 4000 6000 8000 10000 12000 15000"]
#   STOP_PCT  in a repeat, a kind's higher rates are skipped once a point had > STOP_PCT % drops [10]
#   DURATION  perfdhcp -p [6]    REPEATS [2]    CLIENTS perfdhcp -R [100000]
#   LEASE_TYPE perfdhcp -e [address-only]
#   EXIT_WAIT_US  if set, perfdhcp -W (see bench/README.md) [unset]
#   NICE      nice level of servers, perfdhcp and the probe, e.g. -10 [unset]
#   MCLT [3600]  KEEPALIVE duet failover keepalive, s [10]  (Kea: heartbeat 1 s, max-response-delay
#             3 s, max-ack-delay 1 s, max-unacked-clients 0, as in ../shared/anchors/kea)
#   LAT_SECONDS [10] LAT_REPEATS [6] LAT_TIMEOUT per message, s [2]  (short windows, many rounds:
#             the kinds are interleaved, so slow phases of a shared disk hit all of them alike)
#   FROZEN_BEFORE [5] FROZEN_SECONDS [30] FROZEN_AFTER [15] FROZEN_TIMEOUT [12]
#   FROZEN_LOAD_RATE [1000]  FROZEN_LOAD_SECONDS [20]
#   HANDOVER_MODES ["handover kill"]  HANDOVER_REPEATS [2]  HANDOVER_RATE perfdhcp -r [1000]
#   HANDOVER_SECONDS load (perfdhcp -p, probe) [40]  HANDOVER_AT event at +s of the load [10]
#   DOWN s the primary stays stopped [5]  HANDOVER_TIMEOUT ctl handover --timeout [duet's, 10]
#   HANDOVER_T1 / HANDOVER_T2 the subnet's renew-time / rebind-time in this phase [5 / 10]
#   HANDOVER_DHCLIENTS dhclient -6 -N -P clients, namespaces dpair-h1.. [3]
#   HANDOVER_PROBE_TIMEOUT probe's wait per message, s [2]  HANDOVER_AGREE_WAIT s [60]
#   HANDOVER_KIND duet-pair, or duet-pair-shm (stores on /dev/shm: the same without fdatasync) [duet-pair]
#   HANDOVER_PCAP  1: dumpcap in dpair-cli, perfdhcp's exchanges one by one (exchanges.json), pcap
#             removed after; keep: pcap kept (~30 MB a run); 0: none [1]
#   RUN [/tmp/duet-pair-bench] (stores on disk: /tmp is ext4 here)  OUT [bench/results]  TAG [pair]
#   DUET [target/release/duet, copied to $RUN/duet-bin]  DUET_LOG [info]
#   DUET_COMMIT_WINDOW_US  duet's server.commit-window-us (group commit window) [config default]
#   DUET_BATCH_MAX  duet's server.batch-max (most requests per commit) [config default]
#   DUET_SEND_RATE / DUET_SEND_BURST  duet's server.send-rate / send-burst (pacing of what
#             is sent to clients; 0 = unpaced) [config default]
#
# Lab (namespaces dpair-*): bridge brc (client link) and brs (server-to-server link) in dpair-sw,
# multicast snooping off. dpair-a: eth0 2001:db8:1::1 (brc), eth1 2001:db8:ff::a (brs);
# dpair-b: eth0 2001:db8:1::2, eth1 2001:db8:ff::b; dpair-cli (perfdhcp) 2001:db8:1::100 and
# dpair-cli2 (probe) 2001:db8:1::101 on brc; the handover phase adds dpair-h1.. (dhclient, link-local
# only, MACs 02:00:00:26:00:0N) on brc. Both servers of a pair are on the client link and
# get every multicast Solicit; the partner traffic (duet TLS on 647, Kea HTTP on 8001) runs on brs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PHASES=${PHASES-"sweep latency frozen frozen-load"}
KINDS=${KINDS-"duet-pair kea-ha"}
LAT_KINDS=${LAT_KINDS-"duet-alone duet-pair duet-alone-shm duet-pair-shm kea-alone kea-ha"}
RATES=${RATES-"1000 2000 3000 4000 6000 8000 10000 12000 15000"}
STOP_PCT=${STOP_PCT:-10}
DURATION=${DURATION:-6}; REPEATS=${REPEATS:-2}; CLIENTS=${CLIENTS:-100000}
LEASE_TYPE=${LEASE_TYPE:-address-only}
MCLT=${MCLT:-3600}; KEEPALIVE=${KEEPALIVE:-10}
LAT_SECONDS=${LAT_SECONDS:-10}; LAT_REPEATS=${LAT_REPEATS:-6}; LAT_TIMEOUT=${LAT_TIMEOUT:-2}
FROZEN_BEFORE=${FROZEN_BEFORE:-5}; FROZEN_SECONDS=${FROZEN_SECONDS:-30}; FROZEN_AFTER=${FROZEN_AFTER:-15}
FROZEN_TIMEOUT=${FROZEN_TIMEOUT:-12}
FROZEN_LOAD_RATE=${FROZEN_LOAD_RATE:-1000}; FROZEN_LOAD_SECONDS=${FROZEN_LOAD_SECONDS:-20}
HANDOVER_MODES=${HANDOVER_MODES-"handover kill"}; HANDOVER_REPEATS=${HANDOVER_REPEATS:-2}
HANDOVER_RATE=${HANDOVER_RATE:-1000}; HANDOVER_SECONDS=${HANDOVER_SECONDS:-40}; HANDOVER_AT=${HANDOVER_AT:-10}
DOWN=${DOWN:-5}; HANDOVER_TIMEOUT=${HANDOVER_TIMEOUT:-}
HANDOVER_T1=${HANDOVER_T1:-5}; HANDOVER_T2=${HANDOVER_T2:-10}; HANDOVER_DHCLIENTS=${HANDOVER_DHCLIENTS:-3}
HANDOVER_PROBE_TIMEOUT=${HANDOVER_PROBE_TIMEOUT:-2}; HANDOVER_AGREE_WAIT=${HANDOVER_AGREE_WAIT:-60}
HANDOVER_PCAP=${HANDOVER_PCAP:-1}; HANDOVER_KIND=${HANDOVER_KIND:-duet-pair}
RUN=${RUN:-/tmp/duet-pair-bench}; OUT=${OUT:-$HERE/results}; TAG=${TAG:-pair}
DUET=${DUET:-$ROOT/target/release/duet}; DUET_LOG=${DUET_LOG:-info}
KEA_DHCP6=${KEA_DHCP6:-/usr/sbin/kea-dhcp6}; PERFDHCP=${PERFDHCP:-/usr/sbin/perfdhcp}
HOOKS=${HOOKS:-/usr/lib/x86_64-linux-gnu/kea/hooks}
MT_THREADS=${MT_THREADS:-2}; MT_QUEUE=${MT_QUEUE:-64}
EXIT_WAIT_US=${EXIT_WAIT_US:-}; WFLAG=""; [ -n "$EXIT_WAIT_US" ] && WFLAG="-W $EXIT_WAIT_US"
NICE=${NICE:-}; NICE_CMD=""; [ -n "$NICE" ] && NICE_CMD="nice -n $NICE"
NS_SW=dpair-sw; NS_A=dpair-a; NS_B=dpair-b; NS_CLI=dpair-cli; NS_CLI2=dpair-cli2
NS_H=$(for i in $(seq "$HANDOVER_DHCLIENTS"); do echo -n "dpair-h$i "; done)
HZ=$(getconf CLK_TCK)
CSV="$OUT/$TAG.csv"; LCSV="$OUT/$TAG-latency.csv"; HCSV="$OUT/$TAG-handover.csv"; RAW="$OUT/raw-$TAG"
REL=pair-1

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
nsx() { ip netns exec "$@"; }
now() { date +%s.%N; }

# ------------------------------------------------------------------ lab
lab_down() {
  local ns pid
  for ns in $NS_H $NS_CLI2 $NS_CLI $NS_B $NS_A $NS_SW; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -CONT "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

lab_up() {
  lab_down
  ip netns add $NS_SW
  nsx $NS_SW sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  nsx $NS_SW ip link set lo up
  local br
  for br in brc brs; do
    nsx $NS_SW ip link add $br type bridge mcast_snooping 0 stp_state 0
    nsx $NS_SW ip link set $br up
  done
  # node NS PORT-TAG "ifname bridge address" ...
  node() {
    local ns=$1 tag=$2; shift 2
    ip netns add "$ns"
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
    nsx "$ns" ip link set lo up
    local l ifn brg addr
    for l in "$@"; do
      read -r ifn brg addr <<<"$l"
      ip link add "$tag-$ifn" netns $NS_SW type veth peer name "$ifn" netns "$ns"
      nsx $NS_SW ip link set "$tag-$ifn" master "$brg" up
      nsx "$ns" sysctl -qw "net.ipv6.conf.$ifn.accept_dad=0" "net.ipv6.conf.$ifn.accept_ra=0"
      nsx "$ns" ip -6 addr add "$addr" dev "$ifn" nodad
      nsx "$ns" ip link set "$ifn" up
    done
  }
  node $NS_A a "eth0 brc 2001:db8:1::1/64" "eth1 brs 2001:db8:ff::a/64"
  node $NS_B b "eth0 brc 2001:db8:1::2/64" "eth1 brs 2001:db8:ff::b/64"
  node $NS_CLI c "eth0 brc 2001:db8:1::100/64"
  node $NS_CLI2 d "eth0 brc 2001:db8:1::101/64"
  local i t ns
  for i in $(seq 50); do  # link-local usable, nothing tentative
    t=0
    for ns in $NS_A $NS_B $NS_CLI $NS_CLI2; do
      nsx $ns ip -6 addr show dev eth0 scope link | grep -q inet6 || t=1
      nsx $ns ip -6 addr show | grep -q tentative && t=1
    done
    [ $t = 0 ] && break; sleep 0.1
  done
  log "lab up: $NS_A, $NS_B on brc (clients) + brs (partner link); $NS_CLI (perfdhcp), $NS_CLI2 (probe) on brc"
}

# ------------------------------------------------------------------ configs
SUBNET_COMMON='prefix = "2001:db8:1::/64"
interface = "eth0"
pools = ["2001:db8:1:0:1::-2001:db8:1:0:1:ffff:ffff:ffff"]
pd-pools = [{ prefix = "2001:db8:100::/48", delegated-length = 56 }]
preferred-lifetime = 3000
valid-lifetime = 4000
renew-time = 1000
rebind-time = 2000'
SUBNET_T1=1000; SUBNET_T2=2000   # the handover phase shortens them (dhclient renews during the run)

gen_duet() {  # gen_duet DIR NAME ROLE(primary|secondary|none) [DATA_DIR]
  local dir=$1 name=$2 role=$3 data=${4:-$1/data} me peer peername
  mkdir -p "$dir"
  {
    echo '[server]'
    echo "name = \"$name\""
    echo "data-dir = \"$data\""
    echo 'interfaces = ["eth0"]'
    [ -n "${DUET_COMMIT_WINDOW_US:-}" ] && echo "commit-window-us = $DUET_COMMIT_WINDOW_US"
    [ -n "${DUET_BATCH_MAX:-}" ] && echo "batch-max = $DUET_BATCH_MAX"
    [ -n "${DUET_SEND_RATE:-}" ] && echo "send-rate = $DUET_SEND_RATE"
    [ -n "${DUET_SEND_BURST:-}" ] && echo "send-burst = $DUET_SEND_BURST"
    echo
    echo '[control]'
    echo "socket = \"$dir/control.sock\""
    echo
    echo '[[subnet]]'
    echo "$SUBNET_COMMON" | sed -e "s/^renew-time = .*/renew-time = $SUBNET_T1/" -e "s/^rebind-time = .*/rebind-time = $SUBNET_T2/"
    if [ "$role" != none ]; then
      echo "failover = \"$REL\""
      if [ "$role" = primary ]; then me=a; peer=b; peername=dhcp-b; else me=b; peer=a; peername=dhcp-a; fi
      echo
      echo '[[failover]]'
      echo "name = \"$REL\""
      echo "role = \"$role\""
      echo "listen = \"[2001:db8:ff::$me]:647\""
      echo "peer = \"[2001:db8:ff::$peer]:647\""
      echo "mclt = $MCLT"
      echo "keepalive = $KEEPALIVE"
      echo "auto-partner-down = 0"
      echo "tls = { cert = \"$RUN/tls/$name.crt\", key = \"$RUN/tls/$name.key\", ca = \"$RUN/tls/ca.crt\", peer-name = \"$peername\" }"
    fi
  } > "$dir/duet.toml"
}

gen_kea() {  # gen_kea DIR srv1|srv2 ha|none  (../shared/anchors/kea/common.sh:gen_conf, MT on)
  local dir=$1 name=$2 ha=$3 hooks='[]'
  mkdir -p "$dir"
  if [ "$ha" = ha ]; then
    hooks=$(cat <<EOH
[
  { "library": "$HOOKS/libdhcp_lease_cmds.so" },
  { "library": "$HOOKS/libdhcp_ha.so",
    "parameters": { "high-availability": [ {
      "this-server-name": "$name", "mode": "hot-standby",
      "heartbeat-delay": 1000, "max-response-delay": 3000, "max-ack-delay": 1000, "max-unacked-clients": 0,
      "send-lease-updates": true, "sync-leases": true, "sync-timeout": 600000, "sync-page-limit": 10000,
      "multi-threading": { "enable-multi-threading": true, "http-dedicated-listener": true,
                           "http-listener-threads": $MT_THREADS, "http-client-threads": $MT_THREADS },
      "peers": [
        { "name": "srv1", "url": "http://[2001:db8:ff::a]:8001/", "role": "primary", "auto-failover": true },
        { "name": "srv2", "url": "http://[2001:db8:ff::b]:8001/", "role": "standby", "auto-failover": true }
      ]
    } ] } }
]
EOH
)
  fi
  cat > "$dir/kea-dhcp6.conf" <<EOC
{ "Dhcp6": {
  "interfaces-config": { "interfaces": [ "eth0" ] },
  "data-directory": "$dir",
  "control-socket": { "socket-type": "unix", "socket-name": "$dir/ctrl.sock" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$dir/leases6.csv", "lfc-interval": 0 },
  "multi-threading": { "enable-multi-threading": true, "thread-pool-size": $MT_THREADS, "packet-queue-size": $MT_QUEUE },
  "preferred-lifetime": 3000, "valid-lifetime": 4000, "renew-timer": 1000, "rebind-timer": 2000,
  "subnet6": [ {
    "id": 1, "subnet": "2001:db8:1::/64", "interface": "eth0",
    "pools": [ { "pool": "2001:db8:1:0:1::/80" } ],
    "pd-pools": [ { "prefix": "2001:db8:100::", "prefix-len": 48, "delegated-len": 56 } ]
  } ],
  "hooks-libraries": $hooks,
  "loggers": [
    { "name": "kea-dhcp6", "severity": "WARN", "output_options": [ { "output": "$dir/kea.log", "flush": true } ] },
    { "name": "kea-dhcp6.ha-hooks", "severity": "INFO", "output_options": [ { "output": "$dir/kea.log", "flush": true } ] }
  ]
} }
EOC
}

# ------------------------------------------------------------------ servers
PID_A=""; PID_B=""; KIND=""; DIR_A=""; DIR_B=""

kea_cmd() {  # kea_cmd SOCKET COMMAND -> JSON
  python3 - "$1" "$2" <<'EOP'
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10)
s.connect(sys.argv[1]); s.sendall(json.dumps({"command": sys.argv[2]}).encode())
buf = b""
while True:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    if not d: break
    buf += d
    try: json.loads(buf); break
    except ValueError: pass
print(buf.decode())
EOP
}

duet_status() {  # duet_status DIR -> "state partner-state comms-ok unacked" (or "? ? ? ?")
  local o
  o=$("$DUET" ctl --config "$1/duet.toml" status --json 2>/dev/null | jq -r '(.relationships[0] // {state: "none"})
    | "\(.state) \(."partner-state" // "-") \(."communications-ok") \(."unacked-bndupd" // 0)"' 2>/dev/null) || true
  echo "${o:-? ? ? ?}"
}

duet_counters() {  # DIR -> received,queue_overflow,replies_sent,commits,committed_records,dropped(sum),dropped(detail)
  "$DUET" ctl --config "$1/duet.toml" status --json 2>/dev/null | python3 -c '
import json, sys
try:
    c = json.load(sys.stdin)["counters"]
    d = c.get("dropped", {})
    print(",".join(str(c.get(k, "")) for k in ("received", "socket-drops", "replies-sent", "commits", "committed-records"))
          + "," + str(sum(d.values())) + "," + "/".join(f"{k}:{v}" for k, v in sorted(d.items())))
except Exception:
    print(",,,,,,")' 2>/dev/null || echo ",,,,,,"
}

duet_active() {  # DIR -> number of active NA bindings (ctl leases --json)
  "$DUET" ctl --config "$1/duet.toml" leases --json 2>/dev/null | python3 -c '
import json, sys
try:
    print(sum(1 for l in json.load(sys.stdin) if l["kind"] == "na" and l["state"] == "active"))
except Exception:
    print("?")' 2>/dev/null || echo "?"
}

kea_state() {  # SOCKET -> HA state of this server
  kea_cmd "$1" status-get 2>/dev/null | python3 -c '
import json, sys
try:
    print(json.load(sys.stdin)["arguments"]["high-availability"][0]["ha-servers"]["local"]["state"])
except Exception:
    print("?")' 2>/dev/null || echo "?"
}

kea_leases() {  # DIR -> distinct addresses with a non-zero valid lifetime in the memfile
  awk -F, 'NR>1 && $3>0 {a[$1]=1} END{print length(a)}' "$1/leases6.csv" 2>/dev/null || echo "?"
}

state_of() {  # state_of a|b -> failover state (duet) / HA state (Kea) / "-"
  local d; [ "$1" = a ] && d=$DIR_A || d=$DIR_B
  case $KIND in
    duet-pair*) duet_status "$d" | cut -d' ' -f1 ;;
    kea-ha) kea_state "$d/ctrl.sock" ;;
    *) echo "-" ;;
  esac
}

wait_sock() {  # wait_sock PID SOCK
  local i
  for i in $(seq 200); do [ -S "$2" ] && return 0; kill -0 "$1" 2>/dev/null || return 1; sleep 0.05; done
  return 1
}

wait_udp() {  # wait_udp NS PID: port 547 bound by PID
  local i
  for i in $(seq 100); do nsx "$1" ss -Hulnp 'sport = :547' | grep -q "pid=$2" && return 0; sleep 0.05; done
  return 1
}

READY_S=""
start_kind() {  # start_kind KIND: fresh stores, started, pair NORMAL / hot-standby; sets PID_A/PID_B
  local kind=$1 t0 i sa sb
  KIND=$kind; DIR_A="$RUN/$kind/a"; DIR_B="$RUN/$kind/b"; PID_A=""; PID_B=""
  rm -rf "$RUN/$kind"; mkdir -p "$DIR_A" "$DIR_B"
  t0=$(now)
  case $kind in
    duet-pair|duet-pair-bshm|duet-pair-shm|duet-pair-shm-nocli|duet-alone|duet-alone-shm)
      local da="$DIR_A/data" db="$DIR_B/data"
      rm -rf /dev/shm/duet-pair-bench-a /dev/shm/duet-pair-bench-b
      case $kind in *-shm|*-shm-nocli) da=/dev/shm/duet-pair-bench-a; db=/dev/shm/duet-pair-bench-b ;; esac
      [ $kind = duet-pair-bshm ] && db=/dev/shm/duet-pair-bench-b
      if [[ $kind != duet-alone* ]]; then
        gen_duet "$DIR_A" dhcp-a primary "$da"
        gen_duet "$DIR_B" dhcp-b secondary "$db"
        NO_COLOR=1 $NICE_CMD ip netns exec $NS_B "$DUET" serve --config "$DIR_B/duet.toml" --log "$DUET_LOG" >"$DIR_B/duet.log" 2>&1 &
        PID_B=$!
        # the secondary listens before the primary connects (no "connection refused" retry at start)
        wait_sock "$PID_B" "$DIR_B/control.sock" || { log "$kind: secondary failed to start"; tail -20 "$DIR_B/duet.log" >&2; return 1; }
      else
        gen_duet "$DIR_A" dhcp-a none "$da"
      fi
      NO_COLOR=1 $NICE_CMD ip netns exec $NS_A "$DUET" serve --config "$DIR_A/duet.toml" --log "$DUET_LOG" >"$DIR_A/duet.log" 2>&1 &
      PID_A=$!
      wait_sock "$PID_A" "$DIR_A/control.sock" || { log "$kind: primary failed to start"; tail -20 "$DIR_A/duet.log" >&2; return 1; }
      [ -n "$PID_B" ] && { wait_sock "$PID_B" "$DIR_B/control.sock" || { log "$kind: secondary failed to start"; tail -20 "$DIR_B/duet.log" >&2; return 1; }; }
      ;;
    kea-ha|kea-alone)
      local ha=none; [ $kind = kea-ha ] && ha=ha
      gen_kea "$DIR_A" srv1 $ha
      if [ $kind = kea-ha ]; then
        gen_kea "$DIR_B" srv2 ha
        KEA_PIDFILE_DIR="$DIR_B" KEA_LOCKFILE_DIR=none \
          $NICE_CMD ip netns exec $NS_B "$KEA_DHCP6" -c "$DIR_B/kea-dhcp6.conf" >"$DIR_B/stdout.log" 2>&1 &
        PID_B=$!
      fi
      KEA_PIDFILE_DIR="$DIR_A" KEA_LOCKFILE_DIR=none \
        $NICE_CMD ip netns exec $NS_A "$KEA_DHCP6" -c "$DIR_A/kea-dhcp6.conf" >"$DIR_A/stdout.log" 2>&1 &
      PID_A=$!
      wait_sock "$PID_A" "$DIR_A/ctrl.sock" || { log "$kind: srv1 failed to start"; tail -20 "$DIR_A"/*.log >&2; return 1; }
      [ -n "$PID_B" ] && { wait_sock "$PID_B" "$DIR_B/ctrl.sock" || { log "$kind: srv2 failed to start"; tail -20 "$DIR_B"/*.log >&2; return 1; }; }
      ;;
    *) echo "unknown kind $kind" >&2; exit 2 ;;
  esac
  echo "$PID_A ${PID_B:-}" > "$RUN/servers.pid"
  wait_udp $NS_A "$PID_A" || { log "$kind: no UDP 547 socket on a"; return 1; }
  [ -n "$PID_B" ] && { wait_udp $NS_B "$PID_B" || { log "$kind: no UDP 547 socket on b"; return 1; }; }
  case $kind in
    duet-pair|duet-pair-bshm|duet-pair-shm|duet-pair-shm-nocli|kea-ha)
      local want=normal; [ $kind = kea-ha ] && want=hot-standby
      for i in $(seq 600); do
        sa=$(state_of a); sb=$(state_of b)
        [ "$sa" = $want ] && [ "$sb" = $want ] && break
        sleep 0.1
      done
      if [ "$sa" != $want ] || [ "$sb" != $want ]; then
        log "$kind: pair not $want after 60 s (a: $sa, b: $sb)"; tail -5 "$DIR_A"/*.log "$DIR_B"/*.log >&2; return 1
      fi ;;
  esac
  # diagnostic: the secondary off the client link (it no longer receives the clients' multicast)
  if [[ $kind = *-nocli ]]; then nsx $NS_B ip link set eth0 down; fi
  READY_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
  sleep 0.3
}

stop_pid() {  # stop_pid PID
  local p=$1 i
  [ -n "$p" ] || return 0
  kill -CONT "$p" 2>/dev/null || true
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  fi
  wait "$p" 2>/dev/null || true
}

stop_kind() {
  stop_pid "$PID_A"; stop_pid "$PID_B"
  PID_A=""; PID_B=""; rm -f "$RUN/servers.pid"; rm -rf /dev/shm/duet-pair-bench-a /dev/shm/duet-pair-bench-b
  if [[ $KIND = *-nocli ]]; then nsx $NS_B ip link set eth0 up; fi
}

PROBE_PID=""; POLL_PID=""; PERF_PID=""; MON_PID=""
monitor() {  # every 10 s: load average and the busiest processes of the machine (foreign load)
  while :; do
    echo "$(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg) | $(top -bn1 -w 200 | sed -n '8,11p' | awk '{printf "%s%% %s; ", $9, $12}')"
    sleep 10
  done
}
cleanup() {
  [ -n "$MON_PID" ] && { kill "$MON_PID" 2>/dev/null; wait "$MON_PID" 2>/dev/null; } || true
  [ -n "$PROBE_PID" ] && { kill "$PROBE_PID" 2>/dev/null; wait "$PROBE_PID" 2>/dev/null; } || true
  [ -n "$POLL_PID" ] && { kill "$POLL_PID" 2>/dev/null; wait "$POLL_PID" 2>/dev/null; } || true
  [ -n "$PERF_PID" ] && { kill "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null; } || true
  [ -n "${DHC_PIDS:-}" ] && dhclients_stop || true
  stop_kind || true
  if [ -f "$RUN/servers.pid" ]; then
    for p in $(cat "$RUN/servers.pid"); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    rm -f "$RUN/servers.pid"
  fi
  lab_down
}

# ------------------------------------------------------------------ measuring
cpu_ticks() { [ -n "$1" ] && awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo ""; }   # utime+stime, all threads
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
udp_drops() { nsx "$1" nstat -az Udp6RcvbufErrors 2>/dev/null | awk '/Udp6RcvbufErrors/{print $2}'; }
secs() { awk -v a="$1" -v b="$2" -v hz="$HZ" 'BEGIN{if (a!="" && b!="") printf "%.2f", (b-a)/hz}'; }

parse() {  # perfdhcp output -> rate,sa_sent,sa_rcvd,sa_drops,sa_avg_ms,sa_max_ms,rr_sent,rr_rcvd,rr_drops,rr_avg_ms,rr_max_ms
  awk '
    /^Rate:/ {rate=$2}
    /Statistics for: SOLICIT-ADVERTISE/ {b="sa"} /Statistics for: REQUEST-REPLY/ {b="rr"}
    /^sent packets:/ {s[b]=$3} /^received packets:/ {r[b]=$3} /^drops:/ {d[b]=$2}
    /^avg delay:/ {a[b]=$3} /^max delay:/ {m[b]=$3}
    END {printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s", rate,s["sa"],r["sa"],d["sa"],a["sa"],m["sa"],s["rr"],r["rr"],d["rr"],a["rr"],m["rr"]}' "$1"
}

settle() {  # after the load: wait until nothing is in flight between the partners (max 30 s)
  local i st u z=0
  case $KIND in
    duet-pair*)
      for i in $(seq 300); do
        st=$(duet_status "$DIR_A"); u=$(echo "$st" | cut -d' ' -f4)
        if [ "$u" = 0 ]; then z=$((z + 1)); [ $z -ge 3 ] && return 0; else z=0; fi
        sleep 0.1
      done; return 1 ;;
    *) sleep 0.3 ;;   # Kea's updates are synchronous: done when the Reply left
  esac
}

leases_of() {  # leases_of a|b -> active address bindings
  local d; [ "$1" = a ] && d=$DIR_A || d=$DIR_B
  case $KIND in
    duet-*) [ "$1" = b ] && [[ $KIND = duet-alone* ]] && { echo "-"; return; }; duet_active "$d" ;;
    kea-*) [ "$1" = b ] && [ "$KIND" != kea-ha ] && { echo "-"; return; }; kea_leases "$d" ;;
  esac
}

declare -A LOG_LINES=()
mark_logs() {  # remember how long each log is (before stopping: shutdown itself logs warnings)
  local f; LOG_LINES=()
  for f in "$DIR_A"/*.log "$DIR_B"/*.log; do [ -f "$f" ] && LOG_LINES[$f]=$(wc -l < "$f"); done
  return 0
}
log_warnings() {  # WARN/ERROR lines in this kind's logs up to mark_logs (Kea: less its two start-up notices)
  local f
  for f in "$DIR_A"/*.log "$DIR_B"/*.log; do
    [ -f "$f" ] && head -n "${LOG_LINES[$f]:-1000000}" "$f"
  done | grep -E ' (WARN|ERROR) ' | grep -cvE 'DHCP6_MULTI_THREADING_INFO|DHCP6_RESERVATIONS_LOOKUP_FIRST_ENABLED' || true
}

keep_logs() {  # keep_logs NAME: copy this kind's logs to $RAW/logs/NAME-{a,b}.log
  mkdir -p "$RAW/logs"
  cat "$DIR_A"/*.log > "$RAW/logs/$1-a.log" 2>/dev/null || true
  [ -n "$(ls "$DIR_B"/*.log 2>/dev/null)" ] && cat "$DIR_B"/*.log > "$RAW/logs/$1-b.log" 2>/dev/null || true
}

HDR="kind,lease_type,offered,rep,duration,rate,sa_sent,sa_rcvd,sa_drops,sa_avg_ms,sa_max_ms,rr_sent,rr_rcvd,rr_drops,rr_avg_ms,rr_max_ms,cpu_a_s,cpu_b_s,cpu_a_tail_s,cpu_b_tail_s,settle_s,settled,perfdhcp_cpu_s,machine_busy_s,rcvbuf_a,rcvbuf_b,rcvbuf_cli,ready_s,state_a_before,state_b_before,state_a_after,state_b_after,leases_a,leases_b,a_received,a_queue_overflow,a_replies_sent,a_commits,a_records,a_dropped,b_received,b_queue_overflow,b_replies_sent,b_commits,b_records,b_dropped,b_dropped_detail,log_warnings,load1,time,nice,exit_wait_us"

LAST_DROP_PCT=0
run_point() {  # run_point KIND RATE REP
  local kind=$1 rate=$2 rep=$3 f ca0 cb0 ca1 cb1 ca2 cb2 b0 b1 ua0 ub0 uc0 ua1 ub1 uc1 pc sa0 sb0 sa1 sb1 t1 t2 st=1
  if ! start_kind "$kind"; then keep_logs "start-fail-$kind-$rate-$rep"; stop_kind; return 1; fi
  sa0=$(state_of a); sb0=$(state_of b)
  f="$RAW/$kind-$LEASE_TYPE-$rate-$rep.txt"
  ua0=$(udp_drops $NS_A); ub0=$(udp_drops $NS_B); uc0=$(udp_drops $NS_CLI)
  b0=$(busy_ticks); ca0=$(cpu_ticks "$PID_A"); cb0=$(cpu_ticks "$PID_B")
  /usr/bin/time -f "PERFDHCP_CPU %U %S" -o "$f.time" \
    $NICE_CMD ip netns exec $NS_CLI "$PERFDHCP" -6 -l eth0 -R "$CLIENTS" -r "$rate" -p "$DURATION" -e "$LEASE_TYPE" $WFLAG >"$f" 2>&1 || true
  ca1=$(cpu_ticks "$PID_A"); cb1=$(cpu_ticks "$PID_B"); b1=$(busy_ticks)
  t1=$(now); settle || st=0; t2=$(now)
  ca2=$(cpu_ticks "$PID_A"); cb2=$(cpu_ticks "$PID_B")
  ua1=$(udp_drops $NS_A); ub1=$(udp_drops $NS_B); uc1=$(udp_drops $NS_CLI)
  pc=$(awk '/PERFDHCP_CPU/ {printf "%.2f", $2+$3}' "$f.time"); rm -f "$f.time"
  sa1=$(state_of a); sb1=$(state_of b)
  local la lb ca cb warn
  la=$(leases_of a); lb=$(leases_of b)
  if [[ $kind = duet-pair* ]] && [ "$la" != "$lb" ]; then   # not yet equal: give it up to 10 s more
    local i; for i in $(seq 20); do sleep 0.5; la=$(leases_of a); lb=$(leases_of b); [ "$la" = "$lb" ] && break; done
  fi
  ca=",,,,,"; cb=",,,,,,"
  case $kind in duet-*) ca=$(duet_counters "$DIR_A" | cut -d, -f1-6) ;; esac
  case $kind in duet-pair*) cb=$(duet_counters "$DIR_B") ;; esac
  mark_logs
  stop_kind
  warn=$(log_warnings)
  if [ "$warn" != 0 ]; then keep_logs "$TAG-$kind-$rate-$rep"; fi
  local line
  line="$kind,$LEASE_TYPE,$rate,$rep,$DURATION,$(parse "$f"),$(secs "$ca0" "$ca1"),$(secs "$cb0" "$cb1"),$(secs "$ca1" "$ca2"),$(secs "$cb1" "$cb2"),$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.2f", b-a}'),$st,$pc,$(secs "$b0" "$b1"),$((ua1-ua0)),$(( ${ub1:-0}-${ub0:-0} )),$((uc1-uc0)),$READY_S,$sa0,$sb0,$sa1,$sb1,$la,$lb,$ca,$cb,$warn,$(cut -d' ' -f1 /proc/loadavg),$(date +%FT%T),${NICE:-0},${EXIT_WAIT_US:-0}"
  echo "$line" >> "$CSV"
  log "$line"
  LAST_DROP_PCT=$(awk -F, -v l="$line" 'BEGIN{split(l, x, ","); s=x[7]; printf "%.3f", (s > 0 ? 100*(x[9]+x[14])/s : 100)}')
}

phase_sweep() {
  [ -f "$CSV" ] || echo "$HDR" > "$CSV"
  local rep rate kind
  declare -A stopped
  for rep in $(seq "$REPEATS"); do
    stopped=()
    for rate in $RATES; do
      for kind in $KINDS; do   # interleaved per point
        if [ -n "${stopped[$kind]:-}" ]; then continue; fi
        run_point "$kind" "$rate" "$rep" || continue
        if awk -v d="$LAST_DROP_PCT" -v s="$STOP_PCT" 'BEGIN{exit !(d > s)}'; then
          stopped[$kind]=1; log "$kind: $LAST_DROP_PCT % drops at $rate/s: higher rates skipped in repeat $rep"
        fi
      done
    done
  done
}

LHDR="kind,rep,seconds,interval_s,timeout_s,n,ok,no_adv,no_reply,multi_sid,servers,rr_med_ms,rr_p99_ms,rr_max_ms,sa_med_ms,sa_p99_ms,rr_over_100ms,state_a,state_b,load1,time,nice"
lat_row() {  # lat_row KIND REP FILE SECONDS TIMEOUT [FROM TO] -> row in $LCSV
  local s; s=$(python3 "$HERE/latency.py" summary "$3" ${6:-} ${7:-})
  local v; v=$(echo "$s" | tr ' ' '\n' | cut -d= -f2 | paste -sd,)
  echo "$1,$2,$4,0.1,$5,$v,$(state_of a),$(state_of b),$(cut -d' ' -f1 /proc/loadavg),$(date +%FT%T),${NICE:-0}" >> "$LCSV"
  log "latency $1 rep $2: $s"
}

phase_latency() {
  [ -f "$LCSV" ] || echo "$LHDR" > "$LCSV"
  local rep kind f
  for rep in $(seq "$LAT_REPEATS"); do
    for kind in $LAT_KINDS; do
      start_kind "$kind" || { keep_logs "start-fail-lat-$kind-$rep"; stop_kind; continue; }
      f="$RAW/lat-$kind-$rep.log"
      $NICE_CMD ip netns exec $NS_CLI2 python3 "$HERE/latency.py" probe eth0 0.1 "$LAT_TIMEOUT" "$LAT_SECONDS" > "$f"
      sleep 0.3
      lat_row "$kind" "$rep" "$f" "$LAT_SECONDS" "$LAT_TIMEOUT"
      if [[ $kind = duet-pair* ]]; then
        settle || true
        log "$kind after the probe: a $(leases_of a) / b $(leases_of b) active bindings; b counters $(duet_counters "$DIR_B")"
      fi
      mark_logs
      stop_kind
      if [ "$(log_warnings)" != 0 ]; then keep_logs "$TAG-lat-$kind-$rep"; fi
    done
  done
}

poll_loop() {  # poll_loop FILE: both servers' failover states every 0.5 s (bench/pair_poll.py)
  local k=duet; [ "$KIND" = kea-ha ] && k=kea
  exec python3 "$HERE/pair_poll.py" $k "$DUET" "$DIR_A" "$DIR_B" 0.5 >> "$1"
}

frozen_one() {  # frozen_one KIND LOAD_RATE(0 = probe only)
  local kind=$1 load=$2 name="frozen" f st t0 tstop tcont tend total
  [ "$load" != 0 ] && name="frozen-load"
  start_kind "$kind" || { keep_logs "start-fail-$name-$kind"; stop_kind; return 1; }
  f="$RAW/$name-$kind"
  rm -f "$f".*
  if [ "$load" = 0 ]; then
    total=$((FROZEN_BEFORE + FROZEN_SECONDS + FROZEN_AFTER))
  else
    total=$((FROZEN_BEFORE + FROZEN_LOAD_SECONDS + FROZEN_AFTER))
  fi
  poll_loop "$f.status" & POLL_PID=$!
  t0=$(now)
  $NICE_CMD ip netns exec $NS_CLI2 python3 "$HERE/latency.py" probe eth0 0.1 "$FROZEN_TIMEOUT" "$total" > "$f.probe" &
  PROBE_PID=$!
  sleep "$FROZEN_BEFORE"
  local ua0 uc0 ca0 cb0
  tstop=$(now); kill -STOP "$PID_B"; log "$name $kind: secondary/standby (pid $PID_B) SIGSTOPped"
  if [ "$load" = 0 ]; then
    sleep "$FROZEN_SECONDS"
  else
    ua0=$(udp_drops $NS_A); uc0=$(udp_drops $NS_CLI)
    $NICE_CMD ip netns exec $NS_CLI "$PERFDHCP" -6 -l eth0 -R "$CLIENTS" -r "$load" -p "$FROZEN_LOAD_SECONDS" -e "$LEASE_TYPE" -W 1000000 > "$f.perfdhcp" 2>&1 || true
    echo "udp rcvbuf drops during the load: a $(( $(udp_drops $NS_A) - ua0 )), cli $(( $(udp_drops $NS_CLI) - uc0 ))" >> "$f.perfdhcp"
  fi
  tcont=$(now); kill -CONT "$PID_B"; log "$name $kind: SIGCONT"
  wait "$PROBE_PID" || true; PROBE_PID=""
  # after the probe: the pair back to NORMAL / hot-standby and the tables equal (max 5 min)
  local want=normal i sa sb la="?" lb="?" teq=""
  [ "$kind" = kea-ha ] && want=hot-standby
  for i in $(seq 1200); do
    sa=$(state_of a); sb=$(state_of b)
    if [ "$sa" = $want ] && [ "$sb" = $want ]; then
      if [ "$kind" = duet-pair ]; then settle || true; fi
      la=$(leases_of a); lb=$(leases_of b)
      [ "$la" = "$lb" ] && { teq=$(now); break; }
    fi
    sleep 0.25
  done
  tend=$(now)
  kill "$POLL_PID" 2>/dev/null; wait "$POLL_PID" 2>/dev/null || true; POLL_PID=""
  # from the poll: when the primary left NORMAL / hot-standby, and when both were back
  local tleft trec
  tleft=$(awk -v t="$tstop" -v w="a=$want" '$1 > t && index($2, w) != 1 && $2 != "a=?" {print $1; exit}' "$f.status")
  trec=$(awk -v t="$tcont" -v w="$want" '$1 > t && index($2, "a=" w) == 1 && index($3, "b=" w) == 1 {print $1; exit}' "$f.status")
  rel() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%+.1f s", b-a}' || echo "never"; }
  {
    echo "# $name $kind: probe start $t0; SIGSTOP at +$(awk -v a="$t0" -v b="$tstop" 'BEGIN{printf "%.1f", b-a}') s; SIGCONT at +$(awk -v a="$t0" -v b="$tcont" 'BEGIN{printf "%.1f", b-a}') s"
    echo "# the primary left $want $(rel "$tstop" "$tleft") after SIGSTOP (polled every 0.5 s: $(awk -v t="$tleft" '$1 == t {print $2}' "$f.status")); both $want again $(rel "$tcont" "$trec") after SIGCONT; tables equal when checked after the probe: a $la / b $lb active bindings ($( [ -n "$teq" ] && echo "equal" || echo "NOT equal within 5 min"))"
    echo "tstart=$t0 tstop=$tstop tcont=$tcont tleft=${tleft:-} trec=${trec:-} teq=${teq:-} la=$la lb=$lb"
  } > "$f.summary"
  cat "$f.summary" >&2
  if [ "$load" = 0 ]; then
    lat_row "$name-$kind-before" 1 "$f.probe" "$FROZEN_BEFORE" "$FROZEN_TIMEOUT" "$t0" "$tstop"
    lat_row "$name-$kind-frozen" 1 "$f.probe" "$FROZEN_SECONDS" "$FROZEN_TIMEOUT" "$tstop" "$tcont"
    lat_row "$name-$kind-thawed" 1 "$f.probe" "$FROZEN_AFTER" "$FROZEN_TIMEOUT" "$tcont" "$tend"
  else
    lat_row "$name-$kind-frozen" 1 "$f.probe" "$FROZEN_LOAD_SECONDS" "$FROZEN_TIMEOUT" "$tstop" "$tcont"
    lat_row "$name-$kind-thawed" 1 "$f.probe" "$FROZEN_AFTER" "$FROZEN_TIMEOUT" "$tcont" "$tend"
  fi
  { echo "# $name $kind: T0_EPOCH = SIGSTOP; SIGCONT at +$(awk -v a="$tstop" -v b="$tcont" 'BEGIN{printf "%.1f", b-a}') s"
    python3 "$HERE/latency.py" timeline "$f.probe" 2.5 "$tstop"; } > "$f.timeline.md"
  stop_kind
  keep_logs "$name-$kind"
}

phase_frozen() { [ -f "$LCSV" ] || echo "$LHDR" > "$LCSV"; local k; for k in $KINDS; do frozen_one "$k" 0 || true; done; }
phase_frozen_load() { [ -f "$LCSV" ] || echo "$LHDR" > "$LCSV"; local k; for k in $KINDS; do frozen_one "$k" "$FROZEN_LOAD_RATE" || true; done; }

# ------------------------------------------------------------------ handover (issue 26)
# Per run (handover_one MODE REP), from fresh stores, subnet T1/T2 = HANDOVER_T1/T2:
#   pair NORMAL; HANDOVER_DHCLIENTS dhclient -6 -N -P bound (by the primary); then for HANDOVER_SECONDS
#   perfdhcp at HANDOVER_RATE/s (-W 1 s, -t 1 for a per-second timeline) + the latency.py probe (a new
#   client every 0.1 s); both servers' states polled every 0.2 s. At +HANDOVER_AT s:
#     handover  `ctl handover` on the primary, then SIGTERM (a plain stop: it is handed over)
#     kill      SIGKILL of the primary
#   DOWN s after it exited the primary starts again on the same data-dir; both NORMAL is awaited.
#   After the load: nothing in flight (unacked 0 on both), then both `ctl leases --json` compared
#   (HANDOVER_AGREE_WAIT s at most). Raw files in $RAW/handover-MODE-REP/, one row in $TAG-handover.csv
#   (bench/handover_summary.py row), the table by bench/handover_summary.py table.
DHC_PIDS=""
handover_lab() {  # the dhclient namespaces on brc (idempotent)
  local i ns
  for i in $(seq "$HANDOVER_DHCLIENTS"); do
    ns=dpair-h$i
    ip netns pids "$ns" >/dev/null 2>&1 && continue
    ip netns add "$ns"
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
    nsx "$ns" ip link set lo up
    ip link add "h$i-eth0" netns $NS_SW type veth peer name eth0 netns "$ns"
    nsx $NS_SW ip link set "h$i-eth0" master brc up
    nsx "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.accept_ra=0
    nsx "$ns" ip link set eth0 address "02:00:00:26:00:$(printf %02x "$i")"
    nsx "$ns" ip link set eth0 up
  done
  for i in $(seq 50); do   # link-local usable
    local t=0
    for ns in $NS_H; do nsx "$ns" ip -6 addr show dev eth0 scope link | grep -q inet6 || t=1
      nsx "$ns" ip -6 addr show | grep -q tentative && t=1; done
    [ $t = 0 ] && break; sleep 0.1
  done
}

dhclients_start() {  # dhclients_start DIR: one dhclient -6 -N -P per dpair-hN, own files (TESTING-NOTES.md)
  local i ns c
  DHC_PIDS=""
  for i in $(seq "$HANDOVER_DHCLIENTS"); do
    ns=dpair-h$i; c="$1/dhc$i"; mkdir -p "$c"
    : > "$c/empty.conf"; : > "$c/leases"; : > "$c/events"
    # one line per script call: epoch reason, the address / prefix it concerns, the server's DUID
    cat > "$c/script.sh" <<EOF
#!/bin/sh
echo "\$(date +%s.%N) \$reason a=\${new_ip6_address:-} p=\${new_ip6_prefix:-} oa=\${old_ip6_address:-} op=\${old_ip6_prefix:-} sid=\${new_dhcp6_server_id:-} life=\${new_max_life:-}" >> '$c/events'
exit 0
EOF
    chmod 755 "$c/script.sh"
    # ip netns exec directly (not the nsx function): $! is then dhclient itself, not a subshell
    ip netns exec "$ns" dhclient -6 -d -v -D LL -N -P -lf "$c/leases" -pf "$c/pid" -cf "$c/empty.conf" -sf "$c/script.sh" eth0 \
      > "$c/dhclient.log" 2>&1 &
    DHC_PIDS="$DHC_PIDS $!"
  done
}

dhclients_bound() {  # dhclients_bound DIR TIMEOUT_S: every client has an address and a prefix
  local i c n end; end=$(awk -v t="$(now)" -v d="$2" 'BEGIN{printf "%.3f", t+d}')
  while :; do
    n=0
    for i in $(seq "$HANDOVER_DHCLIENTS"); do
      c="$1/dhc$i"
      # an address and a prefix (dhclient may report the IA_NA and the IA_PD in separate calls)
      grep -Eq ' BOUND6 a=[0-9a-f]' "$c/events" 2>/dev/null && grep -Eq ' BOUND6 .*p=[0-9a-f]' "$c/events" 2>/dev/null && n=$((n + 1))
    done
    [ $n -ge "$HANDOVER_DHCLIENTS" ] && return 0
    awk -v t="$(now)" -v e="$end" 'BEGIN{exit !(t > e)}' && return 1
    sleep 0.2
  done
}

dhclients_stop() {
  local p
  for p in $DHC_PIDS; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $DHC_PIDS; do wait "$p" 2>/dev/null || true; done
  DHC_PIDS=""
}

start_primary() {  # the primary again, same config and data-dir, log appended
  echo "# restarted at $(now)" >> "$DIR_A/duet.log"
  NO_COLOR=1 $NICE_CMD ip netns exec $NS_A "$DUET" serve --config "$DIR_A/duet.toml" --log "$DUET_LOG" >>"$DIR_A/duet.log" 2>&1 &
  PID_A=$!
  echo "$PID_A ${PID_B:-}" > "$RUN/servers.pid"
}

both_unacked_zero() {  # nothing in flight between the partners, 3 polls in a row (max 30 s)
  local i z=0 ua ub
  for i in $(seq 300); do
    ua=$(duet_status "$DIR_A" | cut -d' ' -f4); ub=$(duet_status "$DIR_B" | cut -d' ' -f4)
    if [ "$ua" = 0 ] && [ "$ub" = 0 ]; then z=$((z + 1)); [ $z -ge 3 ] && return 0; else z=0; fi
    sleep 0.1
  done
  return 1
}

handover_one() {  # handover_one MODE(handover|kill) REP
  local mode=$1 rep=$2 d="$RAW/handover-$mode-$rep" meta tl tev tho hrc=- tstop tstart tnormal="" tend tagree="" ok
  rm -rf "$d"; mkdir -p "$d"; meta="$d/meta"
  SUBNET_T1=$HANDOVER_T1; SUBNET_T2=$HANDOVER_T2
  ok=1; start_kind "$HANDOVER_KIND" || ok=0
  SUBNET_T1=1000; SUBNET_T2=2000
  if [ $ok = 0 ]; then keep_logs "start-fail-handover-$mode-$rep"; stop_kind; return 1; fi
  {
    echo "mode=$mode"; echo "rep=$rep"; echo "rate=$HANDOVER_RATE"; echo "seconds=$HANDOVER_SECONDS"
    echo "at=$HANDOVER_AT"; echo "down=$DOWN"; echo "t1=$HANDOVER_T1"; echo "t2=$HANDOVER_T2"
    echo "kind=$HANDOVER_KIND"; echo "mclt=$MCLT"; echo "keepalive=$KEEPALIVE"; echo "dhclients=$HANDOVER_DHCLIENTS"
    echo "probe_timeout=$HANDOVER_PROBE_TIMEOUT"; echo "nice=${NICE:-0}"
    echo "duid_a=$("$DUET" ctl --config "$DIR_A/duet.toml" status --json | jq -r .server.duid)"
    echo "duid_b=$("$DUET" ctl --config "$DIR_B/duet.toml" status --json | jq -r .server.duid)"
    echo "partner_handover=$("$DUET" ctl --config "$DIR_A/duet.toml" status --json | jq -r '.relationships[0]."partner-handover"')"
    echo "load1_start=$(cut -d' ' -f1 /proc/loadavg)"
  } > "$meta"
  dhclients_start "$d"
  if dhclients_bound "$d" 30; then echo "dhc_bound_before=1" >> "$meta"
  else echo "dhc_bound_before=0" >> "$meta"; log "handover $mode $rep: not every dhclient bound within 30 s"; fi
  poll_loop_at "$d/status" 0.5 & POLL_PID=$!
  local ua0 ub0 uc0 b0 b1
  ua0=$(udp_drops $NS_A); ub0=$(udp_drops $NS_B); uc0=$(udp_drops $NS_CLI); b0=$(busy_ticks)
  local cap_pid=""
  if [ "$HANDOVER_PCAP" != 0 ]; then   # what perfdhcp sent and got, per exchange (handover_summary.py)
    echo "mac_cli=$(nsx $NS_CLI cat /sys/class/net/eth0/address)" >> "$meta"
    ip netns exec $NS_CLI dumpcap -q -i eth0 -P -s 200 -B 32 -f "udp port 546 or udp port 547" -w "$d/cli.pcap" 2> "$d/dumpcap.err" &
    cap_pid=$!
    for i in $(seq 50); do [ -s "$d/cli.pcap" ] && break; sleep 0.1; done
  fi
  tl=$(now); echo "t_load=$tl" >> "$meta"
  $NICE_CMD ip netns exec $NS_CLI2 python3 "$HERE/latency.py" probe eth0 0.1 "$HANDOVER_PROBE_TIMEOUT" "$HANDOVER_SECONDS" > "$d/probe" &
  PROBE_PID=$!
  $NICE_CMD ip netns exec $NS_CLI "$PERFDHCP" -6 -l eth0 -R "$CLIENTS" -r "$HANDOVER_RATE" -p "$HANDOVER_SECONDS" \
    -e "$LEASE_TYPE" -W 1000000 -t 1 > "$d/perfdhcp" 2>&1 &
  PERF_PID=$!
  sleep "$(awk -v a="$tl" -v b="$(now)" -v at="$HANDOVER_AT" 'BEGIN{w=a+at-b; if (w < 0) w = 0; printf "%.3f", w}')"
  tev=$(now); echo "t_event=$tev" >> "$meta"
  if [ "$mode" = handover ]; then
    hrc=0
    "$DUET" ctl --config "$DIR_A/duet.toml" handover "$REL" ${HANDOVER_TIMEOUT:+--timeout "$HANDOVER_TIMEOUT"} \
      > "$d/handover.out" 2>&1 || hrc=$?
    tho=$(now); echo "t_handover_returned=$tho" >> "$meta"; echo "handover_rc=$hrc" >> "$meta"
    log "handover $rep: ctl handover returned $hrc after $(awk -v a="$tev" -v b="$tho" 'BEGIN{printf "%.3f", b-a}') s: $(head -c 300 "$d/handover.out")"
    kill -TERM "$PID_A"
  else
    kill -KILL "$PID_A"
  fi
  wait "$PID_A" 2>/dev/null || true
  tstop=$(now); echo "t_stopped=$tstop" >> "$meta"
  sleep "$DOWN"
  local i sa sb la0; la0=$(( $(wc -l < "$DIR_A/duet.log") + 1 ))
  tstart=$(now); echo "t_restart=$tstart" >> "$meta"
  start_primary
  # both NORMAL: the last state change each logged since the restart (cheaper than ctl status every
  # 0.1 s on a busy machine; the status poll confirms it), checked every 0.05 s for at most 3 min
  for i in $(seq 3600); do
    sa=$(tail -n +"$la0" "$DIR_A/duet.log" | grep -o 'failover state changed.* to=[a-z-]*' | tail -1 | sed 's/.*to=//')
    sb=$(grep -o 'failover state changed.* to=[a-z-]*' "$DIR_B/duet.log" | tail -1 | sed 's/.*to=//')
    if [ "$sa" = normal ] && [ "$sb" = normal ]; then tnormal=$(now); break; fi
    sleep 0.05
  done
  echo "t_normal=$tnormal" >> "$meta"
  log "handover $mode $rep: primary restarted at +$(awk -v a="$tev" -v b="$tstart" 'BEGIN{printf "%.2f", b-a}') s; both normal $( [ -n "$tnormal" ] && awk -v a="$tstart" -v b="$tnormal" 'BEGIN{printf "%.2f s after the restart", b-a}' || echo "NOT within the wait (a $sa, b $sb)")"
  wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
  wait "$PROBE_PID" 2>/dev/null || true; PROBE_PID=""
  b1=$(busy_ticks); tend=$(now)
  if [ -n "$cap_pid" ]; then kill -TERM "$cap_pid" 2>/dev/null; wait "$cap_pid" 2>/dev/null || true; fi
  {
    echo "t_load_end=$tend"
    echo "busy_s=$(secs "$b0" "$b1")"
    echo "rcvbuf_a=$(( $(udp_drops $NS_A) - ua0 ))"; echo "rcvbuf_b=$(( $(udp_drops $NS_B) - ub0 ))"
    echo "rcvbuf_cli=$(( $(udp_drops $NS_CLI) - uc0 ))"
  } >> "$meta"
  # the tables: nothing in flight, then equal (checked every 0.5 s up to HANDOVER_AGREE_WAIT s)
  both_unacked_zero && echo "settled=1" >> "$meta" || echo "settled=0" >> "$meta"
  local n; n=$(awk -v w="$HANDOVER_AGREE_WAIT" 'BEGIN{print int(w*2)}')
  for i in $(seq "$n"); do
    "$DUET" ctl --config "$DIR_A/duet.toml" leases --json > "$d/leases-a.json" 2>/dev/null || true
    "$DUET" ctl --config "$DIR_B/duet.toml" leases --json > "$d/leases-b.json" 2>/dev/null || true
    if python3 "$HERE/handover_summary.py" tables "$d/leases-a.json" "$d/leases-b.json" > "$d/tables"; then
      tagree=$(now); break
    fi
    sleep 0.5
  done
  echo "t_agree=$tagree" >> "$meta"
  log "handover $mode $rep: tables $(cat "$d/tables") $( [ -n "$tagree" ] && awk -v a="$tend" -v b="$tagree" 'BEGIN{printf "(%.1f s after the load)", b-a}' || echo "NOT equal within ${HANDOVER_AGREE_WAIT} s")"
  {
    echo "state_a_end=$(duet_status "$DIR_A" | tr ' ' ,)"; echo "state_b_end=$(duet_status "$DIR_B" | tr ' ' ,)"
    echo "counters_a=$(duet_counters "$DIR_A")"; echo "counters_b=$(duet_counters "$DIR_B")"
    echo "load1_end=$(cut -d' ' -f1 /proc/loadavg)"
  } >> "$meta"
  dhclients_stop
  kill "$POLL_PID" 2>/dev/null; wait "$POLL_PID" 2>/dev/null || true; POLL_PID=""
  stop_kind
  cp "$DIR_A/duet.log" "$d/a.log"; cp "$DIR_B/duet.log" "$d/b.log"
  gzip -f "$d/leases-a.json" "$d/leases-b.json" 2>/dev/null || true
  [ -f "$d/cli.pcap" ] && python3 "$HERE/handover_summary.py" pcap "$d" > "$d/exchanges.json" || true
  [ "$HANDOVER_PCAP" = keep ] || rm -f "$d/cli.pcap"
  local row; row=$(python3 "$HERE/handover_summary.py" row "$d")
  [ -f "$HCSV" ] || python3 "$HERE/handover_summary.py" header > "$HCSV"
  echo "$row" >> "$HCSV"
  python3 "$HERE/handover_summary.py" timeline "$d" > "$d/timeline.txt" || true
  log "handover $mode $rep: $(python3 "$HERE/handover_summary.py" brief "$d")"
}

poll_loop_at() {  # poll_loop_at FILE INTERVAL
  exec python3 "$HERE/pair_poll.py" duet "$DUET" "$DIR_A" "$DIR_B" "$2" >> "$1"
}

phase_handover() {
  handover_lab
  local rep mode
  for rep in $(seq "$HANDOVER_REPEATS"); do
    for mode in $HANDOVER_MODES; do   # interleaved per repeat
      handover_one "$mode" "$rep" || log "handover $mode $rep: failed to run"
    done
  done
  python3 "$HERE/handover_summary.py" table --csv "$HCSV" || true
}

# ------------------------------------------------------------------ main
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
mkdir -p "$RUN"
if [ "${1:-}" = down ]; then cleanup; echo "cleaned up"; exit 0; fi
[ -x "$DUET" ] || { echo "no $DUET: cargo build --release -p duet" >&2; exit 1; }
[ -x "$KEA_DHCP6" ] || { echo "no $KEA_DHCP6 (Debian kea-dhcp6-server)" >&2; exit 1; }
[ -x "$PERFDHCP" ] || { echo "no $PERFDHCP (Debian kea-admin)" >&2; exit 1; }
mkdir -p "$OUT" "$RAW"
# A private copy: others may rebuild target/release/duet during the run.
cp "$DUET" "$RUN/duet-bin.new" && mv "$RUN/duet-bin.new" "$RUN/duet-bin"
log "duet binary: $DUET (sha256 $(sha256sum "$RUN/duet-bin" | cut -c1-12); tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown))"
DUET="$RUN/duet-bin"
cleanup
trap 'cleanup' EXIT
trap 'exit 130' INT TERM
rm -rf "$RUN/tls"; "$DUET" tls init --out "$RUN/tls" --names dhcp-a,dhcp-b >/dev/null
lab_up
monitor >> "$RAW/monitor.log" 2>&1 & MON_PID=$!
log "stores under $RUN: $(stat -f -c %T "$RUN") ($(df --output=source "$RUN" | tail -1)); phases: $PHASES; kinds: $KINDS"
log "machine: $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg); nice: ${NICE:-0}"
for ph in $PHASES; do
  log "---- phase $ph"
  case $ph in
    sweep) phase_sweep ;;
    latency) phase_latency ;;
    frozen) phase_frozen ;;
    frozen-load) phase_frozen_load ;;
    handover) phase_handover ;;
    *) echo "unknown phase $ph" >&2; exit 2 ;;
  esac
done
log "done; load: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -f "$CSV" ] || [ -f "$LCSV" ] || [ -f "$HCSV" ] && python3 "$HERE/pair_summary.py" --tag "$TAG" --out "$OUT" || true
exit 0
