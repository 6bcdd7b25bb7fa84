//! Domain names in uncompressed RFC 1035 wire format (RFC 8415 §10).
//!
//! Used by OPTION_DOMAIN_LIST (RFC 3646 §4), OPTION_CLIENT_FQDN (RFC 4704
//! §4.2, where a *partial* name without the terminating root label is
//! allowed) and the failover DNS options (RFC 8156 §5.5.3).

use crate::error::{DecodeError, DecodeErrorKind};
use std::borrow::Cow;
use std::fmt;

/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest name in wire format, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;

/// A validated domain name in wire format: labels of 1..=63 bytes, no
/// compression pointers, at most 255 bytes. Fully qualified when it ends
/// with the zero-length root label; partial otherwise (RFC 4704 §4.2).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DomainName<'a>(Cow<'a, [u8]>);

fn name_error(reason: &'static str) -> DecodeErrorKind {
    DecodeErrorKind::DomainName { reason }
}

/// Length in bytes of the first complete name in `data`, and whether it is
/// fully qualified. A name that runs to the end of `data` without a root
/// label is partial.
fn scan(data: &[u8]) -> Result<(usize, bool), (usize, DecodeErrorKind)> {
    let mut pos = 0usize;
    loop {
        let Some(&len) = data.get(pos) else {
            return Ok((pos, false));
        };
        if len == 0 {
            let end = pos.saturating_add(1);
            if end > MAX_NAME_LEN {
                return Err((pos, name_error("longer than 255 bytes")));
            }
            return Ok((end, true));
        }
        if len & 0xc0 != 0 {
            return Err((pos, name_error("compressed or extended label type")));
        }
        let next = pos.saturating_add(1).saturating_add(usize::from(len));
        if next > data.len() {
            return Err((pos, name_error("label runs past the end of the option")));
        }
        if next > MAX_NAME_LEN {
            return Err((pos, name_error("longer than 255 bytes")));
        }
        pos = next;
    }
}

impl<'a> DomainName<'a> {
    /// Parses `data` as exactly one name, fully qualified or partial.
    pub(crate) fn parse_whole(data: &'a [u8], offset: usize) -> Result<Self, DecodeError> {
        let (len, _) = scan(data).map_err(|(at, k)| DecodeError::new(offset.saturating_add(at), k))?;
        if len != data.len() {
            return Err(DecodeError::new(
                offset.saturating_add(len),
                DecodeErrorKind::TrailingBytes {
                    count: data.len().saturating_sub(len),
                    what: "domain name",
                },
            ));
        }
        Ok(DomainName(Cow::Borrowed(data)))
    }

    /// Parses a concatenation of fully qualified names (RFC 3646 §4).
    pub(crate) fn parse_list(data: &'a [u8], offset: usize) -> Result<Vec<Self>, DecodeError> {
        let mut names = Vec::new();
        let mut rest = data;
        let mut at = offset;
        while !rest.is_empty() {
            let (len, fq) = scan(rest).map_err(|(p, k)| DecodeError::new(at.saturating_add(p), k))?;
            if !fq {
                return Err(DecodeError::new(
                    at,
                    name_error("name in a list lacks the root label"),
                ));
            }
            let (name, tail) = rest
                .split_at_checked(len)
                .ok_or_else(|| DecodeError::new(at, name_error("label runs past the end of the option")))?;
            names.push(DomainName(Cow::Borrowed(name)));
            rest = tail;
            at = at.saturating_add(len);
        }
        Ok(names)
    }

    /// Builds a name from dotted text. A trailing dot, or `fully_qualified`,
    /// adds the root label; `"."` and `""` are the root and the empty
    /// partial name. Escapes are not supported: labels are taken literally.
    pub fn from_text(text: &str, fully_qualified: bool) -> Result<DomainName<'static>, DecodeError> {
        let (body, fq) = match text.strip_suffix('.') {
            Some(b) => (b, true),
            None => (text, fully_qualified),
        };
        let mut wire = Vec::with_capacity(body.len().saturating_add(2));
        if !body.is_empty() {
            for label in body.split('.') {
                let len = u8::try_from(label.len())
                    .ok()
                    .filter(|l| (1..=63).contains(l))
                    .ok_or_else(|| DecodeError::new(0, name_error("label empty or longer than 63 bytes")))?;
                wire.push(len);
                wire.extend_from_slice(label.as_bytes());
            }
        }
        if fq {
            wire.push(0);
        }
        DomainName::parse_whole(&wire, 0)?;
        Ok(DomainName(Cow::Owned(wire)))
    }

    /// The wire-format bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the name ends with the root label.
    pub fn is_fully_qualified(&self) -> bool {
        self.0.last() == Some(&0)
    }

    /// The labels, in order, without the root label.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest: &[u8] = &self.0;
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let (label, tail) = tail.split_at_checked(usize::from(len))?;
            rest = tail;
            (len != 0).then_some(label)
        })
    }

    /// Dotted text; fully qualified names end with a dot. Bytes outside
    /// printable ASCII, and dots inside labels, are shown as `\DDD`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                out.push('.');
            }
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("\\{b:03}"));
                }
            }
        }
        if self.is_fully_qualified() {
            out.push('.');
        }
        out
    }

    /// Copies borrowed bytes.
    pub fn into_owned(self) -> DomainName<'static> {
        DomainName(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for DomainName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({:?})", self.to_text())
    }
}

impl fmt::Display for DomainName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_text_round_trips_through_wire() {
        let n = DomainName::from_text("example.org", true).unwrap();
        assert_eq!(n.as_bytes(), b"\x07example\x03org\x00");
        assert_eq!(n.to_text(), "example.org.");
        let p = DomainName::from_text("host", false).unwrap();
        assert_eq!(p.as_bytes(), b"\x04host");
        assert!(!p.is_fully_qualified());
        assert_eq!(DomainName::from_text(".", false).unwrap().as_bytes(), b"\x00");
        assert_eq!(DomainName::from_text("", false).unwrap().as_bytes(), b"");
    }

    #[test]
    fn from_text_rejects_bad_labels() {
        assert!(DomainName::from_text("a..b", true).is_err());
        assert!(DomainName::from_text(&"x".repeat(64), true).is_err());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(DomainName::from_text(&long, true).is_err());
    }

    #[test]
    fn parse_rejects_compression_pointer() {
        let e = DomainName::parse_whole(b"\x03abc\xc0\x0c", 10).unwrap_err();
        assert_eq!(e.offset, 14);
        assert!(matches!(e.kind, DecodeErrorKind::DomainName { .. }));
    }

    #[test]
    fn parse_list_splits_names_and_requires_root() {
        let l = DomainName::parse_list(b"\x01a\x00\x01b\x01c\x00", 0).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].to_text(), "b.c.");
        assert!(DomainName::parse_list(b"\x01a\x00\x01b", 0).is_err());
    }

    #[test]
    fn to_text_escapes_unprintable_bytes() {
        let n = DomainName::parse_whole(b"\x03a.\x01\x00", 0).unwrap();
        assert_eq!(n.to_text(), "a\\046\\001.");
    }
}
