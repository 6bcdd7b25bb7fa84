//! The RFC 8156 failover endpoint, sans-IO (digest: ../shared/spec/failover-rfc8156.md).
//!
//! One [`FailoverEndpoint`] per relationship (a server may hold several:
//! m-to-1, RFC 7031 req. 3). It is driven like quinn-proto's connection:
//!
//! * inputs — [`FailoverEndpoint::handle_connected`] /
//!   [`FailoverEndpoint::handle_closed`] (the TCP+TLS link),
//!   [`FailoverEndpoint::handle_message`], [`FailoverEndpoint::handle_timeout`],
//!   the operator's [`FailoverEndpoint::partner_down`], and
//!   [`FailoverEndpoint::leases_changed`] (lease records made durable by
//!   DHCPv6 processing: the lazy updates of §4.3);
//! * outputs, polled — [`FailoverEndpoint::poll_persist`] (lease records
//!   and the endpoint record to make durable), then
//!   [`FailoverEndpoint::poll_transmit`] (messages for the partner),
//!   [`FailoverEndpoint::poll_event`] and [`FailoverEndpoint::poll_timeout`].
//!
//! **The driver's one rule:** make everything from `poll_persist` durable
//! before sending anything from `poll_transmit` (a BNDREPLY must not leave
//! before the BNDUPD it acknowledges is in stable storage, §7.5.2; a STATE
//! should not leave before the state is recorded, §6.3).
//!
//! The decisions DHCPv6 processing asks of the endpoint (may I answer, what
//! may I allocate, for how long) are the [`crate::policy::LeasePolicy`]
//! implementation of [`Relationships`].

