//! What an operator lives with (issue 26): automatic PARTNER-DOWN that
//! never fires while the partner is alive, state times across restarts,
//! the planned handover, the rescue of stranded clients, commissioning, a
//! partner lost while recovering, and the RFC rules about partners that
//! stop answering, CONNECT_FLAGS, the relationship name, VPNs and the
//! lifetimes a BNDUPD reports.

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn refusal_held(p: &Pair, i: usize) -> Option<String> {
    p.nodes[i].ep().status().auto_partner_down_held
}

/// A started pair with automatic PARTNER-DOWN after `apd` on both sides.
fn started_with_auto_pd(apd: u64) -> Pair {
    let mut p = started(60);
    for i in [PRIMARY, SECONDARY] {
        p.nodes[i].ep_mut().cfg.auto_partner_down = Some(secs(apd));
    }
    p
}

// ---- automatic PARTNER-DOWN --------------------------------------------------

#[test]
fn a_partner_refused_for_its_configuration_never_brings_auto_partner_down() {
    let mut p = started_with_auto_pd(20);
    // A pool edited on one side only: the secondary refuses every CONNECT.
    p.nodes[SECONDARY].ep_mut().cfg.fingerprint = Some(b"pools-v2".to_vec());
    p.disconnect();
    p.advance(300);
    for i in [PRIMARY, SECONDARY] {
        assert_eq!(p.state(i), ServerState::CommunicationsInterrupted, "node {i}");
        let held = refusal_held(&p, i).expect("held off, and says why");
        assert!(held.contains("configuration"), "{held}");
        assert_eq!(p.nodes[i].ep().status().auto_partner_down_at, None);
    }
    let r = p.nodes[PRIMARY].ep().status().refusal.unwrap();
    assert!(!r.by_us && r.kind == RefusalKind::Configuration, "{r:?}");
    assert!(p.nodes[SECONDARY].ep().status().refusal.unwrap().by_us);
    // Fixed: the pair is NORMAL again and the refusal is forgotten.
    p.nodes[SECONDARY].ep_mut().cfg.fingerprint = Some(b"pools-v1".to_vec());
    p.advance(5);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.nodes[PRIMARY].ep().status().refusal, None);
}

/// The bare rule (time in COMMUNICATIONS-INTERRUPTED while no connection is
/// up) sends both partners to PARTNER-DOWN between the retries of a refused
/// partner: what the simulator's sabotage switch keeps, and why duet does
/// not use it.
#[test]
fn the_bare_rule_reaches_partner_down_on_both_sides_of_a_refusal() {
    let mut p = started_with_auto_pd(20);
    for i in [PRIMARY, SECONDARY] {
        p.nodes[i]
            .ep_mut()
            .set_auto_partner_down_rule(AutoPartnerDownRule::CommunicationsLostOnly);
    }
    p.nodes[SECONDARY].ep_mut().cfg.fingerprint = Some(b"pools-v2".to_vec());
    p.disconnect();
    p.advance(60);
    assert_eq!(p.state(PRIMARY), ServerState::PartnerDown);
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
}

#[test]
fn a_partner_refused_for_its_clock_never_brings_auto_partner_down() {
    let mut p = started_with_auto_pd(20);
    p.nodes[SECONDARY].skew = 9;
    p.advance(300);
    for i in [PRIMARY, SECONDARY] {
        assert_eq!(p.state(i), ServerState::CommunicationsInterrupted, "node {i}");
        assert!(refusal_held(&p, i).unwrap().contains("time-skew"));
    }
}

#[test]
fn auto_partner_down_counts_from_the_last_thing_heard() {
    let mut p = started_with_auto_pd(20);
    p.crash(PRIMARY);
    let lost = p.now;
    // The primary's connection attempts reach the secondary's daemon but
    // fail before CONNECT (say, TLS handshakes cut short): alive.
    for _ in 0..10 {
        p.advance(5);
        let at = p.nodes[SECONDARY].at(p.now);
        p.nodes[SECONDARY].node.partner_attempt(at, 0, None);
        p.flush(SECONDARY);
    }
    assert_eq!(p.state(SECONDARY), ServerState::CommunicationsInterrupted);
    let last = p.now;
    let st = p.nodes[SECONDARY].ep().status();
    assert_eq!(st.last_heard, last);
    assert_eq!(st.auto_partner_down_at, Some(last + secs(20)));
    assert!(last > lost + secs(20));
    p.advance(19);
    assert_eq!(p.state(SECONDARY), ServerState::CommunicationsInterrupted);
    p.advance(2);
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
}

