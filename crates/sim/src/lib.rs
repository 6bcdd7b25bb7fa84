//! # duet-sim
//!
//! A deterministic simulator that drives the driver duet ships —
//! [`duet_core::node::Node`], with its DHCPv6 processing, its RFC 8156
//! failover endpoint and its commit plan, over a
//! [`duet_core::store::MemoryStore`] — for a primary and a secondary, many
//! RFC 8415 clients, and a schedule of crashes, partitions, message loss,
//! clock skew and steps, refusals, client-link outages and the operator's
//! commands (partner-down, planned handover, commissioning, partner-lost),
//! with host reservations in half the seeds, and checks eleven safety and
//! liveness invariants after every step. There
//! is no model of the protocol here: only the world around it.
//!
//! ```text
//! cargo run -p duet-sim --release -- --seeds 100000 [--start N] [--faults all|crash,partition,...]
//! cargo run -p duet-sim --release -- --seed 1234 --trace [--watch 2001:db8:1::1003]
//! cargo test -p duet-sim
//! ```
//!
//! ## The world
//!
//! * **Determinism.** Everything random comes from one ChaCha8 generator
//!   seeded with the seed; events are ordered by (virtual time, sequence
//!   number); the core iterates ordered maps. The same seed gives the same
//!   run, event for event: the trace hash ([`RunResult::trace_hash`]) is
//!   compared across two runs in the tests.
//! * **Time.** One virtual clock in milliseconds drives the event queue.
//!   Each server reads its own [`clock::Clock`]: true time plus an offset
//!   within ±`skew_bound_ms` (default 2 s, so the partners are within 4 s,
//!   below RFC 8156's 5 s), drifting up to 800 ppm and turning back at the
//!   bound. The core sees whole seconds, as the daemon gives it. In
//!   refusal schedules one clock may also *step* by 6–15 s for a while and
//!   back (`skew-step`), forwards or backwards: all of a seed's steps go
//!   the same way, so any two readings of the stepped clocks differ by at
//!   most one step (the checker's tolerance).
//! * **Servers** ([`node::Node`]): a DHCPv6 server with one subnet (an
//!   address range of 8–64 addresses, a prefix pool of 8–256 /56s) in one
//!   relationship, its endpoint and its store, booted the way the daemon
//!   boots (DUID, leases, endpoint record and last time of operation from
//!   the store; a new DUID after a lost store). MCLT, lifetimes, keepalive,
//!   scan period, MAX_UNACKED_BNDUPD, auto-partner-down and rescue-after
//!   (none, 3, 5 or 10 s) are drawn per seed ([`config::Scenario`]); both
//!   servers have the same configuration fingerprint, except while one
//!   runs an edited configuration (`refuse`). STARTUP lasts keepalive +
//!   5 s, long enough for a partner that still holds the previous
//!   connection to notice and reconnect.
//! * **Clients** ([`client::Client`]) follow RFC 8415 §18.2 with the §15
//!   retransmission algorithm: Solicit (collecting Advertises during the
//!   first retransmission time and picking the best: preference, then the
//!   most IAs served, then the first), Request, Renew to their server at
//!   T1, Rebind to any server at T2, Release at the end of some sessions,
//!   Decline of a new address now and then (and of the same address again
//!   if it is offered within ten minutes: the duplicate is still on the
//!   link); they ask for one to three addresses and up to two prefixes,
//!   each in an IA of its own and all in the same messages, come and go,
//!   and come back with the same DUID. Every message carries an Elapsed
//!   Time option (RFC 8415 §21.9: hundredths of a second since the
//!   exchange's first transmission, 0xffff from 655.35 s), by which a
//!   secondary in NORMAL rescues a client the primary does not answer (RFC
//!   7031 §4.7). A
//!   client's own view of what it holds (until the valid lifetime ends,
//!   counted from the *first* transmission of the exchange) is what the
//!   invariants judge.
//! * **Client network:** every client message is multicast, so each server
//!   gets its own copy; copies and replies are lost, duplicated, delayed
//!   and reordered independently (per-seed rates). One server's client
//!   link may drop for a while (`client-link`: every datagram to or from
//!   it lost) while the partner link works: partial communication loss
//!   (RFC 7031 §4.7), where the secondary's rescue is what clients have.
//! * **Partner link** ([`net`]): one TCP connection at a time, opened by
//!   the primary every 2 s while it has none. Bytes arrive in order, once,
//!   after a delay below 0.4 s; frames are sometimes split across
//!   segments. A close sends FIN after the last bytes; a reset loses what
//!   is in flight; a partition holds segments back (they arrive late if
//!   the connection survives, the endpoints' keepalive usually ends it);
//!   a crashed machine says nothing until it is back and answers with RST.
//!
//! ## The driver and the durable point
//!
//! Each server is a [`duet_core::node::Node`] driven in the daemon's order
//! (`world::World::drive`): after every input (a client datagram, a
//! failover message, a connection event, a timer) every commit the node
//! hands out is made durable in the store and reported, then what the node
//! releases is sent (replies, partner frames, closes), then its events are
//! acted on and its next wake-up scheduled. The node's commit plan runs as
//! in the daemon (a BNDREPLY's bookkeeping waits up to a second for a
//! commit to ride on, partner messages leave in groups), so its
//! acknowledgement-only path is simulated too. A crash comes either between
//! two pieces of work, or *armed* at the next durable point: **before the
//! commit** (the work's in-memory effects are lost with the process,
//! nothing is sent) or **after the commit** (durable, but nothing is sent).
//! A restarted server is rebuilt from its store alone; a *wiped* one from an
//! empty store. Crashes take down the process (the kernel sends FIN) or the
//! whole machine (silence).
//!
//! ## The fault model, and PARTNER-DOWN
//!
//! PARTNER-DOWN is only safe while the partner really does not operate
//! (RFC 8156 §8.4; RFC 7031 §4.2: automatic partner-down is a risk the
//! operator accepts). So:
//!
//! * each seed is either a **partition** schedule (the link is cut and
//!   healed; both sides live through COMMUNICATIONS-INTERRUPTED, and
//!   RESOLUTION-INTERRUPTED when a resolution is cut short; no
//!   auto-partner-down) or a **crash-only** schedule (communication is
//!   lost only through crashes and quick resets; auto-partner-down may be
//!   configured);
//! * the operator declares the partner down only while it is crashed;
//! * a server whose partner recorded PARTNER-DOWN restarts only while that
//!   partner runs and the link works, and while a server starts with a
//!   PARTNER-DOWN recorded anywhere the link is not cut or reset and
//!   nothing crashes: it must hear its partner before serving (§8.3.2
//!   step 5);
//! * the premise is checked whenever a server enters PARTNER-DOWN (the
//!   partner must not be serving); a breach is reported as a schedule
//!   error, never blamed on the protocol. One race is the protocol's to
//!   resolve: the auto-partner-down timer firing while the restarted
//!   partner is already connecting; both then go to POTENTIAL-CONFLICT.
//!
//! **Refusals.** Some seeds (of either mode) are *refusal schedules*: the
//! partners refuse each other for a while although both run and the link
//! works — one server restarts with an edited configuration (`refuse`: the
//! secondary refuses its CONNECT, ConfigurationConflict, until it restarts
//! with the right one), or one clock steps by 6–15 s (`skew-step`:
//! ExcessiveTimeSkew at CONNECT, or the connection dropped, §7.5.1, until
//! it steps back). A crash-only refusal schedule always has
//! auto-partner-down, on both servers: a refused partner is alive and
//! serving (both are in COMMUNICATIONS-INTERRUPTED), so automatic
//! PARTNER-DOWN there would break the premise above — which is exactly
//! what duet must not do (it holds auto-partner-down off while a refusal
//! stands), so invariant 6 checks it directly and blames the protocol.
//! Partition schedules keep their reasoning: no auto-partner-down. A
//! refusal period starts only with both servers in NORMAL, and lasts until
//! its cause is removed and the partners talk again; meanwhile no crash,
//! partition, operator command or handover is injected (a server that
//! must hear its partner before serving — §8.3.2 step 5 — cannot while
//! refused, so the operator's partner-down must wait for the fix, as it
//! would in a real operation).
//!
//! **The operator's other commands.**
//!
//! * *Planned handover* (`handover`, from NORMAL with the partner
//!   connected, 10 s timeout): the server is then stopped — when the
//!   handover completed or failed, or at any moment of it (a failed or
//!   abandoned handover must be safe too) — and restarts later, or is
//!   resumed without a restart (`Node::resume`). Its partner enters
//!   PARTNER-DOWN at once on the handover's DISCONNECT (invariant 10);
//!   the premise holds (the server that handed over records RECOVER and
//!   serves nothing), and its restart waits for the partner like any
//!   restart facing a recorded PARTNER-DOWN.
//! * *Commissioning* (`commission`): some seeds start one server alone,
//!   empty; after its STARTUP the operator commissions it (RECOVER →
//!   PARTNER-DOWN); its partner first starts, empty, 2–25 minutes later,
//!   and faults start only then. While alone it must serve (invariant 9).
//! * *Partner lost* (`partner-lost`): a server that enters RECOVER may
//!   crash during its recovery (RECOVER, RECOVER-WAIT or RECOVER-DONE),
//!   wiped, for 10–40 minutes; meanwhile the operator tells the survivor
//!   its partner is lost (only while it is down, as for partner-down).
//!
//! After `chaos_secs` the faults stop (**calm**): crashed servers restart,
//! the link heals, client traffic becomes reliable. Clients keep going for
//! max(3 MCLT + 300 s, valid lifetime), then go **quiet**, and the tables
//! must converge.
//!
//! ## The invariants
//!
//! Times are compared across clocks with a tolerance of twice the skew
//! bound plus the seed's largest clock step plus 2 s, at most 21 s, below
//! the smallest MCLT (any real violation is MCLT-sized or a whole lease;
//! a lease written while a clock was stepped stays that far off for the
//! rest of the run, and the step is the operator's clock error, which no
//! protocol can undo).
//! Stores change only at commits and client views only when a client
//! takes a lease, so each check runs exactly where its inputs change,
//! which is the same as after every step.
//!
//! 1. **No double holding** — no two clients believe at the same time that
//!    they hold the same address or overlapping prefixes, and no client
//!    holds one lease in two of its IAs (checked when a client takes a
//!    lease).
//! 2. **Consistent stores** — no store holds two live (ACTIVE, not
//!    expired) bindings that overlap, and a resource live in both stores
//!    is bound to the same client in both (checked at every commit). The
//!    second part holds at every instant, not only after convergence, in
//!    this fault model: each server allocates addresses only from its own
//!    half in every state (A17); the partner's prefixes only in
//!    PARTNER-DOWN, after MCLT, while the partner is down (not recovering)
//!    and past every lifetime it could have promised; a lease returns to
//!    the pool only on
//!    the partner's acknowledgement (so the partner's copy is no longer
//!    live) or, in PARTNER-DOWN, MCLT after every lifetime known; a
//!    resolution cut short (RESOLUTION-INTERRUPTED) delegates no new
//!    prefix. The exception would be POTENTIAL-CONFLICT after a
//!    PARTNER-DOWN during a partition, which the fault model excludes.
//! 3. **Durable bindings** — a binding a client got a Reply for is in a
//!    store until its lease ends: the replying server's, or the partner's
//!    with an end at least as late (checked when a client takes a lease and
//!    at every commit touching a held lease).
//! 4. **Lease stability** (RFC 7031 req. 4) — a server that answers a
//!    client's Renew (carrying its DUID; NORMAL, COMMUNICATIONS-
//!    INTERRUPTED, PARTNER-DOWN, RESOLUTION-INTERRUPTED, CONFLICT-DONE,
//!    RECOVER-DONE) or Rebind (the responsive states, and a secondary in
//!    NORMAL rescuing it: Elapsed Time ≥ rescue-after) and whose store
//!    knows the client's binding as current must extend it. A client "can
//!    reach" a server when its message is delivered to one in such a
//!    state; a server in STARTUP, RECOVER, RECOVER-WAIT or
//!    POTENTIAL-CONFLICT, one handing its clients over, or one that lost
//!    (or never had) the binding, owes nothing. Whether the client keeps
//!    its lease then only depends on the network.
//! 5. **Convergence** — after the faults stop and the clients go quiet,
//!    the pair reaches NORMAL with nothing queued or in flight and both
//!    tables equal: every bound lease's state, client and (ACTIVE) end,
//!    and which server owns each free prefix (free addresses belong to
//!    their half anyway; the last-user hint on a free prefix is not
//!    compared).
//! 6. **No automatic partner-down against a refused partner** — a server
//!    entering PARTNER-DOWN automatically while its partner runs and a
//!    refusal period is in effect (see the fault model) is a protocol
//!    failure, whatever the partner's state.
//! 7. **PARTNER-DOWN time** — every STATE showing PARTNER-DOWN carries
//!    OPTION_F_PARTNER_DOWN_TIME (and no other STATE does), equal (within
//!    the server's whole-second rounding, by its own clock) to the moment
//!    the world saw that server enter PARTNER-DOWN — across restarts,
//!    during the STARTUP that shows it, and for a STATE made in
//!    PARTNER-DOWN but sent after the commit it waited for.
//! 8. **Rescue** — a secondary in NORMAL (not handing over) with
//!    rescue-after configured answers every Solicit whose Elapsed Time has
//!    reached it (an Advertise, with NoAddrsAvail if nothing is left); a
//!    rescued Rebind falls under invariant 4.
//! 9. **Commissioning** — the operator's commissioning of a server alone
//!    and out of STARTUP is accepted, and the server answers clients while
//!    alone (a seed in which clients reached it and it answered none
//!    fails).
//! 10. **Handover** — a partner in NORMAL told by a handover's DISCONNECT
//!     that the server handed its clients over enters PARTNER-DOWN at once.
//! 11. **Reservations** (issue 27) — half the seeds reserve an address and a
//!     prefix inside the pools for one or two clients (drawn from a stream
//!     of their own, so the rest of the schedule is unchanged): no client
//!     but the owner ever takes one, and no store binds one live to anyone
//!     else.
//!
//! **Lost storage.** A wipe destroys what only that store knew. A binding
//! the partner's store does not cover is then *lost*: invariant 3 no
//! longer applies to it. Invariant 1 still does, because the MCLT rule is
//! designed to protect it: the recovering server waits MCLT before
//! serving; its partner frees nothing on its acknowledgement until then,
//! and, asked for everything (UPDREQALL), holds every binding until what
//! it acknowledged + MCLT and stops counting what the lost store
//! acknowledged. The exceptions are *orphans*, which no protocol can
//! protect: a
//! lease granted in PARTNER-DOWN (no MCLT cap) that only the wiped store
//! knew, or a binding both stores lost (or whose partner lost its record of
//! ever communicating, so that the pair looks new, §8.6.2). Orphans given
//! to another client are counted in the statistics, not failed.
//!
//! ## Map
//!
//! | module | contents |
//! |---|---|
//! | `world` | virtual time, the event queue, the fault schedule, the driver of each node |
//! | [`node`] | one server: its store, clock, crash state, and the sabotage [`node::Sabotaged`] layer |
//! | [`client`] | RFC 8415 clients |
//! | [`net`] | the partner link (TCP as segments) |
//! | [`clock`] | the servers' skewed, drifting clocks |
//! | `check` | the invariants |
//! | [`config`] | what a run may do, and the scenario drawn per seed |
//! | [`trace`] | the event trace, its hash, failure reports |
//!
//! ## On failure
//!
//! A run stops at the first violation and reports the seed, the step, the
//! invariant, the seed's drawn parameters, the last events, and one
//! command that replays it with every event printed ([`Failure::report`]).
//!
//! ## Sabotage
//!
//! Switches break the system on purpose, to show the checker bites
//! ([`SabotageSet`]). They are applied through the node's
//! [`duet_core::node::Layer`] — a wrapper of the lease policy and a switch
//! of its release rule — so nothing test-only is compiled into duet-core:
//! (a) no MCLT cap, (b) a Reply released before its commit, (c) both
//! address halves, (d) two IAs of one message given the same lease, (e)
//! the bare automatic partner-down rule
//! ([`duet_core::failover::AutoPartnerDownRule::CommunicationsLostOnly`],
//! through [`duet_core::node::Layer::auto_partner_down_rule`]), which
//! invariant 6 catches in refusal schedules.

