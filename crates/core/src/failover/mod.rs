//! The RFC 8156 failover endpoint, sans-IO (digest: ../shared/spec/failover-rfc8156.md).
//!
//! One [`FailoverEndpoint`] per relationship (a server may hold several:
//! m-to-1, RFC 7031 req. 3), driven by [`crate::node::Node`]:
//!
//! * inputs — [`FailoverEndpoint::handle_connected`] /
//!   [`FailoverEndpoint::handle_closed`] (the TCP+TLS link),
//!   [`FailoverEndpoint::handle_message`], [`FailoverEndpoint::handle_timeout`],
//!   the operator's [`FailoverEndpoint::partner_down`], and
//!   [`FailoverEndpoint::leases_changed`] (lease records changed by DHCPv6
//!   processing: the lazy updates of §4.3);
//! * outputs, polled — [`FailoverEndpoint::poll_persist`] (lease records
//!   and the endpoint record to make durable),
//!   [`FailoverEndpoint::poll_transmit`] (messages for the partner),
//!   [`FailoverEndpoint::poll_event`] and [`FailoverEndpoint::poll_timeout`].
//!
//! What a message reports must be durable before it leaves (a BNDREPLY after
//! the BNDUPD it acknowledges is stored, §7.5.2; a STATE after the state is
//! recorded, §6.3): the node holds each message for the commit it needs.
//!
//! The decisions DHCPv6 processing asks of the endpoint (may I answer, what
//! may I allocate, for how long) are the [`crate::policy::LeasePolicy`]
//! implementation of [`Relationships`].
//!
//! # Where each part of RFC 8156 lives
//!
//! | file | RFC 8156 |
//! |---|---|
//! | `mod.rs` | the endpoint, its settings and record (§8.2), status, outputs |
//! | `connection.rs` | §6: CONNECT / CONNECTREPLY and their checks, STATE (§6.3), DISCONNECT, message dispatch |
//! | `updates.rs` | §7: the update queue, BNDUPD received (§7.5) and BNDREPLY received (§7.7) |
//! | `bndupd.rs` | §7.4–§7.7 as pure functions: BNDUPD / BNDREPLY contents, conflict resolution (§7.5.4) |
//! | `resync.rs` | UPDREQ / UPDREQALL / UPDDONE (§7.7, §8.5, §8.10) |
//! | `balance.rs` | §4.2.2: delegable prefixes between the partners, POOLREQ / POOLRESP |
//! | `lifetimes.rs` | §4.4 the MCLT rule, §4.2.1 address halves, §8.1 what each state may do, §8.4.1 reuse |
//! | `state.rs` | §8: the state machine (pure transitions), entering a state, timers |
//! | `commands.rs` | the operator's PARTNER-DOWN (§8.4), commissioning (§8.3.2), a lost partner, the planned handover (extension) |
//! | `relationships.rs` | every relationship of a server |

mod balance;
mod bndupd;
mod commands;
mod connection;
mod lifetimes;
mod relationships;
mod resync;
mod state;
mod updates;

pub use commands::is_handover;
pub use connection::fingerprint_diff;
pub use relationships::Relationships;
pub use updates::reported_leases;

