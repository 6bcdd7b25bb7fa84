//! Parse/emit pairs for every RFC 8156 failover message (§5.3) and option
//! (§5.5), the leasequery options failover reuses (RFC 5007, RFC 6607,
//! RFC 7653), the STARTTLS / REPLY messages sharing the stream (RFC 7653
//! §8.2), and the TCP framing (§5.1).

mod common;

use common::h;
use duet_wire::failover::*;
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
fn t(v: u32) -> AbsTime {
    AbsTime(v)
}
fn name(s: &str, fq: bool) -> DomainName<'static> {
    DomainName::from_text(s, fq).unwrap()
}
fn client_id() -> DhcpOption<'static> {
    DhcpOption::ClientId(Duid::new(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1][..]).unwrap())
}
fn iaaddr(options: Vec<DhcpOption<'static>>) -> DhcpOption<'static> {
    DhcpOption::IaAddr(IaAddr {
        address: ip("2001:db8:1::101"),
        preferred_lifetime: 3000,
        valid_lifetime: 4000,
        options,
    })
}
fn ia_na(options: Vec<DhcpOption<'static>>) -> DhcpOption<'static> {
    DhcpOption::IaNa(IaNa {
        iaid: 1,
        t1: 1000,
        t2: 2000,
        options,
    })
}
fn fo(
    msg_type: FailoverMessageType,
    id: u32,
    sent: u32,
    options: Vec<DhcpOption<'static>>,
) -> StreamMessage<'static> {
    StreamMessage::Failover(FailoverMessage {
        msg_type,
        transaction_id: tid(id),
        sent_time: t(sent),
        options,
    })
}
fn status(code: StatusCode, text: &'static str) -> DhcpOption<'static> {
    DhcpOption::StatusCode(Status::new(code, text))
}

option_fixture!(
    s5_5_1_binding_status,
    "0072000101",
    DhcpOption::BindingStatus(BindingStatus::Active)
);
option_fixture!(
    s5_5_2_connect_flags,
    "007300020001",
    DhcpOption::ConnectFlags(CONNECT_FLAG_FIXED_PD_LENGTH)
);
option_fixture!(
    s5_5_3_dns_removal_info,
    "007400200075000504686f73740076000d076578616d706c65036f72670000770002000b",
    DhcpOption::DnsRemovalInfo(vec![
        DhcpOption::DnsHostName(name("host", false)),
        DhcpOption::DnsZoneName(name("example.org", true)),
        DhcpOption::DnsFlags(DNS_FLAG_USING_REQUESTED_FQDN | DNS_FLAG_REV_UPTODATE | DNS_FLAG_FWD_UPTODATE),
    ])
);
option_fixture!(
    s5_5_3_1_dns_host_name,
    "0075001204686f7374076578616d706c65036f726700",
    DhcpOption::DnsHostName(name("host.example.org", true))
);
option_fixture!(
    s5_5_3_2_dns_zone_name,
    "0076000d076578616d706c65036f726700",
    DhcpOption::DnsZoneName(name("example.org", true))
);
option_fixture!(s5_5_3_3_dns_flags, "007700020003", DhcpOption::DnsFlags(3));
option_fixture!(
    s5_5_4_expiration_time,
    "0078000430000000",
    DhcpOption::ExpirationTime(t(0x3000_0000))
);
option_fixture!(
    s5_5_5_max_unacked_bndupd,
    "0079000400000064",
    DhcpOption::MaxUnackedBndupd(100)
);
option_fixture!(s5_5_6_mclt, "007a000400000e10", DhcpOption::Mclt(3600));
option_fixture!(
    s5_5_7_partner_lifetime,
    "007b000430000e10",
    DhcpOption::PartnerLifetime(t(0x3000_0e10))
);
option_fixture!(
    s5_5_8_partner_lifetime_sent,
    "007c000430000e10",
    DhcpOption::PartnerLifetimeSent(t(0x3000_0e10))
);
option_fixture!(
    s5_5_9_partner_down_time,
    "007d00042fff0000",
    DhcpOption::PartnerDownTime(t(0x2fff_0000))
);
option_fixture!(
    s5_5_10_partner_raw_clt_time,
    "007e00042ffffff0",
    DhcpOption::PartnerRawCltTime(t(0x2fff_fff0))
);
option_fixture!(
    s5_5_11_protocol_version,
    "007f000400010000",
    DhcpOption::ProtocolVersion { major: 1, minor: 0 }
);
option_fixture!(
    s5_5_12_keepalive_time,
    "008000040000003c",
    DhcpOption::KeepaliveTime(60)
);
option_fixture!(
    s5_5_13_reconfigure_data,
    "0081001430000000000102030405060708090a0b0c0d0e0f",
    DhcpOption::ReconfigureData(ReconfigureData {
        reconfigure_time: t(0x3000_0000),
        key: Cow::Owned((0u8..16).collect())
    })
);
option_fixture!(
    s5_5_14_relationship_name,
    "00820006706169722d31",
    DhcpOption::RelationshipName(Cow::Borrowed("pair-1"))
);
option_fixture!(
    s5_5_15_server_flags,
    "0083000103",
    DhcpOption::ServerFlags(SERVER_FLAG_STARTUP | SERVER_FLAG_COMMUNICATED)
);
option_fixture!(
    s5_5_16_server_state,
    "0084000102",
    DhcpOption::ServerState(ServerState::Normal)
);
option_fixture!(
    s5_5_17_start_time_of_state,
    "0085000430000000",
    DhcpOption::StartTimeOfState(t(0x3000_0000))
);
option_fixture!(
    s5_5_18_state_expiration_time,
    "0086000430000fa0",
    DhcpOption::StateExpirationTime(t(0x3000_0fa0))
);
option_fixture!(
    rfc5007_4_1_2_2_client_data,
    "002d00470001000a0003000102000000000100640004300000000003002d00000001000003e8000007d00005001d20010db800010000000000000000010100000bb800000fa00072000101",
    DhcpOption::ClientData(vec![
        client_id(),
        DhcpOption::LqBaseTime(t(0x3000_0000)),
        ia_na(vec![iaaddr(vec![DhcpOption::BindingStatus(BindingStatus::Active)])]),
    ])
);
option_fixture!(
    rfc5007_4_1_2_3_clt_time,
    "002e00040000001e",
    DhcpOption::CltTime(30)
);
option_fixture!(
    rfc5007_4_1_2_4_lq_relay_data,
    "002f003220010db80001000000000000000000010c0020010db8000100000000000000000001fe800000000000000000000000000001",
    DhcpOption::LqRelayData(LqRelayData {
        peer_address: ip("2001:db8:1::1"),
        relay_message: Cow::Owned(h("0c00 20010db8000100000000000000000001 fe800000000000000000000000000001")),
    })
);
option_fixture!(
    rfc6607_3_4_vss,
    "00440001ff",
    DhcpOption::Vss(Vss {
        vss_type: 255,
        info: Cow::Borrowed(&[])
    })
);
option_fixture!(
    rfc7653_6_3_1_lq_base_time,
    "0064000430000000",
    DhcpOption::LqBaseTime(t(0x3000_0000))
);

// §7.4: a BNDUPD for one client, with every per-lease time.
stream_fixture!(
    s5_3_1_bndupd,
    "18 000001 30000000 002d006f0001000a0003000102000000000100640004300000000003005500000001000003e8000007d00005004520010db800010000000000000000010100000bb800000fa0007200010100850004300000000086000430000fa0002e000400000000007b000430001f400078000430000000",
    fo(
        FailoverMessageType::BndUpd,
        1,
        0x3000_0000,
        vec![DhcpOption::ClientData(vec![
            client_id(),
            DhcpOption::LqBaseTime(t(0x3000_0000)),
            ia_na(vec![iaaddr(vec![
                DhcpOption::BindingStatus(BindingStatus::Active),
                DhcpOption::StartTimeOfState(t(0x3000_0000)),
                DhcpOption::StateExpirationTime(t(0x3000_0fa0)),
                DhcpOption::CltTime(0),
                DhcpOption::PartnerLifetime(t(0x3000_1f40)),
                DhcpOption::ExpirationTime(t(0x3000_0000)),
            ])]),
        ])]
    )
);

// §7.4 (b): a delegable prefix handed to the secondary (FREE-BACKUP), lifetimes 0 (digest A13).
stream_fixture!(
    s5_3_1_bndupd_delegable_prefix,
    "18 000002 30000000 001a002e00000000000000003820010db8800001000000000000000000006400043000000000720001060085000430000000",
    fo(
        FailoverMessageType::BndUpd,
        2,
        0x3000_0000,
        vec![DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: 0,
            valid_lifetime: 0,
            prefix_len: 56,
            prefix: ip("2001:db8:8000:100::"),
            options: vec![
                DhcpOption::LqBaseTime(t(0x3000_0000)),
                DhcpOption::BindingStatus(BindingStatus::FreeBackup),
                DhcpOption::StartTimeOfState(t(0x3000_0000)),
            ],
        })]
    )
);

