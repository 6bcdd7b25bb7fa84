//! What a run is allowed to do (fault kinds, sabotage, durations), and the
//! per-seed scenario drawn from the seed within those limits.

use duet_core::net::Ipv6Prefix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::net::Ipv6Addr;

/// Fault kinds a run may inject. Each seed draws its own rates for the
/// enabled kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Crash and restart either server (at any moment, or exactly at a
    /// durable point: before or after the store commit).
    pub crash: bool,
    /// Some restarts come back with an empty store (and a new DUID).
    pub wipe: bool,
    /// Cut the server-to-server link for a while (never together with
    /// auto-partner-down: see the crate documentation).
    pub partition: bool,
    /// Reset the partner TCP connection (what is in flight is lost).
    pub reset: bool,
    /// Delay on the partner link (in order: TCP).
    pub partner_delay: bool,
    /// Client datagrams lost.
    pub client_loss: bool,
    /// Client datagrams duplicated.
    pub client_dup: bool,
    /// Client datagrams delayed, some by long enough to be reordered.
    pub client_delay: bool,
    /// Server clocks offset from true time (within the skew bound).
    pub skew: bool,
    /// Server clocks drift (within the skew bound).
    pub drift: bool,
    /// The operator declares the partner down, only while it is crashed.
    pub operator_pd: bool,
    /// Automatic partner-down after a configured time in
    /// COMMUNICATIONS-INTERRUPTED, only in crash-only schedules (always on
    /// both servers in crash-only refusal schedules).
    pub auto_pd: bool,
    /// A configuration mismatch on one side for a while (as after a pool
    /// edit on one server only): one server restarts with another
    /// configuration fingerprint, which the secondary refuses at CONNECT
    /// (ConfigurationConflict), and later restarts with the right one.
    /// Refusal schedules only.
    pub refuse: bool,
    /// One server's clock steps by 6–15 s (beyond RFC 8156's 5 s) for a
    /// while, then back (NTP failing on one host): the partners refuse
    /// each other (ExcessiveTimeSkew). Refusal schedules only.
    pub skew_step: bool,
    /// One server's client link drops for a while (every client datagram
    /// to or from it lost) while the partner link works: partial
    /// communication loss, RFC 7031 §4.7, where the secondary rescues.
    pub client_link: bool,
    /// The operator hands one server's clients over to its partner
    /// (planned handover), then stops it (after the handover, or at any
    /// moment of it) and restarts or resumes it later.
    pub handover: bool,
    /// Some seeds start one server alone with an empty store; the
    /// operator commissions it (RECOVER → PARTNER-DOWN) and the partner
    /// starts later, empty.
    pub commission: bool,
    /// A server crashes while recovering (RECOVER, RECOVER-WAIT,
    /// RECOVER-DONE) and stays down with its store wiped; the operator
    /// tells the survivor its partner is lost; it returns empty later.
    pub partner_lost: bool,
}

/// The names `--faults` accepts, in display order.
pub const FAULT_NAMES: &[&str] = &[
    "crash",
    "wipe",
    "partition",
    "reset",
    "partner-delay",
    "client-loss",
    "client-dup",
    "client-delay",
    "skew",
    "drift",
    "operator-pd",
    "auto-pd",
    "refuse",
    "skew-step",
    "client-link",
    "handover",
    "commission",
    "partner-lost",
];

impl Faults {
    /// Every fault kind.
    pub fn all() -> Faults {
        Faults {
            crash: true,
            wipe: true,
            partition: true,
            reset: true,
            partner_delay: true,
            client_loss: true,
            client_dup: true,
            client_delay: true,
            skew: true,
            drift: true,
            operator_pd: true,
            auto_pd: true,
            refuse: true,
            skew_step: true,
            client_link: true,
            handover: true,
            commission: true,
            partner_lost: true,
        }
    }

