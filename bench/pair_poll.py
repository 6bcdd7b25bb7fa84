#!/usr/bin/env python3
"""Failover state of both servers of a pair every INTERVAL s (bench/pair.sh, frozen phases).

  pair_poll.py duet DUET_BIN DIR_A DIR_B INTERVAL      (duet ctl --config DIR/duet.toml status --json)
  pair_poll.py kea  -        DIR_A DIR_B INTERVAL      (Kea status-get over DIR/ctrl.sock)

One line per poll: "<epoch> a=<state>,<partner-state>,<comms-ok>,<unacked> b=<state>,…" (Kea: state
only). A frozen server does not answer: its field is "?" after a 0.3 s timeout. One long-lived
process, so polling costs no interpreter start-ups during the measurement.
"""
import json
import socket
import subprocess
import sys
import time

kind, duet, dir_a, dir_b, interval = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])


def duet_state(d):
    try:
        out = subprocess.run([duet, "ctl", "--config", f"{d}/duet.toml", "status", "--json"],
                             capture_output=True, timeout=0.3).stdout
        r = json.loads(out)["relationships"][0]
        return f"{r['state']},{r.get('partner-state') or '-'},{str(r.get('communications-ok')).lower()},{r.get('unacked-bndupd', 0)}"
    except Exception:
        return "?"


def kea_state(d):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(0.3)
        s.connect(f"{d}/ctrl.sock")
        s.sendall(b'{"command": "status-get"}')
        buf = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
            try:
                v = json.loads(buf)
                break
            except ValueError:
                pass
        s.close()
        return v["arguments"]["high-availability"][0]["ha-servers"]["local"]["state"]
    except Exception:
        return "?"


get = duet_state if kind == "duet" else kea_state
while True:
    t = time.time()
    print(f"{t:.3f} a={get(dir_a)} b={get(dir_b)}", flush=True)
    time.sleep(max(0.0, interval - (time.time() - t)))
