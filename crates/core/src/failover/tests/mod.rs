//! Two endpoints wired back to back in memory with simulated time
//! (quinn-proto's `Pair` shape: `step` / `drive` / `drive_bounded`), each
//! with its own DHCPv6 processing, lease database and memory store, and the
//! scenarios of issue 4 (RFC 8156 §8 as a whole).

use super::*;
use crate::dhcp::{Incoming, ServerOptions};
use crate::lease::BindingKey;
use crate::node::{CommitPlan, Node, NodeConfig, NodeEvent, Transmit};
use crate::store::{LeaseStore, MemoryStore};
use crate::testing::{endpoint_config, subnet};
use crate::time::Timestamp;
use duet_wire::option::{IaNa, IaPd};
use duet_wire::{ClientMessage, Duid, FrameDecoder, Message, MessageType, StreamMessage};
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

const START: UnixTime = UnixTime(1_800_000_000);

/// One server: a [`Node`] over a memory store, driven as the daemon drives
/// it (commit, then send what the commit released).
struct Server {
    node: Node<()>,
    store: MemoryStore,
    role: Role,
    mclt: u64,
    /// Seconds this node's clock is ahead of the pair's.
    skew: i64,
    up: bool,
    events: Vec<Event>,
    /// The endpoint settings it booted with (tests change some).
    cfg: EndpointConfig,
}

/// Everything due at once: these tests are about the protocol, not the
/// commit plan (the node's own tests and the simulator cover that).
fn immediate() -> CommitPlan {
    CommitPlan {
        window: Duration::ZERO,
        quiet_delay: Duration::ZERO,
        lazy_delay: Duration::ZERO,
        ..CommitPlan::default()
    }
}

impl Server {
    fn boot(cfg: EndpointConfig, store: MemoryStore, now: UnixTime, mclt: u64, skew: i64) -> Server {
        let mut store = store;
        let snap = store.load().unwrap();
        let role = cfg.role;
        let local = UnixTime(now.0.saturating_add_signed(skew));
        let seed = local.0 ^ u64::from(role == Role::Primary);
        let ncfg = NodeConfig {
            subnets: vec![subnet(Some(0))],
            options: ServerOptions::default(),
            relationships: vec![cfg.clone()],
            plan: immediate(),
            seed,
        };
        let (node, report) = Node::boot(ncfg, snap, Timestamp::from_unix(local));
        assert!(report.orphans.is_empty());
        let mut s = Server {
            node,
            store,
            role,
            mclt,
            skew,
            up: true,
            events: vec![],
            cfg,
        };
        s.flush(now);
        s
    }

    fn ep(&self) -> &FailoverEndpoint {
        self.node.relationships().get(0).unwrap()
    }

    fn ep_mut(&mut self) -> &mut FailoverEndpoint {
        self.node.endpoint_mut(0).0
    }

    fn db(&self) -> &LeaseDb {
        self.node.db()
    }

    fn duid(&self) -> Duid<'static> {
        self.node.duid().clone()
    }

    fn local(&self, now: UnixTime) -> UnixTime {
        UnixTime(now.0.saturating_add_signed(self.skew))
    }

    fn at(&self, now: UnixTime) -> Timestamp {
        Timestamp::from_unix(self.local(now))
    }

    /// Commits what is due, then hands out what is to be sent (the
    /// driver's rule): partner frames, and whether to close.
    fn flush(&mut self, now: UnixTime) -> (Vec<Vec<u8>>, bool) {
        let at = self.at(now);
        let mut out = vec![];
        let mut close = false;
        loop {
            let mut any = false;
            while let Some(c) = self.node.poll_commit(at) {
                self.store.commit(&c.batch).unwrap();
                self.node.commit_done(at, c.seq, Ok(())).unwrap();
                any = true;
            }
            while let Some(t) = self.node.poll_transmit(at) {
                any = true;
                match t {
                    Transmit::Partner { frame, .. } => out.push(frame),
                    Transmit::Close { .. } => close = true,
                    Transmit::Reply(_) => {}
                }
            }
            if !any {
                break;
            }
        }
        while let Some(e) = self.node.poll_event() {
            if let NodeEvent::Failover { event, .. } = e {
                self.events.push(event);
            }
        }
        (out, close)
    }

    /// One DHCPv6 exchange through this server; returns the reply message
    /// (which leaves once its commit is made, in the next `flush`).
    fn dhcp(&mut self, now: UnixTime, msg: &ClientMessage<'_>) -> Option<ClientMessage<'static>> {
        let at = self.at(now);
        let bytes = msg.to_vec().unwrap();
        let reply = self
            .node
            .handle_datagram(
                at,
                Incoming {
                    payload: &bytes,
                    source: "fe80::1".parse().unwrap(),
                    interface: Some("eth0"),
                    multicast: true,
                },
                (),
            )
            .ok()?
            .to_vec();
        match Message::parse(&reply).unwrap().into_owned() {
            Message::Client(c) => Some(c),
            Message::Relay(_) => None,
        }
    }

    /// Timers due: true if there were any.
    fn timers(&mut self, now: UnixTime) -> bool {
        let at = self.at(now);
        if self.node.poll_timeout().is_none_or(|t| t > at) {
            return false;
        }
        self.node.handle_timeout(at);
        true
    }

    /// The table, normalised for comparison across servers.
    fn table(&self) -> BTreeMap<LeaseKey, (LeaseState, Option<BindingKey>, UnixTime)> {
        self.db()
            .iter()
            .filter(|l| !(l.state.is_available() && l.binding.is_none() && l.key.kind == LeaseKind::Na))
            .map(|l| {
                let valid = if l.state == LeaseState::Active {
                    l.valid_until
                } else {
                    UnixTime::ZERO
                };
                (l.key, (l.state, l.binding.clone(), valid))
            })
            .collect()
    }
}

/// A simulated client's view of what it holds.
#[derive(Debug, Clone)]
struct Held {
    client: u32,
    key: LeaseKey,
    valid_until: UnixTime,
}

struct Pair {
    now: UnixTime,
    nodes: [Server; 2],
    /// The current connection's number.
    conn: u64,
    /// Frames in flight, by destination node.
    link: [VecDeque<Vec<u8>>; 2],
    decoders: [FrameDecoder; 2],
    connected: bool,
    /// A side asked to close: the peer still reads what is in flight, then
    /// both see the connection end (TCP's orderly close).
    closing: bool,
    partitioned: bool,
    /// No reconnection attempt before this time (the primary's backoff).
    reconnect_at: UnixTime,
    steps: u64,
    held: Vec<Held>,
    /// Message types lost on their way to node `i` (a partner that stops
    /// answering while the connection stays up).
    drop_to: [Vec<FailoverMessageType>; 2],
    /// Every message delivered: (to, message).
    delivered: Vec<(usize, FailoverMessage<'static>)>,
}

const PRIMARY: usize = 0;
const SECONDARY: usize = 1;

impl Pair {
    fn new(mclt: u64) -> Pair {
        Pair::with_skew(mclt, 0)
    }

    fn with_skew(mclt: u64, secondary_skew: i64) -> Pair {
        Pair::with_configs(
            endpoint_config(Role::Primary, mclt),
            endpoint_config(Role::Secondary, mclt),
            mclt,
            secondary_skew,
        )
    }

    fn with_configs(
        primary: EndpointConfig,
        secondary: EndpointConfig,
        mclt: u64,
        secondary_skew: i64,
    ) -> Pair {
        let p = Server::boot(primary, MemoryStore::new(), START, mclt, 0);
        let s = Server::boot(secondary, MemoryStore::new(), START, mclt, secondary_skew);
        Pair {
            now: START,
            nodes: [p, s],
            conn: 0,
            link: [VecDeque::new(), VecDeque::new()],
            decoders: [FrameDecoder::new(), FrameDecoder::new()],
            connected: false,
            closing: false,
            partitioned: false,
            reconnect_at: START,
            steps: 0,
            held: vec![],
            drop_to: [vec![], vec![]],
            delivered: vec![],
        }
    }

    fn route(&mut self, from: usize, frames: Vec<Vec<u8>>, close: bool) {
        if self.connected {
            for f in frames {
                self.link[1 - from].push_back(f);
            }
        }
        if close {
            self.closing = true;
        }
    }

    fn flush(&mut self, i: usize) {
        let (frames, close) = self.nodes[i].flush(self.now);
        self.route(i, frames, close);
    }

    fn disconnect(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.closing = false;
        self.reconnect_at = self.now + Duration::from_secs(2);
        self.link = [VecDeque::new(), VecDeque::new()];
        self.decoders = [FrameDecoder::new(), FrameDecoder::new()];
        for i in 0..2 {
            if self.nodes[i].up {
                let at = self.nodes[i].at(self.now);
                self.nodes[i].node.partner_closed(at, 0, self.conn);
                self.flush(i);
            }
        }
    }

    fn try_connect(&mut self) -> bool {
        if self.connected
            || self.partitioned
            || self.now < self.reconnect_at
            || !self.nodes.iter().all(|n| n.up)
        {
            return false;
        }
        self.connected = true;
        self.conn += 1;
        for i in [SECONDARY, PRIMARY] {
            let at = self.nodes[i].at(self.now);
            self.nodes[i].node.partner_connected(at, 0, self.conn);
            self.flush(i);
        }
        true
    }