    /// No faults at all.
    pub fn none() -> Faults {
        Faults {
            crash: false,
            wipe: false,
            partition: false,
            reset: false,
            partner_delay: false,
            client_loss: false,
            client_dup: false,
            client_delay: false,
            skew: false,
            drift: false,
            operator_pd: false,
            auto_pd: false,
            refuse: false,
            skew_step: false,
            client_link: false,
            handover: false,
            commission: false,
            partner_lost: false,
        }
    }

    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "crash" => &mut self.crash,
            "wipe" => &mut self.wipe,
            "partition" => &mut self.partition,
            "reset" => &mut self.reset,
            "partner-delay" => &mut self.partner_delay,
            "client-loss" => &mut self.client_loss,
            "client-dup" => &mut self.client_dup,
            "client-delay" => &mut self.client_delay,
            "skew" => &mut self.skew,
            "drift" => &mut self.drift,
            "operator-pd" => &mut self.operator_pd,
            "auto-pd" => &mut self.auto_pd,
            "refuse" => &mut self.refuse,
            "skew-step" => &mut self.skew_step,
            "client-link" => &mut self.client_link,
            "handover" => &mut self.handover,
            "commission" => &mut self.commission,
            "partner-lost" => &mut self.partner_lost,
            _ => return None,
        })
    }

    /// Parses `all`, `none`, or a comma-separated list of fault names
    /// (optionally starting from `all` and removing some with `-name`).
    pub fn parse(s: &str) -> Result<Faults, String> {
        let mut f = Faults::none();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => f = Faults::all(),
                "none" => f = Faults::none(),
                p => {
                    let (name, on) = match p.strip_prefix('-') {
                        Some(n) => (n, false),
                        None => (p, true),
                    };
                    let slot = f.flag(name).ok_or_else(|| {
                        format!(
                            "unknown fault {name:?} (known: all, none, {})",
                            FAULT_NAMES.join(", ")
                        )
                    })?;
                    *slot = on;
                }
            }
        }
        Ok(f)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Faults::all() {
            return f.write_str("all");
        }
        let mut copy = *self;
        let on: Vec<&str> = FAULT_NAMES
            .iter()
            .copied()
            .filter(|n| copy.flag(n).is_some_and(|v| *v))
            .collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

/// Switches that break the system on purpose, to show the checker bites.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SabotageSet {
    /// (a) The policy ignores the MCLT rule.
    pub ignore_mclt: bool,
    /// (b) The node releases a Reply before the commit of what it reports
    /// (then a crash at that point loses the binding the client got).
    pub reply_before_commit: bool,
    /// (c) The policy allocates addresses from both low-bit halves.
    pub both_address_halves: bool,
    /// (d) Two IAs of one message may be given the same lease.
    pub shared_ias: bool,
    /// (e) Automatic PARTNER-DOWN by the bare rule
    /// ([`duet_core::failover::AutoPartnerDownRule::CommunicationsLostOnly`]):
    /// time in COMMUNICATIONS-INTERRUPTED while no connection is up, also
    /// between the retries of a partner that is refused but alive.
    pub bare_auto_pd: bool,
}

impl SabotageSet {
    /// Parses `mclt`, `durable`, `halves`, `ias` and `apd`, comma-separated.
    pub fn parse(s: &str) -> Result<SabotageSet, String> {
        let mut x = SabotageSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "mclt" => x.ignore_mclt = true,
                "durable" => x.reply_before_commit = true,
                "halves" => x.both_address_halves = true,
                "ias" => x.shared_ias = true,
                "apd" => x.bare_auto_pd = true,
                "none" => x = SabotageSet::default(),
                other => {
                    return Err(format!(
                        "unknown sabotage {other:?} (known: mclt, durable, halves, ias, apd)"
                    ))
                }
            }
        }
        Ok(x)
    }

    /// Whether any switch is on.
    pub fn any(&self) -> bool {
        self.ignore_mclt
            || self.reply_before_commit
            || self.both_address_halves
            || self.shared_ias
            || self.bare_auto_pd
    }
}

impl fmt::Display for SabotageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = vec![];
        if self.ignore_mclt {
            v.push("mclt");
        }
        if self.reply_before_commit {
            v.push("durable");
        }
        if self.both_address_halves {
            v.push("halves");
        }
        if self.shared_ias {
            v.push("ias");
        }
        if self.bare_auto_pd {
            v.push("apd");
        }
        f.write_str(&v.join(","))
    }
}

/// Settings of a batch of runs (the same for every seed).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Enabled fault kinds.
    pub faults: Faults,
    /// Sabotage switches.
    pub sabotage: SabotageSet,
    /// Virtual seconds of the fault phase.
    pub chaos_secs: u64,
    /// Largest number of clients a seed may draw.
    pub max_clients: u32,
    /// Largest clock offset from true time, ms, at most 2,000: RFC 8156
    /// tolerates 5 s between partners, and two clocks 4 s apart plus whole
    /// seconds plus up to 0.4 s of link delay stay within it.
    pub skew_bound_ms: i64,
    /// Print every event.
    pub trace: bool,
    /// Events kept for the failure report.
    pub tail: usize,
    /// With `trace`: also print every store commit of this lease (an
    /// address or prefix, as the trace shows it). Not part of the trace
    /// hash.
    pub watch: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            faults: Faults::all(),
            sabotage: SabotageSet::default(),
            chaos_secs: 3 * 3600,
            max_clients: 24,
            skew_bound_ms: 2000,
            trace: false,
            tail: 60,
            watch: None,
        }
    }
}