stream_fixture!(
    s5_3_2_bndreply,
    "19 000001 30000001 002d004f0001000a000300010200000000010003003d00000001000003e8000007d00005002d20010db800010000000000000000010100000bb800000fa000720001010086000430000fa0007c000430001f40",
    fo(
        FailoverMessageType::BndReply,
        1,
        0x3000_0001,
        vec![DhcpOption::ClientData(vec![
            client_id(),
            ia_na(vec![iaaddr(vec![
                DhcpOption::BindingStatus(BindingStatus::Active),
                DhcpOption::StateExpirationTime(t(0x3000_0fa0)),
                DhcpOption::PartnerLifetimeSent(t(0x3000_1f40)),
            ])]),
        ])]
    )
);

// §7.6: a rejection at the container level.
stream_fixture!(
    s5_3_2_bndreply_rejected,
    "19 000003 30000001 002d00480001000a00030001020000000001000d000500136f6c640003002d00000001000003e8000007d00005001d20010db800010000000000000000010100000bb800000fa00072000101",
    fo(
        FailoverMessageType::BndReply,
        3,
        0x3000_0001,
        vec![DhcpOption::ClientData(vec![
            client_id(),
            status(StatusCode::OutdatedBindingInformation, "old"),
            ia_na(vec![iaaddr(vec![DhcpOption::BindingStatus(BindingStatus::Active)])]),
        ])]
    )
);

