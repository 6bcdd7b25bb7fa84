//! `duet serve`: the daemon. The only place with sockets, threads, files
//! and clocks; every decision is made by `duet_core`.
//!
//! ```text
//! UDP sockets ──(bounded queue: their receive buffers, server.queue-size;
//!               the kernel drops and counts what overflows: socket-drops)
//!   ──▶ processing task, which reads up to batch-max datagrams per round
//!        itself (no receive task, no hand-off): decode, process, update
//!        the in-memory lease db
//!          ├─ replies that change nothing (Advertise, …): sent at once
//!          └─ replies with changes ──▶ store writer
//!                 group commit (one fsync for everything processed since
//!                 the last one) ──▶ then send the replies; a small commit
//!                 runs on this thread, a large one on a blocking thread
//!                 while this one goes on (its report: a channel)
//!   every datagram to a client leaves through the pacer (`pace`): at once
//!   while its token bucket has tokens, else queued and released by this
//!   loop at server.send-rate (the burst after a slow fsync)
//! control socket (HTTP/JSON) ◀──query channel──▶ processing task
//! ```

pub mod control;
pub mod deadline;
pub mod filter;
pub mod pace;
pub mod partner;
pub mod stats;
pub mod udp;
pub mod writer;

use crate::api::{LeaseJson, RelationshipJson, ServerJson, StatusJson};
use anyhow::{bail, Context};
use control::Query;
use deadline::Deadline;
use duet_core::config::Config;
use duet_core::dhcp::{Dhcpv6Server, Incoming, Outcome, ServerOptions, Subnet};
use duet_core::failover::{EndpointConfig, EndpointRecord, Event, FailoverEndpoint, Relationships};
use duet_core::lease::{Lease, LeaseKind};
use duet_core::store::{Batch, LeaseStore};
use duet_core::time::UnixTime;
use duet_wire::{DomainName, Duid};
use partner::{Outbox, Outgoing, PartnerEvent};
use stats::Stats;
use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use writer::{Job, OutReply, Outbound, META_LAST_OPERATING};

/// Metadata key of the server DUID in the store.
pub const META_SERVER_DUID: &str = "server-duid";

/// Metadata key of a failover endpoint's persisted record.
pub fn meta_endpoint(name: &str) -> String {
    format!("failover/{name}")
}

/// How long STARTUP waits to hear from the partner (RFC 8156 §8.3.2 step
/// 3), beyond the relationship's keepalive: by then a partner still holding
/// our previous connection has noticed it is gone (the setting duet-sim
/// validates).
pub const STARTUP_MARGIN: Duration = Duration::from_secs(5);

/// The wall clock as the core wants it. The only clock read of the daemon's
/// packet path: once per datagram.
pub fn now() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// One received datagram.
struct Packet<'a> {
    socket: usize,
    data: &'a [u8],
    recv: udp::Received,
}

/// Builds the processing subnets from the configuration.
pub fn subnets(cfg: &Config) -> anyhow::Result<Vec<Subnet>> {
    cfg.subnets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let domain_search = s
                .domain_search
                .iter()
                .map(|d| {
                    DomainName::from_text(d, true)
                        .map_err(|e| anyhow::anyhow!("subnet[{i}].domain-search: {d}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(Subnet {
                prefix: s.prefix,
                interface: s.interface.clone(),
                ranges: s.pools.iter().map(|r| (r.start, r.end)).collect(),
                pd_pools: s
                    .pd_pools
                    .iter()
                    .map(|p| (p.prefix, p.delegated_length))
                    .collect(),
                preferred_lifetime: s.preferred_lifetime,
                valid_lifetime: s.valid_lifetime,
                renew_time: s.renew_time,
                rebind_time: s.rebind_time,
                dns_servers: s.dns_servers.clone(),
                domain_search,
                preference: s.preference,
                rapid_commit: s.rapid_commit,
                relationship: s
                    .failover
                    .as_ref()
                    .and_then(|name| cfg.failover.iter().position(|r| &r.name == name)),
            })
        })
        .collect()
}

