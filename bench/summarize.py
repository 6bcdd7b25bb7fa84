#!/usr/bin/env python3
"""Summary of bench/standalone.sh: summarize.py [results/standalone.csv ...]

Per server and offered rate, the median over the repeats of: achieved exchanges/s
(perfdhcp's Rate:), drops % = (SA drops + RR drops) / Solicits sent, the server's CPU time
per completed 4-way exchange (server CPU s / Replies received), RR delay, and noise
indicators. Then, per server, the two figures of issue 3:

  clean capacity  = highest offered rate whose median drops are <= 0.05 %
                    (with every lower rate clean too; if a lower rate was not, both are shown)
  CPU per exchange at 2000/s offered (median of the runs)

and the ratios duet / Kea.
"""
import csv
import os
import statistics as st
import sys
from collections import defaultdict

CLEAN = 0.05  # % drops
CPU_AT = "2000"
HERE = os.path.dirname(os.path.abspath(__file__))
files = sys.argv[1:] or [os.path.join(HERE, "results", "standalone.csv")]
rows = defaultdict(list)
order = []
for fn in files:
    for r in csv.DictReader(open(fn)):
        k = (r["server"], r["lease_type"], r["offered"])
        if r["server"] not in order:
            order.append(r["server"])
        rows[k].append(r)


def f(r, k):
    v = r.get(k)
    return float(v) if v not in ("", None) else float("nan")


def med(vals):
    v = [x for x in vals if x == x]
    return st.median(v) if v else float("nan")


def achieved(r):
    # With perfdhcp -W (exit wait) its Rate: line divides by the test period plus the wait;
    # use completed Request/Reply exchanges per second of test period instead.
    if f(r, "exit_wait_us") > 0:
        return f(r, "rr_rcvd") / f(r, "duration")
    return f(r, "rate")


def drop_pct(r):
    sent = f(r, "sa_sent")
    return 100 * (f(r, "sa_drops") + f(r, "rr_drops")) / sent if sent else float("nan")


def us_per_exchange(r):
    n = f(r, "rr_rcvd")
    return 1e6 * f(r, "srv_cpu_s") / n if n else float("nan")


def fmt(x, spec):
    return "-" if x != x else format(x, spec)


print("| server | lease type | offered/s | runs | achieved/s | drops % | server CPU s | CPU µs/exchange "
      "| RR avg / max ms | perfdhcp CPU s | machine busy s | UDP rcvbuf drops srv / cli | duet queue overflow | duet records/commit | log warnings |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
summary = {}
for srv in order:
    keys = sorted((k for k in rows if k[0] == srv), key=lambda k: (k[1], float(k[2])))
    clean, clean_contig, broken = None, None, False
    for k in keys:
        rs = rows[k]
        dp = med([drop_pct(r) for r in rs])
        us = med([us_per_exchange(r) for r in rs])
        commits = med([f(r, "duet_commits") for r in rs])
        recs = med([f(r, "duet_committed_records") for r in rs])
        per_commit = recs / commits if commits == commits and commits else float("nan")
        print(f"| {srv} | {k[1]} | {k[2]} | {len(rs)} | {fmt(med([achieved(r) for r in rs]), '.0f')} | {fmt(dp, '.3f')} "
              f"| {fmt(med([f(r, 'srv_cpu_s') for r in rs]), '.2f')} | {fmt(us, '.0f')} "
              f"| {fmt(med([f(r, 'rr_avg_ms') for r in rs]), '.2f')} / {fmt(med([f(r, 'rr_max_ms') for r in rs]), '.1f')} "
              f"| {fmt(med([f(r, 'perfdhcp_cpu_s') for r in rs]), '.2f')} | {fmt(med([f(r, 'machine_busy_s') for r in rs]), '.2f')} "
              f"| {fmt(med([f(r, 'udp_rcvbuf_errors') for r in rs]), '.0f')} / {fmt(med([f(r, 'cli_udp_rcvbuf_errors') for r in rs]), '.0f')} | {fmt(med([f(r, 'duet_queue_overflow') for r in rs]), '.0f')} "
              f"| {fmt(per_commit, '.1f')} | {sum(int(r['log_warnings'] or 0) for r in rs)} |")
        if dp == dp and dp <= CLEAN:
            clean = int(k[2])
            if not broken:
                clean_contig = int(k[2])
        else:
            broken = True
        if k[2] == CPU_AT:
            summary.setdefault(srv, {})["us"] = us
    summary.setdefault(srv, {})["clean"] = clean
    summary[srv]["clean_contig"] = clean_contig

print()
print(f"| server | clean capacity (≤{CLEAN} % drops) | CPU µs per 4-way exchange at {CPU_AT}/s |")
print("|---|---|---|")
for srv in order:
    s = summary[srv]
    cap = "-" if s["clean"] is None else f"{s['clean']}/s"
    if s["clean"] is not None and s["clean_contig"] != s["clean"]:
        cap += f" (every lower rate clean only up to {s['clean_contig'] or 'none'}/s)"
    print(f"| {srv} | {cap} | {fmt(s.get('us', float('nan')), '.0f')} |")

print()
for d in [s for s in order if s.startswith("duet")]:
    for k in [s for s in order if s.startswith("kea")]:
        a, b = summary[d], summary[k]
        cap = (a["clean"] / b["clean"]) if a["clean"] and b["clean"] else float("nan")
        au, bu = a.get("us", float("nan")), b.get("us", float("nan"))
        us = au / bu if bu == bu and bu else float("nan")
        print(f"{d} / {k}: clean capacity x{fmt(cap, '.2f')}, CPU per exchange x{fmt(us, '.2f')} "
              f"({'-' if us != us else 'less' if us < 1 else 'more'} CPU per exchange than {k})")
    # The bare responder (calibration): what an exchange costs here before any server logic.
    for k in [s for s in order if s.startswith("bare")]:
        au, bu = summary[d].get("us", float("nan")), summary[k].get("us", float("nan"))
        print(f"{d} / {k}: CPU per exchange x{fmt(au / bu if bu == bu and bu else float('nan'), '.2f')}")
