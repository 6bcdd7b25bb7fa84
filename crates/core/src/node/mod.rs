//! The one driver of a server: DHCPv6 processing, its failover endpoints,
//! the lease timers and the commit plan, sans-IO.
//!
//! The daemon, the simulator and the tests all drive a [`Node`] the same
//! way, so what the simulator proves is what ships:
//!
//! * **inputs** — [`Node::handle_datagram`] (a client or relay datagram),
//!   [`Node::partner_connected`] / [`Node::partner_message`] /
//!   [`Node::partner_closed`] (a relationship's link), [`Node::handle_timeout`],
//!   the operator's [`Node::partner_down`], and [`Node::shutdown`];
//! * **outputs** — [`Node::poll_commit`]: records to make durable; once they
//!   are, [`Node::commit_done`] releases what waited for them. Then
//!   [`Node::poll_transmit`] (replies and partner frames),
//!   [`Node::poll_event`] (for the log), [`Node::poll_timeout`].
//!
//! Time comes in as a [`Timestamp`]; nothing here reads a clock, opens a
//! socket or a file, or starts a thread.
//!
//! # Durable before visible
//!
//! A reply that reports changed bindings, a BNDREPLY (RFC 8156 §7.5.2), a
//! STATE (§6.3), a CONNECTREPLY and a BNDUPD whose lease record is not yet
//! durable are *held* by the commit that makes what they report durable,
//! and leave only after [`Node::commit_done`] says it succeeded; a failed
//! commit releases nothing. Other messages may leave before any commit
//! ([`Release::Now`]): a reply that changed nothing (an Advertise), and the
//! partner messages that report no record of ours (CONTACT, UPDREQ,
//! UPDREQALL, UPDDONE, POOLREQ, POOLRESP, DISCONNECT, a CONNECT) or only
//! records already durable (a BNDUPD of a lease committed earlier). That
//! is what keeps acknowledgement-only work off the fdatasync path: a
//! BNDREPLY's bookkeeping waits up to a second for a commit to ride on,
//! while the BNDUPDs it lets out leave at once. On each connection the
//! messages keep their order: one held makes every later one wait too.

pub mod commit;
pub mod setup;

#[cfg(test)]
mod tests;

pub use commit::{CommitPlan, Work};
pub use setup::{fingerprint, NodeConfig, SCAN_INTERVAL, STARTUP_MARGIN};

use crate::dhcp::{Dhcpv6Server, Discard, Incoming, Outcome, QuietLinks};
use crate::failover::{self, CommandError, EndpointRecord, FailoverEndpoint, Relationships};
use crate::lease::{Lease, LeaseDb, LeaseKey};
use crate::policy::LeasePolicy;
use crate::store::{Batch, Snapshot, StoreError};
use crate::time::{Timestamp, UnixTime};
use duet_wire::{Duid, FailoverMessage, FailoverMessageType, StreamMessage};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

/// Store metadata key of the server DUID.
pub const META_SERVER_DUID: &str = "server-duid";
/// Store metadata key of the last time this server was known to run
/// (RFC 8156 §8.3.2 TIME-OF-FAILURE), 8 bytes, little-endian Unix seconds.
pub const META_LAST_OPERATING: &str = "last-operating";
/// How often the last time of operation is written even without traffic.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Most lease timers handled in one call of [`Node::handle_timeout`] (the
/// rest are due at once again).
pub const LEASE_TIMER_BATCH: usize = 4096;

/// Store metadata key of a failover endpoint's record (RFC 8156 §8.2).
pub fn meta_endpoint(name: &str) -> String {
    format!("failover/{name}")
}

/// Identifies one partner connection; the driver numbers them, and
/// messages made for one never go to another.
pub type ConnId = u64;

/// Bends a node's rules on purpose: the simulator's sabotage switches,
/// which show that its checker notices each broken rule. A server never
/// sets one ([`Node::set_layer`]).
pub trait Layer: fmt::Debug {
    /// The lease policy DHCPv6 processing consults, wrapping the one the
    /// relationships give.
    fn policy<'a>(&'a self, inner: &'a dyn LeasePolicy) -> Box<dyn LeasePolicy + 'a>;
    /// Whether a reply may leave before the commit of what it reports.
    fn reply_before_commit(&self) -> bool {
        false
    }
    /// The automatic PARTNER-DOWN rule of every endpoint.
    fn auto_partner_down_rule(&self) -> failover::AutoPartnerDownRule {
        failover::AutoPartnerDownRule::Safe
    }
}

