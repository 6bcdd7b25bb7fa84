//! CPU cost of DHCPv6 processing alone (no sockets, no fsync): a 4-way
//! exchange (Solicit → Advertise, Request → Reply) for a new client each
//! time, in a /64 address range. Run with `cargo bench -p duet-core`.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use duet_core::dhcp::{Dhcpv6Server, Incoming, Outcome, ServerOptions, Subnet};
use duet_core::policy::Standalone;
use duet_core::time::UnixTime;
use duet_wire::option::IaNa;
use duet_wire::{ClientMessage, DhcpOption, Duid, MessageType, TransactionId};
use std::hint::black_box;
use std::time::Duration;

fn server() -> Dhcpv6Server {
    let subnet = Subnet {
        prefix: "2001:db8:1::/64".parse().unwrap(),
        interface: Some("eth0".into()),
        ranges: vec![(
            "2001:db8:1::1:0".parse().unwrap(),
            "2001:db8:1::ffff:ffff:ffff".parse().unwrap(),
        )],
        pd_pools: vec![],
        preferred_lifetime: Duration::from_secs(3000),
        valid_lifetime: Duration::from_secs(4000),
        renew_time: Duration::from_secs(1000),
        rebind_time: Duration::from_secs(2000),
        options: vec![duet_core::config::OptionConfig {
            code: duet_wire::option::code::DNS_SERVERS,
            data: "2001:db8::53"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
                .to_vec(),
            always_send: false,
        }],
        preference: 0,
        rapid_commit: false,
        relationship: None,
        reservations: vec![],
        interface_id: None,
    };
    Dhcpv6Server::new(
        Duid::new(vec![0, 2, 0, 0, 0, 9, 1, 2, 3]).unwrap(),
        vec![subnet],
        ServerOptions::default(),
        1,
    )
}

fn msg(t: MessageType, n: u64, server: Option<&Duid<'static>>) -> Vec<u8> {
    let mut duid = vec![0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d];
    duid.extend_from_slice(&n.to_be_bytes()[2..]);
    let mut m = ClientMessage::new(t, TransactionId::from_low_bits(n as u32));
    m.options.push(DhcpOption::ClientId(Duid::new(duid).unwrap()));
    if let Some(s) = server {
        m.options.push(DhcpOption::ServerId(s.clone()));
    }
    m.options.push(DhcpOption::ElapsedTime(0));
    m.options.push(DhcpOption::Oro(vec![23, 24]));
    m.options.push(DhcpOption::IaNa(IaNa {
        iaid: 1,
        t1: 0,
        t2: 0,
        options: vec![],
    }));
    m.to_vec().unwrap()
}

fn exchange(c: &mut Criterion) {
    let mut srv = server();
    let sid = srv.duid().clone();
    let policy = Standalone::default();
    let mut n = 0u64;
    let mut group = c.benchmark_group("dhcpv6");
    group.throughput(Throughput::Elements(1));
    group.bench_function("four_way_exchange_new_client", |b| {
        b.iter(|| {
            n += 1;
            let now = UnixTime(1_800_000_000 + n / 1000);
            for (t, s) in [(MessageType::Solicit, None), (MessageType::Request, Some(&sid))] {
                let bytes = msg(t, n, s);
                let out = srv.handle(
                    now,
                    Incoming {
                        payload: &bytes,
                        source: "fe80::1".parse().unwrap(),
                        interface: Some("eth0"),
                        multicast: true,
                    },
                    &policy,
                );
                assert!(matches!(out, Outcome::Reply(_)));
                black_box(out);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, exchange);
criterion_main!(benches);