use crate::config::Role;
use crate::lease::{Lease, LeaseDb, LeaseKey, LeaseKind, LeaseState};
use crate::policy::{LeasePolicy, Responsiveness, Retire, StateTimeout};
use crate::time::UnixTime;
use bndupd::{build_bndreply, build_bndupd, parse_bndreply, parse_bndupd, Verdict};
use duet_wire::failover::{
    CONNECT_FLAG_FIXED_PD_LENGTH, PROTOCOL_VERSION, SERVER_FLAG_ACK_STARTUP, SERVER_FLAG_COMMUNICATED,
    SERVER_FLAG_STARTUP,
};
use duet_wire::option::{Status, VendorOpts, VendorSubOption};
use duet_wire::{
    DhcpOption, FailoverMessage, FailoverMessageType, OptionsExt, ServerState, StatusCode, TransactionId,
};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Maximum clock difference tolerated between partners (RFC 8156 §7.1).
pub const MAX_TIME_SKEW: u64 = 5;
/// FO_CONTACT_PER_KEEPALIVE_TIME (§6.5).
const CONTACTS_PER_KEEPALIVE: u32 = 4;
/// A partner that keeps the connection alive but answers neither our
/// BNDUPDs (no BNDREPLY, §8.8.2 MAY) nor our UPDREQ (no BNDUPD or UPDDONE,
/// §8.5.2 SHOULD) for this many keepalive periods loses the connection.
const RESPONSE_KEEPALIVES: u32 = 2;
/// The most BNDUPDs this server keeps in flight, whatever the partner's
/// OPTION_F_MAX_UNACKED_BNDUPD (§5.5.10) allows: the partner's value only
/// lowers it. It bounds the in-flight table and the frames one `pump`
/// produces, and keeps transaction ids plentiful (see `xid`).
pub const MAX_UNACKED_BNDUPD_CAP: u32 = 1024;
/// The most leases one received BNDUPD may carry. RFC 8156 §7.4 puts one
/// client's data in a BNDUPD (duet sends one lease each); the BNDREPLY
/// echoes every lease with its verdict, and at this many the worst case
/// still fits one frame. A larger BNDUPD is rejected as a whole, before
/// anything of it is applied (UnspecFail).
pub const MAX_LEASES_PER_BNDUPD: usize = 256;
/// Enterprise number of the vendor option carrying the configuration
/// fingerprint in CONNECT / CONNECTREPLY (beyond the RFC; 32473 is the
/// documentation enterprise number of RFC 5612).
pub const FINGERPRINT_ENTERPRISE: u32 = 32473;
/// Vendor sub-option code of the fingerprint.
pub const FINGERPRINT_SUBOPTION: u16 = 1;
/// Vendor sub-option of CONNECT / CONNECTREPLY listing the extensions the
/// sender supports (a big-endian u32 of `EXTENSION_*` bits). A peer that
/// announces none gets plain RFC 8156 behaviour.
pub const EXTENSIONS_SUBOPTION: u16 = 2;
/// Extension bit: planned handover (docs/failover.md, "planned handover"):
/// a DISCONNECT carrying [`HANDOVER_SUBOPTION`] tells the partner that
/// every update was acknowledged and the sender stopped serving.
pub const EXTENSION_HANDOVER: u32 = 1;
/// Vendor sub-option of a DISCONNECT: the sender hands its clients over.
pub const HANDOVER_SUBOPTION: u16 = 3;
/// How long a planned handover waits for the partner's acknowledgements
/// by default before giving up (and serving on).
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Static settings of one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Relationship name (§6.2).
    pub name: String,
    /// This server's role.
    pub role: Role,
    /// Maximum client lead time (§4.4); the primary's value rules.
    pub mclt: Duration,
    /// OPTION_F_MAX_UNACKED_BNDUPD we advertise.
    pub max_unacked_bndupd: u32,
    /// FO_KEEPALIVE_TIME: silence after which communications are not OK.
    pub keepalive: Duration,
    /// Time in COMMUNICATIONS-INTERRUPTED before PARTNER-DOWN, if enabled.
    pub auto_partner_down: Option<Duration>,
    /// Share of free delegable prefixes the secondary should hold.
    pub prefix_split: f64,
    /// How long STARTUP waits for the partner (§8.3.2 step 3).
    pub startup_time: Duration,
    /// Period of the scan that resends rejected updates and checks the
    /// prefix balance (§7.7, §4.2.2).
    pub scan_interval: Duration,
    /// Lease-database indices of the address ranges under this relationship.
    pub ranges: Vec<usize>,
    /// Lease-database indices of the prefix pools under this relationship.
    pub pd_pools: Vec<usize>,
    /// Fingerprint of the subnets and pools, compared at CONNECT.
    pub fingerprint: Option<Vec<u8>>,
    /// Rescue of stranded clients (RFC 7031 §4.7): while RENEW-RESPONSIVE
    /// (a secondary in NORMAL), also answer a Solicit or Rebind whose
    /// Elapsed Time is at least this. `None`: never.
    pub rescue_after: Option<Duration>,
    /// No other relationship of this server has the same partner: a
    /// CONNECT without OPTION_F_RELATIONSHIP_NAME means this one (RFC 8156
    /// §5.5.14); otherwise it is refused.
    pub sole_with_peer: bool,
}

