//! The bytes of a journal file: the header, the record frame and the
//! record payload. Pure functions, no IO beyond `Read`/`Write` given in.
//!
//! ```text
//! file    = header record* free?
//! free    = zero bytes to the end of the file: space preallocated for
//!           later records (a record's len is never 0, so a zero frame
//!           cannot be a record)
//! header  = "DUETJNL\0" (8) | version u32 LE (= 1) | reserved u32 LE (= 0)
//! record  = len u32 LE | crc u32 LE | payload (len bytes)
//! crc     = CRC-32 (IEEE, crc32fast) of the 4 len bytes followed by the payload
//! payload = kind u8 (1 batch, 2 snapshot chunk) | postcard(Body)
//! Body    = { leases: Vec<Lease>, meta: Vec<(String, Vec<u8>)> }
//! ```

use duet_core::lease::Lease;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

/// First 8 bytes of every journal.
pub(crate) const MAGIC: [u8; 8] = *b"DUETJNL\0";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Length of the file header.
pub(crate) const HEADER_LEN: u64 = 16;
/// Length of a record's frame (length + CRC) before its payload.
pub(crate) const FRAME_LEN: u64 = 8;
/// Largest payload accepted, on write and on read. A larger length field is
/// taken for corruption rather than an allocation request.
pub(crate) const MAX_PAYLOAD: u32 = 64 << 20;

/// The 16-byte file header.
pub(crate) fn header() -> [u8; 16] {
    let mut h = [0u8; 16];
    let (magic, rest) = h.split_at_mut(8);
    magic.copy_from_slice(&MAGIC);
    let (version, _reserved) = rest.split_at_mut(4);
    version.copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Checks a file header; the error says what is wrong.
pub(crate) fn check_header(h: &[u8; 16]) -> Result<(), String> {
    let [m0, m1, m2, m3, m4, m5, m6, m7, v0, v1, v2, v3, r0, r1, r2, r3] = *h;
    if [m0, m1, m2, m3, m4, m5, m6, m7] != MAGIC {
        return Err("not a duet journal (bad magic)".into());
    }
    let version = u32::from_le_bytes([v0, v1, v2, v3]);
    if version != VERSION {
        return Err(format!(
            "journal format version {version}; this build reads version {VERSION} only"
        ));
    }
    let reserved = u32::from_le_bytes([r0, r1, r2, r3]);
    if reserved != 0 {
        return Err(format!("reserved header field is {reserved:#x}, not 0"));
    }
    Ok(())
}

/// What a record is. Both kinds are replayed alike (upsert, meta
/// last-writer-wins); the kind says where the record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// One group commit.
    Batch = 1,
    /// One chunk of the snapshot a compaction wrote.
    Snapshot = 2,
}

/// The body of a record, as written (borrowing, no copies). `L` is `Lease`
/// or `&Lease`, `M` is `(String, Vec<u8>)` or a pair of references to
/// them: serde writes a reference exactly as the value.
#[derive(Serialize)]
struct BodyRef<'a, L, M> {
    leases: &'a [L],
    meta: &'a [M],
}

/// The body of a record, as read. Same serde shape as [`BodyRef`].
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Body {
    pub(crate) leases: Vec<Lease>,
    pub(crate) meta: Vec<(String, Vec<u8>)>,
}

/// The CRC stored in a record's frame: over the length bytes and the
/// payload, so that a damaged length field is caught too, not only a
/// damaged payload.
fn record_crc(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// Encodes one whole record (frame and payload), ready for one write.
/// Fails if the payload would exceed [`MAX_PAYLOAD`] (a reader would refuse
/// it) or if serde fails.
pub(crate) fn encode_record<L, M>(kind: RecordKind, leases: &[L], meta: &[M]) -> io::Result<Vec<u8>>
where
    L: std::borrow::Borrow<Lease> + Serialize,
    M: Serialize,
{
    // Frame placeholder, then the kind byte, then the postcard body.
    let mut buf = vec![0u8; 8];
    buf.push(kind as u8);
    let mut buf = postcard::to_extend(&BodyRef { leases, meta }, buf)
        .map_err(|e| io::Error::other(format!("encoding a journal record: {e}")))?;
    let (frame, payload) = buf.split_at_mut(8);
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n <= MAX_PAYLOAD)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a record of {} bytes exceeds the journal's limit of {MAX_PAYLOAD} bytes; commit smaller batches",
                    payload.len()
                ),
            )
        })?;
    let len = len.to_le_bytes();
    let crc = record_crc(len, payload).to_le_bytes();
    let (len_field, crc_field) = frame.split_at_mut(4);
    len_field.copy_from_slice(&len);
    crc_field.copy_from_slice(&crc);
    Ok(buf)
}

/// Decodes a payload whose CRC matched.
fn decode_payload(payload: &[u8]) -> Result<(RecordKind, Body), String> {
    let (&kind, body) = payload.split_first().ok_or("empty payload")?;
    let kind = match kind {
        1 => RecordKind::Batch,
        2 => RecordKind::Snapshot,
        k => return Err(format!("unknown record kind {k}")),
    };
    let (body, rest) =
        postcard::take_from_bytes::<Body>(body).map_err(|e| format!("payload does not decode: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the payload's end", rest.len()));
    }
    Ok((kind, body))
}