/// Opens the lease store in the data directory.
pub fn open_store(cfg: &Config) -> anyhow::Result<Box<dyn LeaseStore>> {
    let store = duet_store::JournalStore::open(&cfg.server.data_dir)
        .with_context(|| format!("opening the lease store in {}", cfg.server.data_dir.display()))?;
    Ok(Box::new(store))
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Falls back to the clock only if the OS has no randomness at all.
    if getrandom::fill(&mut b).is_err() {
        return now().secs() ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
}

/// The server DUID from the store, or a new DUID-UUID (RFC 8415 §11.5,
/// RFC 6355) made durable before first use.
fn server_duid(
    store: &mut dyn LeaseStore,
    meta: &std::collections::BTreeMap<String, Vec<u8>>,
) -> anyhow::Result<Duid<'static>> {
    if let Some(b) = meta.get(META_SERVER_DUID) {
        return Duid::new(b.clone()).map_err(|e| anyhow::anyhow!("stored server DUID is invalid: {e}"));
    }
    let mut uuid = [0u8; 16];
    getrandom::fill(&mut uuid).map_err(|e| anyhow::anyhow!("no randomness for the server DUID: {e}"))?;
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut bytes = vec![0, 4];
    bytes.extend_from_slice(&uuid);
    store.commit(&Batch {
        leases: vec![],
        meta: vec![(META_SERVER_DUID.to_string(), bytes.clone())],
    })?;
    let duid = Duid::new(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(duid = %duid, "generated the server DUID");
    Ok(duid)
}

/// Lease records as the control API shows them.
pub fn lease_json(l: &Lease, relationship: Option<String>) -> LeaseJson {
    LeaseJson {
        kind: l.key.kind.to_string(),
        address: (l.key.kind == LeaseKind::Na).then(|| l.key.prefix.addr().to_string()),
        prefix: (l.key.kind == LeaseKind::Pd).then(|| l.key.prefix.to_string()),
        duid: l
            .binding
            .as_ref()
            .map(|b| b.duid.iter().map(|x| format!("{x:02x}")).collect()),
        iaid: l.binding.as_ref().map(|b| b.iaid),
        state: l.state.name().to_string(),
        valid_until: l.valid_until.secs(),
        preferred_until: l.preferred_until.secs(),
        relationship,
    }
}

/// The canonical description of a relationship's subnets and pools, one
/// item per line: the configuration fingerprint both partners compare at
/// CONNECT (docs/failover.md, "config drift").
pub fn fingerprint(cfg: &Config, name: &str) -> Vec<u8> {
    let mut lines = Vec::new();
    for s in cfg.subnets.iter().filter(|s| s.failover.as_deref() == Some(name)) {
        lines.push(format!("subnet {}", s.prefix));
        for p in &s.pools {
            lines.push(format!("subnet {} pool {}", s.prefix, p));
        }
        for p in &s.pd_pools {
            lines.push(format!(
                "subnet {} pd-pool {}/{}",
                s.prefix, p.prefix, p.delegated_length
            ));
        }
    }
    lines.sort();
    lines.join("\n").into_bytes()
}

/// Runs the server until SIGTERM / SIGINT.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    // One thread for everything async (receive, processing, partner link,
    // control, and the store writer's small commits): the core is
    // single-threaded by design, and reading the sockets and committing on
    // the processing thread saves thread wake-ups per datagram. Large
    // commits use the runtime's blocking pool (see `writer::Writer`).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(cfg))
}

/// Everything the processing task owns.
struct Core {
    cfg: Config,
    srv: Dhcpv6Server,
    rels: Relationships,
    /// Current partner connection per relationship.
    conns: Vec<Option<u64>>,
    duid: Duid<'static>,
    started: Instant,
    stats: Arc<Stats>,
    ifnames: HashMap<u32, String>,
    sockets: Vec<Arc<UdpSocket>>,
    /// Where datagrams to clients and relays leave (paced).
    out: Outbound,
    /// Whether a failover state changed since the kernel filter was last
    /// brought up to date.
    filter_stale: bool,
    /// What the kernel filter now covers.
    filtered: filter::Quiet,
}

