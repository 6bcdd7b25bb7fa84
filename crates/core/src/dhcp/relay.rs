//! Relay-forward decapsulation and Relay-reply construction (RFC 8415 §19).

use duet_wire::{ClientMessage, DhcpOption, Message, MessageType, RelayMessage};
use std::borrow::Cow;

/// Whether every level is a RELAY-FORW (a server only processes those).
pub(super) fn all_forwards(relays: &[&RelayMessage<'_>]) -> bool {
    relays.iter().all(|r| r.msg_type == MessageType::RelayForw)
}

/// Wraps `reply` in one RELAY-REPL per level, innermost first, copying
/// hop-count, link-address and peer-address and echoing Interface-Id
/// (§19.3, §21.18).
pub(super) fn wrap<'r>(reply: ClientMessage<'r>, relays: &[&RelayMessage<'_>]) -> Message<'r> {
    let mut msg = Message::Client(reply);
    for relay in relays.iter().rev() {
        let mut options = Vec::with_capacity(2);
        if let Some(id) = relay.interface_id() {
            options.push(DhcpOption::InterfaceId(Cow::Owned(id.to_vec())));
        }
        options.push(DhcpOption::RelayMsg(Box::new(msg)));
        msg = Message::Relay(RelayMessage {
            msg_type: MessageType::RelayRepl,
            hop_count: relay.hop_count,
            link_address: relay.link_address,
            peer_address: relay.peer_address,
            options,
        });
    }
    msg
}
