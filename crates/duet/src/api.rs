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
    /// BNDUPDs waiting to be sent.
    #[serde(default)]
    pub queued_bndupd: u64,
    /// The last thing heard from the partner (a message or a connection
    /// attempt), Unix seconds.
    #[serde(default)]
    pub last_heard: u64,
    /// The last refusal between the partners, until they work together
    /// again.
    #[serde(default)]
    pub refusal: Option<RefusalJson>,
    /// When automatic partner-down will happen if nothing is heard until
    /// then, Unix seconds.
    #[serde(default)]
    pub auto_partner_down_at: Option<u64>,
    /// Why automatic partner-down will not happen although configured.
    #[serde(default)]
    pub auto_partner_down_held: Option<String>,
    /// When RECOVER-WAIT ends, Unix seconds.
    #[serde(default)]
    pub recover_wait_until: Option<u64>,
    /// In PARTNER-DOWN: when the partner's delegable prefixes become
    /// usable, Unix seconds (null while the partner recovers).
    #[serde(default)]
    pub partner_pool_from: Option<u64>,
    /// Planned handover: null, `leaving` or `handed-over`.
    #[serde(default)]
    pub handover: Option<String>,
    /// Whether the partner announced planned handover at CONNECT.
    #[serde(default)]
    pub partner_handover: bool,
    /// Elapsed Time from which a stranded client is rescued, seconds.
    #[serde(default)]
    pub rescue_after: Option<u64>,
    /// Each address range's halves (RFC 8156 §4.2.1).
    #[serde(default)]
    pub address_ranges: Vec<RangeJson>,
    /// Each delegable-prefix pool (RFC 8156 §4.2.2).
    #[serde(default)]
    pub prefix_pools: Vec<PrefixPoolJson>,
    /// The relationship's subnets and what their clients sent and got.
    #[serde(default)]
    pub subnets: Vec<SubnetJson>,
}

/// A refusal between the partners, in `status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RefusalJson {
    /// `configuration`, `time-skew`, `version` or `identity`.
    pub kind: String,
    /// The refusal's text.
    pub reason: String,
    /// When, Unix seconds.
    pub at: u64,
    /// `us` (this server refused) or `partner`.
    pub by: String,
}

/// One address range, in `status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RangeJson {
    /// `first-last`.
    pub range: String,
    /// Free addresses of the primary's (odd) half.
    pub primary_free: u128,
    /// Size of that half.
    pub primary_size: u128,
    /// Free addresses of the secondary's (even) half.
    pub secondary_free: u128,
    /// Size of that half.
    pub secondary_size: u128,
}

/// One delegable-prefix pool, in `status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PrefixPoolJson {
    /// The pool and the delegated length.
    pub pool: String,
    /// Delegable prefixes in all.
    pub size: u128,
    /// FREE (the primary's).
    pub free: u128,
    /// FREE-BACKUP (the secondary's).
    pub free_backup: u128,
}

/// One subnet's clients, in `status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SubnetJson {
    /// The subnet's prefix.
    pub prefix: String,
    /// Its interface (on-link clients), if any.
    pub interface: Option<String>,
    /// Client messages seen since the start (the kernel filter of a
    /// quiet link discards some before duet sees them).
    pub seen: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Of those answered, rescued (RFC 7031 §4.7).
    pub rescued: u64,
    /// When a client was last answered, Unix seconds.
    pub last_answered: Option<u64>,
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