#[test]
fn a_refused_connection_attempt_holds_auto_partner_down_off() {
    let mut p = started_with_auto_pd(20);
    p.crash(PRIMARY);
    let at = p.nodes[SECONDARY].at(p.now);
    p.nodes[SECONDARY].node.partner_attempt(
        at,
        0,
        Some((
            RefusalKind::Identity,
            "certificate: name is not primary.example".into(),
        )),
    );
    p.flush(SECONDARY);
    p.advance(120);
    assert_eq!(p.state(SECONDARY), ServerState::CommunicationsInterrupted);
    assert!(refusal_held(&p, SECONDARY).unwrap().contains("identity"));
    // The operator may still act.
    p.partner_down(SECONDARY).unwrap();
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
}

// ---- state times across restarts (§8.3.2) ------------------------------------

/// The secondary declared PARTNER-DOWN while the primary still served (a
/// partition), then restarted after the primary stopped. The PARTNER-DOWN
/// time it announces is the original one, so the returning primary, which
/// served after it, resolves the conflict (POTENTIAL-CONFLICT) instead of
/// recovering as if it had been down all along (RECOVER).
#[test]
fn the_partner_down_time_survives_a_restart() {
    let mut p = started(60);
    p.partitioned = true;
    p.disconnect();
    p.advance(2);
    p.partner_down(SECONDARY).unwrap();
    let pd_since = p.nodes[SECONDARY].ep().status().since;
    p.advance(30);
    // The primary serves on, then stops.
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.advance(15);
    p.crash(PRIMARY);
    p.advance(30);
    p.restart(SECONDARY, false);
    p.advance(1);
    assert_eq!(
        p.nodes[SECONDARY].ep().record().state_since,
        pd_since,
        "recorded during STARTUP"
    );
    p.advance(20);
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
    assert_eq!(p.nodes[SECONDARY].ep().status().since, pd_since);
    p.restart(PRIMARY, false);
    p.partitioned = false;
    p.advance(3);
    let announced = p
        .delivered
        .iter()
        .filter(|(to, m)| *to == PRIMARY && m.msg_type == FailoverMessageType::State)
        .find_map(|(_, m)| {
            m.options.iter().find_map(|o| match o {
                DhcpOption::PartnerDownTime(t) => Some(UnixTime::from_abs(*t, p.now)),
                _ => None,
            })
        })
        .expect("a STATE with PARTNER_DOWN_TIME");
    assert_eq!(announced, pd_since);
    assert!(
        p.nodes[PRIMARY].events.iter().any(|e| matches!(
            e,
            Event::StateChanged {
                to: ServerState::PotentialConflict,
                ..
            }
        )),
        "{:?}",
        p.nodes[PRIMARY].events
    );
    p.settle();
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    p.assert_tables_equal();
}

// ---- planned handover ----------------------------------------------------------

fn handover(p: &mut Pair, i: usize) -> Result<(), crate::node::NodeCommandError> {
    let at = p.nodes[i].at(p.now);
    let r = p.nodes[i].node.handover(at, "pair-1", secs(10));
    p.flush(i);
    r
}

