//! What the node fuzz targets share: a [`Node`] over a memory store, driven
//! as the daemon drives it, fed messages that decode (built from structured
//! input with edge values), and checked after every step:
//!
//! * nothing panics (the targets are built with debug assertions: `-a`);
//! * every reply and every partner frame it emits decodes again, and a
//!   reply fits a datagram;
//! * its queues stay bounded;
//! * no lease is granted to two IAs at once (one client's or two clients'),
//!   and no reply names one lease in two IAs — the simulator's invariant 1
//!   on what one server grants.

use arbitrary::Arbitrary;
use duet_core::config::Role;
use duet_core::dhcp::{Incoming, ServerOptions, Subnet};
use duet_core::failover::EndpointConfig;
use duet_core::lease::{BindingKey, LeaseKey, LeaseKind};
use duet_core::node::{CommitPlan, Node, NodeConfig, Transmit};
use duet_core::store::{LeaseStore, MemoryStore};
use duet_core::time::{Timestamp, UnixTime};
use duet_wire::option::{IaAddr, IaNa, IaPd, IaPrefix, IaTa, Status, VendorOpts, VendorSubOption};
use duet_wire::{
    AbsTime, BindingStatus, ClientMessage, DhcpOption, Duid, FailoverMessage, FailoverMessageType, FrameDecoder,
    Message, MessageType, OptionsExt, RelayMessage, ServerState, StatusCode, StreamMessage, TransactionId,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Duration;

/// Where every run starts (2027-01-15).
pub const START: u64 = 1_800_000_000;
const RANGE: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_1000;
const RELATIONSHIP: &str = "pair-1";

/// A number of seconds, edge values first.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Secs {
    Zero,
    One,
    Small(u8),
    Some(u16),
    Any(u32),
    Half,
    Max,
}

impl Secs {
    pub fn get(self) -> u32 {
        match self {
            Secs::Zero => 0,
            Secs::One => 1,
            Secs::Small(n) => u32::from(n),
            Secs::Some(n) => u32::from(n),
            Secs::Any(n) => n,
            Secs::Half => 1 << 31,
            Secs::Max => u32::MAX,
        }
    }
}

/// An address or prefix: in the pools, next to them, or anywhere.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Place {
    InRange(u8),
    InPool(u8),
    OnLinkOutsideRange(u16),
    OffLink(u32),
    Unspecified,
    Any(u128),
}

impl Place {
    fn address(self) -> Ipv6Addr {
        Ipv6Addr::from(match self {
            Place::InRange(i) | Place::InPool(i) => RANGE + u128::from(i),
            Place::OnLinkOutsideRange(i) => 0x2001_0db8_0001_0000_0000_0000_0002_0000 + u128::from(i),
            Place::OffLink(i) => 0x2001_0db8_0009_0000_0000_0000_0000_0000 + u128::from(i),
            Place::Unspecified => 0,
            Place::Any(a) => a,
        })
    }

