//! Configuration options in replies (RFC 8415 §21.7: a server sends the
//! options a client asks for in its Option Request option).

use super::Subnet;
use duet_wire::option::code;
use duet_wire::{ClientMessage, DhcpOption};

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

/// Configuration options the client asked for in its ORO (digest §4.2:
/// only requested options).
pub(super) fn add_config_options(
    reply: &mut ClientMessage<'static>,
    client: &ClientMessage<'_>,
    subnet: Option<&Subnet>,
) {
    let oro = requested(client);
    let Some(s) = subnet else { return };
    if oro.contains(&code::DNS_SERVERS) && !s.dns_servers.is_empty() {
        reply.options.push(DhcpOption::DnsServers(s.dns_servers.clone()));
    }
    if oro.contains(&code::DOMAIN_LIST) && !s.domain_search.is_empty() {
        reply
            .options
            .push(DhcpOption::DomainList(s.domain_search.clone()));
    }
}