/// What the endpoint keeps in stable storage (§8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// Current state (wire value).
    pub state: u8,
    /// When it began.
    pub state_since: UnixTime,
    /// The partner's state as last known (wire value, 0 = unknown).
    pub partner_state: u8,
    /// When the partner's state began.
    pub partner_state_since: UnixTime,
    /// Whether this endpoint has ever communicated with its partner.
    pub communicated: bool,
    /// The MCLT in force (the primary's).
    pub mclt_secs: u64,
    /// An UPDREQALL download was started and not finished: ask for
    /// everything again.
    #[serde(default)]
    pub download_pending: bool,
    /// This server handed its clients over to the partner (planned
    /// handover): every lease it granted was acknowledged, so its recovery
    /// needs no RECOVER-WAIT.
    #[serde(default)]
    pub handed_over: bool,
}

/// Why the partner was refused, or refused us: the partner is alive but
/// the pair cannot work together until an operator acts, so automatic
/// PARTNER-DOWN is held off while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The configurations differ (pools, relationship name, MCLT,
    /// CONNECT_FLAGS; ConfigurationConflict).
    Configuration,
    /// The clocks differ by more than 5 s (ExcessiveTimeSkew, §7.1).
    TimeSkew,
    /// Protocol version not supported (NotSupported).
    Version,
    /// The partner's identity: TLS refused, certificate name, an unknown
    /// relationship name, TLS required on one side only.
    Identity,
}

impl RefusalKind {
    /// The kind a refusing status code stands for.
    pub fn of_status(code: StatusCode) -> RefusalKind {
        match code {
            StatusCode::ExcessiveTimeSkew => RefusalKind::TimeSkew,
            StatusCode::NotSupported => RefusalKind::Version,
            StatusCode::TlsConnectionRefused => RefusalKind::Identity,
            _ => RefusalKind::Configuration,
        }
    }

    /// Its name in status output.
    pub fn name(self) -> &'static str {
        match self {
            RefusalKind::Configuration => "configuration",
            RefusalKind::TimeSkew => "time-skew",
            RefusalKind::Version => "version",
            RefusalKind::Identity => "identity",
        }
    }
}

/// The last refusal between the partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub kind: RefusalKind,
    /// The text of the refusal, for the operator.
    pub reason: String,
    /// When.
    pub at: UnixTime,
    /// This server refused (else the partner did).
    pub by_us: bool,
}

/// Which rule moves COMMUNICATIONS-INTERRUPTED to PARTNER-DOWN by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoPartnerDownRule {
    /// duet's rule: `auto-partner-down` after the last thing heard from
    /// the partner (a message, a connection attempt), never while the
    /// partner is being refused.
    #[default]
    Safe,
    /// The bare rule (time in COMMUNICATIONS-INTERRUPTED while no
    /// connection is up), which fires between the retries of a partner
    /// that is refused but alive. Kept only so that the simulator can show
    /// that its checker catches it.
    CommunicationsLostOnly,
}

/// Something the driver should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The endpoint changed state.
    StateChanged {
        /// From.
        from: ServerState,
        /// To.
        to: ServerState,
    },
    /// Communications became OK (partner's STATE received, §6.1).
    CommunicationsOk,
    /// Communications were lost.
    CommunicationsLost,
    /// Close the connection, for this reason (to be logged).
    Close(String),
    /// The partner refused our CONNECT (primary), with its status.
    ConnectRefused(String),
    /// A rejected update or other noteworthy protocol event, for the log.
    Notice(String),
    /// A refusal between the partners (see [`Refusal`]).
    Refused(Refusal),
    /// The planned handover is complete: the partner acknowledged
    /// everything and was told; this server serves none of the
    /// relationship's clients until it recovers.
    HandoverDone,
    /// The planned handover was abandoned (why); this server serves on.
    HandoverFailed(String),
}

