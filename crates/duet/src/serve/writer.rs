//! The store writer: makes binding changes durable in groups and only
//! then sends the replies that report them (RFC 7031 §2; ARCHITECTURE
//! "durable before visible").
//!
//! Whatever arrives while a commit is running forms the next group, so one
//! fsync serves every request of a burst.

use super::pace::Pacer;
use super::partner::{Outbox, Outgoing};
use super::stats::Stats;
use super::udp;
use duet_core::lease::{Lease, LeaseKey};
use duet_core::store::{Batch, LeaseStore, StoreError};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

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
    /// with the connection they were made for, sent once the changes are
    /// durable.
    pub partner: Vec<PartnerMessage>,
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

/// What the processing loop hands its work to: makes binding changes
/// durable (one record, one fdatasync per commit), then sends the replies
/// that report them, then the partner's messages.
///
/// A small commit runs on the processing thread itself: it blocks that
/// thread for one fdatasync, and datagrams arriving meanwhile wait in the
/// sockets' receive buffers and form the next group (measured: at low load
/// the thread wake-ups of a hand-off cost more CPU per exchange than the
/// overlap saves). A commit that answers at least [`OFF_THREAD_MIN_REPLIES`]
/// clients — the server is busy — runs on a blocking thread instead, and
/// the processing thread goes on meanwhile: it answers Solicits, and what
/// needs a commit waits for the next one, started when this one reports
/// back ([`Writer::completed`]). One commit at a time, in order; a Reply
/// still leaves only after its commit returned.
pub struct Writer {
    /// `None` while a commit runs off the processing thread.
    store: Option<Box<dyn LeaseStore>>,
    /// The replies and partner messages of the commit running off the
    /// thread, sent when it reports back.
    in_flight: Option<(Vec<OutReply>, Vec<PartnerMessage>)>,
    /// Where an off-thread commit reports back.
    done_tx: mpsc::UnboundedSender<Done>,
    /// Whether a large commit may run off the thread (not at shutdown).
    off_thread: bool,
    outbox: Outbox,
    stats: Arc<Stats>,
    /// How long a job waits for more to commit with (0: commit at once).
    window: Duration,
    /// Work not yet committed, and the time by which it must be.
    pending: Job,
    due: Option<Instant>,
    /// Partner messages of commits already made, waiting to leave in a
    /// group, and the time by which they must.
    outgoing: Vec<PartnerMessage>,
    outgoing_due: Option<Instant>,
    /// The [`META_LAST_OPERATING`] value (Unix seconds) of the last commit
    /// that carried it: a commit in the same second leaves it out, since
    /// it would write the same bytes again.
    last_operating: Option<u64>,
}

/// The report of a commit that ran off the processing thread: the store
/// back (`None` if the commit panicked) and the commit's result.
pub struct Done {
    store: Option<Box<dyn LeaseStore>>,
    records: usize,
    result: Result<(), StoreError>,
}

