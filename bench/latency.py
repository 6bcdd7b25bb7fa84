#!/usr/bin/env python3
"""Open-loop DHCPv6 probe for Request->Reply latency (bench/pair.sh, issue 6).

  latency.py probe IFACE INTERVAL_S TIMEOUT_S DURATION_S      > probe.log
  latency.py summary FILE [FROM_EPOCH [TO_EPOCH]]              (one line of figures)
  latency.py timeline FILE BIN_S [T0_EPOCH]                    (per-bin table)

probe: every INTERVAL_S a *new* client (random DUID-LL, one IA_NA) starts a 4-way
exchange with ff02::1:2 on IFACE: Solicit, then Request to the first Advertise's server,
then waits for the Reply. Clients start on a fixed schedule whatever happened to earlier
ones (open loop: a Reply that never comes does not hold up later clients; up to
TIMEOUT_S/INTERVAL_S clients are in flight). No retransmissions: each message waits up to
TIMEOUT_S, so a Reply held back for a while shows up as a long rr_ms, and one never sent
as a fail. One line per client, when it finishes:

  <epoch_start> ok|no-adv|no-reply <server-duid-hex|-> <addr|-> sa_ms=<x|-> rr_ms=<x|-> advs=<n> sids=<k>

advs/sids: Advertises received for that Solicit within the timeout, and from how many
distinct servers (a pair in NORMAL must give sids=1: only the primary answers).
This is an extension of ../shared/anchors/kea/probe6.py (the same messages), made
open-loop so that a frozen partner's effect on later clients is visible.
Stops after DURATION_S, or earlier when the file named by $PROBE_STOP exists.
"""
import os
import random
import selectors
import socket
import struct
import sys
import time


def opt(code, data):
    return struct.pack("!HH", code, len(data)) + data


def parse(buf):
    o, i = {}, 4
    while i + 4 <= len(buf):
        c, l = struct.unpack("!HH", buf[i:i + 4])
        o.setdefault(c, buf[i + 4:i + 4 + l])
        i += 4 + l
    return buf[0], buf[1:4], o


def probe(iface, interval, timeout, duration):
    stop = os.environ.get("PROBE_STOP")
    idx = socket.if_nametoindex(iface)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("::", 546))
    s.setblocking(False)
    dst = ("ff02::1:2", 547, 0, idx)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    clients = {}      # xid -> client dict (Solicit xid, then Request xid)
    live = []         # clients not finished
    t_start = time.time()
    p0 = time.perf_counter()
    k = 0

    def finish(c, res):
        c["done"] = True
        sa = f"{c['sa'] * 1000:.3f}" if c.get("sa") is not None else "-"
        rr = c.get("rr")
        if rr is None and c.get("t_req") is not None:
            rr = time.perf_counter() - c["t_req"]  # waited this long, no Reply
        rr = f"{rr * 1000:.3f}" if rr is not None else "-"
        print(f"{c['epoch']:.6f} {res} {c.get('sid', '-')} {c.get('addr', '-')} sa_ms={sa} rr_ms={rr} "
              f"advs={c['advs']} sids={len(c['sids'])}", flush=True)

    while True:
        now = time.perf_counter()
        stopping = now - p0 >= duration or (stop and os.path.exists(stop))
        # start the clients that are due
        while not stopping and p0 + k * interval <= now:
            duid = struct.pack("!HH", 3, 1) + bytes([0x02] + [random.randrange(256) for _ in range(5)])
            iaid = random.randrange(1 << 32)
            xid = os.urandom(3)
            c = {"duid": duid, "iaid": iaid, "xid": xid, "epoch": t_start + k * interval, "advs": 0,
                 "sids": set(), "t_sol": time.perf_counter(), "deadline": time.perf_counter() + timeout,
                 "done": False}
            cid = opt(1, duid)
            msg = bytes([1]) + xid + cid + opt(8, b"\0\0") + opt(3, struct.pack("!III", iaid, 0, 0)) \
                + opt(6, struct.pack("!H", 23))
            c["t_sol"] = time.perf_counter()
            s.sendto(msg, dst)
            clients[xid] = c
            live.append(c)
            k += 1
        # time outs
        now = time.perf_counter()
        for c in live:
            if not c["done"] and now >= c["deadline"]:
                if c.get("t_req") is None:
                    finish(c, "no-adv")
                else:
                    finish(c, "no-reply")
        live = [c for c in live if not c["done"]]
        if stopping and not live:
            break
        # wait for a datagram, the next start or the next deadline
        nxt = [c["deadline"] for c in live]
        if not stopping:
            nxt.append(p0 + k * interval)
        wait = max(0.0, min(nxt) - time.perf_counter()) if nxt else 0.05
        for _ in sel.select(min(wait, 0.05)):
            while True:
                try:
                    buf, _ = s.recvfrom(4096)
                except BlockingIOError:
                    break
                t_rx = time.perf_counter()
                if len(buf) < 4:
                    continue
                t, x, o = parse(buf)
                c = clients.get(x)
                if c is None:
                    continue
                if t == 2 and x == c["xid"] and c.get("t_req") is None:   # Advertise, first one
                    c["advs"] += 1
                    if 2 in o:
                        c["sids"].add(o[2])
                    if c["done"] or 2 not in o or 3 not in o:
                        continue
                    c["sa"] = t_rx - c["t_sol"]
                    c["sid"] = o[2].hex()
                    rx = os.urandom(3)
                    msg = bytes([3]) + rx + opt(1, c["duid"]) + opt(2, o[2]) + opt(8, b"\0\0") + opt(3, o[3])
                    c["xid_req"] = rx
                    clients[rx] = c
                    c["t_req"] = time.perf_counter()
                    c["deadline"] = c["t_req"] + timeout
                    s.sendto(msg, dst)
                elif t == 2:                                                # a later Advertise
                    c["advs"] += 1
                    if 2 in o:
                        c["sids"].add(o[2])
                elif t == 7 and x == c.get("xid_req") and not c["done"]:  # Reply
                    c["rr"] = t_rx - c["t_req"]
                    addr = "-"
                    ia = o.get(3)
                    if ia and len(ia) >= 12:
                        _, _, sub = parse(b"\0\0\0\0" + ia[12:])
                        if 5 in sub:
                            addr = socket.inet_ntop(socket.AF_INET6, sub[5][:16])
                    c["addr"] = addr
                    finish(c, "ok" if addr != "-" else "no-addr")
        # forget finished clients after a while (late Advertises of others are still counted)
        if len(clients) > 4096:
            for x in [x for x, c in clients.items() if c["done"]][:2048]:
                del clients[x]


