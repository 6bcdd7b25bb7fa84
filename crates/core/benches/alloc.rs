//! Allocation cost where it could degrade: a pool 99 % full (free space in
//! ~1,000 fragments) and a /64-sized range, against an empty 100,000-address
//! pool. Each iteration takes a free address (B-tree lookup from a random
//! hint) and releases it, so the fill level stays constant. Issue 3: "stays
//! fast with a pool 99 % full and with a /64-sized range".

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use duet_core::alloc::AddressRangeSet;
use std::hint::black_box;
use std::net::Ipv6Addr;

const BASE: u128 = 0x2001_0db8_0001_0000_0000_0000_0001_0000;
const SIZE: u128 = 100_000;

/// xorshift64*: a fixed pseudo-random sequence, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u128 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        u128::from(self.0.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }
}

fn pool(full_percent: u128) -> AddressRangeSet {
    let mut set = AddressRangeSet::new(Ipv6Addr::from(BASE), Ipv6Addr::from(BASE + SIZE - 1));
    let mut rng = Rng(7);
    let target = SIZE * full_percent / 100;
    let mut taken = 0;
    while taken < target {
        let a = Ipv6Addr::from(BASE + rng.next() % SIZE);
        if set.take(a) {
            taken += 1;
        }
    }
    set
}

fn slash_64() -> AddressRangeSet {
    let start = Ipv6Addr::from(BASE & !0xffff_ffff_ffff_ffff);
    let end = Ipv6Addr::from(BASE | 0xffff_ffff_ffff_ffff);
    AddressRangeSet::new(start, end)
}

fn take_and_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc/take_any+release");
    for (name, mut set) in [
        ("100k_empty", pool(0)),
        ("100k_99pct_full", pool(99)),
        ("slash64_empty", slash_64()),
    ] {
        let mut rng = Rng(11);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let a = set.take_any([true, true], rng.next()).expect("a free address");
                black_box(a);
                assert!(set.release(a));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, take_and_release);
criterion_main!(benches);
