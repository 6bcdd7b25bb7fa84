//! One server: the real DHCPv6 processing and failover endpoint over a
//! memory store, with its clock, as the daemon would run them.

use crate::clock::Clock;
use crate::config::{SabotageSet, Scenario};
use crate::trace::NodeId;
use duet_core::config::Role;
use duet_core::dhcp::{Dhcpv6Server, ServerOptions, Subnet};
use duet_core::failover::{EndpointConfig, EndpointRecord, FailoverEndpoint, Relationships, Sabotage};
use duet_core::lease::LeaseKey;
use duet_core::net::Ipv6Prefix;
use duet_core::store::{Batch, LeaseStore, MemoryStore};
use duet_core::time::UnixTime;
use duet_wire::{Duid, ServerState};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::time::Duration;

/// The relationship's name.
pub const RELATIONSHIP: &str = "pair-1";
/// Store metadata key of the endpoint record.
pub const META_RECORD: &str = "failover/pair-1";
/// Store metadata key of the last time of operation (written with every
/// commit, as docs/failover.md asks of the driver).
pub const META_LAST_OP: &str = "last-operating";
/// Store metadata key of the server DUID (as the daemon keeps it).
pub const META_DUID: &str = "server-duid";

/// First address of the simulated range.
pub const RANGE_START: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_1000;

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
        pd_pools: vec![(
            Ipv6Prefix::new(
                Ipv6Addr::from(0x2001_0db8_8000_0000_0000_0000_0000_0000u128),
                s.pd_pool_len,
            ),
            56,
        )],
        preferred_lifetime: preferred,
        valid_lifetime: valid,
        renew_time: preferred / 2,
        rebind_time: preferred * 4 / 5,
        dns_servers: vec![],
        domain_search: vec![],
        preference: 0,
        rapid_commit: false,
        relationship: Some(0),
    }
}

/// The endpoint configuration of one role, from the scenario.
pub fn endpoint_config(s: &Scenario, role: Role) -> EndpointConfig {
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
        fingerprint: Some(b"duet-sim".to_vec()),
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

/// What runs while the server is up (rebuilt from the store at restart).
#[derive(Debug)]
pub struct Running {
    /// DHCPv6 processing and the in-memory lease database.
    pub srv: Dhcpv6Server,
    /// The failover endpoint.
    pub rels: Relationships,
}

impl Running {
    /// The endpoint.
    pub fn ep(&self) -> &FailoverEndpoint {
        &self.rels.0[0]
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
    /// Local second at which timers last ran.
    pub last_wake: UnixTime,
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
            last_wake: UnixTime::ZERO,
            machine_up: false,
            wiped_at: None,
            active_pd: BTreeSet::new(),
            restart_pending: false,
            recorded: None,
            recorded_communicated: false,
        }
    }

    /// Starts the server from its store, as the daemon does: DUID from the
    /// store (a new DUID-UUID if none), leases loaded, endpoint record and
    /// last time of operation handed to the endpoint.
    pub fn boot(&mut self, scen: &Scenario, sabotage: SabotageSet, now_ms: u64, rng: &mut ChaCha8Rng) {
        let local = self.clock.local(now_ms);
        let snap = self
            .store
            .load()
            .unwrap_or_else(|e| unreachable!("memory stores do not fail: {e}"));
        let duid = match snap.meta.get(META_DUID).and_then(|d| Duid::new(d.clone()).ok()) {
            Some(d) => d,
            None => {
                let mut uuid = [0u8; 16];
                rng.fill_bytes(&mut uuid);
                uuid[6] = (uuid[6] & 0x0f) | 0x40;
                uuid[8] = (uuid[8] & 0x3f) | 0x80;
                let mut bytes = vec![0, 4];
                bytes.extend_from_slice(&uuid);
                let _ = self.store.commit(&Batch {
                    leases: vec![],
                    meta: vec![(META_DUID.into(), bytes.clone())],
                });
                Duid::new(bytes).unwrap_or_else(|_| unreachable!("an 18-byte DUID-UUID is valid"))
            }
        };
        let mut srv = Dhcpv6Server::new(duid, vec![subnet(scen)], ServerOptions::default(), rng.random());
        let orphans = srv.load(snap.leases);
        debug_assert!(orphans.is_empty());
        let record: Option<EndpointRecord> = snap
            .meta
            .get(META_RECORD)
            .and_then(|b| serde_json::from_slice(b).ok());
        let last_op = snap
            .meta
            .get(META_LAST_OP)
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(|b| UnixTime(u64::from_le_bytes(b)));
        let mut ep = FailoverEndpoint::new(endpoint_config(scen, self.role), record, last_op, local);
        ep.sabotage(Sabotage {
            ignore_mclt: sabotage.ignore_mclt,
            both_address_halves: sabotage.both_address_halves,
        });
        self.run = Some(Running {
            srv,
            rels: Relationships(vec![ep]),
        });
        self.machine_up = true;
        self.armed = None;
        self.last_wake = UnixTime::ZERO;
        self.wake_gen += 1;
    }

    /// The endpoint's state, when up.
    pub fn state(&self) -> Option<ServerState> {
        self.run.as_ref().map(|r| r.ep().state())
    }

    /// The server DUID, when up.
    pub fn duid(&self) -> Option<&Duid<'static>> {
        self.run.as_ref().map(|r| r.srv.duid())
    }

    /// The state the endpoint has recorded (running or not): what it will
    /// resume after a restart.
    pub fn recorded_state(&self) -> Option<ServerState> {
        match &self.run {
            Some(r) => Some(ServerState::from(r.ep().record().state)),
            None => self.recorded,
        }
    }

    /// Local time now.
    pub fn local(&self, now_ms: u64) -> UnixTime {
        self.clock.local(now_ms)
    }

    /// The batch metadata every commit carries: the last time of operation.
    pub fn last_op_meta(&self, now_ms: u64) -> (String, Vec<u8>) {
        (META_LAST_OP.into(), self.local(now_ms).0.to_le_bytes().to_vec())
    }
}
