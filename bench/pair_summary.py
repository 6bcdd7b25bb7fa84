#!/usr/bin/env python3
"""Summary of bench/pair.sh: pair_summary.py [--tag TAG] [--out DIR]

Reads OUT/TAG.csv (sweep), OUT/TAG-latency.csv and OUT/raw-TAG/ (probe logs, frozen runs)
and prints markdown tables:

  sweep       per kind and offered rate, medians over the repeats: achieved/s, drops %
              ((SA drops + RR drops) / Solicits sent), server CPU per completed exchange for
              the primary, the secondary and both (CPU from just before perfdhcp until the
              partners have nothing in flight, i.e. the lazy BNDUPD tail included), RR delay,
              pair states, bindings on each side, what the secondary sent
  headline    clean capacity (highest offered rate with median drops <= 0.05 %), CPU per
              exchange at 2000/s for both servers together, and duet / Kea ratios
  latency     probe Request->Reply median / p99, pooled over the repeats, per kind; with
              partner / alone ratios inside each server and duet / Kea ratios
  frozen      the probe before, during and after SIGSTOP of the secondary / standby
  frozen-load perfdhcp under load with the partner frozen
  handover    OUT/TAG-handover.csv: the planned restart of the primary and the primary killed
              (bench/handover_summary.py)
"""
import argparse
import csv
import glob
import os
import statistics as st
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import latency  # noqa: E402

CLEAN = 0.05
CPU_AT = "2000"

ap = argparse.ArgumentParser()
ap.add_argument("--tag", default="pair")
ap.add_argument("--out", default=os.path.join(HERE, "results"))
a = ap.parse_args()
OUT, TAG = a.out, a.tag


def f(r, k):
    v = r.get(k)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def med(vals):
    v = [x for x in vals if x == x]
    return st.median(v) if v else float("nan")


def fmt(x, spec):
    return "-" if x != x else format(x, spec)


def drop_pct(r):
    s = f(r, "sa_sent")
    return 100 * (f(r, "sa_drops") + f(r, "rr_drops")) / s if s else float("nan")


def achieved(r):
    if f(r, "exit_wait_us") > 0:
        return f(r, "rr_rcvd") / f(r, "duration")
    return f(r, "rate")


def us(r, which):
    n = f(r, "rr_rcvd")
    if not n:
        return float("nan")
    ca = f(r, "cpu_a_s") + (f(r, "cpu_a_tail_s") if f(r, "cpu_a_tail_s") == f(r, "cpu_a_tail_s") else 0)
    cb = f(r, "cpu_b_s") + (f(r, "cpu_b_tail_s") if f(r, "cpu_b_tail_s") == f(r, "cpu_b_tail_s") else 0)
    v = {"a": ca, "b": cb, "both": ca + (cb if cb == cb else 0)}[which]
    return 1e6 * v / n


