//! Parse/emit pairs for every RFC 8415 message type (§8, §9), named after the
//! section that describes the message, plus malformed-message cases and the
//! relay nesting limit.

mod common;

use common::h;
use duet_wire::option::*;
use duet_wire::*;
use std::borrow::Cow;
use std::net::Ipv6Addr;

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
fn tid(v: u32) -> TransactionId {
    TransactionId::new(v).unwrap()
}
fn client_id() -> DhcpOption<'static> {
    DhcpOption::ClientId(Duid::new(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1][..]).unwrap())
}
fn server_id() -> DhcpOption<'static> {
    DhcpOption::ServerId(
        Duid::new(&[0, 2, 0, 0, 0, 9, 0x0c, 0xc0, 0x84, 0xd3, 0x03, 0x00, 0x09, 0x12][..]).unwrap(),
    )
}
fn iaaddr(preferred_lifetime: u32, valid_lifetime: u32) -> DhcpOption<'static> {
    DhcpOption::IaAddr(IaAddr {
        address: ip("2001:db8:1::101"),
        preferred_lifetime,
        valid_lifetime,
        options: vec![],
    })
}
fn ia_na(t1: u32, t2: u32, options: Vec<DhcpOption<'static>>) -> DhcpOption<'static> {
    DhcpOption::IaNa(IaNa {
        iaid: 1,
        t1,
        t2,
        options,
    })
}
fn ia_pd(options: Vec<DhcpOption<'static>>) -> DhcpOption<'static> {
    DhcpOption::IaPd(IaPd {
        iaid: 2,
        t1: 1000,
        t2: 2000,
        options,
    })
}
fn iaprefix() -> DhcpOption<'static> {
    DhcpOption::IaPrefix(IaPrefix {
        preferred_lifetime: 3000,
        valid_lifetime: 4000,
        prefix_len: 56,
        prefix: ip("2001:db8:8000:100::"),
        options: vec![],
    })
}
fn client(msg_type: MessageType, t: u32, options: Vec<DhcpOption<'static>>) -> Message<'static> {
    Message::Client(ClientMessage {
        msg_type,
        transaction_id: tid(t),
        options,
    })
}

message_fixture!(
    s16_2_solicit,
    "01 abcdef 0001000a00030001020000000001 0003000c00000001000003e8000007d0 0019000c00000002000003e8000007d0 0006000400170018 000800020000 000e0000",
    client(
        MessageType::Solicit,
        0xabcdef,
        vec![client_id(), ia_na(1000, 2000, vec![]), ia_pd(vec![]), DhcpOption::Oro(vec![23, 24]), DhcpOption::ElapsedTime(0), DhcpOption::RapidCommit]
    )
);

message_fixture!(
    s18_3_1_advertise,
    "02 abcdef 0002000e0002000000090cc084d303000912 0001000a00030001020000000001 0003002800000001000003e8000007d00005001820010db800010000000000000000010100000bb800000fa0 000700010a 0017001020010db8000000000000000000000053",
    client(
        MessageType::Advertise,
        0xabcdef,
        vec![server_id(), client_id(), ia_na(1000, 2000, vec![iaaddr(3000, 4000)]), DhcpOption::Preference(10), DhcpOption::DnsServers(vec![ip("2001:db8::53")])]
    )
);

message_fixture!(
    s16_4_request,
    "03 123456 0001000a00030001020000000001 0002000e0002000000090cc084d303000912 0003002800000001000003e8000007d00005001820010db80001000000000000000001010000000000000000 000600020017 000800020064",
    client(
        MessageType::Request,
        0x123456,
        vec![client_id(), server_id(), ia_na(1000, 2000, vec![iaaddr(0, 0)]), DhcpOption::Oro(vec![23]), DhcpOption::ElapsedTime(100)]
    )
);

message_fixture!(
    s16_5_confirm,
    "04 000001 0001000a00030001020000000001 000300280000000100000000000000000005001820010db80001000000000000000001010000000000000000 000800020000",
    client(MessageType::Confirm, 1, vec![client_id(), ia_na(0, 0, vec![iaaddr(0, 0)]), DhcpOption::ElapsedTime(0)])
);

message_fixture!(
    s16_6_renew,
    "05 000002 0001000a00030001020000000001 0002000e0002000000090cc084d303000912 0003002800000001000003e8000007d00005001820010db800010000000000000000010100000bb800000fa0 0019002900000002000003e8000007d0001a001900000bb800000fa03820010db8800001000000000000000000 000600020017",
    client(
        MessageType::Renew,
        2,
        vec![client_id(), server_id(), ia_na(1000, 2000, vec![iaaddr(3000, 4000)]), ia_pd(vec![iaprefix()]), DhcpOption::Oro(vec![23])]
    )
);

message_fixture!(
    s16_7_rebind,
    "06 000003 0001000a00030001020000000001 0003002800000001000003e8000007d00005001820010db800010000000000000000010100000bb800000fa0 000800020bb8",
    client(MessageType::Rebind, 3, vec![client_id(), ia_na(1000, 2000, vec![iaaddr(3000, 4000)]), DhcpOption::ElapsedTime(3000)])
);

message_fixture!(
    s18_3_2_reply,
    "07 123456 0002000e0002000000090cc084d303000912 0001000a00030001020000000001 0003002800000001000003e8000007d00005001820010db800010000000000000000010100000bb800000fa0 0019002900000002000003e8000007d0001a001900000bb800000fa03820010db8800001000000000000000000 000d000a0000616c6c20676f6f64",
    client(
        MessageType::Reply,
        0x123456,
        vec![
            server_id(),
            client_id(),
            ia_na(1000, 2000, vec![iaaddr(3000, 4000)]),
            ia_pd(vec![iaprefix()]),
            DhcpOption::StatusCode(Status::new(StatusCode::Success, "all good")),
        ]
    )
);

message_fixture!(
    s16_9_release,
    "08 000004 0001000a00030001020000000001 0002000e0002000000090cc084d303000912 000300280000000100000000000000000005001820010db80001000000000000000001010000000000000000",
    client(MessageType::Release, 4, vec![client_id(), server_id(), ia_na(0, 0, vec![iaaddr(0, 0)])])
);

message_fixture!(
    s16_8_decline,
    "09 000005 0001000a00030001020000000001 0002000e0002000000090cc084d303000912 000300280000000100000000000000000005001820010db80001000000000000000001010000000000000000",
    client(MessageType::Decline, 5, vec![client_id(), server_id(), ia_na(0, 0, vec![iaaddr(0, 0)])])
);

message_fixture!(
    s18_3_11_reconfigure,
    "0a 000000 0002000e0002000000090cc084d303000912 0001000a00030001020000000001 0013000105 000b001c03010000000000000000010200000000000000000000000000000000",
    client(
        MessageType::Reconfigure,
        0,
        vec![
            server_id(),
            client_id(),
            DhcpOption::ReconfMsg(5),
            DhcpOption::Auth(Auth { protocol: 3, algorithm: 1, rdm: 0, replay_detection: 1, info: Cow::Owned([vec![2u8], vec![0u8; 16]].concat()) }),
        ]
    )
);

message_fixture!(
    s16_12_information_request,
    "0b 00abcd 0001000a00030001020000000001 000600080017001800200053 000800020000",
    client(
        MessageType::InformationRequest,
        0xabcd,
        vec![
            client_id(),
            DhcpOption::Oro(vec![23, 24, 32, 83]),
            DhcpOption::ElapsedTime(0)
        ]
    )
);

fn relayed_solicit() -> Message<'static> {
    client(
        MessageType::Solicit,
        0xabcdef,
        vec![client_id(), ia_na(1000, 2000, vec![]), DhcpOption::ElapsedTime(0)],
    )
}

message_fixture!(
    s9_1_relay_forw,
    "0c 00 20010db8000100000000000000000001 fe800000000000000000000000000001 0012000465746830 0009002801abcdef0001000a000300010200000000010003000c00000001000003e8000007d0000800020000",
    Message::Relay(RelayMessage {
        msg_type: MessageType::RelayForw,
        hop_count: 0,
        link_address: ip("2001:db8:1::1"),
        peer_address: ip("fe80::1"),
        options: vec![DhcpOption::InterfaceId(Cow::Borrowed(b"eth0")), DhcpOption::RelayMsg(Box::new(relayed_solicit()))],
    })
);

message_fixture!(
    s9_2_relay_repl,
    "0d 00 20010db8000100000000000000000001 fe800000000000000000000000000001 0012000465746830 0009005007abcdef0002000e0002000000090cc084d3030009120001000a000300010200000000010003002800000001000003e8000007d00005001820010db800010000000000000000010100000bb800000fa0",
    Message::Relay(RelayMessage {
        msg_type: MessageType::RelayRepl,
        hop_count: 0,
        link_address: ip("2001:db8:1::1"),
        peer_address: ip("fe80::1"),
        options: vec![
            DhcpOption::InterfaceId(Cow::Borrowed(b"eth0")),
            DhcpOption::RelayMsg(Box::new(client(MessageType::Reply, 0xabcdef, vec![server_id(), client_id(), ia_na(1000, 2000, vec![iaaddr(3000, 4000)])]))),
        ],
    })
);

// §7.3, §16: a message type a server does not process still decodes (with
// the client header), so the server can count and discard it.
message_fixture!(
    s7_3_unassigned_type_kept,
    "0e 000007 0001000a00030001020000000001 002c00110100000000000000000000000000000000",
    client(
        MessageType::Leasequery,
        7,
        vec![
            client_id(),
            DhcpOption::Unknown {
                code: 44,
                data: Cow::Owned([vec![1u8], vec![0u8; 16]].concat())
            }
        ]
    )
);

/// Wraps `inner` in `levels` RELAY-FORWs, as relays 1..=levels would.
fn nest(inner: &Message<'static>, levels: usize) -> Vec<u8> {
    let mut bytes = inner.to_vec().unwrap();
    for level in 0..levels {
        let mut relay = vec![12u8, level as u8];
        relay.extend_from_slice(&ip("2001:db8:1::1").octets());
        relay.extend_from_slice(&ip("fe80::1").octets());
        relay.extend_from_slice(&9u16.to_be_bytes());
        relay.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        relay.extend_from_slice(&bytes);
        bytes = relay;
    }
    bytes
}

mod s19_relay_nesting {
    use super::*;

    fn assert_inner_ia_na_intact(levels: usize) {
        let bytes = nest(&relayed_solicit(), levels);
        let msg = Message::parse(&bytes).unwrap();
        let (inner, relays) = msg.unwrap_relays().unwrap();
        assert_eq!(relays.len(), levels);
        assert_eq!(Message::Client(inner.clone()), relayed_solicit());
        let ia = inner.options.iter().find_map(|o| match o {
            DhcpOption::IaNa(ia) => Some(ia),
            _ => None,
        });
        assert_eq!(
            ia,
            Some(&IaNa {
                iaid: 1,
                t1: 1000,
                t2: 2000,
                options: vec![]
            })
        );
        // Hop counts as the relays set them, outermost first.
        let hops: Vec<u8> = relays.iter().map(|r| r.hop_count).collect();
        assert_eq!(hops, (0..levels as u8).rev().collect::<Vec<_>>());
        assert_eq!(msg.to_vec().unwrap(), bytes);
    }

    #[test]
    fn solicit_in_one_relay_forw() {
        assert_inner_ia_na_intact(1);
    }

    #[test]
    fn solicit_in_two_relay_forws() {
        assert_inner_ia_na_intact(2);
    }

    #[test]
    fn solicit_in_eight_relay_forws() {
        assert_inner_ia_na_intact(8);
    }

    #[test]
    fn solicit_in_nine_relay_forws_hop_count_limit_plus_one() {
        assert_inner_ia_na_intact(MAX_RELAY_DEPTH);
    }

    #[test]
    fn ten_relay_forws_are_too_deep() {
        let bytes = nest(&relayed_solicit(), MAX_RELAY_DEPTH + 1);
        let e = Message::parse(&bytes).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::RelayTooDeep {
                limit: MAX_RELAY_DEPTH
            }
        );
        assert_eq!(e.offset, 34 * MAX_RELAY_DEPTH + 4 * MAX_RELAY_DEPTH);
        assert_eq!(e.option, Some(9));
    }

    #[test]
    fn forty_relay_forws_are_too_deep() {
        let bytes = nest(&relayed_solicit(), 40);
        assert!(matches!(
            Message::parse(&bytes).unwrap_err().kind,
            DecodeErrorKind::RelayTooDeep { .. }
        ));
    }

    #[test]
    fn emit_refuses_nesting_beyond_the_limit() {
        let mut m = relayed_solicit();
        for _ in 0..=MAX_RELAY_DEPTH {
            m = Message::Relay(RelayMessage {
                msg_type: MessageType::RelayForw,
                hop_count: 0,
                link_address: Ipv6Addr::UNSPECIFIED,
                peer_address: Ipv6Addr::UNSPECIFIED,
                options: vec![DhcpOption::RelayMsg(Box::new(m))],
            });
        }
        assert!(matches!(m.to_vec(), Err(EmitError::InvalidValue { .. })));
    }
}