impl Config {
    /// The configuration of the CI seed budget (`cargo test -p duet-sim`):
    /// every fault kind, one virtual hour of faults per seed.
    pub fn ci() -> Config {
        Config {
            chaos_secs: 3600,
            ..Config::default()
        }
    }

    /// The one command that replays `seed` under this configuration.
    pub fn replay_command(&self, seed: u64) -> String {
        let d = Config::default();
        let mut cmd = format!("cargo run -p duet-sim --release -- --seed {seed} --trace");
        if self.faults != d.faults {
            cmd += &format!(" --faults {}", self.faults);
        }
        if self.sabotage.any() {
            cmd += &format!(" --sabotage {}", self.sabotage);
        }
        if self.chaos_secs != d.chaos_secs {
            cmd += &format!(" --chaos-secs {}", self.chaos_secs);
        }
        if self.max_clients != d.max_clients {
            cmd += &format!(" --max-clients {}", self.max_clients);
        }
        if self.skew_bound_ms != d.skew_bound_ms {
            cmd += &format!(" --skew-bound-ms {}", self.skew_bound_ms);
        }
        cmd
    }
}

/// How the partner link may fail in one seed: the two schedules the crate
/// documentation explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkMode {
    /// Partitions happen; no auto-partner-down.
    Partitions,
    /// Communication is lost only through crashes (and quick resets);
    /// auto-partner-down may be configured.
    CrashOnly,
}

/// The parameters one seed draws.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Partitions or crash-only.
    pub mode: LinkMode,
    /// MCLT, seconds.
    pub mclt: u64,
    /// Valid lifetime given to clients, seconds.
    pub valid: u64,
    /// FO_KEEPALIVE_TIME, seconds.
    pub keepalive: u64,
    /// Periodic scan, seconds.
    pub scan: u64,
    /// OPTION_F_MAX_UNACKED_BNDUPD.
    pub max_unacked: u32,
    /// Auto-partner-down delay, if configured.
    pub auto_pd: Option<u64>,
    /// Number of addresses in the range.
    pub addresses: u32,
    /// Prefix length of the delegable-prefix pool (delegating /56s).
    pub pd_pool_len: u8,
    /// Number of clients.
    pub clients: u32,
    /// Client datagram loss probability.
    pub loss: f64,
    /// Client datagram duplication probability.
    pub dup: f64,
    /// Client datagram delay range, ms.
    pub delay_ms: (u64, u64),
    /// Probability of an extra long client delay (reordering).
    pub reorder: f64,
    /// Partner link one-way delay range, ms (below 0.4 s, see
    /// `Config::skew_bound_ms`).
    pub partner_delay_ms: (u64, u64),
    /// Mean seconds between fault attempts.
    pub fault_gap: u64,
    /// Probability that a crash loses the store.
    pub wipe_p: f64,
    /// Clock of each server (primary, secondary).
    pub clocks: [crate::clock::Clock; 2],
    /// Elapsed Time (seconds) from which a secondary in NORMAL rescues a
    /// client (RFC 7031 §4.7), if configured.
    pub rescue_after: Option<u64>,
    /// A refusal schedule: configuration mismatches and clock steps may
    /// happen (with automatic partner-down on both servers in crash-only
    /// mode, when that fault kind is enabled).
    pub refusals: bool,
    /// Relative weights of the fault kinds `refuse`, `skew-step`,
    /// `client-link` and `handover` in this seed (0: never).
    pub weights: [u32; 4],
    /// Largest clock step of this seed, ms (0: none); the checker's
    /// cross-clock tolerance includes it.
    pub step_max_ms: i64,
    /// Probability that a server entering RECOVER crashes while
    /// recovering, wiped and down for long, its partner declared lost.
    pub partner_lost_p: f64,
    /// The server started alone and commissioned by the operator, and how
    /// long (seconds) until its partner first starts.
    pub commission: Option<(crate::trace::NodeId, u64)>,
    /// Host reservations (issue 27): (client, address, prefix). Drawn
    /// from a stream of their own ([`Scenario::draw_reservations`]), so
    /// the rest of a seed's schedule is what it was without them.
    pub reservations: Vec<(u32, Ipv6Addr, Ipv6Prefix)>,
}

