//! Conflict resolution (RFC 8156 §7.5.4, figure 4), BNDUPD/BNDREPLY
//! contents (§7.4, §7.6) and the binding-status transitions (§7.2).

use super::*;
use crate::lease::FailoverTimes;
use duet_wire::StreamMessage;
use std::net::Ipv6Addr;
use std::time::Duration;

const NOW: UnixTime = UnixTime(1_800_000_000);

fn addr(s: &str) -> LeaseKey {
    LeaseKey::address(s.parse::<Ipv6Addr>().unwrap())
}

fn bk(n: u8) -> BindingKey {
    BindingKey {
        duid: vec![0, 3, 0, 1, n],
        kind: LeaseKind::Na,
        iaid: 1,
    }
}

fn lease(
    key: LeaseKey,
    state: LeaseState,
    client: Option<u8>,
    cltt: u64,
    start: u64,
    valid_until: u64,
) -> Lease {
    Lease {
        key,
        binding: client.map(bk),
        state,
        preferred_until: UnixTime(valid_until),
        valid_until: UnixTime(valid_until),
        t1: 10,
        t2: 20,
        cltt: UnixTime(cltt),
        start_time_of_state: UnixTime(start),
        state_expiration: (state == LeaseState::Active).then_some(UnixTime(valid_until)),
        failover: FailoverTimes::default(),
    }
}

fn update(
    key: LeaseKey,
    status: BindingStatus,
    client: Option<u8>,
    clt: Option<u64>,
    start: u64,
) -> LeaseUpdate {
    LeaseUpdate {
        key,
        binding: client.map(bk),
        status,
        t1: 10,
        t2: 20,
        preferred_lifetime: 100,
        valid_lifetime: 100,
        start_time_of_state: Some(UnixTime(start)),
        state_expiration: Some(NOW + Duration::from_secs(100)),
        clt: clt.map(UnixTime),
        partner_lifetime: Some(AbsTime(7)),
        partner_raw_clt: None,
        expiration_time: None,
        base: NOW,
    }
}

const T: u64 = NOW.0;
const ODD: &str = "2001:db8::1";

#[test]
fn accept_cell_takes_the_later_update() {
    let local = lease(addr(ODD), LeaseState::Released, Some(1), T - 100, T - 100, 0);
    let newer = update(addr(ODD), BindingStatus::Active, Some(2), Some(T - 10), T - 10);
    assert_eq!(resolve(Some(&local), &newer, NOW, Role::Primary), Ok(()));
    let older = update(addr(ODD), BindingStatus::Active, Some(2), Some(T - 200), T - 200);
    assert_eq!(
        resolve(Some(&local), &older, NOW, Role::Secondary),
        Err(StatusCode::OutdatedBindingInformation)
    );
}

#[test]
fn equal_times_within_five_seconds_favour_the_primary_data() {
    let mut local = lease(addr(ODD), LeaseState::Released, Some(1), T - 100, T - 100, 0);
    // The release was recorded knowing the partner's contact (clocks agree
    // within 5 s): no crossing, the plain tie-break.
    local.failover.partner_raw_cltt = UnixTime(T - 97);
    let tie = update(addr(ODD), BindingStatus::Active, Some(1), Some(T - 97), T - 97);
    assert_eq!(
        resolve(Some(&local), &tie, NOW, Role::Secondary),
        Ok(()),
        "secondary accepts"
    );
    assert_eq!(
        resolve(Some(&local), &tie, NOW, Role::Primary),
        Err(StatusCode::OutdatedBindingInformation),
        "primary keeps its own"
    );
}

/// duet-sim seed 13618: the secondary had given its own (even) address,
/// just acknowledged free, to a new client when the primary's copy of the
/// previous client's RELEASED binding came back within 5 s. The tie must
/// not end the new binding; and the primary, still holding RELEASED, takes
/// the secondary's new binding (its pool, its allocation).
#[test]
fn a_tie_never_ends_another_clients_active_binding() {
    const EVEN: &str = "2001:db8::2";
    let local = lease(addr(EVEN), LeaseState::Active, Some(7), T, T, T + 60);
    for s in [
        BindingStatus::Released,
        BindingStatus::Reset,
        BindingStatus::Abandoned,
    ] {
        let old = update(addr(EVEN), s, Some(11), None, T - 1);
        assert_eq!(
            resolve(Some(&local), &old, NOW, Role::Secondary),
            Err(StatusCode::OutdatedBindingInformation),
            "{s:?}"
        );
    }
    // The same client's release within the tie is still taken, when its
    // server knew of our contact with the client.
    let mut own = update(addr(EVEN), BindingStatus::Released, Some(7), Some(T + 1), T + 1);
    own.partner_raw_clt = Some(UnixTime(T));
    assert_eq!(resolve(Some(&local), &own, NOW, Role::Secondary), Ok(()));
    // The primary's side: RELEASED (client 11) and the secondary's ACTIVE
    // for client 7 at the same second.
    let primary = lease(addr(EVEN), LeaseState::Released, Some(11), 0, T, T + 1800);
    let new = update(addr(EVEN), BindingStatus::Active, Some(7), Some(T + 1), T + 1);
    assert_eq!(resolve(Some(&primary), &new, NOW, Role::Primary), Ok(()));
    // Not for an address of the primary's own half: there the tie is the
    // primary's to win.
    let mine = lease(addr(ODD), LeaseState::Released, Some(11), 0, T, T + 1800);
    let theirs = update(addr(ODD), BindingStatus::Active, Some(7), Some(T + 1), T + 1);
    assert_eq!(
        resolve(Some(&mine), &theirs, NOW, Role::Primary),
        Err(StatusCode::OutdatedBindingInformation)
    );
}