mod check;
pub mod client;
pub mod clock;
pub mod config;
pub mod net;
pub mod node;
pub mod trace;
pub mod world;

pub use config::{Config, Faults, SabotageSet, Scenario};
pub use world::World;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What was violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// 1: two clients believed at the same time they held the same address
    /// or overlapping prefixes.
    DoubleHolding,
    /// 2: a store held two overlapping live bindings, or a resource was
    /// live on both servers for different clients.
    StoreConsistency,
    /// 3: a binding a client holds from a Reply is in no store.
    DurableBinding,
    /// 4: a server that must extend a lease (it answers the message and
    /// knows the binding) did not.
    LeaseStability,
    /// 5: after faults stopped, the tables did not become equal.
    Convergence,
    /// 6: a server entered PARTNER-DOWN automatically while its partner
    /// was running and refused (a configuration mismatch or a clock step
    /// in effect).
    AutoPartnerDown,
    /// 7: a STATE announcing PARTNER-DOWN did not carry, as
    /// OPTION_F_PARTNER_DOWN_TIME, when the server entered it.
    PartnerDownTime,
    /// 8: a secondary in NORMAL with rescue configured did not answer a
    /// Solicit that had been trying long enough.
    Rescue,
    /// 9: the operator's commissioning of a server alone was refused, or
    /// the commissioned server answered none of the clients that tried.
    Commissioning,
    /// 10: a partner told that a handover completed did not enter
    /// PARTNER-DOWN at once.
    Handover,
    /// 11: a reserved address or prefix was bound to a client other than
    /// its owner (in a store, or as a client saw it).
    Reservation,
    /// The fault schedule broke its own premise (a harness error, not a
    /// protocol one).
    Schedule,
    /// A message did not encode or decode.
    Codec,
    /// No progress, or the run never finished.
    Livelock,
    /// The core panicked.
    Panic,
}

