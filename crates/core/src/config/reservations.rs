//! `subnet[].reservations`: host reservations, checked against the
//! subnet they are in.

use super::document::Errors;
use super::options::hex_bytes;
use super::wire::{OptionWire, ReservationWire};
use super::{AddressRange, ClientIdentifier, PdPoolConfig, ReservationConfig};
use crate::net::Ipv6Prefix;
use std::collections::HashMap;
use std::net::Ipv6Addr;

/// Longest DUID (RFC 8415 §11.1: 128 bytes after the 2-byte type).
const MAX_DUID: usize = 130;

/// Validates a subnet's reservations. `prefix`, `pools` and `pd_pools`
/// are what parsed of the subnet (checks against a missing one are
/// skipped: its own error is reported).
pub(super) fn reservations(
    path: &str,
    list: &[ReservationWire],
    prefix: Option<Ipv6Prefix>,
    pools: &[Option<AddressRange>],
    pd_pools: &[Option<PdPoolConfig>],
    e: &mut Errors,
) -> Vec<ReservationConfig> {
    let mut out = Vec::new();
    let mut clients: HashMap<ClientIdentifier, usize> = HashMap::new();
    for (i, w) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(r) = reservation(&p, w, prefix, pools, pd_pools, e) else {
            continue;
        };
        if let Some(j) = clients.get(&r.client) {
            e.push(&p, format!("{} is already reserved at {path}[{j}]", r.client));
            continue;
        }
        clients.insert(r.client.clone(), i);
        out.push(r);
    }
    out
}

fn reservation(
    path: &str,
    w: &ReservationWire,
    prefix: Option<Ipv6Prefix>,
    pools: &[Option<AddressRange>],
    pd_pools: &[Option<PdPoolConfig>],
    e: &mut Errors,
) -> Option<ReservationConfig> {
    let errors_before = e.len();
    let client = match (&w.duid, &w.hw_address) {
        (Some(d), None) => match hex_bytes(d) {
            Some(b) if (3..=MAX_DUID).contains(&b.len()) => Some(ClientIdentifier::Duid(b)),
            _ => {
                e.push(
                    format!("{path}.duid"),
                    format!(
                        "`{d}` is not a DUID: 3 to {MAX_DUID} bytes in hex, `00:01:00:01:…` or `000100…`"
                    ),
                );
                None
            }
        },
        (None, Some(h)) => match hex_bytes(h) {
            Some(b) if (1..=20).contains(&b.len()) => Some(ClientIdentifier::HwAddress(b)),
            _ => {
                e.push(
                    format!("{path}.hw-address"),
                    format!("`{h}` is not a link-layer address: hex bytes, `02:00:00:00:00:01`"),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            e.push(path, "give `duid` or `hw-address`, not both");
            None
        }
        (None, None) => {
            e.push(
                format!("{path}.duid"),
                "missing: the client's `duid` or `hw-address`",
            );
            None
        }
    };
    let mut addresses = Vec::new();
    for (k, text) in w.addresses.iter().flatten().enumerate() {
        let ap = format!("{path}.addresses[{k}]");
        let Ok(a) = text.parse::<Ipv6Addr>() else {
            e.push(ap, format!("`{text}` is not an IPv6 address"));
            continue;
        };
        if prefix.is_some_and(|p| !p.contains(a)) {
            e.push(ap, format!("{a} is outside the subnet's prefix"));
            continue;
        }
        if !pools.iter().flatten().any(|r| r.contains(a)) && pools.iter().all(Option::is_some) {
            e.push(
                ap,
                format!(
                    "{a} is in none of the subnet's pools (reservations outside the pools are not supported)"
                ),
            );
            continue;
        }
        if addresses.contains(&a) {
            e.push(ap, format!("{a} is listed twice"));
            continue;
        }
        addresses.push(a);
    }
    let mut prefixes = Vec::new();
    for (k, text) in w.prefixes.iter().flatten().enumerate() {
        let pp = format!("{path}.prefixes[{k}]");
        let q = match text.parse::<Ipv6Prefix>() {
            Ok(q) => q,
            Err(err) => {
                e.push(pp, err.to_string());
                continue;
            }
        };
        let fits = pd_pools
            .iter()
            .flatten()
            .any(|p| p.prefix.contains(q.addr()) && q.len() == p.delegated_length);
        if !fits && pd_pools.iter().all(Option::is_some) {
            e.push(
                pp,
                format!(
                    "{q} is not a delegated prefix of one of the subnet's pd-pools (inside the pool, at its delegated-length)"
                ),
            );
            continue;
        }
        if prefixes.contains(&q) {
            e.push(pp, format!("{q} is listed twice"));
            continue;
        }
        prefixes.push(q);
    }
    if w.addresses.is_none() && w.prefixes.is_none() && w.options.is_none() {
        e.push(
            path,
            "reserves nothing: give `addresses`, `prefixes` or `options`",
        );
    }
    let list: Vec<Option<OptionWire>> = w.options.iter().flatten().map(|o| Some(o.clone())).collect();
    let options = super::options::options(&format!("{path}.options"), &list, e);
    if e.len() > errors_before {
        return None;
    }
    Some(ReservationConfig {
        client: client?,
        addresses,
        prefixes,
        options,
    })
}

/// No address or prefix reserved twice in the whole configuration (each
/// entry: the reservation's path and what it reserves).
pub(super) fn check_unique(all: &[(String, &ReservationConfig)], e: &mut Errors) {
    let mut seen: HashMap<String, String> = HashMap::new();
    for (path, r) in all {
        let items = r
            .addresses
            .iter()
            .map(ToString::to_string)
            .chain(r.prefixes.iter().map(ToString::to_string));
        for item in items {
            match seen.get(&item) {
                Some(first) => e.push(path.clone(), format!("{item} is already reserved at {first}")),
                None => {
                    seen.insert(item, path.clone());
                }
            }
        }
    }
}
