//! `duet serve`: the daemon. Sockets, TLS, the store's fdatasync, timers,
//! signals and the control API — IO only. Every decision is the
//! [`Node`]'s (`duet_core::node`): this module hands it what arrives and
//! does what it says, in its order (docs/ARCHITECTURE.md, "sans-IO";
//! `.ci/check-sans-io` keeps it so).
//!
//! ```text
//! UDP sockets ──(bounded queue: their receive buffers, server.queue-size;
//!               the kernel drops and counts what overflows: socket-drops)
//!   ──▶ processing task: up to batch-max datagrams per round
//!        ──▶ Node::handle_datagram
//! partner links (partner.rs: TCP, TLS) ──(bounded channel)──▶ Node::partner_*
//! control socket (HTTP/JSON) ◀──query channel──▶ processing task
//! timer (Node::poll_timeout) ──▶ Node::handle_timeout
//!
//! after each round:
//!   Node::poll_commit ──▶ store writer (fdatasync here, or on a blocking
//!                         thread for a large commit) ──▶ Node::commit_done
//!   Node::poll_transmit ──▶ replies (paced: pace.rs) and partner frames
//!   Node::poll_event ──▶ log, kernel filter (filter.rs)
//! ```

pub mod control;
pub mod deadline;
pub mod filter;
pub mod outbound;
pub mod pace;
pub mod partner;
pub mod stats;
pub mod udp;
pub mod writer;

use crate::api::{
    LeaseJson, PrefixPoolJson, RangeJson, RefusalJson, RelationshipJson, ServerJson, StatusJson, SubnetJson,
};
use anyhow::{bail, Context};
use control::Query;
use deadline::Deadline;
use duet_core::config::Config;
use duet_core::dhcp::Incoming;
use duet_core::failover::Event;
use duet_core::lease::{Lease, LeaseKind};
use duet_core::node::{Node, NodeConfig, NodeEvent, Transmit};
use duet_core::store::{LeaseStore, StoreError};
use duet_core::time::Timestamp;
use outbound::{Outbound, Route};
use partner::{Outbox, PartnerEvent};
use stats::Stats;
use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use writer::{Started, Writer};

/// The wall clock as the node wants it. Read once per datagram and per
/// round of the loop.
pub fn now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0),
    )
}

/// The node timer never sleeps longer than this: a deadline of the wall
/// clock becomes one of the monotonic clock only for so long, so a wall
/// clock that is set (NTP stepping it) shifts no timer by more.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Partner events waiting for the processing task, at most: a reader that
/// finds the channel full waits, and TCP holds the partner back.
pub const PARTNER_EVENTS: usize = 4096;

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
        return now().micros() ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
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

/// Runs the server until SIGTERM / SIGINT.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    // One thread for everything async (receive, processing, partner link,
    // control, and the store writer's small commits): the node is
    // single-threaded by design, and reading the sockets and committing on
    // the processing thread saves thread wake-ups per datagram. Large
    // commits use the runtime's blocking pool (see `writer::Writer`).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(cfg))
}

/// The processing task's state: the node and the IO around it.
struct Daemon {
    cfg: Config,
    node: Node<Route>,
    writer: Writer,
    out: Outbound,
    outbox: Outbox,
    started: Instant,
    stats: Arc<Stats>,
    ifnames: HashMap<u32, String>,
    sockets: Vec<Arc<UdpSocket>>,
    /// Whether a failover state changed since the kernel filter was last
    /// brought up to date.
    filter_stale: bool,
    /// What the kernel filter now covers.
    filtered: filter::Quiet,
    /// Per relationship: operators waiting for the end of a handover.
    handovers: HashMap<usize, Vec<tokio::sync::oneshot::Sender<Result<String, String>>>>,
    /// Per relationship: the last refusal logged (repeats go to debug).
    refusals_logged: HashMap<usize, String>,
}

/// An operator command's answer: what happened, or why not.
type Answer = tokio::sync::oneshot::Sender<Result<String, String>>;

fn store_failed(e: StoreError) -> anyhow::Error {
    anyhow::Error::new(e).context("the lease store failed: not answering clients without stable storage")
}