/// duet-sim seed 43557: refused by each other (a clock stepped 8.6 s
/// ahead), the primary took client 21's Release, then the secondary gave
/// the client its binding again on a new Request; the stepped clock put
/// the two within 5 s. Neither knew of the other's contact, so the ACTIVE
/// binding wins the tie on both sides, whichever holds what.
#[test]
fn a_tie_between_a_release_and_the_same_clients_crossing_grant_keeps_the_grant() {
    let known_before = T - 300;
    // The secondary's new grant, and the primary's Release 5 s before it
    // (by the clocks), recorded knowing only the secondary's older contact.
    let mut active = lease(addr(ODD), LeaseState::Active, Some(21), T, T - 1000, T + 1800);
    active.failover.partner_raw_cltt = UnixTime(T - 600);
    let mut released = lease(addr(ODD), LeaseState::Released, Some(21), T - 5, T - 5, T + 1200);
    released.failover.partner_raw_cltt = UnixTime(known_before);
    let release = LeaseUpdate {
        partner_raw_clt: Some(UnixTime(known_before)),
        ..update(addr(ODD), BindingStatus::Released, Some(21), Some(T - 5), T - 5)
    };
    let grant = LeaseUpdate {
        partner_raw_clt: Some(UnixTime(T - 600)),
        ..update(addr(ODD), BindingStatus::Active, Some(21), Some(T), T - 1000)
    };
    for (holder, partner) in [(Role::Secondary, Role::Primary), (Role::Primary, Role::Secondary)] {
        assert_eq!(
            resolve(Some(&active), &release, NOW, holder),
            Err(StatusCode::OutdatedBindingInformation),
            "the {holder:?} keeps the client's binding"
        );
        assert_eq!(
            resolve(Some(&released), &grant, NOW, partner),
            Ok(()),
            "the {partner:?} takes it"
        );
    }
    // A Release recorded knowing the grant is the later event: the plain
    // tie-break (the secondary takes the primary's data).
    let after = LeaseUpdate {
        partner_raw_clt: Some(UnixTime(T)),
        ..release.clone()
    };
    assert_eq!(resolve(Some(&active), &after, NOW, Role::Secondary), Ok(()));
    released.failover.partner_raw_cltt = UnixTime(T);
    assert_eq!(
        resolve(Some(&released), &grant, NOW, Role::Primary),
        Err(StatusCode::OutdatedBindingInformation)
    );
    // Outside the tie the times decide, as ever.
    let later = LeaseUpdate {
        partner_raw_clt: Some(UnixTime(known_before)),
        ..update(addr(ODD), BindingStatus::Released, Some(21), Some(T + 10), T + 10)
    };
    assert_eq!(resolve(Some(&active), &later, NOW, Role::Secondary), Ok(()));
}

#[test]
fn active_versus_active_same_client_is_accepted() {
    let local = lease(addr(ODD), LeaseState::Active, Some(1), T, T, T + 100);
    let u = update(addr(ODD), BindingStatus::Active, Some(1), Some(T - 500), T - 500);
    assert_eq!(resolve(Some(&local), &u, NOW, Role::Primary), Ok(()));
}

#[test]
fn active_versus_active_other_client_primary_wins_unless_time2() {
    let local = lease(addr(ODD), LeaseState::Active, Some(1), T - 50, T - 50, T + 100);
    let u = update(addr(ODD), BindingStatus::Active, Some(2), Some(T - 40), T - 40);
    assert_eq!(
        resolve(Some(&local), &u, NOW, Role::Primary),
        Ok(()),
        "time(2): update's CLT later than our start"
    );
    let stale = update(addr(ODD), BindingStatus::Active, Some(2), Some(T - 60), T - 60);
    assert_eq!(
        resolve(Some(&local), &stale, NOW, Role::Primary),
        Err(StatusCode::AddressInUse)
    );
    assert_eq!(
        resolve(Some(&local), &stale, NOW, Role::Secondary),
        Ok(()),
        "the secondary always yields"
    );
}