impl Invariant {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::DoubleHolding => "invariant 1 (no two clients hold the same address or prefix)",
            Invariant::StoreConsistency => "invariant 2 (no overlapping live bindings in or across stores)",
            Invariant::DurableBinding => "invariant 3 (a binding a client got a Reply for is durable)",
            Invariant::LeaseStability => "invariant 4 (lease stability through renew and rebind)",
            Invariant::Convergence => "invariant 5 (tables equal after faults stop)",
            Invariant::AutoPartnerDown => {
                "invariant 6 (no automatic partner-down while the partner runs and is refused)"
            }
            Invariant::PartnerDownTime => {
                "invariant 7 (PARTNER_DOWN_TIME is when the server entered partner-down)"
            }
            Invariant::Rescue => "invariant 8 (a secondary in normal rescues a client trying long enough)",
            Invariant::Commissioning => "invariant 9 (a commissioned server serves while alone)",
            Invariant::Handover => "invariant 10 (a completed handover puts the partner in partner-down)",
            Invariant::Reservation => {
                "invariant 11 (a reserved address or prefix is only ever bound to its owner)"
            }
            Invariant::Schedule => "fault-schedule premise",
            Invariant::Codec => "codec",
            Invariant::Livelock => "livelock",
            Invariant::Panic => "panic",
        }
    }
}