/// One store commit: make `batch` durable, then report it with
/// [`Node::commit_done`].
#[derive(Debug)]
pub struct Commit {
    /// Its number, for [`Node::commit_done`].
    pub seq: u64,
    /// What to write (the latest record of each lease).
    pub batch: Batch,
    /// Client replies waiting for it (a driver may run a commit that
    /// answers many clients on another thread).
    pub replies: usize,
}

/// Something to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit<R> {
    /// A datagram to a client or relay.
    Reply(OutReply<R>),
    /// A whole frame (length prefix included) for relationship `rel`'s
    /// connection `conn`; dropped if that connection is gone.
    Partner {
        /// Relationship index.
        rel: usize,
        /// The connection it was made for.
        conn: ConnId,
        /// The frame.
        frame: Vec<u8>,
    },
    /// Close relationship `rel`'s connection `conn` once what was sent
    /// before has left.
    Close {
        /// Relationship index.
        rel: usize,
        /// The connection.
        conn: ConnId,
    },
}

/// A reply datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutReply<R> {
    /// The encoded Advertise, Reply or Relay-reply.
    pub bytes: Vec<u8>,
    /// Destination: the datagram's source (RFC 8415 §18.3.10).
    pub to: Ipv6Addr,
    /// 546 for a client, 547 for a relay.
    pub port: u16,
    /// What the driver said about the datagram (its socket, interface…).
    pub route: R,
}

/// When a message may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Now: it reports nothing that is not durable yet.
    Now,
    /// After commit `seq` is durable.
    After(u64),
}

/// Something for the log (or a driver's bookkeeping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// Relationship `rel`'s endpoint reports this.
    Failover {
        /// Relationship index.
        rel: usize,
        /// What.
        event: failover::Event,
    },
    /// Lease timers moved this many records to their next state.
    LeaseTimers(usize),
    /// A commit failed: this many replies and partner messages that
    /// waited for it were dropped.
    CommitFailed {
        /// Replies dropped.
        replies: usize,
        /// Partner messages dropped.
        partner: usize,
    },
}

/// What waits in a node (see [`Node::backlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Replies not yet sent.
    pub replies: usize,
    /// Partner messages and closes not yet sent.
    pub partner: usize,
    /// Lease records of the pending commit.
    pub records: usize,
}

/// What [`Node::boot`] found in the store.
#[derive(Debug, Default)]
pub struct BootReport {
    /// Lease records for resources in no configured pool: kept in the
    /// store, not served.
    pub orphans: Vec<Lease>,
    /// Leases loaded.
    pub loaded: usize,
    /// No DUID was stored: a new one was made (durable with the first
    /// commit, before any datagram is answered).
    pub new_duid: bool,
    /// Problems met and dealt with, for the log.
    pub warnings: Vec<String>,
}