/// Why an operator command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// PARTNER-DOWN is only entered from NORMAL, COMMUNICATIONS-INTERRUPTED
    /// or RESOLUTION-INTERRUPTED (§8.4).
    #[error("relationship {name} is in {state}; partner-down is allowed only in normal, communications-interrupted or resolution-interrupted")]
    NotAllowed {
        /// Relationship.
        name: String,
        /// Its state.
        state: ServerState,
    },
    /// A command that needs something the relationship does not have now.
    #[error("relationship {name}: {why}")]
    Refused {
        /// Relationship.
        name: String,
        /// What is missing, for the operator.
        why: String,
    },
}

/// A snapshot for `duet ctl status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// Relationship name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Own state.
    pub state: ServerState,
    /// Since.
    pub since: UnixTime,
    /// Partner's state, if known.
    pub partner_state: Option<ServerState>,
    /// Communications OK.
    pub communications_ok: bool,
    /// BNDUPDs in flight.
    pub unacked_bndupd: usize,
    /// BNDUPDs waiting to be sent.
    pub queued_bndupd: usize,
    /// Last measured clock skew (partner − us), seconds.
    pub clock_skew: Option<i64>,
    /// The last thing heard from the partner (a message or a connection
    /// attempt), since this server started.
    pub last_heard: UnixTime,
    /// The last refusal between the partners, until communications are OK
    /// again.
    pub refusal: Option<Refusal>,
    /// When automatic PARTNER-DOWN will happen if nothing is heard until
    /// then (only in COMMUNICATIONS-INTERRUPTED, with it configured).
    pub auto_partner_down_at: Option<UnixTime>,
    /// Why automatic PARTNER-DOWN will not happen although configured and
    /// in COMMUNICATIONS-INTERRUPTED.
    pub auto_partner_down_held: Option<String>,
    /// When RECOVER-WAIT ends (in RECOVER-WAIT).
    pub recover_wait_until: Option<UnixTime>,
    /// In PARTNER-DOWN: when the partner's delegable prefixes may be used
    /// (§8.4.1), or `None` while the partner is recovering.
    pub partner_pool_from: Option<UnixTime>,
    /// Planned handover: `leaving` (waiting for acknowledgements) or
    /// `handed-over` (done; serving none of this relationship's clients).
    pub handover: Option<&'static str>,
    /// Elapsed Time from which a client is rescued in NORMAL (secondary).
    pub rescue_after: Option<Duration>,
    /// The partner supports planned handover (announced at CONNECT).
    pub partner_handover: bool,
}

/// How a relationship's pools are used, for `duet ctl status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// Per address range: (first, last, free addresses in the primary's
    /// odd half, size of that half, free in the secondary's even half,
    /// size of that half) — §4.2.1.
    pub ranges: Vec<RangeUse>,
    /// Per delegable-prefix pool — §4.2.2.
    pub pd_pools: Vec<PdPoolUse>,
}

/// One address range's halves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeUse {
    /// The range, `first-last`.
    pub range: String,
    /// Addresses in the primary's (odd) half.
    pub primary_size: u128,
    /// Of which free.
    pub primary_free: u128,
    /// Addresses in the secondary's (even) half.
    pub secondary_size: u128,
    /// Of which free.
    pub secondary_free: u128,
}