    /// One unit of work: a frame delivered, a timer fired, or a connection
    /// attempt. False when idle at the current time.
    fn step(&mut self) -> bool {
        self.steps += 1;
        if self.try_connect() {
            return true;
        }
        if self.closing && self.link.iter().all(VecDeque::is_empty) {
            self.disconnect();
            return true;
        }
        for to in 0..2 {
            if let Some(frame) = self.link[to].pop_front() {
                self.decoders[to].push(&frame);
                let payload = self.decoders[to].next_frame().unwrap().unwrap().to_vec();
                let StreamMessage::Failover(msg) = StreamMessage::parse(&payload).unwrap() else {
                    panic!()
                };
                if self.drop_to[to].contains(&msg.msg_type) {
                    return true;
                }
                self.delivered.push((to, msg.clone().into_owned()));
                let at = self.nodes[to].at(self.now);
                self.nodes[to].node.partner_message(at, 0, self.conn, &msg);
                self.flush(to);
                return true;
            }
        }
        for i in 0..2 {
            if self.nodes[i].up && self.nodes[i].timers(self.now) {
                self.flush(i);
                return true;
            }
        }
        false
    }

    /// Steps until idle; panics on livelock (more than `bound` steps).
    fn drive_bounded(&mut self, bound: u64) -> bool {
        for _ in 0..bound {
            if !self.step() {
                return true;
            }
        }
        false
    }

    fn drive(&mut self) {
        assert!(self.drive_bounded(1_000_000), "livelock at {}", self.now);
    }

    /// Moves time forward `secs` seconds, one second at a time, driving at
    /// every second.
    fn advance(&mut self, secs: u64) {
        self.drive();
        for _ in 0..secs {
            self.now = self.now + Duration::from_secs(1);
            self.drive();
        }
    }

    fn state(&self, i: usize) -> ServerState {
        self.nodes[i].ep().state()
    }

    /// The operator's partner-down at server `i`.
    fn partner_down(&mut self, i: usize) -> Result<(), crate::node::NodeCommandError> {
        let at = self.nodes[i].at(self.now);
        let r = self.nodes[i].node.partner_down(at, "pair-1");
        self.flush(i);
        r
    }

    fn crash(&mut self, i: usize) {
        self.disconnect();
        self.nodes[i].up = false;
    }

    /// Restarts node `i` from what its store holds (`wipe`: from nothing).
    fn restart(&mut self, i: usize, wipe: bool) {
        let n = &self.nodes[i];
        let store = if wipe { MemoryStore::new() } else { n.store.clone() };
        debug_assert_eq!(n.role, n.cfg.role);
        self.nodes[i] = Server::boot(n.cfg.clone(), store, self.now, n.mclt, n.skew);
    }

    fn client_duid(client: u32) -> Duid<'static> {
        let mut d = vec![0, 3, 0, 1];
        d.extend_from_slice(&client.to_be_bytes());
        Duid::new(d).unwrap()
    }

    fn msg(
        t: MessageType,
        client: u32,
        server: Option<&Duid<'static>>,
        ia: Option<DhcpOption<'static>>,
    ) -> ClientMessage<'static> {
        let mut m = ClientMessage::new(t, TransactionId::from_low_bits(client));
        m.options.push(DhcpOption::ClientId(Self::client_duid(client)));
        if let Some(s) = server {
            m.options.push(DhcpOption::ServerId(s.clone()));
        }
        m.options.extend(ia);
        m
    }

    fn ia_na(addr: Option<Ipv6Addr>) -> DhcpOption<'static> {
        DhcpOption::IaNa(IaNa {
            iaid: 1,
            t1: 0,
            t2: 0,
            options: addr
                .map(|a| {
                    vec![DhcpOption::IaAddr(duet_wire::option::IaAddr {
                        address: a,
                        preferred_lifetime: 0,
                        valid_lifetime: 0,
                        options: vec![],
                    })]
                })
                .unwrap_or_default(),
        })
    }

    fn ia_pd_hint(key: LeaseKey) -> DhcpOption<'static> {
        DhcpOption::IaPd(IaPd {
            iaid: 2,
            t1: 0,
            t2: 0,
            options: vec![DhcpOption::IaPrefix(duet_wire::option::IaPrefix {
                preferred_lifetime: 0,
                valid_lifetime: 0,
                prefix_len: key.prefix.len(),
                prefix: key.prefix.addr(),
                options: vec![],
            })],
        })
    }

    /// Renew of the prefix the client holds (with server `i`'s Server ID).
    fn renew_pd(&mut self, i: usize, client: u32) -> Option<(LeaseKey, u32)> {
        let held = self
            .held
            .iter()
            .find(|h| h.client == client && h.key.kind == LeaseKind::Pd)?
            .clone();
        let sid = self.nodes[i].duid();
        let now = self.now;
        let reply = self.nodes[i].dhcp(
            now,
            &Self::msg(
                MessageType::Renew,
                client,
                Some(&sid),
                Some(Self::ia_pd_hint(held.key)),
            ),
        )?;
        self.flush(i);
        self.record_held(client, &reply).into_iter().next()
    }

    fn ia_pd() -> DhcpOption<'static> {
        DhcpOption::IaPd(IaPd {
            iaid: 2,
            t1: 0,
            t2: 0,
            options: vec![],
        })
    }

    fn granted(reply: &ClientMessage<'_>) -> Vec<(LeaseKey, u32)> {
        reply
            .options
            .ia_leases()
            .filter(|(_, l)| l.valid_lifetime > 0)
            .map(|(_, l)| (LeaseKey::of(&l), l.valid_lifetime))
            .collect()
    }

    fn record_held(&mut self, client: u32, reply: &ClientMessage<'_>) -> Vec<(LeaseKey, u32)> {
        let g = Self::granted(reply);
        for (key, valid) in &g {
            self.held
                .retain(|h| !(h.client == client && h.key.kind == key.kind));
            self.held.push(Held {
                client,
                key: *key,
                valid_until: self.now + Duration::from_secs(u64::from(*valid)),
            });
        }
        g
    }

    /// Solicit → Advertise → Request → Reply through server `i`.
    fn acquire(&mut self, i: usize, client: u32, ia: DhcpOption<'static>) -> Option<(LeaseKey, u32)> {
        let now = self.now;
        let adv = self.nodes[i].dhcp(
            now,
            &Self::msg(MessageType::Solicit, client, None, Some(ia.clone())),
        )?;
        let server = adv.options.server_id()?.clone().into_owned();
        if Self::granted(&adv).is_empty() {
            return None;
        }
        let reply = self.nodes[i].dhcp(
            now,
            &Self::msg(MessageType::Request, client, Some(&server), Some(ia)),
        )?;
        self.flush(i);
        self.record_held(client, &reply).into_iter().next()
    }

    /// Rebind (no Server ID) of what the client holds, to server `i`.
    fn rebind(&mut self, i: usize, client: u32) -> Option<(LeaseKey, u32)> {
        let held = self.held.iter().find(|h| h.client == client)?.clone();
        let now = self.now;
        let reply = self.nodes[i].dhcp(
            now,
            &Self::msg(
                MessageType::Rebind,
                client,
                None,
                Some(Self::ia_na(Some(held.key.prefix.addr()))),
            ),
        )?;
        self.flush(i);
        self.record_held(client, &reply).into_iter().next()
    }

    /// Renew (with server `i`'s Server ID).
    fn renew(&mut self, i: usize, client: u32) -> Option<(LeaseKey, u32)> {
        let held = self.held.iter().find(|h| h.client == client)?.clone();
        let sid = self.nodes[i].duid();
        let now = self.now;
        let reply = self.nodes[i].dhcp(
            now,
            &Self::msg(
                MessageType::Renew,
                client,
                Some(&sid),
                Some(Self::ia_na(Some(held.key.prefix.addr()))),
            ),
        )?;
        self.flush(i);
        self.record_held(client, &reply).into_iter().next()
    }

    /// No two clients hold the same lease at the same time (their own view),
    /// and no table binds one resource to two clients.
    fn assert_no_duplicates(&self) {
        let mut by_key: BTreeMap<LeaseKey, u32> = BTreeMap::new();
        for h in self.held.iter().filter(|h| h.valid_until > self.now) {
            if let Some(other) = by_key.insert(h.key, h.client) {
                assert_eq!(
                    other, h.client,
                    "{} held by clients {} and {}",
                    h.key, other, h.client
                );
            }
        }
        let (a, b) = (self.nodes[0].table(), self.nodes[1].table());
        for (k, (sa, ba, _)) in &a {
            if let Some((sb, bb, _)) = b.get(k) {
                if *sa == LeaseState::Active && *sb == LeaseState::Active {
                    assert_eq!(ba, bb, "{k} active for different clients on the two servers");
                }
            }
        }
    }

    fn assert_tables_equal(&self) {
        let (a, b) = (self.nodes[0].table(), self.nodes[1].table());
        let diff: Vec<_> = a
            .iter()
            .filter(|(k, v)| b.get(k) != Some(v))
            .map(|(k, v)| (k, Some(v), b.get(k)))
            .chain(
                b.iter()
                    .filter(|(k, _)| !a.contains_key(k))
                    .map(|(k, v)| (k, None, Some(v))),
            )
            .take(5)
            .collect();
        assert!(
            diff.is_empty(),
            "tables differ (first 5: key, primary, secondary): {diff:#?}"
        );
    }

    fn settle(&mut self) {
        // Long enough for keepalives, a scan and every queued update.
        self.advance(40);
    }
}

