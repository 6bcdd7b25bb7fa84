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
//! | `relationships.rs` | every relationship of a server |

mod balance;
mod bndupd;
mod connection;
mod lifetimes;
mod relationships;
mod resync;
mod state;
mod updates;

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

/// One failover relationship's endpoint (see the module documentation).
#[derive(Debug)]
pub struct FailoverEndpoint {
    cfg: EndpointConfig,
    mclt: Duration,
    state: ServerState,
    state_since: UnixTime,
    /// Set during STARTUP: the state to resume and when to give up waiting.
    startup: Option<(ServerState, UnixTime)>,
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
        FailoverEndpoint {
            mclt,
            state: ServerState::Startup,
            state_since: now,
            startup: Some((previous, now.saturating_add(cfg.startup_time))),
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
        }
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
        if let (ServerState::CommunicationsInterrupted, Some(apd), Some(lost), Conn::Down) = (
            self.state,
            self.cfg.auto_partner_down,
            self.comms_lost_at,
            self.conn,
        ) {
            t.push(lost.saturating_add(apd));
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

    /// The persisted record as it now stands.
    pub fn record(&self) -> EndpointRecord {
        let recorded = match (self.state, self.startup) {
            (ServerState::Startup, Some((prev, _))) => prev,
            (s, _) => s,
        };
        EndpointRecord {
            state: u8::from(recorded),
            state_since: self.state_since,
            partner_state: self.partner_state.map_or(0, u8::from),
            partner_state_since: self.partner_state_since,
            communicated: self.communicated,
            mclt_secs: self.mclt.as_secs(),
            download_pending: self.download_pending,
        }
    }

    // ---- helpers ---------------------------------------------------------

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
