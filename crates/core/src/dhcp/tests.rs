//! Behaviour of the DHCPv6 processing, message by message (RFC 8415 §18.3).

use super::*;
use crate::lease::{BindingKey, LeaseKind};
use crate::policy::Standalone;
use duet_wire::option::{IaAddr, IaNa, IaPd, IaPrefix};
use duet_wire::{
    ClientMessage, DhcpOption, Duid, Message, MessageType, OptionsExt, RelayMessage, StatusCode,
    TransactionId,
};
use std::borrow::Cow;

const NOW: UnixTime = UnixTime(1_800_000_000);

fn server_duid() -> Duid<'static> {
    Duid::new(vec![0, 2, 0, 0, 0, 9, 1, 2, 3, 4]).unwrap()
}

fn subnet(range: (&str, &str)) -> Subnet {
    Subnet {
        prefix: "2001:db8:1::/64".parse().unwrap(),
        interface: Some("eth0".into()),
        ranges: vec![(range.0.parse().unwrap(), range.1.parse().unwrap())],
        pd_pools: vec![("2001:db8:8000::/40".parse().unwrap(), 56)],
        preferred_lifetime: Duration::from_secs(3000),
        valid_lifetime: Duration::from_secs(4000),
        renew_time: Duration::from_secs(1000),
        rebind_time: Duration::from_secs(2000),
        options: vec![
            crate::config::OptionConfig {
                code: duet_wire::option::code::DNS_SERVERS,
                data: "2001:db8::53"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets()
                    .to_vec(),
                always_send: false,
            },
            crate::config::OptionConfig {
                code: duet_wire::option::code::DOMAIN_LIST,
                data: duet_wire::DomainName::from_text("example.org", true)
                    .unwrap()
                    .as_bytes()
                    .to_vec(),
                always_send: false,
            },
        ],
        preference: 7,
        rapid_commit: true,
        relationship: None,
        reservations: vec![],
        interface_id: None,
    }
}

fn server() -> Dhcpv6Server {
    server_with(subnet(("2001:db8:1::100", "2001:db8:1::1ff")))
}

fn server_with(s: Subnet) -> Dhcpv6Server {
    Dhcpv6Server::new(server_duid(), vec![s], ServerOptions::default(), 42)
}

fn client_duid(n: u8) -> Duid<'static> {
    Duid::new(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, n]).unwrap()
}

struct Msg(ClientMessage<'static>);

impl Msg {
    fn new(t: MessageType, client: u8) -> Msg {
        let mut m = ClientMessage::new(t, TransactionId::new(0x1234 + u32::from(client)).unwrap());
        m.options.push(DhcpOption::ClientId(client_duid(client)));
        Msg(m)
    }
    fn server_id(mut self) -> Msg {
        self.0.options.push(DhcpOption::ServerId(server_duid()));
        self
    }
    fn opt(mut self, o: DhcpOption<'static>) -> Msg {
        self.0.options.push(o);
        self
    }
    fn ia_na(self, iaid: u32, addrs: &[Ipv6Addr]) -> Msg {
        let options = addrs
            .iter()
            .map(|a| {
                DhcpOption::IaAddr(IaAddr {
                    address: *a,
                    preferred_lifetime: 0,
                    valid_lifetime: 0,
                    options: vec![],
                })
            })
            .collect();
        self.opt(DhcpOption::IaNa(IaNa {
            iaid,
            t1: 0,
            t2: 0,
            options,
        }))
    }
    fn ia_pd(self, iaid: u32, hint: Option<(u8, Ipv6Addr)>) -> Msg {
        let options = hint
            .map(|(len, p)| {
                vec![DhcpOption::IaPrefix(IaPrefix {
                    preferred_lifetime: 0,
                    valid_lifetime: 0,
                    prefix_len: len,
                    prefix: p,
                    options: vec![],
                })]
            })
            .unwrap_or_default();
        self.opt(DhcpOption::IaPd(IaPd {
            iaid,
            t1: 0,
            t2: 0,
            options,
        }))
    }
    fn bytes(&self) -> Vec<u8> {
        self.0.to_vec().unwrap()
    }
}

fn link_local() -> Ipv6Addr {
    "fe80::2".parse().unwrap()
}

fn send(srv: &mut Dhcpv6Server, m: &Msg, now: UnixTime) -> Outcome {
    let bytes = m.bytes();
    srv.handle(
        now,
        Incoming {
            payload: &bytes,
            source: link_local(),
            interface: Some("eth0"),
            multicast: true,
        },
        &Standalone::default(),
    )
}

fn reply(o: Outcome) -> (ClientMessage<'static>, Reply) {
    match o {
        Outcome::Reply(r) => match Message::parse(&r.bytes).unwrap().into_owned() {
            Message::Client(c) => (c, r),
            other => panic!("expected a client message, got {other:?}"),
        },
        Outcome::Dropped(d) => panic!("dropped: {d}"),
    }
}

fn dropped(o: Outcome) -> Discard {
    match o {
        Outcome::Dropped(d) => d,
        Outcome::Reply(r) => panic!("expected a drop, got a reply of {} bytes", r.bytes.len()),
    }
}

fn ia_na_of(m: &ClientMessage<'_>) -> IaNa<'static> {
    m.options
        .iter()
        .find_map(|o| match o {
            DhcpOption::IaNa(ia) => Some(ia.clone().into_owned()),
            _ => None,
        })
        .expect("IA_NA in reply")
}

fn addrs_of(ia: &IaNa<'_>) -> Vec<(Ipv6Addr, u32, u32)> {
    ia.options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaAddr(a) => Some((a.address, a.preferred_lifetime, a.valid_lifetime)),
            _ => None,
        })
        .collect()
}

