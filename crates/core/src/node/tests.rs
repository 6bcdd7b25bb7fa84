//! The node's own decisions, driven as the daemon drives it: durable before
//! visible, the commit plan, the server DUID, the heartbeat, the keepalive
//! and CONTACT timer, and which partner messages may leave before a commit.

use super::*;
use crate::config::{Config, Role};
use crate::dhcp::ServerOptions;
use crate::failover::EndpointConfig;
use crate::lease::LeaseKind;
use crate::store::{FaultyStore, LeaseStore, MemoryStore};
use crate::testing::{endpoint_config, subnet};
use duet_wire::option::{IaNa, IaPd};
use duet_wire::{ClientMessage, DhcpOption, FrameDecoder, MessageType, ServerState, TransactionId};
use std::collections::BTreeSet;

const T0: Timestamp = Timestamp(1_800_000_000_000_000);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn endpoint(role: Role) -> EndpointConfig {
    endpoint_config(role, 60)
}

fn standalone_config(plan: CommitPlan) -> NodeConfig {
    NodeConfig {
        subnets: vec![subnet(None)],
        options: ServerOptions::default(),
        relationships: vec![],
        plan,
        seed: 7,
    }
}

fn pair_config(role: Role) -> NodeConfig {
    NodeConfig {
        subnets: vec![subnet(Some(0))],
        options: ServerOptions::default(),
        relationships: vec![endpoint(role)],
        plan: CommitPlan::default(),
        seed: u64::from(role == Role::Primary),
    }
}

fn client_duid(n: u32) -> Duid<'static> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&n.to_be_bytes());
    Duid::new(d).unwrap()
}

/// A Solicit for an address (and a prefix if `pd`), with Rapid Commit if
/// `rapid`.
fn solicit_with(client: u32, rapid: bool, pd: bool) -> Vec<u8> {
    let mut m = ClientMessage::new(MessageType::Solicit, TransactionId::from_low_bits(client));
    m.options.push(DhcpOption::ClientId(client_duid(client)));
    if rapid {
        m.options.push(DhcpOption::RapidCommit);
    }
    m.options.push(DhcpOption::IaNa(IaNa {
        iaid: 1,
        t1: 0,
        t2: 0,
        options: vec![],
    }));
    if pd {
        m.options.push(DhcpOption::IaPd(IaPd {
            iaid: 2,
            t1: 0,
            t2: 0,
            options: vec![],
        }));
    }
    m.to_vec().unwrap()
}

fn rapid_solicit(client: u32, pd: bool) -> Vec<u8> {
    solicit_with(client, true, pd)
}

fn solicit(client: u32) -> Vec<u8> {
    solicit_with(client, false, false)
}

fn incoming(payload: &[u8]) -> Incoming<'_> {
    Incoming {
        payload,
        source: "fe80::1".parse().unwrap(),
        interface: Some("eth0"),
        multicast: true,
    }
}

/// Boots a node from `store`, commits its boot work, and returns it.
fn booted<S: LeaseStore>(cfg: NodeConfig, store: &mut S, now: Timestamp) -> Node<u32> {
    let snap = store.load().unwrap();
    let (mut n, _) = Node::boot(cfg, snap, now);
    while let Some(c) = n.poll_commit(now) {
        let r = store.commit(&c.batch);
        n.commit_done(now, c.seq, r).unwrap();
    }
    n
}

#[test]
fn a_new_duid_is_durable_before_anything_is_answered() {
    let mut store = MemoryStore::new();
    let (mut n, report) = Node::<u32>::boot(
        standalone_config(CommitPlan::default()),
        store.load().unwrap(),
        T0,
    );
    assert!(report.new_duid);
    assert_eq!(
        n.handle_datagram(T0, incoming(&solicit(1)), 1),
        Err(Discard::Starting)
    );
    let c = n.poll_commit(T0).expect("the DUID's commit is due at once");
    let stored = c
        .batch
        .meta
        .iter()
        .find(|(k, _)| k == META_SERVER_DUID)
        .unwrap()
        .1
        .clone();
    assert_eq!(stored, n.duid().as_bytes());
    store.commit(&c.batch).unwrap();
    n.commit_done(T0, c.seq, Ok(())).unwrap();
    assert!(n.handle_datagram(T0, incoming(&solicit(1)), 1).is_ok());
    // A restart keeps it, and answers at once.
    let duid = n.duid().clone();
    let (mut again, report) = Node::<u32>::boot(
        standalone_config(CommitPlan::default()),
        store.load().unwrap(),
        T0,
    );
    assert!(!report.new_duid);
    assert_eq!(again.duid(), &duid);
    assert!(again.handle_datagram(T0, incoming(&solicit(1)), 1).is_ok());
}

