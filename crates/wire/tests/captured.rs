//! Packets captured from real clients (dhclient, dhcpcd, perfdhcp, dhcrelay)
//! and Kea 2.2's answers (see tests/fixtures/captured/README.md): every one
//! decodes, re-emits byte for byte, and has the shape tshark reported.

use duet_wire::option::code;
use duet_wire::{DhcpOption, Message, MessageType, OptionsExt};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captured")
}

fn load(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    hex::decode(text.trim()).unwrap()
}

/// Message type named in the file name (`…-<nn>-<type>.hex`).
fn expected_type(name: &str) -> MessageType {
    let stem = name.trim_end_matches(".hex");
    let t = stem.split_once(|c: char| c.is_ascii_digit()).unwrap().1;
    let t = t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    match t {
        "solicit" => MessageType::Solicit,
        "advertise" => MessageType::Advertise,
        "request" => MessageType::Request,
        "confirm" => MessageType::Confirm,
        "renew" => MessageType::Renew,
        "rebind" => MessageType::Rebind,
        "reply" => MessageType::Reply,
        "release" => MessageType::Release,
        "information-request" => MessageType::InformationRequest,
        "relay-forw" => MessageType::RelayForw,
        "relay-repl" => MessageType::RelayRepl,
        other => panic!("unknown type {other} in {name}"),
    }
}

#[test]
fn every_captured_packet_decodes_and_reemits_identically() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".hex"))
        .collect();
    names.sort();
    assert!(names.len() >= 60, "fixtures missing: {}", names.len());
    for name in &names {
        let bytes = load(name);
        let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.msg_type(), expected_type(name), "{name}");
        assert_eq!(m.to_vec().unwrap(), bytes, "{name}: emit differs");
        let (client, _) = m.unwrap_relays().unwrap();
        assert!(
            client.options.client_id().is_some() || client.msg_type == MessageType::InformationRequest,
            "{name}"
        );
    }
}

#[test]
fn dhclient_solicit_carries_ia_na_oro_and_elapsed_time() {
    let bytes = load("dhclient-na-01-solicit.hex");
    let Message::Client(m) = Message::parse(&bytes).unwrap() else {
        panic!()
    };
    assert!(m.options.iter().any(|o| matches!(o, DhcpOption::IaNa(_))));
    assert!(m.options.find(code::ORO).is_some());
    assert!(m.options.find(code::ELAPSED_TIME).is_some());
    assert_eq!(m.options.client_id().unwrap().duid_type(), 3, "dhclient -D LL");
}

#[test]
fn dhcpcd_solicit_has_rapid_commit_and_vendor_class() {
    let bytes = load("dhcpcd-01-solicit.hex");
    let Message::Client(m) = Message::parse(&bytes).unwrap() else {
        panic!()
    };
    assert!(m.options.find(code::RAPID_COMMIT).is_some());
    let vc = m.options.iter().find_map(|o| match o {
        DhcpOption::VendorClass(v) => Some(v),
        _ => None,
    });
    assert_eq!(vc.unwrap().enterprise_number, 40712);
    assert!(m.options.iter().any(|o| matches!(o, DhcpOption::IaPd(_))));
}

#[test]
fn dhcrelay_forward_keeps_interface_id_and_unknown_subscriber_id() {
    let bytes = load("dhcrelay-02-relay-forw.hex");
    let m = Message::parse(&bytes).unwrap();
    let (inner, relays) = m.unwrap_relays().unwrap();
    assert_eq!(relays.len(), 1);
    assert!(relays[0].interface_id().is_some());
    assert!(relays[0]
        .options
        .iter()
        .any(|o| matches!(o, DhcpOption::Unknown { code: 38, .. })));
    assert_eq!(inner.msg_type, MessageType::Solicit);
}

#[test]
fn kea_reply_has_address_and_prefix() {
    let bytes = load("kea-for-dhclient-napd-04-reply.hex");
    let Message::Client(m) = Message::parse(&bytes).unwrap() else {
        panic!()
    };
    let ia_na = m.options.iter().find_map(|o| match o {
        DhcpOption::IaNa(ia) => Some(ia),
        _ => None,
    });
    assert!(ia_na
        .unwrap()
        .options
        .iter()
        .any(|o| matches!(o, DhcpOption::IaAddr(_))));
    let ia_pd = m.options.iter().find_map(|o| match o {
        DhcpOption::IaPd(ia) => Some(ia),
        _ => None,
    });
    assert!(ia_pd
        .unwrap()
        .options
        .iter()
        .any(|o| matches!(o, DhcpOption::IaPrefix(p) if p.prefix_len == 56)));
}
