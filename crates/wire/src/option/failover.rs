//! The failover options of RFC 8156 §5.5 that have a value type of their
//! own, and its codecs: binding status, server state, protocol version,
//! reconfigure data and relationship name.
//!
//! The other §5.5 options are numbers, [`AbsTime`]s, domain names or (for
//! OPTION_F_DNS_REMOVAL_INFO) a container, with the shared codecs of
//! [`super::value`].

use super::value::{at_least, exact, owned, OptionValue};
use super::{Bytes, Scope};
use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, DecodeErrorKind, EmitError};
use crate::types::{AbsTime, BindingStatus, ServerState};
use std::borrow::Cow;

/// OPTION_F_BINDING_STATUS (RFC 8156 §5.5.1).
impl<'a> OptionValue<'a> for BindingStatus {
    type Static = BindingStatus;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        exact(r, 1, "1")?;
        Ok(Some(BindingStatus::from(r.u8()?)))
    }

    fn data_len(&self) -> usize {
        1
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u8(u8::from(*self))
    }

    fn into_static(self) -> Self::Static {
        self
    }
}

/// The fields of OPTION_F_PROTOCOL_VERSION (RFC 8156 §5.5.11), behind the
/// struct variant [`DhcpOption::ProtocolVersion`](super::DhcpOption::ProtocolVersion).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Version {
    pub(crate) major: u16,
    pub(crate) minor: u16,
}

impl<'a> OptionValue<'a> for Version {
    type Static = Version;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        exact(r, 4, "4")?;
        Ok(Some(Version {
            major: r.u16()?,
            minor: r.u16()?,
        }))
    }

    fn data_len(&self) -> usize {
        4
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u16(self.major)?;
        w.u16(self.minor)
    }

    fn into_static(self) -> Self::Static {
        self
    }
}

/// OPTION_F_RECONFIGURE_DATA (RFC 8156 §5.5.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigureData<'a> {
    /// When the key was created.
    pub reconfigure_time: AbsTime,
    /// The RKAP reconfigure key.
    pub key: Bytes<'a>,
}

impl<'a> OptionValue<'a> for ReconfigureData<'a> {
    type Static = ReconfigureData<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 4, "at least 4 (reconfigure-time)")?;
        Ok(Some(ReconfigureData {
            reconfigure_time: AbsTime(r.u32()?),
            key: Cow::Borrowed(r.rest()),
        }))
    }

    fn data_len(&self) -> usize {
        self.key.len().saturating_add(4)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u32(self.reconfigure_time.0)?;
        w.bytes(&self.key)
    }

    fn into_static(self) -> Self::Static {
        ReconfigureData {
            reconfigure_time: self.reconfigure_time,
            key: owned(self.key),
        }
    }
}

/// OPTION_F_RELATIONSHIP_NAME (RFC 8156 §5.5.14): UTF-8 text filling the
/// option.
impl<'a> OptionValue<'a> for Cow<'a, str> {
    type Static = Cow<'static, str>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        let at = r.offset();
        let text =
            std::str::from_utf8(r.rest()).map_err(|_| DecodeError::new(at, DecodeErrorKind::InvalidUtf8))?;
        Ok(Some(Cow::Borrowed(text)))
    }

    fn data_len(&self) -> usize {
        self.len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.bytes(self.as_bytes())
    }

    fn into_static(self) -> Self::Static {
        Cow::Owned(self.into_owned())
    }
}

/// OPTION_F_SERVER_STATE (RFC 8156 §5.5.16).
impl<'a> OptionValue<'a> for ServerState {
    type Static = ServerState;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        exact(r, 1, "1")?;
        Ok(Some(ServerState::from(r.u8()?)))
    }

    fn data_len(&self) -> usize {
        1
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u8(u8::from(*self))
    }

    fn into_static(self) -> Self::Static {
        self
    }
}
