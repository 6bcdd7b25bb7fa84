//! The simulator's own acceptance tests: the CI seed budget, determinism,
//! the sabotage switches, and the seeds that once found bugs.

use duet_sim::{run_seed, run_seeds, Config, Invariant, SabotageSet};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CI budget: 1,000 seeds, every fault kind, all passing.
#[test]
fn a_thousand_seeds_with_every_fault_kind_pass() {
    let cfg = Config::ci();
    let b = run_seeds(0, 1000, &cfg, threads(), 0);
    println!("{}\nwall time {:.1} s", b.stats, b.wall.as_secs_f64());
    let s = &b.stats;
    assert_eq!(s.seeds, 1000);
    // Every fault kind was exercised.
    for (name, n) in [
        ("crashes", s.crashes),
        ("crashes at a durable point", s.armed_crashes),
        ("whole-machine crashes", s.machine_crashes),
        ("empty-store restarts", s.wipes),
        ("partitions", s.partitions),
        ("connection resets", s.resets),
        ("operator partner-down", s.operator_pd),
        ("auto partner-down", s.auto_pd),
        ("lost client datagrams", s.udp_lost),
        ("duplicated client datagrams", s.udp_dup),
        // Issue 26: refusals (with auto-partner-down held off), partial
        // communication loss and rescue, the operator's commands, and the
        // partner-down time checked in STATE.
        ("refusal schedules", s.refusal_schedules),
        ("edited-configuration restarts", s.config_refusals),
        ("clock steps", s.skew_steps),
        ("refusals reported", s.refusals_seen),
        ("auto partner-down held off", s.auto_pd_held),
        ("client-link outages", s.client_link_outages),
        ("client datagrams lost to a client link", s.client_link_lost),
        ("rescued replies", s.rescued),
        ("rescues owed", s.rescue_due),
        ("handovers", s.handovers),
        ("completed handovers", s.handovers_done),
        ("partners to partner-down on a handover", s.handover_partner_pd),
        ("servers stopped after a handover", s.handover_stops),
        ("servers resumed after a handover", s.handover_resumes),
        ("commissioning seeds", s.commission_seeds),
        ("commissioned servers", s.commissions),
        (
            "leases granted by a commissioned server alone",
            s.commission_grants,
        ),
        ("crashes while recovering", s.recover_crashes),
        ("partner-lost commands", s.partner_lost),
        ("partner-down times checked", s.pd_time_checks),
        // Issue 27: host reservations, taken by their owners.
        ("seeds with reservations", s.reservation_seeds),
        ("reserved leases taken by their owners", s.reserved_grants),
    ] {
        assert!(n > 0, "no {name}");
    }
    let reports: Vec<String> = b.failures.iter().map(|f| f.report(&cfg)).collect();
    assert!(b.failures.is_empty(), "{}", reports.join("\n"));
}

/// Same seed, same run, event for event.
#[test]
fn a_seed_replays_byte_for_byte() {
    let cfg = Config::ci();
    let a = run_seed(42, &cfg);
    let b = run_seed(42, &cfg);
    assert!(a.events > 1000);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert_eq!(a.stats, b.stats);
    let c = run_seed(43, &cfg);
    assert_ne!(a.trace_hash, c.trace_hash);
}

/// Runs the CI budget with a sabotage switch until the first failure.
fn first_failure(sabotage: SabotageSet) -> (Config, duet_sim::Failure) {
    let cfg = Config {
        sabotage,
        ..Config::ci()
    };
    let b = run_seeds(0, 1000, &cfg, threads(), 1);
    let f = b
        .failures
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("sabotage {sabotage} went unnoticed in 1,000 seeds"));
    (cfg, f)
}

/// (a) Without the MCLT rule, a server that fails before its partner heard
/// of a lease leaves a binding the partner (or the server, recovering from a
/// lost store after its MCLT wait) gives to someone else.
#[test]
fn sabotage_of_the_mclt_rule_is_caught() {
    let (cfg, f) = first_failure(SabotageSet {
        ignore_mclt: true,
        ..SabotageSet::default()
    });
    assert!(
        matches!(
            f.invariant,
            Invariant::DoubleHolding | Invariant::StoreConsistency
        ),
        "{}",
        f.report(&cfg)
    );
}

/// (b) The node releases a Reply before its commit (the sabotage is in
/// `Node`, through its `Layer`), then a crash: the client holds a binding
/// no store has.
#[test]
fn sabotage_of_durable_before_reply_is_caught() {
    let (cfg, f) = first_failure(SabotageSet {
        reply_before_commit: true,
        ..SabotageSet::default()
    });
    assert_eq!(f.invariant, Invariant::DurableBinding, "{}", f.report(&cfg));
    let report = f.report(&cfg);
    assert!(
        report.contains(&format!("--seed {} --trace --sabotage durable", f.seed)),
        "{report}"
    );
    assert!(report.contains("last "), "{report}");
}

