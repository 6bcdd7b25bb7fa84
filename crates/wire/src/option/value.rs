//! The codec of one option's data ([`OptionValue`]), the length checks the
//! codecs share, and the codecs of the value types several options (or
//! several families) share: no data, integers, absolute times, an address,
//! opaque bytes, DUIDs, domain names and option lists (containers).

use super::{emit_options, options_len, owned_options, parse_options, Bytes, DhcpOption, Scope};
use crate::codec::{Reader, Writer};
use crate::duid::Duid;
use crate::error::{DecodeError, DecodeErrorKind, EmitError};
use crate::name::DomainName;
use crate::types::AbsTime;
use std::borrow::Cow;
use std::net::Ipv6Addr;

/// How the data of a typed option is decoded, measured, emitted and
/// detached from the received buffer.
///
/// Every value type of the option table (see [`super`]) implements it; the
/// table generates one `match` per operation whose arms call these
/// statically, so there is no dynamic dispatch. Options with different codes
/// may share a value type (and so its codec): OPTION_CLIENTID and
/// OPTION_SERVERID are both a [`Duid`], many timers are a `u32`.
pub(crate) trait OptionValue<'a>: Sized {
    /// `Self` with every borrow copied, for [`DhcpOption::into_owned`].
    type Static;

    /// Decodes the data of one option, which fills `r` (the caller then
    /// fails on anything left over).
    ///
    /// `scope` is, for a container (an entry of the table marked
    /// `container`), the scope of its contents; for any other option, the
    /// scope the option itself appears in.
    ///
    /// `Ok(None)` means "not typed in this scope": `r` is left untouched
    /// and the option is kept as [`DhcpOption::Unknown`].
    fn decode(r: &mut Reader<'a>, scope: Scope) -> Result<Option<Self>, DecodeError>;

    /// Length of the encoded data, without the 4-byte option header.
    fn data_len(&self) -> usize;

    /// Writes the data (the option header is already written).
    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError>;

    /// Copies every borrowed byte.
    fn into_static(self) -> Self::Static;
}

// ---- Length checks and small helpers shared by the codecs ----

pub(crate) fn bad_length(r: &Reader<'_>, expected: &'static str) -> DecodeError {
    r.error(DecodeErrorKind::BadLength {
        len: r.remaining(),
        expected,
    })
}

/// Fails unless exactly `n` bytes remain.
pub(crate) fn exact(r: &Reader<'_>, n: usize, expected: &'static str) -> Result<(), DecodeError> {
    if r.remaining() == n {
        Ok(())
    } else {
        Err(bad_length(r, expected))
    }
}

/// Fails unless at least `n` bytes remain.
pub(crate) fn at_least(r: &Reader<'_>, n: usize, expected: &'static str) -> Result<(), DecodeError> {
    if r.remaining() >= n {
        Ok(())
    } else {
        Err(bad_length(r, expected))
    }
}

/// The data of an option that is exactly one 32-bit number.
pub(crate) fn u32_option(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    exact(r, 4, "4")?;
    r.u32()
}

pub(crate) fn owned(b: Bytes<'_>) -> Bytes<'static> {
    Cow::Owned(b.into_owned())
}

// ---- Shared value types ----

/// No data (OPTION_RAPID_COMMIT, OPTION_RECONF_ACCEPT).
impl<'a> OptionValue<'a> for () {
    type Static = ();

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        exact(r, 0, "0")?;
        Ok(Some(()))
    }

    fn data_len(&self) -> usize {
        0
    }

    fn emit(&self, _: &mut Writer<'_>) -> Result<(), EmitError> {
        Ok(())
    }

    fn into_static(self) -> Self::Static {}
}