fn started(mclt: u64) -> Pair {
    let mut p = Pair::new(mclt);
    p.advance(2);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    p
}

// ---- scenarios ------------------------------------------------------------

#[test]
fn fresh_pair_first_start_reaches_normal() {
    let mut p = Pair::new(60);
    assert_eq!(p.state(PRIMARY), ServerState::Startup);
    p.advance(2);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    assert!(p.nodes[0].ep().communications_ok());
    // Both learnt they have communicated (persisted).
    assert!(p.nodes[1].ep().record().communicated);
    // The secondary got its share of delegable prefixes (§4.2.2).
    let share = p.nodes[1].db().pd_pools()[0].free_in_class(1);
    assert_eq!(share, 128, "half of 256 /56s");
    p.assert_tables_equal();
}

#[test]
fn normal_operation_with_1000_leases_tables_equal() {
    let mut p = started(300);
    for c in 0..1000 {
        let (key, valid) = p.acquire(PRIMARY, c, Pair::ia_na(None)).expect("primary serves");
        assert_eq!(
            u128::from(key.prefix.addr()) & 1,
            1,
            "the primary allocates odd addresses (§4.2.1)"
        );
        assert!(valid <= 300, "a new lease gets at most MCLT (§4.4): {valid}");
        if c % 10 == 0 {
            p.drive();
        }
    }
    // The secondary does not answer Solicits in NORMAL.
    assert!(p.acquire(SECONDARY, 5000, Pair::ia_na(None)).is_none());
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
    let active = p.nodes[1]
        .db()
        .iter()
        .filter(|l| l.state == LeaseState::Active)
        .count();
    assert_eq!(active, 1000, "every binding replicated");
}

#[test]
fn mclt_rule_first_lease_mclt_then_desired_after_ack() {
    // §4.4.1's example scaled: MCLT 60 s, desired 3000 s.
    let mut p = started(60);
    let (key, valid) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    assert_eq!(valid, 60, "acked partner lifetime 0: MCLT");
    p.drive();
    let l = p.nodes[0].db().get(&key).unwrap().clone();
    // partner lifetime = now + T1 + desired, T1 being half the (capped)
    // lifetime actually given: acknowledged by the BNDREPLY.
    assert_eq!(l.t1, 30);
    assert_eq!(
        l.failover.acked_partner_lifetime,
        p.now + Duration::from_secs(30 + 3000)
    );
    assert!(!l.failover.pending_update);
    p.advance(30);
    let (_, valid) = p.renew(PRIMARY, 1).unwrap();
    assert_eq!(
        valid, 3000,
        "after the ack the desired lifetime fits under acked + MCLT"
    );
}

#[test]
fn secondary_crash_and_restart_back_to_normal_tables_equal() {
    let mut p = started(300);
    for c in 0..50 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
    }
    p.drive();
    p.crash(SECONDARY);
    p.advance(15);
    assert_eq!(p.state(PRIMARY), ServerState::CommunicationsInterrupted);
    // The primary keeps serving from its own half while the partner is away.
    for c in 50..60 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
    }
    p.restart(SECONDARY, false);
    p.advance(5);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
}

#[test]
fn primary_crash_secondary_serves_then_partner_down_and_primary_returns_empty() {
    let mut p = started(300);
    for c in 0..40 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
        p.acquire(PRIMARY, 1000 + c, Pair::ia_pd()).unwrap();
    }
    p.settle();
    p.crash(PRIMARY);
    p.advance(12);
    assert_eq!(p.state(SECONDARY), ServerState::CommunicationsInterrupted);
    // Clients rebind to the secondary and keep the SAME addresses (lease
    // stability, RFC 7031 req. 4), with lifetimes capped by MCLT.
    for c in 0..40 {
        let before = p.held.iter().find(|h| h.client == c).unwrap().key;
        let (key, valid) = p
            .rebind(SECONDARY, c)
            .expect("secondary answers Rebind in COMMUNICATIONS-INTERRUPTED");
        assert_eq!(key, before);
        assert!(valid <= 300 + 1);
    }
    // New clients get addresses from the secondary's (even) half.
    let (k, _) = p.acquire(SECONDARY, 500, Pair::ia_na(None)).unwrap();
    assert_eq!(u128::from(k.prefix.addr()) & 1, 0);
    // Operator: the primary is down.
    p.partner_down(SECONDARY).unwrap();
    p.flush(SECONDARY);
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
    // No MCLT cap in PARTNER-DOWN.
    let (_, valid) = p.rebind(SECONDARY, 3).unwrap();
    assert_eq!(valid, 3000);
    p.advance(310);
    // After MCLT the secondary may use the primary's prefixes too, own first.
    let (pk, _) = p.acquire(SECONDARY, 2000, Pair::ia_pd()).unwrap();
    assert_eq!(pk.kind, LeaseKind::Pd);
    // The primary returns with an empty store: RECOVER, UPDREQALL.
    p.restart(PRIMARY, true);
    p.advance(3);
    assert_eq!(
        p.state(PRIMARY),
        ServerState::RecoverWait,
        "UPDDONE received, now waiting MCLT"
    );
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
    p.advance(305);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
    // The restarted primary knows every binding a client still holds.
    let live: Vec<Held> = p.held.iter().filter(|h| h.valid_until > p.now).cloned().collect();
    assert!(!live.is_empty());
    for h in live {
        let l = p.nodes[PRIMARY].db().get(&h.key).unwrap();
        assert_eq!(l.state, LeaseState::Active, "{}", h.key);
        assert_eq!(
            l.binding.as_ref().map(|b| b.duid.clone()),
            Some(Pair::client_duid(h.client).as_bytes().to_vec())
        );
    }
}

#[test]
fn partition_both_serve_then_heal_resolves_potential_conflict() {
    let mut p = started(300);
    for c in 0..20 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
    }
    p.settle();
    p.partitioned = true;
    p.disconnect();
    p.advance(2);
    assert_eq!(p.state(PRIMARY), ServerState::CommunicationsInterrupted);
    assert_eq!(p.state(SECONDARY), ServerState::CommunicationsInterrupted);
    // Both serve new clients from their own pools.
    for c in 100..120 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
        p.acquire(SECONDARY, c + 100, Pair::ia_na(None)).unwrap();
        p.acquire(SECONDARY, c + 300, Pair::ia_pd()).unwrap();
    }
    // Somebody wrongly declares the primary down at the secondary.
    p.partner_down(SECONDARY).unwrap();
    p.flush(SECONDARY);
    for c in 0..10 {
        p.rebind(SECONDARY, c).unwrap();
    }
    p.advance(5);
    p.partitioned = false;
    p.step();
    p.drive();
    // Through POTENTIAL-CONFLICT / CONFLICT-DONE back to NORMAL.
    p.advance(3);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    let seen: Vec<String> = p.nodes[PRIMARY]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { to, .. } => Some(to.to_string()),
            _ => None,
        })
        .collect();
    assert!(seen.contains(&"potential-conflict".to_string()), "{seen:?}");
    assert!(seen.contains(&"conflict-done".to_string()), "{seen:?}");
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
}

#[test]
fn prefix_pool_rebalancing_after_the_secondary_runs_low() {
    let mut p = started(60);
    let before = p.nodes[SECONDARY].db().pd_pools()[0].free_in_class(1);
    p.partitioned = true;
    p.disconnect();
    p.advance(1);
    for c in 0..100 {
        p.acquire(SECONDARY, c, Pair::ia_pd())
            .expect("secondary delegates from its FREE-BACKUP share");
    }
    let low = p.nodes[SECONDARY].db().pd_pools()[0].free_in_class(1);
    assert_eq!(low, before - 100);
    p.partitioned = false;
    p.advance(40);
    // NORMAL again; the secondary's POOLREQ made the primary top it up.
    let after = p.nodes[SECONDARY].db().pd_pools()[0].free_in_class(1);
    let free_total = 256 - 100;
    assert!(
        after + 10 >= free_total / 2,
        "secondary share back near half the free prefixes: {after}"
    );
    p.settle();
    p.assert_tables_equal();
    p.assert_no_duplicates();
}

#[test]
fn clock_skew_of_ten_seconds_is_refused_at_connect() {
    let mut p = Pair::with_skew(60, 10);
    p.advance(3);
    let refused = p.nodes[PRIMARY]
        .events
        .iter()
        .any(|e| matches!(e, Event::ConnectRefused(s) if s.contains("ExcessiveTimeSkew")));
    assert!(refused, "{:?}", p.nodes[PRIMARY].events);
    assert_ne!(p.state(PRIMARY), ServerState::Normal);
    assert_ne!(p.state(SECONDARY), ServerState::Normal);
}