impl Daemon {
    fn datagram(&mut self, socket: usize, data: &[u8], recv: udp::Received) {
        let incoming = Incoming {
            payload: data,
            source: *recv.source.ip(),
            interface: self.ifnames.get(&recv.ifindex).map(String::as_str),
            multicast: recv.dst.is_some_and(|d| d.is_multicast()),
        };
        let route = Route {
            socket,
            ifindex: recv.ifindex,
            src: recv.dst.filter(|d| !d.is_multicast()),
            source_port: recv.source.port(),
        };
        if let Err(d) = self.node.handle_datagram(now(), incoming, route) {
            self.stats.count_drop(d.name());
            tracing::debug!(from = %recv.source, reason = %d, "dropped");
        }
    }

    fn partner(&mut self, ev: PartnerEvent) {
        let now = now();
        match ev {
            PartnerEvent::Connected { rel, conn } => {
                tracing::debug!(relationship = %self.rel_name(rel), "partner connection established; CONNECT exchange follows");
                self.node.partner_connected(now, rel, conn);
            }
            PartnerEvent::Message { rel, conn, msg } => self.node.partner_message(now, rel, conn, &msg),
            PartnerEvent::Attempt { rel, refusal } => self.node.partner_attempt(now, rel, refusal),
            PartnerEvent::Closed { rel, conn, reason } => {
                let ok = self
                    .node
                    .relationships()
                    .get(rel)
                    .is_some_and(|ep| ep.communications_ok());
                if ok {
                    tracing::info!(relationship = %self.rel_name(rel), %reason, "partner link down");
                } else {
                    tracing::debug!(relationship = %self.rel_name(rel), %reason, "partner connection ended before communications were OK");
                }
                self.node.partner_closed(now, rel, conn);
            }
        }
    }

    fn rel_name(&self, rel: usize) -> String {
        self.cfg
            .failover
            .get(rel)
            .map_or_else(|| format!("#{rel}"), |r| r.name.clone())
    }

    /// Does what the node asks: commits (one at a time), then sends, then
    /// logs. A failed commit stops the server.
    fn drive(&mut self) -> Result<(), StoreError> {
        let now = now();
        // What earlier commits released leaves first: an inline commit
        // below blocks this thread for an fdatasync.
        self.transmit(now);
        while !self.writer.busy() {
            let Some(c) = self.node.poll_commit(now) else {
                break;
            };
            match self.writer.start(c) {
                Started::Running => break,
                Started::Done(seq, result) => {
                    self.node.commit_done(now, seq, result)?;
                    self.transmit(now);
                }
            }
        }
        self.transmit(now);
        self.events();
        if self.filter_stale {
            self.update_filter();
        }
        Ok(())
    }

    fn transmit(&mut self, now: Timestamp) {
        let mono = Instant::now();
        while let Some(t) = self.node.poll_transmit(now) {
            match t {
                Transmit::Reply(r) => self.out.send(mono, r),
                Transmit::Partner { rel, conn, frame } => {
                    partner::send(&self.outbox, rel, conn, partner::Outgoing::Frame(frame))
                }
                Transmit::Close { rel, conn } => {
                    partner::send(&self.outbox, rel, conn, partner::Outgoing::Close)
                }
            }
        }
        self.out.release(mono);
    }