/// The codec of a fixed-size number: its size, its reader, its writer.
macro_rules! number {
    ($(#[$doc:meta])* $T:ty, $n:literal, $read:ident, $write:ident) => {
        $(#[$doc])*
        impl<'a> OptionValue<'a> for $T {
            type Static = $T;

            fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
                exact(r, $n, stringify!($n))?;
                Ok(Some(r.$read()?))
            }

            fn data_len(&self) -> usize {
                $n
            }

            fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
                w.$write(*self)
            }

            fn into_static(self) -> Self::Static {
                self
            }
        }
    };
}

number!(
    /// A one-byte number (preference, reconfigure message type, server flags).
    u8, 1, u8, u8
);
number!(
    /// A two-byte number (elapsed time, connect flags, DNS flags).
    u16, 2, u16, u16
);

/// A four-byte number (timers in seconds, counts).
impl<'a> OptionValue<'a> for u32 {
    type Static = u32;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        Ok(Some(u32_option(r)?))
    }

    fn data_len(&self) -> usize {
        4
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u32(*self)
    }

    fn into_static(self) -> Self::Static {
        self
    }
}

/// An absolute time (the leasequery base time and the failover times).
impl<'a> OptionValue<'a> for AbsTime {
    type Static = AbsTime;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        Ok(Some(AbsTime(u32_option(r)?)))
    }

    fn data_len(&self) -> usize {
        4
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u32(self.0)
    }

    fn into_static(self) -> Self::Static {
        self
    }
}

/// One IPv6 address (OPTION_UNICAST).
impl<'a> OptionValue<'a> for Ipv6Addr {
    type Static = Ipv6Addr;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        exact(r, 16, "16")?;
        Ok(Some(r.ipv6()?))
    }

    fn data_len(&self) -> usize {
        16
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.ipv6(self)
    }

    fn into_static(self) -> Self::Static {
        self
    }
}

/// Opaque bytes, any length (OPTION_INTERFACE_ID).
impl<'a> OptionValue<'a> for Bytes<'a> {
    type Static = Bytes<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        Ok(Some(Cow::Borrowed(r.rest())))
    }

    fn data_len(&self) -> usize {
        self.len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.bytes(self)
    }

    fn into_static(self) -> Self::Static {
        owned(self)
    }
}

/// A DUID filling the option (OPTION_CLIENTID, OPTION_SERVERID).
impl<'a> OptionValue<'a> for Duid<'a> {
    type Static = Duid<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        let at = r.offset();
        let bytes = r.rest();
        let duid = Duid::new(bytes).map_err(|e| DecodeError::new(at, e.kind))?;
        Ok(Some(duid))
    }

    fn data_len(&self) -> usize {
        self.as_bytes().len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.bytes(self.as_bytes())
    }

    fn into_static(self) -> Self::Static {
        self.into_owned()
    }
}

/// One domain name filling the option, fully qualified or partial
/// (OPTION_F_DNS_HOST_NAME, OPTION_F_DNS_ZONE_NAME).
impl<'a> OptionValue<'a> for DomainName<'a> {
    type Static = DomainName<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        let at = r.offset();
        Ok(Some(DomainName::parse_whole(r.rest(), at)?))
    }

    fn data_len(&self) -> usize {
        self.as_bytes().len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.bytes(self.as_bytes())
    }

    fn into_static(self) -> Self::Static {
        self.into_owned()
    }
}

/// An option list filling the option: the contents of a container
/// (OPTION_CLIENT_DATA, OPTION_F_DNS_REMOVAL_INFO), decoded in the scope
/// the table gives the container.
impl<'a> OptionValue<'a> for Vec<DhcpOption<'a>> {
    type Static = Vec<DhcpOption<'static>>;

    fn decode(r: &mut Reader<'a>, scope: Scope) -> Result<Option<Self>, DecodeError> {
        Ok(Some(parse_options(r, scope)?))
    }

    fn data_len(&self) -> usize {
        options_len(self)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        emit_options(self, w)
    }

    fn into_static(self) -> Self::Static {
        owned_options(self)
    }
}
