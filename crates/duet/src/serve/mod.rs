//! `duet serve`: the daemon. The only place with sockets, threads, files
//! and clocks; every decision is made by `duet_core`.
//!
//! ```text
//! UDP recv tasks ──(bounded queue, drop+count when full)──▶ processing task
//!        processing task: decode, process, update the in-memory lease db
//!          ├─ replies that change nothing (Advertise, …): sent at once
//!          └─ replies with changes ──▶ store writer thread
//!                 writer: group commit (one fsync) ──▶ then send the replies
//! control socket (HTTP/JSON) ◀──query channel──▶ processing task
//! ```

pub mod control;
pub mod stats;
pub mod udp;
pub mod writer;

use crate::api::{LeaseJson, ServerJson, StatusJson};
use anyhow::{bail, Context};
use control::Query;
use duet_core::config::Config;
use duet_core::dhcp::{Dhcpv6Server, Incoming, Outcome, ServerOptions, Subnet};
use duet_core::lease::{Lease, LeaseKind};
use duet_core::policy::Standalone;
use duet_core::store::{Batch, LeaseStore};
use duet_core::time::UnixTime;
use duet_wire::{DomainName, Duid};
use stats::Stats;
use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use writer::{Job, OutReply};

/// Metadata key of the server DUID in the store.
pub const META_SERVER_DUID: &str = "server-duid";

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
struct Packet {
    socket: usize,
    data: Vec<u8>,
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

/// Runs the server until SIGTERM / SIGINT.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    if !cfg.failover.is_empty() {
        bail!(
            "[[failover]] relationships are configured, but this build serves standalone only; \
             remove the [[failover]] sections and the subnets' `failover` keys"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(serve(cfg))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.server.data_dir)
        .with_context(|| format!("creating data-dir {}", cfg.server.data_dir.display()))?;
    let mut store = open_store(&cfg)?;
    let snapshot = store.load().context("reading the lease store")?;
    for w in &snapshot.warnings {
        tracing::warn!("lease store: {w}");
    }
    let duid = server_duid(store.as_mut(), &snapshot.meta)?;
    let options = ServerOptions::default();
    let mut srv = Dhcpv6Server::new(duid.clone(), subnets(&cfg)?, options.clone(), random_u64());
    let n = snapshot.leases.len();
    let orphans = srv.load(snapshot.leases);
    for o in &orphans {
        tracing::warn!(lease = %o.key, state = %o.state, "stored lease is outside every configured pool; kept in the store, not served");
    }
    tracing::info!(leases = n - orphans.len(), "lease store loaded");

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
        sockets.push(Arc::new(udp::bind(any, &join).context("binding [::]:547")?));
    }
    for l in &cfg.server.listen {
        let SocketAddr::V6(a) = l else {
            bail!("server.listen: {l} is not IPv6")
        };
        if join.is_empty() || !a.ip().is_unspecified() {
            sockets.push(Arc::new(
                udp::bind(*a, &[]).with_context(|| format!("binding {a}"))?,
            ));
        }
    }
    if sockets.is_empty() {
        bail!("nothing to listen on: set server.interfaces or server.listen");
    }
    tracing::info!(name = %cfg.server.name, duid = %duid, interfaces = ?cfg.server.interfaces, "duet serving");

    let stats = Arc::new(Stats::default());
    let (pkt_tx, mut pkt_rx) = mpsc::channel::<Packet>(cfg.server.queue_size.max(1));
    for (i, sock) in sockets.iter().enumerate() {
        let sock = sock.clone();
        let tx = pkt_tx.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match udp::recv(&sock, &mut buf).await {
                    Ok(r) => {
                        stats.received.fetch_add(1, Ordering::Relaxed);
                        let data = buf.get(..r.len).unwrap_or_default().to_vec();
                        if tx
                            .try_send(Packet {
                                socket: i,
                                data,
                                recv: r,
                            })
                            .is_err()
                        {
                            stats.queue_overflow.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "receive error");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
    }
    drop(pkt_tx);

    let (job_tx, job_rx) = std::sync::mpsc::channel::<Job>();
    let writer = {
        let sockets = sockets.clone();
        let stats = stats.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(store, job_rx, sockets, stats))?
    };

    let (q_tx, mut q_rx) = mpsc::channel::<Query>(16);
    let listener = control::bind(&cfg.control.socket)?;
    let (ctl_stop_tx, ctl_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let control_task = tokio::spawn(control::serve(listener, q_tx, async {
        let _ = ctl_stop_rx.await;
    }));

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut health = tokio::time::interval(Duration::from_millis(200));
    let mut report = tokio::time::interval(Duration::from_secs(60));
    let mut last_dropped = 0u64;
    let policy = Standalone {
        decline_probation: options.decline_probation,
    };
    let batch_max = cfg.server.batch_max.max(1);
    let mut result = Ok(());

    loop {
        let timer = srv.next_timeout();
        let sleep = match timer {
            Some(t) => {
                let wait = Duration::from_secs(t.secs().saturating_sub(now().secs()));
                tokio::time::Instant::now() + wait
            }
            None => tokio::time::Instant::now() + Duration::from_secs(3600),
        };
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
            Some(q) = q_rx.recv() => answer(&srv, &cfg, &duid, started, &stats, q),
            Some(pkt) = pkt_rx.recv() => {
                let mut job = Job::default();
                handle_packet(&mut srv, &policy, &ifnames, &sockets, &stats, pkt, &mut job);
                for _ in 1..batch_max {
                    match pkt_rx.try_recv() {
                        Ok(p) => handle_packet(&mut srv, &policy, &ifnames, &sockets, &stats, p, &mut job),
                        Err(_) => break,
                    }
                }
                if (!job.changes.is_empty() || !job.replies.is_empty()) && job_tx.send(job).is_err() {
                    result = Err(anyhow::anyhow!("the store writer stopped"));
                    break;
                }
            }
            _ = tokio::time::sleep_until(sleep), if timer.is_some() => {
                let changes = srv.handle_timeout(now(), &policy, 4096);
                if !changes.is_empty() {
                    tracing::debug!(count = changes.len(), "leases changed state on timer");
                    let _ = job_tx.send(Job { changes, ..Job::default() });
                }
            }
            _ = health.tick() => {
                if stats.store_failed.load(Ordering::SeqCst) {
                    result = Err(anyhow::anyhow!("the lease store failed: not answering clients without stable storage"));
                    break;
                }
            }
            _ = report.tick() => {
                let s = stats.snapshot();
                let dropped: u64 = s.dropped.values().sum::<u64>() + s.queue_overflow;
                if dropped > last_dropped {
                    tracing::info!(dropped = ?s.dropped, queue_overflow = s.queue_overflow, "dropped datagrams so far");
                    last_dropped = dropped;
                }
            }
        }
    }
    // Stop: the writer finishes what is queued (in-flight batch made
    // durable and answered), then exits.
    drop(job_tx);
    let _ = ctl_stop_tx.send(());
    let _ = control_task.await;
    let _ = std::fs::remove_file(&cfg.control.socket);
    if writer.join().is_err() {
        bail!("store writer panicked");
    }
    result
}