mod bndupd;
mod state;

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
            startup: Some((previous, now + cfg.startup_time)),
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
            next_scan: now + cfg.scan_interval,
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
            t.push(lost + apd);
        }
        if matches!(
            self.conn,
            Conn::Established { .. } | Conn::AwaitConnect | Conn::AwaitConnectReply
        ) {
            t.push(self.last_received + self.cfg.keepalive);
        }
        // CONTACT only on an established connection (handle_timeout sends
        // none before), so no timer that nothing would ever advance.
        if matches!(self.conn, Conn::Established { .. }) {
            t.push(self.last_sent + self.send_interval());
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
        (self.partner_keepalive / CONTACTS_PER_KEEPALIVE).max(Duration::from_secs(1))
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

    fn my_flags(&self) -> u8 {
        let mut f = 0;
        if self.startup.is_some() {
            f |= SERVER_FLAG_STARTUP;
        }
        if self.communicated_at_connect {
            f |= SERVER_FLAG_COMMUNICATED;
        }
        if self.partner_flags & SERVER_FLAG_STARTUP != 0 {
            f |= SERVER_FLAG_ACK_STARTUP;
        }
        f
    }

    /// STATE (§6.3): own state (the recorded one during STARTUP, with the
    /// STARTUP flag), flags, start time, and PARTNER-DOWN time iff in it.
    fn send_state(&mut self, now: UnixTime) {
        if !matches!(self.conn, Conn::Established { .. }) {
            return;
        }
        let shown = match (self.state, self.startup) {
            (ServerState::Startup, Some((prev, _))) => prev,
            (s, _) => s,
        };
        let xid = self.xid();
        let mut m = FailoverMessage::new(FailoverMessageType::State, xid, now.to_abs());
        m.options.push(DhcpOption::ServerState(shown));
        m.options.push(DhcpOption::ServerFlags(self.my_flags()));
        m.options
            .push(DhcpOption::StartTimeOfState(self.state_since.to_abs()));
        if self.state == ServerState::PartnerDown {
            m.options
                .push(DhcpOption::PartnerDownTime(self.state_since.to_abs()));
        }
        self.send(m, now);
    }

    fn connect_options(&self) -> Vec<DhcpOption<'static>> {
        let mut o = vec![
            DhcpOption::ProtocolVersion {
                major: PROTOCOL_VERSION.0,
                minor: PROTOCOL_VERSION.1,
            },
            DhcpOption::Mclt(u32::try_from(self.mclt.as_secs()).unwrap_or(u32::MAX)),
            DhcpOption::KeepaliveTime(u32::try_from(self.cfg.keepalive.as_secs()).unwrap_or(u32::MAX)),
            DhcpOption::MaxUnackedBndupd(self.cfg.max_unacked_bndupd.max(1)),
        ];
        // A4: the relationship name goes in CONNECTREPLY too.
        o.push(DhcpOption::RelationshipName(Cow::Owned(self.cfg.name.clone())));
        // Every delegable prefix of a pool is delegated at the pool's one length.
        o.push(DhcpOption::ConnectFlags(CONNECT_FLAG_FIXED_PD_LENGTH));
        if let Some(fp) = &self.cfg.fingerprint {
            o.push(DhcpOption::VendorOpts(VendorOpts {
                enterprise_number: FINGERPRINT_ENTERPRISE,
                options: vec![VendorSubOption {
                    code: FINGERPRINT_SUBOPTION,
                    data: Cow::Owned(fp.clone()),
                }],
            }));
        }
        o
    }

    fn fingerprint_of(opts: &[DhcpOption<'_>]) -> Option<Vec<u8>> {
        opts.iter().find_map(|o| match o {
            DhcpOption::VendorOpts(v) if v.enterprise_number == FINGERPRINT_ENTERPRISE => v
                .options
                .iter()
                .find(|s| s.code == FINGERPRINT_SUBOPTION)
                .map(|s| s.data.to_vec()),
            _ => None,
        })
    }

    // ---- connection ----------------------------------------------------

    /// The TCP (+TLS) connection to the partner is up. The primary sends
    /// CONNECT (§6.1.1); the secondary waits for it.
    pub fn handle_connected(&mut self, now: UnixTime) {
        self.communicated_at_connect = self.communicated;
        self.last_received = now;
        self.last_sent = now;
        // What the previous connection's partner announced does not carry
        // over: its CONNECT / CONNECTREPLY tells again.
        self.partner_keepalive = self.cfg.keepalive;
        self.partner_max_unacked = 1;
        match self.cfg.role {
            Role::Primary => {
                let xid = self.xid();
                let mut m = FailoverMessage::new(FailoverMessageType::Connect, xid, now.to_abs());
                m.options = self.connect_options();
                self.send(m, now);
                self.conn = Conn::AwaitConnectReply;
            }
            Role::Secondary => self.conn = Conn::AwaitConnect,
        }
    }

    /// The connection is gone (closed or reset).
    pub fn handle_closed(&mut self, now: UnixTime, db: &mut LeaseDb) {
        self.transmit.clear();
        self.connection_lost(now, db);
    }

    fn connection_lost(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if self.conn == Conn::Down {
            return;
        }
        let was_ok = self.communications_ok();
        self.conn = Conn::Down;
        // Everything in flight goes back to the head of the queue (sent
        // again after the next connection, §8.8.1).
        let mut back: Vec<(TransactionId, InFlight)> =
            std::mem::take(&mut self.in_flight).into_iter().collect();
        back.sort_by_key(|(x, _)| *x);
        self.in_flight_keys.clear();
        for (_, f) in back.into_iter().rev() {
            let item = QueueItem {
                announce: (f.announced != f.snapshot.state).then_some(f.announced),
                force: false,
            };
            if self.queued.insert(f.key, item).is_none() {
                self.queue.push_front(f.key);
            }
        }
        self.updreq_sent = None;
        self.serving = None;
        if was_ok {
            self.events.push_back(Event::CommunicationsLost);
        }
        let next = state::on_communications_failed(self.state);
        self.enter(next, now, db);
    }

    /// We close: what is already queued (a refusing CONNECTREPLY, a
    /// DISCONNECT) is still sent, then the driver closes the connection.
    fn close(&mut self, reason: String, now: UnixTime, db: &mut LeaseDb) {
        self.events.push_back(Event::Close(reason));
        self.connection_lost(now, db);
    }

    // ---- messages ------------------------------------------------------

    /// A message from the partner.
    pub fn handle_message(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        self.last_received = now;
        let sent = UnixTime::from_abs(msg.sent_time, now);
        let skew = i64::try_from(sent.secs()).unwrap_or(0) - i64::try_from(now.secs()).unwrap_or(0);
        self.clock_skew = Some(skew);
        let skewed = skew.unsigned_abs() > MAX_TIME_SKEW;
        use FailoverMessageType as T;
        match (self.conn, msg.msg_type) {
            (Conn::Down, _) => {}
            (Conn::AwaitConnect, T::Connect) => self.on_connect(now, msg, skewed, db),
            (Conn::AwaitConnectReply, T::ConnectReply) => self.on_connect_reply(now, msg, db),
            (Conn::Established { .. }, _) if skewed => {
                // §7.5.1: SHOULD drop the connection.
                self.close(
                    format!("partner clock differs by {skew} s (more than {MAX_TIME_SKEW} s)"),
                    now,
                    db,
                );
            }
            (Conn::Established { .. }, T::State) => self.on_state(now, msg, db),
            (Conn::Established { .. }, T::Contact) => {}
            (Conn::Established { .. }, T::Disconnect) => {
                let why = bndupd::status_text(&msg.options);
                self.close(format!("partner sent DISCONNECT {why}"), now, db);
            }
            (Conn::Established { .. }, T::BndUpd) => self.on_bndupd(now, msg, db),
            (Conn::Established { .. }, T::BndReply) => self.on_bndreply(now, msg, db),
            (Conn::Established { .. }, T::UpdReq | T::UpdReqAll) => {
                self.on_updreq(now, msg.transaction_id, msg.msg_type == T::UpdReqAll, db)
            }
            (Conn::Established { .. }, T::UpdDone) => self.on_upddone(now, msg.transaction_id, db),
            (Conn::Established { .. }, T::PoolReq) => self.on_poolreq(now, msg.transaction_id, db),
            (Conn::Established { .. }, T::PoolResp) => {}
            (c, t) => {
                self.close(format!("unexpected {t} in connection state {c:?}"), now, db);
            }
        }
        self.pump(now, db);
    }

    fn reject_connect(
        &mut self,
        now: UnixTime,
        request: TransactionId,
        code: StatusCode,
        text: String,
        db: &mut LeaseDb,
    ) {
        let mut m = FailoverMessage::new(FailoverMessageType::ConnectReply, request, now.to_abs());
        m.options.push(DhcpOption::StatusCode(Status {
            code,
            message: Cow::Owned(text.clone().into_bytes()),
        }));
        self.send(m, now);
        self.close(format!("refused CONNECT: {code}: {text}"), now, db);
    }

    /// Secondary (§6.1.2).
    fn on_connect(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, skewed: bool, db: &mut LeaseDb) {
        let xid = msg.transaction_id;
        if skewed {
            let skew = self.clock_skew.unwrap_or(0);
            return self.reject_connect(
                now,
                xid,
                StatusCode::ExcessiveTimeSkew,
                format!("clocks differ by {skew} s"),
                db,
            );
        }
        let version = msg.options.iter().find_map(|o| match o {
            DhcpOption::ProtocolVersion { major, minor } => Some((*major, *minor)),
            _ => None,
        });
        if version.map(|v| v.0) != Some(PROTOCOL_VERSION.0) {
            return self.reject_connect(
                now,
                xid,
                StatusCode::NotSupported,
                format!("protocol version {version:?} not supported"),
                db,
            );
        }
        let name = msg.options.iter().find_map(|o| match o {
            DhcpOption::RelationshipName(n) => Some(n.to_string()),
            _ => None,
        });
        if name.as_deref().is_some_and(|n| n != self.cfg.name) {
            return self.reject_connect(
                now,
                xid,
                StatusCode::ConfigurationConflict,
                format!(
                    "relationship {:?} is not {:?}",
                    name.unwrap_or_default(),
                    self.cfg.name
                ),
                db,
            );
        }
        if let (Some(mine), Some(theirs)) = (&self.cfg.fingerprint, Self::fingerprint_of(&msg.options)) {
            if *mine != theirs {
                // Only the secondary compares: name the roles, not "here", so
                // the text reads right in the primary's log too.
                let diff = fingerprint_diff(mine, &theirs, "secondary", "primary");
                return self.reject_connect(
                    now,
                    xid,
                    StatusCode::ConfigurationConflict,
                    format!("the relationship's subnets and pools differ between the partners: {diff}"),
                    db,
                );
            }
        }
        let Some(mclt) = msg.options.iter().find_map(|o| match o {
            DhcpOption::Mclt(m) => Some(*m),
            _ => None,
        }) else {
            return self.reject_connect(
                now,
                xid,
                StatusCode::MissingBindingInformation,
                "no OPTION_F_MCLT".into(),
                db,
            );
        };
        if Duration::from_secs(u64::from(mclt)) != self.mclt {
            self.note(format!(
                "adopting the primary's MCLT of {mclt} s (configured {} s)",
                self.mclt.as_secs()
            ));
            self.mclt = Duration::from_secs(u64::from(mclt));
            self.record_dirty = true;
        }
        self.adopt_partner_params(&msg.options);
        let mut reply = FailoverMessage::new(FailoverMessageType::ConnectReply, xid, now.to_abs());
        reply.options = self.connect_options();
        self.send(reply, now);
        self.conn = Conn::Established { comms_ok: false };
        self.send_state(now);
    }

    fn adopt_partner_params(&mut self, opts: &[DhcpOption<'_>]) {
        for o in opts {
            match o {
                DhcpOption::KeepaliveTime(k) => self.partner_keepalive = Duration::from_secs(u64::from(*k)),
                DhcpOption::MaxUnackedBndupd(n) => {
                    self.partner_max_unacked = (*n).clamp(1, MAX_UNACKED_BNDUPD_CAP)
                }
                _ => {}
            }
        }
    }

    /// Primary (§6.1.3).
    fn on_connect_reply(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        if let Some(s) = msg.options.status().filter(|s| s.code != StatusCode::Success) {
            let text = format!("{}: {}", s.code, s.message_lossy());
            self.events.push_back(Event::ConnectRefused(text.clone()));
            return self.close(format!("partner refused CONNECT: {text}"), now, db);
        }
        let version = msg.options.iter().find_map(|o| match o {
            DhcpOption::ProtocolVersion { major, .. } => Some(*major),
            _ => None,
        });
        let mclt = msg.options.iter().find_map(|o| match o {
            DhcpOption::Mclt(m) => Some(u64::from(*m)),
            _ => None,
        });
        if version != Some(PROTOCOL_VERSION.0) || mclt != Some(self.mclt.as_secs()) {
            self.simple(FailoverMessageType::Disconnect, None, now);
            return self.close(
                format!("CONNECTREPLY with version {version:?} / MCLT {mclt:?} not acceptable"),
                now,
                db,
            );
        }
        self.adopt_partner_params(&msg.options);
        self.conn = Conn::Established { comms_ok: false };
        self.send_state(now);
    }

    fn on_state(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        let mut partner = None;
        let mut flags = 0;
        let mut since = None;
        let mut pd_time = None;
        for o in &msg.options {
            match o {
                DhcpOption::ServerState(s) => partner = Some(*s),
                DhcpOption::ServerFlags(f) => flags = *f,
                DhcpOption::StartTimeOfState(t) => since = Some(UnixTime::from_abs(*t, now)),
                DhcpOption::PartnerDownTime(t) => pd_time = Some(UnixTime::from_abs(*t, now)),
                _ => {}
            }
        }
        let Some(partner) = partner.and_then(|p| state_from_u8(u8::from(p))) else {
            return self.close("STATE without a valid OPTION_F_SERVER_STATE".into(), now, db);
        };
        let first = !self.communications_ok();
        self.partner_flags = flags;
        self.partner_down_since = if partner == ServerState::PartnerDown {
            pd_time.or(since)
        } else {
            None
        };
        if self.partner_state != Some(partner) {
            self.record_dirty = true;
        }
        self.partner_state = Some(partner);
        self.partner_state_since = since.unwrap_or(now);
        if first {
            self.conn = Conn::Established { comms_ok: true };
            // No record of the partner, which has one of us: our storage
            // was lost and we need its whole database (§8.5.1, A5). That
            // need is recorded together with COMMUNICATED and lasts until
            // an UPDREQALL is complete: recorded alone, a crash before or
            // during the download would make the restarted server ask for
            // the changes only, and serve from a partial table (found by
            // duet-sim, seeds 235 and 4057).
            if !self.communicated_before && flags & SERVER_FLAG_COMMUNICATED != 0 {
                self.download_pending = true;
            }
            self.communicated = true;
            self.record_dirty = true;
            self.comms_lost_at = None;
            self.events.push_back(Event::CommunicationsOk);
        }
        // §8.3.2 step 5: a starting server decides where to go.
        if let Some((previous, _)) = self.startup {
            let current = state::startup_resolution(
                previous,
                partner,
                self.partner_down_since.map(UnixTime::secs),
                self.last_operating.map(UnixTime::secs),
            );
            self.startup = None;
            self.enter(current, now, db);
        } else if first {
            // A fresh connection: (re)announce our state.
            self.send_state(now);
        }
        // A22: never act on a STARTUP-flagged STATE.
        if flags & SERVER_FLAG_STARTUP != 0 {
            return;
        }
        match state::on_partner_state(self.state, self.cfg.role, partner) {
            state::OnPartner::Go(next) => self.enter(next, now, db),
            state::OnPartner::Stay => {}
        }
        // Per-state actions that depend on the partner's state.
        match (self.state, self.cfg.role, partner) {
            (ServerState::Recover, _, _) if self.updreq_sent.is_none() => self.send_updreq(now),
            (ServerState::PotentialConflict, Role::Secondary, ServerState::ConflictDone)
                if self.updreq_sent.is_none() =>
            {
                self.send_updreq(now)
            }
            (ServerState::PotentialConflict, Role::Primary, _) if self.updreq_sent.is_none() && first => {
                self.send_updreq(now)
            }
            _ => {}
        }
    }

    fn send_updreq(&mut self, now: UnixTime) {
        // UPDREQALL when our storage was lost (see `on_state`).
        let all = self.state == ServerState::Recover && self.download_pending;
        let xid = self.xid();
        let t = if all {
            FailoverMessageType::UpdReqAll
        } else {
            FailoverMessageType::UpdReq
        };
        self.updreq_sent = Some(xid);
        self.updreq_all = all;
        self.send(FailoverMessage::new(t, xid, now.to_abs()), now);
    }

    fn relationship_leases<'d>(&self, db: &'d LeaseDb) -> Vec<&'d Lease> {
        db.iter().filter(|l| self.owns(db, &l.key)).collect()
    }

    fn on_updreq(&mut self, now: UnixTime, xid: TransactionId, all: bool, db: &mut LeaseDb) {
        if all {
            self.partner_lost_its_storage(now, db);
        }
        let keys: Vec<LeaseKey> = self
            .relationship_leases(db)
            .into_iter()
            .filter(|l| all || l.failover.pending_update)
            // A FREE prefix the partner never heard of needs no update
            // unless it asked for everything.
            .map(|l| l.key)
            .collect();
        let mut set = BTreeSet::new();
        for k in keys {
            set.insert(k);
            self.enqueue(
                k,
                QueueItem {
                    announce: None,
                    force: all,
                },
            );
        }
        self.serving = Some((xid, set));
    }

    /// UPDREQALL: the partner lost its storage (duet-sim found both):
    ///
    /// * with it went the renewals it gave that we never saw. The MCLT rule
    ///   bounds each by what we acknowledged for that binding (our
    ///   expiration-time) + MCLT (§4.4), but leases are freed on an
    ///   acknowledgement (§7.2 event 4), which the partner will give once
    ///   its copy from us runs out: every binding is kept, on both sides,
    ///   until that bound;
    /// * and what it acknowledged to us: our acknowledged partner lifetimes
    ///   no longer stand for anything it knows, so the MCLT rule counts
    ///   none of them until it acknowledges them again (during this very
    ///   download).
    fn partner_lost_its_storage(&mut self, now: UnixTime, db: &mut LeaseDb) {
        let mclt = self.mclt;
        let changed: Vec<Lease> = self
            .relationship_leases(db)
            .into_iter()
            .filter_map(|l| {
                let end = l.failover.expiration_time + mclt;
                let hold = l.binding.is_some()
                    && matches!(l.state, LeaseState::Active | LeaseState::Expired)
                    && l.failover.expiration_time > UnixTime::ZERO
                    && end > now
                    && end > l.valid_until;
                let forget = l.failover.acked_partner_lifetime > UnixTime::ZERO;
                (hold || forget).then(|| {
                    let mut l = l.clone();
                    l.failover.acked_partner_lifetime = UnixTime::ZERO;
                    if hold {
                        if l.state != LeaseState::Active {
                            l.state = LeaseState::Active;
                            l.start_time_of_state = now;
                        }
                        l.valid_until = end;
                        l.state_expiration = Some(end);
                    }
                    l
                })
            })
            .collect();
        for l in changed {
            if db.upsert(l.clone()).is_ok() {
                self.persist.push(l);
            }
        }
    }

    fn on_upddone(&mut self, now: UnixTime, xid: TransactionId, db: &mut LeaseDb) {
        if self.updreq_sent != Some(xid) {
            return self.note(format!("UPDDONE {xid} matches no UPDREQ of ours"));
        }
        self.updreq_sent = None;
        if self.updreq_all {
            // The full download is complete.
            self.download_pending = false;
            self.record_dirty = true;
        }
        if let Some(next) = state::on_upddone(self.state, self.cfg.role) {
            self.enter(next, now, db);
        }
    }

    // ---- binding updates -----------------------------------------------

    fn enqueue(&mut self, key: LeaseKey, item: QueueItem) {
        match self.queued.get_mut(&key) {
            Some(q) => {
                q.force |= item.force;
                if item.announce.is_some() {
                    q.announce = item.announce;
                }
            }
            None => {
                self.queued.insert(key, item);
                self.queue.push_back(key);
            }
        }
    }

    /// Lease records changed by DHCPv6 processing (or by the lease timers)
    /// are now durable: queue their lazy updates (§4.3).
    pub fn leases_changed<'a>(
        &mut self,
        now: UnixTime,
        leases: impl IntoIterator<Item = &'a Lease>,
        db: &mut LeaseDb,
    ) {
        for l in leases {
            if l.failover.pending_update && self.owns(db, &l.key) {
                self.wait_scan.remove(&l.key);
                self.enqueue(
                    l.key,
                    QueueItem {
                        announce: None,
                        force: false,
                    },
                );
            }
        }
        self.pump(now, db);
    }

    fn may_send_updates(&self) -> bool {
        self.communications_ok()
            && (matches!(self.state, ServerState::Normal | ServerState::ConflictDone)
                || self.serving.is_some())
    }

    /// Sends queued BNDUPDs up to the partner's limit, one in flight per
    /// lease (digest A23), then UPDDONE / POOLREQ when due.
    fn pump(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if !self.may_send_updates() {
            return;
        }
        let limit = self.partner_max_unacked.max(1) as usize;
        let mut deferred = Vec::new();
        while self.in_flight.len() < limit {
            let Some(key) = self.queue.pop_front() else { break };
            let Some(item) = self.queued.remove(&key) else {
                continue;
            };
            if self.in_flight_keys.contains_key(&key) {
                deferred.push((key, item));
                continue;
            }
            let Some(lease) = db.get(&key).cloned() else {
                continue;
            };
            // Taking a prefix back is for a prefix still free: one given to
            // a client since is announced as it is, or its acknowledgement
            // would free it under the client (found by duet-sim, seed 89).
            let announce = item.announce.filter(|_| lease.state.is_available());
            if !(lease.failover.pending_update || item.force || announce.is_some()) {
                self.mark_answered(&key);
                continue;
            }
            let announced = announce.unwrap_or(lease.state);
            let xid = self.xid();
            let Some(msg) = build_bndupd(&lease, announced, xid, now) else {
                self.mark_answered(&key);
                continue;
            };
            self.in_flight_keys.insert(key, xid);
            self.in_flight.insert(
                xid,
                InFlight {
                    key,
                    sent_partner_lifetime: bndupd::sent_partner_lifetime(&lease),
                    snapshot: lease,
                    announced,
                },
            );
            self.send(msg, now);
        }
        for (k, item) in deferred {
            self.enqueue(k, item);
        }
        if let Some((xid, remaining)) = &self.serving {
            if remaining.is_empty() {
                let xid = *xid;
                self.serving = None;
                self.simple(FailoverMessageType::UpdDone, Some(xid), now);
            }
        }
        if self.poolreq_pending
            && self.queue.is_empty()
            && self.in_flight.is_empty()
            && self.state == ServerState::Normal
        {
            self.poolreq_pending = false;
            self.simple(FailoverMessageType::PoolReq, None, now);
        }
    }

    fn mark_answered(&mut self, key: &LeaseKey) {
        if let Some((_, remaining)) = &mut self.serving {
            remaining.remove(key);
        }
    }

    /// A BNDUPD from the partner (§7.5).
    fn on_bndupd(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        let parsed = match parse_bndupd(msg, now) {
            Ok(p) => p,
            Err(whole) => {
                let reply = build_bndreply(msg, &[], Some(whole), now);
                return self.send(reply, now);
            }
        };
        if parsed.len() > MAX_LEASES_PER_BNDUPD {
            // Its BNDREPLY could not hold every verdict: refused whole,
            // nothing applied, and answered all the same (§7.5.2: every
            // BNDUPD gets a BNDREPLY).
            self.note(format!(
                "refused a BNDUPD of {} leases (at most {MAX_LEASES_PER_BNDUPD})",
                parsed.len()
            ));
            let reply = build_bndreply(
                msg,
                &[],
                Some((StatusCode::UnspecFail, "too many leases in one BNDUPD")),
                now,
            );
            return self.send(reply, now);
        }
        let mut updates = Vec::new();
        let mut early_rejects = Vec::new();
        for p in parsed {
            match p {
                Ok(u) => updates.push(u),
                Err((key, reason)) => early_rejects.push((key, reason)),
            }
        }
        let mut results = Vec::new();
        for u in &updates {
            let result = if !self.owns(db, &u.key) {
                Err(StatusCode::ConfigurationConflict)
            } else {
                let local = db.get(&u.key).cloned();
                match bndupd::resolve(local.as_ref(), u, now, self.cfg.role) {
                    Ok(()) => match bndupd::apply(local.as_ref(), u, now) {
                        Some(l) if db.upsert(l.clone()).is_ok() => {
                            if l.failover.pending_update {
                                // We kept a later end: the partner gets it.
                                self.enqueue(
                                    u.key,
                                    QueueItem {
                                        announce: None,
                                        force: false,
                                    },
                                );
                            }
                            self.persist.push(l);
                            Ok(())
                        }
                        _ => Err(StatusCode::ConfigurationConflict),
                    },
                    Err(code) => {
                        // §7.7: our data is newer: make sure the partner gets it.
                        if let Some(mut l) = local {
                            let was_pending = l.failover.pending_update;
                            if !was_pending {
                                l.failover.pending_update = true;
                                if db.upsert(l.clone()).is_ok() {
                                    self.persist.push(l);
                                    self.enqueue(
                                        u.key,
                                        QueueItem {
                                            announce: None,
                                            force: false,
                                        },
                                    );
                                }
                            } else {
                                self.wait_scan.insert(u.key);
                            }
                        }
                        self.note(format!("rejected the partner's update of {}: {code}", u.key));
                        Err(code)
                    }
                }
            };
            results.push(result);
        }
        let verdicts: Vec<Verdict<'_>> = updates
            .iter()
            .zip(results)
            .map(|(update, result)| Verdict { update, result })
            .collect();
        for (key, (code, why)) in &early_rejects {
            self.note(format!(
                "partner's update of {key} is missing information: {why} ({code})"
            ));
        }
        let reply = if verdicts.is_empty() {
            let first = early_rejects.first().map(|(_, r)| *r);
            build_bndreply(msg, &[], first, now)
        } else {
            build_bndreply(msg, &verdicts, None, now)
        };
        self.send(reply, now);
    }

    /// A BNDREPLY (§7.7).
    fn on_bndreply(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        let Some(f) = self.in_flight.remove(&msg.transaction_id) else {
            return self.note(format!(
                "BNDREPLY {} matches no BNDUPD in flight",
                msg.transaction_id
            ));
        };
        self.in_flight_keys.remove(&f.key);
        self.mark_answered(&f.key);
        let acks = parse_bndreply(msg);
        let ack = acks.iter().find(|a| a.key == f.key).cloned();
        let result = match ack {
            Some(a) => a.result.map(|()| a.partner_lifetime_sent),
            // A BNDREPLY that does not mention the lease: treat as rejected.
            None => Err(StatusCode::MissingBindingInformation),
        };
        let Some(mut lease) = db.get(&f.key).cloned() else {
            return;
        };
        match result {
            Ok(pls) => {
                let acked = pls.map_or(f.sent_partner_lifetime, |t| UnixTime::from_abs(t, now));
                // It acknowledges the binding that was sent: a lease given to
                // another client since keeps nothing of it (the MCLT rule
                // would otherwise count it for the new client; found by
                // duet-sim, seed 6879).
                if lease.binding == f.snapshot.binding
                    && lease.state == LeaseState::Active
                    && f.announced == LeaseState::Active
                {
                    lease.failover.acked_partner_lifetime = lease.failover.acked_partner_lifetime.max(acked);
                }
                let unchanged = lease.state == f.snapshot.state
                    && lease.binding == f.snapshot.binding
                    && lease.valid_until == f.snapshot.valid_until
                    && lease.start_time_of_state == f.snapshot.start_time_of_state
                    && lease.cltt == f.snapshot.cltt;
                let mut resend = true;
                if unchanged {
                    if f.announced != lease.state {
                        // Taking a delegable prefix back (§4.2.2): it is ours now.
                        lease.state = f.announced;
                        lease.start_time_of_state = now;
                        lease.failover.pending_update = false;
                    } else if matches!(
                        lease.state,
                        LeaseState::Expired | LeaseState::Released | LeaseState::Reset
                    ) && matches!(
                        self.partner_state,
                        Some(ServerState::Recover | ServerState::RecoverWait)
                    ) {
                        // A partner still recovering (after losing its
                        // storage, perhaps) stores our update but cannot
                        // vouch that no client of its own holds the lease:
                        // it may have extended it just before it failed. The
                        // lease stays pending and is sent again once the
                        // partner is back (after its MCLT wait; found by
                        // duet-sim, seed 388): entering NORMAL resends it.
                        resend = false;
                    } else if matches!(
                        lease.state,
                        LeaseState::Expired | LeaseState::Released | LeaseState::Reset
                    ) {
                        // §7.2 event 4: acknowledged → PENDING-FREE → FREE / FREE-BACKUP.
                        lease.state = bndupd::pending_free_resolves_to(&lease.key);
                        lease.start_time_of_state = now;
                        lease.state_expiration = None;
                        lease.failover.pending_update = true;
                    } else {
                        lease.failover.pending_update = false;
                    }
                } else {
                    // The lease changed since (the partner's own update may
                    // have changed it): the partner now holds what we sent,
                    // not what we hold, so it gets ours too (otherwise it can
                    // keep a stale state forever; found by duet-sim, seed
                    // 7829).
                    lease.failover.pending_update = true;
                }
                if db.upsert(lease.clone()).is_ok() {
                    if lease.failover.pending_update && resend {
                        self.enqueue(
                            lease.key,
                            QueueItem {
                                announce: None,
                                force: false,
                            },
                        );
                    }
                    self.persist.push(lease);
                }
            }
            Err(code) => {
                self.note(format!("partner rejected our update of {}: {code}", f.key));
                self.wait_scan.insert(f.key);
            }
        }
    }

    // ---- prefix balance (§4.2.2) -----------------------------------------

    fn balance_targets(&self, db: &LeaseDb) -> Vec<(usize, u128, u128, u128)> {
        self.cfg
            .pd_pools
            .iter()
            .filter_map(|&i| db.pd_pools().get(i).map(|p| (i, p)))
            .map(|(i, p)| {
                let (f0, f1) = (p.free_in_class(0), p.free_in_class(1));
                let total = f0.saturating_add(f1);
                let target = ((total as f64) * self.cfg.prefix_split.clamp(0.0, 1.0)).round() as u128;
                (i, f0, f1, target)
            })
            .collect()
    }

    /// Primary: moves free delegable prefixes so the secondary holds its
    /// configured share (FREE-BACKUP), with a threshold against churn.
    fn rebalance(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if self.cfg.role != Role::Primary {
            return;
        }
        for (pool, f0, f1, target) in self.balance_targets(db) {
            let threshold = ((f0 + f1) / 20).max(1);
            if f1.saturating_add(threshold) <= target {
                let n = usize::try_from(target - f1).unwrap_or(usize::MAX).min(4096);
                let picks = db
                    .pd_pools()
                    .get(pool)
                    .map(|p| p.pick_free(0, n))
                    .unwrap_or_default();
                for p in picks {
                    let key = LeaseKey::prefix(p);
                    let mut l = db
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| Lease::free(key, LeaseState::Free, now));
                    l.state = LeaseState::FreeBackup;
                    l.start_time_of_state = now;
                    l.failover.pending_update = true;
                    if db.upsert(l.clone()).is_ok() {
                        self.persist.push(l);
                        self.enqueue(
                            key,
                            QueueItem {
                                announce: None,
                                force: false,
                            },
                        );
                    }
                }
            } else if f1 > target.saturating_add(threshold) {
                let n = usize::try_from(f1 - target).unwrap_or(usize::MAX).min(4096);
                let picks = db
                    .pd_pools()
                    .get(pool)
                    .map(|p| p.pick_free(1, n))
                    .unwrap_or_default();
                for p in picks {
                    let key = LeaseKey::prefix(p);
                    // Recorded as unacknowledged: after a crash before the
                    // partner's answer we resend our FREE-BACKUP (undoing
                    // the take-back the partner may have applied) instead
                    // of the two tables disagreeing on the owner for good
                    // (found by duet-sim, seed 5812).
                    if let Some(mut l) = db.get(&key).cloned().filter(|l| !l.failover.pending_update) {
                        l.failover.pending_update = true;
                        if db.upsert(l.clone()).is_ok() {
                            self.persist.push(l);
                        }
                    }
                    self.enqueue(
                        key,
                        QueueItem {
                            announce: Some(LeaseState::Free),
                            force: true,
                        },
                    );
                }
            }
        }
    }

    fn on_poolreq(&mut self, now: UnixTime, xid: TransactionId, db: &mut LeaseDb) {
        if self.cfg.role == Role::Primary {
            self.simple(FailoverMessageType::PoolResp, Some(xid), now);
            self.rebalance(now, db);
        }
    }

    /// Secondary: asks for a check when its share ran below half its target.
    fn secondary_low(&self, db: &LeaseDb) -> bool {
        self.balance_targets(db)
            .iter()
            .any(|&(_, _, f1, target)| f1 < target / 2)
    }

    // ---- states ----------------------------------------------------------

    fn enter(&mut self, next: ServerState, now: UnixTime, db: &mut LeaseDb) {
        if next == self.state {
            return;
        }
        let from = self.state;
        self.state = next;
        self.state_since = now;
        self.record_dirty = true;
        self.events.push_back(Event::StateChanged { from, to: next });
        match next {
            ServerState::Normal => {
                // Send every update the partner has not acknowledged (§8.8).
                let pending: Vec<LeaseKey> = self
                    .relationship_leases(db)
                    .into_iter()
                    .filter(|l| l.failover.pending_update)
                    .map(|l| l.key)
                    .collect();
                for k in pending {
                    self.enqueue(
                        k,
                        QueueItem {
                            announce: None,
                            force: false,
                        },
                    );
                }
                self.wait_scan.clear();
                self.poolreq_pending = self.cfg.role == Role::Secondary;
                self.comms_lost_at = None;
            }
            ServerState::CommunicationsInterrupted => {
                self.comms_lost_at = Some(now);
            }
            ServerState::PartnerDown => {
                // Released/expired leases start their MCLT reuse clocks (§8.4.1).
                let waiting: Vec<Lease> = self
                    .relationship_leases(db)
                    .into_iter()
                    .filter(|l| {
                        matches!(
                            l.state,
                            LeaseState::Expired | LeaseState::Released | LeaseState::Reset
                        )
                    })
                    .cloned()
                    .collect();
                for mut l in waiting {
                    l.state_expiration = Some(self.reuse_time(&l, now));
                    let _ = db.upsert(l);
                }
            }
            // The primary asks first (§8.10.1); a recovering server asks
            // for what it missed (§8.5.1).
            ServerState::PotentialConflict | ServerState::Recover
                if (next == ServerState::Recover || self.cfg.role == Role::Primary)
                    && self.communications_ok()
                    && self.updreq_sent.is_none() =>
            {
                self.send_updreq(now);
            }
            ServerState::RecoverWait => {
                // §8.6.2: MAY skip the wait if this server never ran failover,
                // established from the partner's data: its flags from the
                // current connection. Without one they are unknown, not
                // "never communicated" (duet-sim seed 48086: a server that
                // restarted in RECOVER-WAIT with its partner down skipped
                // the wait).
                if self.communications_ok() && self.partner_flags & SERVER_FLAG_COMMUNICATED == 0 {
                    self.recover_wait_until = Some(now);
                } else {
                    let failure = self.last_operating.unwrap_or(self.started_at);
                    self.recover_wait_until = Some(failure + self.mclt);
                }
            }
            _ => {}
        }
        if next != ServerState::RecoverWait {
            self.recover_wait_until = None;
        }
        self.send_state(now);
        if next == ServerState::RecoverWait && self.recover_wait_until.is_some_and(|t| t <= now) {
            self.recover_wait_until = None;
            self.enter(ServerState::RecoverDone, now, db);
        }
    }

    /// This server is stopping: tell the partner with DISCONNECT
    /// (ServerShuttingDown, §5.3.10); the driver then closes the connection.
    pub fn shutdown(&mut self, now: UnixTime) {
        if matches!(self.conn, Conn::Established { .. }) {
            let xid = self.xid();
            let mut m = FailoverMessage::new(FailoverMessageType::Disconnect, xid, now.to_abs());
            m.options.push(DhcpOption::StatusCode(Status::new(
                StatusCode::ServerShuttingDown,
                "server shutting down",
            )));
            self.send(m, now);
            self.events.push_back(Event::Close("shutting down".into()));
        }
    }

    /// The operator declares the partner down (§8.4).
    pub fn partner_down(&mut self, now: UnixTime, db: &mut LeaseDb) -> Result<(), CommandError> {
        if self.state == ServerState::PartnerDown {
            return Ok(());
        }
        if !state::partner_down_allowed(self.state) {
            return Err(CommandError::NotAllowed {
                name: self.cfg.name.clone(),
                state: self.state,
            });
        }
        self.enter(ServerState::PartnerDown, now, db);
        Ok(())
    }

    /// Timers: startup, keepalive / CONTACT, RECOVER-WAIT, auto-partner-down,
    /// the periodic scan.
    pub fn handle_timeout(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if let Some((previous, until)) = self.startup {
            if now >= until {
                // §8.3.2 step 6: no partner within the startup time.
                self.startup = None;
                self.enter(previous, now, db);
            }
        }
        if matches!(
            self.conn,
            Conn::Established { .. } | Conn::AwaitConnect | Conn::AwaitConnectReply
        ) {
            if now >= self.last_received + self.cfg.keepalive {
                self.close(
                    format!(
                        "nothing heard from the partner for {} s",
                        self.cfg.keepalive.as_secs()
                    ),
                    now,
                    db,
                );
            } else if matches!(self.conn, Conn::Established { .. })
                && now >= self.last_sent + self.send_interval()
            {
                self.simple(FailoverMessageType::Contact, None, now);
            }
        }
        if let Some(t) = self.recover_wait_until {
            if now >= t && self.state == ServerState::RecoverWait {
                self.recover_wait_until = None;
                self.enter(ServerState::RecoverDone, now, db);
            }
        }
        // Never while a connection to the partner is up (it may be coming
        // back right now: found racing a reconnect by duet-sim).
        if let (ServerState::CommunicationsInterrupted, Some(apd), Some(lost), Conn::Down) = (
            self.state,
            self.cfg.auto_partner_down,
            self.comms_lost_at,
            self.conn,
        ) {
            if now >= lost + apd {
                self.note(format!(
                    "auto-partner-down after {} s without the partner",
                    apd.as_secs()
                ));
                self.enter(ServerState::PartnerDown, now, db);
            }
        }
        if now >= self.next_scan {
            self.next_scan = now + self.cfg.scan_interval;
            if self.may_send_updates() {
                let keys: Vec<LeaseKey> = std::mem::take(&mut self.wait_scan).into_iter().collect();
                for k in keys {
                    self.enqueue(
                        k,
                        QueueItem {
                            announce: None,
                            force: false,
                        },
                    );
                }
                if self.state == ServerState::Normal {
                    match self.cfg.role {
                        Role::Primary => self.rebalance(now, db),
                        Role::Secondary if self.secondary_low(db) && self.queue.is_empty() => {
                            self.simple(FailoverMessageType::PoolReq, None, now)
                        }
                        Role::Secondary => {}
                    }
                }
            }
        }
        self.pump(now, db);
    }

    // ---- policy (what DHCPv6 processing may do) --------------------------

    /// §8.4.1 / §16.3, digest's conservative formula (A18): when a lease
    /// that left a client may go to a different one in PARTNER-DOWN.
    fn reuse_time(&self, l: &Lease, now: UnixTime) -> UnixTime {
        let pd_entry = if self.state == ServerState::PartnerDown {
            self.state_since
        } else {
            now
        };
        let latest = [
            l.valid_until,
            l.failover.partner_lifetime,
            l.failover.acked_partner_lifetime,
            l.failover.expiration_time,
            pd_entry,
        ]
        .into_iter()
        .max()
        .unwrap_or(now);
        (latest + self.mclt).max(l.start_time_of_state + self.mclt)
    }

    fn responsiveness(&self) -> Responsiveness {
        use ServerState as S;
        match (self.state, self.cfg.role) {
            (S::Normal, Role::Primary) | (S::ConflictDone, Role::Primary) => Responsiveness::Responsive,
            (S::Normal, Role::Secondary) | (S::RecoverDone, _) => Responsiveness::RenewResponsive,
            (S::CommunicationsInterrupted | S::PartnerDown | S::ResolutionInterrupted, _) => {
                Responsiveness::Responsive
            }
            _ => Responsiveness::Unresponsive,
        }
    }

    fn own_class(&self) -> usize {
        match self.cfg.role {
            Role::Primary => 1,
            Role::Secondary => 0,
        }
    }

    fn address_classes(&self) -> [bool; 2] {
        if self.state == ServerState::RecoverDone || self.responsiveness() == Responsiveness::Unresponsive {
            return [false, false];
        }
        // §4.2.1 and A17: only the own half, in every state.
        let mut c = [false, false];
        c[self.own_class()] = true;
        c
    }

    fn prefix_classes(&self, now: UnixTime) -> Vec<usize> {
        if self.state == ServerState::RecoverDone || self.responsiveness() == Responsiveness::Unresponsive {
            return vec![];
        }
        let own = match self.cfg.role {
            Role::Primary => 0,
            Role::Secondary => 1,
        };
        // §8.4.1: the partner's pool only in PARTNER-DOWN, after MCLT, and
        // only once our own is used up (tried first). Not while the partner
        // recovers: it serves that pool again as soon as it is NORMAL,
        // perhaps before our allocation reaches it (found by duet-sim,
        // seed 42064).
        if self.state == ServerState::PartnerDown
            && now >= self.state_since + self.mclt
            && !self.partner_recovering()
        {
            vec![own, 1 - own]
        } else {
            vec![own]
        }
    }

    fn may_reuse(&self, lease: &Lease, binding: &crate::lease::BindingKey) -> bool {
        // §4.2.2.1: the same client may get its EXPIRED/RELEASED lease back
        // as long as no BNDUPD about that was sent yet.
        matches!(lease.state, LeaseState::Expired | LeaseState::Released)
            && lease.binding.as_ref() == Some(binding)
            && lease.failover.pending_update
            && !self.in_flight_keys.contains_key(&lease.key)
            && !self.wait_scan.contains(&lease.key)
    }

    /// The partner is up and recovering: it will serve its pool again as
    /// soon as it is NORMAL, perhaps before our latest changes reach it
    /// (they are sent lazily once we are NORMAL too).
    fn partner_recovering(&self) -> bool {
        matches!(
            self.partner_state,
            Some(ServerState::Recover | ServerState::RecoverWait | ServerState::RecoverDone)
        )
    }

    fn valid_until_cap(&self, lease: Option<&Lease>, now: UnixTime) -> Option<UnixTime> {
        // §8.4.1: no cap in PARTNER-DOWN; but while the partner recovers,
        // what we give now may reach it only after it serves again, and if
        // we fail first it is all its own PARTNER-DOWN has to go by (found
        // by duet-sim, seed 24845): the MCLT rule again.
        if self.state == ServerState::PartnerDown && !self.partner_recovering() {
            return None;
        }
        // §4.4: never beyond what the partner acknowledged plus MCLT.
        let acked = lease.map_or(UnixTime::ZERO, |l| l.failover.acked_partner_lifetime);
        Some(acked.max(now) + self.mclt)
    }

    fn retire(&self, event: Retire, now: UnixTime) -> (LeaseState, Option<UnixTime>) {
        let state = match event {
            Retire::Expired => LeaseState::Expired,
            Retire::Released => LeaseState::Released,
            Retire::Declined => return (LeaseState::Abandoned, Some(now + Duration::from_secs(86_400))),
        };
        if self.state == ServerState::PartnerDown {
            (state, Some(now + self.mclt))
        } else {
            (state, None)
        }
    }

    fn state_timeout(&self, lease: &Lease, now: UnixTime) -> StateTimeout {
        match lease.state {
            LeaseState::Expired | LeaseState::Released | LeaseState::Reset => {
                if self.state != ServerState::PartnerDown {
                    // Waits for the partner's acknowledgement.
                    return StateTimeout::Never;
                }
                let at = self.reuse_time(lease, now);
                if now >= at {
                    StateTimeout::Change(bndupd::pending_free_resolves_to(&lease.key), None)
                } else {
                    StateTimeout::Later(at)
                }
            }
            LeaseState::Abandoned => StateTimeout::Change(LeaseState::Reset, None),
            _ => StateTimeout::Never,
        }
    }
}

