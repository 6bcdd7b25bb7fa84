//! The store writer: makes a [`Commit`] durable, on whichever thread is
//! faster, and says when it is. What the commit released leaves only after
//! the node has been told ([`duet_core::node::Node::commit_done`]).
//!
//! A small commit runs on the processing thread itself: it blocks that
//! thread for one fdatasync, and datagrams arriving meanwhile wait in the
//! sockets' receive buffers and form the next commit (measured: at low load
//! the thread wake-ups of a hand-off cost more CPU per exchange than the
//! overlap saves). A commit that answers at least [`OFF_THREAD_MIN_REPLIES`]
//! clients — the server is busy — runs on a blocking thread instead, and the
//! processing thread goes on meanwhile (answering Solicits; what needs a
//! commit waits for the next one, which the node hands out only after this
//! one is reported). One commit at a time, in order.

use super::stats::Stats;
use duet_core::node::Commit;
use duet_core::store::{LeaseStore, StoreError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A commit answering at least this many clients runs off the processing
/// thread (see the module documentation).
pub const OFF_THREAD_MIN_REPLIES: usize = 4;

/// The report of a commit that ran off the processing thread.
pub struct Done {
    /// The store back (`None` if the commit panicked).
    store: Option<Box<dyn LeaseStore>>,
    /// The commit's number.
    pub seq: u64,
    records: usize,
    result: Result<(), StoreError>,
}

/// What became of a commit handed to [`Writer::start`].
pub enum Started {
    /// It ran here: its number and result.
    Done(u64, Result<(), StoreError>),
    /// It runs on a blocking thread; its [`Done`] arrives on the channel.
    Running,
}

/// Runs commits (see the module documentation).
pub struct Writer {
    /// `None` while a commit runs off the processing thread.
    store: Option<Box<dyn LeaseStore>>,
    done_tx: mpsc::UnboundedSender<Done>,
    /// Whether a large commit may run off the thread (not at shutdown).
    off_thread: bool,
    stats: Arc<Stats>,
}

/// The error of a store that is no longer there (its off-thread commit
/// panicked): the server must stop.
fn store_lost(why: &str) -> StoreError {
    StoreError::Io {
        path: "lease store".to_string(),
        source: std::io::Error::other(why.to_string()),
    }
}

impl Writer {
    /// A writer over `store`; off-thread commits report to `done_tx` (hand
    /// each report to [`Writer::completed`]).
    pub fn new(
        store: Box<dyn LeaseStore>,
        done_tx: mpsc::UnboundedSender<Done>,
        stats: Arc<Stats>,
    ) -> Writer {
        Writer {
            store: Some(store),
            done_tx,
            off_thread: true,
            stats,
        }
    }

    /// Whether a commit runs off the processing thread.
    pub fn busy(&self) -> bool {
        self.store.is_none()
    }

    /// From now on every commit runs on the calling thread (at shutdown).
    pub fn inline_only(&mut self) {
        self.off_thread = false;
    }

    /// Makes `c` durable: here, or off the thread when it answers many
    /// clients.
    pub fn start(&mut self, c: Commit) -> Started {
        let Some(mut store) = self.store.take() else {
            return Started::Done(c.seq, Err(store_lost("lost after a failed commit")));
        };
        let records = c.batch.leases.len();
        if self.off_thread && c.replies >= OFF_THREAD_MIN_REPLIES {
            let tx = self.done_tx.clone();
            let seq = c.seq;
            tokio::task::spawn_blocking(move || {
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.commit(&c.batch)));
                let done = match result {
                    Ok(result) => Done {
                        store: Some(store),
                        seq,
                        records,
                        result,
                    },
                    Err(_) => Done {
                        store: None,
                        seq,
                        records,
                        result: Err(store_lost("the commit panicked")),
                    },
                };
                let _ = tx.send(done);
            });
            return Started::Running;
        }
        let result = store.commit(&c.batch);
        self.store = Some(store);
        self.count(&result, records);
        Started::Done(c.seq, result)
    }

    /// Takes back the store of a commit that ran off the thread; its
    /// number and result, for the node.
    pub fn completed(&mut self, done: Done) -> (u64, Result<(), StoreError>) {
        self.store = done.store;
        self.count(&done.result, done.records);
        (done.seq, done.result)
    }

    fn count(&self, result: &Result<(), StoreError>, records: usize) {
        if result.is_ok() {
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .committed_records
                .fetch_add(records as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_core::lease::{Lease, LeaseKey, LeaseState};
    use duet_core::store::{Batch, FaultyStore, MemoryStore};
    use duet_core::time::UnixTime;

    fn commit(seq: u64, replies: usize) -> Commit {
        let key = LeaseKey::address(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, seq as u16));
        Commit {
            seq,
            batch: Batch {
                leases: vec![Lease::free(key, LeaseState::Free, UnixTime(1))],
                meta: vec![],
            },
            replies,
        }
    }

    /// A commit for a few clients runs here; one for many runs on a
    /// blocking thread and reports back; one at a time either way.
    #[tokio::test]
    async fn a_busy_commit_runs_off_the_thread_and_a_quiet_one_here() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut w = Writer::new(Box::new(MemoryStore::new()), tx, Arc::new(Stats::default()));
        match w.start(commit(1, OFF_THREAD_MIN_REPLIES - 1)) {
            Started::Done(1, Ok(())) => {}
            _ => panic!("a quiet commit runs on the calling thread"),
        }
        assert!(!w.busy());
        assert!(matches!(
            w.start(commit(2, OFF_THREAD_MIN_REPLIES)),
            Started::Running
        ));
        assert!(w.busy(), "the store is away while the commit runs");
        let done = rx.recv().await.unwrap();
        let (seq, r) = w.completed(done);
        assert_eq!(seq, 2);
        assert!(r.is_ok());
        assert!(!w.busy());
        // At shutdown every commit runs here.
        w.inline_only();
        assert!(matches!(w.start(commit(3, 100)), Started::Done(3, Ok(()))));
        assert_eq!(w.stats.commits.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_failed_commit_is_reported_and_not_counted() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let store = FaultyStore {
            inner: MemoryStore::new(),
            fail_next: 1,
        };
        let mut w = Writer::new(Box::new(store), tx, Arc::new(Stats::default()));
        assert!(matches!(w.start(commit(1, 1)), Started::Done(1, Err(_))));
        assert_eq!(w.stats.commits.load(Ordering::Relaxed), 0);
    }
}