/// (c) Both servers allocating from both address halves during a partition.
#[test]
fn sabotage_of_the_address_split_is_caught() {
    let (cfg, f) = first_failure(SabotageSet {
        both_address_halves: true,
        ..SabotageSet::default()
    });
    assert!(
        matches!(
            f.invariant,
            Invariant::DoubleHolding | Invariant::StoreConsistency
        ),
        "{}",
        f.report(&cfg)
    );
}

/// Issue 30 point 1 switched back on: two IAs of one message may be given
/// the same lease. Clients that ask for several IAs at once catch it.
#[test]
fn sabotage_of_distinct_leases_per_message_is_caught() {
    let (cfg, f) = first_failure(SabotageSet {
        shared_ias: true,
        ..SabotageSet::default()
    });
    assert_eq!(f.invariant, Invariant::DoubleHolding, "{}", f.report(&cfg));
    assert!(f.message.contains("in its IA"), "{}", f.report(&cfg));
}

/// (e) The bare automatic partner-down rule (time in
/// COMMUNICATIONS-INTERRUPTED while no connection is up) takes over from a
/// partner that is refused but alive: a configuration edited on one server,
/// or a clock stepped beyond 5 s. Refusal schedules catch it, and early.
#[test]
fn sabotage_of_safe_automatic_partner_down_is_caught() {
    let (cfg, f) = first_failure(SabotageSet {
        bare_auto_pd: true,
        ..SabotageSet::default()
    });
    assert_eq!(f.invariant, Invariant::AutoPartnerDown, "{}", f.report(&cfg));
    assert!(f.seed < 100, "caught only at seed {}", f.seed);
    assert!(f.message.contains("refused"), "{}", f.report(&cfg));
}

/// Seeds (default configuration) that found bugs in duet-core while the
/// simulator was built; each is fixed, and has its own test in duet-core
/// where one could be written. Each must keep passing.
#[test]
fn seeds_that_found_bugs_pass() {
    let cfg = Config::default();
    for (seed, bug) in [
        (7, "a capped renewal shortened a binding in the table"),
        (50, "an older update for the same client shortened its binding"),
        (89, "a queued prefix take-back freed a prefix delegated since"),
        (235, "an interrupted UPDREQALL download was not asked for again"),
        (4057, "a lost storage was forgotten before its download started"),
        (
            1730,
            "a server stopped while recovering went to POTENTIAL-CONFLICT",
        ),
        (3547, "the same, then served in RESOLUTION-INTERRUPTED"),
        (
            6879,
            "a previous client's acknowledged lifetime lengthened a new lease",
        ),
        (
            5532,
            "a late expiry, dated at the restart, outranked a newer allocation",
        ),
        (
            7829,
            "an acknowledged stale update left the partner's table stale",
        ),
        (
            7697,
            "a renewal at the moment our copy ran out was rejected forever",
        ),
        (
            5812,
            "a prefix take-back cut short by a crash left the owners disagreeing",
        ),
        (388, "an acknowledgement from a recovering partner freed a lease"),
        (
            39,
            "a renewal lost with the storage was freed within its MCLT bound",
        ),
        (71, "the same"),
        (
            24845,
            "a partner-down grant during the partner's recovery had no MCLT cap",
        ),
        (42064, "partner-down used the partner's pool during its recovery"),
        (
            59393,
            "acknowledgements from a partner's lost store still counted",
        ),
        (
            48086,
            "a restart in RECOVER-WAIT without the partner skipped the MCLT wait",
        ),
        (28841, "RECOVER-WAIT skipped on the partner's word alone"),
        (
            13618,
            "a tie let a previous client's release end a new client's binding",
        ),
        (15273, "a handover's DISCONNECT held up in transit read as skew"),
        (
            38069,
            "a handover that lost the partner refused clients until its timer",
        ),
        (51902, "the same, on the primary"),
        (
            26148,
            "RESOLUTION-INTERRUPTED delegated a prefix the partner-down partner had",
        ),
        (53289, "the same, the resolution cut short by a crash"),
        (55179, "a grant to a binding held for a lost store ended the hold"),
        (29355, "the same, in COMMUNICATIONS-INTERRUPTED"),
        (61211, "the same, by both servers"),
        (
            94742,
            "a lost storage met a partner in CONFLICT-DONE and asked only for the changes",
        ),
        (43557, "a tie let a crossing Release end the client's new grant"),
    ] {
        let r = run_seed(seed, &cfg);
        if let Some(f) = r.failure {
            panic!("seed {seed} ({bug}):\n{}", f.report(&cfg));
        }
    }
}