impl Scenario {
    /// Half the seeds reserve an address and a prefix for one or two
    /// clients: inside the pools, so the free search must skip them.
    pub fn draw_reservations(&mut self, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7265_7365_7276_6564);
        if self.clients == 0 || !rng.random_bool(0.5) {
            return;
        }
        let prefixes = 1u32 << (56 - u32::from(self.pd_pool_len));
        for _ in 0..rng.random_range(1..=2u32) {
            let client = rng.random_range(0..self.clients);
            let a =
                Ipv6Addr::from(crate::node::RANGE_START + u128::from(rng.random_range(0..self.addresses)));
            let i = u128::from(rng.random_range(0..prefixes));
            let p = Ipv6Prefix::new(Ipv6Addr::from(crate::node::PD_BASE + (i << 72)), 56);
            if self
                .reservations
                .iter()
                .any(|(c, x, q)| *c == client || *x == a || *q == p)
            {
                continue;
            }
            self.reservations.push((client, a, p));
        }
    }

    /// Draws the parameters of one seed.
    pub fn draw(cfg: &Config, rng: &mut ChaCha8Rng) -> Scenario {
        let f = &cfg.faults;
        let mode = match (f.partition, f.auto_pd) {
            (true, true) => {
                if rng.random_bool(0.5) {
                    LinkMode::Partitions
                } else {
                    LinkMode::CrashOnly
                }
            }
            (true, false) => LinkMode::Partitions,
            _ => LinkMode::CrashOnly,
        };
        let mclt = [30, 60, 120, 300][rng.random_range(0..4)];
        let valid = [300, 600, 1200, 1800][rng.random_range(0..4)];
        let keepalive = [6, 10, 20][rng.random_range(0..3)];
        let pick = |rng: &mut ChaCha8Rng, on: bool, lo: f64, hi: f64| {
            if on {
                rng.random_range(lo..hi)
            } else {
                0.0
            }
        };
        let clock = |rng: &mut ChaCha8Rng| {
            let b = cfg.skew_bound_ms.max(0);
            crate::clock::Clock {
                base_ms: if f.skew && b > 0 {
                    rng.random_range(-b..=b)
                } else {
                    0
                },
                rate_ppm: if f.drift { rng.random_range(-800..=800) } else { 0 },
                bound_ms: if f.skew || f.drift { b } else { 0 },
                step_ms: 0,
            }
        };
        let clocks = [clock(rng), clock(rng)];
        let refusals = (f.refuse || f.skew_step) && rng.random_bool(0.4);
        // Per-seed rates: `refuse` and `skew-step` only in refusal
        // schedules (and at least one of them there).
        let weight = |rng: &mut ChaCha8Rng, on: bool, none: bool| {
            let w: &[u32] = if none { &[0, 1, 2, 4] } else { &[1, 2, 4] };
            if on {
                w[rng.random_range(0..w.len())]
            } else {
                0
            }
        };
        let weights = [
            weight(rng, refusals && f.refuse, false),
            weight(rng, refusals && f.skew_step, false),
            weight(rng, f.client_link, true),
            weight(rng, f.handover, true),
        ];
        let step_max_ms = if weights[1] > 0 {
            rng.random_range(6_000..=15_000)
        } else {
            0
        };
        let rescue_after = [None, Some(3), Some(5), Some(10)][rng.random_range(0..4)];
        let partner_lost_p = if f.partner_lost {
            rng.random_range(0.0..0.5)
        } else {
            0.0
        };
        let commission = (f.commission && rng.random_bool(0.15))
            .then(|| (rng.random_range(0..2), rng.random_range(120..1500)));
        // A refusal schedule in crash-only mode always has automatic
        // partner-down, on both servers: what it must not do while the
        // partner is refused is what the schedule tests.
        let auto_pd_on = mode == LinkMode::CrashOnly && f.auto_pd && (refusals || rng.random_bool(0.7));
        Scenario {
            mode,
            mclt,
            valid,
            keepalive,
            scan: [10, 20, 30][rng.random_range(0..3)],
            max_unacked: [1, 4, 10, 64][rng.random_range(0..4)],
            auto_pd: auto_pd_on.then(|| [15, 30, 60, 120, 300][rng.random_range(0..5)]),
            addresses: [8, 16, 32, 64][rng.random_range(0..4)],
            pd_pool_len: [53, 52, 50, 48][rng.random_range(0..4)],
            clients: rng.random_range(2..=cfg.max_clients.max(2)),
            loss: pick(rng, f.client_loss, 0.0, 0.3),
            dup: pick(rng, f.client_dup, 0.0, 0.1),
            delay_ms: if f.client_delay {
                (1, rng.random_range(2..800))
            } else {
                (1, 2)
            },
            reorder: pick(rng, f.client_delay, 0.0, 0.1),
            partner_delay_ms: if f.partner_delay {
                (1, rng.random_range(2..400))
            } else {
                (1, 2)
            },
            fault_gap: [60, 180, 600][rng.random_range(0..3)],
            wipe_p: if f.wipe { rng.random_range(0.05..0.4) } else { 0.0 },
            clocks,
            rescue_after,
            refusals,
            weights,
            step_max_ms,
            partner_lost_p,
            commission,
            reservations: Vec::new(),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} mclt={} valid={} keepalive={} scan={} unacked={} auto-pd={:?} addrs={} pd-pool=/{} clients={} \
             loss={:.2} dup={:.2} delay={:?}ms reorder={:.2} partner-delay={:?}ms fault-gap={}s wipe={:.2} \
             clocks=[{:+}ms {:+}ppm, {:+}ms {:+}ppm] rescue-after={:?} refusals={} \
             weights(refuse,skew-step,client-link,handover)={:?} step-max={}ms partner-lost={:.2} \
             commission={:?} reservations={:?}",
            self.mode,
            self.mclt,
            self.valid,
            self.keepalive,
            self.scan,
            self.max_unacked,
            self.auto_pd,
            self.addresses,
            self.pd_pool_len,
            self.clients,
            self.loss,
            self.dup,
            self.delay_ms,
            self.reorder,
            self.partner_delay_ms,
            self.fault_gap,
            self.wipe_p,
            self.clocks[0].base_ms,
            self.clocks[0].rate_ppm,
            self.clocks[1].base_ms,
            self.clocks[1].rate_ppm,
            self.rescue_after,
            self.refusals,
            self.weights,
            self.step_max_ms,
            self.partner_lost_p,
            self.commission,
            self.reservations,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_print() {
        assert_eq!(Faults::parse("all").unwrap(), Faults::all());
        let f = Faults::parse("all,-partition,-auto-pd").unwrap();
        assert!(!f.partition && !f.auto_pd && f.crash);
        assert_eq!(Faults::parse(&f.to_string()).unwrap(), f);
        assert!(Faults::parse("crash,bogus").is_err());
        assert_eq!(Faults::none().to_string(), "none");
    }

    #[test]
    fn sabotage_parse() {
        let s = SabotageSet::parse("mclt,halves").unwrap();
        assert!(s.ignore_mclt && s.both_address_halves && !s.reply_before_commit);
        assert_eq!(SabotageSet::parse(&s.to_string()).unwrap(), s);
        let a = SabotageSet::parse("apd").unwrap();
        assert!(a.bare_auto_pd && a.any() && !a.ignore_mclt);
        assert_eq!(a.to_string(), "apd");
    }

    #[test]
    fn every_fault_name_parses_and_all_enables_it() {
        for name in FAULT_NAMES {
            let one = Faults::parse(name).unwrap();
            assert_ne!(one, Faults::none(), "{name}");
            assert_eq!(one.to_string(), *name);
            let without = Faults::parse(&format!("all,-{name}")).unwrap();
            assert_ne!(without, Faults::all(), "{name}");
        }
    }

    #[test]
    fn refusal_schedules_in_crash_only_mode_have_auto_partner_down() {
        use rand::SeedableRng;
        let cfg = Config::default();
        let mut seen = 0;
        for seed in 0..400 {
            let s = Scenario::draw(&cfg, &mut ChaCha8Rng::seed_from_u64(seed));
            if s.refusals && s.mode == LinkMode::CrashOnly {
                seen += 1;
                assert!(s.auto_pd.is_some(), "seed {seed}");
            }
            assert!(s.step_max_ms <= 15_000);
            if s.weights[0] + s.weights[1] > 0 {
                assert!(s.refusals, "seed {seed}");
            }
        }
        assert!(seen > 0);
    }
}
