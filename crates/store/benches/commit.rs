#![allow(missing_docs)]
//! Cost of one durable group commit of 1, 16 and 256 lease records:
//! `JournalStore::commit` (one write + fdatasync, compaction amortised at
//! the default threshold) against a redb 3 write transaction with the
//! default durability (`Immediate`) inserting the same records (key =
//! postcard(LeaseKey), value = postcard(Lease)). Each iteration updates the
//! same leases (a new CLTT), as renewals do. Files live under the target
//! directory, on a real disk (not tmpfs), so the fsyncs are real.
//!
//! Run with `cargo bench -p duet-store`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use duet_core::lease::{BindingKey, Lease, LeaseKey, LeaseKind, LeaseState};
use duet_core::store::{Batch, LeaseStore};
use duet_core::time::UnixTime;
use duet_store::JournalStore;
use redb::{Database, TableDefinition};
use std::hint::black_box;
use std::net::Ipv6Addr;

const LEASES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("leases");

fn lease(n: u16, t: u64) -> Lease {
    let key = LeaseKey::address(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, n));
    Lease {
        binding: Some(BindingKey {
            duid: vec![
                0,
                1,
                0,
                1,
                0x2b,
                0x3c,
                0x4d,
                0x5e,
                0x52,
                0x54,
                0,
                0x12,
                (n >> 8) as u8,
                n as u8,
            ],
            kind: LeaseKind::Na,
            iaid: u32::from(n),
        }),
        preferred_until: UnixTime(t + 3000),
        valid_until: UnixTime(t + 4000),
        t1: 1500,
        t2: 2400,
        cltt: UnixTime(t),
        ..Lease::free(key, LeaseState::Active, UnixTime(t))
    }
}

fn batch(n: u16, t: u64) -> Vec<Lease> {
    (0..n).map(|i| lease(i, t)).collect()
}

fn commit(c: &mut Criterion) {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut g = c.benchmark_group("commit");
    for n in [1u16, 16, 256] {
        g.throughput(Throughput::Elements(u64::from(n)));

        let dir = tempfile::tempdir_in(base).unwrap();
        let mut store = JournalStore::open(dir.path()).unwrap();
        let mut t = 1_700_000_000u64;
        g.bench_with_input(BenchmarkId::new("journal", n), &n, |b, &n| {
            b.iter(|| {
                t += 1;
                let batch = Batch {
                    leases: batch(n, t),
                    meta: Vec::new(),
                };
                store.commit(black_box(&batch)).unwrap();
            })
        });
        drop(store);

        let dir = tempfile::tempdir_in(base).unwrap();
        let db = Database::create(dir.path().join("leases.redb")).unwrap();
        g.bench_with_input(BenchmarkId::new("redb", n), &n, |b, &n| {
            b.iter(|| {
                t += 1;
                let leases = batch(n, t);
                let txn = db.begin_write().unwrap();
                {
                    let mut table = txn.open_table(LEASES).unwrap();
                    for l in black_box(&leases) {
                        let k = postcard::to_allocvec(&l.key).unwrap();
                        let v = postcard::to_allocvec(l).unwrap();
                        table.insert(k.as_slice(), v.as_slice()).unwrap();
                    }
                }
                txn.commit().unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, commit);
criterion_main!(benches);
