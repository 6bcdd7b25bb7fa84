//! Bounds-checked reading and writing of network-order fields.
//!
//! Every accessor returns an error instead of panicking; the rest of the
//! crate never indexes a slice directly.

use crate::error::{DecodeError, DecodeErrorKind, EmitError};
use std::net::Ipv6Addr;

/// A cursor over received bytes that knows its absolute offset, so that
/// errors from nested options can name the byte in the whole message.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, base: 0 }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(self.offset(), kind)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let truncated = || {
            self.error(DecodeErrorKind::Truncated {
                needed: n,
                available: self.remaining(),
            })
        };
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    /// A reader over the next `n` bytes, keeping absolute offsets.
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let buf = self.take(n)?;
        Ok(Reader { buf, pos: 0, base })
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.offset();
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| {
            DecodeError::new(
                at,
                DecodeErrorKind::Truncated {
                    needed: N,
                    available: bytes.len(),
                },
            )
        })
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn ipv6(&mut self) -> Result<Ipv6Addr, DecodeError> {
        Ok(Ipv6Addr::from(self.array::<16>()?))
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(self.error(DecodeErrorKind::TrailingBytes { count, what })),
        }
    }
}

/// A cursor over an output buffer; writing past its end is an error.
#[derive(Debug)]
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn bytes(&mut self, data: &[u8]) -> Result<(), EmitError> {
        let available = self.buf.len().saturating_sub(self.pos);
        let too_small = EmitError::BufferTooSmall {
            needed: data.len(),
            available,
        };
        let end = self.pos.checked_add(data.len()).ok_or(too_small.clone())?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(too_small)?;
        dst.copy_from_slice(data);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), EmitError> {
        self.bytes(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), EmitError> {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), EmitError> {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), EmitError> {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn ipv6(&mut self, a: &Ipv6Addr) -> Result<(), EmitError> {
        self.bytes(&a.octets())
    }

    /// Writes an option header (code, option-len) for `len` bytes of data.
    pub(crate) fn option_header(&mut self, code: u16, len: usize) -> Result<(), EmitError> {
        let len16 = u16::try_from(len).map_err(|_| EmitError::OptionTooLong { code, len })?;
        self.u16(code)?;
        self.u16(len16)
    }

    /// Writes a u16 length prefix for an item of `len` bytes.
    pub(crate) fn len16(&mut self, len: usize, what: &'static str) -> Result<(), EmitError> {
        let len16 = u16::try_from(len).map_err(|_| EmitError::InvalidValue { what })?;
        self.u16(len16)
    }
}

/// Sum of lengths that saturates instead of overflowing (a saturated sum is
/// caught later as a too-long option or too-small buffer).
pub(crate) fn sum(parts: impl IntoIterator<Item = usize>) -> usize {
    parts.into_iter().fold(0usize, usize::saturating_add)
}
