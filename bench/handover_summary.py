#!/usr/bin/env python3
"""The handover phase of bench/pair.sh (issue 26): figures of one run, and the table.

  handover_summary.py header                       the CSV header
  handover_summary.py row DIR                      one CSV row from a run directory (raw-TAG/handover-MODE-REP)
  handover_summary.py brief DIR                    one line for the run's log
  handover_summary.py timeline DIR                 what happened when, seconds from the event
  handover_summary.py tables A.json B.json         compare two `duet ctl leases --json`; exit 0 when they
                                                   agree and nothing is held by two DUIDs
  handover_summary.py table [--csv FILE]           the markdown table (default results/pair-handover.csv)

A run directory holds: meta (key=value, epochs from pair.sh), perfdhcp (with -t 1 reports), probe
(bench/latency.py), status (bench/pair_poll.py every 0.2 s), dhcN/events (dhclient script calls),
dhcN/leases, leases-{a,b}.json.gz, a.log / b.log (duet, both lives of the primary in a.log).

Definitions:
  lost %          perfdhcp (Solicit-Advertise drops + Request-Reply drops) / Solicits sent, over the whole
                  load (HANDOVER_SECONDS, -W 1 s: late Replies are waited for; a Reply later than the drop
                  time of 1 s counts as a drop)
  alloc gap       the probe: the longest time between two consecutive Replies carrying an address
                  (a probe client starts every 0.1 s, sends each message once, waits probe_timeout)
  start gap       the probe: the longest span of client start times none of which got an address,
                  from the last served client's start to the next served client's start
  takeover        from the event (ctl handover issued / SIGKILL) until the first Reply from the secondary
                  to a probe client started after the event
  b state         the secondary's state change after the event, from its log (time from the event)
  normal          from the primary's restart (its exec) until both servers had logged "failover state
                  changed … to=normal" (logs checked every 0.05 s), and the same from the log's timestamps
  dhclients kept  every address / prefix a dhclient was given (BOUND6, RENEW6, REBIND6) is the one it was
                  bound to first, no EXPIRE6 / RELEASE6, and its lease file ends with them
  tables          active bindings (kind, address/prefix, DUID, IAID) equal on both, no address or prefix
                  held by two DUIDs across both, and the dhclients' bindings in both
"""
import csv
import datetime
import gzip
import json
import os
import re
import statistics as st
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import latency  # noqa: E402

FIELDS = [
    "mode", "rep", "rate", "seconds", "at_s", "down_s", "t1", "t2", "mclt", "keepalive",
    "sa_sent", "sa_rcvd", "sa_drops", "rr_sent", "rr_rcvd", "rr_drops", "lost", "lost_pct", "rr_max_ms",
    "lost_window_s", "pcap_sa_lost", "pcap_rr_lost", "pcap_late", "pcap_lost_at_s", "reply_gap_s", "reply_gap_at_s",
    "reply_gap2_s", "reply_gap2_at_s", "first_adv_b_s", "first_reply_a_after_restart_pcap_s", "dumpcap_dropped",
    "probe_n", "probe_ok", "probe_failed", "probe_no_adv", "probe_no_reply",
    "alloc_gap_s", "alloc_gap_at_s", "alloc_gap2_s", "alloc_gap2_at_s", "start_gap_s", "gaps_over_0_5",
    "handover_rc", "handover_cmd_s", "handover_complete_s", "b_state", "b_state_s", "takeover_s",
    "stopped_s", "restart_s", "normal_after_restart_s", "normal_log_s", "a_first_reply_after_restart_s",
    "a_path", "b_path",
    "dhc_bound", "dhc_kept", "dhc_served_after", "dhc_in_tables", "dhc_detail",
    "settled", "tables_agree", "agree_after_load_s", "active_a", "active_b", "only_a", "only_b",
    "dup_holders", "rcvbuf_cli", "rcvbuf_a", "rcvbuf_b", "busy_pct", "load1_start", "load1_end",
    "warn_a", "warn_b", "time",
]


def meta(d):
    m = {}
    for line in open(os.path.join(d, "meta")):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            m[k] = v
    return m