/// The latest record of each lease in `changes`, in the order each lease
/// first appears.
fn latest_per_lease(changes: Vec<Lease>) -> Vec<Lease> {
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

/// The error of a store that is no longer there (its off-thread commit
/// panicked): the server must stop.
fn store_lost(why: &str) -> StoreError {
    StoreError::Io {
        path: "lease store".to_string(),
        source: std::io::Error::other(why.to_string()),
    }
}

/// A commit answering at least this many clients runs off the processing
/// thread (see [`Writer`]).
pub const OFF_THREAD_MIN_REPLIES: usize = 4;

impl Writer {
    /// A writer over `store`; replies leave by the [`Outbound`] each call
    /// is given, partner messages by `outbox`; off-thread commits report
    /// to `done_tx` (hand each report to [`Writer::completed`]).
    pub fn new(
        store: Box<dyn LeaseStore>,
        done_tx: mpsc::UnboundedSender<Done>,
        outbox: Outbox,
        stats: Arc<Stats>,
        window: Duration,
    ) -> Writer {
        Writer {
            store: Some(store),
            in_flight: None,
            done_tx,
            off_thread: true,
            outbox,
            stats,
            window,
            pending: Job::default(),
            due: None,
            outgoing: Vec::new(),
            outgoing_due: None,
            last_operating: None,
        }
    }

    /// When [`Writer::on_due`] must be called at the latest, if anything
    /// is pending (a pending commit is not due while another one runs: its
    /// report starts the next).
    pub fn due(&self) -> Option<Instant> {
        let commit = if self.in_flight.is_some() { None } else { self.due };
        match (commit, self.outgoing_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Does what is due at `now`: the waiting commit, then the waiting
    /// partner messages.
    pub fn on_due(&mut self, now: Instant, out: &mut Outbound) -> Result<(), StoreError> {
        self.flush_if_due(now, out)?;
        if self.outgoing_due.is_some_and(|d| d <= now) {
            self.send_outgoing();
        }
        Ok(())
    }

    /// Whether a commit runs off the processing thread.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Takes the report of the commit that ran off the thread: sends its
    /// replies and queues its partner messages, then starts the commit of
    /// what became due meanwhile. On a store error nothing of it is sent
    /// and the error is returned: the server must stop.
    pub fn completed(&mut self, done: Done, out: &mut Outbound) -> Result<(), StoreError> {
        let (replies, partner) = self.in_flight.take().unwrap_or_default();
        self.store = done.store;
        let now = Instant::now();
        self.committed(done.result, done.records, replies, partner, now, out)?;
        self.flush_if_due(now, out)
    }

    /// From now on every commit runs on the calling thread (at shutdown,
    /// once a commit running off the thread has reported back).
    pub fn inline_only(&mut self) {
        self.off_thread = false;
    }

    /// Sends everything pending now: commits what waits, then sends all
    /// partner messages (at shutdown, after [`Writer::inline_only`]).
    pub fn finish(&mut self, out: &mut Outbound) -> Result<(), StoreError> {
        self.inline_only();
        self.flush(Instant::now(), out)?;
        out.flush_all();
        self.send_outgoing();
        Ok(())
    }

    fn send_outgoing(&mut self) {
        self.outgoing_due = None;
        send_partner(&self.outbox, std::mem::take(&mut self.outgoing));
    }

    /// Queues partner messages whose changes are durable. They leave
    /// together, at most [`QUIET_COMMIT_DELAY`] later or once there are
    /// [`GROUP_MAX_MESSAGES`]: BNDUPDs are lazy (RFC 8156 §6.1; the MCLT
    /// rule caps what a client gets meanwhile), and a group costs the
    /// partner one wake-up and one TLS record instead of one per message.
    fn queue_partner(&mut self, now: Instant, partner: Vec<PartnerMessage>) {
        if partner.is_empty() {
            return;
        }
        self.outgoing.extend(partner);
        if self.outgoing.len() >= GROUP_MAX_MESSAGES {
            self.send_outgoing();
        } else if self.outgoing_due.is_none() {
            self.outgoing_due = Some(now + QUIET_COMMIT_DELAY);
        }
    }

    /// Takes one job. A job that is only acknowledgement bookkeeping
    /// ([`Job::lazy`]) has its messages queued now (they do not report its
    /// changes) and its changes kept for the next commit (at most
    /// `LAZY_MAX_DELAY`). A job with client replies is committed now,
    /// with everything pending, unless a commit window is set: then it
    /// waits up to the window for more. A job without replies waits up to
    /// [`QUIET_COMMIT_DELAY`] (or the window, if longer).
    pub fn submit(&mut self, now: Instant, job: Job, out: &mut Outbound) -> Result<(), StoreError> {
        if job.is_empty() {
            return Ok(());
        }
        let lazy = job.lazy && job.meta.is_empty() && job.replies.is_empty();
        if lazy {
            self.queue_partner(now, job.partner);
            if job.changes.is_empty() {
                return Ok(());
            }
            self.pending.changes.extend(job.changes);
            let due = now + LAZY_MAX_DELAY;
            self.due = Some(self.due.map_or(due, |d| d.min(due)));
            return self.flush_if_due(now, out);
        }
        // No client waits for a job without replies (a partner's updates
        // applied, lease timers, state records): it may wait a little for
        // company, so that a secondary does not fsync once per BNDUPD.
        // Its messages (BNDREPLYs) leave with that commit, at most
        // QUIET_COMMIT_DELAY later; a client's job commits it at once.
        let wait = if job.replies.is_empty() {
            self.window.max(QUIET_COMMIT_DELAY)
        } else {
            self.window
        };
        self.pending.changes.extend(job.changes);
        self.pending.meta.extend(job.meta);
        self.pending.replies.extend(job.replies);
        self.pending.partner.extend(job.partner);
        let due = now + wait;
        self.due = Some(self.due.map_or(due, |d| d.min(due)));
        if self.pending.partner.len() >= GROUP_MAX_MESSAGES {
            // Do not hold back so many acknowledgements that the partner
            // reaches its max-unacked-bndupd limit.
            return self.flush(now, out);
        }
        self.flush_if_due(now, out)
    }

    fn flush_if_due(&mut self, now: Instant, out: &mut Outbound) -> Result<(), StoreError> {
        match self.due {
            Some(due) if due <= now => self.flush(now, out),
            _ => Ok(()),
        }
    }

    /// Commits everything pending (latest record per lease wins), then
    /// sends its replies, then queues its partner messages (lazy updates
    /// never delay a client's reply, RFC 7031 req. 6) — at once, or, for a
    /// large commit, off the thread when it reports back. Nothing while a
    /// commit runs off the thread: its report starts this one. On a store
    /// error nothing pending is sent (never tell a client what was not made
    /// durable) and the error is returned: the server must stop.
    fn flush(&mut self, now: Instant, out: &mut Outbound) -> Result<(), StoreError> {
        if self.in_flight.is_some() {
            return Ok(());
        }
        let Some(mut store) = self.store.take() else {
            return Err(store_lost("lost after a failed commit"));
        };
        self.due = None;
        let job = std::mem::take(&mut self.pending);
        let mut batch = Batch {
            leases: latest_per_lease(job.changes),
            meta: job.meta,
        };
        if batch.is_empty() {
            self.store = Some(store);
            out.send(now, job.replies);
            self.queue_partner(now, job.partner);
            return Ok(());
        }
        // The last time this server is known to have run (RFC 8156 §8.3.2
        // TIME-OF-FAILURE), with every commit in a new second (the store
        // keeps the latest value; the same second again adds nothing).
        let secs = super::now().secs();
        if self.last_operating != Some(secs) {
            batch
                .meta
                .push((META_LAST_OPERATING.to_string(), secs.to_le_bytes().to_vec()));
            self.last_operating = Some(secs);
        }
        let records = batch.leases.len();
        if self.off_thread && job.replies.len() >= OFF_THREAD_MIN_REPLIES {
            self.in_flight = Some((job.replies, job.partner));
            let tx = self.done_tx.clone();
            tokio::task::spawn_blocking(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.commit(&batch)));
                let done = match result {
                    Ok(result) => Done {
                        store: Some(store),
                        records,
                        result,
                    },
                    Err(_) => Done {
                        store: None,
                        records,
                        result: Err(store_lost("the commit panicked")),
                    },
                };
                let _ = tx.send(done);
            });
            return Ok(());
        }
        let result = store.commit(&batch);
        self.store = Some(store);
        // The commit took a while: the replies leave as of its end.
        self.committed(result, records, job.replies, job.partner, Instant::now(), out)
    }

    /// After a commit of `records` lease records: on success sends its
    /// replies and queues its partner messages; on failure drops them,
    /// counted, and returns the error.
    fn committed(
        &mut self,
        result: Result<(), StoreError>,
        records: usize,
        replies: Vec<OutReply>,
        partner: Vec<PartnerMessage>,
        now: Instant,
        out: &mut Outbound,
    ) -> Result<(), StoreError> {
        if let Err(e) = result {
            tracing::error!(error = %e, "store commit failed; dropping {} replies and stopping", replies.len());
            self.stats
                .replies_dropped
                .fetch_add(replies.len() as u64, Ordering::Relaxed);
            return Err(e);
        }
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats
            .committed_records
            .fetch_add(records as u64, Ordering::Relaxed);
        out.send(now, replies);
        self.queue_partner(now, partner);
        Ok(())
    }
}

