//! Decode and emit errors.
//!
//! A malformed message is always an error, never a partial success: the
//! [`DecodeError`] names the byte offset (from the start of the buffer handed
//! to the outermost `parse`), the option code being decoded (the innermost
//! one, for nested options) and what was wrong.

use core::fmt;

/// What was wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The data ended before a field was complete.
    #[error("truncated: needed {needed} more bytes, {available} available")]
    Truncated {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// An option's length does not fit its definition.
    #[error("bad option length {len}: expected {expected}")]
    BadLength {
        /// The option-len found on the wire.
        len: usize,
        /// What the definition allows, in words.
        expected: &'static str,
    },
    /// Bytes were left over after a structure that must fill its container.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
        /// The structure that should have filled the space.
        what: &'static str,
    },
    /// A field holds a value its definition forbids.
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The offending value, as a number.
        value: u64,
    },
    /// A DUID is shorter or longer than RFC 8415 §11 allows (3..=130 bytes).
    #[error("DUID length {len} outside 3..=130")]
    DuidLength {
        /// The length found.
        len: usize,
    },
    /// A domain name is not in uncompressed RFC 1035 wire format.
    #[error("invalid domain name: {reason}")]
    DomainName {
        /// Why.
        reason: &'static str,
    },
    /// A text field that must be UTF-8 is not.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// The message type is unknown or not allowed where it was found.
    #[error("message type {msg_type} is not valid here: {reason}")]
    UnexpectedMessageType {
        /// The msg-type octet.
        msg_type: u8,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Relay messages nested deeper than the limit (RFC 8415 §7.6 HOP_COUNT_LIMIT).
    #[error("relay messages nested more than {limit} levels deep")]
    RelayTooDeep {
        /// The number of levels allowed.
        limit: usize,
    },
    /// A relay message without its mandatory Relay Message option (RFC 8415 §9).
    #[error("relay message without OPTION_RELAY_MSG")]
    MissingRelayMessage,
    /// A relay message with more than one Relay Message option.
    #[error("relay message with more than one OPTION_RELAY_MSG")]
    DuplicateRelayMessage,
    /// A zero-length frame on the failover stream (RFC 8156 §5.1).
    #[error("zero-length frame")]
    EmptyFrame,
}

/// A malformed message: where, in which option, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset from the start of the buffer given to `parse`.
    pub offset: usize,
    /// The (innermost) option being decoded, if any.
    pub option: Option<u16>,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        DecodeError {
            offset,
            option: None,
            kind,
        }
    }

    /// Attaches an option code unless an inner option already did.
    pub(crate) fn in_option(mut self, code: u16) -> Self {
        if self.option.is_none() {
            self.option = Some(code);
        }
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.option {
            Some(code) => write!(f, "at byte {} in option {}: {}", self.offset, code, self.kind),
            None => write!(f, "at byte {}: {}", self.offset, self.kind),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a value could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The output buffer is smaller than `buffer_len()`.
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// An option's data is longer than the 16-bit option-len can express.
    #[error("option {code} data is {len} bytes, more than 65535")]
    OptionTooLong {
        /// The option code.
        code: u16,
        /// The data length.
        len: usize,
    },
    /// A failover frame longer than the 16-bit message-size (RFC 8156 §5.1).
    #[error("message of {len} bytes does not fit a failover frame (max 65535)")]
    FrameTooLong {
        /// The message length.
        len: usize,
    },
    /// A field holds a value that would not decode again.
    #[error("cannot emit {what}")]
    InvalidValue {
        /// What is wrong.
        what: &'static str,
    },
}
