//! The partner link (RFC 8156 §5.1, §6.1, §10): TCP, the primary connects
//! and retries with backoff, the secondary listens and accepts only
//! configured peers; STARTTLS then TLS 1.3 with mutual certificates unless
//! the relationship is explicitly `insecure`; then length-prefixed failover
//! frames in both directions.
//!
//! This module only moves bytes. Every message goes to the processing task
//! as a [`PartnerEvent`]; what to send comes back through the [`Outbox`]
//! (from the processing task, when the node releases them: after the commit of
//! what they report, if anything).

use super::stats::Stats;
use crate::tls::{check_peer_name, PartnerTls};
use duet_core::config::{RelationshipConfig, Role};
use duet_core::failover::RefusalKind;
use duet_wire::option::Status;
use duet_wire::{
    ClientMessage, DhcpOption, FailoverMessage, FailoverMessageType, FrameDecoder, MessageType, OptionsExt,
    StatusCode, StreamMessage, TransactionId,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc::{self, Sender};

/// How long a new connection may take to get through STARTTLS, TLS and
/// CONNECT before it is dropped (RFC 8156 §10: limit idle connections).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What the link tells the processing task. `conn` numbers connections so
/// events of a connection already replaced are recognised and ignored.
#[derive(Debug)]
pub enum PartnerEvent {
    /// A connection of relationship `rel` is up (TLS done if required).
    Connected {
        /// Relationship index.
        rel: usize,
        /// Connection number.
        conn: u64,
    },
    /// A message arrived.
    Message {
        /// Relationship index.
        rel: usize,
        /// Connection number.
        conn: u64,
        /// The message.
        msg: FailoverMessage<'static>,
    },
    /// The partner showed it is alive but no connection reached the
    /// node: an attempt that failed or was refused before CONNECT (a
    /// refusal of its identity, if `refusal`).
    Attempt {
        /// Relationship index.
        rel: usize,
        /// Why it was refused, if it was.
        refusal: Option<(RefusalKind, String)>,
    },
    /// The connection ended.
    Closed {
        /// Relationship index.
        rel: usize,
        /// Connection number.
        conn: u64,
        /// Why, for the log.
        reason: String,
    },
}

/// Something to send on a relationship's connection.
#[derive(Debug)]
pub enum Outgoing {
    /// A whole frame (length prefix included).
    Frame(Vec<u8>),
    /// Close the connection after what was queued before.
    Close,
}

/// Per relationship: the sending side of the current connection, if any.
pub type Outbox = Arc<Vec<Mutex<Option<(u64, Sender<Outgoing>)>>>>;

/// Frames waiting to be written to one connection, at most. The node
/// keeps at most MAX_UNACKED_BNDUPD_CAP BNDUPDs in flight, and answers the
/// partner's (bounded the same way) one BNDREPLY each, so a healthy link
/// never comes near; a partner that stops reading does, and its connection
/// is closed then (it reconnects, and everything unacknowledged is sent
/// again, RFC 8156 §8.8.1).
pub const OUTGOING_FRAMES: usize = 4096;

/// Hands `o` to relationship `rel`'s connection if that is still `conn`:
/// a message made for a connection that closed meanwhile (a DISCONNECT, a
/// BNDUPD) must not reach its successor, which starts with its own CONNECT
/// exchange.
pub fn send(outbox: &Outbox, rel: usize, conn: u64, o: Outgoing) {
    let Some(Ok(mut slot)) = outbox.get(rel).map(|s| s.lock()) else {
        return;
    };
    let full = match slot.as_ref() {
        Some((current, tx)) if *current == conn => match tx.try_send(o) {
            Ok(()) => false,
            Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        },
        _ => false,
    };
    if full {
        tracing::warn!(
            rel,
            conn,
            "the partner does not read: {OUTGOING_FRAMES} frames wait; closing the connection"
        );
        // Dropping the sender ends the connection's writer.
        *slot = None;
    }
}

/// One relationship's link settings.
#[derive(Debug, Clone)]
pub struct Link {
    /// Relationship index.
    pub rel: usize,
    /// Its configuration.
    pub cfg: RelationshipConfig,
    /// TLS, unless `insecure = true`.
    pub tls: Option<PartnerTls>,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

fn refuse(stats: &Stats, peer: SocketAddr, reason: &str) {
    tracing::warn!(%peer, reason, "refused partner connection");
    if let Ok(mut m) = stats.partner_refused.lock() {
        *m.entry(reason.split(':').next().unwrap_or(reason).to_string())
            .or_insert(0) += 1;
    }
}

/// Starts the connect loops (primary relationships) and the listeners
/// (secondary relationships).
pub fn start(
    links: Vec<Link>,
    events: Sender<PartnerEvent>,
    outbox: Outbox,
    stats: Arc<Stats>,
) -> anyhow::Result<()> {
    let mut listeners: BTreeMap<SocketAddr, Vec<Link>> = BTreeMap::new();
    for link in links {
        match link.cfg.role {
            Role::Primary => {
                tokio::spawn(connect_loop(link, events.clone(), outbox.clone(), stats.clone()));
            }
            Role::Secondary => listeners.entry(link.cfg.listen).or_default().push(link),
        }
    }
    for (addr, links) in listeners {
        let sock = match addr {
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
        };
        sock.set_reuseaddr(true)?;
        sock.bind(addr)
            .map_err(|e| anyhow::anyhow!("binding the partner listener {addr}: {e}"))?;
        let listener = sock.listen(16)?;
        tracing::info!(%addr, "listening for partner connections");
        tokio::spawn(accept_loop(
            listener,
            links,
            events.clone(),
            outbox.clone(),
            stats.clone(),
        ));
    }
    Ok(())
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, m: StreamMessage<'_>) -> std::io::Result<()> {
    let mut frame = Vec::new();
    m.encode_frame(&mut frame).map_err(std::io::Error::other)?;
    w.write_all(&frame).await
}

fn starttls() -> StreamMessage<'static> {
    StreamMessage::Tls(ClientMessage::new(
        MessageType::StartTls,
        TransactionId::from_low_bits(1),
    ))
}

async fn connect_loop(link: Link, events: Sender<PartnerEvent>, outbox: Outbox, stats: Arc<Stats>) {
    let mut backoff = BACKOFF_MIN;
    let mut last_error = String::new();
    loop {
        let began = std::time::Instant::now();
        let outcome = match connect_once(&link).await {
            Ok(Conn::Tls(s)) => run_conn(*s, link.rel, vec![], &events, &outbox).await,
            Ok(Conn::Plain(s)) => run_conn(s, link.rel, vec![], &events, &outbox).await,
            Err(e) => Err(e),
        };
        // A connection the partner closed before sending anything was
        // refused (in TLS 1.3 our handshake completes before the partner has
        // checked our certificate): a failure like any other.
        let connected = match outcome {
            Ok(()) => {
                last_error.clear();
                true
            }
            Err(e) => {
                if let Ok(mut m) = stats.partner_connect_failures.lock() {
                    *m.entry(link.cfg.name.clone()).or_insert(0) += 1;
                }
                // Past TCP the partner is alive: automatic partner-down
                // counts from here, and a refusal holds it off.
                if e.reached {
                    let refusal = e.identity.then(|| (RefusalKind::Identity, e.reason.clone()));
                    let _ = events
                        .send(PartnerEvent::Attempt {
                            rel: link.rel,
                            refusal,
                        })
                        .await;
                }
                if e.reason != last_error {
                    tracing::warn!(relationship = %link.cfg.name, peer = %link.cfg.peer, error = %e.reason, "cannot connect to the partner (retrying; repeats of this error are logged at debug)");
                    last_error = e.reason;
                } else {
                    tracing::debug!(relationship = %link.cfg.name, peer = %link.cfg.peer, error = %e.reason, "partner connection failed");
                }
                false
            }
        };
        // §6.1: keep retrying, less often after a refusal or a connection
        // that did not last (a partner that closes at once).
        backoff = if connected && began.elapsed() > Duration::from_secs(30) {
            BACKOFF_MIN
        } else {
            (backoff * 2).min(BACKOFF_MAX)
        };
        tokio::time::sleep(backoff).await;
    }
}

/// Why a connection attempt came to nothing.
#[derive(Debug)]
struct Failed {
    reason: String,
    /// The partner answered at TCP level (its daemon runs).
    reached: bool,
    /// It refused us: TLS, our certificate, the relationship name.
    identity: bool,
}

impl Failed {
    fn unreached(e: impl std::fmt::Display) -> Failed {
        Failed {
            reason: e.to_string(),
            reached: false,
            identity: false,
        }
    }
    fn reached(e: impl std::fmt::Display) -> Failed {
        Failed {
            reason: e.to_string(),
            reached: true,
            identity: false,
        }
    }
    fn refused(e: impl std::fmt::Display) -> Failed {
        Failed {
            reason: e.to_string(),
            reached: true,
            identity: true,
        }
    }
}

enum Conn {
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Plain(TcpStream),
}

async fn connect_once(link: &Link) -> Result<Conn, Failed> {
    let sock = match link.cfg.peer {
        SocketAddr::V6(_) => TcpSocket::new_v6(),
        SocketAddr::V4(_) => TcpSocket::new_v4(),
    }
    .map_err(Failed::unreached)?;
    // From our configured address, so the secondary recognises us.
    sock.bind(SocketAddr::new(link.cfg.listen.ip(), 0))
        .map_err(Failed::unreached)?;
    let mut stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, sock.connect(link.cfg.peer)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Failed::unreached(e)),
        Err(_) => return Err(Failed::unreached("TCP connect timed out")),
    };
    let _ = stream.set_nodelay(true);
    let Some(tls) = &link.tls else {
        return Ok(Conn::Plain(stream));
    };
    // RFC 7653 §8.2: STARTTLS first; a REPLY without error status means go.
    write_msg(&mut stream, starttls())
        .await
        .map_err(Failed::reached)?;
    let reply = match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut stream)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(Failed::reached(format!("no answer to STARTTLS: {e}"))),
        Err(_) => return Err(Failed::reached("no answer to STARTTLS in time")),
    };
    match StreamMessage::parse(&reply) {
        Ok(StreamMessage::Tls(m)) if m.msg_type == MessageType::Reply => {
            if let Some(s) = m.options.status().filter(|s| s.code != StatusCode::Success) {
                return Err(Failed::refused(format!(
                    "partner refused STARTTLS: {} {}",
                    s.code,
                    s.message_lossy()
                )));
            }
        }
        other => {
            return Err(Failed::reached(format!(
                "unexpected answer to STARTTLS: {other:?}"
            )))
        }
    }
    let name = rustls::pki_types::ServerName::try_from(tls.peer_name.clone()).map_err(Failed::unreached)?;
    let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, stream)).await {
        Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
        // Its certificate, or ours, is not what the other side expects.
        Ok(Err(e)) => Err(Failed::refused(format!("TLS handshake failed: {e}"))),
        Err(_) => Err(Failed::reached("TLS handshake timed out")),
    }
}