#[test]
fn a_planned_handover_sends_everything_then_the_partner_takes_over_at_once() {
    let mut p = started(60);
    for c in 0..20 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
        p.acquire(PRIMARY, 100 + c, Pair::ia_pd()).unwrap();
    }
    // Updates still in flight or queued when the handover starts.
    assert!(p.nodes[PRIMARY].ep().status().queued_bndupd + p.nodes[PRIMARY].ep().status().unacked_bndupd > 0);
    assert!(p.nodes[PRIMARY].ep().status().partner_handover);
    handover(&mut p, PRIMARY).unwrap();
    assert_eq!(p.nodes[PRIMARY].ep().status().handover, Some("leaving"));
    // From now on the primary answers no client.
    assert!(p.acquire(PRIMARY, 500, Pair::ia_na(None)).is_none());
    p.drive();
    assert!(p.nodes[PRIMARY].events.contains(&Event::HandoverDone));
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown, "at once");
    assert_eq!(p.state(PRIMARY), ServerState::Recover);
    assert_eq!(p.nodes[PRIMARY].ep().status().handover, Some("handed-over"));
    let rec = p.nodes[PRIMARY].ep().record();
    assert!(rec.handed_over && rec.state == u8::from(ServerState::Recover));
    // The recorded handover was durable before the partner heard of it.
    let stored: EndpointRecord = serde_json::from_slice(
        &p.nodes[PRIMARY].store.load().unwrap().meta[&crate::node::meta_endpoint("pair-1")],
    )
    .unwrap();
    assert!(stored.handed_over);
    // The survivor has every binding, serves everyone, uncapped.
    p.assert_tables_equal();
    p.assert_no_duplicates();
    assert_eq!(p.nodes[SECONDARY].ep().status().partner_state, None);
    let (_, valid) = p.rebind(SECONDARY, 3).unwrap();
    assert_eq!(valid, 3000, "PARTNER-DOWN: no MCLT cap");
    p.acquire(SECONDARY, 600, Pair::ia_na(None)).unwrap();
    // The parked primary stays out: no reconnection takes it back.
    p.advance(30);
    assert_eq!(p.state(PRIMARY), ServerState::Recover);
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
    // It restarts and recovers through RECOVER without waiting MCLT.
    p.restart(PRIMARY, false);
    p.advance(4);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
    assert!(!p.nodes[PRIMARY].ep().record().handed_over);
}

/// duet-sim seed 15273: the handover's DISCONNECT, held up 6 s by a
/// partition, looked like a clock skew (§7.5.1) and the partner dropped
/// it: COMMUNICATIONS-INTERRUPTED instead of PARTNER-DOWN. A DISCONNECT
/// ends the connection either way and carries no time to compare.
#[test]
fn a_late_handover_disconnect_still_puts_the_partner_in_partner_down() {
    let mut p = started(60);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    handover(&mut p, PRIMARY).unwrap();
    while !p.nodes[PRIMARY].events.contains(&Event::HandoverDone) {
        assert!(p.step(), "the handover completes");
    }
    // The DISCONNECT is on its way; it arrives 7 s "late".
    p.nodes[SECONDARY].skew = 7;
    p.drive();
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
}

#[test]
fn a_handed_over_server_resumes_on_command() {
    let mut p = started(60);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    handover(&mut p, PRIMARY).unwrap();
    p.advance(10);
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
    let at = p.nodes[PRIMARY].at(p.now);
    p.nodes[PRIMARY].node.resume(at, "pair-1").unwrap();
    p.advance(6);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    let at = p.nodes[PRIMARY].at(p.now);
    assert!(p.nodes[PRIMARY].node.resume(at, "pair-1").is_err());
}

#[test]
fn a_handover_the_partner_does_not_acknowledge_is_abandoned_and_serving_goes_on() {
    let mut p = started(60);
    p.drop_to[PRIMARY].push(FailoverMessageType::BndReply);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    handover(&mut p, PRIMARY).unwrap();
    p.advance(12);
    assert!(p.nodes[PRIMARY]
        .events
        .iter()
        .any(|e| matches!(e, Event::HandoverFailed(why) if why.contains("unacknowledged"))));
    assert_eq!(p.nodes[PRIMARY].ep().status().handover, None);
    assert_ne!(p.state(SECONDARY), ServerState::PartnerDown);
    assert!(p.acquire(PRIMARY, 2, Pair::ia_na(None)).is_some(), "serves on");
}

/// duet-sim seeds 38069 and 51902: the connection reset while the
/// handover waited for acknowledgements; the leaver, now in
/// COMMUNICATIONS-INTERRUPTED, still answered no client until its next
/// timer. Its partner got no handover DISCONNECT and will not take over,
/// so the handover is abandoned as the connection goes.
#[test]
fn a_handover_that_loses_the_partner_is_abandoned_at_once() {
    let mut p = started(60);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.drop_to[PRIMARY].push(FailoverMessageType::BndReply);
    p.acquire(PRIMARY, 2, Pair::ia_na(None)).unwrap();
    handover(&mut p, PRIMARY).unwrap();
    assert_eq!(p.nodes[PRIMARY].ep().status().handover, Some("leaving"));
    // No time passes: no timer runs.
    p.disconnect();
    assert_eq!(p.state(PRIMARY), ServerState::CommunicationsInterrupted);
    assert!(p.nodes[PRIMARY]
        .events
        .iter()
        .any(|e| matches!(e, Event::HandoverFailed(why) if why.contains("communications-interrupted"))));
    assert_eq!(p.nodes[PRIMARY].ep().status().handover, None);
    assert!(p.renew(PRIMARY, 1).is_some(), "serves on");
}

