//! Fixtures the unit tests of several modules share (tests only).

use crate::config::Role;
use crate::dhcp::Subnet;
use crate::failover::EndpointConfig;
use std::time::Duration;

/// One relationship, "pair-1": MAX_UNACKED_BNDUPD 10, keepalive 10 s,
/// STARTUP 5 s, a scan every 30 s, over range 0 and prefix pool 0.
pub(crate) fn endpoint_config(role: Role, mclt: u64) -> EndpointConfig {
    EndpointConfig {
        name: "pair-1".into(),
        role,
        mclt: Duration::from_secs(mclt),
        max_unacked_bndupd: 10,
        keepalive: Duration::from_secs(10),
        auto_partner_down: None,
        prefix_split: 0.5,
        startup_time: Duration::from_secs(5),
        scan_interval: Duration::from_secs(30),
        ranges: vec![0],
        pd_pools: vec![0],
        fingerprint: Some(b"pools-v1".to_vec()),
        rescue_after: None,
        sole_with_peer: true,
    }
}

/// 2001:db8:1::/64 on eth0: addresses ::1000–::2fff, /56s of
/// 2001:db8:8000::/48, lifetimes 2000 / 3000 s, T1 / T2 1000 / 1600 s,
/// Rapid Commit honoured, under relationship `rel`.
pub(crate) fn subnet(rel: Option<usize>) -> Subnet {
    Subnet {
        prefix: "2001:db8:1::/64".parse().unwrap(),
        interface: Some("eth0".into()),
        ranges: vec![(
            "2001:db8:1::1000".parse().unwrap(),
            "2001:db8:1::2fff".parse().unwrap(),
        )],
        pd_pools: vec![("2001:db8:8000::/48".parse().unwrap(), 56)],
        preferred_lifetime: Duration::from_secs(2000),
        valid_lifetime: Duration::from_secs(3000),
        renew_time: Duration::from_secs(1000),
        rebind_time: Duration::from_secs(1600),
        options: vec![],
        reservations: vec![],
        interface_id: None,
        preference: 0,
        rapid_commit: true,
        relationship: rel,
    }
}