#[test]
fn small_clock_skew_within_five_seconds_is_tolerated() {
    let mut p = Pair::with_skew(60, 3);
    p.advance(3);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.nodes[PRIMARY].ep().status().clock_skew, Some(3));
}

#[test]
fn configuration_fingerprint_mismatch_is_refused_with_configuration_conflict() {
    let mut p = Pair::new(60);
    p.nodes[SECONDARY].ep_mut().cfg.fingerprint = Some(b"other pools".to_vec());
    p.advance(3);
    assert!(p.nodes[PRIMARY]
        .events
        .iter()
        .any(|e| matches!(e, Event::ConnectRefused(s) if s.contains("ConfigurationConflict"))));
}

#[test]
fn auto_partner_down_after_the_configured_time() {
    let mut p = started(60);
    p.nodes[SECONDARY].ep_mut().cfg.auto_partner_down = Some(Duration::from_secs(20));
    p.crash(PRIMARY);
    p.advance(12);
    assert_eq!(p.state(SECONDARY), ServerState::CommunicationsInterrupted);
    p.advance(25);
    assert_eq!(p.state(SECONDARY), ServerState::PartnerDown);
}

// ---- binding-status transitions (§7.2 events) -------------------------------

#[test]
fn binding_status_free_to_active_by_primary_and_released_then_free_after_ack() {
    let mut p = started(60);
    let (key, _) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.drive();
    assert_eq!(
        p.nodes[SECONDARY].db().get(&key).unwrap().state,
        LeaseState::Active,
        "event 1 replicated"
    );
    let sid = p.nodes[PRIMARY].duid();
    let now = p.now;
    let rel = Pair::msg(
        MessageType::Release,
        1,
        Some(&sid),
        Some(Pair::ia_na(Some(key.prefix.addr()))),
    );
    p.nodes[PRIMARY].dhcp(now, &rel).unwrap();
    assert_eq!(
        p.nodes[PRIMARY].db().get(&key).unwrap().state,
        LeaseState::Released,
        "event 3"
    );
    p.flush(PRIMARY);
    p.drive();
    // Event 4 + 5: acknowledged → PENDING-FREE → FREE (odd: primary's).
    assert_eq!(p.nodes[PRIMARY].db().get(&key).unwrap().state, LeaseState::Free);
    assert_eq!(p.nodes[SECONDARY].db().get(&key).unwrap().state, LeaseState::Free);
}

#[test]
fn binding_status_active_to_expired_then_free_after_ack() {
    let mut p = started(60);
    let (key, valid) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.advance(u64::from(valid) + 2);
    // Event 8 then 4/5.
    assert_eq!(p.nodes[PRIMARY].db().get(&key).unwrap().state, LeaseState::Free);
    p.settle();
    p.assert_tables_equal();
}

#[test]
fn binding_status_active_to_abandoned_on_decline() {
    let mut p = started(60);
    let (key, _) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    let sid = p.nodes[PRIMARY].duid();
    let now = p.now;
    let dec = Pair::msg(
        MessageType::Decline,
        1,
        Some(&sid),
        Some(Pair::ia_na(Some(key.prefix.addr()))),
    );
    p.nodes[PRIMARY].dhcp(now, &dec).unwrap();
    p.flush(PRIMARY);
    p.drive();
    assert_eq!(
        p.nodes[PRIMARY].db().get(&key).unwrap().state,
        LeaseState::Abandoned,
        "event 9"
    );
    assert_eq!(
        p.nodes[SECONDARY].db().get(&key).unwrap().state,
        LeaseState::Abandoned
    );
}

#[test]
fn binding_status_expired_becomes_free_after_mclt_in_partner_down() {
    let mut p = started(60);
    let (key, valid) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.drive();
    p.crash(SECONDARY);
    p.advance(12);
    p.partner_down(PRIMARY).unwrap();
    p.flush(PRIMARY);
    p.advance(u64::from(valid));
    assert_eq!(
        p.nodes[PRIMARY].db().get(&key).unwrap().state,
        LeaseState::Expired
    );
    // Event 4 in PARTNER-DOWN: MCLT after the latest of the lease's times.
    p.advance(4100);
    assert_eq!(p.nodes[PRIMARY].db().get(&key).unwrap().state, LeaseState::Free);
}

#[test]
fn secondary_in_normal_is_renew_responsive_only() {
    let mut p = started(60);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.drive();
    // A Rebind (no Server ID) is not answered by the secondary in NORMAL.
    assert!(p.rebind(SECONDARY, 1).is_none());
    assert!(p.rebind(PRIMARY, 1).is_some());
}

#[test]
fn drive_bounded_reports_no_livelock_on_an_idle_pair() {
    let mut p = started(60);
    assert!(p.drive_bounded(100));
}

#[test]
fn binding_status_free_backup_to_active_by_secondary_and_even_address_returns_free_backup() {
    let mut p = started(300);
    p.partitioned = true;
    p.disconnect();
    p.advance(1);
    // Event 2: the secondary delegates from its FREE-BACKUP share.
    let (pk, _) = p.acquire(SECONDARY, 7, Pair::ia_pd()).unwrap();
    assert_eq!(
        p.nodes[SECONDARY].db().get(&pk).unwrap().state,
        LeaseState::Active
    );
    // And allocates an even address; released, it returns FREE-BACKUP
    // after the partner's ack (events 3, 4, 6).
    let (ak, _) = p.acquire(SECONDARY, 8, Pair::ia_na(None)).unwrap();
    assert_eq!(u128::from(ak.prefix.addr()) & 1, 0);
    let sid = p.nodes[SECONDARY].duid();
    let now = p.now;
    let rel = Pair::msg(
        MessageType::Release,
        8,
        Some(&sid),
        Some(Pair::ia_na(Some(ak.prefix.addr()))),
    );
    p.nodes[SECONDARY].dhcp(now, &rel).unwrap();
    assert_eq!(
        p.nodes[SECONDARY].db().get(&ak).unwrap().state,
        LeaseState::Released,
        "no ack while apart"
    );
    p.partitioned = false;
    p.advance(5);
    assert_eq!(
        p.nodes[SECONDARY].db().get(&ak).unwrap().state,
        LeaseState::FreeBackup
    );
    assert_eq!(
        p.nodes[PRIMARY].db().get(&pk).unwrap().state,
        LeaseState::Active,
        "the primary learnt the delegation"
    );
    p.settle();
    p.assert_tables_equal();
}

#[test]
fn binding_status_abandoned_becomes_reset_then_free_after_ack() {
    let mut p = started(300);
    let (key, _) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    let sid = p.nodes[PRIMARY].duid();
    let now = p.now;
    let dec = Pair::msg(
        MessageType::Decline,
        1,
        Some(&sid),
        Some(Pair::ia_na(Some(key.prefix.addr()))),
    );
    p.nodes[PRIMARY].dhcp(now, &dec).unwrap();
    p.flush(PRIMARY);
    // Event 10 after the probation, then event 4/5 on the partner's ack.
    p.advance(86_400 + 5);
    assert_eq!(p.nodes[PRIMARY].db().get(&key).unwrap().state, LeaseState::Free);
    assert_eq!(p.nodes[SECONDARY].db().get(&key).unwrap().state, LeaseState::Free);
}

/// RFC 8156 §4.4.1's worked example, exactly: MCLT 1 h, desired lifetime
/// 3 days, T1 half the lifetime given.
#[test]
fn mclt_worked_example_of_section_4_4_1() {
    let hour = 3600u64;
    let day = 24 * hour;
    let ep = FailoverEndpoint::new(endpoint_config(Role::Primary, hour), None, None, START);
    let mut rels = Relationships::new(vec![ep]);
    // Make it NORMAL without a partner, as in the example.
    rels.get_mut(0).unwrap().state = ServerState::Normal;
    let desired = Duration::from_secs(3 * day);
    let t = START;
    // t: new lease, acked partner lifetime 0 → min(3d, 0 + 1h) = 1h.
    let cap = rels.valid_until_cap(0, None, t).unwrap();
    assert_eq!(cap.since(t), Duration::from_secs(hour));
    let actual = Duration::from_secs(hour);
    // BNDUPD partner lifetime: ½h + 3d.
    let pl = rels.partner_lifetime(0, desired, actual / 2, t);
    assert_eq!(pl.since(t), Duration::from_secs(hour / 2 + 3 * day));
    // The BNDREPLY acknowledges it.
    let mut lease = Lease::free(
        LeaseKey::address("2001:db8:1::1001".parse().unwrap()),
        LeaseState::Active,
        t,
    );
    lease.failover.acked_partner_lifetime = pl;
    // t + ½h: Renew at T1 → min(3d, 3d + 1h) = 3d.
    let t2 = t + Duration::from_secs(hour / 2);
    let cap = rels.valid_until_cap(0, Some(&lease), t2).unwrap();
    assert_eq!(desired.min(cap.since(t2)), desired);
    // New partner lifetime: 1.5d + 3d = 4.5d.
    let pl2 = rels.partner_lifetime(0, desired, desired / 2, t2);
    assert_eq!(pl2.since(t2), Duration::from_secs(3 * day / 2 + 3 * day));
    lease.failover.acked_partner_lifetime = pl2;
    // t + ½h + 1.5d: next Renew: acked remaining 3d → 3d (steady state).
    let t3 = t2 + Duration::from_secs(3 * day / 2);
    let cap = rels.valid_until_cap(0, Some(&lease), t3).unwrap();
    assert_eq!(desired.min(cap.since(t3)), desired);
    assert_eq!(pl2.since(t3), Duration::from_secs(3 * day));
    // In PARTNER-DOWN the cap does not apply (§8.4.1).
    rels.get_mut(0).unwrap().state = ServerState::PartnerDown;
    assert_eq!(rels.valid_until_cap(0, Some(&lease), t3), None);
}