/// One delegable-prefix pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdPoolUse {
    /// The pool, `prefix/len` delegating `/delegated`.
    pub pool: String,
    /// Delegable prefixes in all.
    pub size: u128,
    /// FREE (the primary's).
    pub free: u128,
    /// FREE-BACKUP (the secondary's).
    pub free_backup: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Down,
    /// Secondary: TCP up, waiting for CONNECT.
    AwaitConnect,
    /// Primary: CONNECT sent.
    AwaitConnectReply,
    /// CONNECT / CONNECTREPLY done; `comms_ok` once the partner's STATE came.
    Established {
        comms_ok: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QueueItem {
    /// Announce this state instead of the lease's (taking a prefix back).
    announce: Option<LeaseState>,
    /// Send even if the partner already has it (UPDREQALL).
    force: bool,
}

#[derive(Debug, Clone)]
struct InFlight {
    key: LeaseKey,
    snapshot: Lease,
    announced: LeaseState,
    sent_partner_lifetime: UnixTime,
}

/// A planned handover under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaving {
    /// Give up then.
    deadline: UnixTime,
}

/// One failover relationship's endpoint (see the module documentation).
#[derive(Debug)]
pub struct FailoverEndpoint {
    cfg: EndpointConfig,
    mclt: Duration,
    state: ServerState,
    state_since: UnixTime,
    /// Set during STARTUP: the state to resume and when to give up waiting.
    startup: Option<(ServerState, UnixTime)>,
    /// The state STARTUP shows and when it began: the recorded start time
    /// if it is the recorded state, else the restart.
    resume: (ServerState, UnixTime),
    partner_state: Option<ServerState>,
    partner_state_since: UnixTime,
    partner_flags: u8,
    partner_down_since: Option<UnixTime>,
    communicated_before: bool,
    communicated: bool,
    /// `communicated` when the current connection came up: what our
    /// COMMUNICATED flag says on it (so a partner meeting us for the
    /// first time sees the flag clear, §8.6.2).
    communicated_at_connect: bool,
    /// The last time this server is known to have been operating
    /// (TIME-OF-FAILURE for §8.3.2 and RECOVER-WAIT).
    last_operating: Option<UnixTime>,
    started_at: UnixTime,
    conn: Conn,
    partner_max_unacked: u32,
    partner_keepalive: Duration,
    last_sent: UnixTime,
    last_received: UnixTime,
    clock_skew: Option<i64>,
    next_xid: u32,
    queue: VecDeque<LeaseKey>,
    queued: BTreeMap<LeaseKey, QueueItem>,
    in_flight: BTreeMap<TransactionId, InFlight>,
    in_flight_keys: BTreeMap<LeaseKey, TransactionId>,
    /// Rejected by the partner: resent at the next scan, not at once (§7.7).
    wait_scan: BTreeSet<LeaseKey>,
    next_scan: UnixTime,
    /// Our UPDREQ / UPDREQALL awaiting its UPDDONE.
    updreq_sent: Option<TransactionId>,
    /// That request is an UPDREQALL.
    updreq_all: bool,
    /// An UPDREQALL download is not finished (persisted).
    download_pending: bool,
    /// The partner's UPDREQ / UPDREQALL we are answering, and the leases
    /// still to be acknowledged before UPDDONE.
    serving: Option<(TransactionId, BTreeSet<LeaseKey>)>,
    poolreq_pending: bool,
    recover_wait_until: Option<UnixTime>,
    comms_lost_at: Option<UnixTime>,
    /// The last thing heard from the partner: a message, or a connection
    /// attempt (refused or not: it proves the partner alive).
    last_heard: UnixTime,
    /// The last refusal, until communications are OK again.
    refusal: Option<Refusal>,
    auto_pd_rule: AutoPartnerDownRule,
    /// The partner's EXTENSION_* bits (this connection's CONNECT /
    /// CONNECTREPLY).
    partner_extensions: u32,
    /// A planned handover waits for the partner's acknowledgements.
    leaving: Option<Leaving>,
    /// The handover is done: this server stays out of the relationship
    /// (no connection, no clients) until it restarts or is resumed.
    parked: bool,
    /// Recorded: every lease this server granted was acknowledged before
    /// it stopped serving (a handover), so RECOVER-WAIT is not needed.
    handed_over: bool,
    /// When our UPDREQ / UPDREQALL was sent or last answered by a BNDUPD
    /// (§8.5.2: no progress for long → drop the connection).
    updreq_progress: UnixTime,
    /// Since when BNDUPDs have been in flight with no BNDREPLY (§8.8.2:
    /// a partner that stops acknowledging → drop the connection).
    acks_awaited_since: Option<UnixTime>,
    transmit: VecDeque<FailoverMessage<'static>>,
    persist: Vec<Lease>,
    record_dirty: bool,
    events: VecDeque<Event>,
}

