//! Confirm (RFC 8415 §18.3.3): are the client's addresses still on its link?

use super::process::{reply_base, status, Ctx, Processed};
use super::{Dhcpv6Server, Discard};
use duet_wire::{IaKind, MessageType, OptionsExt, StatusCode};
use std::net::Ipv6Addr;

/// §18.3.3: Success if every address is on the link, NotOnLink if any is
/// not; no reply without addresses or without a known link.
pub(super) fn confirm(srv: &Dhcpv6Server, ctx: &Ctx<'_, '_>) -> Processed {
    let subnet = srv.subnet(ctx.subnet).ok_or(Discard::NothingToSay)?;
    let addrs: Vec<Ipv6Addr> = ctx
        .client
        .options
        .ia_leases()
        .filter(|(ia, l)| ia.kind != IaKind::Pd && l.prefix_len.is_none())
        .map(|(_, l)| l.address)
        .collect();
    if addrs.is_empty() {
        return Err(Discard::NothingToSay);
    }
    let mut reply = reply_base(srv.duid(), ctx.client, MessageType::Reply);
    if addrs.iter().all(|a| subnet.cfg.prefix.contains(*a)) {
        reply
            .options
            .push(status(StatusCode::Success, "all addresses on link"));
    } else {
        reply.options.push(status(StatusCode::NotOnLink, "not on link"));
    }
    Ok((reply, Vec::new()))
}