fn ia_status(ia_opts: &[DhcpOption<'_>]) -> Option<StatusCode> {
    ia_opts.status().map(|s| s.code)
}

/// Solicit → Advertise → Request → Reply for client `n`; returns the address.
fn acquire(srv: &mut Dhcpv6Server, n: u8) -> Ipv6Addr {
    let (adv, r) = reply(send(srv, &Msg::new(MessageType::Solicit, n).ia_na(1, &[]), NOW));
    assert!(r.changes.is_empty());
    let offered = addrs_of(&ia_na_of(&adv))[0].0;
    let (rep, r) = reply(send(
        srv,
        &Msg::new(MessageType::Request, n).server_id().ia_na(1, &[offered]),
        NOW,
    ));
    assert_eq!(r.changes.len(), 1);
    addrs_of(&ia_na_of(&rep))[0].0
}

/// RFC 8415 §21.7: what the ORO asks for, plus what is configured
/// `always-send`; nothing else. The bytes are the configured ones.
#[test]
fn configured_options_follow_the_oro_or_always_send() {
    let mut s = subnet(("2001:db8:1::100", "2001:db8:1::1ff"));
    s.options = vec![
        crate::config::OptionConfig {
            code: 31,
            data: "2001:db8::123"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
                .to_vec(),
            always_send: false,
        },
        crate::config::OptionConfig {
            code: 65000,
            data: vec![1, 2, 3],
            always_send: true,
        },
        crate::config::OptionConfig {
            code: duet_wire::option::code::INFORMATION_REFRESH_TIME,
            data: 7200u32.to_be_bytes().to_vec(),
            always_send: false,
        },
    ];
    let mut srv = server_with(s);
    let unknown = |m: &ClientMessage<'_>, c: u16| {
        m.options.iter().find_map(|o| match o {
            DhcpOption::Unknown { code, data } if *code == c => Some(data.to_vec()),
            _ => None,
        })
    };
    let m = Msg::new(MessageType::Solicit, 1)
        .ia_na(1, &[])
        .opt(DhcpOption::Oro(vec![31]));
    let (adv, _) = reply(send(&mut srv, &m, NOW));
    assert_eq!(unknown(&adv, 31).unwrap().len(), 16);
    assert_eq!(unknown(&adv, 65000), Some(vec![1, 2, 3]), "always sent");
    assert!(
        !adv.options.iter().any(|o| matches!(o, DhcpOption::DnsServers(_))),
        "not asked for"
    );
    let m = Msg::new(MessageType::Solicit, 2).ia_na(1, &[]);
    let (adv, _) = reply(send(&mut srv, &m, NOW));
    assert_eq!(unknown(&adv, 31), None, "no ORO");
    assert_eq!(unknown(&adv, 65000), Some(vec![1, 2, 3]));
    // The configured refresh time replaces the server-wide one, once.
    let m = Msg::new(MessageType::InformationRequest, 3).opt(DhcpOption::Oro(vec![32]));
    let (rep, _) = reply(send(&mut srv, &m, NOW));
    let irt: Vec<u32> = rep
        .options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::InformationRefreshTime(t) => Some(*t),
            _ => None,
        })
        .collect();
    assert_eq!(irt, vec![7200]);
}

#[test]
fn solicit_gets_advertise_with_address_preference_and_requested_options() {
    let mut srv = server();
    let m = Msg::new(MessageType::Solicit, 1)
        .ia_na(1, &[])
        .opt(DhcpOption::Oro(vec![23, 24]));
    let (adv, r) = reply(send(&mut srv, &m, NOW));
    assert_eq!(adv.msg_type, MessageType::Advertise);
    assert_eq!(adv.transaction_id, m.0.transaction_id);
    assert_eq!(adv.options.server_id(), Some(&server_duid()));
    assert_eq!(adv.options.client_id(), Some(&client_duid(1)));
    let ia = ia_na_of(&adv);
    let addrs = addrs_of(&ia);
    assert_eq!(addrs.len(), 1);
    assert!(srv.db().range_of(addrs[0].0).is_some());
    assert_eq!((addrs[0].1, addrs[0].2), (3000, 4000));
    assert_eq!((ia.t1, ia.t2), (1000, 2000));
    assert!(adv.options.iter().any(|o| matches!(o, DhcpOption::Preference(7))));
    assert!(adv.options.iter().any(|o| matches!(o, DhcpOption::DnsServers(_))));
    assert!(adv.options.iter().any(|o| matches!(o, DhcpOption::DomainList(_))));
    assert!(r.changes.is_empty(), "an Advertise commits nothing");
    assert_eq!(srv.db().len(), 0);
    assert_eq!((r.to, r.port), (link_local(), CLIENT_PORT));
}

#[test]
fn request_commits_the_binding_and_reports_the_change() {
    let mut srv = server();
    let a = acquire(&mut srv, 1);
    let lease = srv.db().get(&LeaseKey::address(a)).unwrap();
    assert_eq!(lease.state, LeaseState::Active);
    assert_eq!(lease.valid_until, NOW + Duration::from_secs(4000));
    assert_eq!(
        lease.binding,
        Some(BindingKey {
            duid: client_duid(1).as_bytes().to_vec(),
            kind: LeaseKind::Na,
            iaid: 1
        })
    );
}

#[test]
fn renew_keeps_the_same_address_with_fresh_lifetimes() {
    let mut srv = server();
    let a = acquire(&mut srv, 1);
    let later = NOW + Duration::from_secs(1000);
    let (rep, r) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Renew, 1).server_id().ia_na(1, &[a]),
        later,
    ));
    assert_eq!(addrs_of(&ia_na_of(&rep)), vec![(a, 3000, 4000)]);
    assert_eq!(r.changes[0].valid_until, later + Duration::from_secs(4000));
}

#[test]
fn renew_without_binding_gets_no_binding() {
    let mut srv = server();
    let (rep, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Renew, 1).server_id().ia_na(1, &[]),
        NOW,
    ));
    assert_eq!(ia_status(&ia_na_of(&rep).options), Some(StatusCode::NoBinding));
}

#[test]
fn rebind_unknown_to_this_server_is_not_answered() {
    let mut srv = server();
    let a: Ipv6Addr = "2001:db8:1::150".parse().unwrap();
    assert_eq!(
        dropped(send(
            &mut srv,
            &Msg::new(MessageType::Rebind, 1).ia_na(1, &[a]),
            NOW
        )),
        Discard::NothingToSay
    );
}

#[test]
fn rebind_off_link_address_gets_zero_lifetimes() {
    let mut srv = server();
    let off: Ipv6Addr = "2001:db8:99::1".parse().unwrap();
    let (rep, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Rebind, 1).ia_na(1, &[off]),
        NOW,
    ));
    assert_eq!(addrs_of(&ia_na_of(&rep)), vec![(off, 0, 0)]);
}

#[test]
fn rebind_known_binding_is_extended() {
    let mut srv = server();
    let a = acquire(&mut srv, 1);
    let (rep, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Rebind, 1).ia_na(1, &[a]),
        NOW,
    ));
    assert_eq!(addrs_of(&ia_na_of(&rep))[0].0, a);
}