fn state_from_u8(v: u8) -> Option<ServerState> {
    match ServerState::from(v) {
        ServerState::Unknown(_) => None,
        s => Some(s),
    }
}

impl FailoverEndpoint {
    /// An endpoint starting up (§8.3): `record` is what was persisted
    /// (`None` for a server that never ran failover, or lost its storage),
    /// `last_operating` the last time the server was known to run.
    pub fn new(
        cfg: EndpointConfig,
        record: Option<EndpointRecord>,
        last_operating: Option<UnixTime>,
        now: UnixTime,
    ) -> Self {
        let recorded = record.and_then(|r| state_from_u8(r.state));
        let previous = state::startup_previous_state(recorded);
        let mclt = record
            .filter(|r| r.mclt_secs > 0 && cfg.role == Role::Secondary)
            .map_or(cfg.mclt, |r| Duration::from_secs(r.mclt_secs));
        let communicated = record.is_some_and(|r| r.communicated);
        // The recorded state's start time survives the restart (a
        // PARTNER-DOWN announced later carries when it really began,
        // §8.3.2); a state replaced at startup starts now.
        let since = match (record, recorded) {
            (Some(r), Some(s)) if s == previous && r.state_since > UnixTime::ZERO => r.state_since,
            _ => now,
        };
        FailoverEndpoint {
            mclt,
            state: ServerState::Startup,
            state_since: now,
            startup: Some((previous, now.saturating_add(cfg.startup_time))),
            resume: (previous, since),
            partner_state: record.and_then(|r| state_from_u8(r.partner_state)),
            partner_state_since: record.map_or(UnixTime::ZERO, |r| r.partner_state_since),
            partner_flags: 0,
            partner_down_since: None,
            communicated_before: communicated,
            communicated,
            communicated_at_connect: communicated,
            last_operating,
            started_at: now,
            conn: Conn::Down,
            partner_max_unacked: 1,
            partner_keepalive: cfg.keepalive,
            last_sent: now,
            last_received: now,
            clock_skew: None,
            next_xid: 1,
            queue: VecDeque::new(),
            queued: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            in_flight_keys: BTreeMap::new(),
            wait_scan: BTreeSet::new(),
            next_scan: now.saturating_add(cfg.scan_interval),
            updreq_sent: None,
            updreq_all: false,
            download_pending: record.is_some_and(|r| r.download_pending),
            serving: None,
            poolreq_pending: false,
            recover_wait_until: None,
            comms_lost_at: None,
            last_heard: now,
            refusal: None,
            auto_pd_rule: AutoPartnerDownRule::default(),
            partner_extensions: 0,
            leaving: None,
            parked: false,
            handed_over: record.is_some_and(|r| r.handed_over),
            updreq_progress: now,
            acks_awaited_since: None,
            transmit: VecDeque::new(),
            persist: Vec::new(),
            record_dirty: true,
            events: VecDeque::new(),
            cfg,
        }
    }

