//! DHCPv6 client/server messages (RFC 8415 §8) and relay messages (§9).

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, DecodeErrorKind, EmitError};
use crate::option::{emit_options, options_len, owned_options, parse_options, DhcpOption, Scope};
use crate::types::{FailoverMessageType, MessageType, TransactionId};
use std::net::Ipv6Addr;

/// HOP_COUNT_LIMIT (RFC 8415 §7.6): a relay drops a Relay-forward whose
/// hop-count is already this high.
pub const HOP_COUNT_LIMIT: usize = 8;

/// Deepest relay nesting accepted: relays with hop-count 0..=HOP_COUNT_LIMIT
/// can each add one level, so a server can see HOP_COUNT_LIMIT + 1 levels
/// (digest §12.2). Anything deeper is a [`DecodeErrorKind::RelayTooDeep`].
pub const MAX_RELAY_DEPTH: usize = HOP_COUNT_LIMIT + 1;

/// Length of the client/server header: msg-type and transaction-id.
pub const CLIENT_HEADER_LEN: usize = 4;
/// Length of the relay header: msg-type, hop-count, link- and peer-address.
pub const RELAY_HEADER_LEN: usize = 34;

/// A DHCPv6 message as carried in a UDP datagram or a Relay Message option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// Any message with the 4-byte header (every type but 12 and 13).
    Client(ClientMessage<'a>),
    /// RELAY-FORW or RELAY-REPL.
    Relay(RelayMessage<'a>),
}

/// A client/server message (RFC 8415 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage<'a> {
    /// Message type (never RELAY-FORW / RELAY-REPL).
    pub msg_type: MessageType,
    /// Transaction id.
    pub transaction_id: TransactionId,
    /// Options, in order.
    pub options: Vec<DhcpOption<'a>>,
}

/// A relay agent/server message (RFC 8415 §9). Its options hold exactly one
/// OPTION_RELAY_MSG, in the position it had on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayMessage<'a> {
    /// RELAY-FORW or RELAY-REPL.
    pub msg_type: MessageType,
    /// Number of relays that have already relayed the message.
    pub hop_count: u8,
    /// Address identifying the client's link (may be unspecified).
    pub link_address: Ipv6Addr,
    /// Address of the client or relay the message came from.
    pub peer_address: Ipv6Addr,
    /// Options, in order, including the Relay Message option.
    pub options: Vec<DhcpOption<'a>>,
}

impl<'a> Message<'a> {
    /// Decodes a UDP payload. Failover message types (24–35) are refused:
    /// they only travel on the failover TCP stream.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        Message::parse_nested(&mut r, 0)
    }

    /// Decodes a message filling `r`; `depth` is how many relay messages
    /// enclose it.
    pub(crate) fn parse_nested(r: &mut Reader<'a>, depth: usize) -> Result<Self, DecodeError> {
        let at = r.offset();
        let first = r.clone().u8()?;
        let msg_type = MessageType::from(first);
        if msg_type.is_relay() {
            let depth = depth.saturating_add(1);
            if depth > MAX_RELAY_DEPTH {
                return Err(DecodeError::new(
                    at,
                    DecodeErrorKind::RelayTooDeep {
                        limit: MAX_RELAY_DEPTH,
                    },
                ));
            }
            return RelayMessage::parse_body(r, depth).map(Message::Relay);
        }
        if !matches!(FailoverMessageType::from(first), FailoverMessageType::Other(_)) {
            return Err(DecodeError::new(
                at,
                DecodeErrorKind::UnexpectedMessageType {
                    msg_type: first,
                    reason: "failover messages only travel on the failover TCP connection",
                },
            ));
        }
        ClientMessage::parse_body(r).map(Message::Client)
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Message::Client(m) => m.msg_type,
            Message::Relay(m) => m.msg_type,
        }
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Message::Client(m) => m.buffer_len(),
            Message::Relay(m) => m.buffer_len(),
        }
    }

    /// Encodes into `buf`, returning the number of bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let needed = self.buffer_len();
        if buf.len() < needed {
            return Err(EmitError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        self.check_relay_depth(0)?;
        let mut w = Writer::new(buf);
        self.emit_nested(&mut w)?;
        Ok(w.position())
    }

    /// Encodes into a new buffer of exactly `buffer_len()` bytes.
    pub fn to_vec(&self) -> Result<Vec<u8>, EmitError> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf)?;
        Ok(buf)
    }

    fn check_relay_depth(&self, depth: usize) -> Result<(), EmitError> {
        if let Message::Relay(m) = self {
            let depth = depth.saturating_add(1);
            if depth > MAX_RELAY_DEPTH {
                return Err(EmitError::InvalidValue {
                    what: "relay messages nested deeper than MAX_RELAY_DEPTH",
                });
            }
            if let Some(inner) = m.relayed() {
                inner.check_relay_depth(depth)?;
            }
        }
        Ok(())
    }

    pub(crate) fn emit_nested(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        match self {
            Message::Client(m) => m.emit_into(w),
            Message::Relay(m) => m.emit_into(w),
        }
    }

    /// The client message at the bottom of any relay nesting, and the relay
    /// messages from the outermost (index 0) to the innermost. `None` only
    /// for a hand-built relay message without a Relay Message option
    /// (`parse` never produces one).
    pub fn unwrap_relays(&self) -> Option<(&ClientMessage<'a>, Vec<&RelayMessage<'a>>)> {
        let mut relays = Vec::new();
        let mut current = self;
        loop {
            match current {
                Message::Client(c) => return Some((c, relays)),
                Message::Relay(r) => {
                    relays.push(r);
                    current = r.relayed()?;
                }
            }
        }
    }

    /// Copies every borrowed byte.
    pub fn into_owned(self) -> Message<'static> {
        match self {
            Message::Client(m) => Message::Client(m.into_owned()),
            Message::Relay(m) => Message::Relay(m.into_owned()),
        }
    }
}