#[test]
fn release_frees_the_address_and_the_client_gets_it_back_later() {
    let mut srv = server();
    let a = acquire(&mut srv, 1);
    let (rep, r) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Release, 1).server_id().ia_na(1, &[a]),
        NOW,
    ));
    assert_eq!(rep.options.status().map(|s| s.code), Some(StatusCode::Success));
    assert_eq!(r.changes[0].state, LeaseState::Free);
    assert!(srv.db().address_is_free(a));
    assert_eq!(
        acquire(&mut srv, 1),
        a,
        "a returning client gets its own lease back"
    );
}

#[test]
fn release_of_unknown_ia_answers_no_binding_inside_the_ia() {
    let mut srv = server();
    let (rep, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Release, 1).server_id().ia_na(9, &[]),
        NOW,
    ));
    assert_eq!(ia_status(&ia_na_of(&rep).options), Some(StatusCode::NoBinding));
}

#[test]
fn declined_address_is_withheld_until_probation_ends() {
    let mut srv = server_with(subnet(("2001:db8:1::100", "2001:db8:1::100")));
    let a = acquire(&mut srv, 1);
    let (_, r) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Decline, 1).server_id().ia_na(1, &[a]),
        NOW,
    ));
    assert_eq!(r.changes[0].state, LeaseState::Abandoned);
    let (adv, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Solicit, 2).ia_na(1, &[]),
        NOW,
    ));
    assert_eq!(ia_status(&ia_na_of(&adv).options), Some(StatusCode::NoAddrsAvail));
    let after = NOW + Duration::from_secs(86_400);
    let changed = srv.handle_timeout(after, &Standalone::default(), 100);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].state, LeaseState::Free);
    assert_eq!(acquire(&mut srv, 2), a);
}

#[test]
fn expiry_frees_the_lease_without_scanning() {
    let mut srv = server();
    let a = acquire(&mut srv, 1);
    assert_eq!(srv.next_timeout(), Some(NOW + Duration::from_secs(4000)));
    assert!(srv
        .handle_timeout(NOW + Duration::from_secs(3999), &Standalone::default(), 10)
        .is_empty());
    let changed = srv.handle_timeout(NOW + Duration::from_secs(4000), &Standalone::default(), 10);
    assert_eq!(changed.len(), 1);
    assert!(srv.db().address_is_free(a));
    assert_eq!(srv.next_timeout(), None);
}

#[test]
fn exhausted_pool_answers_no_addrs_avail() {
    let mut srv = server_with(subnet(("2001:db8:1::100", "2001:db8:1::101")));
    acquire(&mut srv, 1);
    acquire(&mut srv, 2);
    let (rep, r) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Request, 3).server_id().ia_na(1, &[]),
        NOW,
    ));
    let ia = ia_na_of(&rep);
    assert_eq!(ia_status(&ia.options), Some(StatusCode::NoAddrsAvail));
    assert_eq!((ia.t1, ia.t2), (0, 0));
    assert!(r.changes.is_empty());
}

#[test]
fn request_with_off_link_address_gets_not_on_link() {
    let mut srv = server();
    let off: Ipv6Addr = "2001:db8:99::1".parse().unwrap();
    let (rep, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Request, 1).server_id().ia_na(1, &[off]),
        NOW,
    ));
    assert_eq!(ia_status(&ia_na_of(&rep).options), Some(StatusCode::NotOnLink));
}

