#![allow(missing_docs)]
//! Decode + encode cost of typical messages: a SOLICIT and a REQUEST as
//! dhclient sends them, the REQUEST inside one RELAY-FORW, and a BNDUPD
//! carrying one IA_NA. Run with `cargo bench -p duet-wire`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use duet_wire::option::{IaAddr, IaNa};
use duet_wire::{
    AbsTime, BindingStatus, ClientMessage, DhcpOption, Duid, FailoverMessage, FailoverMessageType, Message,
    MessageType, RelayMessage, StreamMessage, TransactionId,
};
use std::borrow::Cow;
use std::hint::black_box;
use std::net::Ipv6Addr;

fn client_id() -> DhcpOption<'static> {
    DhcpOption::ClientId(Duid::new(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]).unwrap())
}

fn server_id() -> DhcpOption<'static> {
    DhcpOption::ServerId(
        Duid::new(vec![
            0, 2, 0, 0, 0, 9, 0x0c, 0xc0, 0x84, 0xd3, 0x03, 0x00, 0x09, 0x12,
        ])
        .unwrap(),
    )
}

fn iaaddr(options: Vec<DhcpOption<'static>>) -> DhcpOption<'static> {
    DhcpOption::IaAddr(IaAddr {
        address: "2001:db8:1::101".parse().unwrap(),
        preferred_lifetime: 3000,
        valid_lifetime: 4000,
        options,
    })
}

fn solicit() -> Vec<u8> {
    Message::Client(ClientMessage {
        msg_type: MessageType::Solicit,
        transaction_id: TransactionId::new(0xabcdef).unwrap(),
        options: vec![
            client_id(),
            DhcpOption::ElapsedTime(0),
            DhcpOption::Oro(vec![23, 24, 39, 82]),
            DhcpOption::IaNa(IaNa {
                iaid: 0x0a0b0c0d,
                t1: 0,
                t2: 0,
                options: vec![],
            }),
        ],
    })
    .to_vec()
    .unwrap()
}

fn request_message() -> Message<'static> {
    Message::Client(ClientMessage {
        msg_type: MessageType::Request,
        transaction_id: TransactionId::new(0x123456).unwrap(),
        options: vec![
            client_id(),
            server_id(),
            DhcpOption::ElapsedTime(0),
            DhcpOption::Oro(vec![23, 24, 39, 82]),
            DhcpOption::IaNa(IaNa {
                iaid: 0x0a0b0c0d,
                t1: 3600,
                t2: 5400,
                options: vec![iaaddr(vec![])],
            }),
        ],
    })
}

fn relayed_request() -> Vec<u8> {
    Message::Relay(RelayMessage {
        msg_type: MessageType::RelayForw,
        hop_count: 0,
        link_address: "2001:db8:1::1".parse().unwrap(),
        peer_address: "fe80::1".parse::<Ipv6Addr>().unwrap(),
        options: vec![
            DhcpOption::InterfaceId(Cow::Borrowed(b"eth0")),
            DhcpOption::RelayMsg(Box::new(request_message())),
        ],
    })
    .to_vec()
    .unwrap()
}

fn bndupd() -> Vec<u8> {
    let m = StreamMessage::Failover(FailoverMessage {
        msg_type: FailoverMessageType::BndUpd,
        transaction_id: TransactionId::new(1).unwrap(),
        sent_time: AbsTime(0x3000_0000),
        options: vec![DhcpOption::ClientData(vec![
            client_id(),
            DhcpOption::LqBaseTime(AbsTime(0x3000_0000)),
            DhcpOption::IaNa(IaNa {
                iaid: 0x0a0b0c0d,
                t1: 1800,
                t2: 2880,
                options: vec![iaaddr(vec![
                    DhcpOption::BindingStatus(BindingStatus::Active),
                    DhcpOption::StartTimeOfState(AbsTime(0x3000_0000)),
                    DhcpOption::StateExpirationTime(AbsTime(0x3000_0fa0)),
                    DhcpOption::CltTime(0),
                    DhcpOption::PartnerLifetime(AbsTime(0x3000_1f40)),
                    DhcpOption::ExpirationTime(AbsTime(0x3000_0000)),
                ])],
            }),
        ])],
    });
    let mut buf = vec![0; m.buffer_len()];
    m.emit(&mut buf).unwrap();
    buf
}

fn bench_udp(c: &mut Criterion, name: &str, bytes: &[u8]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    let mut out = vec![0u8; 1500];
    group.bench_function("decode+encode", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(bytes)).unwrap();
            let n = m.emit(&mut out).unwrap();
            black_box(n)
        })
    });
    group.bench_function("decode", |b| b.iter(|| Message::parse(black_box(bytes)).unwrap()));
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_udp(c, "solicit", &solicit());
    bench_udp(c, "request", &request_message().to_vec().unwrap());
    bench_udp(c, "relayed_request", &relayed_request());

    let bytes = bndupd();
    let mut group = c.benchmark_group("bndupd_one_ia_na");
    group.throughput(Throughput::Elements(1));
    let mut out = vec![0u8; 1500];
    group.bench_function("decode+encode", |b| {
        b.iter(|| {
            let m = StreamMessage::parse(black_box(&bytes)).unwrap();
            let n = m.emit(&mut out).unwrap();
            black_box(n)
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| StreamMessage::parse(black_box(&bytes)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