    /// The relationship name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// This server's role.
    pub fn role(&self) -> Role {
        self.cfg.role
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The MCLT in force.
    pub fn mclt(&self) -> Duration {
        self.mclt
    }

    /// Whether the partner's STATE has been received on this connection.
    pub fn communications_ok(&self) -> bool {
        matches!(self.conn, Conn::Established { comms_ok: true })
    }

    /// A status snapshot.
    pub fn status(&self) -> EndpointStatus {
        let apd = self.auto_partner_down_due();
        EndpointStatus {
            name: self.cfg.name.clone(),
            role: self.cfg.role,
            state: self.state,
            since: self.state_since,
            partner_state: self.partner_state,
            communications_ok: self.communications_ok(),
            unacked_bndupd: self.in_flight.len(),
            queued_bndupd: self.queue.len(),
            clock_skew: self.clock_skew,
            last_heard: self.last_heard,
            refusal: self.refusal.clone(),
            auto_partner_down_at: apd.as_ref().ok().copied().flatten(),
            auto_partner_down_held: apd.err(),
            recover_wait_until: self.recover_wait_until,
            partner_pool_from: (self.state == ServerState::PartnerDown && !self.partner_recovering())
                .then(|| self.state_since.saturating_add(self.mclt)),
            handover: if self.parked {
                Some("handed-over")
            } else if self.leaving.is_some() {
                Some("leaving")
            } else {
                None
            },
            rescue_after: self.cfg.rescue_after,
            partner_handover: self.partner_extensions & EXTENSION_HANDOVER != 0,
        }
    }

    /// How this relationship's pools are used: each address range's
    /// halves (§4.2.1), each prefix pool's FREE and FREE-BACKUP (§4.2.2).
    pub fn pool_use(&self, db: &LeaseDb) -> PoolUse {
        let ranges = self
            .cfg
            .ranges
            .iter()
            .filter_map(|&i| db.ranges().get(i))
            .map(|r| {
                let (first, last) = r.bounds();
                let size = r.size();
                let odd = r.class_size(1);
                RangeUse {
                    range: format!("{first}-{last}"),
                    primary_size: odd,
                    primary_free: r.free_in_class(1),
                    secondary_size: size.saturating_sub(odd),
                    secondary_free: r.free_in_class(0),
                }
            })
            .collect();
        let pd_pools = self
            .cfg
            .pd_pools
            .iter()
            .filter_map(|&i| db.pd_pools().get(i))
            .map(|p| PdPoolUse {
                pool: format!("{} delegating /{}", p.prefix(), p.delegated_len()),
                size: p.size(),
                free: p.free_in_class(0),
                free_backup: p.free_in_class(1),
            })
            .collect();
        PoolUse { ranges, pd_pools }
    }

    /// Chooses the automatic PARTNER-DOWN rule (the simulator's sabotage
    /// switch; a server keeps the default, [`AutoPartnerDownRule::Safe`]).
    pub fn set_auto_partner_down_rule(&mut self, rule: AutoPartnerDownRule) {
        self.auto_pd_rule = rule;
    }

    /// Whether `key` is in this relationship's pools.
    pub fn owns(&self, db: &LeaseDb, key: &LeaseKey) -> bool {
        match key.kind {
            LeaseKind::Na => db
                .range_of(key.prefix.addr())
                .is_some_and(|r| self.cfg.ranges.contains(&r)),
            LeaseKind::Pd => db
                .pd_pool_of(&key.prefix)
                .is_some_and(|p| self.cfg.pd_pools.contains(&p)),
        }
    }

    // ---- outputs -------------------------------------------------------

    /// Lease records changed by the endpoint, and its own record when it
    /// changed: make them durable before sending anything.
    pub fn poll_persist(&mut self) -> (Vec<Lease>, Option<EndpointRecord>) {
        let record = if self.record_dirty {
            self.record_dirty = false;
            Some(self.record())
        } else {
            None
        };
        (std::mem::take(&mut self.persist), record)
    }

    /// The next message for the partner.
    pub fn poll_transmit(&mut self) -> Option<FailoverMessage<'static>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`FailoverEndpoint::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        let mut t = vec![self.next_scan];
        if let Some((_, until)) = self.startup {
            t.push(until);
        }
        if let Some(w) = self.recover_wait_until {
            t.push(w);
        }
        if let Some(at) = self.auto_partner_down_at() {
            t.push(at);
        }
        if let Some(l) = self.leaving {
            t.push(l.deadline);
        }
        if let Some(at) = self.unresponsive_partner_at() {
            t.push(at);
        }
        if matches!(
            self.conn,
            Conn::Established { .. } | Conn::AwaitConnect | Conn::AwaitConnectReply
        ) {
            t.push(self.last_received.saturating_add(self.cfg.keepalive));
        }
        // CONTACT only on an established connection (handle_timeout sends
        // none before), so no timer that nothing would ever advance.
        if matches!(self.conn, Conn::Established { .. }) {
            t.push(self.last_sent.saturating_add(self.send_interval()));
        }
        t.into_iter().min()
    }