#[test]
fn prefix_delegation_request_gets_a_prefix_of_the_pool_length() {
    let mut srv = server();
    let m = Msg::new(MessageType::Request, 1)
        .server_id()
        .ia_pd(2, Some((56, Ipv6Addr::UNSPECIFIED)));
    let (rep, r) = reply(send(&mut srv, &m, NOW));
    let pd = rep
        .options
        .iter()
        .find_map(|o| match o {
            DhcpOption::IaPd(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let p = pd
        .options
        .iter()
        .find_map(|o| match o {
            DhcpOption::IaPrefix(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(p.prefix_len, 56);
    assert_eq!(r.changes[0].key.kind, LeaseKind::Pd);
    // The same IA_PD renewed keeps its prefix.
    let (rep2, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Renew, 1)
            .server_id()
            .ia_pd(2, Some((56, p.prefix))),
        NOW + Duration::from_secs(10),
    ));
    assert!(format!("{rep2:?}").contains(&format!("{:?}", p.prefix)));
}

#[test]
fn several_ias_in_one_message_get_the_same_t1_t2() {
    let mut srv = server();
    let m = Msg::new(MessageType::Request, 1)
        .server_id()
        .ia_na(1, &[])
        .ia_na(2, &[])
        .ia_pd(3, None);
    let (rep, r) = reply(send(&mut srv, &m, NOW));
    assert_eq!(r.changes.len(), 3);
    let t: Vec<(u32, u32)> = rep
        .options
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IaNa(i) => Some((i.t1, i.t2)),
            DhcpOption::IaPd(i) => Some((i.t1, i.t2)),
            _ => None,
        })
        .collect();
    assert_eq!(t, vec![(1000, 2000); 3]);
}

type IaStatuses = Vec<(u32, Option<StatusCode>)>;

/// Every (IAID, lease) of a reply: IA_NA addresses and IA_PD prefixes with
/// a non-zero valid lifetime, and each IA's status.
fn grants_of(m: &ClientMessage<'_>) -> (Vec<(u32, LeaseKey)>, IaStatuses) {
    let grants = m
        .options
        .ia_leases()
        .filter(|(_, l)| l.valid_lifetime > 0)
        .map(|(ia, l)| (ia.iaid, LeaseKey::of(&l)))
        .collect();
    let statuses = m
        .options
        .ias()
        .map(|ia| (ia.iaid, ia_status(ia.options)))
        .collect();
    (grants, statuses)
}

/// Issue 30 point 1: with one free address (and one free prefix) left, two
/// IAs of one Request, or of one Rapid-Commit Solicit, both got it; the
/// second record silently rebound it while the client believed it held it
/// twice.
#[test]
fn two_ias_of_one_message_never_get_the_same_lease() {
    let mut one = subnet(("2001:db8:1::1000", "2001:db8:1::1000"));
    one.pd_pools = vec![("2001:db8:8000::/56".parse().unwrap(), 56)];
    for rapid in [false, true] {
        let mut srv = server_with(one.clone());
        let m = if rapid {
            Msg::new(MessageType::Solicit, 1).opt(DhcpOption::RapidCommit)
        } else {
            Msg::new(MessageType::Request, 1).server_id()
        };
        let m = m.ia_na(0, &[]).ia_na(1, &[]).ia_pd(2, None).ia_pd(3, None);
        let (rep, r) = reply(send(&mut srv, &m, NOW));
        let (grants, statuses) = grants_of(&rep);
        assert_eq!(grants.len(), 2, "one address and one prefix: {grants:?}");
        assert_eq!(r.changes.len(), 2);
        assert_eq!(
            statuses,
            vec![
                (0, None),
                (1, Some(StatusCode::NoAddrsAvail)),
                (2, None),
                (3, Some(StatusCode::NoPrefixAvail))
            ]
        );
        for (iaid, key) in grants {
            let bound = srv.db().get(&key).and_then(|l| l.binding.clone()).unwrap();
            assert_eq!(bound.iaid, iaid, "{key:?} is recorded for the IA that was told");
        }
    }
}

#[test]
fn many_ias_of_one_message_get_distinct_leases_until_the_pool_is_empty() {
    let mut srv = server_with(subnet(("2001:db8:1::1000", "2001:db8:1::1003")));
    let mut m = Msg::new(MessageType::Request, 1).server_id();
    for iaid in 0..6 {
        // Every IA hints the same address.
        m = m.ia_na(iaid, &["2001:db8:1::1001".parse().unwrap()]);
    }
    // An IAID repeated is answered once.
    m = m.ia_na(0, &[]);
    let (rep, r) = reply(send(&mut srv, &m, NOW));
    let (grants, statuses) = grants_of(&rep);
    let keys: std::collections::BTreeSet<LeaseKey> = grants.iter().map(|g| g.1).collect();
    assert_eq!((grants.len(), keys.len(), r.changes.len()), (4, 4, 4));
    assert_eq!(statuses.len(), 6);
    assert_eq!(
        grants[0],
        (0, LeaseKey::address("2001:db8:1::1001".parse().unwrap()))
    );
    // Advertised offers follow the same rule.
    let mut srv = server_with(subnet(("2001:db8:1::1000", "2001:db8:1::1001")));
    let m = Msg::new(MessageType::Solicit, 2)
        .ia_na(7, &[])
        .ia_na(8, &[])
        .ia_na(9, &[]);
    let (adv, _) = reply(send(&mut srv, &m, NOW));
    let (grants, _) = grants_of(&adv);
    assert_eq!(grants.len(), 2);
    assert_ne!(grants[0].1, grants[1].1);
}

#[test]
fn rapid_commit_solicit_gets_a_committed_reply() {
    let mut srv = server();
    let m = Msg::new(MessageType::Solicit, 1)
        .ia_na(1, &[])
        .opt(DhcpOption::RapidCommit);
    let (rep, r) = reply(send(&mut srv, &m, NOW));
    assert_eq!(rep.msg_type, MessageType::Reply);
    assert!(rep.options.iter().any(|o| matches!(o, DhcpOption::RapidCommit)));
    assert_eq!(r.changes.len(), 1);
}

#[test]
fn confirm_answers_success_or_not_on_link_and_ignores_empty() {
    let mut srv = server();
    let on: Ipv6Addr = "2001:db8:1::1234".parse().unwrap();
    let off: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
    let (rep, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Confirm, 1).ia_na(1, &[on]),
        NOW,
    ));
    assert_eq!(rep.options.status().map(|s| s.code), Some(StatusCode::Success));
    let (rep, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Confirm, 1).ia_na(1, &[on, off]),
        NOW,
    ));
    assert_eq!(rep.options.status().map(|s| s.code), Some(StatusCode::NotOnLink));
    assert_eq!(
        dropped(send(
            &mut srv,
            &Msg::new(MessageType::Confirm, 1).ia_na(1, &[]),
            NOW
        )),
        Discard::NothingToSay
    );
}

#[test]
fn information_request_gets_requested_options_and_refresh_time() {
    let mut srv = server();
    let m = Msg::new(MessageType::InformationRequest, 1).opt(DhcpOption::Oro(vec![23, 32]));
    let (rep, r) = reply(send(&mut srv, &m, NOW));
    assert!(rep.options.iter().any(|o| matches!(o, DhcpOption::DnsServers(_))));
    assert!(
        !rep.options.iter().any(|o| matches!(o, DhcpOption::DomainList(_))),
        "not requested"
    );
    assert!(rep
        .options
        .iter()
        .any(|o| matches!(o, DhcpOption::InformationRefreshTime(86_400))));
    assert!(r.changes.is_empty());
}

#[test]
fn invalid_messages_are_dropped_per_rfc8415_section_16() {
    let mut srv = server();
    let no_client_id = {
        let mut m = Msg::new(MessageType::Solicit, 1);
        m.0.options.clear();
        m
    };
    assert!(matches!(
        dropped(send(&mut srv, &no_client_id, NOW)),
        Discard::Invalid(_)
    ));
    assert!(matches!(
        dropped(send(
            &mut srv,
            &Msg::new(MessageType::Solicit, 1).server_id(),
            NOW
        )),
        Discard::Invalid(_)
    ));
    assert!(matches!(
        dropped(send(&mut srv, &Msg::new(MessageType::Request, 1), NOW)),
        Discard::Invalid(_)
    ));
    let other = Msg::new(MessageType::Request, 1).opt(DhcpOption::ServerId(client_duid(9)));
    assert_eq!(dropped(send(&mut srv, &other, NOW)), Discard::NotOurServerId);
    assert_eq!(
        dropped(send(&mut srv, &Msg::new(MessageType::Advertise, 1), NOW)),
        Discard::NotForServer(MessageType::Advertise)
    );
    let info_with_ia = Msg::new(MessageType::InformationRequest, 1).ia_na(1, &[]);
    assert!(matches!(
        dropped(send(&mut srv, &info_with_ia, NOW)),
        Discard::Invalid(_)
    ));
    assert!(matches!(
        dropped(srv.handle(
            NOW,
            Incoming {
                payload: &[1, 2],
                source: link_local(),
                interface: Some("eth0"),
                multicast: true
            },
            &Standalone::default()
        )),
        Discard::Malformed(_)
    ));
}