impl<'a> ClientMessage<'a> {
    /// A message with no options.
    pub fn new(msg_type: MessageType, transaction_id: TransactionId) -> Self {
        ClientMessage {
            msg_type,
            transaction_id,
            options: Vec::new(),
        }
    }

    /// Decodes a client/server message that fills the buffer (any type that
    /// uses the 4-byte header; relay and failover types are refused).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let first = r.clone().u8()?;
        if MessageType::from(first).is_relay()
            || !matches!(FailoverMessageType::from(first), FailoverMessageType::Other(_))
        {
            return Err(r.error(DecodeErrorKind::UnexpectedMessageType {
                msg_type: first,
                reason: "not a client/server message",
            }));
        }
        ClientMessage::parse_body(&mut r)
    }

    pub(crate) fn parse_body(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let msg_type = MessageType::from(r.u8()?);
        let transaction_id = TransactionId::from_bytes(r.array()?);
        let options = parse_options(r, Scope::MESSAGE)?;
        Ok(ClientMessage {
            msg_type,
            transaction_id,
            options,
        })
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        options_len(&self.options).saturating_add(CLIENT_HEADER_LEN)
    }

    pub(crate) fn emit_into(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        let t = u8::from(self.msg_type);
        if self.msg_type.is_relay() || !matches!(FailoverMessageType::from(t), FailoverMessageType::Other(_))
        {
            return Err(EmitError::InvalidValue {
                what: "client/server message with a relay or failover msg-type",
            });
        }
        w.u8(t)?;
        w.bytes(&self.transaction_id.to_bytes())?;
        emit_options(&self.options, w)
    }

    /// Encodes into `buf`, returning the number of bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let mut w = Writer::new(buf);
        self.emit_into(&mut w)?;
        Ok(w.position())
    }

    /// Encodes into a new buffer.
    pub fn to_vec(&self) -> Result<Vec<u8>, EmitError> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf)?;
        Ok(buf)
    }

    /// Copies every borrowed byte.
    pub fn into_owned(self) -> ClientMessage<'static> {
        ClientMessage {
            msg_type: self.msg_type,
            transaction_id: self.transaction_id,
            options: owned_options(self.options),
        }
    }
}

impl<'a> RelayMessage<'a> {
    pub(crate) fn parse_body(r: &mut Reader<'a>, depth: usize) -> Result<Self, DecodeError> {
        let start = r.offset();
        if r.remaining() < RELAY_HEADER_LEN {
            return Err(r.error(DecodeErrorKind::Truncated {
                needed: RELAY_HEADER_LEN,
                available: r.remaining(),
            }));
        }
        let msg_type = MessageType::from(r.u8()?);
        let hop_count = r.u8()?;
        let link_address = r.ipv6()?;
        let peer_address = r.ipv6()?;
        let options = parse_options(r, Scope::relay(depth))?;
        match options
            .iter()
            .filter(|o| matches!(o, DhcpOption::RelayMsg(_)))
            .count()
        {
            1 => {}
            0 => return Err(DecodeError::new(start, DecodeErrorKind::MissingRelayMessage)),
            _ => return Err(DecodeError::new(start, DecodeErrorKind::DuplicateRelayMessage)),
        }
        Ok(RelayMessage {
            msg_type,
            hop_count,
            link_address,
            peer_address,
            options,
        })
    }

    /// The relayed message (the Relay Message option's content).
    pub fn relayed(&self) -> Option<&Message<'a>> {
        self.options.iter().find_map(|o| match o {
            DhcpOption::RelayMsg(m) => Some(&**m),
            _ => None,
        })
    }

    /// The Interface-Id option's bytes, if present.
    pub fn interface_id(&self) -> Option<&[u8]> {
        self.options.iter().find_map(|o| match o {
            DhcpOption::InterfaceId(b) => Some(&**b),
            _ => None,
        })
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        options_len(&self.options).saturating_add(RELAY_HEADER_LEN)
    }

    pub(crate) fn emit_into(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        if !self.msg_type.is_relay() {
            return Err(EmitError::InvalidValue {
                what: "relay message with a non-relay msg-type",
            });
        }
        if self
            .options
            .iter()
            .filter(|o| matches!(o, DhcpOption::RelayMsg(_)))
            .count()
            != 1
        {
            return Err(EmitError::InvalidValue {
                what: "relay message without exactly one Relay Message option",
            });
        }
        w.u8(u8::from(self.msg_type))?;
        w.u8(self.hop_count)?;
        w.ipv6(&self.link_address)?;
        w.ipv6(&self.peer_address)?;
        emit_options(&self.options, w)
    }

    /// Copies every borrowed byte.
    pub fn into_owned(self) -> RelayMessage<'static> {
        RelayMessage {
            msg_type: self.msg_type,
            hop_count: self.hop_count,
            link_address: self.link_address,
            peer_address: self.peer_address,
            options: owned_options(self.options),
        }
    }
}