#[test]
fn communications_interrupted_caps_renewals_at_mclt_over_the_frozen_ack() {
    let mut p = started(300);
    p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.drive();
    p.advance(150);
    let (_, full) = p.renew(PRIMARY, 1).unwrap();
    assert_eq!(full, 3000);
    p.drive();
    p.crash(SECONDARY);
    p.advance(12);
    assert_eq!(p.state(PRIMARY), ServerState::CommunicationsInterrupted);
    // The acked partner lifetime (renewal + T1 + desired) is frozen;
    // renewals shrink towards MCLT.
    p.advance(2850);
    let (_, shorter) = p.renew(PRIMARY, 1).unwrap();
    assert!(shorter < 3000 && shorter > 300, "{shorter}");
    p.advance(1200);
    let (_, capped) = p.renew(PRIMARY, 1).unwrap();
    assert_eq!(capped, 300, "past the acked partner lifetime: MCLT");
}

#[test]
fn operator_partner_down_refused_in_recover() {
    let mut p = Pair::new(300);
    p.crash(SECONDARY);
    p.advance(6);
    assert_eq!(
        p.state(PRIMARY),
        ServerState::Recover,
        "no partner within the startup time: previous state"
    );
    assert!(matches!(
        p.partner_down(PRIMARY),
        Err(crate::node::NodeCommandError::Refused(
            CommandError::NotAllowed { .. }
        ))
    ));
}

#[test]
fn a_stalled_handshake_arms_no_timer_that_never_advances() {
    // The primary sent CONNECT and hears nothing: its next timer is the
    // keepalive expiry, not a CONTACT it would never send.
    let ep_cfg = endpoint_config(Role::Primary, 300);
    let keepalive = ep_cfg.keepalive;
    let mut ep = FailoverEndpoint::new(ep_cfg, None, None, START);
    ep.handle_connected(START);
    let _ = ep.poll_transmit();
    let t = ep.poll_timeout().unwrap();
    assert!(
        t >= START + Duration::from_secs(5).min(keepalive),
        "{t} too early: busy loop"
    );
    let mut db = LeaseDb::new(&[], &[]);
    ep.handle_timeout(START + keepalive, &mut db);
    assert!(!ep.communications_ok());
    assert!(matches!(ep.poll_event(), Some(Event::Close(_))) || ep.poll_event().is_some());
}

/// duet-sim seed 50: during a partition the secondary extends a client's
/// lease (Rebind), later the primary extends it further (Renew). When the
/// partition heals, the secondary's older update must not shorten the
/// primary's binding (the client holds the primary's later end): both
/// tables end with the latest end either server promised.
#[test]
fn an_older_update_for_the_same_client_never_shortens_its_binding() {
    let mut p = started(300);
    let (key, _) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.drive();
    p.advance(20);
    let (_, valid) = p.renew(PRIMARY, 1).unwrap();
    assert_eq!(valid, 3000);
    p.drive();
    p.partitioned = true;
    p.disconnect();
    p.advance(12);
    let (k1, v1) = p.rebind(SECONDARY, 1).expect("the secondary answers Rebind");
    assert_eq!((k1, v1), (key, 300), "capped at MCLT: no acked partner lifetime");
    p.advance(100);
    let (k2, v2) = p.renew(PRIMARY, 1).unwrap();
    assert_eq!(k2, key);
    let promised = p.now + Duration::from_secs(u64::from(v2));
    assert!(promised > p.now + Duration::from_secs(400), "{v2}");
    p.partitioned = false;
    p.advance(5);
    p.settle();
    for i in [PRIMARY, SECONDARY] {
        let l = p.nodes[i].db().get(&key).unwrap();
        assert_eq!(l.state, LeaseState::Active);
        assert_eq!(l.valid_until, promised, "node {i}");
    }
    p.assert_tables_equal();
}

/// duet-sim seed 235: a server that lost its storage asks for everything
/// (UPDREQALL) and crashes in the middle of the download. Restarted from
/// what it stored, it must ask for everything again, not only for the
/// changes (UPDREQ), or it serves from a partial table.
#[test]
fn an_interrupted_updreqall_download_is_asked_for_again_after_a_restart() {
    let mut p = started(60);
    for c in 0..30 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
    }
    p.drive();
    p.advance(30);
    for c in 0..30 {
        assert_eq!(p.renew(PRIMARY, c).unwrap().1, 3000);
    }
    p.settle();
    let active = |p: &Pair| {
        p.nodes[PRIMARY]
            .db()
            .iter()
            .filter(|l| l.state == LeaseState::Active)
            .count()
    };
    p.crash(PRIMARY);
    p.restart(PRIMARY, true);
    assert_eq!(active(&p), 0);
    let mut idle = 0;
    while active(&p) < 5 {
        if !p.step() {
            p.now = p.now + Duration::from_secs(1);
            idle += 1;
            assert!(idle < 30, "the download never started");
        }
    }
    assert!(active(&p) < 30);
    p.crash(PRIMARY);
    p.restart(PRIMARY, false);
    p.advance(70);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(active(&p), 30, "every binding downloaded");
    p.settle();
    p.assert_tables_equal();
}

/// duet-sim seed 89: the primary queues FREE-BACKUP prefixes to take back
/// (rebalancing), the link breaks before they are sent, the secondary
/// goes down, and the primary in PARTNER-DOWN delegates those prefixes.
/// Announcing them later as FREE would free them under their clients when
/// the partner acknowledges.
#[test]
fn a_prefix_queued_for_taking_back_but_delegated_meanwhile_stays_delegated() {
    let mut p = started(60);
    for c in 0..60 {
        p.acquire(PRIMARY, c, Pair::ia_pd()).unwrap();
    }
    p.drive();
    // The next scan takes prefixes back beyond what may be in flight.
    let mut steps = 0;
    while p.nodes[PRIMARY].ep().status().queued_bndupd == 0 {
        if !p.step() {
            p.now = p.now + Duration::from_secs(1);
        }
        steps += 1;
        assert!(steps < 100_000, "no rebalancing");
    }
    p.partitioned = true;
    p.disconnect();
    p.crash(SECONDARY);
    p.partitioned = false;
    p.partner_down(PRIMARY).unwrap();
    p.flush(PRIMARY);
    p.advance(61);
    // Own pool first, then the partner's: every prefix goes to a client.
    let mut c = 1000;
    while p.acquire(PRIMARY, c, Pair::ia_pd()).is_some() {
        c += 1;
    }
    assert_eq!(c - 1000 + 60, 256, "the whole pool delegated");
    p.restart(SECONDARY, true);
    p.advance(70);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    let held: Vec<&Held> = p
        .held
        .iter()
        .filter(|h| h.key.kind == LeaseKind::Pd && h.valid_until > p.now)
        .collect();
    assert!(held.len() >= 196);
    for h in held {
        let l = p.nodes[PRIMARY].db().get(&h.key).unwrap();
        assert_eq!(l.state, LeaseState::Active, "{} of client {}", h.key, h.client);
    }
    p.settle();
    p.assert_tables_equal();
}

/// duet-sim seed 4057: the same, with the crash before the download even
/// started: the partner, starting too, first sends a STARTUP-flagged STATE
/// (no UPDREQALL yet), which already records that we communicated.
#[test]
fn a_lost_storage_is_remembered_until_the_full_download_even_before_it_starts() {
    let mut p = started(60);
    for c in 0..10 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
    }
    p.drive();
    p.advance(30);
    for c in 0..10 {
        assert_eq!(p.renew(PRIMARY, c).unwrap().1, 3000);
    }
    p.settle();
    p.crash(PRIMARY);
    p.crash(SECONDARY);
    p.restart(PRIMARY, true);
    p.nodes[SECONDARY].up = false;
    p.advance(6);
    assert_eq!(p.state(PRIMARY), ServerState::Recover, "by the startup timer");
    p.restart(SECONDARY, false);
    let mut idle = 0;
    while !p.nodes[PRIMARY].ep().record().communicated {
        if !p.step() {
            p.now = p.now + Duration::from_secs(1);
            idle += 1;
            assert!(idle < 30, "never connected");
        }
    }
    assert_eq!(
        p.state(SECONDARY),
        ServerState::Startup,
        "the partner is still starting"
    );
    p.flush(PRIMARY);
    p.crash(PRIMARY);
    p.restart(PRIMARY, false);
    p.advance(70);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    let active = p.nodes[PRIMARY]
        .db()
        .iter()
        .filter(|l| l.state == LeaseState::Active)
        .count();
    assert_eq!(active, 10, "every binding downloaded");
}