stream_fixture!(
    s5_3_3_poolreq,
    "1a 000004 30000002 ",
    fo(FailoverMessageType::PoolReq, 4, 0x3000_0002, vec![])
);
stream_fixture!(
    s5_3_4_poolresp,
    "1b 000004 30000002 ",
    fo(FailoverMessageType::PoolResp, 4, 0x3000_0002, vec![])
);
stream_fixture!(
    s5_3_5_updreq,
    "1c 000005 30000003 ",
    fo(FailoverMessageType::UpdReq, 5, 0x3000_0003, vec![])
);
stream_fixture!(
    s5_3_6_updreqall,
    "1d 000006 30000003 ",
    fo(FailoverMessageType::UpdReqAll, 6, 0x3000_0003, vec![])
);
stream_fixture!(
    s5_3_7_upddone,
    "1e 000005 30000004 ",
    fo(FailoverMessageType::UpdDone, 5, 0x3000_0004, vec![])
);

stream_fixture!(
    s5_3_8_connect,
    "1f 000007 30000005 007f000400010000 007a000400000e10 008000040000003c 0079000400000064 00820006706169722d31 007300020001",
    fo(
        FailoverMessageType::Connect,
        7,
        0x3000_0005,
        vec![
            DhcpOption::ProtocolVersion { major: 1, minor: 0 },
            DhcpOption::Mclt(3600),
            DhcpOption::KeepaliveTime(60),
            DhcpOption::MaxUnackedBndupd(100),
            DhcpOption::RelationshipName(Cow::Borrowed("pair-1")),
            DhcpOption::ConnectFlags(CONNECT_FLAG_FIXED_PD_LENGTH),
        ]
    )
);

stream_fixture!(
    s5_3_9_connectreply,
    "20 000007 30000005 007f000400010000 007a000400000e10 008000040000003c 0079000400000064 007300020001",
    fo(
        FailoverMessageType::ConnectReply,
        7,
        0x3000_0005,
        vec![
            DhcpOption::ProtocolVersion { major: 1, minor: 0 },
            DhcpOption::Mclt(3600),
            DhcpOption::KeepaliveTime(60),
            DhcpOption::MaxUnackedBndupd(100),
            DhcpOption::ConnectFlags(CONNECT_FLAG_FIXED_PD_LENGTH),
        ]
    )
);

stream_fixture!(
    s5_3_9_connectreply_rejected,
    "20 000007 30000005 000d00060016736b6577",
    fo(
        FailoverMessageType::ConnectReply,
        7,
        0x3000_0005,
        vec![status(StatusCode::ExcessiveTimeSkew, "skew")]
    )
);

stream_fixture!(
    s5_3_10_disconnect,
    "21 000008 30000006 000d0006001462796521",
    fo(
        FailoverMessageType::Disconnect,
        8,
        0x3000_0006,
        vec![status(StatusCode::ServerShuttingDown, "bye!")]
    )
);