    fn prefix(self, len: u8) -> (Ipv6Addr, u8) {
        match self {
            Place::InPool(i) | Place::InRange(i) => (
                Ipv6Addr::from(0x2001_0db8_8000_0000_0000_0000_0000_0000u128 | (u128::from(i) << 72)),
                56,
            ),
            Place::Unspecified => (Ipv6Addr::UNSPECIFIED, len.min(128)),
            other => (other.address(), len.min(128)),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct LeaseSpec {
    pub place: Place,
    pub len: u8,
    pub preferred: Secs,
    pub valid: Secs,
    /// Failover options inside the lease (in BNDUPDs and BNDREPLYs).
    pub status: Option<u8>,
    pub start: Option<Time>,
    pub expiration: Option<Time>,
    pub partner_lifetime: Option<Time>,
    pub clt: Option<Secs>,
    pub code: Option<u16>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct IaSpec {
    /// 0 IA_NA, 1 IA_TA, 2 IA_PD (others: IA_NA).
    pub kind: u8,
    pub iaid: Secs,
    pub t1: Secs,
    pub t2: Secs,
    pub leases: Vec<LeaseSpec>,
    pub status: Option<u16>,
}

/// A time relative to the node's clock: near, far, or absolute.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Time {
    Ago(Secs),
    Ahead(Secs),
    Abs(u32),
}

impl Time {
    fn abs(self, now: UnixTime) -> AbsTime {
        match self {
            Time::Ago(s) => UnixTime(now.secs().saturating_sub(u64::from(s.get()))).to_abs(),
            Time::Ahead(s) => UnixTime(now.secs().saturating_add(u64::from(s.get()))).to_abs(),
            Time::Abs(a) => AbsTime(a),
        }
    }
}

/// A client message that decodes.
#[derive(Arbitrary, Debug, Clone)]
pub struct ClientSpec {
    /// Index into the message types (1–13 and beyond).
    pub ty: u8,
    /// Which client (0..8), or none.
    pub client: Option<u8>,
    /// 0 none, 1 ours, 2 another server's.
    pub server_id: u8,
    pub ias: Vec<IaSpec>,
    /// This many more copies of the first IA with growing IAIDs (up to
    /// 2,500: the messages that emptied a pool).
    pub copies: u16,
    pub rapid_commit: bool,
    pub oro: Vec<u16>,
    pub elapsed: Option<u16>,
    /// Relay levels around it (0: from a client on the link).
    pub relays: u8,
    pub link: Place,
    pub interface_id: Vec<u8>,
    pub multicast: bool,
}

/// A failover message that decodes (after CONNECT).
#[derive(Arbitrary, Debug, Clone)]
pub struct PartnerSpec {
    /// 24..=35 and beyond.
    pub ty: u8,
    pub xid: u32,
    pub sent: Time,
    pub client: Option<u8>,
    pub ias: Vec<IaSpec>,
    pub copies: u16,
    /// A top-level IAPREFIX (a prefix bound to no client).
    pub prefix: Option<LeaseSpec>,
    pub state: Option<u8>,
    pub flags: Option<u8>,
    pub start: Option<Time>,
    pub partner_down: Option<Time>,
    pub mclt: Option<Secs>,
    pub max_unacked: Option<Secs>,
    pub keepalive: Option<Secs>,
    pub version: Option<(u16, u16)>,
    pub name: Option<bool>,
    pub status: Option<u16>,
    pub fingerprint: Option<bool>,
    pub connect_flags: Option<u16>,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Client(ClientSpec),
    Partner(PartnerSpec),
    /// Time passes: whole seconds.
    Advance(Secs),
    /// A few milliseconds pass (commit plan, partner groups).
    Tick(u8),
    /// The partner link goes down and comes back.
    Reconnect,
    /// The operator's partner-down.
    PartnerDown,
    Shutdown,
}

fn duid(n: u8) -> Duid<'static> {
    Duid::new(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, n % 8]).unwrap_or_else(|_| unreachable!())
}

fn lease_option(l: &LeaseSpec, pd: bool, now: UnixTime, failover: bool) -> DhcpOption<'static> {
    let mut options = Vec::new();
    if failover {
        if let Some(s) = l.status {
            options.push(DhcpOption::BindingStatus(BindingStatus::from(s)));
        }
        if let Some(t) = l.start {
            options.push(DhcpOption::StartTimeOfState(t.abs(now)));
        }
        if let Some(t) = l.expiration {
            options.push(DhcpOption::StateExpirationTime(t.abs(now)));
            options.push(DhcpOption::ExpirationTime(t.abs(now)));
        }
        if let Some(t) = l.partner_lifetime {
            options.push(DhcpOption::PartnerLifetime(t.abs(now)));
            options.push(DhcpOption::PartnerLifetimeSent(t.abs(now)));
        }
        if let Some(c) = l.clt {
            options.push(DhcpOption::CltTime(c.get()));
        }
    }
    if let Some(c) = l.code {
        options.push(DhcpOption::StatusCode(Status::new(StatusCode::from(c), "fuzz")));
    }
    if pd {
        let (prefix, prefix_len) = l.place.prefix(l.len);
        DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: l.preferred.get(),
            valid_lifetime: l.valid.get(),
            prefix_len,
            prefix,
            options,
        })
    } else {
        DhcpOption::IaAddr(IaAddr {
            address: l.place.address(),
            preferred_lifetime: l.preferred.get(),
            valid_lifetime: l.valid.get(),
            options,
        })
    }
}

