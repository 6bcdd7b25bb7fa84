//! What a node is built from: the configuration file's settings turned
//! into the processing subnets, the failover endpoints' settings and the
//! commit plan.

use super::commit::CommitPlan;
use crate::config::{options, Config, ConfigError, OptionConfig, ReservationConfig};
use crate::dhcp::{ServerOptions, Subnet};
use crate::failover::EndpointConfig;
use duet_wire::option::code;
use duet_wire::DomainName;
use std::time::Duration;

/// How long STARTUP waits to hear from the partner (RFC 8156 §8.3.2 step
/// 3), beyond the relationship's keepalive: by then a partner still holding
/// our previous connection has noticed it is gone (the setting duet-sim
/// validates).
pub const STARTUP_MARGIN: Duration = Duration::from_secs(5);

/// Period of each endpoint's scan: rejected updates are sent again and the
/// prefix balance is checked (RFC 8156 §7.7, §4.2.2).
pub const SCAN_INTERVAL: Duration = Duration::from_secs(30);

/// Everything a [`super::Node`] needs besides its store's snapshot.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The subnets, in configuration order.
    pub subnets: Vec<Subnet>,
    /// Server-wide processing settings.
    pub options: ServerOptions,
    /// One endpoint per failover relationship; a subnet's `relationship`
    /// indexes this list.
    pub relationships: Vec<EndpointConfig>,
    /// When pending work is committed.
    pub plan: CommitPlan,
    /// Seeds address selection and a new server DUID (the daemon draws it
    /// from the OS; tests and the simulator choose it).
    pub seed: u64,
}

impl NodeConfig {
    /// The node a validated configuration describes.
    pub fn from_config(cfg: &Config, seed: u64) -> Result<NodeConfig, ConfigError> {
        let subnets = cfg
            .subnets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut own = s.options.clone();
                if !s.dns_servers.is_empty() {
                    own.push(OptionConfig {
                        code: code::DNS_SERVERS,
                        data: s.dns_servers.iter().flat_map(|a| a.octets()).collect(),
                        always_send: false,
                    });
                }
                if !s.domain_search.is_empty() {
                    let mut data = Vec::new();
                    for d in &s.domain_search {
                        let n = DomainName::from_text(d, true).map_err(|e| ConfigError {
                            path: format!("subnet[{i}].domain-search"),
                            message: format!("{d}: {e}"),
                        })?;
                        data.extend_from_slice(n.as_bytes());
                    }
                    own.push(OptionConfig {
                        code: code::DOMAIN_LIST,
                        data,
                        always_send: false,
                    });
                }
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
                    options: options::merge(&own, &cfg.options),
                    interface_id: s.interface_id.clone(),
                    reservations: s
                        .reservations
                        .iter()
                        .map(|r| ReservationConfig {
                            options: options::merge(&r.options, &options::merge(&own, &cfg.options)),
                            ..r.clone()
                        })
                        .collect(),
                    preference: s.preference,
                    rapid_commit: s.rapid_commit,
                    relationship: s
                        .failover
                        .as_ref()
                        .and_then(|name| cfg.failover.iter().position(|r| &r.name == name)),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let relationships = cfg
            .failover
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (ranges, pd_pools) = pools_of_relationship(&subnets, i);
                EndpointConfig {
                    name: r.name.clone(),
                    role: r.role,
                    mclt: r.mclt,
                    max_unacked_bndupd: r.max_unacked_bndupd,
                    keepalive: r.keepalive,
                    auto_partner_down: r.auto_partner_down,
                    prefix_split: r.prefix_split,
                    startup_time: r.keepalive.saturating_add(STARTUP_MARGIN),
                    scan_interval: SCAN_INTERVAL,
                    ranges,
                    pd_pools,
                    fingerprint: Some(fingerprint(cfg, &r.name)),
                    rescue_after: r.rescue_after,
                    sole_with_peer: cfg.failover.iter().filter(|o| o.peer.ip() == r.peer.ip()).count() <= 1,
                }
            })
            .collect();
        Ok(NodeConfig {
            subnets,
            options: ServerOptions::default(),
            relationships,
            plan: CommitPlan {
                window: cfg.server.commit_window,
                ..CommitPlan::default()
            },
            seed,
        })
    }
}

/// Lease-database indices of the address ranges and prefix pools of the
/// subnets under relationship `rel` (the database numbers them in subnet
/// order, as [`crate::dhcp::Dhcpv6Server::new`] does).
pub fn pools_of_relationship(subnets: &[Subnet], rel: usize) -> (Vec<usize>, Vec<usize>) {
    let (mut r, mut p) = (0usize, 0usize);
    let (mut ranges, mut pd_pools) = (Vec::new(), Vec::new());
    for s in subnets {
        let mine = s.relationship == Some(rel);
        for _ in &s.ranges {
            if mine {
                ranges.push(r);
            }
            r = r.saturating_add(1);
        }
        for _ in &s.pd_pools {
            if mine {
                pd_pools.push(p);
            }
            p = p.saturating_add(1);
        }
    }
    (ranges, pd_pools)
}

/// The canonical description of a relationship's subnets and pools, one
/// item per line: the configuration fingerprint both partners compare at
/// CONNECT (docs/failover.md, "config drift").
pub fn fingerprint(cfg: &Config, name: &str) -> Vec<u8> {
    let mut lines = Vec::new();
    for s in cfg.subnets.iter().filter(|s| s.failover.as_deref() == Some(name)) {
        lines.push(format!("subnet {}", s.prefix));
        for p in &s.pools {
            lines.push(format!("subnet {} pool {}", s.prefix, p));
        }
        for p in &s.pd_pools {
            lines.push(format!(
                "subnet {} pd-pool {}/{}",
                s.prefix, p.prefix, p.delegated_length
            ));
        }
        // Host reservations: either partner gives a reserved lease to its
        // owner only, so both must agree on who that is.
        for r in &s.reservations {
            let mut what: Vec<String> = r.addresses.iter().map(ToString::to_string).collect();
            what.extend(r.prefixes.iter().map(ToString::to_string));
            if !what.is_empty() {
                lines.push(format!(
                    "subnet {} reservation {} {}",
                    s.prefix,
                    r.client,
                    what.join(" ")
                ));
            }
        }
    }
    lines.sort();
    lines.join("\n").into_bytes()
}
