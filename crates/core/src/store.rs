//! The narrow interface to stable storage, and an in-memory store.
//!
//! The rule (RFC 7031 §2 "stable storage", ARCHITECTURE "durable before
//! visible"): a reply is sent, and a BNDUPD or BNDREPLY leaves, only after
//! the lease records it reports were committed by [`LeaseStore::commit`].
//! One commit serves a whole batch of requests (group commit).
//!
//! The store keeps the latest record per lease (by [`LeaseKey`]) and a small
//! key → bytes map for server metadata (server DUID, failover endpoint
//! state, last time of operation).

use crate::lease::{Lease, LeaseKey};
use std::collections::{BTreeMap, HashMap};

/// Everything a store held when it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The latest record of every lease.
    pub leases: Vec<Lease>,
    /// Metadata by key.
    pub meta: BTreeMap<String, Vec<u8>>,
    /// Problems found and dealt with while opening (e.g. a corrupt tail
    /// moved aside), for the log. Never silent.
    pub warnings: Vec<String>,
}

/// One group commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Lease records to write (latest wins).
    pub leases: Vec<Lease>,
    /// Metadata to set.
    pub meta: Vec<(String, Vec<u8>)>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty() && self.meta.is_empty()
    }

    /// Adds everything of `other`.
    pub fn extend(&mut self, other: Batch) {
        self.leases.extend(other.leases);
        self.meta.extend(other.meta);
    }
}

/// Why the store failed. The daemon stops rather than answer clients
/// without durable storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An IO error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store is not one this version can read, or is corrupt in a way
    /// that cannot be set aside safely.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A fault injected by a test store.
    #[error("injected fault: {0}")]
    Injected(String),
}

/// Stable storage for lease records and metadata.
pub trait LeaseStore: Send {
    /// Reads everything stored.
    fn load(&mut self) -> Result<Snapshot, StoreError>;
    /// Makes `batch` durable; returns only when it is.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;
}

/// A store in memory: durable for the life of the value. Used by tests and
/// the simulator, where a "crash" keeps exactly what was committed.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    leases: HashMap<LeaseKey, Lease>,
    meta: BTreeMap<String, Vec<u8>>,
    /// Number of successful commits.
    pub commits: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The committed record for `key`.
    pub fn get(&self, key: &LeaseKey) -> Option<&Lease> {
        self.leases.get(key)
    }

    /// Number of committed lease records.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether nothing was committed.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty() && self.meta.is_empty()
    }
}

impl LeaseStore for MemoryStore {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let mut leases: Vec<Lease> = self.leases.values().cloned().collect();
        leases.sort_by_key(|l| l.key);
        Ok(Snapshot {
            leases,
            meta: self.meta.clone(),
            warnings: Vec::new(),
        })
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        for l in &batch.leases {
            self.leases.insert(l.key, l.clone());
        }
        for (k, v) in &batch.meta {
            self.meta.insert(k.clone(), v.clone());
        }
        self.commits = self.commits.saturating_add(1);
        Ok(())
    }
}

/// Wraps a store and fails on command: the next `fail_next` commits return
/// an error and write nothing. For testing that replies wait for
/// durability and that store failures stop the server.
#[derive(Debug, Default)]
pub struct FaultyStore<S> {
    /// The wrapped store.
    pub inner: S,
    /// How many of the next commits fail.
    pub fail_next: u32,
}

impl<S: LeaseStore> LeaseStore for FaultyStore<S> {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if self.fail_next > 0 {
            self.fail_next = self.fail_next.saturating_sub(1);
            return Err(StoreError::Injected("commit failed".into()));
        }
        self.inner.commit(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::LeaseState;
    use crate::time::UnixTime;

    #[test]
    fn memory_store_keeps_latest_record_per_lease() {
        let mut s = MemoryStore::new();
        let k = LeaseKey::address("2001:db8::1".parse().unwrap());
        let mut l = Lease::free(k, LeaseState::Free, UnixTime(1));
        s.commit(&Batch {
            leases: vec![l.clone()],
            meta: vec![("duid".into(), vec![1])],
        })
        .unwrap();
        l.state = LeaseState::Active;
        s.commit(&Batch {
            leases: vec![l.clone()],
            meta: vec![],
        })
        .unwrap();
        let snap = s.load().unwrap();
        assert_eq!(snap.leases, vec![l]);
        assert_eq!(snap.meta.get("duid"), Some(&vec![1]));
    }

    #[test]
    fn faulty_store_fails_then_recovers_without_writing() {
        let mut s = FaultyStore {
            inner: MemoryStore::new(),
            fail_next: 1,
        };
        let k = LeaseKey::address("2001:db8::1".parse().unwrap());
        let b = Batch {
            leases: vec![Lease::free(k, LeaseState::Free, UnixTime(1))],
            meta: vec![],
        };
        assert!(s.commit(&b).is_err());
        assert!(s.inner.is_empty());
        s.commit(&b).unwrap();
        assert_eq!(s.inner.len(), 1);
    }
}