fn ia_options(ias: &[IaSpec], copies: u16, now: UnixTime, failover: bool) -> Vec<DhcpOption<'static>> {
    let mut out = Vec::new();
    let one = |ia: &IaSpec, iaid: u32| {
        let pd = ia.kind % 3 == 2;
        let mut options: Vec<DhcpOption<'static>> = ia
            .leases
            .iter()
            .take(16)
            .map(|l| lease_option(l, pd, now, failover))
            .collect();
        if let Some(c) = ia.status {
            options.push(DhcpOption::StatusCode(Status::new(StatusCode::from(c), "fuzz")));
        }
        match ia.kind % 3 {
            1 => DhcpOption::IaTa(IaTa { iaid, options }),
            2 => DhcpOption::IaPd(IaPd {
                iaid,
                t1: ia.t1.get(),
                t2: ia.t2.get(),
                options,
            }),
            _ => DhcpOption::IaNa(IaNa {
                iaid,
                t1: ia.t1.get(),
                t2: ia.t2.get(),
                options,
            }),
        }
    };
    for ia in ias.iter().take(64) {
        out.push(one(ia, ia.iaid.get()));
    }
    if let Some(first) = ias.first() {
        for i in 0..u32::from(copies.min(2500)) {
            out.push(one(first, first.iaid.get().wrapping_add(i).wrapping_add(1)));
        }
    }
    out
}

/// The client message `c` describes, encoded (relayed if asked); `None`
/// when it is too large to encode (the builder's fault, not the node's).
pub fn client_datagram(c: &ClientSpec, ours: &Duid<'static>, now: UnixTime) -> Option<(Vec<u8>, bool)> {
    let types = [
        MessageType::Solicit,
        MessageType::Request,
        MessageType::Confirm,
        MessageType::Renew,
        MessageType::Rebind,
        MessageType::Release,
        MessageType::Decline,
        MessageType::InformationRequest,
        MessageType::Advertise,
        MessageType::Reply,
    ];
    let ty = types.get(usize::from(c.ty)).copied().unwrap_or(MessageType::from(c.ty));
    let mut m = ClientMessage::new(ty, TransactionId::from_low_bits(u32::from(c.ty) << 8));
    if let Some(n) = c.client {
        m.options.push(DhcpOption::ClientId(duid(n)));
    }
    match c.server_id {
        1 => m.options.push(DhcpOption::ServerId(ours.clone())),
        2 => m.options.push(DhcpOption::ServerId(duid(99))),
        _ => {}
    }
    if c.rapid_commit {
        m.options.push(DhcpOption::RapidCommit);
    }
    if !c.oro.is_empty() {
        m.options.push(DhcpOption::Oro(c.oro.iter().take(64).copied().collect()));
    }
    if let Some(e) = c.elapsed {
        m.options.push(DhcpOption::ElapsedTime(e));
    }
    m.options.extend(ia_options(&c.ias, c.copies, now, false));
    let mut msg = Message::Client(m);
    for level in 0..c.relays.min(40) {
        let mut options = Vec::new();
        if !c.interface_id.is_empty() {
            options.push(DhcpOption::InterfaceId(Cow::Owned(c.interface_id.iter().take(256).copied().collect())));
        }
        options.push(DhcpOption::RelayMsg(Box::new(msg)));
        msg = Message::Relay(RelayMessage {
            msg_type: MessageType::RelayForw,
            hop_count: level,
            link_address: if level == 0 { c.link.address() } else { Ipv6Addr::UNSPECIFIED },
            peer_address: "fe80::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
            options,
        });
    }
    let bytes = msg.to_vec().ok()?;
    (bytes.len() <= 65_527).then_some((bytes, c.multicast || c.relays > 0))
}

