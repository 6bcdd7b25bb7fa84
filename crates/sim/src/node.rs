//! One server: the real DHCPv6 processing and failover endpoint over a
//! memory store, with its clock, as the daemon would run them.

use crate::clock::Clock;
use crate::config::{SabotageSet, Scenario};
use crate::trace::NodeId;
use duet_core::config::Role;
use duet_core::dhcp::{ServerOptions, Subnet};
use duet_core::failover::{AutoPartnerDownRule, EndpointConfig, FailoverEndpoint};
use duet_core::lease::{BindingKey, Lease, LeaseKey, LeaseState};
use duet_core::net::Ipv6Prefix;
use duet_core::node::{CommitPlan, Layer, Node as CoreNode, NodeConfig};
use duet_core::policy::{LeasePolicy, Responsiveness, Retire, StateTimeout};
use duet_core::store::{LeaseStore, MemoryStore};
use duet_core::time::{Timestamp, UnixTime};
use duet_wire::{Duid, ServerState};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::time::Duration;

/// The relationship's name.
pub const RELATIONSHIP: &str = "pair-1";

/// First address of the simulated range.
pub const RANGE_START: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_1000;
/// The prefix pool's base (delegating /56s).
pub const PD_BASE: u128 = 0x2001_0db8_8000_0000_0000_0000_0000_0000;

/// The DUID of simulated client `id` (a DUID-LL, RFC 8415 §11.4).
pub fn client_duid(id: u32) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1, 0x02, 0x00];
    d.extend_from_slice(&id.to_be_bytes());
    d
}

/// The subnet both servers serve, from the scenario.
pub fn subnet(s: &Scenario) -> Subnet {
    let valid = Duration::from_secs(s.valid);
    let preferred = valid * 2 / 3;
    Subnet {
        prefix: Ipv6Prefix::new(Ipv6Addr::from(0x2001_0db8_0001_0000_0000_0000_0000_0000u128), 64),
        interface: Some("eth0".into()),
        ranges: vec![(
            Ipv6Addr::from(RANGE_START),
            Ipv6Addr::from(RANGE_START + u128::from(s.addresses) - 1),
        )],
        pd_pools: vec![(Ipv6Prefix::new(Ipv6Addr::from(PD_BASE), s.pd_pool_len), 56)],
        preferred_lifetime: preferred,
        valid_lifetime: valid,
        renew_time: preferred / 2,
        rebind_time: preferred * 4 / 5,
        options: vec![],
        preference: 0,
        rapid_commit: false,
        relationship: Some(0),
        reservations: s
            .reservations
            .iter()
            .map(|&(c, a, p)| duet_core::config::ReservationConfig {
                client: duet_core::config::ClientIdentifier::Duid(client_duid(c)),
                addresses: vec![a],
                prefixes: vec![p],
                options: vec![],
            })
            .collect(),
        interface_id: None,
    }
}

/// The configuration fingerprint both servers normally have.
pub const FINGERPRINT: &[u8] = b"duet-sim";

/// The fingerprint of a server whose configuration was edited on that
/// server only (the `refuse` fault): the secondary refuses it at CONNECT.
pub const OTHER_FINGERPRINT: &[u8] = b"duet-sim\npool edited on one server only";

/// The endpoint configuration of one role, from the scenario.
pub fn endpoint_config(s: &Scenario, role: Role) -> EndpointConfig {
    endpoint_config_with(s, role, FINGERPRINT)
}

/// [`endpoint_config`] with this configuration fingerprint.
pub fn endpoint_config_with(s: &Scenario, role: Role, fingerprint: &[u8]) -> EndpointConfig {
    EndpointConfig {
        name: RELATIONSHIP.into(),
        role,
        mclt: Duration::from_secs(s.mclt),
        max_unacked_bndupd: s.max_unacked,
        keepalive: Duration::from_secs(s.keepalive),
        auto_partner_down: s.auto_pd.map(Duration::from_secs),
        prefix_split: 0.5,
        // Long enough for a partner that still holds the previous
        // connection to notice (its next CONTACT meets a reset) and
        // reconnect (digest §14.3 step 3).
        startup_time: Duration::from_secs(s.keepalive + 5),
        scan_interval: Duration::from_secs(s.scan),
        ranges: vec![0],
        pd_pools: vec![0],
        fingerprint: Some(fingerprint.to_vec()),
        rescue_after: s.rescue_after.map(Duration::from_secs),
        sole_with_peer: true,
    }
}

