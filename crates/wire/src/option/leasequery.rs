//! The leasequery options failover reuses (RFC 5007 §4.1.2, RFC 7653,
//! RFC 6607) that carry structured data: OPTION_LQ_RELAY_DATA and
//! OPTION_VSS.
//!
//! OPTION_CLIENT_DATA is a container (an option list, see
//! [`super::value`]), OPTION_CLT_TIME a `u32` and OPTION_LQ_BASE_TIME an
//! [`AbsTime`](crate::AbsTime), so they need no codec of their own.

use super::value::{at_least, owned, OptionValue};
use super::{Bytes, Scope};
use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EmitError};
use std::borrow::Cow;
use std::net::Ipv6Addr;

/// OPTION_LQ_RELAY_DATA (RFC 5007 §4.1.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LqRelayData<'a> {
    /// Address of the relay closest to the client.
    pub peer_address: Ipv6Addr,
    /// The relay chain as received, innermost client message removed.
    pub relay_message: Bytes<'a>,
}

impl<'a> OptionValue<'a> for LqRelayData<'a> {
    type Static = LqRelayData<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 16, "at least 16 (peer-address)")?;
        Ok(Some(LqRelayData {
            peer_address: r.ipv6()?,
            relay_message: Cow::Borrowed(r.rest()),
        }))
    }

    fn data_len(&self) -> usize {
        self.relay_message.len().saturating_add(16)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.ipv6(&self.peer_address)?;
        w.bytes(&self.relay_message)
    }

    fn into_static(self) -> Self::Static {
        LqRelayData {
            peer_address: self.peer_address,
            relay_message: owned(self.relay_message),
        }
    }
}

/// OPTION_VSS (RFC 6607 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vss<'a> {
    /// VSS type (255 = global default VPN).
    pub vss_type: u8,
    /// VSS information.
    pub info: Bytes<'a>,
}

impl<'a> OptionValue<'a> for Vss<'a> {
    type Static = Vss<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 1, "at least 1 (VSS type)")?;
        Ok(Some(Vss {
            vss_type: r.u8()?,
            info: Cow::Borrowed(r.rest()),
        }))
    }

    fn data_len(&self) -> usize {
        self.info.len().saturating_add(1)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u8(self.vss_type)?;
        w.bytes(&self.info)
    }

    fn into_static(self) -> Self::Static {
        Vss {
            vss_type: self.vss_type,
            info: owned(self.info),
        }
    }
}