/// What the reader found at the current offset.
#[derive(Debug)]
pub(crate) enum Next {
    /// The file ends here, cleanly after a record (or the header).
    End,
    /// A zero frame (or fewer than a frame's bytes, all zero): the start
    /// of the preallocated free space, if everything after it is zero too.
    Free,
    /// A good record, `len` bytes long including its frame. (Its kind is
    /// checked but not returned: both kinds replay alike.)
    Record { len: u64, body: Body },
    /// Not a good record: this and everything after it is the tail.
    Bad { reason: String },
}

/// Reads the record at the current position of `r`, with `remaining` bytes
/// left in the file. IO errors are errors; bad bytes are [`Next::Bad`].
pub(crate) fn read_record(r: &mut impl Read, remaining: u64) -> io::Result<Next> {
    if remaining == 0 {
        return Ok(Next::End);
    }
    if remaining < FRAME_LEN {
        let mut rest = [0u8; 8];
        let rest = rest
            .get_mut(..usize::try_from(remaining).map_err(io::Error::other)?)
            .unwrap_or_default();
        r.read_exact(rest)?;
        if rest.iter().all(|&b| b == 0) {
            return Ok(Next::Free);
        }
        return Ok(Next::Bad {
            reason: format!(
                "incomplete record frame: {remaining} of {FRAME_LEN} bytes present (crash during write?)"
            ),
        });
    }
    let mut frame = [0u8; 8];
    r.read_exact(&mut frame)?;
    if frame == [0u8; 8] {
        return Ok(Next::Free);
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = frame;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let stored_crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > MAX_PAYLOAD {
        return Ok(Next::Bad {
            reason: format!("record length {len} exceeds the limit of {MAX_PAYLOAD} bytes"),
        });
    }
    let total = FRAME_LEN.saturating_add(u64::from(len));
    if remaining < total {
        return Ok(Next::Bad {
            reason: format!("incomplete record: {remaining} of {total} bytes present (crash during write?)"),
        });
    }
    let size = usize::try_from(len).map_err(io::Error::other)?;
    let mut payload = vec![0u8; size];
    r.read_exact(&mut payload)?;
    let crc = record_crc([l0, l1, l2, l3], &payload);
    if crc != stored_crc {
        return Ok(Next::Bad {
            reason: format!("CRC mismatch (stored {stored_crc:08x}, computed {crc:08x})"),
        });
    }
    Ok(match decode_payload(&payload) {
        Ok((_kind, body)) => Next::Record { len: total, body },
        Err(why) => Next::Bad {
            reason: format!("record with a good CRC does not decode: {why}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_core::lease::{LeaseKey, LeaseState};
    use duet_core::time::UnixTime;

    const NO_META: &[(String, Vec<u8>)] = &[];

    fn lease(n: u16) -> Lease {
        let a = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n);
        Lease::free(LeaseKey::address(a), LeaseState::Free, UnixTime(u64::from(n)))
    }

    #[test]
    fn header_round_trips_and_rejects_others() {
        let h = header();
        assert_eq!(&h[..8], b"DUETJNL\0");
        assert_eq!(check_header(&h), Ok(()));
        let mut bad = h;
        bad[0] = b'X';
        assert!(check_header(&bad).unwrap_err().contains("magic"));
        let mut v2 = h;
        v2[8] = 2;
        assert!(check_header(&v2).unwrap_err().contains("version 2"));
        let mut r = h;
        r[15] = 1;
        assert!(check_header(&r).unwrap_err().contains("reserved"));
    }

    #[test]
    fn record_round_trips() {
        let leases = vec![lease(1), lease(2)];
        let meta = vec![("duid".to_string(), vec![0, 1, 2])];
        let rec = encode_record(RecordKind::Snapshot, &leases, &meta).unwrap();
        assert_eq!(rec[8], 2, "kind byte follows the frame");
        let n = rec.len() as u64;
        match read_record(&mut &rec[..], n).unwrap() {
            Next::Record { len, body } => {
                assert_eq!(len, n);
                assert_eq!(body, Body { leases, meta });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_by_reference_are_the_same_bytes() {
        let leases = vec![lease(1), lease(2)];
        let meta = vec![("duid".to_string(), vec![0, 1, 2])];
        let by_value = encode_record(RecordKind::Batch, &leases, &meta).unwrap();
        let lease_refs: Vec<&Lease> = leases.iter().collect();
        let meta_refs: Vec<(&String, &Vec<u8>)> = meta.iter().map(|(k, v)| (k, v)).collect();
        assert_eq!(
            encode_record(RecordKind::Batch, &lease_refs, &meta_refs).unwrap(),
            by_value
        );
    }

    #[test]
    fn damaged_length_field_is_a_crc_mismatch() {
        // Two records back to back; make the first one's length 1 shorter.
        let mut rec = encode_record(RecordKind::Batch, &[lease(1)], NO_META).unwrap();
        rec.extend(encode_record(RecordKind::Batch, &[lease(2)], NO_META).unwrap());
        rec[0] -= 1;
        let n = rec.len() as u64;
        match read_record(&mut &rec[..], n).unwrap() {
            Next::Bad { reason } => assert!(reason.contains("CRC mismatch"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn good_crc_but_bad_payload_is_reported() {
        let payload = [9u8, 0, 0];
        let len = (payload.len() as u32).to_le_bytes();
        let mut rec = len.to_vec();
        rec.extend(record_crc(len, &payload).to_le_bytes());
        rec.extend(payload);
        let n = rec.len() as u64;
        match read_record(&mut &rec[..], n).unwrap() {
            Next::Bad { reason } => assert!(reason.contains("unknown record kind 9"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
