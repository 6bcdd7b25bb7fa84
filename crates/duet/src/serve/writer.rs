//! The store writer: one thread that makes binding changes durable in
//! groups and only then sends the replies that report them (RFC 7031 §2;
//! ARCHITECTURE "durable before visible").
//!
//! Whatever arrives while a commit is running forms the next group, so one
//! fsync serves every request of a burst.

use super::partner::{Outbox, Outgoing};
use super::stats::Stats;
use super::udp;
use duet_core::lease::{Lease, LeaseKey};
use duet_core::store::{Batch, LeaseStore};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Metadata key of the last time this server was known to run.
pub const META_LAST_OPERATING: &str = "last-operating";

/// A reply waiting for its changes to be durable.
#[derive(Debug)]
pub struct OutReply {
    /// Index of the socket to send from.
    pub socket: usize,
    /// The datagram.
    pub bytes: Vec<u8>,
    /// Destination address.
    pub to: Ipv6Addr,
    /// Destination port.
    pub port: u16,
    /// Arrival interface of the request.
    pub ifindex: u32,
    /// Source address to use (the request's unicast destination).
    pub src: Option<Ipv6Addr>,
}

/// Work for the writer.
#[derive(Debug, Default)]
pub struct Job {
    /// Lease records to persist.
    pub changes: Vec<Lease>,
    /// Metadata to persist.
    pub meta: Vec<(String, Vec<u8>)>,
    /// Replies to send once the changes are durable.
    pub replies: Vec<OutReply>,
    /// Failover messages (and closes) for the partner of each relationship,
    /// sent once the changes are durable.
    pub partner: Vec<(usize, Outgoing)>,
    /// The changes are bookkeeping whose loss in a crash is harmless (what
    /// the partner acknowledged: lost, the update is simply sent again and
    /// lifetimes are capped more tightly meanwhile), and the messages do
    /// not report them. They ride along with the next commit (or one within
    /// a second) instead of costing an fsync of their own.
    pub lazy: bool,
}

impl Job {
    /// Whether the job carries nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.meta.is_empty() && self.replies.is_empty() && self.partner.is_empty()
    }
}

/// Runs until the sending side of `jobs` is dropped and everything queued
/// is written. Returns the store (so shutdown can close it cleanly).
pub fn run(
    mut store: Box<dyn LeaseStore>,
    jobs: Receiver<Job>,
    sockets: Vec<Arc<UdpSocket>>,
    outbox: Outbox,
    stats: Arc<Stats>,
    window: Duration,
) {
    // Lazy changes waiting for a commit, and since when.
    let mut deferred: Vec<Lease> = Vec::new();
    let mut deferred_since = std::time::Instant::now();
    loop {
        let wait = if deferred.is_empty() {
            Duration::from_millis(500)
        } else {
            LAZY_MAX_DELAY.saturating_sub(deferred_since.elapsed())
        };
        let first = match jobs.recv_timeout(wait) {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) if deferred.is_empty() => continue,
            // Time to write what was deferred.
            Err(RecvTimeoutError::Timeout) => Job::default(),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        // Group commit: everything already queued and, with a commit
        // window, whatever arrives within it (fewer fsyncs under load). The
        // writer sleeps the window once rather than waking for every job.
        if !window.is_zero() {
            std::thread::sleep(window);
        }
        while let Ok(j) = jobs.try_recv() {
            group.push(j);
        }
        let all_lazy = group
            .iter()
            .all(|j| j.lazy && j.meta.is_empty() && j.replies.is_empty());
        if all_lazy && deferred_since.elapsed() < LAZY_MAX_DELAY && !group.iter().all(Job::is_empty) {
            if deferred.is_empty() {
                deferred_since = std::time::Instant::now();
            }
            for job in group {
                deferred.extend(job.changes);
                send_partner(&outbox, job.partner);
            }
            continue;
        }
        // Latest record per lease wins inside the group (deferred ones first:
        // they are older).
        let mut latest: HashMap<LeaseKey, Lease> = HashMap::new();
        let mut order = Vec::new();
        let mut batch = Batch::default();
        let mut replies = Vec::new();
        let mut partner = Vec::new();
        let earlier = Job {
            changes: std::mem::take(&mut deferred),
            ..Job::default()
        };
        for job in std::iter::once(earlier).chain(group) {
            for l in job.changes {
                if latest.insert(l.key, l.clone()).is_none() {
                    order.push(l.key);
                }
            }
            batch.meta.extend(job.meta);
            replies.extend(job.replies);
            partner.extend(job.partner);
        }
        batch.leases = order.into_iter().filter_map(|k| latest.remove(&k)).collect();
        if !batch.is_empty() {
            // The last time this server is known to have run (RFC 8156
            // §8.3.2 TIME-OF-FAILURE), with every commit.
            batch.meta.push((
                META_LAST_OPERATING.to_string(),
                super::now().secs().to_le_bytes().to_vec(),
            ));
            match store.commit(&batch) {
                Ok(()) => {
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                    stats
                        .committed_records
                        .fetch_add(batch.leases.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    // Never tell a client what was not made durable.
                    tracing::error!(error = %e, "store commit failed; dropping {} replies and stopping", replies.len());
                    stats.store_failed.store(true, Ordering::SeqCst);
                    stats
                        .replies_dropped
                        .fetch_add(replies.len() as u64, Ordering::Relaxed);
                    break;
                }
            }
        }
        for r in replies {
            let Some(sock) = sockets.get(r.socket) else {
                continue;
            };
            match udp::send(sock, &r.bytes, r.to, r.port, r.ifindex, r.src) {
                Ok(()) => {
                    stats.replies_sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(to = %r.to, error = %e, "send failed");
                }
            }
        }
        // Then the partner's messages: lazy updates never delay a client's
        // reply (RFC 7031 req. 6).
        send_partner(&outbox, partner);
    }
    if !deferred.is_empty() {
        let batch = Batch {
            leases: deferred,
            meta: vec![],
        };
        if let Err(e) = store.commit(&batch) {
            tracing::warn!(error = %e, "could not write deferred acknowledgements at shutdown");
        }
    }
}

/// How long acknowledgement bookkeeping may wait for a commit to ride on.
const LAZY_MAX_DELAY: Duration = Duration::from_secs(1);

fn send_partner(outbox: &Outbox, partner: Vec<(usize, Outgoing)>) {
    for (rel, o) in partner {
        if let Some(Ok(slot)) = outbox.get(rel).map(|s| s.lock()) {
            if let Some((_, tx)) = slot.as_ref() {
                let _ = tx.send(o);
            }
        }
    }
}