#[test]
fn active_versus_expired_or_free_needs_our_lease_to_have_run_out() {
    let local = lease(addr(ODD), LeaseState::Active, Some(1), T - 50, T - 50, T + 10);
    for s in [
        BindingStatus::Expired,
        BindingStatus::Free,
        BindingStatus::FreeBackup,
    ] {
        let u = update(addr(ODD), s, Some(1), Some(T), T);
        assert_eq!(
            resolve(Some(&local), &u, NOW, Role::Secondary),
            Err(StatusCode::OutdatedBindingInformation)
        );
        assert_eq!(
            resolve(Some(&local), &u, NOW + Duration::from_secs(10), Role::Secondary),
            Ok(())
        );
    }
}

#[test]
fn reset_versus_active_uses_time2_and_rejects_without_clt() {
    let local = lease(addr(ODD), LeaseState::Reset, None, 0, T - 50, 0);
    let with_clt = update(addr(ODD), BindingStatus::Active, Some(2), Some(T - 10), T - 10);
    assert_eq!(resolve(Some(&local), &with_clt, NOW, Role::Primary), Ok(()));
    let no_clt = update(addr(ODD), BindingStatus::Active, Some(2), None, T - 10);
    assert_eq!(
        resolve(Some(&local), &no_clt, NOW, Role::Primary),
        Err(StatusCode::OutdatedBindingInformation),
        "A8"
    );
}

#[test]
fn active_update_for_a_free_lease_in_the_senders_pool_is_accepted() {
    // An even address is the secondary's: its allocation is never judged by time.
    let even = "2001:db8::2";
    let local = lease(addr(even), LeaseState::FreeBackup, None, 0, T - 1, 0);
    let u = update(addr(even), BindingStatus::Active, Some(3), Some(T - 1), T - 1);
    assert_eq!(resolve(Some(&local), &u, NOW, Role::Primary), Ok(()));
}

#[test]
fn no_local_record_accepts() {
    let u = update(addr(ODD), BindingStatus::Active, Some(3), Some(T), T);
    assert_eq!(resolve(None, &u, NOW, Role::Primary), Ok(()));
}

#[test]
fn apply_stores_times_per_section_7_5_5() {
    let mut u = update(addr(ODD), BindingStatus::Active, Some(3), Some(T - 5), T - 5);
    u.partner_lifetime = Some((NOW + Duration::from_secs(900)).to_abs());
    u.expiration_time = Some(NOW + Duration::from_secs(50));
    let l = apply(None, &u, NOW).unwrap();
    assert_eq!(l.state, LeaseState::Active);
    assert_eq!(l.binding, Some(bk(3)));
    assert_eq!(
        l.valid_until,
        NOW + Duration::from_secs(95),
        "the lifetime as given, from the client contact (CLT_TIME)"
    );
    assert_eq!(
        l.active_end(),
        NOW + Duration::from_secs(100),
        "the state's end (OPTION_F_STATE_EXPIRATION_TIME)"
    );
    assert_eq!(
        l.failover.expiration_time,
        NOW + Duration::from_secs(900),
        "expiration-time ← PARTNER_LIFETIME"
    );
    assert_eq!(
        l.failover.partner_raw_cltt,
        UnixTime(T - 5),
        "partner-raw-clt-time ← CLT_TIME (A10)"
    );
    assert_eq!(
        l.failover.partner_lifetime,
        NOW + Duration::from_secs(50),
        "partner-lifetime ← EXPIRATION_TIME"
    );
    assert_eq!(l.start_time_of_state, UnixTime(T - 5), "A9");
    assert!(!l.failover.pending_update);
}

#[test]
fn pending_free_resolves_by_the_pool_rule() {
    assert_eq!(
        pending_free_resolves_to(&addr("2001:db8::1")),
        LeaseState::Free,
        "odd: primary's"
    );
    assert_eq!(
        pending_free_resolves_to(&addr("2001:db8::2")),
        LeaseState::FreeBackup,
        "even: secondary's"
    );
    let p = LeaseKey::prefix("2001:db8:8000:100::/56".parse().unwrap());
    assert_eq!(
        pending_free_resolves_to(&p),
        LeaseState::Free,
        "prefixes return to the primary"
    );
}

