//! Counters the daemon keeps and the control API reports.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Datagrams received.
    pub received: AtomicU64,
    /// Replies sent.
    pub replies_sent: AtomicU64,
    /// Replies not sent because their changes could not be made durable.
    pub replies_dropped: AtomicU64,
    /// Datagrams to clients that waited for pacing before leaving.
    pub replies_paced: AtomicU64,
    /// Send errors.
    pub send_errors: AtomicU64,
    /// Store commits (each one fsync).
    pub commits: AtomicU64,
    /// Lease records written.
    pub committed_records: AtomicU64,
    /// Dropped datagrams by reason (see `duet_core::dhcp::Discard::name`).
    pub dropped: Mutex<BTreeMap<&'static str, u64>>,
    /// Refused partner connections by reason.
    pub partner_refused: Mutex<BTreeMap<String, u64>>,
    /// Failed outgoing partner connection attempts by relationship.
    pub partner_connect_failures: Mutex<BTreeMap<String, u64>>,
    /// Refusals between the partners (RFC 8156 §6.1 CONNECT refused, time
    /// skew, identity), by `relationship/kind`.
    pub failover_refusals: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Counts one dropped datagram.
    pub fn count_drop(&self, reason: &'static str) {
        if let Ok(mut m) = self.dropped.lock() {
            *m.entry(reason).or_insert(0) += 1;
        }
    }

    /// A JSON-friendly copy, with the sockets' kernel drops (which the
    /// kernel counts, not duet: see `udp::kernel_drops`).
    pub fn snapshot(&self, socket_drops: u64) -> StatsSnapshot {
        StatsSnapshot {
            received: self.received.load(Ordering::Relaxed),
            socket_drops,
            replies_sent: self.replies_sent.load(Ordering::Relaxed),
            replies_dropped: self.replies_dropped.load(Ordering::Relaxed),
            replies_paced: self.replies_paced.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            committed_records: self.committed_records.load(Ordering::Relaxed),
            dropped: self
                .dropped
                .lock()
                .map(|m| m.iter().map(|(k, v)| ((*k).to_string(), *v)).collect())
                .unwrap_or_default(),
            partner_refused: self.partner_refused.lock().map(|m| m.clone()).unwrap_or_default(),
            partner_connect_failures: self
                .partner_connect_failures
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
            failover_refusals: self
                .failover_refusals
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
        }
    }
}

/// Counters as reported by `GET /v1/status`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct StatsSnapshot {
    /// Datagrams received.
    pub received: u64,
    /// Dropped by the kernel at the DHCPv6 sockets: the receive queue (the
    /// sockets' receive buffers, `server.queue-size`) full, or discarded by
    /// the kernel filter (`/proc/net/udp6`, "drops").
    #[serde(default)]
    pub socket_drops: u64,
    /// Replies sent.
    pub replies_sent: u64,
    /// Replies withheld after a store failure.
    pub replies_dropped: u64,
    /// Datagrams to clients that waited for pacing (`server.send-rate`)
    /// before leaving.
    #[serde(default)]
    pub replies_paced: u64,
    /// Send errors.
    pub send_errors: u64,
    /// Store commits.
    pub commits: u64,
    /// Lease records written.
    pub committed_records: u64,
    /// Dropped datagrams by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Refused partner connections by reason.
    #[serde(default)]
    pub partner_refused: BTreeMap<String, u64>,
    /// Failed outgoing partner connection attempts by relationship.
    #[serde(default)]
    pub partner_connect_failures: BTreeMap<String, u64>,
    /// Refusals between the partners by `relationship/kind` (kinds:
    /// configuration, time-skew, version, identity): while they go on,
    /// automatic partner-down is held off.
    #[serde(default)]
    pub failover_refusals: BTreeMap<String, u64>,
}