def fl(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def rel(t, t0, spec=".2f"):
    return "" if t is None or t0 is None else format(t - t0, spec)


# ------------------------------------------------------------------ perfdhcp
def perfdhcp(fn):
    """Final statistics, and the -t 1 periodic reports as cumulative (sent, received, drops) per second."""
    out, sec, periodic = {}, None, []
    if not os.path.exists(fn):
        return out, periodic
    for line in open(fn, errors="replace"):
        if "Statistics for: SOLICIT-ADVERTISE" in line:
            sec = "sa"
        elif "Statistics for: REQUEST-REPLY" in line:
            sec = "rr"
        m = re.match(r"^(sent packets|received packets|drops|max delay|avg delay):\s*([0-9.]+)", line)
        if m and sec:
            out[(sec, m.group(1))] = float(m.group(2))
        # periodic: "sent: 1000/990; received: 990/980; drops: 10/10; rejected leases: 0/0"
        m = re.match(r"^sent: (\d+)/(\d+); received: (\d+)/(\d+); drops: (\d+)/(\d+)", line)
        if m:
            periodic.append(tuple(int(x) for x in m.groups()))
    return out, periodic


# ------------------------------------------------------------------ duet logs
TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+(\w+)\s+(.*)$")


def log_events(fn):
    ev = []
    if not os.path.exists(fn):
        return ev
    for line in open(fn, errors="replace"):
        m = TS.match(line.strip())
        if not m:
            continue
        ts, lvl, text = m.groups()
        if "." in ts:
            base, frac = ts.split(".")
            ts = base + "." + frac[:6]
            t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f")
        else:
            t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S")
        t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
        ev.append((t, lvl, text))
    return ev


def state_changes(ev):
    out = []
    for t, _, text in ev:
        if "failover state changed" in text:
            fr = re.search(r"from=(\S+)", text)
            to = re.search(r"to=(\S+)", text)
            out.append((t, fr.group(1) if fr else "?", to.group(1) if to else "?"))
    return out


# ------------------------------------------------------------------ dhclient
def norm_duid(s):
    s = s.strip().strip('"')
    if ":" in s:
        return "".join(f"{int(x, 16):02x}" for x in s.split(":") if x)
    return s.lower()


def dhclient(d, m):
    res = []
    i = 1
    while os.path.isdir(os.path.join(d, f"dhc{i}")):
        c = os.path.join(d, f"dhc{i}")
        evs = []
        for line in open(os.path.join(c, "events")) if os.path.exists(os.path.join(c, "events")) else []:
            p = line.split()
            if len(p) < 2:
                continue
            kv = dict(x.split("=", 1) for x in p[2:] if "=" in x)
            evs.append((float(p[0]), p[1], kv))
        addr = next((k["a"] for _, r, k in evs if r == "BOUND6" and k.get("a")), None)
        pfx = next((k["p"] for _, r, k in evs if r == "BOUND6" and k.get("p")), None)
        kept = addr is not None and pfx is not None
        bad = []
        for t, r, k in evs:
            if r in ("EXPIRE6", "RELEASE6", "STOP6"):
                kept = False
                bad.append(f"{r}@{rel(t, fl(m.get('t_event')), '.1f')}")
            if r in ("BOUND6", "RENEW6", "REBIND6", "REBOOT6"):
                if k.get("a") and k["a"] != addr:
                    kept = False
                    bad.append(f"{r} a={k['a']}")
                if k.get("p") and k["p"] != pfx:
                    kept = False
                    bad.append(f"{r} p={k['p']}")
        lf = open(os.path.join(c, "leases")).read() if os.path.exists(os.path.join(c, "leases")) else ""
        la = re.findall(r"iaaddr ([0-9a-f:]+) \{", lf)
        lp = re.findall(r"iaprefix ([0-9a-f:]+/\d+) \{", lf)
        if (la and la[-1] != addr) or (lp and lp[-1] != pfx):
            kept = False
            bad.append(f"lease file ends with {la[-1] if la else '-'} {lp[-1] if lp else '-'}")
        te = fl(m.get("t_event"))
        after = [(t, r, k) for t, r, k in evs if te is not None and t > te and r in ("RENEW6", "REBIND6")]
        who = {m.get("duid_a"): "a", m.get("duid_b"): "b"}
        # one call per IA: the address's only; runs of the same kind and server as "renew×5:a@+15.8.."
        tle = fl(m.get("t_load_end")) or float("inf")
        runs = []
        for t, r, k in after:
            if not k.get("a") or t > tle:
                continue
            key = (r[:-1].lower(), who.get(norm_duid(k.get("sid", "")), "?"))
            if runs and runs[-1][0] == key:
                runs[-1][2] += 1
            else:
                runs.append([key, t - te, 1])
        served = " ".join(f"{k[0]}{'×' + str(n) if n > 1 else ''}:{k[1]}@{t:+.1f}" for k, t, n in runs)
        mac = f"02:00:00:26:00:{i:02x}"
        res.append({"i": i, "addr": addr, "prefix": pfx, "kept": kept, "bad": bad, "served_after": served,
                    "n_after": len(after), "duid": "00030001" + mac.replace(":", "")})
        i += 1
    return res


# ------------------------------------------------------------------ tables
def load_leases(fn):
    op = gzip.open if fn.endswith(".gz") else open
    with op(fn, "rt") as f:
        txt = f.read()
    return json.loads(txt) if txt.strip() else None


def active(ls):
    return {(l["kind"], l.get("address") or l.get("prefix"), l.get("duid"), l.get("iaid"))
            for l in ls if l["state"] == "active"}


def compare(fa, fb):
    la, lb = load_leases(fa), load_leases(fb)
    a, b = active(la or []), active(lb or [])
    holders = {}
    for k in a | b:
        holders.setdefault((k[0], k[1]), set()).add(k[2])
    dups = [w for w, h in holders.items() if len(h) > 1]
    na = lambda s, k: sum(1 for x in s if x[0] == k)
    return {"agree": int(a == b and not dups and la is not None and lb is not None), "equal": int(a == b), "active_a": len(a), "active_b": len(b),
            "na_a": na(a, "na"), "pd_a": na(a, "pd"), "na_b": na(b, "na"), "pd_b": na(b, "pd"),
            "only_a": len(a - b), "only_b": len(b - a), "dup_holders": len(dups),
            "examples": sorted(a - b)[:3] + sorted(b - a)[:3] + dups[:3]}, a, b


# ------------------------------------------------------------------ probe
def probe(fn, m):
    rows = latency.load(fn) if os.path.exists(fn) else []
    rows.sort(key=lambda r: r["t"])
    te = fl(m.get("t_event"))
    ok = [r for r in rows if r["res"] == "ok"]
    inst = sorted(r["t"] + ((r["sa"] or 0) + (r["rr"] or 0)) / 1000 for r in ok)
    gaps = sorted(((b - a, a) for a, b in zip(inst, inst[1:])), reverse=True)
    sgap, last_ok = 0.0, None
    for r in rows:
        if r["res"] == "ok":
            if last_ok is not None:
                sgap = max(sgap, r["t"] - last_ok)
            last_ok = r["t"]
    s = latency.summary(rows)
    return rows, ok, gaps, sgap, s, te


def first_reply(ok, sid, after):
    c = [r["t"] + ((r["sa"] or 0) + (r["rr"] or 0)) / 1000 for r in ok if r["sid"] == sid and r["t"] >= after]
    return min(c) if c else None


# ------------------------------------------------------------------ perfdhcp's exchanges, from the capture
def pcap_read(fn, mac):
    """(epoch, direction 'out'|'in', msg type, xid, server DUID hex or None, has-address) per DHCPv6 datagram
    of the client namespace's eth0 (mac): what perfdhcp sent and what came back to it."""
    import struct
    mac = bytes.fromhex(mac.replace(":", ""))
    out = []
    with open(fn, "rb") as f:
        gh = f.read(24)
        if len(gh) < 24:
            return out
        magic = struct.unpack("<I", gh[:4])[0]
        e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        nano = struct.unpack(e + "I", gh[:4])[0] == 0xA1B23C4D
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            sec, frac, incl, _ = struct.unpack(e + "IIII", rh)
            data = f.read(incl)
            if len(data) < 66 or data[12:14] != b"\x86\xdd" or data[20] != 17:
                continue
            t = sec + frac / (1e9 if nano else 1e6)
            d = "out" if data[6:12] == mac else "in" if data[0:6] == mac else None
            if d is None:
                continue
            dh = data[62:]
            mt, xid = dh[0], dh[1:4].hex()
            sid, addr, i = None, False, 4
            while i + 4 <= len(dh):
                c, ln = struct.unpack("!HH", dh[i:i + 4])
                if c == 2:
                    sid = dh[i + 4:i + 4 + ln].hex()
                elif c == 3 and ln > 12:
                    addr = addr or b"\x00\x05" in dh[i + 16:i + 4 + ln][:2]
                i += 4 + ln
            out.append((t, d, mt, xid, sid, addr))
    return out


def pcap_analyse(d):
    m = meta(d)
    te, tr = fl(m.get("t_event")), fl(m.get("t_restart"))
    who = {m.get("duid_a"): "a", m.get("duid_b"): "b"}
    pk = pcap_read(os.path.join(d, "cli.pcap"), m["mac_cli"])
    sol, adv, req, rep = {}, {}, {}, {}
    for t, dr, mt, xid, sid, addr in pk:
        if dr == "out" and mt == 1:
            sol.setdefault(xid, t)
        elif dr == "in" and mt == 2:
            adv.setdefault(xid, (t, who.get(sid, "?")))
        elif dr == "out" and mt == 3:
            req.setdefault(xid, (t, who.get(sid, "?")))
        elif dr == "in" and mt == 7:
            rep.setdefault(xid, (t, who.get(sid, "?")))
    lost = []   # (t sent, 'sa'|'rr', addressed to, late answer s or None)
    for x, t in sol.items():
        a = adv.get(x)
        if a is None or a[0] - t > 1.0:
            lost.append((t, "sa", "-", None if a is None else a[0] - t))
    for x, (t, to) in req.items():
        r = rep.get(x)
        if r is None or r[0] - t > 1.0:
            lost.append((t, "rr", to, None if r is None else r[0] - t))
    lost.sort()
    tl, tle = fl(m.get("t_load")), fl(m.get("t_load_end"))

    def gaps(times):
        times = sorted(times)
        g = sorted(((b - a, a) for a, b in zip(times, times[1:])), reverse=True)
        return [(round(l, 4), round(a - te, 4)) for l, a in g[:5]]

    reps = [v[0] for v in rep.values()]
    advs = [v[0] for v in adv.values()]
    fa_b = min((adv[x][0] for x, t in sol.items() if t >= te and x in adv and adv[x][1] == "b"), default=None)
    fr_b = min((rep[x][0] for x, (t, _) in req.items() if t >= te and x in rep and rep[x][1] == "b"), default=None)
    fr_a = min((rep[x][0] for x, (t, _) in req.items() if tr and t >= tr and x in rep and rep[x][1] == "a"), default=None)
    err = open(os.path.join(d, "dumpcap.err")).read() if os.path.exists(os.path.join(d, "dumpcap.err")) else ""
    dropm = re.findall(r"dropped on interface \S+: (\d+)/(\d+)", err)
    return {
        "solicits": len(sol), "advertised": sum(1 for x in sol if x in adv), "requests": len(req),
        "replied": sum(1 for x in req if x in rep),
        "sa_lost": sum(1 for l in lost if l[1] == "sa"), "rr_lost": sum(1 for l in lost if l[1] == "rr"),
        "late": sum(1 for l in lost if l[3] is not None),
        "reply_gaps": gaps(reps), "advertise_gaps": gaps(advs),
        "first_advertise_b_s": None if fa_b is None else round(fa_b - te, 4),
        "first_reply_b_s": None if fr_b is None else round(fr_b - te, 4),
        "first_reply_a_after_restart_s": None if fr_a is None or not tr else round(fr_a - tr, 4),
        "lost": [(round(t - te, 4), k, to, None if late is None else round(late, 3)) for t, k, to, late in lost],
        "dumpcap_dropped": int(dropm[-1][1]) if dropm else None,
        "answered_by": {w: sum(1 for v in rep.values() if v[1] == w) for w in ("a", "b", "?")},
    }


# ------------------------------------------------------------------ one run
def analyse(d):
    m = meta(d)
    te, tr = fl(m.get("t_event")), fl(m.get("t_restart"))
    r = {k: "" for k in FIELDS}
    r.update(mode=m.get("mode"), rep=m.get("rep"), rate=m.get("rate"), seconds=m.get("seconds"),
             at_s=m.get("at"), down_s=m.get("down"), t1=m.get("t1"), t2=m.get("t2"), mclt=m.get("mclt"),
             keepalive=m.get("keepalive"))
    p, periodic = perfdhcp(os.path.join(d, "perfdhcp"))
    g = lambda s, k: p.get((s, k))
    r.update(sa_sent=g("sa", "sent packets"), sa_rcvd=g("sa", "received packets"), sa_drops=g("sa", "drops"),
             rr_sent=g("rr", "sent packets"), rr_rcvd=g("rr", "received packets"), rr_drops=g("rr", "drops"),
             rr_max_ms=g("rr", "max delay"))
    if g("sa", "sent packets"):
        lost = (g("sa", "drops") or 0) + (g("rr", "drops") or 0)
        r["lost"] = int(lost)
        r["lost_pct"] = f"{100 * lost / g('sa', 'sent packets'):.3f}"
    # the seconds (from the -t 1 reports) in which the drop counters moved
    win = [i + 1 for i, (a, b) in enumerate(zip([(0,) * 6] + periodic, periodic)) if b[4] + b[5] > a[4] + a[5]]
    r["lost_window_s"] = " ".join(str(x) for x in win[:12]) + (" …" if len(win) > 12 else "")
    xf = os.path.join(d, "exchanges.json")
    if os.path.exists(xf):
        x = json.load(open(xf))
        r.update(pcap_sa_lost=x["sa_lost"], pcap_rr_lost=x["rr_lost"], pcap_late=x["late"],
                 first_adv_b_s=x["first_advertise_b_s"], first_reply_a_after_restart_pcap_s=x["first_reply_a_after_restart_s"],
                 dumpcap_dropped=x["dumpcap_dropped"])
        if x["reply_gaps"]:
            r["reply_gap_s"], r["reply_gap_at_s"] = x["reply_gaps"][0]
        if len(x["reply_gaps"]) > 1:
            r["reply_gap2_s"], r["reply_gap2_at_s"] = x["reply_gaps"][1]
        # the lost exchanges, clustered: "n×kind->server@t" for runs within 0.5 s
        cl = []
        for t, k, to, late in x["lost"]:
            tag = f"{k}" + (f">{to}" if to != "-" else "") + ("(late)" if late is not None else "")
            if cl and t - cl[-1][1] < 0.5 and cl[-1][2] == tag:
                cl[-1][1], cl[-1][3] = t, cl[-1][3] + 1
            else:
                cl.append([t, t, tag, 1])
        r["pcap_lost_at_s"] = " ".join(f"{n}×{tag}@{a:+.3f}" + (f"..{b:+.3f}" if b > a else "") for a, b, tag, n in cl[:10]) \
            + (" …" if len(cl) > 10 else "")
    rows, ok, gaps, sgap, s, _ = probe(os.path.join(d, "probe"), m)
    r.update(probe_n=s["n"], probe_ok=s["ok"], probe_failed=s["n"] - s["ok"], probe_no_adv=s["no_adv"],
             probe_no_reply=s["no_reply"], start_gap_s=f"{sgap:.2f}")
    if gaps:
        r["alloc_gap_s"], r["alloc_gap_at_s"] = f"{gaps[0][0]:.2f}", rel(gaps[0][1], te)
        if len(gaps) > 1:
            r["alloc_gap2_s"], r["alloc_gap2_at_s"] = f"{gaps[1][0]:.2f}", rel(gaps[1][1], te)
        r["gaps_over_0_5"] = " ".join(f"{l:.2f}@{rel(a, te, '+.1f')}" for l, a in sorted(gaps, key=lambda x: x[1]) if l > 0.5)
    ea, eb = log_events(os.path.join(d, "a.log")), log_events(os.path.join(d, "b.log"))
    sa, sb = state_changes(ea), state_changes(eb)
    r["handover_rc"] = m.get("handover_rc", "")
    r["handover_cmd_s"] = rel(fl(m.get("t_handover_returned")), te, ".3f")
    hc = [t for t, _, x in ea if "handover complete" in x and te and t >= te - 1]
    r["handover_complete_s"] = rel(hc[0], te, ".3f") if hc else ""
    tle = fl(m.get("t_load_end")) or float("inf")
    bx = [(t, to) for t, _, to in sb if te and te - 0.5 <= t <= tle]
    if bx:   # the secondary's first change after the event, and those within 0.5 s of it
        r["b_state"] = "→".join(to for t, to in bx if t - bx[0][0] <= 0.5)
        r["b_state_s"] = rel(bx[0][0], te, ".3f")
    r["b_path"] = " ".join(f"{to}@{rel(t, te, '+.2f')}" for t, to in bx)
    r["a_path"] = " ".join(f"{to}@{rel(t, te, '+.2f')}" for t, _, to in sa if te and te - 0.5 <= t <= tle)
    r["takeover_s"] = rel(first_reply(ok, m.get("duid_b"), te or 0), te, ".3f")
    r["stopped_s"] = rel(fl(m.get("t_stopped")), te)
    r["restart_s"] = rel(tr, te)
    r["normal_after_restart_s"] = rel(fl(m.get("t_normal")), tr)
    nl = [t for t, _, to in sa + sb if to == "normal" and tr and t >= tr]
    r["normal_log_s"] = rel(max(nl), tr) if nl else ""
    r["a_first_reply_after_restart_s"] = rel(first_reply(ok, m.get("duid_a"), tr or 0), tr)
    dh = dhclient(d, m)
    r["dhc_bound"] = f"{sum(1 for c in dh if c['addr'] and c['prefix'])}/{len(dh)}"
    r["dhc_kept"] = f"{sum(1 for c in dh if c['kept'])}/{len(dh)}"
    r["dhc_served_after"] = f"{sum(1 for c in dh if c['served_after'])}/{len(dh)}"
    r["dhc_detail"] = "; ".join(f"h{c['i']}: {c['served_after'] or 'no renewal answered'}"
                                + (f" BAD {c['bad']}" if c["bad"] else "") for c in dh)
    fa, fb = os.path.join(d, "leases-a.json.gz"), os.path.join(d, "leases-b.json.gz")
    if not os.path.exists(fa):
        fa, fb = fa[:-3], fb[:-3]
    if os.path.exists(fa) and os.path.exists(fb):
        c, ta, tb = compare(fa, fb)
        r.update(tables_agree=c["agree"], active_a=f"{c['na_a']}+{c['pd_a']}", active_b=f"{c['na_b']}+{c['pd_b']}",
                 only_a=c["only_a"], only_b=c["only_b"], dup_holders=c["dup_holders"])
        inb = 0
        for cl in dh:
            want = {("na", cl["addr"]), ("pd", cl["prefix"])}
            if all(any((k[0], k[1]) == w and k[2] == cl["duid"] for k in t) for w in want for t in (ta, tb)):
                inb += 1
        r["dhc_in_tables"] = f"{inb}/{len(dh)}"
    r["settled"] = m.get("settled", "")
    r["agree_after_load_s"] = rel(fl(m.get("t_agree")), fl(m.get("t_load_end")), ".1f")
    for k in ("rcvbuf_cli", "rcvbuf_a", "rcvbuf_b", "load1_start", "load1_end"):
        r[k] = m.get(k, "")
    busy, tl, tle = fl(m.get("busy_s")), fl(m.get("t_load")), fl(m.get("t_load_end"))
    if busy is not None and tl and tle:
        r["busy_pct"] = f"{100 * busy / (os.cpu_count() * (tle - tl)):.0f}"
    r["warn_a"] = sum(1 for _, l, _ in ea if l in ("WARN", "ERROR"))
    r["warn_b"] = sum(1 for _, l, _ in eb if l in ("WARN", "ERROR"))
    r["time"] = datetime.datetime.fromtimestamp(fl(m.get("t_load")) or 0).strftime("%Y-%m-%dT%H:%M:%S")
    return r, m, ea, eb, rows, periodic, dh


def timeline(d):
    r, m, ea, eb, rows, periodic, dh = analyse(d)
    te = fl(m["t_event"])
    ev = []
    for k, what in (("t_load", "load starts"), ("t_event", f"EVENT: {m['mode']}"),
                    ("t_handover_returned", f"ctl handover returned (rc {m.get('handover_rc')})"),
                    ("t_stopped", "primary exited"), ("t_restart", "primary started again"),
                    ("t_normal", "both normal (ctl status)"), ("t_load_end", "load over"),
                    ("t_agree", "tables agree")):
        if fl(m.get(k)):
            ev.append((fl(m[k]), "bench", what))
    for who, e in (("a", ea), ("b", eb)):
        for t, lvl, x in e:
            if te - 2 <= t and (lvl in ("WARN", "ERROR") or any(s in x for s in (
                    "state changed", "communications", "handover", "connect", "recover", "partner", "listening", "started"))):
                ev.append((t, who, f"{lvl} {x[:220]}"))
    ok = [x for x in rows if x["res"] == "ok"]
    inst = sorted((x["t"] + ((x["sa"] or 0) + (x["rr"] or 0)) / 1000, x["sid"]) for x in ok)
    for (a, sa), (b, sb) in zip(inst, inst[1:]):
        if b - a > 0.3:
            ev.append((a, "probe", f"last Reply before a gap of {b - a:.2f} s (from {who_sid(m, sa)}; next from {who_sid(m, sb)})"))
    prev = (0,) * 6
    for i, p in enumerate(periodic):
        dd = p[4] + p[5] - prev[4] - prev[5]
        if dd:
            ev.append((fl(m["t_load"]) + i + 1, "perfdhcp", f"drops +{dd} in the second ending here (SA +{p[4] - prev[4]}, RR +{p[5] - prev[5]})"))
        prev = p
    xf = os.path.join(d, "exchanges.json")
    if os.path.exists(xf):
        x = json.load(open(xf))
        for t, k, to, late in x["lost"]:
            ev.append((te + t, "perfdhcp", f"{'Solicit' if k == 'sa' else 'Request to ' + to} sent here: "
                                           + ("never answered" if late is None else f"answered {late:.3f} s later")))
        for l, a in x["reply_gaps"]:
            if l > 0.05:
                ev.append((te + a, "perfdhcp", f"Reply, then none for {l:.3f} s"))
        if x["first_advertise_b_s"] is not None:
            ev.append((te + x["first_advertise_b_s"], "perfdhcp", "first Advertise from b to a Solicit sent after the event"))
    for c in dh:
        for line in open(os.path.join(d, f"dhc{c['i']}", "events")):
            p = line.split()
            if len(p) > 1 and float(p[0]) >= te - 1:
                ev.append((float(p[0]), f"dhc{c['i']}", " ".join(p[1:])[:160]))
    ev.sort()
    out = [f"# {os.path.basename(d)}: seconds from the event ({m['mode']} at {te:.3f})"]
    for t, who, x in ev:
        out.append(f"{t - te:+9.3f}  {who:8s} {x}")
    return "\n".join(out)


def who_sid(m, sid):
    return {m.get("duid_a"): "a", m.get("duid_b"): "b"}.get(sid, sid)


# ------------------------------------------------------------------ table
def table(fn):
    rows = list(csv.DictReader(open(fn)))
    if not rows:
        return
    r0 = rows[0]
    print(f"### Handover ({fn})\n\nperfdhcp {r0['rate']}/s 4-way (-W 1 s) for {r0['seconds']} s + the probe (a new client every "
          f"0.1 s) + dhclient -N -P clients; event at +{r0['at_s']} s of the load, the primary down {r0['down_s']} s, then "
          f"restarted on its store; MCLT {r0['mclt']} s, keepalive {r0['keepalive']} s, T1/T2 {r0['t1']}/{r0['t2']} s. Times in s "
          f"from the event (ctl handover issued / SIGKILL) unless said.\n")
    print("| mode | run | exchanges lost (perfdhcp: SA + RR drops / Solicits) | lost exchanges (capture: kind>server@s) "
          "| longest without a Reply to perfdhcp (at) | longest without an allocation, probe (at) | probe failed / clients "
          "| secondary: state (at) / first Advertise / first probe Reply | ctl handover returned | both NORMAL after the restart (log) "
          "| dhclients kept (renewed after) | tables agree (active NA+PD a / b; only a / b; 2 DUIDs) | CPU busy % | load1 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['rep']} | {r['lost']} / {int(float(r['sa_sent'] or 0))} = {r['lost_pct']} % "
              f"| {r['pcap_lost_at_s'] or 'none'} | {r['reply_gap_s']} ({r['reply_gap_at_s']}) "
              f"| {r['alloc_gap_s']} ({r['alloc_gap_at_s']}) | {r['probe_failed']} / {r['probe_n']} "
              f"| {r['b_state']} ({r['b_state_s']}) / {r['first_adv_b_s']} / {r['takeover_s']} | {r['handover_cmd_s'] or '-'} "
              f"| {r['normal_after_restart_s']} ({r['normal_log_s']}) | {r['dhc_kept']} ({r['dhc_served_after']}) "
              f"| {'yes' if r['tables_agree'] == '1' else 'NO'} ({r['active_a']} / {r['active_b']}; {r['only_a']} / {r['only_b']}; {r['dup_holders']}) "
              f"| {r['busy_pct']} | {r['load1_start']}→{r['load1_end']} |")
    print()
    modes = []
    for r in rows:
        if r["mode"] not in modes:
            modes.append(r["mode"])
    print("| mode | runs | exchanges lost %, median (max) | longest without a Reply to perfdhcp s, median (max) "
          "| longest without an allocation (probe) s, median (max) | secondary's first Advertise s, median "
          "| both NORMAL after the restart s, median (max) | dhclients kept | tables agree |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mo in modes:
        rs = [r for r in rows if r["mode"] == mo]
        v = lambda k: [float(r[k]) for r in rs if r[k] not in ("", None)]
        md = lambda k, sp=".3f": f"{format(st.median(v(k)), sp)} ({format(max(v(k)), sp)})" if v(k) else "-"
        print(f"| {mo} | {len(rs)} | {md('lost_pct')} | {md('reply_gap_s')} | {md('alloc_gap_s', '.2f')} "
              f"| {format(st.median(v('first_adv_b_s')), '.3f') if v('first_adv_b_s') else '-'} | {md('normal_after_restart_s', '.2f')} "
              f"| {', '.join(r['dhc_kept'] for r in rs)} | {sum(r['tables_agree'] == '1' for r in rs)}/{len(rs)} |")
    print("\nTargets (issue 26): exchanges lost ≤ 0.1 %, the longest time no server allocates ≤ 1 s, tables agree.\n")
    for r in rows:
        print(f"- {r['mode']} {r['rep']}: primary {r['a_path']}; secondary {r['b_path']}; probe gaps > 0.5 s: "
              f"{r['gaps_over_0_5'] or 'none'}; perfdhcp drops counted in seconds {r['lost_window_s'] or '-'} of the load; "
              f"dhclients: {r['dhc_detail']}")
    print()


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "header":
        print(",".join(FIELDS))
    elif cmd == "row":
        r = analyse(sys.argv[2])[0]
        w = csv.DictWriter(sys.stdout, FIELDS, lineterminator="\n")
        w.writerow(r)
    elif cmd == "brief":
        r = analyse(sys.argv[2])[0]
        print(f"lost {r['lost']} ({r['lost_pct']} %: {r['pcap_lost_at_s'] or 'none'}), longest without a Reply to perfdhcp "
              f"{r['reply_gap_s']} s at {r['reply_gap_at_s']}, probe: longest without allocation {r['alloc_gap_s']} s at {r['alloc_gap_at_s']}, "
              f"failed {r['probe_failed']}/{r['probe_n']}; secondary {r['b_state']} at +{r['b_state_s']}, first Advertise +{r['first_adv_b_s']} s; "
              f"both normal {r['normal_after_restart_s']} s after the restart, dhclients kept {r['dhc_kept']} "
              f"(renewed after {r['dhc_served_after']}), tables agree {r['tables_agree']} ({r['active_a']} / {r['active_b']}, dups {r['dup_holders']})")
    elif cmd == "pcap":
        print(json.dumps(pcap_analyse(sys.argv[2]), indent=1))
    elif cmd == "timeline":
        print(timeline(sys.argv[2]))
    elif cmd == "tables":
        c, _, _ = compare(sys.argv[2], sys.argv[3])
        print(" ".join(f"{k}={v}" for k, v in c.items() if k != "examples") + (f" e.g. {c['examples']}" if not c["agree"] else ""))
        sys.exit(0 if c["agree"] else 1)
    elif cmd == "table":
        fn = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--csv" else os.path.join(HERE, "results", "pair-handover.csv")
        if os.path.exists(fn):
            table(fn)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