async fn accept_loop(
    listener: TcpListener,
    links: Vec<Link>,
    events: Sender<PartnerEvent>,
    outbox: Outbox,
    stats: Arc<Stats>,
) {
    let links = Arc::new(links);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(8));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "partner accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // §6.1: only a configured primary may connect.
        let candidates: Vec<Link> = links
            .iter()
            .filter(|l| l.cfg.peer.ip() == peer.ip())
            .cloned()
            .collect();
        if candidates.is_empty() {
            refuse(
                &stats,
                peer,
                "unknown peer: no relationship has this address as primary",
            );
            continue;
        }
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            refuse(&stats, peer, "too many connections in handshake");
            for l in &candidates {
                let _ = events.try_send(PartnerEvent::Attempt {
                    rel: l.rel,
                    refusal: None,
                });
            }
            continue;
        };
        let (events, outbox, stats) = (events.clone(), outbox.clone(), stats.clone());
        tokio::spawn(async move {
            let r =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, accept_one(stream, peer, &candidates, &stats)).await;
            drop(permit);
            match r {
                Ok(Ok((conn, rel, first))) => {
                    let _ = match conn {
                        Accepted::Tls(s) => run_conn(*s, rel, first, &events, &outbox).await,
                        Accepted::Plain(s) => run_conn(s, rel, first, &events, &outbox).await,
                    };
                }
                Ok(Err(e)) => {
                    refuse(&stats, peer, &e.reason);
                    attempted(&events, &candidates, e).await;
                }
                Err(_) => {
                    refuse(&stats, peer, "handshake timeout");
                    attempted(&events, &candidates, Failed::reached("handshake timeout")).await;
                }
            }
        });
    }
}

