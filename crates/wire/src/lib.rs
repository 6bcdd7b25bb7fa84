//! # duet-wire
//!
//! Wire codecs for duet: DHCPv6 client, server and relay messages
//! (RFC 8415 §8, §9, §21; RFC 3646; RFC 4704) and the DHCPv6 failover
//! protocol (RFC 8156 §5), with the length-prefixed TCP framing it uses.
//!
//! ## Contract
//!
//! * **No IO, no clock, no allocation beyond the decoded value.** The crate
//!   has no tokio, no sockets and no `unsafe`.
//! * **Strict.** A malformed message is an error, never a partial success:
//!   [`DecodeError`] names the byte offset, the option code and what was
//!   wrong. Unknown options are *not* errors: they are kept as
//!   [`DhcpOption::Unknown`] and emitted unchanged.
//! * **Faithful.** Option order and repeated options are preserved, and
//!   every value that decodes emits back to the very same bytes
//!   (`emit(parse(b)) == b`). Values are borrowed from the input where that
//!   pays ([`std::borrow::Cow`]); `into_owned` detaches them.
//! * **Panic-free.** No indexing, `unwrap` or unchecked arithmetic in
//!   non-test code (enforced by clippy lints below); fuzzed.
//!
//! ## Map
//!
//! | module | contents |
//! |---|---|
//! | [`message`] | [`Message`]: [`ClientMessage`] and [`RelayMessage`] (nested up to [`MAX_RELAY_DEPTH`]) |
//! | [`option`] | [`DhcpOption`] and its typed payloads; option codes in [`option::code`] |
//! | [`failover`] | [`FailoverMessage`] and [`StreamMessage`] (failover + STARTTLS/REPLY) |
//! | [`frame`] | [`FrameDecoder`] for the failover TCP stream |
//! | [`duid`], [`name`], [`types`] | DUIDs, domain names, message types, status codes, binding status, server state, absolute time |
//!
//! Each codec type follows the smoltcp shape: `parse(&[u8])`,
//! `buffer_len()`, `emit(&mut [u8])` (plus `to_vec()`), where emit needs no
//! temporary buffers for nested options.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod codec;
pub mod duid;
pub mod error;
pub mod failover;
pub mod frame;
pub mod message;
pub mod name;
pub mod option;
#[cfg(test)]
mod roundtrip;
#[cfg(any(test, feature = "proptest"))]
pub mod strategy;
pub mod types;

pub use duid::{Duid, DuidKind};
pub use error::{DecodeError, DecodeErrorKind, EmitError};
pub use failover::{FailoverMessage, StreamMessage};
pub use frame::FrameDecoder;
pub use message::{ClientMessage, Message, RelayMessage, HOP_COUNT_LIMIT, MAX_RELAY_DEPTH};
pub use name::DomainName;
pub use option::{DhcpOption, IaKind, IaLease, IaView, OptionsExt};
pub use types::{
    AbsTime, BindingStatus, FailoverMessageType, MessageType, ServerState, StatusCode, TransactionId,
};
