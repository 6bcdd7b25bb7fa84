//! DHCP Unique Identifiers (RFC 8415 §11).
//!
//! A DUID is compared as an opaque byte string (§11): [`Duid`] holds the
//! bytes, and [`Duid::kind`] is a *view* that splits the known types
//! (DUID-LLT, DUID-EN, DUID-LL, DUID-UUID) into their fields. A DUID of an
//! unknown type, or of a known type whose fields do not fit, is still a
//! perfectly valid DUID ([`DuidKind::Other`]).

use crate::error::{DecodeError, DecodeErrorKind};
use std::borrow::Cow;
use std::fmt;

/// Shortest DUID: a 2-byte type and at least one byte of identifier.
pub const DUID_MIN_LEN: usize = 3;
/// Longest DUID: a 2-byte type and at most 128 bytes of identifier (§11.1).
pub const DUID_MAX_LEN: usize = 130;

/// DUID-LLT type code (§11.2).
pub const DUID_LLT: u16 = 1;
/// DUID-EN type code (§11.3).
pub const DUID_EN: u16 = 2;
/// DUID-LL type code (§11.4).
pub const DUID_LL: u16 = 3;
/// DUID-UUID type code (§11.5, RFC 6355).
pub const DUID_UUID: u16 = 4;

/// A DUID: 3 to 130 bytes, compared byte for byte (RFC 8415 §11).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duid<'a>(Cow<'a, [u8]>);

/// The fields of a DUID, for display and policy; never for comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuidKind<'d> {
    /// DUID-LLT (§11.2): hardware type, time (seconds since 2000, mod 2^32), link-layer address.
    Llt {
        /// IANA hardware type.
        hardware_type: u16,
        /// Creation time.
        time: u32,
        /// Link-layer address.
        link_layer_address: &'d [u8],
    },
    /// DUID-EN (§11.3): enterprise number and identifier.
    En {
        /// IANA private enterprise number.
        enterprise_number: u32,
        /// Vendor-assigned identifier.
        identifier: &'d [u8],
    },
    /// DUID-LL (§11.4): hardware type and link-layer address.
    Ll {
        /// IANA hardware type.
        hardware_type: u16,
        /// Link-layer address.
        link_layer_address: &'d [u8],
    },
    /// DUID-UUID (§11.5).
    Uuid([u8; 16]),
    /// Any other type, or a known type whose fields do not fit.
    Other {
        /// The DUID type.
        duid_type: u16,
        /// Everything after the type.
        data: &'d [u8],
    },
}

impl<'a> Duid<'a> {
    /// Checks the length (3..=130 bytes) and wraps the bytes.
    pub fn new(bytes: impl Into<Cow<'a, [u8]>>) -> Result<Self, DecodeError> {
        let bytes = bytes.into();
        if !(DUID_MIN_LEN..=DUID_MAX_LEN).contains(&bytes.len()) {
            return Err(DecodeError::new(
                0,
                DecodeErrorKind::DuidLength { len: bytes.len() },
            ));
        }
        Ok(Duid(bytes))
    }

    /// The DUID bytes, type included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The 16-bit DUID type.
    pub fn duid_type(&self) -> u16 {
        match self.0.get(..2) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => 0,
        }
    }

    /// Splits a known DUID type into its fields.
    pub fn kind(&self) -> DuidKind<'_> {
        let duid_type = self.duid_type();
        let data = self.0.get(2..).unwrap_or_default();
        let other = DuidKind::Other { duid_type, data };
        match duid_type {
            DUID_LLT => match (data.get(..2), data.get(2..6), data.get(6..)) {
                (Some(&[h0, h1]), Some(&[t0, t1, t2, t3]), Some(ll)) => DuidKind::Llt {
                    hardware_type: u16::from_be_bytes([h0, h1]),
                    time: u32::from_be_bytes([t0, t1, t2, t3]),
                    link_layer_address: ll,
                },
                _ => other,
            },
            DUID_EN => match (data.get(..4), data.get(4..)) {
                (Some(&[e0, e1, e2, e3]), Some(id)) => DuidKind::En {
                    enterprise_number: u32::from_be_bytes([e0, e1, e2, e3]),
                    identifier: id,
                },
                _ => other,
            },
            DUID_LL => match (data.get(..2), data.get(2..)) {
                (Some(&[h0, h1]), Some(ll)) => DuidKind::Ll {
                    hardware_type: u16::from_be_bytes([h0, h1]),
                    link_layer_address: ll,
                },
                _ => other,
            },
            DUID_UUID => match <[u8; 16]>::try_from(data) {
                Ok(uuid) => DuidKind::Uuid(uuid),
                Err(_) => other,
            },
            _ => other,
        }
    }

    /// Lower-case hex without separators, as in `duet ctl leases`.
    pub fn to_hex(&self) -> String {
        use fmt::Write;
        self.0.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Copies borrowed bytes so the DUID outlives the received buffer.
    pub fn into_owned(self) -> Duid<'static> {
        Duid(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Debug for Duid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duid({})", self.to_hex())
    }
}

impl fmt::Display for Duid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_splits_duid_en_from_rfc_example() {
        // RFC 8415 §11.3's example DUID-EN.
        let bytes = [
            0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x0c, 0xc0, 0x84, 0xd3, 0x03, 0x00, 0x09, 0x12,
        ];
        let duid = Duid::new(&bytes[..]).unwrap();
        assert_eq!(
            duid.kind(),
            DuidKind::En {
                enterprise_number: 9,
                identifier: &bytes[6..]
            }
        );
    }

    #[test]
    fn kind_splits_llt_ll_and_uuid() {
        let llt = Duid::new(&[0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 2, 0, 0, 0, 0, 1][..]).unwrap();
        assert_eq!(
            llt.kind(),
            DuidKind::Llt {
                hardware_type: 1,
                time: 0x2a2b2c2d,
                link_layer_address: &[2, 0, 0, 0, 0, 1]
            }
        );
        let ll = Duid::new(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1][..]).unwrap();
        assert_eq!(
            ll.kind(),
            DuidKind::Ll {
                hardware_type: 1,
                link_layer_address: &[2, 0, 0, 0, 0, 1]
            }
        );
        let mut uuid = vec![0, 4];
        uuid.extend(1..=16u8);
        let d = Duid::new(uuid).unwrap();
        assert!(matches!(d.kind(), DuidKind::Uuid(u) if u[0] == 1 && u[15] == 16));
    }

    #[test]
    fn kind_keeps_unknown_and_misfit_types_as_other() {
        let unknown = Duid::new(&[0x12, 0x34, 9][..]).unwrap();
        assert_eq!(
            unknown.kind(),
            DuidKind::Other {
                duid_type: 0x1234,
                data: &[9]
            }
        );
        // A DUID-UUID that is not 16 bytes long is still a DUID.
        let short_uuid = Duid::new(&[0, 4, 1, 2, 3][..]).unwrap();
        assert!(matches!(short_uuid.kind(), DuidKind::Other { duid_type: 4, .. }));
    }

    #[test]
    fn new_rejects_lengths_outside_rfc_range() {
        assert!(Duid::new(&[0, 1][..]).is_err());
        assert!(Duid::new(vec![0u8; 131]).is_err());
        assert!(Duid::new(vec![0u8; 130]).is_ok());
    }

    #[test]
    fn to_hex_has_no_separators() {
        let d = Duid::new(&[0, 3, 0xab][..]).unwrap();
        assert_eq!(d.to_hex(), "0003ab");
    }
}
