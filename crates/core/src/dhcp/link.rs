//! The client's link (RFC 8415 §13.1), and so its subnet.

use super::{Dhcpv6Server, Incoming};
use duet_wire::{DhcpOption, RelayMessage};
use std::net::Ipv6Addr;

/// §13.1: the Interface-Id the relay closest to the client adds (§21.18),
/// where a subnet is configured with it; else the innermost non-zero relay
/// link-address names the link; a direct client's link is its arrival
/// interface (or, for a global source address, the subnet holding it).
pub(super) fn select_subnet(
    srv: &Dhcpv6Server,
    inc: &Incoming<'_>,
    relays: &[&RelayMessage<'_>],
) -> Option<usize> {
    let by_addr = |a: Ipv6Addr| srv.subnets.iter().position(|s| s.cfg.prefix.contains(a));
    if let Some(id) = relays.last().and_then(|r| {
        r.options.iter().find_map(|o| match o {
            DhcpOption::InterfaceId(id) => Some(id),
            _ => None,
        })
    }) {
        if let Some(i) = srv
            .subnets
            .iter()
            .position(|s| s.cfg.interface_id.as_deref() == Some(&id[..]))
        {
            return Some(i);
        }
    }
    if !relays.is_empty() {
        // Try levels from the innermost outwards.
        return relays
            .iter()
            .rev()
            .map(|r| r.link_address)
            .filter(|a| !a.is_unspecified())
            .find_map(by_addr);
    }
    let link_local = (u128::from(inc.source) >> 118) == 0x3fa; // fe80::/10
    if !link_local {
        if let Some(i) = by_addr(inc.source) {
            return Some(i);
        }
    }
    let iface = inc.interface?;
    srv.subnets
        .iter()
        .position(|s| s.cfg.interface.as_deref() == Some(iface))
}