#[test]
fn an_advertise_leaves_at_once_and_a_reply_only_after_its_commit() {
    let mut store = MemoryStore::new();
    let mut n = booted(standalone_config(CommitPlan::default()), &mut store, T0);
    n.handle_datagram(T0, incoming(&solicit(1)), 1).unwrap();
    assert!(matches!(n.poll_transmit(T0), Some(Transmit::Reply(r)) if r.route == 1));
    assert!(n.poll_commit(T0).is_none(), "an offer commits nothing");
    let t = T0 + Duration::from_secs(1);
    n.handle_datagram(t, incoming(&rapid_solicit(2, true)), 2)
        .unwrap();
    assert_eq!(n.poll_transmit(t), None, "held for its commit");
    let c = n.poll_commit(t).unwrap();
    assert_eq!((c.batch.leases.len(), c.replies), (2, 1));
    assert!(
        c.batch.meta.iter().any(|(k, _)| k == META_LAST_OPERATING),
        "a commit in a new second records the time of operation"
    );
    assert_eq!(n.poll_transmit(t), None, "not before the commit is reported");
    store.commit(&c.batch).unwrap();
    n.commit_done(t, c.seq, Ok(())).unwrap();
    assert!(matches!(n.poll_transmit(t), Some(Transmit::Reply(r)) if r.route == 2));
}

#[test]
fn a_failed_commit_releases_nothing_and_the_node_answers_no_more() {
    let mut store = FaultyStore {
        inner: MemoryStore::new(),
        fail_next: 0,
    };
    let mut n = booted(standalone_config(CommitPlan::default()), &mut store, T0);
    n.handle_datagram(T0, incoming(&rapid_solicit(1, false)), 1)
        .unwrap();
    let c = n.poll_commit(T0).unwrap();
    store.fail_next = 1;
    let r = store.commit(&c.batch);
    assert!(n.commit_done(T0, c.seq, r).is_err());
    assert_eq!(n.poll_transmit(T0 + ms(10)), None);
    assert!(matches!(
        n.poll_event(),
        Some(NodeEvent::CommitFailed { replies: 1, .. })
    ));
    assert_eq!(
        n.handle_datagram(T0, incoming(&solicit(2)), 2),
        Err(Discard::StoreFailed)
    );
    assert!(
        store.inner.load().unwrap().leases.is_empty(),
        "the failed commit wrote no lease"
    );
}

#[test]
fn the_commit_window_groups_the_replies_that_arrive_within_it() {
    let plan = CommitPlan {
        window: ms(2),
        ..CommitPlan::default()
    };
    let mut store = MemoryStore::new();
    let mut n = booted(standalone_config(plan), &mut store, T0);
    n.handle_datagram(T0, incoming(&rapid_solicit(1, false)), 1)
        .unwrap();
    assert!(n.poll_commit(T0).is_none());
    assert_eq!(n.poll_timeout(), Some(T0 + ms(2)));
    n.handle_datagram(T0 + ms(1), incoming(&rapid_solicit(2, false)), 2)
        .unwrap();
    assert!(n.poll_commit(T0 + ms(1)).is_none());
    let c = n.poll_commit(T0 + ms(2)).unwrap();
    assert_eq!(c.replies, 2);
    // One commit at a time: the next waits for this one's report.
    n.handle_datagram(T0 + ms(2), incoming(&rapid_solicit(3, false)), 3)
        .unwrap();
    assert!(n.poll_commit(T0 + ms(50)).is_none());
    n.commit_done(T0 + ms(3), c.seq, Ok(())).unwrap();
    assert_eq!(n.poll_commit(T0 + ms(50)).map(|c| c.replies), Some(1));
}