#[test]
fn unicast_solicit_is_dropped_and_unicast_request_told_to_use_multicast() {
    let mut srv = server();
    let uni = |srv: &mut Dhcpv6Server, m: &Msg| {
        let b = m.bytes();
        srv.handle(
            NOW,
            Incoming {
                payload: &b,
                source: "2001:db8:1::150".parse().unwrap(),
                interface: Some("eth0"),
                multicast: false,
            },
            &Standalone::default(),
        )
    };
    assert_eq!(
        dropped(uni(&mut srv, &Msg::new(MessageType::Solicit, 1).ia_na(1, &[]))),
        Discard::Unicast
    );
    let (rep, r) = reply(uni(
        &mut srv,
        &Msg::new(MessageType::Request, 1).server_id().ia_na(1, &[]),
    ));
    assert_eq!(
        rep.options.status().map(|s| s.code),
        Some(StatusCode::UseMulticast)
    );
    assert!(!rep.options.iter().any(|o| matches!(o, DhcpOption::IaNa(_))));
    assert!(r.changes.is_empty());
}

#[test]
fn unknown_interface_has_no_subnet() {
    let mut srv = server();
    let b = Msg::new(MessageType::Solicit, 1).ia_na(1, &[]).bytes();
    let o = srv.handle(
        NOW,
        Incoming {
            payload: &b,
            source: link_local(),
            interface: Some("eth9"),
            multicast: true,
        },
        &Standalone::default(),
    );
    assert_eq!(dropped(o), Discard::NoSubnet);
}

fn relay_forw(
    inner: Message<'static>,
    hop: u8,
    link: &str,
    iface_id: Option<&'static [u8]>,
) -> Message<'static> {
    let mut options = vec![];
    if let Some(id) = iface_id {
        options.push(DhcpOption::InterfaceId(Cow::Borrowed(id)));
    }
    options.push(DhcpOption::RelayMsg(Box::new(inner)));
    Message::Relay(RelayMessage {
        msg_type: MessageType::RelayForw,
        hop_count: hop,
        link_address: link.parse().unwrap(),
        peer_address: "fe80::99".parse().unwrap(),
        options,
    })
}

#[test]
fn relayed_solicit_through_two_relays_is_answered_through_both() {
    let mut srv = server();
    let solicit = Message::Client(Msg::new(MessageType::Solicit, 1).ia_na(1, &[]).0);
    // Relay A (next to the client, link 2001:db8:1::1) then relay B (link 0).
    let inner = relay_forw(solicit, 0, "2001:db8:1::1", Some(b"port7"));
    let outer = relay_forw(inner, 1, "::", None);
    let bytes = outer.to_vec().unwrap();
    let relay_b: Ipv6Addr = "2001:db8:ff::2".parse().unwrap();
    let o = srv.handle(
        NOW,
        Incoming {
            payload: &bytes,
            source: relay_b,
            interface: Some("eth1"),
            multicast: false,
        },
        &Standalone::default(),
    );
    let Outcome::Reply(r) = o else { panic!("{o:?}") };
    assert_eq!((r.to, r.port), (relay_b, SERVER_PORT));
    let m = Message::parse(&r.bytes).unwrap();
    let (adv, relays) = m.unwrap_relays().unwrap();
    assert_eq!(adv.msg_type, MessageType::Advertise);
    assert_eq!(relays.len(), 2);
    assert!(relays.iter().all(|r| r.msg_type == MessageType::RelayRepl));
    assert_eq!((relays[0].hop_count, relays[1].hop_count), (1, 0));
    assert_eq!(
        relays[1].link_address,
        "2001:db8:1::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        relays[1].interface_id(),
        Some(&b"port7"[..]),
        "Interface-Id echoed at its level"
    );
    assert_eq!(relays[0].interface_id(), None);
    let a = addrs_of(&ia_na_of(adv))[0].0;
    assert!("2001:db8:1::/64".parse::<Ipv6Prefix>().unwrap().contains(a));
}

#[test]
fn relayed_message_from_unknown_link_has_no_subnet() {
    let mut srv = server();
    let solicit = Message::Client(Msg::new(MessageType::Solicit, 1).ia_na(1, &[]).0);
    let bytes = relay_forw(solicit, 0, "2001:db8:77::1", None).to_vec().unwrap();
    let o = srv.handle(
        NOW,
        Incoming {
            payload: &bytes,
            source: "2001:db8:ff::2".parse().unwrap(),
            interface: None,
            multicast: false,
        },
        &Standalone::default(),
    );
    assert_eq!(dropped(o), Discard::NoSubnet);
}

#[test]
fn allocation_stays_fast_in_a_slash_64_range_and_never_duplicates() {
    let mut srv = server_with(subnet(("2001:db8:1::", "2001:db8:1::ffff:ffff:ffff:ffff")));
    let mut seen = std::collections::HashSet::new();
    for n in 0..200u8 {
        let (rep, _) = reply(send(
            &mut srv,
            &Msg::new(MessageType::Request, n).server_id().ia_na(1, &[]),
            NOW,
        ));
        assert!(seen.insert(addrs_of(&ia_na_of(&rep))[0].0));
    }
}

/// A failover-like policy whose lifetime cap is `now + cap` seconds, and
/// whose responsiveness is set per relationship (responsive when unset).
struct Capped(std::cell::Cell<u64>, Vec<crate::policy::Responsiveness>);

impl LeasePolicy for Capped {
    fn responsiveness(&self, rel: usize) -> crate::policy::Responsiveness {
        self.1
            .get(rel)
            .copied()
            .unwrap_or(crate::policy::Responsiveness::Responsive)
    }
    fn address_classes(&self, _rel: usize) -> [bool; 2] {
        [true, true]
    }
    fn prefix_classes(&self, _rel: usize, _now: UnixTime) -> Vec<usize> {
        vec![0, 1]
    }
    fn may_reuse(&self, rel: usize, lease: &Lease, binding: &BindingKey, now: UnixTime) -> bool {
        Standalone::default().may_reuse(rel, lease, binding, now)
    }
    fn valid_until_cap(&self, _rel: usize, _lease: Option<&Lease>, now: UnixTime) -> Option<UnixTime> {
        Some(now + Duration::from_secs(self.0.get()))
    }
    fn partner_lifetime(&self, _rel: usize, _desired: Duration, _t1: Duration, now: UnixTime) -> UnixTime {
        now
    }
    fn retire(&self, rel: usize, event: Retire, now: UnixTime) -> (LeaseState, Option<UnixTime>) {
        Standalone::default().retire(rel, event, now)
    }
    fn state_timeout(&self, _rel: usize, _lease: &Lease, _now: UnixTime) -> StateTimeout {
        StateTimeout::Never
    }
}