summary = {}
csvf = os.path.join(OUT, f"{TAG}.csv")
if os.path.exists(csvf):
    rows, order = defaultdict(list), []
    for r in csv.DictReader(open(csvf)):
        k = (r["kind"], r["lease_type"], r["offered"], r.get("exit_wait_us", "0"))
        if r["kind"] not in order:
            order.append(r["kind"])
        rows[k].append(r)
    print(f"### Sweep ({csvf}; medians over the repeats)\n")
    print("| kind | offered/s | runs | achieved/s | drops % | µs/exch primary | µs/exch secondary | µs/exch both "
          "| RR avg / max ms | settle s | states after (a / b) | bindings a / b | secondary replies sent "
          "| UDP rcvbuf drops a / b / cli | perfdhcp CPU s | machine busy s | log warnings |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind in order:
        keys = sorted((k for k in rows if k[0] == kind), key=lambda k: (k[1], k[3], float(k[2])))
        by_wait = defaultdict(list)
        for k in keys:
            by_wait[k[3]].append(k)
        for wait, ks in by_wait.items():
            clean, contig, broken = None, None, False
            for k in ks:
                rs = rows[k]
                dp = med([drop_pct(r) for r in rs])
                states = sorted({f"{r['state_a_after']} / {r['state_b_after']}" for r in rs})
                bind = sorted({f"{r['leases_a']} / {r['leases_b']}" for r in rs})
                w = " (-W)" if wait not in ("0", "") else ""
                print(f"| {kind}{w} | {k[2]} | {len(rs)} | {fmt(med([achieved(r) for r in rs]), '.0f')} | {fmt(dp, '.3f')} "
                      f"| {fmt(med([us(r, 'a') for r in rs]), '.0f')} | {fmt(med([us(r, 'b') for r in rs]), '.0f')} "
                      f"| {fmt(med([us(r, 'both') for r in rs]), '.0f')} "
                      f"| {fmt(med([f(r, 'rr_avg_ms') for r in rs]), '.2f')} / {fmt(med([f(r, 'rr_max_ms') for r in rs]), '.1f')} "
                      f"| {fmt(med([f(r, 'settle_s') for r in rs]), '.1f')} | {', '.join(states)} | {'; '.join(bind) if len(bind) <= 3 else str(len(bind)) + ' different'} "
                      f"| {','.join(sorted({r['b_replies_sent'] or '-' for r in rs}))} "
                      f"| {fmt(med([f(r, 'rcvbuf_a') for r in rs]), '.0f')} / {fmt(med([f(r, 'rcvbuf_b') for r in rs]), '.0f')} / {fmt(med([f(r, 'rcvbuf_cli') for r in rs]), '.0f')} "
                      f"| {fmt(med([f(r, 'perfdhcp_cpu_s') for r in rs]), '.2f')} | {fmt(med([f(r, 'machine_busy_s') for r in rs]), '.1f')} "
                      f"| {sum(int(r['log_warnings'] or 0) for r in rs)} |")
                if dp == dp and dp <= CLEAN:
                    clean = int(k[2])
                    if not broken:
                        contig = int(k[2])
                else:
                    broken = True
                if k[2] == CPU_AT:
                    summary.setdefault((kind, wait), {})["us"] = med([us(r, "both") for r in rs])
                    summary[(kind, wait)]["us_a"] = med([us(r, "a") for r in rs])
                    summary[(kind, wait)]["us_b"] = med([us(r, "b") for r in rs])
            summary.setdefault((kind, wait), {})["clean"] = clean
            summary[(kind, wait)]["contig"] = contig
    print()
    print(f"### Headline (clean = highest offered rate with ≤ {CLEAN} % drops; CPU at {CPU_AT}/s offered, both servers)\n")
    print("| kind | clean capacity | CPU µs per exchange, both servers (primary + secondary) |")
    print("|---|---|---|")
    for (kind, wait), s in summary.items():
        cap = "-" if s["clean"] is None else f"{s['clean']}/s"
        if s["clean"] is not None and s["contig"] != s["clean"]:
            cap += f" (every lower rate clean only up to {s['contig'] or 'none'}/s)"
        w = " (-W)" if wait not in ("0", "") else ""
        print(f"| {kind}{w} | {cap} | {fmt(s.get('us', float('nan')), '.0f')} "
              f"({fmt(s.get('us_a', float('nan')), '.0f')} + {fmt(s.get('us_b', float('nan')), '.0f')}) |")
    for (kind, wait), s in summary.items():
        if not kind.startswith("duet"):
            continue
        for (k2, w2), s2 in summary.items():
            if k2.startswith("kea") and w2 == wait:
                cap = s["clean"] / s2["clean"] if s["clean"] and s2["clean"] else float("nan")
                u = s.get("us", float("nan")) / s2.get("us", float("nan")) if s2.get("us") else float("nan")
                print(f"\n{kind} / {k2}{' (-W)' if wait not in ('0', '') else ''}: clean capacity ×{fmt(cap, '.2f')}, "
                      f"CPU per exchange ×{fmt(u, '.2f')}")
    print()

raw = os.path.join(OUT, f"raw-{TAG}")
lat_files = defaultdict(list)
for fn in sorted(glob.glob(os.path.join(raw, "lat-*.log"))):
    kind = os.path.basename(fn)[4:].rsplit("-", 1)[0]
    lat_files[kind].append(fn)
if lat_files:
    print(f"### Latency (latency.py probe: a fresh client every 0.1 s, full 4-way exchange; pooled over {raw}/lat-*.log)\n")
    print("| kind | runs | exchanges | ok | no Reply | Advertises from 2 servers | RR median ms | RR p99 ms | RR max ms | SA median ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    L = {}
    for kind in ["duet-alone", "duet-pair", "duet-pair-bshm", "duet-alone-shm", "duet-pair-shm", "duet-pair-shm-nocli", "kea-alone", "kea-ha"] + sorted(lat_files):
        if kind not in lat_files or kind in L:
            continue
        rs = [r for fn in lat_files[kind] for r in latency.load(fn)]
        s = latency.summary(rs)
        L[kind] = s
        print(f"| {kind} | {len(lat_files[kind])} | {s['n']} | {s['ok']} | {s['no_reply']} | {s['multi_sid']} "
              f"| {s['rr_med']:.3f} | {s['rr_p99']:.3f} | {s['rr_max']:.2f} | {s['sa_med']:.3f} |")
    print()
    for p, al in (("duet-pair", "duet-alone"), ("duet-pair-bshm", "duet-alone"), ("duet-pair-shm", "duet-alone-shm"), ("duet-pair-shm-nocli", "duet-alone-shm"),
                  ("kea-ha", "kea-alone")):
        if p in L and al in L:
            print(f"- {p} / {al}: RR median ×{L[p]['rr_med'] / L[al]['rr_med']:.2f}, p99 ×{L[p]['rr_p99'] / L[al]['rr_p99']:.2f}")
    if "duet-pair" in L and "kea-ha" in L:
        print(f"- duet-pair / kea-ha: RR median ×{L['duet-pair']['rr_med'] / L['kea-ha']['rr_med']:.2f}, "
              f"p99 ×{L['duet-pair']['rr_p99'] / L['kea-ha']['rr_p99']:.2f}")
    print()

lcsv = os.path.join(OUT, f"{TAG}-latency.csv")
if os.path.exists(lcsv):
    fr = [r for r in csv.DictReader(open(lcsv)) if r["kind"].startswith("frozen")]
    if fr:
        print(f"### Partner frozen (SIGSTOP of the secondary / standby; {lcsv})\n")
        print("| run | segment | s | exchanges | ok | no Reply | no Advertise | RR median ms | RR p99 ms | RR max ms | RR > 100 ms | servers answering |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in fr:
            run, seg = r["kind"].rsplit("-", 1)
            print(f"| {run} | {seg} | {r['seconds']} | {r['n']} | {r['ok']} | {r['no_reply']} | {r['no_adv']} "
                  f"| {f(r, 'rr_med_ms'):.2f} | {f(r, 'rr_p99_ms'):.2f} | {f(r, 'rr_max_ms'):.2f} | {r['rr_over_100ms']} | {r['servers']} |")
        print()
for fn in sorted(glob.glob(os.path.join(raw, "frozen*.summary"))):
    print(f"- {os.path.basename(fn)}: " + " ".join(l.strip("# \n") for l in open(fn) if l.startswith("#")))
for fn in sorted(glob.glob(os.path.join(raw, "frozen-load-*.perfdhcp"))):
    sec, vals = None, {}
    for line in open(fn):
        if "SOLICIT-ADVERTISE" in line:
            sec = "sa"
        elif "REQUEST-REPLY" in line:
            sec = "rr"
        for key in ("sent packets", "received packets", "drops", "avg delay", "max delay"):
            if line.startswith(key + ":") and sec:
                vals[(sec, key)] = line.split(":", 1)[1].strip()
        if line.startswith("udp rcvbuf"):
            vals["udp"] = line.strip()
    print(f"- {os.path.basename(fn)}: Request/Reply sent {vals.get(('rr', 'sent packets'))}, received "
          f"{vals.get(('rr', 'received packets'))}, drops {vals.get(('rr', 'drops'))}, avg {vals.get(('rr', 'avg delay'))}, "
          f"max {vals.get(('rr', 'max delay'))}; Solicit/Advertise drops {vals.get(('sa', 'drops'))}; {vals.get('udp', '')}")

hcsv = os.path.join(OUT, f"{TAG}-handover.csv")
if os.path.exists(hcsv):
    print()
    import handover_summary  # noqa: E402
    handover_summary.table(hcsv)