/// A failed run.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Event number at which the violation was seen.
    pub step: u64,
    /// Virtual time since the start, ms.
    pub t_ms: u64,
    /// What.
    pub invariant: Invariant,
    /// Details.
    pub message: String,
    /// The seed's drawn parameters.
    pub scenario: String,
    /// The last events.
    pub tail: Vec<String>,
}

impl Failure {
    /// The full report: seed, step, invariant, last events, replay command.
    pub fn report(&self, cfg: &Config) -> String {
        let mut s = format!(
            "duet-sim: seed {} FAILED at step {} (t=+{}.{:03} s)\n  {}: {}\n  scenario: {}\n  last {} events:\n",
            self.seed,
            self.step,
            self.t_ms / 1000,
            self.t_ms % 1000,
            self.invariant.name(),
            self.message,
            self.scenario,
            self.tail.len()
        );
        for l in &self.tail {
            s += "    ";
            s += l;
            s += "\n";
        }
        s += &format!("  replay: {}\n", cfg.replay_command(self.seed));
        s
    }
}

/// Counters over one or many runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Seeds run.
    pub seeds: u64,
    /// Events processed.
    pub steps: u64,
    /// Virtual time, ms.
    pub virtual_ms: u64,
    /// Seeds with partitions.
    pub partition_mode: u64,
    /// Seeds with crash-only link loss.
    pub crash_only_mode: u64,
    /// Seeds with auto-partner-down configured.
    pub auto_pd_configured: u64,
    /// Crashes.
    pub crashes: u64,
    /// Of which whole-machine.
    pub machine_crashes: u64,
    /// Crashes armed for a durable point.
    pub armed_crashes: u64,
    /// Restarts with an empty store.
    pub wipes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Connection resets.
    pub resets: u64,
    /// Accepted operator partner-down commands.
    pub operator_pd: u64,
    /// Automatic partner-down transitions.
    pub auto_pd: u64,
    /// Of which while the restarted partner was already connecting.
    pub auto_pd_races: u64,
    /// Client datagrams lost.
    pub udp_lost: u64,
    /// Client datagrams duplicated.
    pub udp_dup: u64,
    /// Client messages sent.
    pub client_msgs: u64,
    /// Leases given to clients.
    pub granted: u64,
    /// Client bindings whose only durable copy a store wipe destroyed.
    pub lost: u64,
    /// Of which beyond the protocol's protection (granted in PARTNER-DOWN,
    /// or both stores lost).
    pub orphaned: u64,
    /// Such orphaned bindings given to another client while their holder
    /// still held them (not failures, see the crate documentation), by
    /// cause: granted in PARTNER-DOWN, both stores lost.
    pub orphan_conflicts: [u64; 2],
    /// Leases extended.
    pub extended: u64,
    /// Renew / Rebind deliveries that obliged a server to extend a lease
    /// (invariant 4).
    pub obligations: u64,
    /// Entries into each failover state (by wire value 0–10).
    pub states: [u64; 11],
    /// Seeds with a refusal schedule.
    pub refusal_schedules: u64,
    /// Restarts with an edited configuration (`refuse`).
    pub config_refusals: u64,
    /// Clock steps beyond 5 s (`skew-step`).
    pub skew_steps: u64,
    /// Refusals the endpoints reported (either side).
    pub refusals_seen: u64,
    /// Refusal periods during which a server with automatic partner-down
    /// configured was seen holding it off.
    pub auto_pd_held: u64,
    /// Client-link outages (`client-link`).
    pub client_link_outages: u64,
    /// Client datagrams lost to them.
    pub client_link_lost: u64,
    /// Replies given only as a rescue (RFC 7031 §4.7).
    pub rescued: u64,
    /// Solicits and Rebinds a secondary in NORMAL had to rescue.
    pub rescue_due: u64,
    /// Planned handovers started.
    pub handovers: u64,
    /// Of which completed (HandoverDone).
    pub handovers_done: u64,
    /// Of which failed or abandoned (HandoverFailed).
    pub handovers_failed: u64,
    /// Partners that entered PARTNER-DOWN on a handover's DISCONNECT.
    pub handover_partner_pd: u64,
    /// Servers stopped by the operator after (or during) a handover.
    pub handover_stops: u64,
    /// Servers resumed by the operator after a handover.
    pub handover_resumes: u64,
    /// Seeds starting with one server alone.
    pub commission_seeds: u64,
    /// Accepted commissioning commands.
    pub commissions: u64,
    /// Leases granted by a commissioned server while alone.
    pub commission_grants: u64,
    /// Crashes (wiped, long) of a recovering server.
    pub recover_crashes: u64,
    /// Accepted partner-lost commands.
    pub partner_lost: u64,
    /// STATEs announcing PARTNER-DOWN whose PARTNER_DOWN_TIME was checked.
    pub pd_time_checks: u64,
    /// Seeds with host reservations.
    pub reservation_seeds: u64,
    /// Reserved leases their owners took.
    pub reserved_grants: u64,
}