/// The failover message `p` describes.
pub fn partner_message(p: &PartnerSpec, fingerprint: &[u8], mclt: u32, now: UnixTime) -> FailoverMessage<'static> {
    let types = [
        FailoverMessageType::BndUpd,
        FailoverMessageType::BndReply,
        FailoverMessageType::PoolReq,
        FailoverMessageType::PoolResp,
        FailoverMessageType::UpdReq,
        FailoverMessageType::UpdReqAll,
        FailoverMessageType::UpdDone,
        FailoverMessageType::Connect,
        FailoverMessageType::ConnectReply,
        FailoverMessageType::Disconnect,
        FailoverMessageType::State,
        FailoverMessageType::Contact,
    ];
    let ty = types
        .get(usize::from(p.ty))
        .copied()
        .unwrap_or(FailoverMessageType::from(p.ty));
    let mut m = FailoverMessage::new(ty, TransactionId::from_low_bits(p.xid), p.sent.abs(now));
    if p.client.is_some() || !p.ias.is_empty() {
        let mut cd = Vec::new();
        if let Some(n) = p.client {
            cd.push(DhcpOption::ClientId(duid(n)));
            cd.push(DhcpOption::LqBaseTime(now.to_abs()));
        }
        cd.extend(ia_options(&p.ias, p.copies, now, true));
        m.options.push(DhcpOption::ClientData(cd));
    }
    if let Some(l) = &p.prefix {
        let mut o = lease_option(l, true, now, true);
        if let DhcpOption::IaPrefix(x) = &mut o {
            x.options.insert(0, DhcpOption::LqBaseTime(now.to_abs()));
        }
        m.options.push(o);
    }
    if let Some(s) = p.state {
        m.options.push(DhcpOption::ServerState(ServerState::from(s)));
    }
    if let Some(f) = p.flags {
        m.options.push(DhcpOption::ServerFlags(f));
    }
    if let Some(t) = p.start {
        m.options.push(DhcpOption::StartTimeOfState(t.abs(now)));
    }
    if let Some(t) = p.partner_down {
        m.options.push(DhcpOption::PartnerDownTime(t.abs(now)));
    }
    if let Some(v) = p.mclt {
        m.options.push(DhcpOption::Mclt(if v.get() == 0 { mclt } else { v.get() }));
    }
    if let Some(v) = p.max_unacked {
        m.options.push(DhcpOption::MaxUnackedBndupd(v.get()));
    }
    if let Some(v) = p.keepalive {
        m.options.push(DhcpOption::KeepaliveTime(v.get()));
    }
    if let Some((major, minor)) = p.version {
        m.options.push(DhcpOption::ProtocolVersion { major, minor });
    }
    if let Some(right) = p.name {
        let name = if right { RELATIONSHIP.to_string() } else { "another".to_string() };
        m.options.push(DhcpOption::RelationshipName(Cow::Owned(name)));
    }
    if let Some(c) = p.status {
        m.options.push(DhcpOption::StatusCode(Status::new(StatusCode::from(c), "fuzz")));
    }
    if let Some(right) = p.fingerprint {
        let fp = if right { fingerprint.to_vec() } else { b"other".to_vec() };
        m.options.push(DhcpOption::VendorOpts(VendorOpts {
            enterprise_number: duet_core::failover::FINGERPRINT_ENTERPRISE,
            options: vec![VendorSubOption {
                code: duet_core::failover::FINGERPRINT_SUBOPTION,
                data: Cow::Owned(fp),
            }],
        }));
    }
    if let Some(f) = p.connect_flags {
        m.options.push(DhcpOption::ConnectFlags(f));
    }
    m
}

/// A server under test, with its store and the checker's view.
pub struct Harness {
    pub node: Node<u32>,
    pub store: MemoryStore,
    pub now: Timestamp,
    pub conn: Option<u64>,
    next_conn: u64,
    pub role: Option<Role>,
    fingerprint: Vec<u8>,
    mclt: u32,
    /// Leases the node granted: lease → (binding, valid until).
    granted: BTreeMap<LeaseKey, (BindingKey, UnixTime)>,
    datagrams: u64,
}

fn subnet(rel: Option<usize>) -> Subnet {
    Subnet {
        prefix: "2001:db8:1::/64".parse().unwrap_or_else(|_| unreachable!()),
        interface: Some("eth0".into()),
        ranges: vec![(Ipv6Addr::from(RANGE), Ipv6Addr::from(RANGE + 0xff))],
        pd_pools: vec![("2001:db8:8000::/48".parse().unwrap_or_else(|_| unreachable!()), 56)],
        preferred_lifetime: Duration::from_secs(3000),
        valid_lifetime: Duration::from_secs(4000),
        renew_time: Duration::from_secs(1000),
        rebind_time: Duration::from_secs(2000),
        dns_servers: vec![Ipv6Addr::LOCALHOST],
        domain_search: vec![],
        preference: 3,
        rapid_commit: true,
        relationship: rel,
    }
}