/// The leases a BNDUPD reports (RFC 8156 §7.4): every IAADDR and IAPREFIX
/// of its OPTION_CLIENT_DATA, or its one top-level IAPREFIX.
pub fn reported_leases<'m>(msg: &'m FailoverMessage<'_>) -> impl Iterator<Item = LeaseKey> + 'm {
    msg.options.iter().flat_map(|o| {
        let keys: Vec<LeaseKey> = match o {
            DhcpOption::ClientData(cd) => cd.ia_leases().map(|(_, l)| LeaseKey::of(&l)).collect(),
            other => duet_wire::IaLease::of(other)
                .map(|l| LeaseKey::of(&l))
                .into_iter()
                .collect(),
        };
        keys
    })
}

/// Names what differs between two configuration fingerprints (one item per
/// line): what only `mine` has and what only `theirs` has, labelled.
pub fn fingerprint_diff(mine: &[u8], theirs: &[u8], mine_label: &str, theirs_label: &str) -> String {
    let lines =
        |b: &[u8]| -> BTreeSet<String> { String::from_utf8_lossy(b).lines().map(str::to_string).collect() };
    let (a, b) = (lines(mine), lines(theirs));
    let only_here: Vec<&String> = a.difference(&b).collect();
    let only_there: Vec<&String> = b.difference(&a).collect();
    format!("only at the {mine_label}: {only_here:?}; only at the {theirs_label}: {only_there:?}")
}