impl Stats {
    /// Adds `o`.
    pub fn merge(&mut self, o: &Stats) {
        self.seeds += o.seeds;
        self.steps += o.steps;
        self.virtual_ms += o.virtual_ms;
        self.partition_mode += o.partition_mode;
        self.crash_only_mode += o.crash_only_mode;
        self.auto_pd_configured += o.auto_pd_configured;
        self.crashes += o.crashes;
        self.machine_crashes += o.machine_crashes;
        self.armed_crashes += o.armed_crashes;
        self.wipes += o.wipes;
        self.partitions += o.partitions;
        self.resets += o.resets;
        self.operator_pd += o.operator_pd;
        self.auto_pd += o.auto_pd;
        self.auto_pd_races += o.auto_pd_races;
        self.udp_lost += o.udp_lost;
        self.udp_dup += o.udp_dup;
        self.client_msgs += o.client_msgs;
        self.granted += o.granted;
        self.lost += o.lost;
        self.orphaned += o.orphaned;
        for (a, b) in self.orphan_conflicts.iter_mut().zip(o.orphan_conflicts) {
            *a += b;
        }
        self.extended += o.extended;
        self.obligations += o.obligations;
        for (a, b) in self.states.iter_mut().zip(o.states) {
            *a += b;
        }
        self.refusal_schedules += o.refusal_schedules;
        self.config_refusals += o.config_refusals;
        self.skew_steps += o.skew_steps;
        self.refusals_seen += o.refusals_seen;
        self.auto_pd_held += o.auto_pd_held;
        self.client_link_outages += o.client_link_outages;
        self.client_link_lost += o.client_link_lost;
        self.rescued += o.rescued;
        self.rescue_due += o.rescue_due;
        self.handovers += o.handovers;
        self.handovers_done += o.handovers_done;
        self.handovers_failed += o.handovers_failed;
        self.handover_partner_pd += o.handover_partner_pd;
        self.handover_stops += o.handover_stops;
        self.handover_resumes += o.handover_resumes;
        self.commission_seeds += o.commission_seeds;
        self.commissions += o.commissions;
        self.commission_grants += o.commission_grants;
        self.recover_crashes += o.recover_crashes;
        self.partner_lost += o.partner_lost;
        self.pd_time_checks += o.pd_time_checks;
        self.reservation_seeds += o.reservation_seeds;
        self.reserved_grants += o.reserved_grants;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seeds {}  events {}  virtual time {:.1} days",
            self.seeds,
            self.steps,
            self.virtual_ms as f64 / 86_400_000.0
        )?;
        writeln!(
            f,
            "schedules: {} with partitions, {} crash-only ({} with auto-partner-down configured)",
            self.partition_mode, self.crash_only_mode, self.auto_pd_configured
        )?;
        writeln!(
            f,
            "faults: {} crashes ({} whole-machine, {} at a durable point), {} empty-store restarts, {} partitions, \
             {} connection resets, {} operator partner-down, {} auto partner-down ({} racing a reconnection)",
            self.crashes,
            self.machine_crashes,
            self.armed_crashes,
            self.wipes,
            self.partitions,
            self.resets,
            self.operator_pd,
            self.auto_pd,
            self.auto_pd_races
        )?;
        writeln!(
            f,
            "clients: {} messages, {} lost, {} duplicated; {} leases granted, {} extended; {} renewals owed by \
             a server that knew the binding (invariant 4)\n\
             lost storage: {} bindings lost with a store ({} beyond the protocol's protection; given to \
             another client meanwhile: {} granted in partner-down, {} lost by both stores)",
            self.client_msgs,
            self.udp_lost,
            self.udp_dup,
            self.granted,
            self.extended,
            self.obligations,
            self.lost,
            self.orphaned,
            self.orphan_conflicts[0],
            self.orphan_conflicts[1]
        )?;
        writeln!(
            f,
            "refusals: {} refusal schedules, {} edited-configuration restarts, {} clock steps, {} refusals \
             reported, auto partner-down held off in {} refusal periods",
            self.refusal_schedules,
            self.config_refusals,
            self.skew_steps,
            self.refusals_seen,
            self.auto_pd_held
        )?;
        writeln!(
            f,
            "client links: {} outages, {} datagrams lost to them; {} rescued replies, {} rescues owed",
            self.client_link_outages, self.client_link_lost, self.rescued, self.rescue_due
        )?;
        writeln!(
            f,
            "operations: {} handovers ({} done, {} failed; {} partners to partner-down at once; {} stopped, \
             {} resumed), {} commissioning seeds ({} commissioned, {} leases granted alone), {} crashes \
             while recovering, {} partner-lost commands; {} partner-down times checked",
            self.handovers,
            self.handovers_done,
            self.handovers_failed,
            self.handover_partner_pd,
            self.handover_stops,
            self.handover_resumes,
            self.commission_seeds,
            self.commissions,
            self.commission_grants,
            self.recover_crashes,
            self.partner_lost,
            self.pd_time_checks
        )?;
        writeln!(
            f,
            "reservations: {} seeds, {} reserved leases taken by their owners",
            self.reservation_seeds, self.reserved_grants
        )?;
        let names = [
            "?",
            "startup",
            "normal",
            "communications-interrupted",
            "partner-down",
            "potential-conflict",
            "recover",
            "recover-wait",
            "recover-done",
            "resolution-interrupted",
            "conflict-done",
        ];
        let states: Vec<String> = names
            .iter()
            .zip(self.states)
            .skip(1)
            .map(|(n, c)| format!("{n} {c}"))
            .collect();
        write!(f, "state entries: {}", states.join(", "))
    }
}