/// A connection from the partner's address that reached no endpoint: the
/// partner is alive (and refused, if for its identity).
async fn attempted(events: &Sender<PartnerEvent>, candidates: &[Link], e: Failed) {
    for l in candidates {
        let refusal = e.identity.then(|| (RefusalKind::Identity, e.reason.clone()));
        let _ = events.send(PartnerEvent::Attempt { rel: l.rel, refusal }).await;
    }
}

enum Accepted {
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Plain(TcpStream),
}

fn pick<'l>(candidates: &'l [Link], connect: &FailoverMessage<'_>) -> Option<&'l Link> {
    let name = connect.options.iter().find_map(|o| match o {
        DhcpOption::RelationshipName(n) => Some(n.to_string()),
        _ => None,
    });
    match name {
        Some(n) => candidates.iter().find(|l| l.cfg.name == n),
        // §5.5.14: no name means the one relationship with this primary.
        None if candidates.len() == 1 => candidates.first(),
        None => None,
    }
}

fn parse_connect(frame: &[u8]) -> Result<FailoverMessage<'static>, String> {
    match StreamMessage::parse(frame) {
        Ok(StreamMessage::Failover(m)) if m.msg_type == FailoverMessageType::Connect => Ok(m.into_owned()),
        Ok(other) => Err(format!("expected CONNECT, got {other:?}")),
        Err(e) => Err(format!("malformed first message: {e}")),
    }
}