/// Every relationship of a server; the [`LeasePolicy`] DHCPv6 processing
/// consults (`rel` is the index into the list).
#[derive(Debug, Default)]
pub struct Relationships {
    endpoints: Vec<FailoverEndpoint>,
}

impl Relationships {
    /// The endpoints, in configuration order.
    pub fn new(endpoints: Vec<FailoverEndpoint>) -> Relationships {
        Relationships { endpoints }
    }

    /// Relationship `rel`'s endpoint.
    pub fn get(&self, rel: usize) -> Option<&FailoverEndpoint> {
        self.endpoints.get(rel)
    }

    /// Relationship `rel`'s endpoint, to drive it.
    pub fn get_mut(&mut self, rel: usize) -> Option<&mut FailoverEndpoint> {
        self.endpoints.get_mut(rel)
    }

    /// The index of the relationship named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.name() == name)
    }

    /// Every endpoint.
    pub fn iter(&self) -> impl Iterator<Item = &FailoverEndpoint> {
        self.endpoints.iter()
    }

    /// Every endpoint, to drive them.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut FailoverEndpoint> {
        self.endpoints.iter_mut()
    }

    /// How many relationships.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether the server is in no relationship (standalone).
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

impl LeasePolicy for Relationships {
    fn responsiveness(&self, rel: usize) -> Responsiveness {
        self.get(rel)
            .map_or(Responsiveness::Unresponsive, FailoverEndpoint::responsiveness)
    }