mod malformed {
    use super::*;

    #[test]
    fn empty_datagram() {
        assert!(matches!(
            Message::parse(&[]).unwrap_err().kind,
            DecodeErrorKind::Truncated { .. }
        ));
    }

    #[test]
    fn short_header() {
        let e = Message::parse(&h("01 abcd")).unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 3,
                available: 2
            }
        ));
        let e = Message::parse(&h("0c 00 20010db8")).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Truncated { needed: 34, .. }));
    }

    #[test]
    fn relay_without_relay_message_option() {
        let e = Message::parse(&h(
            "0c 00 20010db8000100000000000000000001 fe800000000000000000000000000001 0012000165",
        ))
        .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::MissingRelayMessage);
    }

    #[test]
    fn relay_with_two_relay_message_options() {
        let e = Message::parse(&h(
            "0c 00 20010db8000100000000000000000001 fe800000000000000000000000000001 0009000401000001 0009000401000002",
        ))
        .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::DuplicateRelayMessage);
    }

    #[test]
    fn failover_message_type_on_udp() {
        let e = Message::parse(&h("18 000001 00000000")).unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::UnexpectedMessageType { msg_type: 24, .. }
        ));
    }

    #[test]
    fn truncated_relayed_message_names_relay_msg_option() {
        let e = Message::parse(&h(
            "0c 00 20010db8000100000000000000000001 fe800000000000000000000000000001 0009 0003 01abcd",
        ))
        .unwrap_err();
        assert_eq!(e.option, Some(9));
        assert_eq!(e.offset, 39);
    }

    #[test]
    fn option_length_past_end_of_message() {
        let e = Message::parse(&h("01 000001 0001 00ff 0003")).unwrap_err();
        assert_eq!((e.option, e.offset), (Some(1), 8));
    }
}
