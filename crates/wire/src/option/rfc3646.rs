//! The DNS configuration options of RFC 3646 and their codecs: OPTION_DNS_SERVERS
//! (§3) and OPTION_DOMAIN_LIST (§4).

use super::value::{bad_length, OptionValue};
use super::Scope;
use crate::codec::{sum, Reader, Writer};
use crate::error::{DecodeError, EmitError};
use crate::name::DomainName;
use std::net::Ipv6Addr;

/// The addresses of OPTION_DNS_SERVERS (RFC 3646 §3).
impl<'a> OptionValue<'a> for Vec<Ipv6Addr> {
    type Static = Vec<Ipv6Addr>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        if r.remaining() % 16 != 0 {
            return Err(bad_length(r, "a multiple of 16"));
        }
        let mut servers = Vec::with_capacity(r.remaining() / 16);
        while !r.is_empty() {
            servers.push(r.ipv6()?);
        }
        Ok(Some(servers))
    }

    fn data_len(&self) -> usize {
        self.len().saturating_mul(16)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        self.iter().try_for_each(|a| w.ipv6(a))
    }

    fn into_static(self) -> Self::Static {
        self
    }
}

/// The names of OPTION_DOMAIN_LIST (RFC 3646 §4): fully qualified,
/// uncompressed.
impl<'a> OptionValue<'a> for Vec<DomainName<'a>> {
    type Static = Vec<DomainName<'static>>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        let at = r.offset();
        Ok(Some(DomainName::parse_list(r.rest(), at)?))
    }

    fn data_len(&self) -> usize {
        sum(self.iter().map(|n| n.as_bytes().len()))
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        for n in self {
            if !n.is_fully_qualified() {
                return Err(EmitError::InvalidValue {
                    what: "partial name in OPTION_DOMAIN_LIST",
                });
            }
            w.bytes(n.as_bytes())?;
        }
        Ok(())
    }

    fn into_static(self) -> Self::Static {
        self.into_iter().map(DomainName::into_owned).collect()
    }
}