/// Why an operator command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeCommandError {
    /// No relationship has that name.
    #[error("no failover relationship named {0:?}")]
    NoSuchRelationship(String),
    /// The endpoint refused.
    #[error(transparent)]
    Refused(#[from] CommandError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PartnerOut {
    Frame(Vec<u8>),
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PartnerItem {
    rel: usize,
    conn: ConnId,
    what: PartnerOut,
}

impl<R> From<PartnerItem> for Transmit<R> {
    fn from(p: PartnerItem) -> Transmit<R> {
        match p.what {
            PartnerOut::Frame(frame) => Transmit::Partner {
                rel: p.rel,
                conn: p.conn,
                frame,
            },
            PartnerOut::Close => Transmit::Close {
                rel: p.rel,
                conn: p.conn,
            },
        }
    }
}

/// What waits for one commit.
#[derive(Debug)]
struct Held<R> {
    replies: Vec<OutReply<R>>,
    partner: Vec<PartnerItem>,
}

impl<R> Default for Held<R> {
    fn default() -> Self {
        Held {
            replies: Vec::new(),
            partner: Vec::new(),
        }
    }
}

/// The commit being assembled.
#[derive(Debug)]
struct Pending<R> {
    seq: u64,
    records: Vec<Lease>,
    meta: Vec<(String, Vec<u8>)>,
    held: Held<R>,
    due: Option<Timestamp>,
}

impl<R> Pending<R> {
    fn new(seq: u64) -> Self {
        Pending {
            seq,
            records: Vec::new(),
            meta: Vec::new(),
            held: Held::default(),
            due: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.meta.is_empty()
            && self.held.replies.is_empty()
            && self.held.partner.is_empty()
    }
}

/// A commit handed to the driver and not yet reported.
#[derive(Debug)]
struct InFlight<R> {
    seq: u64,
    keys: Vec<LeaseKey>,
    held: Held<R>,
}

/// A server (see the module documentation). `R` is what the driver tells
/// about each datagram so that its reply can leave the same way (the
/// daemon's socket and interface, the simulator's client number).
pub struct Node<R> {
    srv: Dhcpv6Server,
    rels: Relationships,
    /// The current connection of each relationship.
    conns: Vec<Option<ConnId>>,
    plan: CommitPlan,
    layer: Option<Box<dyn Layer>>,
    pending: Pending<R>,
    in_flight: Option<InFlight<R>>,
    /// Leases whose latest record is in the pending or in-flight commit,
    /// with that commit's number (kept only under failover).
    undurable: HashMap<LeaseKey, u64>,
    /// Per relationship: the latest commit holding a message for the
    /// current connection (later messages wait for it too).
    held_for: Vec<Option<u64>>,
    ready: VecDeque<Transmit<R>>,
    /// Partner messages free to leave, grouped.
    outbox: Vec<PartnerItem>,
    outbox_due: Option<Timestamp>,
    events: VecDeque<NodeEvent>,
    /// The whole second of the last commit that carried the last time of
    /// operation.
    last_operating: Option<u64>,
    next_heartbeat: Timestamp,
    /// The second in which the wall-clock timers last ran: the next run is
    /// in a later one (the core works in whole seconds).
    timers_ran: Option<UnixTime>,
    /// A new DUID is not durable yet: nothing is answered until it is.
    boot_commit: Option<u64>,
    /// Everything pending goes now (shutting down).
    flushing: bool,
    /// A commit failed: the store is gone, nothing more is answered.
    failed: bool,
}

impl<R> fmt::Debug for Node<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("duid", self.srv.duid())
            .field("relationships", &self.rels.len())
            .field("pending_seq", &self.pending.seq)
            .field("in_flight", &self.in_flight.as_ref().map(|c| c.seq))
            .finish_non_exhaustive()
    }
}

fn last_operating_meta(t: UnixTime) -> (String, Vec<u8>) {
    (META_LAST_OPERATING.to_string(), t.secs().to_le_bytes().to_vec())
}

/// A new DUID-UUID (RFC 8415 §11.5, RFC 6355).
fn new_duid(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut uuid = [0u8; 16];
    rng.fill_bytes(&mut uuid);
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut bytes = vec![0, 4];
    bytes.extend_from_slice(&uuid);
    bytes
}

/// Whether a partner message of this type may leave before the pending
/// commit: it reports no record of ours (see the module documentation).
fn reports_nothing(t: FailoverMessageType) -> bool {
    use FailoverMessageType as T;
    matches!(
        t,
        T::Contact
            | T::UpdReq
            | T::UpdReqAll
            | T::UpdDone
            | T::PoolReq
            | T::PoolResp
            | T::Disconnect
            | T::Connect
    )
}

