//! The client's link (RFC 8415 §13.1), and so its subnet.

use super::{Dhcpv6Server, Incoming};
use duet_wire::RelayMessage;
use std::net::Ipv6Addr;

/// §13.1: the innermost non-zero relay link-address names the link; a
/// direct client's link is its arrival interface (or, for a global source
/// address, the subnet holding it).
pub(super) fn select_subnet(
    srv: &Dhcpv6Server,
    inc: &Incoming<'_>,
    relays: &[&RelayMessage<'_>],
) -> Option<usize> {
    let by_addr = |a: Ipv6Addr| srv.subnets.iter().position(|s| s.cfg.prefix.contains(a));
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