#[test]
fn the_last_time_of_operation_is_written_every_ten_seconds_without_traffic() {
    let mut store = MemoryStore::new();
    let mut n = booted(standalone_config(CommitPlan::default()), &mut store, T0);
    assert_eq!(n.poll_timeout(), Some(T0 + HEARTBEAT));
    let t = T0 + HEARTBEAT;
    n.handle_timeout(t);
    let c = n.poll_commit(t + ms(5)).unwrap();
    let (_, v) = c
        .batch
        .meta
        .iter()
        .find(|(k, _)| k == META_LAST_OPERATING)
        .unwrap();
    assert_eq!(v.as_slice(), t.unix().secs().to_le_bytes());
    n.commit_done(t, c.seq, Ok(())).unwrap();
    assert_eq!(n.poll_timeout(), Some(t + HEARTBEAT));
}

#[test]
fn the_fingerprint_covers_the_relationships_pools_in_any_order() {
    let text = |pools: &str| {
        format!(
            r#"
[server]
name = "a"
data-dir = "/tmp/x"
listen = ["[2001:db8::1]:547"]

[[subnet]]
prefix = "2001:db8:1::/64"
pools = [{pools}]
failover = "pair-1"

[[subnet]]
prefix = "2001:db8:2::/64"
pools = ["2001:db8:2::100-2001:db8:2::1ff"]

[[failover]]
name = "pair-1"
role = "primary"
listen = "[2001:db8:ff::1]:647"
peer = "[2001:db8:ff::2]:647"
insecure = true
"#
        )
    };
    let a = Config::from_toml_str(
        &text(r#""2001:db8:1::100-2001:db8:1::1ff", "2001:db8:1::300-2001:db8:1::3ff""#),
        std::path::Path::new("/etc/duet"),
    )
    .unwrap();
    let b = Config::from_toml_str(
        &text(r#""2001:db8:1::300-2001:db8:1::3ff", "2001:db8:1::100-2001:db8:1::1ff""#),
        std::path::Path::new("/etc/duet"),
    )
    .unwrap();
    let c = Config::from_toml_str(
        &text(r#""2001:db8:1::100-2001:db8:1::1ff""#),
        std::path::Path::new("/etc/duet"),
    )
    .unwrap();
    assert_eq!(fingerprint(&a, "pair-1"), fingerprint(&b, "pair-1"));
    assert_ne!(fingerprint(&a, "pair-1"), fingerprint(&c, "pair-1"));
    let fp = String::from_utf8(fingerprint(&a, "pair-1")).unwrap();
    assert!(
        !fp.contains("2001:db8:2::"),
        "only the relationship's subnets: {fp}"
    );
    let cfg = NodeConfig::from_config(&a, 1).unwrap();
    assert_eq!(
        cfg.relationships[0].fingerprint.as_deref(),
        Some(fingerprint(&a, "pair-1").as_slice())
    );
    assert_eq!(cfg.relationships[0].ranges, vec![0, 1]);
    assert_eq!(
        cfg.relationships[0].startup_time,
        cfg.relationships[0].keepalive + STARTUP_MARGIN
    );
    assert_eq!(cfg.subnets[1].relationship, None);
}

// ---- two nodes ------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Log {
    /// A commit became durable, with these lease records.
    Durable(Vec<LeaseKey>),
    /// A partner message left, reporting these leases.
    Sent(FailoverMessageType, Vec<LeaseKey>),
    Reply(u32),
    Close,
}

/// Two nodes joined by an in-memory connection, with a shared clock.
struct Duo {
    now: Timestamp,
    nodes: [Node<u32>; 2],
    stores: [FaultyStore<MemoryStore>; 2],
    conn: ConnId,
    up: bool,
    /// Frames vanish (a silent cut).
    cut: bool,
    inbox: [VecDeque<Vec<u8>>; 2],
    log: Vec<(usize, Timestamp, Log)>,
    /// STATE messages checked against the sender's store.
    states_checked: usize,
}

impl Duo {
    fn new() -> Duo {
        let mut stores = [FaultyStore::default(), FaultyStore::default()];
        let p = booted(pair_config(Role::Primary), &mut stores[0], T0);
        let s = booted(pair_config(Role::Secondary), &mut stores[1], T0);
        Duo {
            now: T0,
            nodes: [p, s],
            stores,
            conn: 0,
            up: false,
            cut: false,
            inbox: [VecDeque::new(), VecDeque::new()],
            log: vec![],
            states_checked: 0,
        }
    }

    fn connect(&mut self) {
        self.conn += 1;
        self.up = true;
        for i in [1, 0] {
            self.nodes[i].partner_connected(self.now, 0, self.conn);
        }
    }

    /// Everything each node may do at `now`; false when nothing happened.
    fn pump(&mut self) -> bool {
        let mut any = false;
        for i in 0..2 {
            let now = self.now;
            if self.nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                self.nodes[i].handle_timeout(now);
            }
            while let Some(c) = self.nodes[i].poll_commit(now) {
                any = true;
                let r = self.stores[i].commit(&c.batch);
                if r.is_ok() {
                    let keys = c.batch.leases.iter().map(|l| l.key).collect();
                    self.log.push((i, now, Log::Durable(keys)));
                }
                let _ = self.nodes[i].commit_done(now, c.seq, r);
            }
            // The last STATE of what leaves together: the state it
            // announces is recorded (RFC 8156 §6.3; a transient one, such as
            // a RECOVER-WAIT left at once, may precede it in the group).
            let mut last_state = None;
            while let Some(t) = self.nodes[i].poll_transmit(now) {
                any = true;
                match t {
                    Transmit::Reply(r) => self.log.push((i, now, Log::Reply(r.route))),
                    Transmit::Partner { conn, frame, .. } => {
                        let mut d = FrameDecoder::new();
                        d.push(&frame);
                        let payload = d.next_frame().unwrap().unwrap().to_vec();
                        let Ok(StreamMessage::Failover(m)) = StreamMessage::parse(&payload) else {
                            panic!()
                        };
                        let leases = failover::reported_leases(&m).collect();
                        self.log.push((i, now, Log::Sent(m.msg_type, leases)));
                        if m.msg_type == FailoverMessageType::State {
                            last_state = m.options.iter().find_map(|o| match o {
                                DhcpOption::ServerState(s) => Some(*s),
                                _ => None,
                            });
                        }
                        if self.up && !self.cut && conn == self.conn {
                            self.inbox[1 - i].push_back(payload);
                        }
                    }
                    Transmit::Close { conn, .. } => {
                        self.log.push((i, now, Log::Close));
                        if conn == self.conn && self.up {
                            self.up = false;
                            self.nodes[1 - i].partner_closed(now, 0, conn);
                        }
                    }
                }
            }
            if let Some(shown) = last_state {
                let snap = self.stores[i].load().unwrap();
                let rec: failover::EndpointRecord =
                    serde_json::from_slice(&snap.meta[&meta_endpoint("pair-1")]).unwrap();
                assert_eq!(shown, ServerState::from(rec.state), "node {i} at {now}");
                self.states_checked += 1;
            }
            while let Some(payload) = self.inbox[i].pop_front() {
                any = true;
                if let Ok(StreamMessage::Failover(m)) = StreamMessage::parse(&payload) {
                    let now = self.now;
                    self.nodes[i].partner_message(now, 0, self.conn, &m);
                }
            }
        }
        any
    }

    /// Runs until `end`, jumping from one timer to the next.
    fn run_until(&mut self, end: Timestamp) {
        loop {
            let mut n = 0;
            while self.pump() {
                n += 1;
                assert!(n < 100_000, "livelock at {}", self.now);
            }
            let next = self.nodes.iter().filter_map(Node::poll_timeout).min();
            match next {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => {
                    self.now = end;
                    while self.pump() {}
                    return;
                }
            }
        }
    }

    fn state(&self, i: usize) -> ServerState {
        self.nodes[i].relationships().get(0).unwrap().state()
    }

    fn normal(&mut self) {
        self.connect();
        self.run_until(self.now + Duration::from_secs(3));
        assert_eq!(self.state(0), ServerState::Normal);
        assert_eq!(self.state(1), ServerState::Normal);
        self.log.clear();
    }

    /// When lease `k`'s record became durable at node `i`, and when a BNDUPD
    /// reporting it left.
    fn durable_and_sent(&self, i: usize, k: LeaseKey) -> (Option<usize>, Option<usize>) {
        let d = self
            .log
            .iter()
            .position(|(n, _, l)| *n == i && matches!(l, Log::Durable(ks) if ks.contains(&k)));
        let s = self.log.iter().position(|(n, _, l)| {
            *n == i && matches!(l, Log::Sent(FailoverMessageType::BndUpd, ks) if ks.contains(&k))
        });
        (d, s)
    }
}

#[test]
fn a_bndupd_leaves_after_the_commit_of_its_lease_and_with_the_reply() {
    let mut d = Duo::new();
    d.normal();
    let now = d.now;
    let bytes = d.nodes[0]
        .handle_datagram(now, incoming(&rapid_solicit(9, true)), 9)
        .unwrap()
        .to_vec();
    assert!(!bytes.is_empty());
    d.run_until(d.now + Duration::from_secs(1));
    let granted: BTreeSet<LeaseKey> = d.nodes[0]
        .db()
        .iter()
        .filter(|l| {
            l.binding
                .as_ref()
                .is_some_and(|b| b.duid == client_duid(9).as_bytes())
        })
        .map(|l| l.key)
        .collect();
    assert_eq!(granted.len(), 2);
    for k in &granted {
        let (durable, sent) = d.durable_and_sent(0, *k);
        let (durable, sent) = (durable.unwrap(), sent.unwrap());
        assert!(durable < sent, "{k}: sent before durable: {:?}", d.log);
        let reply = d.log.iter().position(|(_, _, l)| *l == Log::Reply(9)).unwrap();
        assert!(durable < reply);
        // The partner stored it before acknowledging.
        let (pd, ps) = (
            d.log
                .iter()
                .position(|(n, _, l)| *n == 1 && matches!(l, Log::Durable(ks) if ks.contains(k))),
            d.log
                .iter()
                .position(|(n, _, l)| *n == 1 && matches!(l, Log::Sent(FailoverMessageType::BndReply, _))),
        );
        assert!(pd.unwrap() < ps.unwrap());
    }
    // The acknowledgement's bookkeeping rode on a later commit: the
    // primary's table has it, and nothing is pending.
    d.run_until(d.now + Duration::from_secs(2));
    for k in &granted {
        let l = d.nodes[0].db().get(k).unwrap();
        assert!(!l.failover.pending_update, "{k} acknowledged");
        assert!(
            d.stores[0]
                .inner
                .get(k)
                .is_some_and(|s| !s.failover.pending_update),
            "{k} durable"
        );
    }
}

#[test]
fn acknowledgement_bookkeeping_waits_for_a_commit_to_ride_on() {
    let mut d = Duo::new();
    d.normal();
    let now = d.now;
    d.nodes[0]
        .handle_datagram(now, incoming(&rapid_solicit(3, false)), 3)
        .unwrap();
    // Deliver until the BNDREPLY has been handled by the primary.
    d.run_until(d.now + ms(100));
    let key = d.nodes[0]
        .db()
        .iter()
        .find(|l| l.key.kind == LeaseKind::Na && l.binding.is_some())
        .unwrap()
        .key;
    assert!(!d.nodes[0].db().get(&key).unwrap().failover.pending_update);
    assert!(
        d.stores[0].inner.get(&key).unwrap().failover.pending_update,
        "the acknowledgement is not durable yet: it waits up to the lazy delay"
    );
    d.run_until(d.now + Duration::from_secs(1));
    assert!(!d.stores[0].inner.get(&key).unwrap().failover.pending_update);
}

#[test]
fn a_failed_commit_releases_no_partner_message() {
    let mut d = Duo::new();
    d.normal();
    d.stores[0].fail_next = 1;
    let now = d.now;
    d.nodes[0]
        .handle_datagram(now, incoming(&rapid_solicit(4, false)), 4)
        .unwrap();
    d.run_until(d.now + Duration::from_secs(1));
    assert!(
        !d.log.iter().any(
            |(n, _, l)| *n == 0 && matches!(l, Log::Sent(FailoverMessageType::BndUpd, _) | Log::Reply(_))
        ),
        "{:?}",
        d.log
    );
}

#[test]
fn contact_keeps_a_quiet_link_up_and_silence_closes_it_after_the_keepalive() {
    let mut d = Duo::new();
    d.normal();
    // Idle: CONTACTs at a quarter of the keepalive (10 s: every 2 whole s),
    // and the link stays up.
    d.run_until(d.now + Duration::from_secs(20));
    let contacts = d
        .log
        .iter()
        .filter(|(n, _, l)| *n == 0 && matches!(l, Log::Sent(FailoverMessageType::Contact, _)))
        .count();
    assert!((8..=11).contains(&contacts), "{contacts} CONTACTs in 20 s");
    assert!(d.up);
    assert_eq!(d.state(0), ServerState::Normal);
    // A silent cut: nothing arrives; each side closes within the keepalive.
    d.cut = true;
    d.log.clear();
    let cut_at = d.now;
    d.run_until(d.now + Duration::from_secs(12));
    let closed = d
        .log
        .iter()
        .find(|(_, _, l)| *l == Log::Close)
        .map(|(_, t, _)| *t);
    let after = closed.expect("closed").since(cut_at);
    assert!(after <= Duration::from_secs(11), "{after:?}");
    assert_eq!(d.state(0), ServerState::CommunicationsInterrupted);
}

#[test]
fn a_state_message_never_announces_a_state_that_is_not_recorded() {
    let mut d = Duo::new();
    d.normal();
    // Cut the link, so both go to COMMUNICATIONS-INTERRUPTED, then heal;
    // then the operator's PARTNER-DOWN after another cut.
    for _ in 0..2 {
        d.up = false;
        for i in 0..2 {
            let now = d.now;
            d.nodes[i].partner_closed(now, 0, d.conn);
        }
        d.run_until(d.now + ms(10));
        d.connect();
        d.run_until(d.now + Duration::from_secs(2));
        assert_eq!(d.state(0), ServerState::Normal);
    }
    d.up = false;
    let now = d.now;
    d.nodes[1].partner_closed(now, 0, d.conn);
    d.nodes[0].partner_closed(now, 0, d.conn);
    d.nodes[1].partner_down(now, "pair-1").unwrap();
    d.run_until(d.now + ms(10));
    d.connect();
    d.run_until(d.now + Duration::from_secs(5));
    assert!(d.states_checked > 6, "{}", d.states_checked);
}

/// Issue 27: partners must agree on who owns each reserved lease; the
/// fingerprint names the reservation, so a mismatch is refused at CONNECT
/// with the difference (options are not part of it).
#[test]
fn the_fingerprint_covers_reservations() {
    let text = |res: &str| {
        format!(
            r#"
[server]
name = "a"
data-dir = "/tmp/x"
listen = ["[2001:db8::1]:547"]

[[subnet]]
prefix = "2001:db8:1::/64"
pools = ["2001:db8:1::100-2001:db8:1::1ff"]
failover = "pair-1"
reservations = [{res}]

[[failover]]
name = "pair-1"
role = "primary"
listen = "[2001:db8:ff::1]:647"
peer = "[2001:db8:ff::2]:647"
insecure = true
"#
        )
    };
    let cfg = |res: &str| Config::from_toml_str(&text(res), std::path::Path::new("/etc/duet")).unwrap();
    let a = cfg(r#"{ duid = "000300010200", addresses = ["2001:db8:1::105"] }"#);
    let b = cfg(r#"{ duid = "000300010201", addresses = ["2001:db8:1::105"] }"#);
    let c = cfg(
        r#"{ duid = "000300010200", addresses = ["2001:db8:1::105"], options = [{ code = 65000, text = "x" }] }"#,
    );
    assert_ne!(fingerprint(&a, "pair-1"), fingerprint(&b, "pair-1"));
    assert_eq!(fingerprint(&a, "pair-1"), fingerprint(&c, "pair-1"));
    let fp = String::from_utf8(fingerprint(&a, "pair-1")).unwrap();
    assert!(
        fp.contains("reservation duid 00:03:00:01:02:00 2001:db8:1::105"),
        "{fp}"
    );
}