stream_fixture!(
    s5_3_11_state,
    "22 000009 30000007 0084000104 0083000101 0085000430000000 007d000430000000",
    fo(
        FailoverMessageType::State,
        9,
        0x3000_0007,
        vec![
            DhcpOption::ServerState(ServerState::PartnerDown),
            DhcpOption::ServerFlags(SERVER_FLAG_COMMUNICATED),
            DhcpOption::StartTimeOfState(t(0x3000_0000)),
            DhcpOption::PartnerDownTime(t(0x3000_0000)),
        ]
    )
);

stream_fixture!(
    s5_3_12_contact,
    "23 00000a 30000008 ",
    fo(FailoverMessageType::Contact, 10, 0x3000_0008, vec![])
);

stream_fixture!(
    rfc7653_8_2_starttls,
    "17 00000b ",
    StreamMessage::Tls(ClientMessage {
        msg_type: MessageType::StartTls,
        transaction_id: tid(11),
        options: vec![]
    })
);

stream_fixture!(
    rfc7653_8_2_reply_tls_refused,
    "07 00000b 000d0002000f",
    StreamMessage::Tls(ClientMessage {
        msg_type: MessageType::Reply,
        transaction_id: tid(11),
        options: vec![DhcpOption::StatusCode(Status {
            code: StatusCode::TlsConnectionRefused,
            message: Cow::Borrowed(b"")
        })],
    })
);

mod s5_1_framing {
    use super::*;

    #[test]
    fn frames_carry_a_two_byte_length() {
        let m = fo(FailoverMessageType::Contact, 10, 0x3000_0008, vec![]);
        let mut out = Vec::new();
        m.encode_frame(&mut out).unwrap();
        assert_eq!(out, h("0008 23 00000a 30000008"));
    }

    #[test]
    fn stream_of_frames_decodes_in_any_chunking() {
        let msgs = [
            fo(FailoverMessageType::Contact, 1, 5, vec![]),
            fo(
                FailoverMessageType::State,
                2,
                6,
                vec![DhcpOption::ServerState(ServerState::Normal)],
            ),
            fo(FailoverMessageType::PoolReq, 3, 7, vec![]),
        ];
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode_frame(&mut stream).unwrap();
        }
        for chunk in 1..=stream.len() {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                while let Some(frame) = d.next_frame().unwrap() {
                    got.push(StreamMessage::parse(frame).unwrap().into_owned());
                }
            }
            assert_eq!(got, msgs, "chunk size {chunk}");
        }
    }

    #[test]
    fn oversized_message_is_refused_when_framing() {
        let m = fo(
            FailoverMessageType::BndUpd,
            1,
            0,
            vec![DhcpOption::Unknown {
                code: 999,
                data: Cow::Owned(vec![0; 65_530]),
            }],
        );
        let mut out = vec![1, 2];
        assert!(matches!(
            m.encode_frame(&mut out),
            Err(EmitError::FrameTooLong { .. })
        ));
        assert_eq!(out, vec![1, 2], "a failed frame leaves the output as it was");
    }
}

mod malformed {
    use super::*;

    #[test]
    fn short_failover_header() {
        let e = StreamMessage::parse(&h("23 000001 0000")).unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 8,
                available: 6
            }
        ));
    }

    #[test]
    fn non_failover_type_on_the_stream() {
        let e = StreamMessage::parse(&h("01 000001 00000000")).unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::UnexpectedMessageType { msg_type: 1, .. }
        ));
    }

    #[test]
    fn relationship_name_must_be_utf8() {
        let e = StreamMessage::parse(&h("1f 000001 00000000 0082 0002 c328")).unwrap_err();
        assert_eq!(
            (e.kind, e.option, e.offset),
            (DecodeErrorKind::InvalidUtf8, Some(130), 12)
        );
    }

    #[test]
    fn fixed_length_failover_options_reject_other_lengths() {
        for opt in [
            "0072 0002 0101",
            "0073 0001 00",
            "0078 0003 000000",
            "007f 0002 0001",
            "0083 0000",
            "0084 0002 0000",
        ] {
            let bytes = h(&format!("22 000001 00000000 {opt}"));
            let e = StreamMessage::parse(&bytes).unwrap_err();
            assert!(matches!(e.kind, DecodeErrorKind::BadLength { .. }), "{opt}: {e}");
        }
    }

    #[test]
    fn nested_error_in_client_data_names_the_inner_option() {
        // CLIENT_DATA > IA_NA > IAADDR > BINDING_STATUS of length 2.
        let bytes = h(
            "18 000001 00000000 002d 0032  0003 002e 00000001 00000000 00000000  0005 001e 20010db8000100000000000000000101 00000000 00000000  0072 0002 0101",
        );
        let e = StreamMessage::parse(&bytes).unwrap_err();
        assert_eq!(e.option, Some(114));
    }
}