def load(fn, t_from=None, t_to=None):
    rows = []
    for line in open(fn):
        p = line.split()
        if len(p) < 6 or not p[0].replace(".", "").isdigit():
            continue
        t = float(p[0])
        if t_from is not None and t < t_from:
            continue
        if t_to is not None and t >= t_to:
            continue
        kv = dict(x.split("=", 1) for x in p[4:] if "=" in x)
        f = lambda v: float(v) if v not in (None, "-") else None
        rows.append({"t": t, "res": p[1], "sid": p[2], "sa": f(kv.get("sa_ms")), "rr": f(kv.get("rr_ms")),
                     "sids": int(kv.get("sids", "1"))})
    return rows


def pct(v, q):
    if not v:
        return float("nan")
    v = sorted(v)
    i = min(len(v) - 1, max(0, int(round(q / 100 * (len(v) - 1)))))
    return v[i]


def summary(rows):
    ok = [r for r in rows if r["res"] == "ok"]
    rr = [r["rr"] for r in ok]
    sa = [r["sa"] for r in rows if r["sa"] is not None]
    return {
        "n": len(rows), "ok": len(ok),
        "no_adv": sum(r["res"] == "no-adv" for r in rows),
        "no_reply": sum(r["res"] == "no-reply" for r in rows),
        "multi_sid": sum(r["sids"] > 1 for r in rows),
        "servers": len({r["sid"] for r in ok}),
        "rr_med": pct(rr, 50), "rr_p99": pct(rr, 99), "rr_max": max(rr) if rr else float("nan"),
        "sa_med": pct(sa, 50), "sa_p99": pct(sa, 99),
        "rr_over_100ms": sum(x > 100 for x in rr),
    }


def main():
    if sys.argv[1] == "probe":
        probe(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    elif sys.argv[1] == "summary":
        a = [float(x) for x in sys.argv[3:5]]
        s = summary(load(sys.argv[2], *a))
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()))
    elif sys.argv[1] == "timeline":
        rows = load(sys.argv[2])
        b = float(sys.argv[3])
        t0 = float(sys.argv[4]) if len(sys.argv) > 4 else (rows[0]["t"] if rows else 0)
        bins = {}
        for r in rows:
            bins.setdefault(int((r["t"] - t0) // b), []).append(r)
        ref = "T0_EPOCH" if len(sys.argv) > 4 else "the start of the probe"
        print(f"| client started at t (s from {ref}) | clients | ok | no Reply | no Advertise | RR median ms | RR max ms |")
        print("|---|---|---|---|---|---|---|")
        for i in sorted(bins):
            s = summary(bins[i])
            print(f"| {i * b:+.1f} … {(i + 1) * b:+.1f} | {s['n']} | {s['ok']} | {s['no_reply']} | {s['no_adv']} "
                  f"| {s['rr_med']:.2f} | {s['rr_max']:.2f} |")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
