//! Parse/emit pairs for every RFC 8415 option (and RFC 3646, RFC 4704),
//! one module per option, named after the section that defines it.

mod common;

use duet_wire::option::*;
use duet_wire::*;
use std::borrow::Cow;
use std::net::Ipv6Addr;

fn b(s: &'static [u8]) -> Cow<'static, [u8]> {
    Cow::Borrowed(s)
}
fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
fn duid(bytes: &'static [u8]) -> Duid<'static> {
    Duid::new(bytes).unwrap()
}

// §21.2: DUID-LLT, hardware type 1 (Ethernet), time, MAC.
option_fixture!(
    s21_2_client_id,
    "0001 000e  0001 0001 2a2b2c2d 020000000001",
    DhcpOption::ClientId(duid(&[0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 2, 0, 0, 0, 0, 1]))
);

// §21.3 with the DUID-EN example of §11.3.
option_fixture!(
    s21_3_server_id,
    "0002 000e  0002 00000009 0cc084d303000912",
    DhcpOption::ServerId(duid(&[
        0, 2, 0, 0, 0, 9, 0x0c, 0xc0, 0x84, 0xd3, 0x03, 0x00, 0x09, 0x12
    ]))
);

// §21.4: IA_NA with one IAADDR and a status code.
option_fixture!(
    s21_4_ia_na,
    "0003 0030  00000001 00000e10 00001518
       0005 0018 20010db8000100000000000000000101 00000bb8 00000fa0
       000d 0004 0000 6f6b",
    DhcpOption::IaNa(IaNa {
        iaid: 1,
        t1: 3600,
        t2: 5400,
        options: vec![
            DhcpOption::IaAddr(IaAddr {
                address: ip("2001:db8:1::101"),
                preferred_lifetime: 3000,
                valid_lifetime: 4000,
                options: vec![],
            }),
            DhcpOption::StatusCode(Status {
                code: StatusCode::Success,
                message: b(b"ok")
            }),
        ],
    })
);

// §21.5: IA_TA with one IAADDR.
option_fixture!(
    s21_5_ia_ta,
    "0004 0020  0000abcd
       0005 0018 20010db8000100000000000000000102 0000003c 00000078",
    DhcpOption::IaTa(IaTa {
        iaid: 0xabcd,
        options: vec![DhcpOption::IaAddr(IaAddr {
            address: ip("2001:db8:1::102"),
            preferred_lifetime: 60,
            valid_lifetime: 120,
            options: vec![],
        })],
    })
);

// §21.6: IAADDR carrying its own status code (allowed by the text, digest D5).
option_fixture!(
    s21_6_iaaddr,
    "0005 001e  20010db8000100000000000000000103 00000000 00000000
       000d 0002 0004",
    DhcpOption::IaAddr(IaAddr {
        address: ip("2001:db8:1::103"),
        preferred_lifetime: 0,
        valid_lifetime: 0,
        options: vec![DhcpOption::StatusCode(Status {
            code: StatusCode::NotOnLink,
            message: b(b"")
        })],
    })
);

option_fixture!(
    s21_7_oro,
    "0006 0006 0017 0018 0052",
    DhcpOption::Oro(vec![23, 24, 82])
);
option_fixture!(s21_8_preference, "0007 0001 ff", DhcpOption::Preference(255));
option_fixture!(
    s21_9_elapsed_time,
    "0008 0002 ffff",
    DhcpOption::ElapsedTime(0xffff)
);

// §21.11: RKAP (protocol 3, HMAC-MD5, RDM 0), key type 1 + 16-byte key.
option_fixture!(
    s21_11_auth,
    "000b 001c 03 01 00 0000000000000007 01 000102030405060708090a0b0c0d0e0f",
    DhcpOption::Auth(Auth {
        protocol: 3,
        algorithm: 1,
        rdm: 0,
        replay_detection: 7,
        info: b(&[1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
    })
);

option_fixture!(
    s21_12_unicast,
    "000c 0010 20010db8000000000000000000000001",
    DhcpOption::Unicast(ip("2001:db8::1"))
);

option_fixture!(
    s21_13_status_code,
    "000d 000d 0002 6e6f206164647265737365",
    DhcpOption::StatusCode(Status {
        code: StatusCode::NoAddrsAvail,
        message: b(b"no addresse")
    })
);

// §21.13: a status message that is not UTF-8 is kept, not refused.
option_fixture!(
    s21_13_status_code_non_utf8_message,
    "000d 0004 0001 ff fe",
    DhcpOption::StatusCode(Status {
        code: StatusCode::UnspecFail,
        message: b(&[0xff, 0xfe])
    })
);

// A status code registered after RFC 8415 stays a number.
option_fixture!(
    s21_13_status_code_unregistered,
    "000d 0002 0063",
    DhcpOption::StatusCode(Status {
        code: StatusCode::Unknown(99),
        message: b(b"")
    })
);

option_fixture!(s21_14_rapid_commit, "000e 0000", DhcpOption::RapidCommit);

option_fixture!(
    s21_15_user_class,
    "000f 0009 0003 616263 0002 6465",
    DhcpOption::UserClass(vec![b(b"abc"), b(b"de")])
);

option_fixture!(
    s21_16_vendor_class,
    "0010 000a 00000009 0004 74657374",
    DhcpOption::VendorClass(VendorClass {
        enterprise_number: 9,
        data: vec![b(b"test")]
    })
);

option_fixture!(
    s21_17_vendor_opts,
    "0011 000f 00000009 0001 0003 616263 0002 0000",
    DhcpOption::VendorOpts(VendorOpts {
        enterprise_number: 9,
        options: vec![
            VendorSubOption {
                code: 1,
                data: b(b"abc")
            },
            VendorSubOption {
                code: 2,
                data: b(b"")
            },
        ],
    })
);

option_fixture!(
    s21_18_interface_id,
    "0012 0004 65746830",
    DhcpOption::InterfaceId(b(b"eth0"))
);
option_fixture!(s21_19_reconf_msg, "0013 0001 05", DhcpOption::ReconfMsg(5));
option_fixture!(s21_20_reconf_accept, "0014 0000", DhcpOption::ReconfAccept);

// §21.21: IA_PD with one IAPREFIX.
option_fixture!(
    s21_21_ia_pd,
    "0019 0029  00000002 000003e8 000007d0
       001a 0019 00000bb8 00000fa0 38 20010db8800001000000000000000000",
    DhcpOption::IaPd(IaPd {
        iaid: 2,
        t1: 1000,
        t2: 2000,
        options: vec![DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: 3000,
            valid_lifetime: 4000,
            prefix_len: 56,
            prefix: ip("2001:db8:8000:100::"),
            options: vec![],
        })],
    })
);

// §21.22: a prefix-length hint (::/56, RFC 8168) with a status inside.
option_fixture!(
    s21_22_iaprefix,
    "001a 001f 00000000 00000000 38 00000000000000000000000000000000 000d 0002 0006",
    DhcpOption::IaPrefix(IaPrefix {
        preferred_lifetime: 0,
        valid_lifetime: 0,
        prefix_len: 56,
        prefix: Ipv6Addr::UNSPECIFIED,
        options: vec![DhcpOption::StatusCode(Status {
            code: StatusCode::NoPrefixAvail,
            message: b(b"")
        })],
    })
);

option_fixture!(
    s21_23_information_refresh_time,
    "0020 0004 00015180",
    DhcpOption::InformationRefreshTime(86400)
);
option_fixture!(
    s21_24_sol_max_rt,
    "0052 0004 00000e10",
    DhcpOption::SolMaxRt(3600)
);
option_fixture!(s21_25_inf_max_rt, "0053 0004 0000003c", DhcpOption::InfMaxRt(60));

option_fixture!(
    rfc3646_s3_dns_servers,
    "0017 0020 20010db8000000000000000000000053 20010db8000000000000000000000054",
    DhcpOption::DnsServers(vec![ip("2001:db8::53"), ip("2001:db8::54")])
);

option_fixture!(
    rfc3646_s4_domain_list,
    "0018 0010 076578616d706c65036f726700 016100",
    DhcpOption::DomainList(vec![
        DomainName::from_text("example.org.", true).unwrap(),
        DomainName::from_text("a.", true).unwrap(),
    ])
);

// RFC 4704 §4: S flag, partial name "host".
option_fixture!(
    rfc4704_s4_client_fqdn_partial,
    "0027 0006 01 04686f7374",
    DhcpOption::ClientFqdn(ClientFqdn {
        flags: 1,
        name: DomainName::from_text("host", false).unwrap()
    })
);

option_fixture!(
    rfc4704_s4_client_fqdn_full,
    "0027 0013 05 04686f7374 076578616d706c65 03 6f7267 00",
    DhcpOption::ClientFqdn(ClientFqdn {
        flags: 5,
        name: DomainName::from_text("host.example.org", true).unwrap(),
    })
);

// §21.1, §16: unknown options are kept, not errors, and re-emitted as they came.
option_fixture!(
    s21_1_unknown_option_kept,
    "fff0 0003 010203",
    DhcpOption::Unknown {
        code: 0xfff0,
        data: b(&[1, 2, 3])
    }
);

// Appendix C: a container outside its scope (IA_NA inside an IAADDR) is kept as bytes.
option_fixture!(
    appendix_c_container_out_of_scope_kept_verbatim,
    "0005 0028 20010db8000100000000000000000104 00000000 00000000 0003 000c 00000001 00000000 00000000",
    DhcpOption::IaAddr(IaAddr {
        address: ip("2001:db8:1::104"),
        preferred_lifetime: 0,
        valid_lifetime: 0,
        options: vec![DhcpOption::Unknown {
            code: 3,
            data: b(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
        }],
    })
);

/// Malformed options: each is an error naming the option and the offset.
mod malformed {
    use super::common::h;
    use duet_wire::*;

    fn err(hex: &str) -> DecodeError {
        DhcpOption::parse_one(&h(hex)).unwrap_err()
    }

    #[test]
    fn truncated_header() {
        let e = err("0001 00");
        assert_eq!(e.option, Some(1));
        assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }));
    }

    #[test]
    fn option_len_beyond_the_data() {
        let e = err("0008 0004 0000");
        assert_eq!((e.option, e.offset), (Some(8), 4));
        assert!(matches!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 4,
                available: 2
            }
        ));
    }

    #[test]
    fn fixed_length_options_reject_other_lengths() {
        for hex in [
            "0007 0002 0101",                           // preference
            "0008 0001 01",                             // elapsed time
            "000c 000f 000000000000000000000000000000", // unicast
            "000e 0001 00",                             // rapid commit
            "0014 0001 00",                             // reconf accept
            "0013 0000",                                // reconf msg
            "0020 0003 000000",                         // information refresh time
            "0052 0005 0000000000",                     // SOL_MAX_RT
            "0053 0000",                                // INF_MAX_RT
        ] {
            let e = err(hex);
            assert!(matches!(e.kind, DecodeErrorKind::BadLength { .. }), "{hex}: {e}");
        }
    }

    #[test]
    fn minimum_lengths_are_enforced() {
        for hex in [
            "0003 000b 0000000100000000000000",                         // IA_NA < 12
            "0004 0003 000000",                                         // IA_TA < 4
            "0005 0017 2001000000000000000000000000000000000000000000", // IAADDR < 24
            "0019 0008 0000000100000000",                               // IA_PD < 12
            "001a 0018 00000000000000003800000000000000000000000000000000"[..58].trim(), // IAPREFIX < 25
            "000b 000a 03010000000000000000 00",                        // AUTH < 11 (10 bytes)
            "000d 0001 00",                                             // STATUS_CODE < 2
            "0010 0003 000000",                                         // VENDOR_CLASS < 4
            "0011 0002 0000",                                           // VENDOR_OPTS < 4
            "0027 0000",                                                // CLIENT_FQDN < 1
        ] {
            let bytes = h(hex);
            let e = DhcpOption::parse_one(&bytes).unwrap_err();
            assert!(
                matches!(
                    e.kind,
                    DecodeErrorKind::BadLength { .. } | DecodeErrorKind::Truncated { .. }
                ),
                "{hex}: {e}"
            );
        }
    }

    #[test]
    fn oro_and_dns_servers_need_whole_items() {
        assert!(matches!(
            err("0006 0003 001700").kind,
            DecodeErrorKind::BadLength { .. }
        ));
        assert!(matches!(
            err("0017 0011 2001000000000000000000000000000000").kind,
            DecodeErrorKind::BadLength { .. }
        ));
    }

    #[test]
    fn duid_lengths_outside_3_to_130_are_errors() {
        assert!(matches!(
            err("0001 0002 0001").kind,
            DecodeErrorKind::DuidLength { len: 2 }
        ));
        let long = format!("0001 0083 {}", "00".repeat(131));
        assert!(matches!(
            err(&long).kind,
            DecodeErrorKind::DuidLength { len: 131 }
        ));
    }

    #[test]
    fn iaprefix_length_above_128_is_an_error() {
        let e = err("001a 0019 00000000 00000000 81 00000000000000000000000000000000");
        assert_eq!((e.option, e.offset), (Some(26), 12));
        assert!(matches!(
            e.kind,
            DecodeErrorKind::InvalidValue {
                what: "prefix-length",
                value: 129
            }
        ));
    }

    #[test]
    fn nested_error_names_the_innermost_option_and_absolute_offset() {
        // IA_NA whose IAADDR holds an ELAPSED_TIME of length 3.
        let e = err(
            "0003 0026 00000001 00000000 00000000  0005 0016 20010db8000000000000000000000001 00000000 0000",
        );
        assert_eq!(e.option, Some(5));
        let e = err("0003 002f 00000001 00000000 00000000  0005 001f 20010db8000000000000000000000001 00000000 00000000 0008 0003 000000");
        assert_eq!(e.option, Some(8));
        assert_eq!(e.offset, 48);
        assert!(e.to_string().contains("option 8"), "{e}");
    }

    #[test]
    fn trailing_bytes_inside_a_container_are_an_error() {
        // IA_NA with 2 stray bytes after its fixed fields: the start of an
        // option header (code 1) with no length.
        let e = err("0003 000e 00000001 00000000 00000000 0001");
        assert_eq!((e.option, e.offset), (Some(1), 18));
        assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }));
    }

    #[test]
    fn user_class_item_running_past_the_option_is_an_error() {
        let e = err("000f 0004 0005 6162");
        assert_eq!(e.option, Some(15));
    }

    #[test]
    fn domain_list_with_compression_or_partial_name_is_an_error() {
        assert!(matches!(
            err("0018 0004 01 61 c0 0c").kind,
            DecodeErrorKind::DomainName { .. }
        ));
        assert!(matches!(
            err("0018 0002 01 61").kind,
            DecodeErrorKind::DomainName { .. }
        ));
    }
}