/// duet-sim seed 7: the partner granted 300 s in PARTNER-DOWN; the server,
/// back in NORMAL, answers a Rebind under the MCLT cap (30 s). The client
/// may never get that Reply and keeps its 300 s, so the binding must not
/// end before that in the server's table.
#[test]
fn a_capped_renewal_never_shortens_the_binding_in_the_table() {
    let mut s = subnet(("2001:db8:1::100", "2001:db8:1::1ff"));
    s.relationship = Some(0);
    let mut srv = server_with(s);
    let policy = Capped(std::cell::Cell::new(4000), vec![]);
    let send = |srv: &mut Dhcpv6Server, m: &Msg, now: UnixTime, p: &Capped| {
        let bytes = m.bytes();
        srv.handle(
            now,
            Incoming {
                payload: &bytes,
                source: link_local(),
                interface: Some("eth0"),
                multicast: true,
            },
            p,
        )
    };
    let (adv, _) = reply(send(
        &mut srv,
        &Msg::new(MessageType::Solicit, 1).ia_na(1, &[]),
        NOW,
        &policy,
    ));
    let a = addrs_of(&ia_na_of(&adv))[0].0;
    let m = Msg::new(MessageType::Request, 1).server_id().ia_na(1, &[a]);
    let (rep, _) = reply(send(&mut srv, &m, NOW, &policy));
    assert_eq!(addrs_of(&ia_na_of(&rep))[0].2, 4000);
    policy.0.set(60);
    let later = NOW + Duration::from_secs(100);
    let m = Msg::new(MessageType::Rebind, 1).ia_na(1, &[a]);
    let (rep, r) = reply(send(&mut srv, &m, later, &policy));
    assert_eq!(
        addrs_of(&ia_na_of(&rep))[0].2,
        60,
        "the client is told the capped lifetime"
    );
    let end = NOW + Duration::from_secs(4000);
    assert_eq!(
        r.changes[0].valid_until, end,
        "the table keeps the earlier promise"
    );
    assert_eq!(srv.db().get(&LeaseKey::address(a)).unwrap().valid_until, end);
}

/// duet-sim seed 5532: a server that was down processes an expiry long
/// after it was due. The state change is dated when it happened (conflict
/// resolution compares that time with the partner's): stamped with the
/// restart time, the stale expiry outranked the partner's newer allocation
/// of the address to another client.
#[test]
fn a_late_expiry_is_dated_when_it_was_due() {
    let mut srv = server();
    let a = acquire(&mut srv, 1);
    let later = NOW + Duration::from_secs(10_000);
    let changed = srv.handle_timeout(later, &Standalone::default(), 10);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].key, LeaseKey::address(a));
    assert_eq!(changed[0].start_time_of_state, NOW + Duration::from_secs(4000));
}

#[test]
fn quiet_links_are_where_the_subnet_a_client_belongs_to_is_not_responsive() {
    use crate::policy::Responsiveness as R;
    let on = |iface: &str, prefix: &str, rel: Option<usize>| Subnet {
        prefix: prefix.parse().unwrap(),
        interface: Some(iface.into()),
        ranges: vec![],
        pd_pools: vec![],
        relationship: rel,
        ..subnet(("2001:db8:1::100", "2001:db8:1::1ff"))
    };
    let srv = Dhcpv6Server::new(
        server_duid(),
        vec![
            on("eth0", "2001:db8:1::/64", Some(0)),
            // A second subnet on eth0 never receives link-local clients.
            on("eth0", "2001:db8:2::/64", None),
            on("eth1", "2001:db8:3::/48", Some(1)),
            on("eth2", "2001:db8:3:1::/64", None),
        ],
        ServerOptions::default(),
        1,
    );
    let quiet = |a, b| srv.quiet_links(&Capped(std::cell::Cell::new(4000), vec![a, b]));
    let p = |s: &str| -> Ipv6Prefix { s.parse().unwrap() };
    let q = quiet(R::Responsive, R::Responsive);
    assert_eq!(q, QuietLinks::default());
    let q = quiet(R::RenewResponsive, R::Responsive);
    assert_eq!(q.interfaces, vec!["eth0"]);
    assert_eq!(q.prefixes, vec![p("2001:db8:1::/64")]);
    let q = quiet(R::Responsive, R::Unresponsive);
    assert_eq!(q.interfaces, vec!["eth1"]);
    // 2001:db8:3:1::/64, inside the quiet subnet's prefix, is a responsive
    // subnet: a quiet prefix never overlaps a responsive one.
    assert_eq!(q.prefixes, vec![]);
    let q = quiet(R::RenewResponsive, R::RenewResponsive);
    assert_eq!(q.interfaces, vec!["eth0", "eth1"]);
    assert_eq!(q.prefixes, vec![p("2001:db8:1::/64")]);
    // A standalone server is never quiet.
    assert_eq!(
        server().quiet_links(&Standalone::default()),
        QuietLinks::default()
    );
}

fn relayed(srv: &mut Dhcpv6Server, m: Message<'static>, now: UnixTime) -> Outcome {
    let bytes = m.to_vec().unwrap();
    srv.handle(
        now,
        Incoming {
            payload: &bytes,
            source: "2001:db8:ff::2".parse().unwrap(),
            interface: Some("eth1"),
            multicast: false,
        },
        &Standalone::default(),
    )
}

