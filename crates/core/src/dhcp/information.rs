//! Information-request (RFC 8415 §18.3.6): configuration without leases.

use super::options::{add_config_options, requested};
use super::process::{reply_base, Ctx};
use super::Dhcpv6Server;
use crate::time::wire_secs;
use duet_wire::option::code;
use duet_wire::{ClientMessage, DhcpOption, MessageType};
use std::time::Duration;

/// RFC 8415 §21.23 IRT_MINIMUM.
const IRT_MINIMUM: Duration = Duration::from_secs(600);

/// §18.3.6: the requested configuration options, and the information
/// refresh time if asked for (never below IRT_MINIMUM).
pub(super) fn information_reply(srv: &Dhcpv6Server, ctx: &Ctx<'_, '_>) -> ClientMessage<'static> {
    let mut reply = reply_base(srv.duid(), ctx.client, MessageType::Reply);
    let subnet = srv.subnet(ctx.subnet).map(|s| &s.cfg);
    add_config_options(&mut reply, ctx.client, subnet, ctx.reservation);
    // A configured `information-refresh-time` (checked ≥ IRT_MINIMUM at
    // load) replaces the server-wide one.
    let configured = reply
        .options
        .iter()
        .any(|o| o.code() == code::INFORMATION_REFRESH_TIME);
    if !configured && requested(ctx.client).contains(&code::INFORMATION_REFRESH_TIME) {
        let irt = srv.options.information_refresh_time.max(IRT_MINIMUM);
        reply
            .options
            .push(DhcpOption::InformationRefreshTime(wire_secs(irt)));
    }
    reply
}
