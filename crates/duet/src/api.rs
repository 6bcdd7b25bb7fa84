//! The JSON documents of the control API and of `duet ctl … --json`
//! (../shared/design/INTERFACE.md: keys lower-case with hyphens).

use serde::{Deserialize, Serialize};

/// One binding, as `duet ctl leases --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LeaseJson {
    /// `na` or `pd`.
    pub kind: String,
    /// The address (kind `na`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub address: Option<String>,
    /// The prefix in `2001:db8::/56` form (kind `pd`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prefix: Option<String>,
    /// Client DUID, hex without separators (null when never bound).
    pub duid: Option<String>,
    /// IAID (null when never bound).
    pub iaid: Option<u32>,
    /// RFC 8156 binding status in lower case.
    pub state: String,
    /// End of the valid lifetime, Unix seconds.
    pub valid_until: u64,
    /// End of the preferred lifetime, Unix seconds.
    pub preferred_until: u64,
    /// Failover relationship, or null.
    pub relationship: Option<String>,
}

/// This server, in `status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerJson {
    /// Configured name.
    pub name: String,
    /// Server DUID, hex.
    pub duid: String,
    /// duet version.
    pub version: String,
    /// Seconds since start.
    pub uptime: u64,
}

/// One failover relationship, in `status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RelationshipJson {
    /// Relationship name.
    pub name: String,
    /// `primary` or `secondary`.
    pub role: String,
    /// Own failover state (lower case with hyphens).
    pub state: String,
    /// When the state began, Unix seconds.
    pub since: u64,
    /// The partner's state as last reported, or null.
    pub partner_state: Option<String>,
    /// Whether communications are OK (RFC 8156 §6.1).
    pub communications_ok: bool,
    /// BNDUPDs sent and not yet acknowledged.
    pub unacked_bndupd: u64,
    /// Last measured clock skew, seconds (partner minus us), or null.
    pub clock_skew: Option<i64>,
}

/// `status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusJson {
    /// This server.
    pub server: ServerJson,
    /// Its failover relationships.
    pub relationships: Vec<RelationshipJson>,
    /// Counters (an addition to INTERFACE.md's keys).
    #[serde(default)]
    pub counters: crate::serve::stats::StatsSnapshot,
}
