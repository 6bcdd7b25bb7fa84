#!/usr/bin/env python3
"""Where duet's CPU goes, from a perf profile with call graphs:

    perf script -i perf.data -F comm,tid,ip,sym | python3 bench/perf_breakdown.py

Each sample is put in one category by the first rule that matches a frame of its stack
(fdatasync before futex before epoll ..., user-space processing last), and counted per thread
(duet-bin = the processing task on the runtime's block_on thread, tokio-rt-worker = the UDP
receive tasks, store-writer = group commit + sending the replies)."""
import sys, re, collections
cats = collections.Counter(); threads = collections.Counter(); both = collections.Counter()
total = 0
def classify(frames):
    s = " ".join(frames)
    if "ext4_sync_file" in s or "fdatasync" in s or "jbd2" in s or "file_write_and_wait" in s: return "fdatasync (journal commit)"
    if "ksys_write" in s or "vfs_write" in s: return "write() journal record"
    if "__x64_sys_futex" in s or "futex_wait" in s or "futex_wake" in s: return "futex (thread park/unpark, channel wake-ups)"
    if "epoll_wait" in s: return "epoll_wait (tokio idle/park)"
    if "__sys_recvmsg" in s or "recvmsg" in s: return "recvmsg"
    if "__sys_sendmsg" in s or "sendmsg" in s: return "sendmsg (reply)"
    if "clock_gettime" in s or "clock_nanosleep" in s: return "clock"
    if "duet_core" in s or "duet_wire" in s or "duet_store" in s: 
        if "duet_store" in s or "postcard" in s or "encode_record" in s: return "store encode (postcard/crc) + HashMap"
        return "duet_core/wire processing (decode, allocate, lease db, encode)"
    if "malloc" in s or "free" in s or "alloc::" in s: return "allocation (other)"
    if "tokio" in s: return "tokio runtime"
    if any(f.startswith("[k]") or "kernel" in f for f in frames): return "kernel other"
    return "other user"
cur = None; frames = []
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        if cur is not None:
            c = classify(frames); cats[c] += 1; threads[cur] += 1; both[(cur, c)] += 1; total += 1
        cur = None; frames = []; continue
    if cur is None and not line.startswith((" ", "\t")):
        cur = re.sub(r"\s+\d+.*", "", line.strip()) or "?"
        m = re.match(r"^\s*(\S.*?)\s+(\d+)\s", line)
        cur = m.group(1) if m else line.split()[0]
    else:
        parts = line.strip().split(None, 1)
        frames.append(parts[1] if len(parts) > 1 else parts[0])
print(f"samples: {total}")
print("\nby thread:")
for t, n in threads.most_common(): print(f"  {100*n/total:5.1f}%  {t}")
print("\nby category:")
for c, n in cats.most_common(): print(f"  {100*n/total:5.1f}%  {c}")
print("\nthread x category (>=1%):")
for (t, c), n in both.most_common():
    if 100*n/total >= 1: print(f"  {100*n/total:5.1f}%  {t:20s} {c}")