/// A crash waiting for the node's next durable point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Armed {
    /// Before or after the commit.
    pub point: crate::trace::CrashPoint,
    /// The whole machine goes down (no TCP FIN / RST from it).
    pub machine: bool,
    /// How long until the restart, ms.
    pub downtime: u64,
    /// The restart comes back with an empty store.
    pub wipe: bool,
    /// Matches the fallback timer that crashes the node anyway.
    pub gen: u64,
}

/// What runs while the server is up (rebuilt from the store at restart):
/// the daemon's own driver, [`duet_core::node::Node`]; a reply's route is
/// the client's number.
#[derive(Debug)]
pub struct Running {
    /// The node.
    pub node: CoreNode<u32>,
}

impl Running {
    /// The endpoint.
    pub fn ep(&self) -> &FailoverEndpoint {
        match self.node.relationships().get(0) {
            Some(ep) => ep,
            None => unreachable!("the simulated node has one relationship"),
        }
    }
}

/// The simulator's sabotage switches as a [`Layer`] over the node's rules.
#[derive(Debug)]
pub struct Sabotaged(pub SabotageSet);

impl Layer for Sabotaged {
    fn policy<'a>(&'a self, inner: &'a dyn LeasePolicy) -> Box<dyn LeasePolicy + 'a> {
        Box::new(Bent { inner, s: self.0 })
    }

    fn reply_before_commit(&self) -> bool {
        self.0.reply_before_commit
    }

    fn auto_partner_down_rule(&self) -> AutoPartnerDownRule {
        // (e) The bare rule: fires between the retries of a refused partner.
        if self.0.bare_auto_pd {
            AutoPartnerDownRule::CommunicationsLostOnly
        } else {
            AutoPartnerDownRule::Safe
        }
    }
}

/// A lease policy with rules broken on purpose.
struct Bent<'a> {
    inner: &'a dyn LeasePolicy,
    s: SabotageSet,
}

impl LeasePolicy for Bent<'_> {
    fn responsiveness(&self, rel: usize) -> Responsiveness {
        self.inner.responsiveness(rel)
    }

    fn rescue_after(&self, rel: usize) -> Option<Duration> {
        self.inner.rescue_after(rel)
    }

    fn address_classes(&self, rel: usize) -> [bool; 2] {
        let c = self.inner.address_classes(rel);
        // (c) Both low-bit halves wherever it may allocate at all (§4.2.1).
        if self.s.both_address_halves && c.contains(&true) {
            [true, true]
        } else {
            c
        }
    }

    fn prefix_classes(&self, rel: usize, now: UnixTime) -> Vec<usize> {
        self.inner.prefix_classes(rel, now)
    }

    fn may_reuse(&self, rel: usize, lease: &Lease, binding: &BindingKey, now: UnixTime) -> bool {
        self.inner.may_reuse(rel, lease, binding, now)
    }

    fn valid_until_cap(&self, rel: usize, lease: Option<&Lease>, now: UnixTime) -> Option<UnixTime> {
        // (a) No MCLT cap in any state (§4.4).
        if self.s.ignore_mclt {
            None
        } else {
            self.inner.valid_until_cap(rel, lease, now)
        }
    }

    fn partner_lifetime(&self, rel: usize, desired: Duration, t1: Duration, now: UnixTime) -> UnixTime {
        self.inner.partner_lifetime(rel, desired, t1, now)
    }

    fn retire(&self, rel: usize, event: Retire, now: UnixTime) -> (LeaseState, Option<UnixTime>) {
        self.inner.retire(rel, event, now)
    }

    fn state_timeout(&self, rel: usize, lease: &Lease, now: UnixTime) -> StateTimeout {
        self.inner.state_timeout(rel, lease, now)
    }

    fn distinct_leases_per_message(&self) -> bool {
        // (d) Two IAs of one message may get the same lease.
        !self.s.shared_ias && self.inner.distinct_leases_per_message()
    }
}

