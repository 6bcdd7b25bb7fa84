//! Configuration options in replies (RFC 8415 §21.7: a server sends the
//! options a client asks for in its Option Request option, and those
//! configured `always-send`).

use super::Subnet;
use crate::config::OptionConfig;
use duet_wire::{ClientMessage, DhcpOption};
use std::borrow::Cow;

/// The option codes the client asked for (its ORO, §21.7).
pub(super) fn requested(client: &ClientMessage<'_>) -> Vec<u16> {
    client
        .options
        .iter()
        .find_map(|o| match o {
            DhcpOption::Oro(codes) => Some(codes.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The configured options the client asked for in its ORO, and those sent
/// always: its reservation's (merged with the subnet's at load), else the
/// subnet's.
pub(super) fn add_config_options(
    reply: &mut ClientMessage<'static>,
    client: &ClientMessage<'_>,
    subnet: Option<&Subnet>,
    reservation: Option<usize>,
) {
    let Some(s) = subnet else { return };
    let options = reservation
        .and_then(|i| s.reservations.get(i))
        .map_or(&s.options, |r| &r.options);
    add_options(reply, &requested(client), options);
}

/// `options` filtered by the ORO `oro` (or `always-send`), appended to
/// `reply` as the bytes configured.
pub(super) fn add_options(reply: &mut ClientMessage<'static>, oro: &[u16], options: &[OptionConfig]) {
    for o in options {
        if o.always_send || oro.contains(&o.code) {
            reply.options.push(DhcpOption::Unknown {
                code: o.code,
                data: Cow::Owned(o.data.clone()),
            });
        }
    }
}