impl Harness {
    /// A standalone server (`role` none) or one partner of a pair.
    pub fn new(role: Option<Role>, seed: u64) -> Harness {
        let fingerprint = b"fuzz pools".to_vec();
        let mclt = 60;
        let relationships = role
            .map(|role| EndpointConfig {
                name: RELATIONSHIP.into(),
                role,
                mclt: Duration::from_secs(u64::from(mclt)),
                max_unacked_bndupd: 10,
                keepalive: Duration::from_secs(10),
                auto_partner_down: Some(Duration::from_secs(30)),
                prefix_split: 0.5,
                startup_time: Duration::from_secs(15),
                scan_interval: Duration::from_secs(30),
                ranges: vec![0],
                pd_pools: vec![0],
                fingerprint: Some(fingerprint.clone()),
            })
            .into_iter()
            .collect();
        let cfg = NodeConfig {
            subnets: vec![subnet(role.map(|_| 0))],
            options: ServerOptions::default(),
            relationships,
            plan: CommitPlan::default(),
            seed,
        };
        let mut store = MemoryStore::new();
        let now = Timestamp::from_unix(UnixTime(START));
        let snap = store.load().unwrap_or_default();
        let (node, _) = Node::boot(cfg, snap, now);
        let mut h = Harness {
            node,
            store,
            now,
            conn: None,
            next_conn: 1,
            role,
            fingerprint,
            mclt,
            granted: BTreeMap::new(),
            datagrams: 0,
        };
        h.drive();
        h
    }