/// Where datagrams to clients and relays leave: the DHCPv6 sockets,
/// through a [`Pacer`] (see `pace`), counting what was sent and what
/// failed.
pub struct Outbound {
    sockets: Vec<Arc<UdpSocket>>,
    stats: Arc<Stats>,
    pacer: Pacer<OutReply>,
}

impl Outbound {
    /// Sends by `sockets`, paced by `pacer`.
    pub fn new(sockets: Vec<Arc<UdpSocket>>, stats: Arc<Stats>, pacer: Pacer<OutReply>) -> Outbound {
        Outbound {
            sockets,
            stats,
            pacer,
        }
    }

    /// Sends `replies` now, or as soon as pacing lets them.
    pub fn send(&mut self, now: Instant, replies: impl IntoIterator<Item = OutReply>) {
        for r in replies {
            match self.pacer.offer(now, r) {
                Some(r) => self.send_now(&r),
                None => {
                    self.stats.replies_paced.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Sends the waiting datagrams whose turn has come.
    pub fn release(&mut self, now: Instant) {
        for r in self.pacer.release(now) {
            self.send_now(&r);
        }
    }

    /// Whether datagrams wait for pacing.
    pub fn waiting(&self) -> bool {
        self.pacer.waiting() > 0
    }

    /// When [`Outbound::release`] has something to send, if anything waits.
    pub fn next_release(&self) -> Option<Instant> {
        self.pacer.next_release()
    }

    /// Sends everything waiting at once (at shutdown).
    pub fn flush_all(&mut self) {
        for r in self.pacer.drain_all() {
            self.send_now(&r);
        }
    }

    fn send_now(&self, r: &OutReply) {
        let Some(sock) = self.sockets.get(r.socket) else {
            return;
        };
        match udp::send(sock, &r.bytes, r.to, r.port, r.ifindex, r.src) {
            Ok(()) => {
                self.stats.replies_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(to = %r.to, error = %e, "send failed");
            }
        }
    }
}

/// How long a job that answers no client may wait for more work to
/// commit with (see [`Writer::submit`]).
pub const QUIET_COMMIT_DELAY: Duration = Duration::from_millis(5);

/// A waiting commit is made, or waiting partner messages are sent, at once
/// when there are this many messages: a group of BNDUPDs held here plus a
/// group of BNDREPLYs held by the partner stays well below the default
/// max-unacked-bndupd of 100.
const GROUP_MAX_MESSAGES: usize = 16;

/// How long acknowledgement bookkeeping may wait for a commit to ride on.
const LAZY_MAX_DELAY: Duration = Duration::from_secs(1);

/// (relationship index, the connection the message was made for, the
/// message). `None`: no connection was up; the message goes nowhere.
pub type PartnerMessage = (usize, Option<u64>, Outgoing);

/// Hands each message to its relationship's connection, if that is still
/// the connection it was made for: a message for a connection that closed
/// meanwhile (a DISCONNECT, a Close, a BNDUPD) must not reach its
/// successor, which starts with its own CONNECT exchange.
fn send_partner(outbox: &Outbox, partner: Vec<PartnerMessage>) {
    for (rel, conn, o) in partner {
        if let Some(Ok(slot)) = outbox.get(rel).map(|s| s.lock()) {
            if let Some((current, tx)) = slot.as_ref() {
                if conn == Some(*current) {
                    let _ = tx.send(o);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::latest_per_lease;
    use duet_core::lease::{Lease, LeaseKey, LeaseState};
    use duet_core::time::UnixTime;
    use std::net::Ipv6Addr;

    fn rec(n: u16, t: u64) -> Lease {
        Lease::free(
            LeaseKey::address(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)),
            LeaseState::Free,
            UnixTime(t),
        )
    }

    /// The last record of each lease, in first-appearance order.
    #[test]
    fn latest_per_lease_keeps_the_last_record_in_first_order() {
        for len in [0usize, 1, 2, 5, 30] {
            let changes: Vec<Lease> = (0..len).map(|i| rec((i % 4) as u16, i as u64)).collect();
            let mut want: Vec<Lease> = Vec::new();
            for l in &changes {
                if !want.iter().any(|w| w.key == l.key) {
                    let last = changes.iter().rev().find(|c| c.key == l.key).cloned();
                    want.extend(last);
                }
            }
            assert_eq!(latest_per_lease(changes), want, "{len} records");
        }
    }
}