#[test]
fn a_handover_needs_normal_and_a_partner_that_supports_it() {
    let mut p = started(60);
    p.nodes[PRIMARY].ep_mut().partner_extensions = 0;
    let e = handover(&mut p, PRIMARY).unwrap_err().to_string();
    assert!(e.contains("did not announce planned handover"), "{e}");
    p.crash(SECONDARY);
    p.advance(12);
    let e = handover(&mut p, PRIMARY).unwrap_err().to_string();
    assert!(e.contains("needs NORMAL"), "{e}");
}

/// A peer without the extension gets plain RFC 8156: a DISCONNECT that
/// says "handover" means nothing unless both announced it... and duet
/// announces it in CONNECT and CONNECTREPLY.
#[test]
fn both_partners_announce_the_handover_extension() {
    let p = started(60);
    for (to, t) in [
        (SECONDARY, FailoverMessageType::Connect),
        (PRIMARY, FailoverMessageType::ConnectReply),
    ] {
        let m = &p
            .delivered
            .iter()
            .find(|(d, m)| *d == to && m.msg_type == t)
            .unwrap()
            .1;
        let ext = m.options.iter().find_map(|o| match o {
            DhcpOption::VendorOpts(v) if v.enterprise_number == FINGERPRINT_ENTERPRISE => v
                .options
                .iter()
                .find(|s| s.code == EXTENSIONS_SUBOPTION)
                .map(|s| s.data.to_vec()),
            _ => None,
        });
        assert_eq!(ext, Some(EXTENSION_HANDOVER.to_be_bytes().to_vec()), "{t}");
    }
}

// ---- rescue of stranded clients (RFC 7031 §4.7) ------------------------------