    /// Brings the partner link up (and, for a secondary, sends a good
    /// CONNECT; for a primary, answers its CONNECT) and the partner's
    /// STATE, so that later messages meet an established connection.
    pub fn connect(&mut self, partner_state: ServerState) {
        if self.role.is_none() {
            return;
        }
        if let Some(c) = self.conn.take() {
            self.node.partner_closed(self.now, 0, c);
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conn = Some(conn);
        self.node.partner_connected(self.now, 0, conn);
        let now = self.now.unix();
        let handshake = if self.role == Some(Role::Secondary) {
            FailoverMessageType::Connect
        } else {
            FailoverMessageType::ConnectReply
        };
        let mut m = FailoverMessage::new(handshake, TransactionId::from_low_bits(1), now.to_abs());
        m.options.push(DhcpOption::ProtocolVersion { major: 1, minor: 0 });
        m.options.push(DhcpOption::Mclt(self.mclt));
        m.options.push(DhcpOption::KeepaliveTime(10));
        m.options.push(DhcpOption::MaxUnackedBndupd(100));
        m.options
            .push(DhcpOption::RelationshipName(Cow::Borrowed(RELATIONSHIP)));
        m.options.push(DhcpOption::VendorOpts(VendorOpts {
            enterprise_number: duet_core::failover::FINGERPRINT_ENTERPRISE,
            options: vec![VendorSubOption {
                code: duet_core::failover::FINGERPRINT_SUBOPTION,
                data: Cow::Owned(self.fingerprint.clone()),
            }],
        }));
        self.drive();
        self.partner(&m);
        let mut s = FailoverMessage::new(FailoverMessageType::State, TransactionId::from_low_bits(2), now.to_abs());
        s.options.push(DhcpOption::ServerState(partner_state));
        s.options.push(DhcpOption::ServerFlags(duet_wire::failover::SERVER_FLAG_COMMUNICATED));
        s.options.push(DhcpOption::StartTimeOfState(now.to_abs()));
        self.partner(&s);
    }

    /// Delivers `m` on the current connection, then drives.
    pub fn partner(&mut self, m: &FailoverMessage<'_>) {
        // Through the codec, as the daemon receives it.
        let mut frame = Vec::new();
        if StreamMessage::Failover(m.clone()).encode_frame(&mut frame).is_err() {
            return;
        }
        let mut d = FrameDecoder::new();
        d.push(&frame);
        let Ok(Some(payload)) = d.next_frame() else { return };
        let Ok(StreamMessage::Failover(parsed)) = StreamMessage::parse(payload) else {
            panic!("a frame we encoded does not decode")
        };
        if let Some(c) = self.conn {
            self.node.partner_message(self.now, 0, c, &parsed);
        }
        self.drive();
    }

    /// One client datagram, then drive.
    pub fn client(&mut self, c: &ClientSpec) {
        let ours = self.node.duid().clone();
        let Some((bytes, multicast)) = client_datagram(c, &ours, self.now.unix()) else {
            return;
        };
        self.datagrams += 1;
        let source = if c.relays > 0 {
            "2001:db8:ff::2".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)
        } else {
            "fe80::2".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)
        };
        let incoming = Incoming {
            payload: &bytes,
            source,
            interface: Some("eth0"),
            multicast,
        };
        let _ = self.node.handle_datagram(self.now, incoming, self.datagrams as u32);
        // Releases and Declines of what is held: the checker forgets them
        // once the server answers (the node's reply follows).
        if let Ok(Message::Client(m)) = Message::parse(&bytes)
            .map(|m| m.unwrap_relays().map(|(c, _)| Message::Client(c.clone())).unwrap_or(m))
        {
            if matches!(m.msg_type, MessageType::Release | MessageType::Decline) {
                if let Some(d) = m.options.client_id() {
                    for (ia, l) in m.options.ia_leases() {
                        let key = LeaseKey::of(&l);
                        let Some(kind) = LeaseKind::of_ia(ia.kind) else { continue };
                        let bk = BindingKey {
                            duid: d.as_bytes().to_vec(),
                            kind,
                            iaid: ia.iaid,
                        };
                        if self.granted.get(&key).is_some_and(|(b, _)| *b == bk) {
                            self.granted.remove(&key);
                        }
                    }
                }
            }
        }
        self.drive();
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.node.handle_timeout(self.now);
        self.drive();
    }

    /// Everything the node wants done now: commits, then sends, checking
    /// each, then events; then the bounds.
    pub fn drive(&mut self) {
        for _ in 0..64 {
            let mut busy = false;
            while let Some(c) = self.node.poll_commit(self.now) {
                busy = true;
                assert!(self.store.commit(&c.batch).is_ok());
                assert!(self.node.commit_done(self.now, c.seq, Ok(())).is_ok());
            }
            while let Some(t) = self.node.poll_transmit(self.now) {
                busy = true;
                self.check(t);
            }
            while self.node.poll_event().is_some() {}
            if self.node.poll_timeout().is_some_and(|t| t <= self.now) {
                self.node.handle_timeout(self.now);
                busy = true;
            }
            if !busy {
                break;
            }
        }
        let b = self.node.backlog();
        // Bounded: at most the replies of this step, and partner messages
        // within twice the in-flight cap plus the groups' size.
        assert!(b.replies <= 1, "{b:?}");
        assert!(
            b.partner <= 2 * duet_core::failover::MAX_UNACKED_BNDUPD_CAP as usize + 64,
            "{b:?}"
        );
    }

    fn check(&mut self, t: Transmit<u32>) {
        match t {
            Transmit::Reply(r) => {
                assert!(r.bytes.len() <= 65_527, "a reply of {} bytes", r.bytes.len());
                let m = Message::parse(&r.bytes).expect("every reply decodes");
                let (c, _) = m.unwrap_relays().expect("a reply unwraps to a client message");
                if c.msg_type != MessageType::Reply {
                    return;
                }
                let Some(d) = c.options.client_id() else { return };
                let now = self.now.unix();
                let mut seen: Vec<LeaseKey> = Vec::new();
                for (ia, l) in c.options.ia_leases().filter(|(_, l)| l.valid_lifetime > 0) {
                    let key = LeaseKey::of(&l);
                    assert!(!seen.contains(&key), "{key} in two IAs of one reply");
                    seen.push(key);
                    let Some(kind) = LeaseKind::of_ia(ia.kind) else { continue };
                    let bk = BindingKey {
                        duid: d.as_bytes().to_vec(),
                        kind,
                        iaid: ia.iaid,
                    };
                    let until = UnixTime(now.secs().saturating_add(u64::from(l.valid_lifetime)));
                    if let Some((holder, end)) = self.granted.get(&key) {
                        assert!(
                            *holder == bk || *end <= now,
                            "{key} granted to {bk:?} while {holder:?} holds it until {end}"
                        );
                    }
                    self.granted.insert(key, (bk, until));
                }
            }
            Transmit::Partner { frame, .. } => {
                let mut d = FrameDecoder::new();
                d.push(&frame);
                let payload = d
                    .next_frame()
                    .expect("a frame we emit is well framed")
                    .expect("a whole frame");
                StreamMessage::parse(payload).expect("every partner message we emit decodes");
            }
            Transmit::Close { .. } => {
                self.conn = None;
            }
        }
    }

    pub fn op(&mut self, op: &Op) {
        match op {
            Op::Client(c) => self.client(c),
            Op::Partner(p) => {
                let m = partner_message(p, &self.fingerprint, self.mclt, self.now.unix());
                self.partner(&m);
            }
            Op::Advance(s) => self.advance(Duration::from_secs(u64::from(s.get()).min(400 * 86_400))),
            Op::Tick(ms) => self.advance(Duration::from_millis(u64::from(*ms))),
            Op::Reconnect => self.connect(ServerState::Normal),
            Op::PartnerDown => {
                let _ = self.node.partner_down(self.now, RELATIONSHIP);
                self.drive();
            }
            Op::Shutdown => {
                self.node.shutdown(self.now);
                self.drive();
            }
        }
    }
}