/// duet-sim seed 94742: a server that lost its storage meets a partner in
/// POTENTIAL-CONFLICT (or RESOLUTION-INTERRUPTED, CONFLICT-DONE), so it
/// leaves RECOVER for POTENTIAL-CONFLICT (RFC 8156 §8.5.2) before asking
/// for anything. Its request there must still be an UPDREQALL (§8.5.1):
/// an UPDREQ brings only what the partner has not had acknowledged, and
/// the server reaches NORMAL without the bindings it lost.
#[test]
fn a_lost_storage_is_downloaded_whole_even_through_potential_conflict() {
    let mut p = started(60);
    for c in 0..10 {
        p.acquire(PRIMARY, c, Pair::ia_na(None)).unwrap();
    }
    p.settle();
    p.partitioned = true;
    p.disconnect();
    p.advance(2);
    p.partner_down(PRIMARY).unwrap();
    p.advance(2);
    assert_eq!(p.state(PRIMARY), ServerState::PartnerDown);
    // The primary's resolution stays unfinished while the secondary is away.
    p.drop_to[PRIMARY].push(FailoverMessageType::UpdDone);
    p.partitioned = false;
    p.advance(3);
    assert_eq!(p.state(PRIMARY), ServerState::PotentialConflict);
    // The secondary restarts from nothing and, alone, reaches RECOVER.
    p.partitioned = true;
    p.crash(SECONDARY);
    p.restart(SECONDARY, true);
    p.advance(6);
    assert_eq!(p.state(SECONDARY), ServerState::Recover, "by the startup timer");
    p.drop_to[PRIMARY].clear();
    p.partitioned = false;
    p.advance(70);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    p.settle();
    p.assert_tables_equal();
    assert!(
        p.delivered
            .iter()
            .any(|(to, m)| *to == PRIMARY && m.msg_type == FailoverMessageType::UpdReqAll),
        "the secondary asked for everything"
    );
}

/// duet-sim seed 6879: a prefix one client held with a long acknowledged
/// partner lifetime is released and given to another client. The MCLT
/// rule must count only what the partner acknowledged for the new binding
/// (nothing yet): the new client gets at most MCLT.
#[test]
fn a_previous_clients_acknowledged_lifetime_does_not_lengthen_a_new_clients_lease() {
    let mut p = started(300);
    let (key, valid) = p.acquire(PRIMARY, 1, Pair::ia_pd()).unwrap();
    assert_eq!(valid, 300);
    p.drive();
    p.advance(150);
    assert_eq!(p.renew_pd(PRIMARY, 1).unwrap().1, 3000);
    p.drive();
    let l = p.nodes[PRIMARY].db().get(&key).unwrap().clone();
    assert!(l.failover.acked_partner_lifetime > p.now + Duration::from_secs(3000));
    // Released and acknowledged: FREE again.
    let sid = p.nodes[PRIMARY].duid();
    let now = p.now;
    let rel = Pair::msg(MessageType::Release, 1, Some(&sid), Some(Pair::ia_pd_hint(key)));
    p.nodes[PRIMARY].dhcp(now, &rel).unwrap();
    p.flush(PRIMARY);
    p.drive();
    assert_eq!(p.nodes[PRIMARY].db().get(&key).unwrap().state, LeaseState::Free);
    // Another client asks for exactly that prefix.
    let (k2, v2) = p.acquire(PRIMARY, 2, Pair::ia_pd_hint(key)).unwrap();
    assert_eq!(k2, key);
    assert_eq!(v2, 300, "a new binding: at most MCLT (§4.4)");
}

/// duet-sim: the primary renews a lease during a partition, beyond what the
/// secondary knows (within MCLT of the partner lifetime the secondary
/// acknowledged), then loses its storage. Recovering, it asks for
/// everything (UPDREQALL); both must keep the binding until that bound,
/// not free it when the secondary's older copy runs out while the client
/// still holds the renewal.
#[test]
fn a_renewal_lost_with_the_storage_is_held_until_its_mclt_bound() {
    let mut p = started(60);
    let (key, valid) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    assert_eq!(valid, 60);
    p.drive();
    p.advance(30);
    assert_eq!(p.renew(PRIMARY, 1).unwrap().1, 3000);
    p.drive();
    let known_by_secondary = p.nodes[SECONDARY].db().get(&key).unwrap().valid_until;
    p.partitioned = true;
    p.disconnect();
    p.advance(1000);
    let (_, v2) = p.renew(PRIMARY, 1).unwrap();
    let promised = p.now + Duration::from_secs(u64::from(v2));
    assert!(promised > known_by_secondary + Duration::from_secs(600));
    p.crash(PRIMARY);
    p.restart(PRIMARY, true);
    p.partitioned = false;
    // Past the end of the secondary's copy, before the client's.
    let wait = known_by_secondary.since(p.now).as_secs() + 100;
    p.advance(wait);
    assert!(p.now < promised);
    assert_held_on_both(&p, &key, promised);
}

/// Both servers hold `key` ACTIVE until at least `promised` (what the
/// client was last told).
fn assert_held_on_both(p: &Pair, key: &LeaseKey, promised: UnixTime) {
    for i in [PRIMARY, SECONDARY] {
        let l = p.nodes[i].db().get(key).unwrap();
        assert_eq!(l.state, LeaseState::Active, "node {i}");
        assert!(
            l.active_end() >= promised,
            "node {i}: {} < {promised}",
            l.active_end()
        );
    }
}

/// duet-sim seeds 29355, 55179 and 61211: the same hold, then the client
/// rebinds (its server's Server ID is gone with the storage) while the
/// partners are cut off again, and the server answers with less than the
/// renewal the client holds. The Reply is lost: the client keeps the
/// renewal, so the hold must outlive the new grant (the grant's shorter
/// end replaced it, the binding ran out, and the lease went to another
/// client while the first still held it).
#[test]
fn a_grant_to_a_held_binding_keeps_the_hold() {
    let mut p = started(60);
    let (key, _) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.drive();
    p.advance(30);
    assert_eq!(p.renew(PRIMARY, 1).unwrap().1, 3000);
    p.drive();
    let known_by_secondary = p.nodes[SECONDARY].db().get(&key).unwrap().valid_until;
    p.partitioned = true;
    p.disconnect();
    p.advance(1000);
    let (_, v2) = p.renew(PRIMARY, 1).unwrap();
    let promised = p.now + Duration::from_secs(u64::from(v2));
    p.crash(PRIMARY);
    p.restart(PRIMARY, true);
    p.partitioned = false;
    p.advance(100);
    assert_eq!(p.state(PRIMARY), ServerState::Normal);
    assert!(p.nodes[PRIMARY].db().get(&key).unwrap().active_end() >= promised);
    p.partitioned = true;
    p.disconnect();
    p.advance(1);
    assert_eq!(p.state(PRIMARY), ServerState::CommunicationsInterrupted);
    // The Rebind, answered by the primary; its Reply is lost.
    let rebind = Pair::msg(
        MessageType::Rebind,
        1,
        None,
        Some(Pair::ia_na(Some(key.prefix.addr()))),
    );
    let now = p.now;
    let reply = p.nodes[PRIMARY]
        .dhcp(now, &rebind)
        .expect("the primary answers Rebind");
    p.flush(PRIMARY);
    let (_, v3) = Pair::granted(&reply)[0];
    assert!(
        p.now + Duration::from_secs(u64::from(v3)) < promised,
        "a shorter grant"
    );
    // Past the end of both the secondary's copy and the lost grant, before
    // the client's renewal.
    let wait = known_by_secondary.since(p.now).as_secs() + 100;
    p.advance(wait);
    assert!(p.now < promised);
    let l = p.nodes[PRIMARY].db().get(&key).unwrap();
    assert_eq!(l.state, LeaseState::Active);
    assert!(l.active_end() >= promised, "{} < {promised}", l.active_end());
    p.partitioned = false;
    p.settle();
    assert!(p.now < promised);
    assert_held_on_both(&p, &key, promised);
}