fn handle_packet(
    srv: &mut Dhcpv6Server,
    policy: &Standalone,
    ifnames: &HashMap<u32, String>,
    sockets: &[Arc<UdpSocket>],
    stats: &Stats,
    pkt: Packet,
    job: &mut Job,
) {
    let multicast = pkt.recv.dst.is_some_and(|d| d.is_multicast());
    let incoming = Incoming {
        payload: &pkt.data,
        source: *pkt.recv.source.ip(),
        interface: ifnames.get(&pkt.recv.ifindex).map(String::as_str),
        multicast,
    };
    match srv.handle(now(), incoming, policy) {
        Outcome::Dropped(d) => {
            stats.drop(d.name());
            tracing::debug!(from = %pkt.recv.source, reason = %d, "dropped");
        }
        Outcome::Reply(r) => {
            let src = pkt.recv.dst.filter(|d| !d.is_multicast());
            let out = OutReply {
                socket: pkt.socket,
                bytes: r.bytes,
                to: r.to,
                port: r.port,
                ifindex: pkt.recv.ifindex,
                src,
            };
            if r.changes.is_empty() {
                // Nothing to make durable: answer at once.
                match sockets
                    .get(out.socket)
                    .map(|s| udp::send(s, &out.bytes, out.to, out.port, out.ifindex, out.src))
                {
                    Some(Ok(())) => {
                        stats.replies_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                job.changes.extend(r.changes);
                job.replies.push(out);
            }
        }
    }
}

fn answer(srv: &Dhcpv6Server, cfg: &Config, duid: &Duid<'static>, started: Instant, stats: &Stats, q: Query) {
    match q {
        Query::Leases(tx) => {
            let mut v: Vec<&Lease> = srv.db().iter().collect();
            v.sort_by_key(|l| l.key);
            let out = v
                .into_iter()
                .map(|l| {
                    let rel = srv
                        .relationship_of(&l.key)
                        .and_then(|i| cfg.failover.get(i))
                        .map(|r| r.name.clone());
                    lease_json(l, rel)
                })
                .collect();
            let _ = tx.send(out);
        }
        Query::Status(tx) => {
            let _ = tx.send(StatusJson {
                server: ServerJson {
                    name: cfg.server.name.clone(),
                    duid: duid.to_hex(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    uptime: started.elapsed().as_secs(),
                },
                relationships: vec![],
                counters: stats.snapshot(),
            });
        }
    }
}