/// Issue 30 point 2: a relayed Request with ~2,000 IAs made a Relay-reply
/// too big to encode after every address of the pool was bound in memory:
/// nothing persisted, nothing sent, the pool empty until expiry.
#[test]
fn a_request_with_thousands_of_ias_is_answered_and_leaves_the_pool_alone() {
    for pd in [false, true] {
        let mut srv = server();
        let mut m = Msg::new(MessageType::Request, 1).server_id();
        for iaid in 0..2000 {
            m = if pd {
                m.ia_pd(iaid, None)
            } else {
                m.ia_na(iaid, &[])
            };
        }
        let req = Message::Client(m.0);
        assert!(req.to_vec().unwrap().len() > 32_000);
        let o = relayed(&mut srv, relay_forw(req, 0, "2001:db8:1::1", Some(b"port7")), NOW);
        let Outcome::Reply(r) = o else { panic!("{o:?}") };
        assert!(r.bytes.len() < 20_000, "{} bytes", r.bytes.len());
        let m = Message::parse(&r.bytes).unwrap();
        let (rep, _) = m.unwrap_relays().unwrap();
        let (grants, statuses) = grants_of(rep);
        assert_eq!(grants.len(), MAX_IAS_SERVED);
        assert_eq!(statuses.len(), MAX_IAS_ANSWERED);
        let beyond = if pd {
            StatusCode::NoPrefixAvail
        } else {
            StatusCode::NoAddrsAvail
        };
        assert!(statuses[MAX_IAS_SERVED..].iter().all(|s| s.1 == Some(beyond)));
        assert_eq!(
            (r.changes.len(), srv.db().len()),
            (MAX_IAS_SERVED, MAX_IAS_SERVED)
        );
        // Renew, Rebind and Release of them all are answered too.
        for t in [MessageType::Renew, MessageType::Release, MessageType::Rebind] {
            let mut m = Msg::new(t, 1);
            if t != MessageType::Rebind {
                m = m.server_id();
            }
            for iaid in 0..4000 {
                m = if pd {
                    m.ia_pd(iaid, None)
                } else {
                    m.ia_na(iaid, &[])
                };
            }
            let o = send(&mut srv, &m, NOW + Duration::from_secs(10));
            let (rep, r) = reply(o);
            assert!(r.bytes.len() < 20_000, "{t}: {} bytes", r.bytes.len());
            assert!(grants_of(&rep).1.len() <= MAX_IAS_ANSWERED);
        }
    }
}

#[test]
fn hints_beyond_the_cap_are_not_considered() {
    let mut srv = server();
    let hints: Vec<Ipv6Addr> = (0..2000u128)
        .map(|i| Ipv6Addr::from(0x2001_0db8_0001_0000_0000_0000_0000_0100 + i))
        .collect();
    let m = Msg::new(MessageType::Renew, 1).server_id().ia_na(1, &hints);
    let (rep, r) = reply(send(&mut srv, &m, NOW));
    assert!(r.bytes.len() < 2_000, "{} bytes", r.bytes.len());
    assert!(addrs_of(&ia_na_of(&rep)).len() <= MAX_LEASES_PER_IA);
}

/// A reply that cannot be sent changes nothing: here a relay's 64 KB
/// Interface-Id, echoed, leaves no room for the reply.
#[test]
fn a_reply_that_does_not_fit_leaves_no_trace() {
    let mut srv = server();
    let mut m = Msg::new(MessageType::Request, 1).server_id();
    for iaid in 0..20 {
        m = m.ia_na(iaid, &[]);
    }
    let id: &'static [u8] = vec![7u8; 64_900].leak();
    let o = relayed(
        &mut srv,
        relay_forw(Message::Client(m.0), 0, "2001:db8:1::1", Some(id)),
        NOW,
    );
    assert_eq!(dropped(o), Discard::ReplyTooLarge);
    assert_eq!(srv.db().len(), 0, "no lease recorded for a reply never sent");
    assert_eq!(
        srv.db().ranges()[0].free_in_class(0) + srv.db().ranges()[0].free_in_class(1),
        256
    );
}

// ---- host reservations -------------------------------------------------------

fn reserved_subnet() -> Subnet {
    use crate::config::{ClientIdentifier, OptionConfig, ReservationConfig};
    // Two addresses: ::100 reserved for client 5, ::101 dynamic.
    let mut s = subnet(("2001:db8:1::100", "2001:db8:1::101"));
    s.pd_pools = vec![("2001:db8:8000::/54".parse().unwrap(), 56)]; // 4 prefixes
    s.reservations = vec![
        ReservationConfig {
            client: ClientIdentifier::Duid(client_duid(5).as_bytes().to_vec()),
            addresses: vec!["2001:db8:1::100".parse().unwrap()],
            prefixes: vec!["2001:db8:8000:300::/56".parse().unwrap()],
            options: vec![OptionConfig {
                code: 65000,
                data: b"five".to_vec(),
                always_send: true,
            }],
        },
        ReservationConfig {
            // client 6 by its link-layer address (its DUID is a DUID-LL)
            client: ClientIdentifier::HwAddress(vec![2, 0, 0, 0, 0, 6]),
            addresses: vec![],
            prefixes: vec!["2001:db8:8000:200::/56".parse().unwrap()],
            options: vec![],
        },
    ];
    s
}

fn prefix_of(m: &ClientMessage<'_>) -> Option<Ipv6Prefix> {
    m.options.iter().find_map(|o| match o {
        DhcpOption::IaPd(pd) => pd.options.iter().find_map(|o| match o {
            DhcpOption::IaPrefix(p) if p.valid_lifetime > 0 => Some(Ipv6Prefix::new(p.prefix, p.prefix_len)),
            _ => None,
        }),
        _ => None,
    })
}