impl Core {
    /// Moves what the failover endpoints produced into `job`: records to
    /// persist first, then messages (the writer sends them after the commit).
    fn drain_engines(&mut self, job: &mut Job) {
        for (i, ep) in self.rels.0.iter_mut().enumerate() {
            let (leases, record) = ep.poll_persist();
            job.changes.extend(leases);
            if let Some(r) = record {
                match serde_json::to_vec(&r) {
                    Ok(b) => job.meta.push((meta_endpoint(ep.name()), b)),
                    Err(e) => tracing::error!(error = %e, "cannot encode the failover record"),
                }
            }
            // Messages go to the connection they were made for; a later one
            // never receives them (see `writer::send_partner`).
            let conn = self.conns.get(i).copied().flatten();
            while let Some(m) = ep.poll_transmit() {
                let mut frame = Vec::new();
                match duet_wire::StreamMessage::Failover(m).encode_frame(&mut frame) {
                    Ok(()) => job.partner.push((i, conn, Outgoing::Frame(frame))),
                    Err(e) => tracing::error!(error = %e, "cannot encode a failover message"),
                }
            }
            while let Some(e) = ep.poll_event() {
                match e {
                    Event::StateChanged { from, to } => {
                        tracing::info!(relationship = %ep.name(), %from, %to, "failover state changed");
                        self.filter_stale = true;
                    }
                    Event::CommunicationsOk => tracing::info!(relationship = %ep.name(), "communications OK"),
                    Event::CommunicationsLost => {
                        tracing::warn!(relationship = %ep.name(), "communications lost")
                    }
                    Event::Close(reason) => {
                        tracing::warn!(relationship = %ep.name(), %reason, "closing the partner connection");
                        job.partner.push((i, conn, Outgoing::Close));
                    }
                    Event::ConnectRefused(reason) => {
                        tracing::warn!(relationship = %ep.name(), %reason, "partner refused our CONNECT")
                    }
                    Event::Notice(text) => tracing::info!(relationship = %ep.name(), "{text}"),
                }
            }
        }
    }

    /// Lease records just changed by DHCPv6 processing or the lease timers:
    /// their lazy updates are queued now and leave with the commit.
    fn leases_changed(&mut self, now: UnixTime, changes: &[Lease]) {
        if changes.is_empty() {
            return;
        }
        let (rels, srv) = (&mut self.rels, &mut self.srv);
        for ep in rels.0.iter_mut() {
            ep.leases_changed(now, changes.iter(), srv.db_mut());
        }
    }

    fn handle_packet(&mut self, pkt: Packet<'_>, job: &mut Job) {
        let multicast = pkt.recv.dst.is_some_and(|d| d.is_multicast());
        let incoming = Incoming {
            payload: pkt.data,
            source: *pkt.recv.source.ip(),
            interface: self.ifnames.get(&pkt.recv.ifindex).map(String::as_str),
            multicast,
        };
        let now = now();
        match self.srv.handle(now, incoming, &self.rels) {
            Outcome::Dropped(d) => {
                self.stats.count_drop(d.name());
                tracing::debug!(from = %pkt.recv.source, reason = %d, "dropped");
            }
            Outcome::Reply(r) => {
                let src = pkt.recv.dst.filter(|d| !d.is_multicast());
                // A Relay-reply goes to the relay's source port: 547 for every
                // standard relay (RFC 8415 §18.3.10), and whatever port a relay
                // using RFC 8357's source-port behaviour (or `duet demo`) sent from.
                let port = if r.port == duet_core::dhcp::SERVER_PORT {
                    pkt.recv.source.port()
                } else {
                    r.port
                };
                let out = OutReply {
                    socket: pkt.socket,
                    bytes: r.bytes,
                    to: r.to,
                    port,
                    ifindex: pkt.recv.ifindex,
                    src,
                };
                if r.changes.is_empty() {
                    // Nothing to make durable: answer at once.
                    self.out.send(Instant::now(), [out]);
                } else {
                    self.leases_changed(now, &r.changes);
                    job.changes.extend(r.changes);
                    job.replies.push(out);
                }
            }
        }
    }

    /// Handles one partner event; `true` when it was a BNDREPLY, whose only
    /// effects are acknowledgement bookkeeping and further queued updates
    /// (see [`Job::lazy`]).
    fn handle_partner(&mut self, ev: PartnerEvent) -> bool {
        let ack_only = matches!(&ev, PartnerEvent::Message { msg, .. } if msg.msg_type == duet_wire::FailoverMessageType::BndReply);
        self.handle_partner_event(ev);
        ack_only
    }