    /// The state this endpoint shows its partner and records, and when it
    /// began: during STARTUP, the state it will resume (§8.3.1).
    pub(super) fn shown_state(&self) -> (ServerState, UnixTime) {
        match (self.state, self.startup) {
            (ServerState::Startup, Some((prev, _))) => (prev, self.resume.1),
            (s, _) => (s, self.state_since),
        }
    }

    /// The persisted record as it now stands.
    pub fn record(&self) -> EndpointRecord {
        let (recorded, since) = self.shown_state();
        EndpointRecord {
            state: u8::from(recorded),
            state_since: since,
            partner_state: self.partner_state.map_or(0, u8::from),
            partner_state_since: self.partner_state_since,
            communicated: self.communicated,
            mclt_secs: self.mclt.as_secs(),
            download_pending: self.download_pending,
            handed_over: self.handed_over,
        }
    }

    // ---- helpers ---------------------------------------------------------

    fn response_timeout(&self) -> Duration {
        self.cfg.keepalive.saturating_mul(RESPONSE_KEEPALIVES)
    }

    /// When the partner will have failed to answer for too long: our
    /// BNDUPDs (no BNDREPLY) or our UPDREQ / UPDREQALL (no BNDUPD, no
    /// UPDDONE).
    pub(super) fn unresponsive_partner_at(&self) -> Option<UnixTime> {
        if !matches!(self.conn, Conn::Established { .. }) {
            return None;
        }
        let acks = self.acks_awaited_since;
        let download = self.updreq_sent.map(|_| self.updreq_progress);
        [acks, download]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_add(self.response_timeout()))
    }

    fn send_interval(&self) -> Duration {
        self.partner_keepalive
            .checked_div(CONTACTS_PER_KEEPALIVE)
            .unwrap_or_default()
            .max(Duration::from_secs(1))
    }

    fn xid(&mut self) -> TransactionId {
        // Skip ids still outstanding (an UPDREQ may stay open long, §5.4).
        // Consecutive ids are distinct and at most `busy` of them are in
        // use, so one of the first `busy + 1` is free: the loop is bounded
        // (the in-flight table is, by MAX_UNACKED_BNDUPD_CAP).
        let busy = self.in_flight.len().saturating_add(2);
        let mut id = TransactionId::from_low_bits(self.next_xid);
        for _ in 0..=busy {
            id = TransactionId::from_low_bits(self.next_xid);
            self.next_xid = self.next_xid.wrapping_add(1) & TransactionId::MAX;
            if self.next_xid == 0 {
                self.next_xid = 1;
            }
            let taken = self.in_flight.contains_key(&id)
                || self.updreq_sent == Some(id)
                || self.serving.as_ref().is_some_and(|(x, _)| *x == id);
            if !taken {
                break;
            }
        }
        id
    }

    fn send(&mut self, mut msg: FailoverMessage<'static>, now: UnixTime) {
        msg.sent_time = now.to_abs();
        self.last_sent = now;
        self.transmit.push_back(msg);
    }

    fn simple(&mut self, t: FailoverMessageType, xid: Option<TransactionId>, now: UnixTime) {
        let xid = xid.unwrap_or_else(|| self.xid());
        self.send(FailoverMessage::new(t, xid, now.to_abs()), now);
    }

    fn note(&mut self, s: String) {
        self.events.push_back(Event::Notice(s));
    }

    // ---- messages ------------------------------------------------------

    // ---- prefix balance (§4.2.2) -----------------------------------------

    // ---- policy (what DHCPv6 processing may do) --------------------------
}

#[cfg(test)]
mod tests;