#[test]
fn a_reserved_address_and_prefix_go_to_their_owner_only() {
    let mut srv = server_with(reserved_subnet());
    // Client 1 takes the one dynamic address; client 2 then finds the pool
    // full: the reserved address is never offered to it.
    assert_eq!(
        acquire(&mut srv, 1),
        "2001:db8:1::101".parse::<Ipv6Addr>().unwrap()
    );
    for n in [2, 3] {
        let m = Msg::new(MessageType::Solicit, n).ia_na(1, &["2001:db8:1::100".parse().unwrap()]);
        let (adv, _) = reply(send(&mut srv, &m, NOW));
        assert!(addrs_of(&ia_na_of(&adv)).is_empty(), "client {n}: {adv:?}");
    }
    // The owner gets its address and its prefix, and its own option.
    let m = Msg::new(MessageType::Request, 5)
        .server_id()
        .ia_na(1, &[])
        .ia_pd(2, Some((56, Ipv6Addr::UNSPECIFIED)));
    let (rep, r) = reply(send(&mut srv, &m, NOW));
    assert_eq!(
        addrs_of(&ia_na_of(&rep))[0].0,
        "2001:db8:1::100".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(prefix_of(&rep), Some("2001:db8:8000:300::/56".parse().unwrap()));
    assert_eq!(r.changes.len(), 2);
    assert!(rep
        .options
        .iter()
        .any(|o| matches!(o, DhcpOption::Unknown { code: 65000, data } if &data[..] == b"five")));
    // Released and expired, still nobody else's.
    let rel = Msg::new(MessageType::Release, 5)
        .server_id()
        .ia_na(1, &["2001:db8:1::100".parse().unwrap()]);
    reply(send(&mut srv, &rel, NOW + Duration::from_secs(5)));
    let later = NOW + Duration::from_secs(10_000);
    for l in srv.handle_timeout(later, &Standalone::default(), 1000) {
        srv.db_mut().upsert(l).unwrap();
    }
    // (client 1's lease has run out meanwhile: ::101 is free again.)
    for n in [2, 3] {
        let m = Msg::new(MessageType::Request, n)
            .server_id()
            .ia_na(1, &["2001:db8:1::100".parse().unwrap()]);
        let (rep, _) = reply(send(&mut srv, &m, later));
        let got: Vec<Ipv6Addr> = addrs_of(&ia_na_of(&rep)).iter().map(|a| a.0).collect();
        assert!(
            !got.contains(&"2001:db8:1::100".parse().unwrap()),
            "client {n}: {got:?}"
        );
    }
    // Dynamic prefixes skip both reserved ones: 2 of 4 are left.
    for n in [7, 8] {
        let m = Msg::new(MessageType::Request, n)
            .server_id()
            .ia_pd(1, Some((56, Ipv6Addr::UNSPECIFIED)));
        let (rep, _) = reply(send(&mut srv, &m, later));
        let p = prefix_of(&rep).unwrap();
        assert!(
            !["2001:db8:8000:200::/56", "2001:db8:8000:300::/56"].contains(&p.to_string().as_str()),
            "{p}"
        );
    }
    let m = Msg::new(MessageType::Request, 9)
        .server_id()
        .ia_pd(1, Some((56, Ipv6Addr::UNSPECIFIED)));
    let (rep, _) = reply(send(&mut srv, &m, later));
    assert_eq!(prefix_of(&rep), None, "pool full but for the reservations");
}

#[test]
fn a_reservation_by_link_layer_address_matches_a_duid_ll() {
    let mut srv = server_with(reserved_subnet());
    let m = Msg::new(MessageType::Request, 6)
        .server_id()
        .ia_pd(1, Some((56, Ipv6Addr::UNSPECIFIED)));
    let (rep, _) = reply(send(&mut srv, &m, NOW));
    assert_eq!(prefix_of(&rep), Some("2001:db8:8000:200::/56".parse().unwrap()));
}

/// A lease given before its address was reserved for someone else is not
/// extended: the holder's Renew gets it back with lifetimes 0.
#[test]
fn a_lease_that_conflicts_with_a_reservation_is_not_renewed() {
    let mut plain = server_with(subnet(("2001:db8:1::100", "2001:db8:1::100")));
    assert_eq!(
        acquire(&mut plain, 1),
        "2001:db8:1::100".parse::<Ipv6Addr>().unwrap()
    );
    let mut srv = server_with(reserved_subnet());
    for l in plain.db().iter() {
        srv.db_mut().upsert(l.clone()).unwrap();
    }
    let conflicts = srv.reservation_conflicts(NOW);
    assert_eq!(conflicts.len(), 1, "reported at start");
    assert_eq!(
        conflicts[0].0.key,
        LeaseKey::address("2001:db8:1::100".parse().unwrap())
    );
    let m = Msg::new(MessageType::Renew, 1)
        .server_id()
        .ia_na(1, &["2001:db8:1::100".parse().unwrap()]);
    let (rep, _) = reply(send(&mut srv, &m, NOW + Duration::from_secs(100)));
    let a = addrs_of(&ia_na_of(&rep));
    assert_eq!(a, vec![("2001:db8:1::100".parse().unwrap(), 0, 0)]);
    // The owner cannot have it while the other lease runs; it gets
    // nothing else either (the other address is not reserved for it).
    let m = Msg::new(MessageType::Solicit, 5).ia_na(1, &[]);
    let (adv, _) = reply(send(&mut srv, &m, NOW + Duration::from_secs(100)));
    assert_ne!(
        addrs_of(&ia_na_of(&adv)).first().map(|a| a.0),
        Some("2001:db8:1::100".parse().unwrap())
    );
}

/// RFC 8415 §21.18: a subnet configured with the Interface-Id its relay
/// adds is chosen by it, whatever the link-address says; a relay without
/// it (or with another) is matched by link-address as before.
#[test]
fn a_relay_interface_id_selects_its_subnet() {
    let mut a = subnet(("2001:db8:1::100", "2001:db8:1::1ff"));
    a.interface = None;
    let mut b = subnet(("2001:db8:2::100", "2001:db8:2::1ff"));
    b.prefix = "2001:db8:2::/64".parse().unwrap();
    b.interface = None;
    b.interface_id = Some(b"vlan-20".to_vec());
    let mut srv = Dhcpv6Server::new(server_duid(), vec![a, b], ServerOptions::default(), 1);
    let offered = |srv: &mut Dhcpv6Server, link: &str, id: Option<&'static [u8]>| {
        let solicit = Message::Client(Msg::new(MessageType::Solicit, 1).ia_na(1, &[]).0);
        let Outcome::Reply(r) = relayed(srv, relay_forw(solicit, 0, link, id), NOW) else {
            panic!("no reply")
        };
        let m = Message::parse(&r.bytes).unwrap();
        let (adv, _) = m.unwrap_relays().unwrap();
        addrs_of(&ia_na_of(adv))[0].0
    };
    let in_b = |a: Ipv6Addr| "2001:db8:2::/64".parse::<Ipv6Prefix>().unwrap().contains(a);
    assert!(
        in_b(offered(&mut srv, "2001:db8:1::1", Some(b"vlan-20"))),
        "by Interface-Id"
    );
    assert!(
        in_b(offered(&mut srv, "::", Some(b"vlan-20"))),
        "no link-address needed"
    );
    assert!(
        !in_b(offered(&mut srv, "2001:db8:1::1", Some(b"vlan-30"))),
        "by link-address"
    );
    assert!(!in_b(offered(&mut srv, "2001:db8:1::1", None)));
}