/// duet-sim seed 388: during a partition the secondary extends a lease
/// (within MCLT) that the primary only knows until earlier, then loses its
/// storage. The primary's copy runs out; the recovering secondary stores
/// the primary's EXPIRED and acknowledges it, but that acknowledgement must
/// not free the lease: the client may hold it until the secondary's MCLT
/// wait is over.
#[test]
fn an_acknowledgement_from_a_recovering_partner_frees_nothing() {
    let mut p = started(60);
    let (key, _) = p.acquire(PRIMARY, 1, Pair::ia_na(None)).unwrap();
    p.drive();
    p.advance(30);
    assert_eq!(p.renew(PRIMARY, 1).unwrap().1, 3000);
    p.drive();
    let end = p.nodes[PRIMARY].db().get(&key).unwrap().valid_until;
    p.partitioned = true;
    p.disconnect();
    p.advance(end.since(p.now).as_secs() - 40);
    let (_, v) = p.rebind(SECONDARY, 1).expect("the secondary answers Rebind");
    let held_until = p.now + Duration::from_secs(u64::from(v));
    assert!(held_until > end + Duration::from_secs(10));
    p.advance(5);
    p.crash(SECONDARY);
    p.advance(end.since(p.now).as_secs() + 1);
    assert_eq!(
        p.nodes[PRIMARY].db().get(&key).unwrap().state,
        LeaseState::Expired
    );
    p.partitioned = false;
    p.restart(SECONDARY, true);
    p.advance(8);
    assert!(p.now < held_until);
    assert_eq!(
        p.nodes[PRIMARY].db().get(&key).unwrap().state,
        LeaseState::Expired,
        "not freed while the client may still hold it"
    );
    p.advance(70);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    p.settle();
    assert!(p.nodes[PRIMARY].db().get(&key).unwrap().state.is_available());
}

/// duet-sim seeds 24845 and 42064: a server in PARTNER-DOWN whose partner
/// is recovering gives lifetimes under the MCLT rule and keeps to its own
/// pool: what it does now may reach the partner only after the partner
/// serves again (and not at all if this server fails first).
#[test]
fn partner_down_while_the_partner_recovers_keeps_to_its_pool_and_the_mclt() {
    let mut ep = FailoverEndpoint::new(endpoint_config(Role::Secondary, 60), None, None, START);
    ep.state = ServerState::PartnerDown;
    ep.state_since = START;
    ep.partner_state = Some(ServerState::Normal);
    let mut rels = Relationships::new(vec![ep]);
    let later = START + Duration::from_secs(120);
    assert_eq!(rels.valid_until_cap(0, None, later), None, "partner down: no cap");
    assert_eq!(
        rels.prefix_classes(0, later),
        vec![1, 0],
        "and its pool after MCLT"
    );
    for recovering in [
        ServerState::Recover,
        ServerState::RecoverWait,
        ServerState::RecoverDone,
    ] {
        rels.get_mut(0).unwrap().partner_state = Some(recovering);
        assert_eq!(
            rels.valid_until_cap(0, None, later),
            Some(later + Duration::from_secs(60)),
            "{recovering}"
        );
        assert_eq!(rels.prefix_classes(0, later), vec![1], "{recovering}");
    }
}

/// duet-sim seeds 26148 and 53289: the secondary crashes, and the operator
/// rightly declares it down a moment later; but its clock is ahead, so at
/// its return the primary's PARTNER-DOWN start looks earlier than its own
/// last operation and §8.3.2 step 5 gives POTENTIAL-CONFLICT, not RECOVER.
/// The resolution is cut short before the primary's BNDUPDs arrive: in
/// RESOLUTION-INTERRUPTED the secondary must not delegate its FREE-BACKUP
/// prefixes, one of which the primary delegated in PARTNER-DOWN (§8.4.1).
#[test]
fn an_interrupted_resolution_delegates_no_prefix_the_partner_may_have_taken() {
    let mut p = Pair::with_skew(60, 3);
    p.advance(2);
    assert_eq!(p.state(SECONDARY), ServerState::Normal);
    let key = (0..256u32)
        .map(|i| LeaseKey::prefix(format!("2001:db8:8000:{i:x}00::/56").parse().unwrap()))
        .find(|k| p.nodes[SECONDARY].db().prefix_free_class(&k.prefix) == Some(1))
        .expect("the secondary has FREE-BACKUP prefixes");
    // The secondary stops just after recording its last operation.
    let last_operating = |p: &Pair| {
        let snap = p.nodes[SECONDARY].store.clone().load().unwrap();
        snap.meta
            .get(crate::node::META_LAST_OPERATING)
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_le_bytes)
    };
    for _ in 0..12 {
        if last_operating(&p) == Some(p.nodes[SECONDARY].local(p.now).secs()) {
            break;
        }
        p.advance(1);
    }
    assert_eq!(last_operating(&p), Some(p.nodes[SECONDARY].local(p.now).secs()));
    p.crash(SECONDARY);
    p.partner_down(PRIMARY).unwrap();
    p.advance(61);
    let (got, _) = p
        .acquire(PRIMARY, 7, Pair::ia_pd_hint(key))
        .expect("the partner's prefixes after PARTNER-DOWN + MCLT");
    assert_eq!(got, key);
    // The secondary returns; the primary's updates never reach it.
    p.drop_to[SECONDARY] = vec![FailoverMessageType::BndUpd, FailoverMessageType::UpdDone];
    p.restart(SECONDARY, false);
    p.advance(1);
    assert_eq!(p.state(SECONDARY), ServerState::PotentialConflict);
    p.partitioned = true;
    p.disconnect();
    assert_eq!(p.state(SECONDARY), ServerState::ResolutionInterrupted);
    p.acquire(SECONDARY, 8, Pair::ia_na(None))
        .expect("RESOLUTION-INTERRUPTED serves addresses from its own half");
    assert_eq!(p.acquire(SECONDARY, 9, Pair::ia_pd_hint(key)), None);
    assert_eq!(p.acquire(SECONDARY, 10, Pair::ia_pd()), None);
    p.assert_no_duplicates();
}

/// duet-sim seed 59393: when the partner asks for everything (it lost its
/// storage), what it acknowledged before no longer counts for the MCLT
/// rule, and every binding it may have renewed unseen is kept until what
/// we acknowledged to it + MCLT.
#[test]
fn updreqall_forgets_acknowledgements_and_holds_bindings_to_their_mclt_bound() {
    let mut ep = FailoverEndpoint::new(endpoint_config(Role::Primary, 60), None, None, START);
    let mut db = LeaseDb::new(
        &[(
            "2001:db8:1::1000".parse().unwrap(),
            "2001:db8:1::2fff".parse().unwrap(),
        )],
        &[("2001:db8:8000::/48".parse().unwrap(), 56)],
    );
    let key = LeaseKey::address("2001:db8:1::1001".parse().unwrap());
    let mut l = Lease::free(key, LeaseState::Active, START);
    l.binding = Some(BindingKey {
        duid: vec![0, 3, 0, 1, 9],
        kind: LeaseKind::Na,
        iaid: 1,
    });
    l.valid_until = START + Duration::from_secs(100);
    l.state_expiration = Some(l.valid_until);
    l.failover.acked_partner_lifetime = START + Duration::from_secs(3000);
    l.failover.expiration_time = START + Duration::from_secs(500);
    db.upsert(l).unwrap();
    ep.on_updreq(START, TransactionId::from_low_bits(7), true, &mut db);
    let l = db.get(&key).unwrap();
    assert_eq!(l.failover.acked_partner_lifetime, UnixTime::ZERO);
    assert_eq!(l.active_end(), START + Duration::from_secs(560), "held");
    assert_eq!(
        l.valid_until,
        START + Duration::from_secs(100),
        "what the client was told stays"
    );
    assert_eq!(l.state, LeaseState::Active);
    let (persist, _) = ep.poll_persist();
    assert_eq!(persist.len(), 1, "made durable");
}

/// duet-sim seed 541 (of commit 702f2a8's simulator): in PARTNER-DOWN an
/// EXPIRED lease's state expiration is its reuse time, already at least
/// what we acknowledged + MCLT. When the partner (which renewed it unseen
/// before losing its storage) asks for everything, the binding must be
/// held ACTIVE all the same: once both are NORMAL an EXPIRED lease is
/// freed on the next acknowledgement, whatever its state expiration says
/// (it was, and given to another client while the renewal still ran).
#[test]
fn updreqall_holds_an_expired_binding_whose_reuse_time_is_its_mclt_bound() {
    let mut ep = FailoverEndpoint::new(endpoint_config(Role::Secondary, 60), None, None, START);
    let mut db = LeaseDb::new(
        &[(
            "2001:db8:1::1000".parse().unwrap(),
            "2001:db8:1::2fff".parse().unwrap(),
        )],
        &[("2001:db8:8000::/48".parse().unwrap(), 56)],
    );
    let key = LeaseKey::address("2001:db8:1::1001".parse().unwrap());
    let mut l = Lease::free(key, LeaseState::Expired, START + Duration::from_secs(100));
    l.binding = Some(BindingKey {
        duid: vec![0, 3, 0, 1, 9],
        kind: LeaseKind::Na,
        iaid: 1,
    });
    l.valid_until = START + Duration::from_secs(100);
    l.failover.expiration_time = START + Duration::from_secs(500);
    // PARTNER-DOWN's reuse time: max(every end) + MCLT.
    l.state_expiration = Some(START + Duration::from_secs(560));
    db.upsert(l).unwrap();
    let now = START + Duration::from_secs(200);
    ep.on_updreq(now, TransactionId::from_low_bits(7), true, &mut db);
    let l = db.get(&key).unwrap();
    assert_eq!(l.state, LeaseState::Active, "held, not left to be freed");
    assert_eq!(l.active_end(), START + Duration::from_secs(560));
    assert_eq!(l.valid_until, START + Duration::from_secs(100));
}