async fn accept_one(
    mut stream: TcpStream,
    peer: SocketAddr,
    candidates: &[Link],
    stats: &Stats,
) -> Result<(Accepted, usize, Vec<FailoverMessage<'static>>), Failed> {
    let _ = stream.set_nodelay(true);
    let first = read_frame(&mut stream)
        .await
        .map_err(|e| Failed::reached(format!("no first message: {e}")))?;
    match StreamMessage::parse(&first) {
        Ok(StreamMessage::Tls(m)) if m.msg_type == MessageType::StartTls => {
            let Some(tls) = candidates.iter().find_map(|l| l.tls.clone()) else {
                // Insecure relationships answer STARTTLS with TLSConnectionRefused.
                let mut reply = ClientMessage::new(MessageType::Reply, m.transaction_id);
                reply.options.push(DhcpOption::StatusCode(Status::new(
                    StatusCode::TlsConnectionRefused,
                    "TLS not configured",
                )));
                let _ = write_msg(&mut stream, StreamMessage::Tls(reply)).await;
                return Err(Failed::refused("peer asked for TLS on an insecure relationship"));
            };
            let reply = ClientMessage::new(MessageType::Reply, m.transaction_id);
            write_msg(&mut stream, StreamMessage::Tls(reply))
                .await
                .map_err(Failed::reached)?;
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
            let mut s = acceptor
                .accept(stream)
                .await
                .map_err(|e| Failed::refused(format!("TLS handshake failed: {e}")))?;
            let frame = read_frame(&mut s)
                .await
                .map_err(|e| Failed::reached(format!("no CONNECT: {e}")))?;
            let connect = parse_connect(&frame).map_err(Failed::reached)?;
            let link = pick(candidates, &connect)
                .ok_or_else(|| Failed::refused("CONNECT names no relationship we have with this peer"))?;
            let Some(link_tls) = &link.tls else {
                return Err(Failed::refused(format!(
                    "relationship {} is insecure but the peer used TLS",
                    link.cfg.name
                )));
            };
            check_peer_name(s.get_ref().1.peer_certificates(), &link_tls.peer_name)
                .map_err(|e| Failed::refused(format!("certificate: {e}")))?;
            tracing::info!(%peer, relationship = %link.cfg.name, "partner connected (TLS 1.3, certificate verified)");
            let _ = stats;
            Ok((Accepted::Tls(Box::new(s)), link.rel, vec![connect]))
        }
        Ok(StreamMessage::Failover(_)) => {
            let connect = parse_connect(&first).map_err(Failed::reached)?;
            let link = pick(candidates, &connect)
                .ok_or_else(|| Failed::refused("CONNECT names no relationship we have with this peer"))?;
            if link.tls.is_some() {
                return Err(Failed::refused(format!(
                    "no TLS: relationship {} requires STARTTLS",
                    link.cfg.name
                )));
            }
            tracing::warn!(%peer, relationship = %link.cfg.name, "partner connected WITHOUT TLS (insecure = true)");
            Ok((Accepted::Plain(stream), link.rel, vec![connect]))
        }
        Ok(other) => Err(Failed::reached(format!("unexpected first message {other:?}"))),
        Err(e) => Err(Failed::reached(format!("malformed first message: {e}"))),
    }
}

