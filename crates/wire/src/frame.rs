//! Framing of the failover TCP stream (RFC 8156 §5.1, RFC 5460 §5.1): each
//! message is preceded by its length as a 2-byte network-order integer.
//!
//! [`FrameDecoder`] is sans-IO: feed it whatever the socket returned, in
//! any chunking, and take whole frames out. Partial frames wait for more
//! bytes; several frames in one read come out one by one.

use crate::error::{DecodeError, DecodeErrorKind};

/// Length of the frame header.
pub const FRAME_HEADER_LEN: usize = 2;

/// Splits a byte stream into frames.
#[derive(Debug, Default, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    start: usize,
    /// Stream offset of `buf[0]`, for error reports.
    stream_offset: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        FrameDecoder::default()
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.stream_offset = self.stream_offset.saturating_add(self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The next complete frame's payload, `Ok(None)` if more bytes are
    /// needed. A zero-length frame is consumed and reported as an error
    /// (a message always has a header); the stream stays in sync after it.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some(&[hi, lo]) = pending.get(..FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let frame_start = self.start.saturating_add(FRAME_HEADER_LEN);
        let frame_end = frame_start.saturating_add(len);
        if len == 0 {
            let at = self.stream_offset.saturating_add(self.start);
            self.start = frame_start;
            return Err(DecodeError::new(at, DecodeErrorKind::EmptyFrame));
        }
        if frame_end > self.buf.len() {
            return Ok(None);
        }
        self.start = frame_end;
        Ok(self.buf.get(frame_start..frame_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_frame_waits_for_the_rest() {
        let mut d = FrameDecoder::new();
        d.push(&[0, 3, 0xaa]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&[0xbb]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&[0xcc, 0]);
        assert_eq!(d.next_frame().unwrap(), Some(&[0xaa, 0xbb, 0xcc][..]));
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(d.buffered(), 1);
    }

    #[test]
    fn coalesced_frames_come_out_one_by_one() {
        let mut d = FrameDecoder::new();
        d.push(&[0, 1, 7, 0, 2, 8, 9, 0, 1]);
        assert_eq!(d.next_frame().unwrap(), Some(&[7][..]));
        assert_eq!(d.next_frame().unwrap(), Some(&[8, 9][..]));
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&[10]);
        assert_eq!(d.next_frame().unwrap(), Some(&[10][..]));
    }

    #[test]
    fn header_split_across_reads() {
        let mut d = FrameDecoder::new();
        d.push(&[0]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&[1, 5]);
        assert_eq!(d.next_frame().unwrap(), Some(&[5][..]));
    }

    #[test]
    fn zero_length_frame_is_an_error_with_stream_offset() {
        let mut d = FrameDecoder::new();
        d.push(&[0, 1, 7]);
        assert!(d.next_frame().unwrap().is_some());
        d.push(&[0, 0, 0, 1, 4]);
        let e = d.next_frame().unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::EmptyFrame);
        assert_eq!(e.offset, 3);
        assert_eq!(d.next_frame().unwrap(), Some(&[4][..]));
    }

    #[test]
    fn maximum_frame_size_is_accepted() {
        let mut d = FrameDecoder::new();
        let mut data = vec![0xff, 0xff];
        data.extend(std::iter::repeat_n(1u8, 65535));
        d.push(&data);
        assert_eq!(d.next_frame().unwrap().map(<[u8]>::len), Some(65535));
    }
}
