//! Failover messages (RFC 8156 §5): the header with sent-time (§5.2),
//! message types 24–35 (§5.3), and the messages that share the failover
//! stream during TLS negotiation (STARTTLS and its REPLY, RFC 7653 §8.2;
//! digest ambiguity A1: they keep the RFC 8415 4-byte header).

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, DecodeErrorKind, EmitError};
use crate::message::ClientMessage;
use crate::option::{emit_options, options_len, owned_options, parse_options, DhcpOption, Scope};
use crate::types::{AbsTime, FailoverMessageType, MessageType, TransactionId};

/// Length of the failover header: msg-type, transaction-id, sent-time.
pub const FAILOVER_HEADER_LEN: usize = 8;

/// OPTION_F_CONNECT_FLAGS: FIXED_PD_LENGTH (RFC 8156 §5.5.2, bit 15).
pub const CONNECT_FLAG_FIXED_PD_LENGTH: u16 = 0x0001;
/// OPTION_F_SERVER_FLAGS: COMMUNICATED (RFC 8156 §5.5.15, bit 7).
pub const SERVER_FLAG_COMMUNICATED: u8 = 0x01;
/// OPTION_F_SERVER_FLAGS: STARTUP (bit 6).
pub const SERVER_FLAG_STARTUP: u8 = 0x02;
/// OPTION_F_SERVER_FLAGS: ACK_STARTUP (bit 5).
pub const SERVER_FLAG_ACK_STARTUP: u8 = 0x04;
/// OPTION_F_DNS_FLAGS: FWD_UPTODATE (RFC 8156 §5.5.3.3, bit 15).
pub const DNS_FLAG_FWD_UPTODATE: u16 = 0x0001;
/// OPTION_F_DNS_FLAGS: REV_UPTODATE (bit 14).
pub const DNS_FLAG_REV_UPTODATE: u16 = 0x0002;
/// OPTION_F_DNS_FLAGS: SYNTHESIZED_NAME (bit 13).
pub const DNS_FLAG_SYNTHESIZED_NAME: u16 = 0x0004;
/// OPTION_F_DNS_FLAGS: USING_REQUESTED_FQDN (bit 12).
pub const DNS_FLAG_USING_REQUESTED_FQDN: u16 = 0x0008;

/// The protocol version this crate speaks (OPTION_F_PROTOCOL_VERSION, §5.5.11).
pub const PROTOCOL_VERSION: (u16, u16) = (1, 0);

/// A failover message (RFC 8156 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverMessage<'a> {
    /// Message type, 24–35.
    pub msg_type: FailoverMessageType,
    /// Transaction id (§5.4).
    pub transaction_id: TransactionId,
    /// Absolute time of transmission (§5.2), for skew measurement.
    pub sent_time: AbsTime,
    /// Options, in order.
    pub options: Vec<DhcpOption<'a>>,
}

impl<'a> FailoverMessage<'a> {
    /// A message with no options.
    pub fn new(msg_type: FailoverMessageType, transaction_id: TransactionId, sent_time: AbsTime) -> Self {
        FailoverMessage {
            msg_type,
            transaction_id,
            sent_time,
            options: Vec::new(),
        }
    }

    /// Decodes one failover message that fills `bytes` (a frame's payload).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        FailoverMessage::parse_body(&mut r)
    }

    fn parse_body(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let at = r.offset();
        if r.remaining() < FAILOVER_HEADER_LEN {
            return Err(r.error(DecodeErrorKind::Truncated {
                needed: FAILOVER_HEADER_LEN,
                available: r.remaining(),
            }));
        }
        let raw = r.u8()?;
        let msg_type = FailoverMessageType::from(raw);
        if let FailoverMessageType::Other(_) = msg_type {
            return Err(DecodeError::new(
                at,
                DecodeErrorKind::UnexpectedMessageType {
                    msg_type: raw,
                    reason: "not a failover message type (24-35)",
                },
            ));
        }
        let transaction_id = TransactionId::from_bytes(r.array()?);
        let sent_time = AbsTime(r.u32()?);
        let options = parse_options(r, Scope::MESSAGE)?;
        Ok(FailoverMessage {
            msg_type,
            transaction_id,
            sent_time,
            options,
        })
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        options_len(&self.options).saturating_add(FAILOVER_HEADER_LEN)
    }

    fn emit_into(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        if let FailoverMessageType::Other(_) = self.msg_type {
            return Err(EmitError::InvalidValue {
                what: "failover message with a non-failover msg-type",
            });
        }
        w.u8(u8::from(self.msg_type))?;
        w.bytes(&self.transaction_id.to_bytes())?;
        w.u32(self.sent_time.0)?;
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
    pub fn into_owned(self) -> FailoverMessage<'static> {
        FailoverMessage {
            msg_type: self.msg_type,
            transaction_id: self.transaction_id,
            sent_time: self.sent_time,
            options: owned_options(self.options),
        }
    }
}

/// Anything that may travel on the failover TCP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage<'a> {
    /// A failover message (24–35).
    Failover(FailoverMessage<'a>),
    /// STARTTLS (23) or its REPLY (7), with the RFC 8415 header (RFC 7653 §8.2).
    Tls(ClientMessage<'a>),
}

impl<'a> StreamMessage<'a> {
    /// Decodes one frame's payload, choosing the header by msg-type.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let first = r.clone().u8()?;
        match MessageType::from(first) {
            MessageType::StartTls | MessageType::Reply => {
                ClientMessage::parse_body(&mut r).map(StreamMessage::Tls)
            }
            _ => FailoverMessage::parse_body(&mut r).map(StreamMessage::Failover),
        }
    }

    /// Encoded length (without the frame's length prefix).
    pub fn buffer_len(&self) -> usize {
        match self {
            StreamMessage::Failover(m) => m.buffer_len(),
            StreamMessage::Tls(m) => m.buffer_len(),
        }
    }

    /// Encodes into `buf`, returning the number of bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        match self {
            StreamMessage::Failover(m) => m.emit(buf),
            StreamMessage::Tls(m) => {
                if !matches!(m.msg_type, MessageType::StartTls | MessageType::Reply) {
                    return Err(EmitError::InvalidValue {
                        what: "only STARTTLS and REPLY share the failover stream",
                    });
                }
                m.emit(buf)
            }
        }
    }

    /// Appends the message as one frame (2-byte length, then the message;
    /// RFC 8156 §5.1) to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        let len = self.buffer_len();
        let len16 = u16::try_from(len).map_err(|_| EmitError::FrameTooLong { len })?;
        let start = out.len();
        out.extend_from_slice(&len16.to_be_bytes());
        out.resize(start.saturating_add(2).saturating_add(len), 0);
        let body = out
            .get_mut(start.saturating_add(2)..)
            .ok_or(EmitError::BufferTooSmall {
                needed: len,
                available: 0,
            });
        let written = match body {
            Ok(body) => self.emit(body),
            Err(e) => Err(e),
        };
        if written.is_err() {
            out.truncate(start);
        }
        written.map(|_| ())
    }

    /// Copies every borrowed byte.
    pub fn into_owned(self) -> StreamMessage<'static> {
        match self {
            StreamMessage::Failover(m) => StreamMessage::Failover(m.into_owned()),
            StreamMessage::Tls(m) => StreamMessage::Tls(m.into_owned()),
        }
    }
}

impl<'a> From<FailoverMessage<'a>> for StreamMessage<'a> {
    fn from(m: FailoverMessage<'a>) -> Self {
        StreamMessage::Failover(m)
    }
}