    fn handle_partner_event(&mut self, ev: PartnerEvent) {
        let now = now();
        let (rels, srv) = (&mut self.rels, &mut self.srv);
        match ev {
            PartnerEvent::Connected { rel, conn } => {
                let Some(ep) = rels.0.get_mut(rel) else { return };
                if let Some(slot) = self.conns.get_mut(rel) {
                    if slot.is_some() {
                        ep.handle_closed(now, srv.db_mut());
                    }
                    *slot = Some(conn);
                }
                tracing::debug!(relationship = %ep.name(), "partner connection established; CONNECT exchange follows");
                ep.handle_connected(now);
            }
            PartnerEvent::Message { rel, conn, msg } => {
                if self.conns.get(rel).copied().flatten() == Some(conn) {
                    if let Some(ep) = rels.0.get_mut(rel) {
                        ep.handle_message(now, &msg, srv.db_mut());
                    }
                }
            }
            PartnerEvent::Closed { rel, conn, reason } => {
                if self.conns.get(rel).copied().flatten() == Some(conn) {
                    if let Some(slot) = self.conns.get_mut(rel) {
                        *slot = None;
                    }
                    if let Some(ep) = rels.0.get_mut(rel) {
                        if ep.communications_ok() {
                            tracing::info!(relationship = %ep.name(), %reason, "partner link down");
                        } else {
                            tracing::debug!(relationship = %ep.name(), %reason, "partner connection ended before communications were OK");
                        }
                        ep.handle_closed(now, srv.db_mut());
                    }
                }
            }
        }
    }

    /// Brings the kernel filter of the DHCPv6 sockets up to date with the
    /// failover states (see [`filter`]): where no subnet answers new
    /// clients, the sockets get one; when nothing is quiet, none.
    fn update_filter(&mut self) {
        self.filter_stale = false;
        if !self.cfg.server.kernel_filter {
            return;
        }
        let links = self.srv.quiet_links(&self.rels);
        let mut ifindexes: Vec<u32> = links
            .interfaces
            .iter()
            .filter_map(|name| self.ifnames.iter().find(|(_, n)| *n == name).map(|(i, _)| *i))
            .collect();
        ifindexes.sort_unstable();
        let quiet = filter::Quiet {
            ifindexes,
            prefixes: links.prefixes,
        };
        if quiet == self.filtered {
            return;
        }
        let prog = match filter::program(&quiet, self.duid.as_bytes()) {
            Ok(p) => Some(p),
            Err(filter::FilterError::Nothing) => None,
            Err(e) => {
                tracing::warn!(error = %e, "no kernel filter: every client message will be seen");
                None
            }
        };
        let mut failed = false;
        for sock in &self.sockets {
            if let Err(e) = filter::apply(sock.as_ref(), prog.as_deref()) {
                tracing::warn!(error = %e, "cannot set the kernel filter on a socket; it sees every client message");
                failed = true;
            }
        }
        if failed {
            return; // tried again at the next state change
        }
        if prog.is_some() {
            let names: Vec<&str> = quiet
                .ifindexes
                .iter()
                .filter_map(|i| self.ifnames.get(i).map(String::as_str))
                .collect();
            let prefixes: Vec<String> = quiet.prefixes.iter().map(ToString::to_string).collect();
            tracing::info!(interfaces = ?names, ?prefixes, "kernel filter on: client messages that no subnet may answer are discarded before duet sees them");
            self.filtered = quiet;
        } else {
            tracing::info!("kernel filter off: every client message is seen");
            self.filtered = filter::Quiet::default();
        }
    }

    fn next_timer(&self) -> Option<UnixTime> {
        self.rels
            .0
            .iter()
            .filter_map(FailoverEndpoint::poll_timeout)
            .chain(self.srv.next_timeout())
            .min()
    }