/// Runs one established connection until it ends. `Err` when the partner
/// closed it without ever sending a message (a refusal).
async fn run_conn<S>(
    stream: S,
    rel: usize,
    first: Vec<FailoverMessage<'static>>,
    events: &Sender<PartnerEvent>,
    outbox: &Outbox,
) -> Result<(), Failed>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Outgoing>(OUTGOING_FRAMES);
    if let Some(slot) = outbox.get(rel) {
        if let Ok(mut s) = slot.lock() {
            if let Some((_, old)) = s.replace((conn, tx)) {
                let _ = old.try_send(Outgoing::Close);
            }
        }
    }
    let _ = events.send(PartnerEvent::Connected { rel, conn }).await;
    let received = AtomicU64::new(first.len() as u64);
    for msg in first {
        let _ = events.send(PartnerEvent::Message { rel, conn, msg }).await;
    }
    let writer = async {
        let mut out = Vec::new();
        while let Some(first) = rx.recv().await {
            // Everything queued goes out in one write: a group of BNDUPDs
            // or BNDREPLYs costs one syscall and as few TLS records as its
            // size allows, not one of each per message.
            let mut next = Some(first);
            let mut close = false;
            while let Some(o) = next.take() {
                match o {
                    Outgoing::Frame(b) => out.extend_from_slice(&b),
                    Outgoing::Close => {
                        close = true;
                        break;
                    }
                }
                next = rx.try_recv().ok();
            }
            if !out.is_empty() {
                wr.write_all(&out).await.map_err(|e| format!("write: {e}"))?;
                wr.flush().await.map_err(|e| format!("write: {e}"))?;
                out.clear();
            }
            if close {
                let _ = wr.shutdown().await;
                return Err::<(), String>("closed by us".into());
            }
        }
        Err("outbox dropped".into())
    };
    let reader = async {
        let mut dec = FrameDecoder::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = rd.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err::<(), String>("closed by the partner".into());
            }
            dec.push(buf.get(..n).unwrap_or_default());
            loop {
                match dec.next_frame() {
                    Ok(Some(frame)) => match StreamMessage::parse(frame) {
                        Ok(StreamMessage::Failover(m)) => {
                            received.fetch_add(1, Ordering::Relaxed);
                            // A full channel makes this reader wait: TCP
                            // then holds the partner back.
                            let _ = events
                                .send(PartnerEvent::Message {
                                    rel,
                                    conn,
                                    msg: m.into_owned(),
                                })
                                .await;
                        }
                        Ok(StreamMessage::Tls(m)) => {
                            return Err(format!("unexpected {} after the handshake", m.msg_type))
                        }
                        Err(e) => return Err(format!("malformed failover message: {e}")),
                    },
                    Ok(None) => break,
                    Err(e) => return Err(format!("bad frame: {e}")),
                }
            }
        }
    };
    let reason = tokio::select! {
        r = writer => r.err().unwrap_or_default(),
        r = reader => r.err().unwrap_or_default(),
    };
    if let Some(slot) = outbox.get(rel) {
        if let Ok(mut s) = slot.lock() {
            if s.as_ref().is_some_and(|(c, _)| *c == conn) {
                *s = None;
            }
        }
    }
    let refused = received.load(Ordering::Relaxed) == 0;
    let _ = events
        .send(PartnerEvent::Closed {
            rel,
            conn,
            reason: reason.clone(),
        })
        .await;
    if refused {
        // It accepted TCP and TLS, then closed without a word: it refuses
        // our certificate or relationship name (its log says which).
        Err(Failed::refused(format!(
            "the partner closed the connection before answering (it may refuse this server's certificate or relationship name; see its log): {reason}"
        )))
    } else {
        Ok(())
    }
}