/// The outcome of one seed.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The seed.
    pub seed: u64,
    /// Hash of every traced event (same seed, same hash).
    pub trace_hash: u64,
    /// Number of traced events.
    pub events: u64,
    /// Counters.
    pub stats: Stats,
    /// The violation, if any.
    pub failure: Option<Failure>,
}

/// Runs one seed (a panic in the core is reported as a failure).
pub fn run_seed(seed: u64, cfg: &Config) -> RunResult {
    match catch_unwind(AssertUnwindSafe(|| World::new(seed, cfg).run())) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            RunResult {
                seed,
                trace_hash: 0,
                events: 0,
                stats: Stats::default(),
                failure: Some(Failure {
                    seed,
                    step: 0,
                    t_ms: 0,
                    invariant: Invariant::Panic,
                    message: msg,
                    scenario: String::new(),
                    tail: vec![],
                }),
            }
        }
    }
}

/// The outcome of many seeds.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Counters over every seed.
    pub stats: Stats,
    /// Failed seeds, in seed order.
    pub failures: Vec<Failure>,
    /// Wall time.
    pub wall: Duration,
}

/// Runs seeds `start..start + count` on `threads` threads; stops early
/// after `max_failures` failures (0 = never).
pub fn run_seeds(start: u64, count: u64, cfg: &Config, threads: usize, max_failures: usize) -> Batch {
    let t0 = Instant::now();
    let next = AtomicU64::new(start);
    let out = Mutex::new(Batch::default());
    let end = start.saturating_add(count);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let r = run_seed(seed, cfg);
                let mut b = out.lock().unwrap_or_else(|e| e.into_inner());
                b.stats.merge(&r.stats);
                if let Some(f) = r.failure {
                    b.failures.push(f);
                    if max_failures > 0 && b.failures.len() >= max_failures {
                        next.store(end, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut b = out.into_inner().unwrap_or_else(|e| e.into_inner());
    b.failures.sort_by_key(|f| f.seed);
    b.wall = t0.elapsed();
    b
}