#[test]
fn bndupd_round_trips_through_the_wire_and_back() {
    let mut l = lease(addr(ODD), LeaseState::Active, Some(4), T - 20, T - 20, T + 1000);
    l.failover.partner_lifetime = NOW + Duration::from_secs(5000);
    let msg = build_bndupd(&l, LeaseState::Active, TransactionId::new(9).unwrap(), NOW).unwrap();
    let bytes = msg.to_vec().unwrap();
    let StreamMessage::Failover(parsed) = StreamMessage::parse(&bytes).unwrap() else {
        panic!()
    };
    let ups = parse_bndupd(&parsed, NOW).unwrap();
    let u = ups[0].clone().unwrap();
    assert_eq!(u.key, l.key);
    assert_eq!(u.binding, l.binding);
    assert_eq!(u.status, BindingStatus::Active);
    assert_eq!(u.clt, Some(UnixTime(T - 20)));
    assert_eq!(u.state_expiration, Some(UnixTime(T + 1000)));
    assert_eq!(
        u.partner_lifetime,
        Some((NOW + Duration::from_secs(5000)).to_abs())
    );
    let back = apply(None, &u, NOW).unwrap();
    assert_eq!(
        (back.state, back.valid_until, back.binding.clone()),
        (l.state, l.valid_until, l.binding.clone())
    );
    // BNDREPLY echoes PARTNER_LIFETIME as PARTNER_LIFETIME_SENT, bit for bit.
    let reply = build_bndreply(
        &parsed,
        &[Verdict {
            update: &u,
            result: Ok(()),
        }],
        None,
        NOW,
    );
    let acks = parse_bndreply(&reply);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].result, Ok(()));
    assert_eq!(acks[0].partner_lifetime_sent, u.partner_lifetime);
}

#[test]
fn bndupd_for_a_delegable_prefix_uses_the_top_level_iaprefix() {
    let key = LeaseKey::prefix("2001:db8:8000:100::/56".parse().unwrap());
    let l = Lease::free(key, LeaseState::FreeBackup, NOW);
    let msg = build_bndupd(&l, LeaseState::FreeBackup, TransactionId::new(3).unwrap(), NOW).unwrap();
    assert!(matches!(msg.options.as_slice(), [DhcpOption::IaPrefix(_)]));
    let u = parse_bndupd(&msg, NOW).unwrap().remove(0).unwrap();
    assert_eq!(
        (u.key, u.status, u.binding),
        (key, BindingStatus::FreeBackup, None)
    );
}

#[test]
fn bndupd_without_client_data_is_missing_binding_information() {
    let m = FailoverMessage::new(
        FailoverMessageType::BndUpd,
        TransactionId::new(1).unwrap(),
        NOW.to_abs(),
    );
    assert_eq!(
        parse_bndupd(&m, NOW).unwrap_err().0,
        StatusCode::MissingBindingInformation
    );
}

#[test]
fn bndreply_rejection_at_container_level_rejects_every_lease() {
    let l = lease(addr(ODD), LeaseState::Active, Some(4), T, T, T + 10);
    let msg = build_bndupd(&l, LeaseState::Active, TransactionId::new(9).unwrap(), NOW).unwrap();
    let u = parse_bndupd(&msg, NOW).unwrap().remove(0).unwrap();
    let reply = build_bndreply(
        &msg,
        &[Verdict {
            update: &u,
            result: Err(StatusCode::OutdatedBindingInformation),
        }],
        None,
        NOW,
    );
    assert_eq!(
        parse_bndreply(&reply)[0].result,
        Err(StatusCode::OutdatedBindingInformation)
    );
    let whole = build_bndreply(
        &msg,
        &[],
        Some((StatusCode::ConfigurationConflict, "unknown VPN")),
        NOW,
    );
    let mut cd = whole.clone();
    // A reply that rejects the container holds no lease at all.
    assert!(parse_bndreply(&whole).is_empty());
    cd.options.clear();
    assert!(parse_bndreply(&cd).is_empty());
}

/// duet-sim seed 7697: our copy of a client's binding ran out (EXPIRED,
/// dated when it was due) while the partner renewed it at that very moment
/// ("equal" times: the primary would reject forever). The partner knows
/// the same binding runs longer: accepted, whatever the role.
#[test]
fn expired_copy_of_a_binding_the_partner_renewed_for_longer_is_replaced() {
    let local = lease(addr(ODD), LeaseState::Expired, Some(1), 0, T - 100, T - 100);
    let renewal = update(addr(ODD), BindingStatus::Active, Some(1), Some(T - 100), T - 500);
    assert_eq!(resolve(Some(&local), &renewal, NOW, Role::Primary), Ok(()));
    // Another client's allocation is still judged by the times.
    let other = update(addr(ODD), BindingStatus::Active, Some(2), Some(T - 100), T - 100);
    assert_eq!(
        resolve(Some(&local), &other, NOW, Role::Primary),
        Err(StatusCode::OutdatedBindingInformation)
    );
}