fn with_elapsed(mut m: ClientMessage<'static>, centis: u16) -> ClientMessage<'static> {
    m.options.push(DhcpOption::ElapsedTime(centis));
    m
}

fn rescue_pair(after: u64) -> Pair {
    let mut p = started(60);
    p.nodes[SECONDARY].ep_mut().cfg.rescue_after = Some(secs(after));
    p
}

#[test]
fn the_secondary_rescues_a_client_that_has_been_soliciting_long_enough() {
    let mut p = rescue_pair(5);
    let now = p.now;
    let early = with_elapsed(
        Pair::msg(MessageType::Solicit, 7, None, Some(Pair::ia_na(None))),
        499,
    );
    assert!(
        p.nodes[SECONDARY].dhcp(now, &early).is_none(),
        "4.99 s: the primary's"
    );
    let late = with_elapsed(
        Pair::msg(MessageType::Solicit, 7, None, Some(Pair::ia_na(None))),
        500,
    );
    let adv = p.nodes[SECONDARY].dhcp(now, &late).expect("5 s: rescued");
    let sid = adv.options.server_id().unwrap().clone().into_owned();
    let req = with_elapsed(
        Pair::msg(MessageType::Request, 7, Some(&sid), Some(Pair::ia_na(None))),
        600,
    );
    let reply = p.nodes[SECONDARY].dhcp(now, &req).unwrap();
    p.flush(SECONDARY);
    let (key, valid) = p.record_held(7, &reply)[0];
    assert_eq!(u128::from(key.prefix.addr()) & 1, 0, "the secondary's half");
    assert!(valid <= 60, "MCLT-capped: {valid}");
    // A prefix too: FREE-BACKUP only.
    let pd = with_elapsed(Pair::msg(MessageType::Solicit, 8, None, Some(Pair::ia_pd())), 700);
    let adv = p.nodes[SECONDARY].dhcp(now, &pd).unwrap();
    let (pk, _) = Pair::granted(&adv)[0];
    assert_eq!(
        p.nodes[SECONDARY].db().pd_pools()[0].free_class_of(&pk.prefix),
        Some(1)
    );
    // Counted, and the primary learns the binding by BNDUPD.
    let c = p.nodes[SECONDARY]
        .node
        .server()
        .subnet_counters()
        .next()
        .unwrap()
        .1;
    assert_eq!((c.rescued, c.answered), (2, 3), "{c:?}");
    p.settle();
    p.assert_tables_equal();
    // Off when 0 (None), and never in other states or on the primary.
    p.nodes[SECONDARY].ep_mut().cfg.rescue_after = None;
    let late = with_elapsed(
        Pair::msg(MessageType::Solicit, 9, None, Some(Pair::ia_na(None))),
        60_000,
    );
    assert!(p.nodes[SECONDARY].dhcp(p.now, &late).is_none());
}

#[test]
fn the_secondary_rescues_a_rebinding_client_with_its_own_lease() {
    let mut p = rescue_pair(5);
    let (key, _) = p.acquire(PRIMARY, 3, Pair::ia_na(None)).unwrap();
    p.settle();
    let rebind = |centis| {
        with_elapsed(
            Pair::msg(
                MessageType::Rebind,
                3,
                None,
                Some(Pair::ia_na(Some(key.prefix.addr()))),
            ),
            centis,
        )
    };
    let now = p.now;
    assert!(p.nodes[SECONDARY].dhcp(now, &rebind(100)).is_none());
    let reply = p.nodes[SECONDARY].dhcp(now, &rebind(1000)).expect("rescued");
    p.flush(SECONDARY);
    let (k2, valid) = p.record_held(3, &reply)[0];
    assert_eq!(k2, key, "the same address");
    assert!(valid > 0);
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
}

// ---- commissioning (§8.3.2) and a partner lost while recovering ---------------

#[test]
fn a_server_that_never_reached_its_partner_is_commissioned_on_command() {
    let mut p = Pair::new(60);
    p.crash(SECONDARY);
    p.advance(10);
    assert_eq!(p.state(PRIMARY), ServerState::Recover);
    assert!(
        p.acquire(PRIMARY, 1, Pair::ia_na(None)).is_none(),
        "RECOVER serves no one"
    );
    assert!(p.partner_down(PRIMARY).is_err(), "§8.4: not from RECOVER");
    let at = p.nodes[PRIMARY].at(p.now);
    p.nodes[PRIMARY].node.commission(at, "pair-1").unwrap();
    p.flush(PRIMARY);
    assert_eq!(p.state(PRIMARY), ServerState::PartnerDown);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).expect("in service");
    p.acquire(PRIMARY, 2, Pair::ia_pd()).expect("in service");
    // The secondary arrives, new: it recovers from the primary.
    p.restart(SECONDARY, true);
    p.advance(8);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
    // Once it has reached its partner, commissioning is refused.
    let at = p.nodes[PRIMARY].at(p.now);
    let e = p.nodes[PRIMARY]
        .node
        .commission(at, "pair-1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("reached its partner before"), "{e}");
}

#[test]
fn a_survivor_whose_partner_died_recovering_is_freed_by_partner_lost() {
    let mut p = started(60);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.settle();
    assert_eq!(p.renew(PRIMARY, 1).unwrap().1, 3000);
    p.drive();
    p.crash(PRIMARY);
    p.advance(12);
    p.partner_down(SECONDARY).unwrap();
    // The primary comes back with an empty store, starts recovering, dies.
    p.restart(PRIMARY, true);
    p.advance(3);
    assert_eq!(p.state(PRIMARY), ServerState::RecoverWait);
    p.crash(PRIMARY);
    p.advance(70);
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
    // Stuck degraded: new leases MCLT-capped, the primary's prefixes out of
    // reach however long PARTNER-DOWN has lasted.
    let st = p.nodes[SECONDARY].ep().status();
    assert_eq!(st.partner_pool_from, None);
    let (_, valid) = p.acquire(SECONDARY, 50, Pair::ia_na(None)).unwrap();
    assert!(valid <= 60, "{valid}");
    assert_eq!(
        p.nodes[SECONDARY].node.relationships().prefix_classes(0, p.now),
        vec![1]
    );
    let at = p.nodes[SECONDARY].at(p.now);
    p.nodes[SECONDARY].node.partner_lost(at, "pair-1").unwrap();
    p.flush(SECONDARY);
    let (_, valid) = p.acquire(SECONDARY, 51, Pair::ia_na(None)).unwrap();
    assert_eq!(valid, 3000, "uncapped");
    assert!(p.nodes[SECONDARY]
        .ep()
        .status()
        .partner_pool_from
        .is_some_and(|t| t <= p.now));
    assert_eq!(
        p.nodes[SECONDARY].node.relationships().prefix_classes(0, p.now),
        vec![1, 0]
    );
    // The primary comes back (with what it had) and recovers again.
    p.restart(PRIMARY, false);
    p.advance(70);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
}

// ---- RFC rules -----------------------------------------------------------------

/// §8.8.2 (MAY): a partner that keeps the connection alive but stops
/// acknowledging loses it.
#[test]
fn a_partner_that_stops_acknowledging_loses_the_connection() {
    let mut p = started(60);
    p.drop_to[PRIMARY].push(FailoverMessageType::BndReply);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.advance(19);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    p.advance(3);
    assert!(
        p.nodes[PRIMARY]
            .events
            .iter()
            .any(|e| matches!(e, Event::Close(why) if why.contains("acknowledged none of 1 BNDUPDs"))),
        "{:?}",
        p.nodes[PRIMARY].events
    );
}

/// §8.5.2 (SHOULD): RECOVER without UPDDONE (and no BNDUPD) drops the
/// connection.
#[test]
fn recover_without_upddone_drops_the_connection() {
    let mut p = started(60);
    p.crash(SECONDARY);
    p.advance(12);
    p.drop_to[SECONDARY].push(FailoverMessageType::UpdDone);
    p.restart(SECONDARY, true);
    p.advance(25);
    assert!(
        p.nodes[SECONDARY]
            .events
            .iter()
            .any(|e| matches!(e, Event::Close(why) if why.contains("neither a BNDUPD nor UPDDONE"))),
        "{:?}",
        p.nodes[SECONDARY].events
    );
    p.drop_to[SECONDARY].clear();
    p.advance(30);
    assert_eq!(p.state(SECONDARY), ServerState::RecoverWait);
}

fn connect_with(opts: impl FnOnce(&mut Vec<DhcpOption<'static>>), sole: bool) -> Vec<Event> {
    let mut s = Server::boot(
        endpoint_config(Role::Secondary, 60),
        MemoryStore::new(),
        START,
        60,
        0,
    );
    s.node.endpoint_mut(0).0.cfg.sole_with_peer = sole;
    let p = FailoverEndpoint::new(endpoint_config(Role::Primary, 60), None, None, START);
    let mut m = FailoverMessage::new(
        FailoverMessageType::Connect,
        TransactionId::from_low_bits(1),
        START.to_abs(),
    );
    m.options = p.connect_options();
    opts(&mut m.options);
    let at = Timestamp::from_unix(START);
    s.node.partner_connected(at, 0, 1);
    s.node.partner_message(at, 0, 1, &m);
    s.flush(START);
    s.events
}

fn refused(events: &[Event]) -> Option<&Refusal> {
    events.iter().find_map(|e| match e {
        Event::Refused(r) => Some(r),
        _ => None,
    })
}

#[test]
fn connect_flags_are_checked() {
    assert!(refused(&connect_with(|_| {}, true)).is_none());
    let variable = connect_with(
        |o| {
            for x in o.iter_mut() {
                if let DhcpOption::ConnectFlags(f) = x {
                    *f = 0;
                }
            }
        },
        true,
    );
    assert!(refused(&variable).unwrap().reason.contains("FIXED_PD_LENGTH"));
    let absent = connect_with(|o| o.retain(|x| !matches!(x, DhcpOption::ConnectFlags(_))), true);
    assert!(refused(&absent).unwrap().reason.contains("CONNECT_FLAGS"));
}

#[test]
fn a_connect_without_a_relationship_name_is_refused_unless_it_can_only_mean_this_one() {
    let strip =
        |o: &mut Vec<DhcpOption<'static>>| o.retain(|x| !matches!(x, DhcpOption::RelationshipName(_)));
    assert!(
        refused(&connect_with(strip, true)).is_none(),
        "§5.5.14: the only one"
    );
    let r = refused(&connect_with(strip, false)).cloned().unwrap();
    assert_eq!(r.kind, RefusalKind::Configuration);
    assert!(r.reason.contains("without a relationship name"), "{}", r.reason);
}

#[test]
fn a_bndupd_in_a_vpn_is_rejected_whole() {
    let mut p = started(60);
    let (key, _) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.settle();
    let l = p.nodes[PRIMARY].db().get(&key).unwrap().clone();
    let mut m = bndupd::build_bndupd(
        &l,
        LeaseState::Active,
        TransactionId::from_low_bits(0xabcde),
        p.now,
    )
    .unwrap();
    if let Some(DhcpOption::ClientData(cd)) = m.options.first_mut() {
        cd.push(DhcpOption::Vss(duet_wire::option::Vss {
            vss_type: 1,
            info: b"\x00\x00\x00\x01\x00\x00\x00\x02"[..].into(),
        }));
    }
    let before = p.nodes[SECONDARY].table();
    let mut frame = Vec::new();
    StreamMessage::Failover(m.clone())
        .encode_frame(&mut frame)
        .unwrap();
    p.link[SECONDARY].push_back(frame);
    p.drive();
    let reply = p
        .delivered
        .iter()
        .find(|(to, r)| {
            *to == PRIMARY
                && r.msg_type == FailoverMessageType::BndReply
                && r.transaction_id == TransactionId::from_low_bits(0xabcde)
        })
        .map(|(_, r)| r.clone())
        .unwrap();
    let Some(DhcpOption::ClientData(cd)) = reply.options.first() else {
        panic!("{reply:?}")
    };
    assert_eq!(cd.status().unwrap().code, StatusCode::ConfigurationConflict);
    assert!(cd.iter().any(|o| matches!(o, DhcpOption::Vss(_))), "echoed");
    assert_eq!(p.nodes[SECONDARY].table(), before, "nothing applied");
    // The global default VPN (type 255, no data) is no VPN at all.
    if let Some(DhcpOption::ClientData(cd)) = m.options.first_mut() {
        cd.retain(|o| !matches!(o, DhcpOption::Vss(_)));
        cd.push(DhcpOption::Vss(duet_wire::option::Vss {
            vss_type: 255,
            info: b""[..].into(),
        }));
    }
    assert!(bndupd::parse_bndupd(&m, p.now).is_ok());
}

/// §7.4: a binding learned from the partner and sent back (UPDREQALL)
/// carries the lifetimes the client was given, no CLT_TIME of ours (we
/// never talked to the client), and the partner's own contact time as
/// PARTNER_RAW_CLT_TIME.
#[test]
fn a_binding_learned_from_the_partner_goes_back_with_the_client_lifetimes() {
    let mut p = started(30);
    let (key, valid) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    assert_eq!(valid, 30);
    let granted = p.now;
    p.drive();
    p.advance(10);
    // The primary loses its store: the secondary sends everything back.
    p.crash(PRIMARY);
    p.delivered.clear();
    p.restart(PRIMARY, true);
    p.advance(2);
    let (ia_t1, addr) = p
        .delivered
        .iter()
        .filter(|(to, m)| *to == PRIMARY && m.msg_type == FailoverMessageType::BndUpd)
        .flat_map(|(_, m)| m.options.iter())
        .find_map(|o| match o {
            DhcpOption::ClientData(cd) => cd.iter().find_map(|x| match x {
                DhcpOption::IaNa(ia) => ia.options.iter().find_map(|y| match y {
                    DhcpOption::IaAddr(a) if a.address == key.prefix.addr() => Some((ia.t1, a.clone())),
                    _ => None,
                }),
                _ => None,
            }),
            _ => None,
        })
        .expect("the binding is sent back");
    assert_eq!(addr.valid_lifetime, 30, "as given to the client");
    assert_eq!(ia_t1, 15);
    assert!(
        addr.preferred_lifetime <= 30 && addr.preferred_lifetime >= 15,
        "{}",
        addr.preferred_lifetime
    );
    assert!(
        !addr.options.iter().any(|o| matches!(o, DhcpOption::CltTime(_))),
        "the secondary never talked to the client"
    );
    let raw = addr.options.iter().find_map(|o| match o {
        DhcpOption::PartnerRawCltTime(t) => Some(UnixTime::from_abs(*t, p.now)),
        _ => None,
    });
    assert_eq!(raw, Some(granted), "the primary's own contact, carried through");
}