    fn timers(&mut self, job: &mut Job) {
        let now = now();
        let (rels, srv) = (&mut self.rels, &mut self.srv);
        for ep in rels.0.iter_mut() {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now, srv.db_mut());
            }
        }
        if self.srv.next_timeout().is_some_and(|t| t <= now) {
            let changes = self.srv.handle_timeout(now, &self.rels, 4096);
            if !changes.is_empty() {
                tracing::debug!(count = changes.len(), "leases changed state on timer");
                self.leases_changed(now, &changes);
                job.changes.extend(changes);
            }
        }
    }

    fn answer(&mut self, q: Query, job: &mut Job) {
        match q {
            Query::Leases(tx) => {
                let out = self
                    .srv
                    .db()
                    .iter()
                    .map(|l| {
                        let rel = self
                            .srv
                            .relationship_of(&l.key)
                            .and_then(|i| self.cfg.failover.get(i))
                            .map(|r| r.name.clone());
                        lease_json(l, rel)
                    })
                    .collect();
                let _ = tx.send(out);
            }
            Query::Status(tx) => {
                let relationships = self
                    .rels
                    .0
                    .iter()
                    .map(|ep| {
                        let s = ep.status();
                        RelationshipJson {
                            name: s.name,
                            role: s.role.to_string(),
                            state: s.state.to_string(),
                            since: s.since.secs(),
                            partner_state: s.partner_state.map(|p| p.to_string()),
                            communications_ok: s.communications_ok,
                            unacked_bndupd: s.unacked_bndupd as u64,
                            clock_skew: s.clock_skew,
                        }
                    })
                    .collect();
                let counters = self.stats.snapshot(udp::kernel_drops(&self.sockets));
                let _ = tx.send(StatusJson {
                    server: ServerJson {
                        name: self.cfg.server.name.clone(),
                        duid: self.duid.to_hex(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        uptime: self.started.elapsed().as_secs(),
                    },
                    relationships,
                    counters,
                });
            }
            Query::PartnerDown(name, tx) => {
                let now = now();
                let (rels, srv) = (&mut self.rels, &mut self.srv);
                let r = match rels.0.iter_mut().find(|ep| ep.name() == name) {
                    None => Err(format!("no failover relationship named {name:?}")),
                    Some(ep) => ep.partner_down(now, srv.db_mut()).map_err(|e| e.to_string()),
                };
                if r.is_ok() {
                    tracing::warn!(relationship = %name, "operator declared the partner down");
                }
                self.drain_engines(job);
                let _ = tx.send(r);
            }
        }
    }
}