/// duet-sim seed 48086: a server that restarts in RECOVER-WAIT while its
/// partner is down must keep waiting until its failure time + MCLT. The
/// "never communicated" shortcut (§8.6.2) needs the partner's flags from
/// the current connection; with no connection they are unknown, not zero.
/// (Before the fix it went to RECOVER-DONE at once and, once the partner
/// was back, served from its pool while a lease granted before its store
/// was lost was still held by its client.)
#[test]
fn recover_wait_resumed_without_the_partner_still_waits_for_the_mclt() {
    let mclt = 300;
    let mut p = started(mclt);
    p.crash(SECONDARY);
    p.advance(5);
    p.restart(SECONDARY, true);
    p.advance(30);
    assert_eq!(p.state(SECONDARY), ServerState::RecoverWait, "after UPDREQALL");
    // Crash in RECOVER-WAIT; the primary goes down as well; the secondary
    // comes back alone.
    p.crash(SECONDARY);
    p.crash(PRIMARY);
    p.advance(3);
    p.restart(SECONDARY, false);
    p.advance(120);
    assert_eq!(
        p.state(SECONDARY),
        ServerState::RecoverWait,
        "left RECOVER-WAIT without the partner, before failure + MCLT"
    );
    p.advance(mclt);
    assert_eq!(
        p.state(SECONDARY),
        ServerState::RecoverDone,
        "RECOVER-WAIT ends at failure + MCLT even without the partner"
    );
}

// ---- hostile but well-formed partner messages (issue 30) ------------------

/// A BNDUPD for one client with `n` leases, addresses from `first` up, in
/// one IA_NA or each in an IA_NA of its own.
fn big_bndupd(n: u32, first: u128, one_ia: bool, now: UnixTime) -> FailoverMessage<'static> {
    let mut lease = Lease::free(LeaseKey::address(Ipv6Addr::from(first)), LeaseState::Active, now);
    lease.binding = Some(BindingKey {
        duid: vec![0, 3, 0, 1, 9, 9, 9, 9],
        kind: LeaseKind::Na,
        iaid: 0,
    });
    lease.valid_until = now + Duration::from_secs(3000);
    lease.preferred_until = now + Duration::from_secs(2000);
    lease.cltt = now;
    lease.start_time_of_state = now;
    let mut msg =
        bndupd::build_bndupd(&lease, LeaseState::Active, TransactionId::from_low_bits(77), now).unwrap();
    let Some(DhcpOption::ClientData(cd)) = msg.options.first_mut() else {
        panic!("client form")
    };
    let template = cd
        .iter()
        .find_map(|o| match o {
            DhcpOption::IaNa(ia) => Some(ia.clone()),
            _ => None,
        })
        .unwrap();
    cd.retain(|o| !matches!(o, DhcpOption::IaNa(_)));
    let lease_opt = template.options.first().cloned().unwrap();
    let mut one = template.clone();
    one.options.clear();
    for i in 0..n {
        let mut l = lease_opt.clone();
        if let DhcpOption::IaAddr(a) = &mut l {
            a.address = Ipv6Addr::from(first + u128::from(i));
        }
        if one_ia {
            one.options.push(l);
        } else {
            let mut ia = template.clone();
            ia.iaid = i;
            ia.options = vec![l];
            cd.push(DhcpOption::IaNa(ia));
        }
    }
    if one_ia {
        cd.push(DhcpOption::IaNa(one));
    }
    msg
}

/// Everything the endpoint wants sent, encoded as the daemon would.
fn frames_of(
    ep: &mut FailoverEndpoint,
) -> Vec<(FailoverMessage<'static>, Result<usize, duet_wire::EmitError>)> {
    let mut out = vec![];
    while let Some(m) = ep.poll_transmit() {
        let mut frame = Vec::new();
        let r = StreamMessage::Failover(m.clone())
            .encode_frame(&mut frame)
            .map(|()| frame.len());
        out.push((m, r));
    }
    out
}

/// Issue 30 point 3: 1,500 leases outside the pools in one 61 KB BNDUPD
/// made a BNDREPLY too long for a frame; the daemon dropped it and the
/// partner waited for ever. (800 leases here: 58 KB with every option.)
#[test]
fn a_bndupd_whose_answer_would_not_fit_is_answered_and_applies_nothing() {
    let mut p = started(60);
    let now = p.nodes[SECONDARY].local(p.now);
    frames_of(p.nodes[SECONDARY].ep_mut());
    // Outside every pool, and inside the pool: both refused whole.
    for first in [
        0x2001_0db8_0009_0000_0000_0000_0000_1000u128,
        0x2001_0db8_0001_0000_0000_0000_0000_1000,
    ] {
        let msg = big_bndupd(800, first, true, now);
        let mut frame = Vec::new();
        StreamMessage::Failover(msg.clone())
            .encode_frame(&mut frame)
            .unwrap();
        assert!(frame.len() > 50_000, "{} bytes", frame.len());
        let before = p.nodes[SECONDARY].db().len();
        let (ep, db) = p.nodes[SECONDARY].node.endpoint_mut(0);
        ep.handle_message(now, &msg, db);
        let sent = frames_of(ep);
        let replies: Vec<_> = sent
            .iter()
            .filter(|(m, _)| m.msg_type == FailoverMessageType::BndReply)
            .collect();
        assert_eq!(replies.len(), 1, "{sent:?}");
        let (reply, encoded) = replies[0];
        assert!(encoded.is_ok(), "{encoded:?}");
        assert_eq!(reply.transaction_id, msg.transaction_id);
        assert!(
            bndupd::parse_bndreply(reply).is_empty()
                || bndupd::parse_bndreply(reply).iter().all(|a| a.result.is_err())
        );
        assert_eq!(p.nodes[SECONDARY].db().len(), before, "nothing applied");
    }
    // At the cap, every verdict is echoed and the reply fits.
    let msg = big_bndupd(
        MAX_LEASES_PER_BNDUPD as u32,
        0x2001_0db8_0009_0000_0000_0000_0000_1000,
        false,
        now,
    );
    let (ep, db) = p.nodes[SECONDARY].node.endpoint_mut(0);
    ep.handle_message(now, &msg, db);
    let sent = frames_of(ep);
    let (reply, encoded) = sent
        .iter()
        .find(|(m, _)| m.msg_type == FailoverMessageType::BndReply)
        .unwrap();
    assert!(encoded.is_ok(), "{encoded:?}");
    let acks = bndupd::parse_bndreply(reply);
    assert_eq!(acks.len(), MAX_LEASES_PER_BNDUPD);
    assert!(acks
        .iter()
        .all(|a| a.result == Err(StatusCode::ConfigurationConflict)));
}

/// Issue 30 point 4: the partner's MAX_UNACKED_BNDUPD was taken up to
/// u32::MAX, and kept from one connection to the next.
#[test]
fn the_partners_max_unacked_bndupd_is_capped_and_reset_per_connection() {
    let mut p = started(60);
    let now = p.nodes[PRIMARY].local(p.now);
    frames_of(p.nodes[PRIMARY].ep_mut());
    p.nodes[PRIMARY]
        .ep_mut()
        .adopt_partner_params(&[DhcpOption::MaxUnackedBndupd(u32::MAX)]);
    assert_eq!(p.nodes[PRIMARY].ep().partner_max_unacked, MAX_UNACKED_BNDUPD_CAP);
    // 3,000 updates queued: no more than the cap in flight.
    let leases: Vec<Lease> = (0..3000u128)
        .map(|i| {
            let mut l = Lease::free(
                LeaseKey::address(Ipv6Addr::from(
                    0x2001_0db8_0001_0000_0000_0000_0000_1001u128 + 2 * i,
                )),
                LeaseState::Active,
                now,
            );
            l.binding = Some(BindingKey {
                duid: vec![0, 3, 0, 1, (i >> 8) as u8, i as u8],
                kind: LeaseKind::Na,
                iaid: 1,
            });
            l.valid_until = now + Duration::from_secs(600);
            l.state_expiration = Some(l.valid_until);
            l.failover.pending_update = true;
            l
        })
        .collect();
    let (ep, db) = p.nodes[PRIMARY].node.endpoint_mut(0);
    for l in &leases {
        db.upsert(l.clone()).unwrap();
    }
    ep.leases_changed(now, leases.iter(), db);
    let sent = frames_of(ep);
    let bndupds = sent
        .iter()
        .filter(|(m, _)| m.msg_type == FailoverMessageType::BndUpd)
        .count();
    assert_eq!(bndupds, MAX_UNACKED_BNDUPD_CAP as usize);
    // A new connection starts from one until its CONNECT says otherwise.
    ep.handle_closed(now, db);
    ep.handle_connected(now);
    assert_eq!(ep.partner_max_unacked, 1);
    // Transaction ids are found among those in use without looping.
    let before = ep.next_xid;
    let x = ep.xid();
    assert!(!ep.in_flight.contains_key(&x));
    assert!(ep.next_xid.wrapping_sub(before) <= MAX_UNACKED_BNDUPD_CAP + 3);
}

mod operations;