    fn events(&mut self) {
        while let Some(e) = self.node.poll_event() {
            match e {
                NodeEvent::Failover { rel, event } => {
                    let name = self.rel_name(rel);
                    match event {
                        Event::StateChanged { from, to } => {
                            tracing::info!(relationship = %name, %from, %to, "failover state changed");
                            self.filter_stale = true;
                        }
                        Event::CommunicationsOk => {
                            self.refusals_logged.remove(&rel);
                            tracing::info!(relationship = %name, "communications OK")
                        }
                        Event::CommunicationsLost => {
                            tracing::warn!(relationship = %name, "communications lost")
                        }
                        Event::Close(reason) => {
                            tracing::warn!(relationship = %name, %reason, "closing the partner connection")
                        }
                        Event::ConnectRefused(reason) => {
                            tracing::warn!(relationship = %name, %reason, "partner refused our CONNECT")
                        }
                        Event::Notice(text) => tracing::info!(relationship = %name, "{text}"),
                        Event::Refused(r) => {
                            if let Ok(mut m) = self.stats.failover_refusals.lock() {
                                *m.entry(format!("{name}/{}", r.kind.name())).or_insert(0) += 1;
                            }
                            // A refused partner retries every few seconds:
                            // each new reason once at warn, repeats at debug.
                            let text = format!("{}: {}", r.kind.name(), r.reason);
                            if self.refusals_logged.get(&rel) != Some(&text) {
                                tracing::warn!(relationship = %name, kind = r.kind.name(), by_us = r.by_us, reason = %r.reason, "refusal between the partners: automatic partner-down is held off until they connect");
                                self.refusals_logged.insert(rel, text);
                            } else {
                                tracing::debug!(relationship = %name, reason = %r.reason, "refusal between the partners (again)");
                            }
                        }
                        Event::HandoverDone => {
                            tracing::warn!(relationship = %name, "handover complete: the partner serves every client; this server stays out until restarted or resumed");
                            for w in self.handovers.remove(&rel).unwrap_or_default() {
                                let _ = w.send(Ok(format!(
                                    "relationship {name}: handed over; the partner serves every client; this server stays out until it is restarted or resumed"
                                )));
                            }
                        }
                        Event::HandoverFailed(why) => {
                            tracing::warn!(relationship = %name, %why, "handover abandoned; serving on");
                            for w in self.handovers.remove(&rel).unwrap_or_default() {
                                let _ =
                                    w.send(Err(format!("relationship {name}: handover abandoned: {why}")));
                            }
                        }
                    }
                }
                NodeEvent::LeaseTimers(n) => tracing::debug!(count = n, "leases changed state on timer"),
                NodeEvent::CommitFailed { replies, partner } => {
                    self.stats
                        .replies_dropped
                        .fetch_add(replies as u64, Ordering::Relaxed);
                    tracing::error!(
                        replies,
                        partner,
                        "store commit failed; dropping what waited for it and stopping"
                    );
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
        let links = self.node.quiet_links();
        let mut ifindexes: Vec<u32> = links
            .interfaces
            .iter()
            .filter_map(|name| self.ifnames.iter().find(|(_, n)| *n == name).map(|(i, _)| *i))
            .collect();
        ifindexes.sort_unstable();
        // The shortest rescue-after of any relationship, in hundredths of
        // a second: the filter passes Solicits and Rebinds that old
        // (duet_core decides, per relationship).
        let rescue_after = self
            .node
            .relationships()
            .iter()
            .filter_map(|ep| ep.status().rescue_after)
            .min()
            .map(|d| u16::try_from(d.as_millis() / 10).unwrap_or(u16::MAX));
        let quiet = filter::Quiet {
            ifindexes,
            prefixes: links.prefixes,
            rescue_after,
        };
        if quiet == self.filtered {
            return;
        }
        let prog = match filter::program(&quiet, self.node.duid().as_bytes()) {
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

    fn answer(&mut self, q: Query) {
        match q {
            Query::Leases(tx) => {
                let node = &self.node;
                let out = node
                    .db()
                    .iter()
                    .map(|l| {
                        let rel = node
                            .relationship_of(&l.key)
                            .and_then(|i| node.relationships().get(i))
                            .map(|ep| ep.name().to_string());
                        lease_json(l, rel)
                    })
                    .collect();
                let _ = tx.send(out);
            }
            Query::Status(tx) => {
                let _ = tx.send(self.status());
            }
            Query::PartnerDown(name, tx) => {
                let r = self.node.partner_down(now(), &name).map_err(|e| e.to_string());
                if r.is_ok() {
                    tracing::warn!(relationship = %name, "operator declared the partner down");
                }
                let _ = tx.send(r);
            }
            Query::Commission(name, tx) => {
                let r = self.node.commission(now(), &name).map_err(|e| e.to_string());
                if r.is_ok() {
                    tracing::warn!(relationship = %name, "operator commissioned this server without its partner: partner-down");
                }
                let _ = tx.send(r.map(|()| format!("relationship {name}: commissioned; in partner-down")));
            }
            Query::PartnerLost(name, tx) => {
                let r = self.node.partner_lost(now(), &name).map_err(|e| e.to_string());
                if r.is_ok() {
                    tracing::warn!(relationship = %name, "operator declared the partner lost: its recovery is no longer waited for");
                }
                let _ = tx.send(r.map(|()| {
                    format!("relationship {name}: partner declared lost; partner-down without waiting for its recovery")
                }));
            }
            Query::Resume(name, tx) => {
                let r = self.node.resume(now(), &name).map_err(|e| e.to_string());
                if r.is_ok() {
                    tracing::warn!(relationship = %name, "operator resumed this server after a handover: recovering from the partner");
                }
                let _ =
                    tx.send(r.map(|()| format!("relationship {name}: resumed; recovering from the partner")));
            }
            Query::Handover(name, timeout, tx) => self.handover(&name, timeout, tx),
        }
    }

    /// Starts a planned handover of relationship `name`; `tx` gets its end.
    fn handover(&mut self, name: &str, timeout: Duration, tx: Answer) {
        let Some(rel) = self.node.relationships().position(name) else {
            let _ = tx.send(Err(format!("no failover relationship named {name:?}")));
            return;
        };
        if let Err(e) = self.node.handover(now(), name, timeout) {
            let _ = tx.send(Err(e.to_string()));
            return;
        }
        tracing::warn!(relationship = %name, timeout = timeout.as_secs(), "planned handover: no more answers to this relationship's clients; sending every pending update");
        let done = self
            .node
            .relationships()
            .get(rel)
            .is_some_and(|ep| ep.status().handover == Some("handed-over"));
        self.handovers.entry(rel).or_default().push(tx);
        if done {
            // Done before (or within this call): answer now.
            for w in self.handovers.remove(&rel).unwrap_or_default() {
                let _ = w.send(Ok(format!("relationship {name}: handed over")));
            }
        }
    }

    /// Starts the handover of every relationship configured to hand over
    /// on stop that can; returns how many are under way.
    fn handover_on_stop(&mut self, timeout: Duration) -> usize {
        let names: Vec<String> = self
            .cfg
            .failover
            .iter()
            .filter(|r| r.handover_on_stop)
            .map(|r| r.name.clone())
            .collect();
        for name in names {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.handover(&name, timeout, tx);
            // Only the end matters here (logged by `events`).
            drop(rx);
        }
        self.handovers.len()
    }

    fn status(&self) -> StatusJson {
        let node = &self.node;
        let relationships = node
            .relationships()
            .iter()
            .enumerate()
            .map(|(rel, ep)| {
                let s = ep.status();
                let pools = ep.pool_use(node.db());
                let subnets = node
                    .server()
                    .subnet_counters()
                    .filter(|(sn, _)| sn.relationship == Some(rel))
                    .map(|(sn, c)| SubnetJson {
                        prefix: sn.prefix.to_string(),
                        interface: sn.interface.clone(),
                        seen: c.seen,
                        answered: c.answered,
                        rescued: c.rescued,
                        last_answered: c.last_answered.map(|t| t.secs()),
                    })
                    .collect();
                RelationshipJson {
                    name: s.name,
                    role: s.role.to_string(),
                    state: s.state.to_string(),
                    since: s.since.secs(),
                    partner_state: s.partner_state.map(|p| p.to_string()),
                    communications_ok: s.communications_ok,
                    unacked_bndupd: s.unacked_bndupd as u64,
                    clock_skew: s.clock_skew,
                    queued_bndupd: s.queued_bndupd as u64,
                    last_heard: s.last_heard.secs(),
                    refusal: s.refusal.map(|r| RefusalJson {
                        kind: r.kind.name().to_string(),
                        reason: r.reason,
                        at: r.at.secs(),
                        by: if r.by_us { "us" } else { "partner" }.to_string(),
                    }),
                    auto_partner_down_at: s.auto_partner_down_at.map(|t| t.secs()),
                    auto_partner_down_held: s.auto_partner_down_held,
                    recover_wait_until: s.recover_wait_until.map(|t| t.secs()),
                    partner_pool_from: s.partner_pool_from.map(|t| t.secs()),
                    handover: s.handover.map(str::to_string),
                    partner_handover: s.partner_handover,
                    rescue_after: s.rescue_after.map(|d| d.as_secs()),
                    address_ranges: pools
                        .ranges
                        .into_iter()
                        .map(|r| RangeJson {
                            range: r.range,
                            primary_free: r.primary_free,
                            primary_size: r.primary_size,
                            secondary_free: r.secondary_free,
                            secondary_size: r.secondary_size,
                        })
                        .collect(),
                    prefix_pools: pools
                        .pd_pools
                        .into_iter()
                        .map(|p| PrefixPoolJson {
                            pool: p.pool,
                            size: p.size,
                            free: p.free,
                            free_backup: p.free_backup,
                        })
                        .collect(),
                    subnets,
                }
            })
            .collect();
        StatusJson {
            server: ServerJson {
                name: self.cfg.server.name.clone(),
                duid: self.node.duid().to_hex(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                uptime: self.started.elapsed().as_secs(),
            },
            relationships,
            counters: self.stats.snapshot(udp::kernel_drops(&self.sockets)),
        }
    }
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
    let ncfg = NodeConfig::from_config(&cfg, random_u64())?;
    let (mut node, boot) = Node::boot(ncfg, snapshot, now());
    for w in &boot.warnings {
        tracing::warn!("lease store: {w}");
    }
    for o in &boot.orphans {
        tracing::warn!(lease = %o.key, state = %o.state, "stored lease is outside every configured pool; kept in the store, not served");
    }
    if boot.new_duid {
        tracing::info!(duid = %node.duid(), "generated the server DUID");
    }
    tracing::info!(leases = boot.loaded, "lease store loaded");
    for (lease, owner) in node.server().reservation_conflicts(now().unix()) {
        tracing::warn!(
            lease = %lease.key,
            until = lease.active_end().secs(),
            %owner,
            "a lease the store holds for another client is reserved: it is not renewed (the holder gets lifetimes 0 at its next Renew or Rebind), and the owner gets it once it ends"
        );
    }
    for ep in node.relationships().iter() {
        tracing::info!(relationship = %ep.name(), role = %ep.role(), recorded = ?duet_wire::ServerState::from(ep.record().state), "failover endpoint starting");
    }
    // What the boot needs durable (a new DUID, the endpoints' records)
    // before anything is answered.
    while let Some(c) = node.poll_commit(now()) {
        let seq = c.seq;
        let r = store.commit(&c.batch);
        node.commit_done(now(), seq, r).map_err(store_failed)?;
    }

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
    tracing::info!(name = %cfg.server.name, duid = %node.duid(), interfaces = ?cfg.server.interfaces, "duet serving");

    let stats = Arc::new(Stats::default());
    let mut rbuf = vec![0u8; 65_536];
    let mut cmsg = udp::cmsg_buffer();

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
    let writer = Writer::new(store, done_tx, stats.clone());

    let (pev_tx, mut pev_rx) = mpsc::channel::<PartnerEvent>(PARTNER_EVENTS);
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
    let mut node_timer: Deadline<Timestamp> = Deadline::new();
    let mut send_timer: Deadline<Instant> = Deadline::new();
    let mut report = tokio::time::interval(Duration::from_secs(60));
    let mut last_dropped = 0u64;
    let batch_max = cfg.server.batch_max.max(1);
    let control_socket = cfg.control.socket.clone();
    let mut d = Daemon {
        cfg,
        node,
        writer,
        out,
        outbox,
        started,
        stats: stats.clone(),
        ifnames,
        sockets,
        filter_stale: true,
        filtered: filter::Quiet::default(),
        handovers: HashMap::new(),
        refusals_logged: HashMap::new(),
    };
    let mut result = d.drive().map_err(store_failed);
    // Stopping with handovers under way: leave once they have ended (or
    // this long after the signal).
    let mut stopping: Option<tokio::time::Instant> = None;

    while result.is_ok() {
        if let Some(until) = stopping {
            if d.handovers.is_empty() || tokio::time::Instant::now() >= until {
                break;
            }
        }
        // The timers are re-armed only when what they wait for changed.
        node_timer.set(d.node.poll_timeout(), |t| {
            tokio::time::Instant::now() + t.since(now()).min(MAX_SLEEP)
        });
        send_timer.set(d.out.next_release(), tokio::time::Instant::from_std);
        tokio::select! {
            which = &mut stop_rx, if stopping.is_none() => {
                tracing::info!("{}: stopping", which.unwrap_or("the signal watch ended"));
                let timeout = duet_core::failover::HANDOVER_TIMEOUT;
                if d.handover_on_stop(timeout) == 0 {
                    break;
                }
                stopping = Some(tokio::time::Instant::now() + timeout + Duration::from_secs(1));
            }
            () = tokio::time::sleep_until(stopping.unwrap_or_else(tokio::time::Instant::now)), if stopping.is_some() => {}
            Some(q) = q_rx.recv() => d.answer(q),
            Some(ev) = pev_rx.recv() => {
                d.partner(ev);
                while let Ok(ev) = pev_rx.try_recv() {
                    d.partner(ev);
                }
            }
            i = udp::readable(&d.sockets) => {
                // Read and process up to batch_max datagrams: the socket's
                // receive buffer is the bounded queue (its overflow shows
                // in socket-drops).
                let Some(sock) = d.sockets.get(i).cloned() else { continue };
                for _ in 0..batch_max {
                    match udp::try_recv(&sock, &mut rbuf, &mut cmsg) {
                        Ok(r) => {
                            stats.received.fetch_add(1, Ordering::Relaxed);
                            let data = rbuf.get(..r.len).unwrap_or_default();
                            d.datagram(i, data, r);
                            // Paced datagrams leave while the batch is
                            // processed, not only after it.
                            if d.out.waiting() {
                                d.out.release(Instant::now());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        // A receive error consumes the datagram or the
                        // socket's pending error: go on (at most batch-max).
                        Err(e) => tracing::debug!(error = %e, "receive error"),
                    }
                }
            }
            () = node_timer.fired(), if node_timer.armed() => d.node.handle_timeout(now()),
            Some(done) = done_rx.recv() => {
                let (seq, r) = d.writer.completed(done);
                if let Err(e) = d.node.commit_done(now(), seq, r) {
                    d.events();
                    result = Err(store_failed(e));
                    break;
                }
            }
            () = send_timer.fired(), if send_timer.armed() => {}
            _ = report.tick() => {
                let s = stats.snapshot(udp::kernel_drops(&d.sockets));
                let dropped: u64 = s.dropped.values().sum::<u64>() + s.socket_drops;
                if dropped > last_dropped {
                    tracing::info!(dropped = ?s.dropped, socket_drops = s.socket_drops, "dropped datagrams so far");
                    last_dropped = dropped;
                }
            }
        }
        if let Err(e) = d.drive() {
            d.events();
            result = Err(store_failed(e));
        }
    }
    // Stop: let a commit running off the thread report back, tell the
    // partners, then commit what is pending (made durable and answered).
    if result.is_ok() && d.writer.busy() {
        if let Some(done) = done_rx.recv().await {
            let (seq, r) = d.writer.completed(done);
            if let Err(e) = d.node.commit_done(now(), seq, r) {
                result = Err(anyhow::Error::new(e).context("committing at shutdown"));
            }
        }
    }
    d.writer.inline_only();
    if result.is_ok() {
        d.node.shutdown(now());
        if let Err(e) = d.drive() {
            result = Err(anyhow::Error::new(e).context("committing at shutdown"));
        }
        d.out.flush_all();
    }
    let _ = ctl_stop_tx.send(());
    let _ = control_task.await;
    let _ = std::fs::remove_file(&control_socket);
    // Give the partner connections a moment to flush the DISCONNECT.
    tokio::time::sleep(Duration::from_millis(100)).await;
    result
}
