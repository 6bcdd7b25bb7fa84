//! OPTION_CLIENT_FQDN (RFC 4704) and its codec.

use super::value::{at_least, OptionValue};
use super::Scope;
use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EmitError};
use crate::name::DomainName;

/// OPTION_CLIENT_FQDN (RFC 4704 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFqdn<'a> {
    /// Flags octet: S = 0x01, O = 0x02, N = 0x04 (RFC 4704 §4.1).
    pub flags: u8,
    /// The name, fully qualified or partial, possibly empty.
    pub name: DomainName<'a>,
}

impl ClientFqdn<'_> {
    /// S: the server should (client) / will (server) do the AAAA update.
    pub const FLAG_S: u8 = 0x01;
    /// O: the server overrode the client's S bit.
    pub const FLAG_O: u8 = 0x02;
    /// N: no DNS updates.
    pub const FLAG_N: u8 = 0x04;
}

impl<'a> OptionValue<'a> for ClientFqdn<'a> {
    type Static = ClientFqdn<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 1, "at least 1 (flags)")?;
        let flags = r.u8()?;
        let at = r.offset();
        Ok(Some(ClientFqdn {
            flags,
            name: DomainName::parse_whole(r.rest(), at)?,
        }))
    }

    fn data_len(&self) -> usize {
        self.name.as_bytes().len().saturating_add(1)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u8(self.flags)?;
        w.bytes(self.name.as_bytes())
    }

    fn into_static(self) -> Self::Static {
        ClientFqdn {
            flags: self.flags,
            name: self.name.into_owned(),
        }
    }
}