impl<R> Node<R> {
    /// Starts a server from what its store held (`snapshot`): the server
    /// DUID (a new DUID-UUID if none, durable with the first commit before
    /// anything is answered), the leases, each relationship's record, and
    /// the last time of operation.
    pub fn boot(cfg: NodeConfig, snapshot: Snapshot, now: Timestamp) -> (Node<R>, BootReport) {
        let mut report = BootReport {
            warnings: snapshot.warnings,
            ..BootReport::default()
        };
        let mut duid_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6475_6574_2d64_7569);
        let stored = snapshot
            .meta
            .get(META_SERVER_DUID)
            .and_then(|b| match Duid::new(b.clone()) {
                Ok(d) => Some(d),
                Err(e) => {
                    report.warnings.push(format!(
                        "the stored server DUID is invalid ({e}); making a new one"
                    ));
                    None
                }
            });
        let (duid, fresh_duid) = match stored {
            Some(d) => (d, None),
            None => {
                let bytes = new_duid(&mut duid_rng);
                match Duid::new(bytes.clone()) {
                    Ok(d) => (d, Some(bytes)),
                    Err(_) => unreachable!("an 18-byte DUID-UUID is a valid DUID"),
                }
            }
        };
        let mut srv = Dhcpv6Server::new(duid, cfg.subnets, cfg.options, cfg.seed);
        let n = snapshot.leases.len();
        report.orphans = srv.load(snapshot.leases);
        report.loaded = n.saturating_sub(report.orphans.len());
        let last_operating = snapshot
            .meta
            .get(META_LAST_OPERATING)
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(|b| UnixTime(u64::from_le_bytes(b)));
        let endpoints = cfg
            .relationships
            .into_iter()
            .map(|ecfg| {
                let key = meta_endpoint(&ecfg.name);
                let record: Option<EndpointRecord> =
                    snapshot.meta.get(&key).and_then(|b| match serde_json::from_slice(b) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            report.warnings.push(format!(
                                "relationship {}: the stored failover state is unreadable ({e}); starting as if there were none",
                                ecfg.name
                            ));
                            None
                        }
                    });
                FailoverEndpoint::new(ecfg, record, last_operating, now.unix())
            })
            .collect::<Vec<_>>();
        let n_rels = endpoints.len();
        let mut node = Node {
            srv,
            rels: Relationships::new(endpoints),
            conns: vec![None; n_rels],
            plan: cfg.plan,
            layer: None,
            pending: Pending::new(1),
            in_flight: None,
            undurable: HashMap::new(),
            held_for: vec![None; n_rels],
            ready: VecDeque::new(),
            outbox: Vec::new(),
            outbox_due: None,
            events: VecDeque::new(),
            last_operating: None,
            next_heartbeat: now.saturating_add(HEARTBEAT),
            timers_ran: None,
            boot_commit: None,
            flushing: false,
            failed: false,
        };
        if let Some(bytes) = fresh_duid {
            report.new_duid = true;
            node.pending.meta.push((META_SERVER_DUID.to_string(), bytes));
            node.pending.due = Some(now);
            node.boot_commit = Some(node.pending.seq);
        }
        node.drain(now, Work::Quiet);
        (node, report)
    }

    /// Bends the node's rules (the simulator's sabotage; see [`Layer`]).
    pub fn set_layer(&mut self, layer: Box<dyn Layer>) {
        let rule = layer.auto_partner_down_rule();
        for ep in self.rels.iter_mut() {
            ep.set_auto_partner_down_rule(rule);
        }
        self.layer = Some(layer);
    }

    // ---- queries ---------------------------------------------------------

    /// This server's DUID.
    pub fn duid(&self) -> &Duid<'static> {
        self.srv.duid()
    }

    /// The lease database as it stands in memory.
    pub fn db(&self) -> &LeaseDb {
        self.srv.db()
    }

    /// The DHCPv6 side (subnets, pools).
    pub fn server(&self) -> &Dhcpv6Server {
        &self.srv
    }

    /// The failover endpoints.
    pub fn relationships(&self) -> &Relationships {
        &self.rels
    }

    /// The relationship whose pools hold `key`.
    pub fn relationship_of(&self, key: &LeaseKey) -> Option<usize> {
        self.srv.relationship_of(key)
    }

    /// Where client messages that could get no answer may be discarded
    /// before they reach the node (the daemon's kernel filter).
    pub fn quiet_links(&self) -> QuietLinks {
        self.srv.quiet_links(&self.rels)
    }

    /// Whether a commit was handed out and not yet reported.
    pub fn commit_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// What waits in the node now: replies held for a commit or ready to
    /// leave, partner messages held or waiting for their group, and lease
    /// records not yet handed out in a commit.
    pub fn backlog(&self) -> Backlog {
        let in_flight = self.in_flight.as_ref();
        let ready_replies = self
            .ready
            .iter()
            .filter(|t| matches!(t, Transmit::Reply(_)))
            .count();
        Backlog {
            replies: self
                .pending
                .held
                .replies
                .len()
                .saturating_add(in_flight.map_or(0, |c| c.held.replies.len()))
                .saturating_add(ready_replies),
            partner: self
                .pending
                .held
                .partner
                .len()
                .saturating_add(in_flight.map_or(0, |c| c.held.partner.len()))
                .saturating_add(self.outbox.len())
                .saturating_add(self.ready.len().saturating_sub(ready_replies)),
            records: self.pending.records.len(),
        }
    }

    /// Whether anything waits: a commit pending or in flight, or something
    /// not yet transmitted.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_none() && self.ready.is_empty() && self.outbox.is_empty()
    }

    // ---- inputs ----------------------------------------------------------

    /// One datagram from a client or relay. `Ok` with the reply's bytes
    /// when it is answered (the reply leaves by [`Node::poll_transmit`],
    /// after the commit of what it reports); `Err` says why it was not.
    pub fn handle_datagram(
        &mut self,
        now: Timestamp,
        incoming: Incoming<'_>,
        route: R,
    ) -> Result<&[u8], Discard> {
        if self.failed {
            return Err(Discard::StoreFailed);
        }
        if self.boot_commit.is_some() {
            return Err(Discard::Starting);
        }
        let t = now.unix();
        let outcome = match &self.layer {
            None => self.srv.handle(t, incoming, &self.rels),
            Some(l) => {
                let p = l.policy(&self.rels);
                self.srv.handle(t, incoming, &*p)
            }
        };
        let r = match outcome {
            Outcome::Dropped(d) => return Err(d),
            Outcome::Reply(r) => r,
        };
        let reply = OutReply {
            bytes: r.bytes,
            to: r.to,
            port: r.port,
            route,
        };
        let early = r.changes.is_empty() || self.layer.as_ref().is_some_and(|l| l.reply_before_commit());
        if !r.changes.is_empty() {
            self.leases_changed(now, r.changes);
        }
        if early {
            self.ready.push_back(Transmit::Reply(reply));
            match self.ready.back() {
                Some(Transmit::Reply(r)) => Ok(&r.bytes),
                _ => unreachable!("just pushed"),
            }
        } else {
            self.pending.held.replies.push(reply);
            self.want(Work::Reply, now);
            match self.pending.held.replies.last() {
                Some(r) => Ok(&r.bytes),
                None => unreachable!("just pushed"),
            }
        }
    }

    /// Records changed by DHCPv6 processing or the lease timers: into the
    /// pending commit, and to every relationship as lazy updates (§4.3).
    fn leases_changed(&mut self, now: Timestamp, changes: Vec<Lease>) {
        for ep in self.rels.iter_mut() {
            ep.leases_changed(now.unix(), changes.iter(), self.srv.db_mut());
        }
        self.add_records(now, changes, Work::Quiet);
        self.drain(now, Work::Quiet);
    }

    /// Relationship `rel`'s link is up (TCP, and TLS if required) as
    /// connection `conn`; one still up is replaced.
    pub fn partner_connected(&mut self, now: Timestamp, rel: usize, conn: ConnId) {
        let t = now.unix();
        let Some(ep) = self.rels.get_mut(rel) else { return };
        if let Some(slot) = self.conns.get_mut(rel) {
            if slot.is_some() {
                ep.handle_closed(t, self.srv.db_mut());
            }
            *slot = Some(conn);
        }
        if let Some(h) = self.held_for.get_mut(rel) {
            *h = None;
        }
        ep.handle_connected(t);
        self.drain(now, Work::Quiet);
    }

    /// A message from relationship `rel`'s partner on connection `conn`
    /// (ignored if that connection was replaced).
    pub fn partner_message(&mut self, now: Timestamp, rel: usize, conn: ConnId, msg: &FailoverMessage<'_>) {
        if self.conns.get(rel).copied().flatten() != Some(conn) {
            return;
        }
        let Some(ep) = self.rels.get_mut(rel) else { return };
        ep.handle_message(now.unix(), msg, self.srv.db_mut());
        // What a BNDREPLY changes is acknowledgement bookkeeping (RFC 8156
        // §7.7): see `CommitPlan::lazy_delay`.
        let work = if msg.msg_type == FailoverMessageType::BndReply {
            Work::Lazy
        } else {
            Work::Quiet
        };
        self.drain(now, work);
    }

    /// Relationship `rel`'s connection `conn` is gone.
    pub fn partner_closed(&mut self, now: Timestamp, rel: usize, conn: ConnId) {
        if self.conns.get(rel).copied().flatten() != Some(conn) {
            return;
        }
        if let Some(slot) = self.conns.get_mut(rel) {
            *slot = None;
        }
        if let Some(h) = self.held_for.get_mut(rel) {
            *h = None;
        }
        if let Some(ep) = self.rels.get_mut(rel) {
            ep.handle_closed(now.unix(), self.srv.db_mut());
        }
        self.drain(now, Work::Quiet);
    }

    /// Timers: the endpoints' (startup, keepalive and CONTACT, RECOVER-WAIT,
    /// auto-partner-down, the scan), the lease timers, the heartbeat.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let t = now.unix();
        // The endpoints' timers run at most once per second: the core
        // works in whole seconds.
        if self.timers_ran.is_none_or(|r| r < t) && self.endpoint_timer().is_some_and(|w| w <= t) {
            self.timers_ran = Some(t);
            for ep in self.rels.iter_mut() {
                if ep.poll_timeout().is_some_and(|d| d <= t) {
                    ep.handle_timeout(t, self.srv.db_mut());
                }
            }
            self.drain(now, Work::Quiet);
        }
        // Lease timers always advance (each record moves on, or its next
        // check is at least a second later): run them whenever due.
        if self.srv.next_timeout().is_some_and(|d| d <= t) {
            let changes = match &self.layer {
                None => self.srv.handle_timeout(t, &self.rels, LEASE_TIMER_BATCH),
                Some(l) => {
                    let p = l.policy(&self.rels);
                    self.srv.handle_timeout(t, &*p, LEASE_TIMER_BATCH)
                }
            };
            if !changes.is_empty() {
                self.events.push_back(NodeEvent::LeaseTimers(changes.len()));
                self.leases_changed(now, changes);
            }
        }
        if now >= self.next_heartbeat {
            self.next_heartbeat = now.saturating_add(HEARTBEAT);
            self.pending.meta.push(last_operating_meta(t));
            self.last_operating = Some(t.secs());
            self.want(Work::Quiet, now);
        }
    }

    /// Runs an operator command on relationship `name`'s endpoint.
    fn command(
        &mut self,
        now: Timestamp,
        name: &str,
        f: impl FnOnce(&mut FailoverEndpoint, UnixTime, &mut LeaseDb) -> Result<(), CommandError>,
    ) -> Result<(), NodeCommandError> {
        let rel = self
            .rels
            .position(name)
            .ok_or_else(|| NodeCommandError::NoSuchRelationship(name.to_string()))?;
        let r = match self.rels.get_mut(rel) {
            Some(ep) => f(ep, now.unix(), self.srv.db_mut()),
            None => return Err(NodeCommandError::NoSuchRelationship(name.to_string())),
        };
        self.drain(now, Work::Quiet);
        r.map_err(NodeCommandError::from)
    }

    /// The operator declares relationship `name`'s partner down (RFC 8156
    /// §8.4).
    pub fn partner_down(&mut self, now: Timestamp, name: &str) -> Result<(), NodeCommandError> {
        self.command(now, name, FailoverEndpoint::partner_down)
    }

    /// The operator puts into service a server that never reached its
    /// partner (see [`FailoverEndpoint::commission`]).
    pub fn commission(&mut self, now: Timestamp, name: &str) -> Result<(), NodeCommandError> {
        self.command(now, name, FailoverEndpoint::commission)
    }

    /// The operator says relationship `name`'s partner is gone with its
    /// store (see [`FailoverEndpoint::partner_lost`]).
    pub fn partner_lost(&mut self, now: Timestamp, name: &str) -> Result<(), NodeCommandError> {
        self.command(now, name, FailoverEndpoint::partner_lost)
    }

    /// The operator starts a planned handover of relationship `name` (see
    /// [`FailoverEndpoint::handover`]); its end is reported as
    /// [`failover::Event::HandoverDone`] or
    /// [`failover::Event::HandoverFailed`].
    pub fn handover(
        &mut self,
        now: Timestamp,
        name: &str,
        timeout: Duration,
    ) -> Result<(), NodeCommandError> {
        self.command(now, name, |ep, t, db| ep.handover(t, timeout, db))
    }

    /// A server that handed relationship `name` over takes part again.
    pub fn resume(&mut self, now: Timestamp, name: &str) -> Result<(), NodeCommandError> {
        self.command(now, name, |ep, _, _| ep.resume())
    }

    /// Relationship `rel`'s partner showed it is alive without a
    /// connection reaching the node (an attempt that failed or was refused
    /// before CONNECT), with the refusal if it was one (see
    /// [`FailoverEndpoint::handle_attempt`]).
    pub fn partner_attempt(
        &mut self,
        now: Timestamp,
        rel: usize,
        refusal: Option<(failover::RefusalKind, String)>,
    ) {
        if let Some(ep) = self.rels.get_mut(rel) {
            ep.handle_attempt(now.unix(), refusal);
        }
        self.drain(now, Work::Quiet);
    }

    /// The server is stopping: every partner is told (DISCONNECT,
    /// §5.3.10), and from now on everything pending is due at once.
    pub fn shutdown(&mut self, now: Timestamp) {
        for ep in self.rels.iter_mut() {
            ep.shutdown(now.unix());
        }
        self.drain(now, Work::Quiet);
        self.flushing = true;
        self.pending.due = Some(now);
        if !self.outbox.is_empty() {
            self.outbox_due = Some(now);
        }
    }

    // ---- outputs ---------------------------------------------------------

    /// The next commit, when the plan says it is due and none is in flight.
    /// A commit with nothing to write releases what it held at once.
    pub fn poll_commit(&mut self, now: Timestamp) -> Option<Commit> {
        if self.in_flight.is_some() || self.failed || self.pending.is_empty() {
            return None;
        }
        if !self.flushing && self.pending.due.is_some_and(|d| d > now) {
            return None;
        }
        let next = Pending::new(self.pending.seq.saturating_add(1));
        let p = std::mem::replace(&mut self.pending, next);
        let mut batch = Batch {
            leases: latest_per_lease(p.records),
            meta: p.meta,
        };
        if batch.is_empty() {
            self.release(now, p.seq, p.held, Vec::new());
            return None;
        }
        // Every commit in a new second records the last time of operation
        // (the same second again would write the same bytes).
        let t = now.unix();
        if self.last_operating != Some(t.secs()) && !batch.meta.iter().any(|(k, _)| k == META_LAST_OPERATING)
        {
            batch.meta.push(last_operating_meta(t));
        }
        self.last_operating = Some(t.secs());
        let keys = if self.rels.is_empty() {
            Vec::new()
        } else {
            batch.leases.iter().map(|l| l.key).collect()
        };
        let replies = p.held.replies.len();
        self.in_flight = Some(InFlight {
            seq: p.seq,
            keys,
            held: p.held,
        });
        Some(Commit {
            seq: p.seq,
            batch,
            replies,
        })
    }

    /// The driver made commit `seq` durable (`Ok`), or could not (`Err`,
    /// returned again): only on success does what waited for it leave. After
    /// a failure the node answers nothing more.
    pub fn commit_done(
        &mut self,
        now: Timestamp,
        seq: u64,
        result: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let Some(c) = self.in_flight.take_if(|c| c.seq == seq) else {
            return result;
        };
        match result {
            Ok(()) => {
                self.release(now, c.seq, c.held, c.keys);
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                self.events.push_back(NodeEvent::CommitFailed {
                    replies: c.held.replies.len(),
                    partner: c.held.partner.len(),
                });
                Err(e)
            }
        }
    }

    fn release(&mut self, now: Timestamp, seq: u64, held: Held<R>, keys: Vec<LeaseKey>) {
        if self.boot_commit == Some(seq) {
            self.boot_commit = None;
        }
        for k in keys {
            if self.undurable.get(&k) == Some(&seq) {
                self.undurable.remove(&k);
            }
        }
        for h in self.held_for.iter_mut() {
            if *h == Some(seq) {
                *h = None;
            }
        }
        self.ready.extend(held.replies.into_iter().map(Transmit::Reply));
        for p in held.partner {
            self.queue_partner(now, p);
        }
    }

    /// The next thing to send: replies as soon as they may leave, partner
    /// messages in groups (see [`CommitPlan`]).
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit<R>> {
        if let Some(t) = self.ready.pop_front() {
            return Some(t);
        }
        if !self.outbox.is_empty() && (self.flushing || self.outbox_due.is_none_or(|d| d <= now)) {
            self.outbox_due = None;
            self.ready.extend(self.outbox.drain(..).map(Transmit::from));
            return self.ready.pop_front();
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    fn endpoint_timer(&self) -> Option<UnixTime> {
        self.rels.iter().filter_map(FailoverEndpoint::poll_timeout).min()
    }

    /// When [`Node::handle_timeout`] (or [`Node::poll_commit`],
    /// [`Node::poll_transmit`]) next has work.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let endpoints = self.endpoint_timer().map(|t| {
            let t = match self.timers_ran {
                Some(r) if t <= r => UnixTime(r.secs().saturating_add(1)),
                _ => t,
            };
            Timestamp::from_unix(t)
        });
        let leases = self.srv.next_timeout().map(Timestamp::from_unix);
        let commit = if self.in_flight.is_none() && !self.pending.is_empty() {
            self.pending.due
        } else {
            None
        };
        let outbox = if self.outbox.is_empty() {
            None
        } else {
            self.outbox_due
        };
        [endpoints, leases, commit, outbox, Some(self.next_heartbeat)]
            .into_iter()
            .flatten()
            .min()
    }

    // ---- the pending commit ----------------------------------------------

    fn want(&mut self, w: Work, now: Timestamp) {
        self.pending.due = Some(self.plan.due(
            self.pending.due,
            w,
            now,
            self.pending.records.len(),
            self.pending.held.partner.len(),
        ));
    }

    fn add_records(&mut self, now: Timestamp, records: Vec<Lease>, w: Work) {
        if records.is_empty() {
            return;
        }
        if !self.rels.is_empty() {
            let seq = self.pending.seq;
            for l in &records {
                self.undurable.insert(l.key, seq);
            }
        }
        self.pending.records.extend(records);
        self.want(w, now);
    }

    /// The commit a message for relationship `rel` must wait for, if any.
    fn needs(&self, rel: usize, msg: &FailoverMessage<'_>) -> Option<u64> {
        let own = if msg.msg_type == FailoverMessageType::BndUpd {
            failover::reported_leases(msg)
                .filter_map(|k| self.undurable.get(&k).copied())
                .max()
        } else if failover::is_handover(msg) {
            // It reports that this server recorded its handover.
            Some(self.pending.seq)
        } else if reports_nothing(msg.msg_type) {
            None
        } else {
            Some(self.pending.seq)
        };
        let before = self.held_for.get(rel).copied().flatten();
        own.max(before)
    }

    fn hold(&mut self, now: Timestamp, seq: Option<u64>, item: PartnerItem) {
        let rel = item.rel;
        match seq {
            None => self.queue_partner(now, item),
            Some(s) => {
                if let Some(h) = self.held_for.get_mut(rel) {
                    *h = Some(s);
                }
                match &mut self.in_flight {
                    Some(c) if c.seq == s => c.held.partner.push(item),
                    _ => {
                        self.pending.held.partner.push(item);
                        self.want(Work::Quiet, now);
                    }
                }
            }
        }
    }

    fn queue_partner(&mut self, now: Timestamp, item: PartnerItem) {
        if self.outbox.is_empty() {
            self.outbox_due = Some(self.plan.group_due(now, 1));
        }
        self.outbox.push(item);
        if self.outbox.len() >= self.plan.group_max {
            self.outbox_due = Some(now);
        }
    }

    /// Collects what the endpoints produced: records (as work `w`), their
    /// own records, messages (each held or not), events.
    fn drain(&mut self, now: Timestamp, w: Work) {
        for rel in 0..self.rels.len() {
            let Some(ep) = self.rels.get_mut(rel) else {
                continue;
            };
            let (leases, record) = ep.poll_persist();
            let name = ep.name().to_string();
            self.add_records(now, leases, w);
            if let Some(r) = record {
                match serde_json::to_vec(&r) {
                    Ok(b) => {
                        self.pending.meta.push((meta_endpoint(&name), b));
                        self.want(Work::Quiet, now);
                    }
                    Err(e) => self.events.push_back(NodeEvent::Failover {
                        rel,
                        event: failover::Event::Notice(format!("cannot encode the failover record: {e}")),
                    }),
                }
            }
            let conn = self.conns.get(rel).copied().flatten();
            while let Some(m) = self.rels.get_mut(rel).and_then(FailoverEndpoint::poll_transmit) {
                // Without a connection a message goes nowhere.
                let Some(conn) = conn else { continue };
                let seq = self.needs(rel, &m);
                let mut frame = Vec::new();
                match StreamMessage::Failover(m).encode_frame(&mut frame) {
                    Ok(()) => self.hold(
                        now,
                        seq,
                        PartnerItem {
                            rel,
                            conn,
                            what: PartnerOut::Frame(frame),
                        },
                    ),
                    Err(e) => self.events.push_back(NodeEvent::Failover {
                        rel,
                        event: failover::Event::Notice(format!("cannot encode a failover message: {e}")),
                    }),
                }
            }
            while let Some(e) = self.rels.get_mut(rel).and_then(FailoverEndpoint::poll_event) {
                if matches!(e, failover::Event::Close(_)) {
                    if let Some(conn) = conn {
                        let seq = self.held_for.get(rel).copied().flatten();
                        self.hold(
                            now,
                            seq,
                            PartnerItem {
                                rel,
                                conn,
                                what: PartnerOut::Close,
                            },
                        );
                    }
                }
                self.events.push_back(NodeEvent::Failover { rel, event: e });
            }
        }
    }
}

#[cfg(test)]
impl<R> Node<R> {
    /// A relationship's endpoint and the lease database, for white-box tests
    /// of the engine.
    pub(crate) fn endpoint_mut(&mut self, rel: usize) -> (&mut FailoverEndpoint, &mut LeaseDb) {
        match self.rels.get_mut(rel) {
            Some(ep) => (ep, self.srv.db_mut()),
            None => panic!("no relationship {rel}"),
        }
    }
}

/// The latest record of each lease in `changes`, in the order each lease
/// first appears.
pub fn latest_per_lease(changes: Vec<Lease>) -> Vec<Lease> {
    if changes.len() < 2 {
        return changes;
    }
    let mut latest: HashMap<LeaseKey, Lease> = HashMap::with_capacity(changes.len());
    let mut order = Vec::with_capacity(changes.len());
    for l in changes {
        let key = l.key;
        if latest.insert(key, l).is_none() {
            order.push(key);
        }
    }
    order.into_iter().filter_map(|k| latest.remove(&k)).collect()
}
