//! The kernel filter, run two ways: in a classic BPF interpreter written
//! here (every verdict, and no load ever outside the datagram: the kernel
//! would discard the datagram), and attached to real loopback sockets (the
//! kernel's offsets are the ones assumed).

use super::*;
use duet_wire::{ClientMessage, DhcpOption, Duid, MessageType, TransactionId};
use std::net::{Ipv6Addr, UdpSocket};
use std::time::Duration;

const QUIET: u32 = 3;
const OURS: &[u8] = &[0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const THEIRS: &[u8] = &[0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17];

/// Quiet interfaces, no quiet prefix.
fn links(ifindexes: &[u32]) -> Quiet {
    Quiet {
        ifindexes: ifindexes.to_vec(),
        prefixes: vec![],
        rescue_after: None,
    }
}

/// Quiet prefixes, no quiet interface.
fn prefixes(p: &[&str]) -> Quiet {
    Quiet {
        ifindexes: vec![],
        prefixes: p.iter().map(|p| p.parse().unwrap()).collect(),
        rescue_after: None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    Discard,
}

/// A load outside the datagram: the kernel ends the filter and discards.
#[derive(Debug, PartialEq, Eq)]
struct OutOfBounds(u32);

/// Runs `prog` on a UDP datagram `udp` (header included) that arrived on
/// `ifindex` from `source`, as the kernel's classic BPF would.
fn run(prog: &[Insn], udp: &[u8], ifindex: u32, source: Ipv6Addr) -> Result<Verdict, OutOfBounds> {
    let mut net = vec![0x60, 0, 0, 0, 0, 0, 17, 64];
    net.extend_from_slice(&source.octets());
    net.extend_from_slice(&[0; 16]);
    let load = |at: u32, size: u32| -> Result<u32, OutOfBounds> {
        let (bytes, off) = if (NET_SOURCE - 8..AD_IFINDEX - 8).contains(&at) {
            (&net[..], at - (NET_SOURCE - 8))
        } else {
            (udp, at)
        };
        let start = off as usize;
        let b = bytes.get(start..start + size as usize).ok_or(OutOfBounds(at))?;
        Ok(b.iter().fold(0, |v, x| (v << 8) | u32::from(*x)))
    };
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    // The kernel refuses a program that may read scratch memory before
    // writing it; so does this interpreter, on the path taken.
    let mut mem: [Option<u32>; 16] = [None; 16];
    let len = udp.len() as u32;
    loop {
        let i = prog[pc];
        pc += 1;
        let size = |code: u16| match code & 0x18 {
            W => 4,
            H => 2,
            _ => 1,
        };
        match (i.code & 0x07, i.code & 0xe0) {
            (LD, ABS) if i.k == AD_IFINDEX => a = ifindex,
            (LD, ABS) => a = load(i.k, size(i.code))?,
            (LD, IND) => a = load(x.wrapping_add(i.k), size(i.code))?,
            (LD, LEN) => a = len,
            (LD, MEM) => a = mem[i.k as usize].expect("scratch memory read before written"),
            (LDX, IMM) => x = i.k,
            (LDX, MEM) => x = mem[i.k as usize].expect("scratch memory read before written"),
            (ST, _) => mem[i.k as usize] = Some(a),
            (STX, _) => mem[i.k as usize] = Some(x),
            (ALU, _) => {
                let v = if i.code & X != 0 { x } else { i.k };
                a = match i.code & 0xf0 {
                    ADD => a.wrapping_add(v),
                    SUB => a.wrapping_sub(v),
                    AND => a & v,
                    op => panic!("ALU op {op:#x}"),
                }
            }
            (JMP, _) if i.code & 0xf0 == JA => pc += i.k as usize,
            (JMP, _) => {
                let v = if i.code & X != 0 { x } else { i.k };
                let taken = match i.code & 0xf0 {
                    JEQ => a == v,
                    JGE => a >= v,
                    op => panic!("JMP op {op:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            (RET, _) => {
                return Ok(if i.k == 0 {
                    Verdict::Discard
                } else {
                    Verdict::Accept
                })
            }
            (MISC, _) if i.code & 0xf8 == TXA => a = x,
            (MISC, _) => x = a,
            other => panic!("opcode {other:?}"),
        }
    }
}

fn link_local() -> Ipv6Addr {
    "fe80::1234".parse().unwrap()
}

/// A client message of type `t` with `before` padding options ahead of an
/// optional Server Identifier `server`, as a UDP datagram.
fn udp(t: MessageType, server: Option<&[u8]>, before: usize) -> Vec<u8> {
    let mut m = ClientMessage::new(t, TransactionId::from_low_bits(7));
    m.options.push(DhcpOption::ClientId(
        Duid::new(vec![0, 3, 0, 1, 1, 2, 3, 4, 5, 6]).unwrap(),
    ));
    for _ in 0..before {
        m.options.push(DhcpOption::ElapsedTime(0));
    }
    if let Some(s) = server {
        m.options
            .push(DhcpOption::ServerId(Duid::new(s.to_vec()).unwrap()));
    }
    datagram(&m.to_vec().unwrap())
}

fn datagram(payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0x02, 0x22, 0x02, 0x23];
    d.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

fn verdict(d: &[u8]) -> Verdict {
    let prog = program(&links(&[7, QUIET]), OURS).unwrap();
    run(&prog, d, QUIET, link_local()).unwrap()
}

#[test]
fn messages_no_server_answers_in_renew_responsive_are_discarded() {
    use MessageType as T;
    for t in [T::Solicit, T::Confirm, T::Rebind] {
        assert_eq!(verdict(&udp(t, None, 0)), Verdict::Discard, "{t:?}");
    }
    for t in [
        T::Request,
        T::Renew,
        T::Release,
        T::Decline,
        T::InformationRequest,
    ] {
        assert_eq!(
            verdict(&udp(t, Some(THEIRS), 0)),
            Verdict::Discard,
            "{t:?} for another server"
        );
        assert_eq!(verdict(&udp(t, Some(OURS), 0)), Verdict::Accept, "{t:?} for us");
        assert_eq!(
            verdict(&udp(t, Some(&OURS[..10]), 0)),
            Verdict::Discard,
            "{t:?}, shorter id"
        );
    }
}

#[test]
fn everything_else_is_passed_to_duet() {
    use MessageType as T;
    // Without a Server Identifier: duet counts it (invalid, or an
    // Information-request for any server).
    assert_eq!(verdict(&udp(T::Request, None, 0)), Verdict::Accept);
    assert_eq!(verdict(&udp(T::InformationRequest, None, 0)), Verdict::Accept);
    // Types a server never answers, and server messages: duet counts them.
    assert_eq!(verdict(&udp(T::Advertise, Some(THEIRS), 0)), Verdict::Accept);
    assert_eq!(verdict(&udp(T::Reply, Some(THEIRS), 0)), Verdict::Accept);
    // Relayed: the subnet is the relay's, not the interface's.
    let inner = ClientMessage::new(T::Solicit, TransactionId::from_low_bits(1))
        .to_vec()
        .unwrap();
    let mut relay = vec![12, 0];
    relay.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(4));
    relay.extend_from_slice(&link_local().octets());
    relay.extend_from_slice(&9u16.to_be_bytes());
    relay.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    relay.extend_from_slice(&inner);
    assert_eq!(verdict(&datagram(&relay)), Verdict::Accept);
    // Short datagrams.
    for n in 0..4 {
        assert_eq!(
            verdict(&datagram(&[1, 0, 0][..n.min(3)])),
            Verdict::Accept,
            "{n} bytes"
        );
    }
}

#[test]
fn the_source_address_decides_by_interface_or_by_quiet_prefix() {
    let prog = program(&links(&[QUIET]), OURS).unwrap();
    let solicit = udp(MessageType::Solicit, None, 0);
    assert_eq!(run(&prog, &solicit, QUIET + 1, link_local()), Ok(Verdict::Accept));
    // A global source selects a subnet by its address: only a quiet
    // prefix counts, whatever the interface.
    let global: Ipv6Addr = "2001:db8:1::5".parse().unwrap();
    assert_eq!(run(&prog, &solicit, QUIET, global), Ok(Verdict::Accept));
    let prog = program(&prefixes(&["2001:db8:1::/64"]), OURS).unwrap();
    assert_eq!(run(&prog, &solicit, 99, global), Ok(Verdict::Discard));
    assert_eq!(run(&prog, &solicit, QUIET, link_local()), Ok(Verdict::Accept));
    let other: Ipv6Addr = "2001:db8:2::5".parse().unwrap();
    assert_eq!(run(&prog, &solicit, 99, other), Ok(Verdict::Accept));
    assert_eq!(program(&Quiet::default(), OURS), Err(FilterError::Nothing));
}

#[test]
fn the_server_identifier_is_looked_for_among_the_first_options_only() {
    // The client id is option 1; MAX_OPTIONS - 2 more keep the server id in reach.
    let reach = MAX_OPTIONS - 2;
    assert_eq!(
        verdict(&udp(MessageType::Request, Some(THEIRS), reach)),
        Verdict::Discard
    );
    assert_eq!(
        verdict(&udp(MessageType::Request, Some(THEIRS), reach + 1)),
        Verdict::Accept
    );
}

#[test]
fn truncated_datagrams_never_load_outside_and_are_passed_on() {
    let prog = program(&links(&[QUIET]), OURS).unwrap();
    for d in [
        udp(MessageType::Request, Some(THEIRS), 3),
        udp(MessageType::Renew, Some(OURS), 0),
    ] {
        // The Server Identifier is the last option: every cut leaves it
        // incomplete, and only a whole one of another server discards.
        for n in 0..d.len() {
            let v = run(&prog, &d[..n], QUIET, link_local()).unwrap_or_else(|e| panic!("{n} bytes: {e:?}"));
            assert_eq!(v, Verdict::Accept, "{n} of {} bytes", d.len());
        }
    }
}

#[test]
fn random_datagrams_never_load_outside() {
    let prog = program(&links(&[QUIET]), OURS).unwrap();
    let rescuing = program(&rescue(links(&[QUIET]), 300), OURS).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..100_000 {
        let n = (next() % 120) as usize;
        let mut payload: Vec<u8> = (0..n).map(|_| next() as u8).collect();
        // Mostly the message types the filter parses, with short options.
        if let Some(t) = payload.first_mut() {
            *t = [1, 3, 5, 8, 9, 11, 12, 2, 6, 4][(next() % 10) as usize];
        }
        for b in payload.iter_mut().skip(4).step_by(3) {
            *b &= 0x03;
        }
        // Often a Server Identifier of our DUID's length first, else often
        // an Elapsed Time, of its length or not.
        if next() % 4 == 0 && payload.len() >= 8 {
            payload[4..8].copy_from_slice(&[0, 2, 0, OURS.len() as u8]);
        } else if next() % 3 == 0 && payload.len() >= 8 {
            payload[4..8].copy_from_slice(&[0, 8, 0, (next() % 4) as u8]);
        }
        let d = datagram(&payload);
        if let Err(e) = run(&prog, &d, QUIET, link_local()) {
            panic!("{e:?} on {d:02x?}");
        }
        // Rescue only ever passes on more.
        match run(&rescuing, &d, QUIET, link_local()) {
            Err(e) => panic!("{e:?} on {d:02x?}, rescuing"),
            Ok(Verdict::Discard) => assert_eq!(
                run(&prog, &d, QUIET, link_local()),
                Ok(Verdict::Discard),
                "{d:02x?}"
            ),
            Ok(Verdict::Accept) => {}
        }
    }
}

#[test]
fn every_duid_length_compares_byte_for_byte() {
    for len in 1..=130usize {
        let ours: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
        let prog = program(&links(&[1, 2, 3, 4, 5, 6, 7, 8]), &ours).unwrap();
        let req = |id: &[u8]| {
            let mut p = vec![3, 0, 0, 1, 0, 2];
            p.extend_from_slice(&(id.len() as u16).to_be_bytes());
            p.extend_from_slice(id);
            datagram(&p)
        };
        assert_eq!(
            run(&prog, &req(&ours), 8, link_local()),
            Ok(Verdict::Accept),
            "{len}"
        );
        for flip in [0, len / 2, len - 1] {
            let mut other = ours.clone();
            other[flip] ^= 1;
            assert_eq!(
                run(&prog, &req(&other), 8, link_local()),
                Ok(Verdict::Discard),
                "{len} {flip}"
            );
        }
    }
}

// ------------------------------------------------------------ the kernel

/// A receiving socket on ::1 with `prog` attached, and a socket sending to it.
fn kernel_pair(prog: &[Insn]) -> (UdpSocket, UdpSocket) {
    let rx = UdpSocket::bind("[::1]:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    apply(&rx, Some(prog)).unwrap();
    let tx = UdpSocket::bind("[::1]:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    (rx, tx)
}

/// The filter for a "quiet" loopback `quiet` whose "link-local" test is
/// replaced by ::/16 (the first 16 bits of ::1).
fn quiet_loopback(quiet: u32) -> Vec<Insn> {
    build(&links(&[quiet]), OURS, (0xffff, 0)).unwrap()
}

/// Sends `payload`, then a marker; returns whether `payload` arrived
/// (the marker always does, so nothing is waited for in vain).
fn arrives(rx: &UdpSocket, tx: &UdpSocket, payload: &[u8]) -> bool {
    let marker = udp_payload(MessageType::Request, Some(OURS));
    tx.send(payload).unwrap();
    tx.send(&marker).unwrap();
    let mut buf = [0u8; 1500];
    let n = rx.recv(&mut buf).expect("the marker always arrives");
    if buf[..n] == *payload {
        assert_eq!(rx.recv(&mut buf).unwrap(), marker.len());
        true
    } else {
        assert_eq!(&buf[..n], &marker[..]);
        false
    }
}

fn udp_payload(t: MessageType, server: Option<&[u8]>) -> Vec<u8> {
    udp(t, server, 1)[8..].to_vec()
}

#[test]
fn the_kernel_discards_what_the_interpreter_discards() {
    let lo = nix::net::if_::if_nametoindex("lo").unwrap();
    let (rx, tx) = kernel_pair(&quiet_loopback(lo));
    assert!(!arrives(&rx, &tx, &udp_payload(MessageType::Solicit, None)));
    assert!(!arrives(
        &rx,
        &tx,
        &udp_payload(MessageType::Request, Some(THEIRS))
    ));
    assert!(arrives(&rx, &tx, &udp_payload(MessageType::Renew, Some(OURS))));
    assert!(arrives(&rx, &tx, &udp_payload(MessageType::Request, None)));
    // Detached: everything arrives again.
    apply(&rx, None).unwrap();
    assert!(arrives(&rx, &tx, &udp_payload(MessageType::Solicit, None)));
    apply(&rx, None).unwrap();
}

#[test]
fn the_kernel_filters_only_on_the_quiet_interface() {
    let lo = nix::net::if_::if_nametoindex("lo").unwrap();
    let (rx, tx) = kernel_pair(&quiet_loopback(lo + 1000));
    assert!(arrives(&rx, &tx, &udp_payload(MessageType::Solicit, None)));
}

#[test]
fn the_network_header_is_where_the_source_test_reads_it() {
    // NET_SOURCE - 8 is the IPv6 header; its byte 6 is the next header (17,
    // UDP). A filter that discards on exactly that must discard everything.
    let rx = UdpSocket::bind("[::1]:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let prog = [
        Insn {
            code: LD | B | ABS,
            jt: 0,
            jf: 0,
            k: NET_SOURCE - 8 + 6,
        },
        Insn {
            code: JMP | JEQ | K,
            jt: 0,
            jf: 1,
            k: 17,
        },
        Insn {
            code: RET | K,
            jt: 0,
            jf: 0,
            k: DISCARD,
        },
        Insn {
            code: RET | K,
            jt: 0,
            jf: 0,
            k: ACCEPT,
        },
    ];
    apply(&rx, Some(&prog)).unwrap();
    let tx = UdpSocket::bind("[::1]:0").unwrap();
    tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        rx.recv(&mut buf).is_err(),
        "the datagram passed: the network header is elsewhere"
    );
}

#[test]
fn a_server_identifier_cut_short_is_passed_on() {
    let prog = program(&links(&[QUIET]), OURS).unwrap();
    for id in [OURS, THEIRS] {
        for n in 0..id.len() {
            let mut p = vec![3, 0, 0, 1, 0, 2];
            p.extend_from_slice(&(id.len() as u16).to_be_bytes());
            p.extend_from_slice(&id[..n]);
            assert_eq!(
                run(&prog, &datagram(&p), QUIET, link_local()),
                Ok(Verdict::Accept),
                "{n} of {} bytes",
                id.len()
            );
        }
    }
}

#[test]
fn quiet_prefixes_of_every_length_match_exactly_their_addresses() {
    let solicit = udp(MessageType::Solicit, None, 0);
    let base: Ipv6Addr = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff".parse().unwrap();
    for len in 0..=128u8 {
        let quiet = Ipv6Prefix::new(base, len);
        let prefix = quiet.to_string();
        let prog = program(
            &Quiet {
                ifindexes: vec![],
                prefixes: vec!["2001:db8:1::/64".parse().unwrap(), quiet],
                rescue_after: None,
            },
            OURS,
        )
        .unwrap();
        let inside = quiet.addr();
        assert_eq!(run(&prog, &solicit, 1, inside), Ok(Verdict::Discard), "{prefix}");
        if len > 0 {
            // The last bit of the prefix flipped: outside it.
            let outside = Ipv6Addr::from(u128::from(inside) ^ (1u128 << (128 - u32::from(len))));
            assert_eq!(
                run(&prog, &solicit, 1, outside),
                Ok(Verdict::Accept),
                "{prefix} {outside}"
            );
            // The first bit after it flipped: still inside.
            if len < 128 {
                let still = Ipv6Addr::from(u128::from(inside) ^ (1u128 << (127 - u32::from(len))));
                assert_eq!(
                    run(&prog, &solicit, 1, still),
                    Ok(Verdict::Discard),
                    "{prefix} {still}"
                );
            }
        }
    }
}

#[test]
fn the_kernel_discards_for_a_quiet_prefix() {
    // The production program (link-local test included), with ::1/128 as
    // the quiet prefix.
    let (rx, tx) = kernel_pair(&program(&prefixes(&["::1/128"]), OURS).unwrap());
    assert!(!arrives(&rx, &tx, &udp_payload(MessageType::Solicit, None)));
    assert!(!arrives(
        &rx,
        &tx,
        &udp_payload(MessageType::Decline, Some(THEIRS))
    ));
    assert!(arrives(&rx, &tx, &udp_payload(MessageType::Release, Some(OURS))));
    apply(&rx, Some(&program(&prefixes(&["::2/128"]), OURS).unwrap())).unwrap();
    assert!(arrives(&rx, &tx, &udp_payload(MessageType::Solicit, None)));
}

// ------------------------------------------------- against the server itself

/// The policy of a secondary in NORMAL (RENEW-RESPONSIVE) or of a state
/// that answers no one; the rest as a standalone server's.
struct Quiet1(duet_core::policy::Responsiveness, Option<u16>);

impl duet_core::policy::LeasePolicy for Quiet1 {
    fn responsiveness(&self, _rel: usize) -> duet_core::policy::Responsiveness {
        self.0
    }
    fn rescue_after(&self, _rel: usize) -> Option<std::time::Duration> {
        self.1
            .map(|cs| std::time::Duration::from_millis(u64::from(cs) * 10))
    }
    fn address_classes(&self, _rel: usize) -> [bool; 2] {
        [true, true]
    }
    fn prefix_classes(&self, _rel: usize, _now: duet_core::time::UnixTime) -> Vec<usize> {
        vec![0, 1]
    }
    fn may_reuse(
        &self,
        rel: usize,
        lease: &duet_core::lease::Lease,
        binding: &duet_core::lease::BindingKey,
        now: duet_core::time::UnixTime,
    ) -> bool {
        duet_core::policy::Standalone::default().may_reuse(rel, lease, binding, now)
    }
    fn valid_until_cap(
        &self,
        _rel: usize,
        _lease: Option<&duet_core::lease::Lease>,
        _now: duet_core::time::UnixTime,
    ) -> Option<duet_core::time::UnixTime> {
        None
    }
    fn partner_lifetime(
        &self,
        _rel: usize,
        _desired: Duration,
        _t1: Duration,
        now: duet_core::time::UnixTime,
    ) -> duet_core::time::UnixTime {
        now
    }
    fn retire(
        &self,
        rel: usize,
        event: duet_core::policy::Retire,
        now: duet_core::time::UnixTime,
    ) -> (duet_core::lease::LeaseState, Option<duet_core::time::UnixTime>) {
        duet_core::policy::Standalone::default().retire(rel, event, now)
    }
    fn state_timeout(
        &self,
        _rel: usize,
        _lease: &duet_core::lease::Lease,
        _now: duet_core::time::UnixTime,
    ) -> duet_core::policy::StateTimeout {
        duet_core::policy::StateTimeout::Never
    }
}

fn quiet_server() -> duet_core::dhcp::Dhcpv6Server {
    let subnet = duet_core::dhcp::Subnet {
        prefix: "2001:db8:1::/64".parse().unwrap(),
        interface: Some("eth0".into()),
        ranges: vec![(
            "2001:db8:1::100".parse().unwrap(),
            "2001:db8:1::1ff".parse().unwrap(),
        )],
        pd_pools: vec![("2001:db8:8000::/40".parse().unwrap(), 56)],
        preferred_lifetime: Duration::from_secs(3000),
        valid_lifetime: Duration::from_secs(4000),
        renew_time: Duration::from_secs(1000),
        rebind_time: Duration::from_secs(2000),
        options: vec![],
        preference: 0,
        rapid_commit: true,
        relationship: Some(0),
        reservations: vec![],
        interface_id: None,
    };
    duet_core::dhcp::Dhcpv6Server::new(
        Duid::new(OURS.to_vec()).unwrap(),
        vec![subnet],
        duet_core::dhcp::ServerOptions::default(),
        1,
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

    /// Whatever a client sends, the filter of a quiet link discards only
    /// what the server itself would drop there: nobody loses an answer.
    #[test]
    fn the_filter_discards_only_what_the_server_drops(
        mut m in duet_wire::strategy::client_message(),
        msg_type in proptest::sample::select(vec![1u8, 3, 4, 5, 6, 8, 9, 11, 2, 7]),
        server_id in proptest::option::of(proptest::prop_oneof![
            proptest::strategy::Just(OURS.to_vec()),
            proptest::strategy::Just(THEIRS.to_vec()),
            proptest::collection::vec(proptest::prelude::any::<u8>(), 1..20),
        ]),
        at in 0usize..6,
        client_id in proptest::prelude::any::<bool>(),
        unresponsive in proptest::prelude::any::<bool>(),
        global in proptest::prelude::any::<bool>(),
        relay in proptest::option::of((proptest::prelude::any::<bool>(), 0usize..3)),
        rescue in proptest::option::of(0u16..2000),
        elapsed in proptest::option::of((0u16..3000, 0usize..6)),
    ) {
        use duet_core::policy::Responsiveness as R;
        // Mostly the types the filter looks at.
        m.msg_type = MessageType::from(msg_type);
        m.options.retain(|o| !matches!(o, DhcpOption::ServerId(_) | DhcpOption::ClientId(_)));
        if client_id {
            m.options.insert(0, DhcpOption::ClientId(Duid::new(vec![0, 3, 0, 1, 1, 2, 3, 4, 5, 6]).unwrap()));
        }
        if let Some(id) = server_id.and_then(|id| Duid::new(id).ok()) {
            let at = at.min(m.options.len());
            m.options.insert(at, DhcpOption::ServerId(id));
        }
        // A client trying for a while, and a server that rescues such.
        m.options.retain(|o| !matches!(o, DhcpOption::ElapsedTime(_)));
        if let Some((cs, at)) = elapsed {
            let at = at.min(m.options.len());
            m.options.insert(at, DhcpOption::ElapsedTime(cs));
        }
        let Ok(mut payload) = m.to_vec() else { return Ok(()) };
        let mut source: Ipv6Addr = if global { "2001:db8:1::77".parse().unwrap() } else { link_local() };
        if let Some((on_link, before)) = relay {
            // Through one relay, whose link-address is on the quiet subnet
            // or not, from the relay's own address.
            let link = if on_link { "2001:db8:1::1" } else { "2001:db8:2::1" };
            payload = relayed(link, before, &payload)[8..].to_vec();
            source = "2001:db8:99::1".parse().unwrap();
        }
        let prog = program(
            &Quiet {
                ifindexes: vec![QUIET],
                prefixes: vec!["2001:db8:1::/64".parse().unwrap()],
                rescue_after: rescue,
            },
            OURS,
        )
        .unwrap();
        let verdict = run(&prog, &datagram(&payload), QUIET, source).unwrap();
        if verdict == Verdict::Discard {
            let mut srv = quiet_server();
            let policy = Quiet1(if unresponsive { R::Unresponsive } else { R::RenewResponsive }, rescue);
            let out = srv.handle(
                duet_core::time::UnixTime(1_800_000_000),
                duet_core::dhcp::Incoming {
                    payload: &payload,
                    source,
                    interface: Some("eth0"),
                    multicast: relay.is_none(),
                },
                &policy,
            );
            proptest::prop_assert!(
                matches!(out, duet_core::dhcp::Outcome::Dropped(_)),
                "discarded by the filter but answered by the server: {:?}",
                m
            );
        }
    }
}

/// The kernel's static check of scratch memory (net/core/filter.c,
/// `check_load_and_stores`), which follows the program in order, returns
/// included: a program it refuses cannot be attached.
fn kernel_accepts_memory_use(prog: &[Insn]) -> bool {
    let mut masks = vec![u16::MAX; prog.len()];
    let mut valid: u16 = 0;
    for (pc, i) in prog.iter().enumerate() {
        valid &= masks[pc];
        match i.code {
            c if c == ST || c == STX => valid |= 1 << i.k,
            c if (c == LD | MEM || c == LDX | MEM) && valid & (1 << i.k) == 0 => return false,
            c if c == JMP | JA => {
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            }
            c if c & 0x07 == JMP => {
                masks[pc + 1 + usize::from(i.jt)] &= valid;
                masks[pc + 1 + usize::from(i.jf)] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    true
}

#[test]
fn every_program_passes_the_kernels_memory_check() {
    // The replica refuses what the kernel refuses: a read after a return
    // that no store precedes in program order.
    let st = |k| Insn {
        code: ST,
        jt: 0,
        jf: 0,
        k,
    };
    let ld = |k| Insn {
        code: LD | MEM,
        jt: 0,
        jf: 0,
        k,
    };
    let ret = Insn {
        code: RET | K,
        jt: 0,
        jf: 0,
        k: 0,
    };
    assert!(kernel_accepts_memory_use(&[st(0), ld(0), ret]));
    assert!(!kernel_accepts_memory_use(&[ret, ld(0), ret]));
    assert!(!kernel_accepts_memory_use(&[st(1), ld(0), ret]));
    for len in 1..=130usize {
        let duid: Vec<u8> = (0..len).map(|i| i as u8).collect();
        for rescue_after in [None, Some(0), Some(1000)] {
            for mut quiet in [
                links(&[1]),
                prefixes(&["2001:db8:1::/64"]),
                Quiet {
                    ifindexes: vec![1, 2, 3, 4],
                    prefixes: ["2001:db8:1::/64", "2001:db8:2::/48", "::/0", "2001:db8:3::1/128"]
                        .iter()
                        .map(|p| p.parse().unwrap())
                        .collect(),
                    rescue_after: None,
                },
            ] {
                quiet.rescue_after = rescue_after;
                let prog = program(&quiet, &duid).unwrap();
                assert!(kernel_accepts_memory_use(&prog), "{len} {quiet:?}");
            }
        }
    }
}

/// A Relay-forward from one relay with `link` as its link-address,
/// `before` Interface-ID options ahead of the Relay Message with `inner`.
fn relayed(link: &str, before: usize, inner: &[u8]) -> Vec<u8> {
    let mut p = vec![12, 0];
    p.extend_from_slice(&link.parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(&link_local().octets());
    for _ in 0..before {
        p.extend_from_slice(&[0, 18, 0, 3, b'e', b't', b'h']);
    }
    p.extend_from_slice(&9u16.to_be_bytes());
    p.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    p.extend_from_slice(inner);
    datagram(&p)
}

fn relay_verdict(d: &[u8]) -> Verdict {
    let prog = program(&prefixes(&["2001:db8:1::/64"]), OURS).unwrap();
    // From a relay's own global address, outside every subnet.
    run(&prog, d, 99, "2001:db8:99::1".parse().unwrap()).unwrap()
}

#[test]
fn a_relayed_message_is_judged_by_its_relays_link_address() {
    let solicit = &udp(MessageType::Solicit, None, 0)[8..];
    let theirs = &udp(MessageType::Request, Some(THEIRS), 2)[8..];
    let ours = &udp(MessageType::Request, Some(OURS), 2)[8..];
    assert_eq!(
        relay_verdict(&relayed("2001:db8:1::1", 0, solicit)),
        Verdict::Discard
    );
    assert_eq!(
        relay_verdict(&relayed("2001:db8:1::1", 1, theirs)),
        Verdict::Discard
    );
    assert_eq!(relay_verdict(&relayed("2001:db8:1::1", 1, ours)), Verdict::Accept);
    // Another subnet's link, or none (the subnet is found another way).
    assert_eq!(
        relay_verdict(&relayed("2001:db8:2::1", 0, solicit)),
        Verdict::Accept
    );
    assert_eq!(relay_verdict(&relayed("::", 0, solicit)), Verdict::Accept);
    // The Relay Message too far on, and relay chains: passed on.
    let far = MAX_RELAY_OPTIONS;
    assert_eq!(
        relay_verdict(&relayed("2001:db8:1::1", far - 1, solicit)),
        Verdict::Discard
    );
    assert_eq!(
        relay_verdict(&relayed("2001:db8:1::1", far, solicit)),
        Verdict::Accept
    );
    let chain = relayed("2001:db8:1::1", 0, solicit);
    assert_eq!(
        relay_verdict(&relayed("2001:db8:1::1", 0, &chain[8..])),
        Verdict::Accept
    );
    // A Relay Message longer than the datagram, and every cut of one.
    let whole = relayed("2001:db8:1::1", 1, theirs);
    for n in 0..whole.len() {
        assert_eq!(relay_verdict(&whole[..n]), Verdict::Accept, "{n} bytes");
    }
}

#[test]
fn the_kernel_discards_a_relayed_solicit_for_a_quiet_link() {
    let (rx, tx) = kernel_pair(&program(&prefixes(&["2001:db8:1::/64"]), OURS).unwrap());
    let solicit = &udp(MessageType::Solicit, None, 0)[8..];
    let renew = &udp(MessageType::Renew, Some(OURS), 0)[8..];
    assert!(!arrives(&rx, &tx, &relayed("2001:db8:1::1", 1, solicit)[8..]));
    assert!(arrives(&rx, &tx, &relayed("2001:db8:1::1", 1, renew)[8..]));
    assert!(arrives(&rx, &tx, &relayed("2001:db8:2::1", 1, solicit)[8..]));
}

// --------------------------------------- the rescue of stranded clients

const RESCUE: u16 = 300;

/// `quiet` with the rescue of stranded clients after `after` hundredths.
fn rescue(quiet: Quiet, after: u16) -> Quiet {
    Quiet {
        rescue_after: Some(after),
        ..quiet
    }
}

/// A client message of type `t` as raw options (code, value), like
/// dhclient's: a Client Identifier first, then `options`.
fn raw(t: u8, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut p = vec![t, 0, 0, 7];
    let client: &[u8] = &[0, 3, 0, 1, 1, 2, 3, 4, 5, 6];
    for (code, value) in [(1u16, client)].iter().chain(options) {
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(&(value.len() as u16).to_be_bytes());
        p.extend_from_slice(value);
    }
    p
}

/// An Elapsed Time option's (code, value).
fn elapsed(v: u16) -> (u16, [u8; 2]) {
    (8, v.to_be_bytes())
}

/// A client's own message with an Elapsed Time of `e` after an Option
/// Request, then optionally a Server Identifier `server`.
fn stranded(t: u8, e: u16, server: Option<&[u8]>) -> Vec<u8> {
    let (code, value) = elapsed(e);
    let mut options: Vec<(u16, &[u8])> = vec![(6, &[0, 23, 0, 24]), (code, &value)];
    if let Some(s) = server {
        options.push((2, s));
    }
    raw(t, &options)
}

/// The verdict on `payload`, a client's own message on a quiet link, with
/// the rescue after `after` (or none).
fn rescue_verdict(after: Option<u16>, payload: &[u8]) -> Verdict {
    let quiet = Quiet {
        rescue_after: after,
        ..links(&[7, QUIET])
    };
    let prog = program(&quiet, OURS).unwrap();
    run(&prog, &datagram(payload), QUIET, link_local()).unwrap()
}

/// Elapsed Times below, at and above the threshold, with the verdict the
/// rescue gives them.
fn around_the_threshold() -> [(u16, Verdict); 6] {
    use Verdict::{Accept, Discard};
    [
        (0, Discard),
        (1, Discard),
        (RESCUE - 1, Discard),
        (RESCUE, Accept),
        (RESCUE + 1, Accept),
        (u16::MAX, Accept),
    ]
}

#[test]
fn a_stranded_solicit_is_passed_on_from_the_threshold() {
    for (e, v) in around_the_threshold() {
        let solicit = stranded(1, e, None);
        assert_eq!(rescue_verdict(Some(RESCUE), &solicit), v, "elapsed {e}");
        // Without the rescue, as before.
        assert_eq!(rescue_verdict(None, &solicit), Verdict::Discard, "elapsed {e}");
    }
    // A threshold of 0: any Elapsed Time rescues; one of 0xffff, only
    // 655.35 s and more.
    assert_eq!(rescue_verdict(Some(0), &stranded(1, 0, None)), Verdict::Accept);
    assert_eq!(
        rescue_verdict(Some(u16::MAX), &stranded(1, u16::MAX - 1, None)),
        Verdict::Discard
    );
    assert_eq!(
        rescue_verdict(Some(u16::MAX), &stranded(1, u16::MAX, None)),
        Verdict::Accept
    );
    // Without an Elapsed Time, nothing to rescue.
    assert_eq!(
        rescue_verdict(Some(0), &raw(1, &[(6, &[0, 23])])),
        Verdict::Discard
    );
}

#[test]
fn stranded_rebinds_and_requests_are_passed_on_too() {
    for (e, v) in around_the_threshold() {
        let rebind = stranded(6, e, None);
        assert_eq!(rescue_verdict(Some(RESCUE), &rebind), v, "Rebind, elapsed {e}");
        assert_eq!(
            rescue_verdict(None, &rebind),
            Verdict::Discard,
            "Rebind, elapsed {e}"
        );
        // A Request for another server: duet decides once it is stranded.
        let theirs = stranded(3, e, Some(THEIRS));
        assert_eq!(rescue_verdict(Some(RESCUE), &theirs), v, "Request, elapsed {e}");
        assert_eq!(
            rescue_verdict(None, &theirs),
            Verdict::Discard,
            "Request, elapsed {e}"
        );
        // The Server Identifier before the Elapsed Time: the same.
        let (code, value) = elapsed(e);
        let first = raw(3, &[(2, THEIRS), (code, &value)]);
        assert_eq!(
            rescue_verdict(Some(RESCUE), &first),
            v,
            "Request, elapsed {e} last"
        );
        // A Request for us, or for no one: passed on, as before.
        for p in [stranded(3, e, Some(OURS)), stranded(3, e, None)] {
            assert_eq!(rescue_verdict(Some(RESCUE), &p), Verdict::Accept, "elapsed {e}");
            assert_eq!(rescue_verdict(None, &p), Verdict::Accept, "elapsed {e}");
        }
    }
}

#[test]
fn confirms_and_the_other_named_messages_are_never_rescued() {
    for e in [RESCUE, u16::MAX] {
        assert_eq!(
            rescue_verdict(Some(RESCUE), &stranded(4, e, None)),
            Verdict::Discard,
            "Confirm, elapsed {e}"
        );
        // Renew, Release, Decline, Information-request for another server.
        for t in [5, 8, 9, 11] {
            assert_eq!(
                rescue_verdict(Some(RESCUE), &stranded(t, e, Some(THEIRS))),
                Verdict::Discard,
                "type {t}, elapsed {e}"
            );
            assert_eq!(
                rescue_verdict(Some(RESCUE), &stranded(t, e, Some(OURS))),
                Verdict::Accept,
                "type {t} for us, elapsed {e}"
            );
        }
    }
}

#[test]
fn a_relayed_stranded_solicit_is_passed_on() {
    let quiet = rescue(prefixes(&["2001:db8:1::/64"]), RESCUE);
    let prog = program(&quiet, OURS).unwrap();
    let verdict = |d: &[u8]| run(&prog, d, 99, "2001:db8:99::1".parse().unwrap()).unwrap();
    for (e, v) in around_the_threshold() {
        for before in [0, 1, MAX_RELAY_OPTIONS - 1] {
            for (t, server) in [(1, None), (6, None), (3, Some(THEIRS))] {
                let inner = stranded(t, e, server);
                assert_eq!(
                    verdict(&relayed("2001:db8:1::1", before, &inner)),
                    v,
                    "type {t}, elapsed {e}, {before} relay options first"
                );
                // On a link that is not quiet, passed on whatever the time.
                assert_eq!(
                    verdict(&relayed("2001:db8:2::1", before, &inner)),
                    Verdict::Accept
                );
                // Without the rescue, as before.
                assert_eq!(
                    relay_verdict(&relayed("2001:db8:1::1", before, &inner)),
                    Verdict::Discard
                );
            }
        }
        // A relayed Confirm is not rescued.
        let confirm = relayed("2001:db8:1::1", 1, &stranded(4, e, None));
        assert_eq!(verdict(&confirm), Verdict::Discard, "elapsed {e}");
    }
}

#[test]
fn an_elapsed_time_out_of_reach_or_cut_short_rescues_nothing() {
    let (code, value) = elapsed(u16::MAX);
    let pad: (u16, &[u8]) = (6, &[0, 23]);
    // The client id is option 1: MAX_OPTIONS - 2 more keep the Elapsed
    // Time in reach.
    for (others, v) in [
        (MAX_OPTIONS - 2, Verdict::Accept),
        (MAX_OPTIONS - 1, Verdict::Discard),
        (MAX_OPTIONS + 3, Verdict::Discard),
    ] {
        let mut options = vec![pad; others];
        options.push((code, &value));
        assert_eq!(
            rescue_verdict(Some(RESCUE), &raw(1, &options)),
            v,
            "Solicit, {others} options first"
        );
        // A Request for another server with its identifier in reach: the
        // old verdict, discarded.
        let mut options = vec![(2, THEIRS)];
        options.extend(vec![pad; others - 1]);
        options.push((code, &value));
        assert_eq!(
            rescue_verdict(Some(RESCUE), &raw(3, &options)),
            v,
            "Request, {others} options first"
        );
    }
    // Of another length than 2: not an Elapsed Time to trust.
    for value in [&[0xff][..], &[0xff, 0xff, 0xff], &[]] {
        for (t, server) in [(1, None), (3, Some(THEIRS))] {
            let mut options = vec![(8, value)];
            options.extend(server.map(|s| (2, s)));
            assert_eq!(
                rescue_verdict(Some(0), &raw(t, &options)),
                Verdict::Discard,
                "type {t}, {value:?}"
            );
        }
    }
    // Every cut of a rescued Solicit: none loads outside the datagram, and
    // none whose Elapsed Time is cut short is rescued.
    let whole = datagram(&stranded(1, u16::MAX, None));
    let prog = program(&rescue(links(&[QUIET]), RESCUE), OURS).unwrap();
    for n in 0..=whole.len() {
        let v = run(&prog, &whole[..n], QUIET, link_local()).unwrap_or_else(|e| panic!("{n} bytes: {e:?}"));
        let expected = if n < 12 {
            Verdict::Accept // no message header: passed on
        } else if n < whole.len() {
            Verdict::Discard
        } else {
            Verdict::Accept
        };
        assert_eq!(v, expected, "{n} of {} bytes", whole.len());
    }
    // A relayed Solicit whose Elapsed Time runs past the end of its Relay
    // Message, into the relay's next option (0xffff there): not rescued.
    let inner = stranded(1, 0, None);
    let cut = &inner[..inner.len() - 2];
    let mut d = relayed("2001:db8:1::1", 0, cut);
    d.extend_from_slice(&[0xff, 0xff, 0, 0]);
    let relay_prog = program(&rescue(prefixes(&["2001:db8:1::/64"]), RESCUE), OURS).unwrap();
    let from_relay: Ipv6Addr = "2001:db8:99::1".parse().unwrap();
    assert_eq!(run(&relay_prog, &d, 99, from_relay), Ok(Verdict::Discard));
    // The same bytes with the Relay Message's length covering them: rescued.
    let whole_inner = stranded(1, u16::MAX, None);
    assert_eq!(
        run(
            &relay_prog,
            &relayed("2001:db8:1::1", 0, &whole_inner),
            99,
            from_relay
        ),
        Ok(Verdict::Accept)
    );
}

#[test]
fn realistic_programs_fit_with_the_rescue() {
    let sets = [
        (0..16)
            .map(|i| format!("2001:db8:{i:x}::/64"))
            .collect::<Vec<_>>(),
        (0..16).map(|i| format!("2001:db8:{i:x}::1/128")).collect(),
    ];
    for prefixes in &sets {
        for duid_len in [18, 130] {
            let duid: Vec<u8> = (0..duid_len).map(|i| i as u8).collect();
            for rescue_after in [None, Some(RESCUE)] {
                let quiet = Quiet {
                    ifindexes: vec![1, 2, 3, 4],
                    prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
                    rescue_after,
                };
                let prog = program(&quiet, &duid);
                assert!(prog.is_ok(), "{prog:?} {quiet:?} {duid_len}");
                let prog = prog.unwrap_or_default();
                // The longest conditional jump, against the 255 allowed.
                let longest = prog
                    .iter()
                    .filter(|i| i.code & 0x07 == JMP && i.code != JMP | JA)
                    .map(|i| i.jt.max(i.jf))
                    .max();
                println!(
                    "{} prefixes like {}, DUID {duid_len}, rescue {rescue_after:?}: {} instructions, longest jump {longest:?}",
                    prefixes.len(),
                    prefixes[0],
                    prog.len()
                );
            }
        }
    }
}

#[test]
fn the_kernel_passes_a_stranded_solicit() {
    let lo = nix::net::if_::if_nametoindex("lo").unwrap();
    let prog = build(&rescue(links(&[lo]), RESCUE), OURS, (0xffff, 0)).unwrap();
    let (rx, tx) = kernel_pair(&prog);
    assert!(arrives(&rx, &tx, &stranded(1, RESCUE, None)));
    assert!(arrives(&rx, &tx, &stranded(3, u16::MAX, Some(THEIRS))));
    assert!(!arrives(&rx, &tx, &stranded(1, RESCUE - 1, None)));
    assert!(!arrives(&rx, &tx, &stranded(4, u16::MAX, None)));
    // Relayed, through the production program.
    let (rx, tx) = kernel_pair(&program(&rescue(prefixes(&["2001:db8:1::/64"]), RESCUE), OURS).unwrap());
    let far = relayed("2001:db8:1::1", 1, &stranded(6, u16::MAX, None));
    let near = relayed("2001:db8:1::1", 1, &stranded(6, 10, None));
    assert!(arrives(&rx, &tx, &far[8..]));
    assert!(!arrives(&rx, &tx, &near[8..]));
}