fn endpoints(
    cfg: &Config,
    srv: &Dhcpv6Server,
    meta: &std::collections::BTreeMap<String, Vec<u8>>,
    now: UnixTime,
) -> Relationships {
    let last_operating = meta
        .get(META_LAST_OPERATING)
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(|b| UnixTime(u64::from_le_bytes(b)));
    Relationships(
        cfg.failover
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (ranges, pd_pools) = srv.pools_of_relationship(i);
                let record: Option<EndpointRecord> = meta
                    .get(&meta_endpoint(&r.name))
                    .and_then(|b| match serde_json::from_slice(b) {
                        Ok(rec) => Some(rec),
                        Err(e) => {
                            tracing::error!(relationship = %r.name, error = %e, "stored failover state unreadable; starting as if none");
                            None
                        }
                    });
                let ecfg = EndpointConfig {
                    name: r.name.clone(),
                    role: r.role,
                    mclt: r.mclt,
                    max_unacked_bndupd: r.max_unacked_bndupd,
                    keepalive: r.keepalive,
                    auto_partner_down: r.auto_partner_down,
                    prefix_split: r.prefix_split,
                    startup_time: r.keepalive + STARTUP_MARGIN,
                    scan_interval: Duration::from_secs(30),
                    ranges,
                    pd_pools,
                    fingerprint: Some(fingerprint(cfg, &r.name)),
                };
                tracing::info!(relationship = %r.name, role = %r.role, recorded = ?record.map(|x| duet_wire::ServerState::from(x.state)), "failover endpoint starting");
                FailoverEndpoint::new(ecfg, record, last_operating, now)
            })
            .collect(),
    )
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.server.data_dir)
        .with_context(|| format!("creating data-dir {}", cfg.server.data_dir.display()))?;
    // TLS material first: a bad certificate is a configuration error.
    let mut links = Vec::new();
    for (i, r) in cfg.failover.iter().enumerate() {
        let tls = match &r.tls {
            Some(t) if !r.insecure => {
                Some(crate::tls::load(t).with_context(|| format!("failover[{i}] ({}) TLS", r.name))?)
            }
            _ => None,
        };
        links.push(partner::Link {
            rel: i,
            cfg: r.clone(),
            tls,
        });
    }
    let mut store = open_store(&cfg)?;
    let snapshot = store.load().context("reading the lease store")?;
    for w in &snapshot.warnings {
        tracing::warn!("lease store: {w}");
    }
    let duid = server_duid(store.as_mut(), &snapshot.meta)?;
    let options = ServerOptions::default();
    let mut srv = Dhcpv6Server::new(duid.clone(), subnets(&cfg)?, options, random_u64());
    let n = snapshot.leases.len();
    let orphans = srv.load(snapshot.leases);
    for o in &orphans {
        tracing::warn!(lease = %o.key, state = %o.state, "stored lease is outside every configured pool; kept in the store, not served");
    }
    tracing::info!(leases = n - orphans.len(), "lease store loaded");
    let rels = endpoints(&cfg, &srv, &snapshot.meta, now());

    // Sockets.
    let mut ifnames: HashMap<u32, String> = HashMap::new();
    let mut join = Vec::new();
    for name in &cfg.server.interfaces {
        let idx = udp::ifindex(name)?;
        ifnames.insert(idx, name.clone());
        join.push(idx);
    }
    let mut sockets: Vec<Arc<UdpSocket>> = Vec::new();
    if !join.is_empty() {
        let any = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 547, 0, 0);
        sockets.push(Arc::new(
            udp::bind(any, &join, cfg.server.queue_size).context("binding [::]:547")?,
        ));
    }
    for l in &cfg.server.listen {
        let SocketAddr::V6(a) = l else {
            bail!("server.listen: {l} is not IPv6")
        };
        if join.is_empty() || !a.ip().is_unspecified() {
            sockets.push(Arc::new(
                udp::bind(*a, &[], cfg.server.queue_size).with_context(|| format!("binding {a}"))?,
            ));
        }
    }
    if sockets.is_empty() {
        bail!("nothing to listen on: set server.interfaces or server.listen");
    }
    tracing::info!(name = %cfg.server.name, duid = %duid, interfaces = ?cfg.server.interfaces, "duet serving");

    let stats = Arc::new(Stats::default());
    let mut rbuf = vec![0u8; 65_536];
    let mut cmsg = udp::cmsg_buffer();

    let commit_window = cfg.server.commit_window;
    let outbox: Outbox = Arc::new(
        (0..cfg.failover.len())
            .map(|_| std::sync::Mutex::new(None))
            .collect(),
    );
    let out = Outbound::new(
        sockets.clone(),
        stats.clone(),
        pace::Pacer::new(cfg.server.send_rate, cfg.server.send_burst, cfg.server.queue_size),
    );
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<writer::Done>();
    let mut writer = writer::Writer::new(store, done_tx, outbox.clone(), stats.clone(), commit_window);

    let (pev_tx, mut pev_rx) = mpsc::unbounded_channel::<PartnerEvent>();
    partner::start(links, pev_tx, outbox.clone(), stats.clone())?;

    let (q_tx, mut q_rx) = mpsc::channel::<Query>(16);
    let listener = control::bind(&cfg.control.socket)?;
    let (ctl_stop_tx, ctl_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let control_task = tokio::spawn(control::serve(listener, q_tx, async {
        let _ = ctl_stop_rx.await;
    }));

    // SIGTERM / SIGINT: watched by a task of their own, which tells the
    // loop by one channel (cheaper to poll in every round than both).
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<&'static str>();
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        let _ = stop_tx.send(which);
    });
    let mut lease_timer: Deadline<UnixTime> = Deadline::new();
    let mut commit_timer: Deadline<Instant> = Deadline::new();
    let mut send_timer: Deadline<Instant> = Deadline::new();
    let mut report = tokio::time::interval(Duration::from_secs(60));
    // Keeps "last time operating" fresh in the store even without traffic
    // (RFC 8156 §8.3.2 step 5 compares it with the partner's PARTNER-DOWN time).
    let mut heartbeat = tokio::time::interval(Duration::from_secs(10));
    let mut last_dropped = 0u64;
    let batch_max = cfg.server.batch_max.max(1);
    let control_socket = cfg.control.socket.clone();
    let mut core = Core {
        conns: vec![None; cfg.failover.len()],
        cfg,
        srv,
        rels,
        duid,
        started,
        stats: stats.clone(),
        ifnames,
        sockets,
        out,
        filter_stale: true,
        filtered: filter::Quiet::default(),
    };
    let mut result = Ok(());

    loop {
        // The timers are re-armed only when what they wait for changed.
        lease_timer.set(core.next_timer(), |t| {
            tokio::time::Instant::now() + Duration::from_secs(t.secs().saturating_sub(now().secs()))
        });
        commit_timer.set(writer.due(), tokio::time::Instant::from_std);
        send_timer.set(core.out.next_release(), tokio::time::Instant::from_std);
        let mut job = Job::default();
        tokio::select! {
            which = &mut stop_rx => {
                tracing::info!("{}: stopping", which.unwrap_or("the signal watch ended"));
                break;
            }
            Some(q) = q_rx.recv() => core.answer(q, &mut job),
            Some(ev) = pev_rx.recv() => {
                let mut ack_only = core.handle_partner(ev);
                while let Ok(ev) = pev_rx.try_recv() {
                    ack_only &= core.handle_partner(ev);
                }
                job.lazy = ack_only;
            }
            i = udp::readable(&core.sockets) => {
                // Read and process up to batch_max datagrams: the socket's
                // receive buffer is the bounded queue (its overflow shows
                // in socket-drops).
                let Some(sock) = core.sockets.get(i).cloned() else { continue };
                for _ in 0..batch_max {
                    match udp::try_recv(&sock, &mut rbuf, &mut cmsg) {
                        Ok(r) => {
                            stats.received.fetch_add(1, Ordering::Relaxed);
                            let data = rbuf.get(..r.len).unwrap_or_default();
                            core.handle_packet(Packet { socket: i, data, recv: r }, &mut job);
                            // Paced datagrams leave while the batch is
                            // processed, not only after it: a long batch
                            // must not cap the send rate at send-burst per
                            // batch.
                            if core.out.waiting() {
                                core.out.release(Instant::now());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        // A receive error consumes the datagram or the
                        // socket's pending error: go on (at most batch-max).
                        Err(e) => tracing::debug!(error = %e, "receive error"),
                    }
                }
            }
            () = lease_timer.fired(), if lease_timer.armed() => core.timers(&mut job),
            () = commit_timer.fired(), if commit_timer.armed() => {
                if let Err(e) = writer.on_due(Instant::now(), &mut core.out) {
                    result = Err(anyhow::Error::new(e).context("the lease store failed: not answering clients without stable storage"));
                    break;
                }
            }
            Some(done) = done_rx.recv() => {
                if let Err(e) = writer.completed(done, &mut core.out) {
                    result = Err(anyhow::Error::new(e).context("the lease store failed: not answering clients without stable storage"));
                    break;
                }
            }
            () = send_timer.fired(), if send_timer.armed() => {}
            _ = heartbeat.tick() => {
                // The lease timer's deadline was derived from the wall
                // clock: derive it again, in case that clock was set.
                lease_timer.disarm();
                job.meta.push((META_LAST_OPERATING.to_string(), now().secs().to_le_bytes().to_vec()));
            }
            _ = report.tick() => {
                let s = stats.snapshot(udp::kernel_drops(&core.sockets));
                let dropped: u64 = s.dropped.values().sum::<u64>() + s.socket_drops;
                if dropped > last_dropped {
                    tracing::info!(dropped = ?s.dropped, socket_drops = s.socket_drops, "dropped datagrams so far");
                    last_dropped = dropped;
                }
            }
        }
        core.drain_engines(&mut job);
        if core.filter_stale {
            core.update_filter();
        }
        if let Err(e) = writer.submit(Instant::now(), job, &mut core.out) {
            result = Err(anyhow::Error::new(e)
                .context("the lease store failed: not answering clients without stable storage"));
            break;
        }
        core.out.release(Instant::now());
    }
    // Stop: let a commit running off the thread report back, tell
    // partners, then commit what is pending (made durable and answered).
    if result.is_ok() && writer.in_flight() {
        if let Some(done) = done_rx.recv().await {
            if let Err(e) = writer.completed(done, &mut core.out) {
                result = Err(anyhow::Error::new(e).context("committing at shutdown"));
            }
        }
    }
    writer.inline_only();
    let mut job = Job::default();
    let now = now();
    for ep in core.rels.0.iter_mut() {
        ep.shutdown(now);
    }
    core.drain_engines(&mut job);
    if result.is_ok() {
        if let Err(e) = writer
            .submit(Instant::now(), job, &mut core.out)
            .and_then(|()| writer.finish(&mut core.out))
        {
            result = Err(anyhow::Error::new(e).context("committing at shutdown"));
        }
    }
    let _ = ctl_stop_tx.send(());
    let _ = control_task.await;
    let _ = std::fs::remove_file(&control_socket);
    // Give the partner connections a moment to flush the DISCONNECT.
    tokio::time::sleep(Duration::from_millis(100)).await;
    result
}