/// One server.
#[derive(Debug)]
pub struct Node {
    /// 0 = primary, 1 = secondary.
    pub id: NodeId,
    /// Role.
    pub role: Role,
    /// The durable store: survives crashes, not wipes.
    pub store: MemoryStore,
    /// The process, when up.
    pub run: Option<Running>,
    /// Its clock.
    pub clock: Clock,
    /// A crash waiting for the next durable point.
    pub armed: Option<Armed>,
    /// Invalidates scheduled wake-ups.
    pub wake_gen: u64,
    /// False after a machine crash until the restart (no TCP reset sent
    /// for segments that reach it).
    pub machine_up: bool,
    /// True ms of the last store wipe.
    pub wiped_at: Option<u64>,
    /// ACTIVE delegated prefixes in the store (for the overlap check).
    pub active_pd: BTreeSet<LeaseKey>,
    /// A restart is scheduled.
    pub restart_pending: bool,
    /// The endpoint state last committed to the store.
    pub recorded: Option<ServerState>,
    /// Whether the store records having communicated with the partner.
    pub recorded_communicated: bool,
    /// Whether the store records an UPDREQALL download not yet complete:
    /// its table is a partial copy of the partner's.
    pub recorded_download_pending: bool,
    /// The next boot uses [`OTHER_FINGERPRINT`] (the `refuse` fault).
    pub bad_fingerprint: bool,
    /// Number of boots so far (events for one process life carry it).
    pub boots: u64,
    /// When (local seconds) the endpoint last entered PARTNER-DOWN, as the
    /// world saw it happen (kept after it leaves: a STATE made in
    /// PARTNER-DOWN may leave after that, with the commit it waited for).
    pub pd_entry: Option<u64>,
    /// The endpoint is in that PARTNER-DOWN (or shows it in STARTUP).
    pub pd_open: bool,
    /// The same, as last made durable with the endpoint record: what a
    /// restart resumes.
    pub pd_entry_durable: Option<u64>,
    /// The subnet's rescued-replies counter as last read (it restarts
    /// from zero with the process).
    pub rescued_seen: u64,
}

impl Node {
    /// A node that has never run.
    pub fn new(id: NodeId, clock: Clock) -> Node {
        Node {
            id,
            role: if id == 0 { Role::Primary } else { Role::Secondary },
            store: MemoryStore::new(),
            run: None,
            clock,
            armed: None,
            wake_gen: 0,
            machine_up: false,
            wiped_at: None,
            active_pd: BTreeSet::new(),
            restart_pending: false,
            recorded: None,
            recorded_communicated: false,
            recorded_download_pending: false,
            bad_fingerprint: false,
            boots: 0,
            pd_entry: None,
            pd_open: false,
            pd_entry_durable: None,
            rescued_seen: 0,
        }
    }

    /// Starts the server from its store, as the daemon does
    /// ([`CoreNode::boot`]: DUID from the store or a new one, leases, endpoint
    /// record, last time of operation), with the real commit plan.
    pub fn boot(&mut self, scen: &Scenario, sabotage: SabotageSet, now_ms: u64, rng: &mut ChaCha8Rng) {
        let now = self.clock.local_ts(now_ms);
        let snap = self
            .store
            .load()
            .unwrap_or_else(|e| unreachable!("memory stores do not fail: {e}"));
        let cfg = NodeConfig {
            subnets: vec![subnet(scen)],
            options: ServerOptions::default(),
            relationships: vec![endpoint_config_with(
                scen,
                self.role,
                if self.bad_fingerprint {
                    OTHER_FINGERPRINT
                } else {
                    FINGERPRINT
                },
            )],
            plan: CommitPlan::default(),
            seed: rng.random(),
        };
        let (mut node, report) = CoreNode::boot(cfg, snap, now);
        debug_assert!(report.orphans.is_empty());
        if sabotage.any() {
            node.set_layer(Box::new(Sabotaged(sabotage)));
        }
        self.run = Some(Running { node });
        self.machine_up = true;
        self.armed = None;
        self.wake_gen += 1;
        self.boots += 1;
        self.pd_entry = self.pd_entry_durable;
        self.pd_open = self.pd_entry_durable.is_some();
        self.rescued_seen = 0;
    }

    /// Replies this process gave only as a rescue (RFC 7031 §4.7) since
    /// the last call.
    pub fn take_rescued(&mut self) -> u64 {
        let Some(run) = &self.run else { return 0 };
        let now: u64 = run.node.server().subnet_counters().map(|(_, c)| c.rescued).sum();
        let new = now.saturating_sub(self.rescued_seen);
        self.rescued_seen = now;
        new
    }

    /// The endpoint's state, when up.
    pub fn state(&self) -> Option<ServerState> {
        self.run.as_ref().map(|r| r.ep().state())
    }

    /// The server DUID, when up.
    pub fn duid(&self) -> Option<&Duid<'static>> {
        self.run.as_ref().map(|r| r.node.duid())
    }

    /// The state the endpoint has recorded (running or not): what it will
    /// resume after a restart.
    pub fn recorded_state(&self) -> Option<ServerState> {
        match &self.run {
            Some(r) => Some(ServerState::from(r.ep().record().state)),
            None => self.recorded,
        }
    }

    /// Local time now, as the core sees it.
    pub fn local(&self, now_ms: u64) -> UnixTime {
        self.clock.local(now_ms)
    }

    /// Local time now, as the node is driven.
    pub fn now(&self, now_ms: u64) -> Timestamp {
        self.clock.local_ts(now_ms)
    }
}
