//! The discard rules of RFC 8415 §16: what a server must not answer.

use super::Discard;
use duet_wire::{ClientMessage, Duid, MessageType, OptionsExt};

/// The discard rules of RFC 8415 §16.2–§16.12.
pub(super) fn validate(our: &Duid<'_>, m: &ClientMessage<'_>) -> Result<(), Discard> {
    use MessageType as T;
    let client_id = m.options.client_id().is_some();
    let server_id = m.options.server_id();
    let has_ia = m.options.ias().next().is_some();
    match m.msg_type {
        T::Solicit | T::Confirm | T::Rebind => {
            if !client_id {
                return Err(Discard::Invalid("no Client Identifier"));
            }
            if server_id.is_some() {
                return Err(Discard::Invalid("Server Identifier not allowed in this message"));
            }
        }
        T::Request | T::Renew | T::Release | T::Decline => {
            if !client_id {
                return Err(Discard::Invalid("no Client Identifier"));
            }
            match server_id {
                None => return Err(Discard::Invalid("no Server Identifier")),
                Some(s) if s != our => return Err(Discard::NotOurServerId),
                Some(_) => {}
            }
        }
        T::InformationRequest => {
            if has_ia {
                return Err(Discard::Invalid("IA option in Information-request"));
            }
            if server_id.is_some_and(|s| s != our) {
                return Err(Discard::NotOurServerId);
            }
        }
        _ => {}
    }
    Ok(())
}