    fn address_classes(&self, rel: usize) -> [bool; 2] {
        self.get(rel)
            .map_or([false, false], FailoverEndpoint::address_classes)
    }

    fn prefix_classes(&self, rel: usize, now: UnixTime) -> Vec<usize> {
        self.get(rel).map_or_else(Vec::new, |e| e.prefix_classes(now))
    }

    fn may_reuse(
        &self,
        rel: usize,
        lease: &Lease,
        binding: &crate::lease::BindingKey,
        _now: UnixTime,
    ) -> bool {
        self.get(rel).is_some_and(|e| e.may_reuse(lease, binding))
    }

    fn valid_until_cap(&self, rel: usize, lease: Option<&Lease>, now: UnixTime) -> Option<UnixTime> {
        self.get(rel).map_or(Some(now), |e| e.valid_until_cap(lease, now))
    }

    fn partner_lifetime(&self, _rel: usize, desired: Duration, t1: Duration, now: UnixTime) -> UnixTime {
        // §4.4.1's scheme: far enough ahead for the next renewal at T1 to
        // get the full desired lifetime.
        now + t1 + desired
    }

    fn retire(&self, rel: usize, event: Retire, now: UnixTime) -> (LeaseState, Option<UnixTime>) {
        self.get(rel)
            .map_or((LeaseState::Expired, None), |e| e.retire(event, now))
    }

    fn state_timeout(&self, rel: usize, lease: &Lease, now: UnixTime) -> StateTimeout {
        self.get(rel)
            .map_or(StateTimeout::Never, |e| e.state_timeout(lease, now))
    }
}

#[cfg(test)]
mod tests;
