//! The structured options of RFC 8415 §21 and their codecs: the identity
//! associations (IA_NA, IA_TA, IA_PD) and their leases (IAADDR, IAPREFIX),
//! ORO, Relay Message, Authentication, Status Code, User Class, Vendor
//! Class and Vendor-specific Information.
//!
//! The §21 options whose data is a plain number, address, DUID or opaque
//! bytes (preference, elapsed time, unicast, interface-id, reconfigure
//! message, the timers) use the shared codecs of [`super::value`].

use super::value::{at_least, bad_length, owned, OptionValue};
use super::{emit_options, options_len, owned_options, parse_options, Bytes, DhcpOption, Scope};
use crate::codec::{sum, Reader, Writer};
use crate::error::{DecodeError, DecodeErrorKind, EmitError};
use crate::message::Message;
use crate::types::StatusCode;
use std::borrow::Cow;
use std::net::Ipv6Addr;

// ---- Identity associations (§21.4, §21.5, §21.21) ----

/// OPTION_IA_NA (RFC 8415 §21.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaNa<'a> {
    /// Identity association id, chosen by the client.
    pub iaid: u32,
    /// T1, seconds.
    pub t1: u32,
    /// T2, seconds.
    pub t2: u32,
    /// IA_NA-options (IAADDR, STATUS_CODE, ...).
    pub options: Vec<DhcpOption<'a>>,
}

/// OPTION_IA_PD (RFC 8415 §21.21): the same layout as an IA_NA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPd<'a> {
    /// Identity association id (its own IAID space).
    pub iaid: u32,
    /// T1, seconds.
    pub t1: u32,
    /// T2, seconds.
    pub t2: u32,
    /// IA_PD-options (IAPREFIX, STATUS_CODE, ...).
    pub options: Vec<DhcpOption<'a>>,
}

/// The codec of an IA with T1 and T2 (IA_NA and IA_PD share it).
macro_rules! ia_with_timers {
    ($Ia:ident) => {
        impl $Ia<'_> {
            /// Copies borrowed bytes.
            pub fn into_owned(self) -> $Ia<'static> {
                $Ia {
                    iaid: self.iaid,
                    t1: self.t1,
                    t2: self.t2,
                    options: owned_options(self.options),
                }
            }
        }

        impl<'a> OptionValue<'a> for $Ia<'a> {
            type Static = $Ia<'static>;

            fn decode(r: &mut Reader<'a>, scope: Scope) -> Result<Option<Self>, DecodeError> {
                at_least(r, 12, "at least 12 (IAID, T1, T2)")?;
                Ok(Some($Ia {
                    iaid: r.u32()?,
                    t1: r.u32()?,
                    t2: r.u32()?,
                    options: parse_options(r, scope)?,
                }))
            }

            fn data_len(&self) -> usize {
                options_len(&self.options).saturating_add(12)
            }

            fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
                w.u32(self.iaid)?;
                w.u32(self.t1)?;
                w.u32(self.t2)?;
                emit_options(&self.options, w)
            }

            fn into_static(self) -> Self::Static {
                self.into_owned()
            }
        }
    };
}

ia_with_timers!(IaNa);
ia_with_timers!(IaPd);

/// OPTION_IA_TA (RFC 8415 §21.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaTa<'a> {
    /// Identity association id.
    pub iaid: u32,
    /// IA_TA-options.
    pub options: Vec<DhcpOption<'a>>,
}

impl<'a> OptionValue<'a> for IaTa<'a> {
    type Static = IaTa<'static>;

    fn decode(r: &mut Reader<'a>, scope: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 4, "at least 4 (IAID)")?;
        Ok(Some(IaTa {
            iaid: r.u32()?,
            options: parse_options(r, scope)?,
        }))
    }

    fn data_len(&self) -> usize {
        options_len(&self.options).saturating_add(4)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u32(self.iaid)?;
        emit_options(&self.options, w)
    }

    fn into_static(self) -> Self::Static {
        IaTa {
            iaid: self.iaid,
            options: owned_options(self.options),
        }
    }
}

// ---- Leases (§21.6, §21.22) ----

/// OPTION_IAADDR (RFC 8415 §21.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaAddr<'a> {
    /// The address.
    pub address: Ipv6Addr,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// IAaddr-options (STATUS_CODE; failover per-lease options).
    pub options: Vec<DhcpOption<'a>>,
}

impl IaAddr<'_> {
    /// Copies borrowed bytes.
    pub fn into_owned(self) -> IaAddr<'static> {
        IaAddr {
            address: self.address,
            preferred_lifetime: self.preferred_lifetime,
            valid_lifetime: self.valid_lifetime,
            options: owned_options(self.options),
        }
    }
}

impl<'a> OptionValue<'a> for IaAddr<'a> {
    type Static = IaAddr<'static>;

    fn decode(r: &mut Reader<'a>, scope: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 24, "at least 24 (address, lifetimes)")?;
        Ok(Some(IaAddr {
            address: r.ipv6()?,
            preferred_lifetime: r.u32()?,
            valid_lifetime: r.u32()?,
            options: parse_options(r, scope)?,
        }))
    }

    fn data_len(&self) -> usize {
        options_len(&self.options).saturating_add(24)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.ipv6(&self.address)?;
        w.u32(self.preferred_lifetime)?;
        w.u32(self.valid_lifetime)?;
        emit_options(&self.options, w)
    }

    fn into_static(self) -> Self::Static {
        self.into_owned()
    }
}

/// OPTION_IAPREFIX (RFC 8415 §21.22). The prefix bits are kept exactly as
/// received, including any bits beyond `prefix_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPrefix<'a> {
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
    /// The prefix.
    pub prefix: Ipv6Addr,
    /// IAprefix-options.
    pub options: Vec<DhcpOption<'a>>,
}

impl IaPrefix<'_> {
    /// Copies borrowed bytes.
    pub fn into_owned(self) -> IaPrefix<'static> {
        IaPrefix {
            preferred_lifetime: self.preferred_lifetime,
            valid_lifetime: self.valid_lifetime,
            prefix_len: self.prefix_len,
            prefix: self.prefix,
            options: owned_options(self.options),
        }
    }
}

impl<'a> OptionValue<'a> for IaPrefix<'a> {
    type Static = IaPrefix<'static>;

    fn decode(r: &mut Reader<'a>, scope: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 25, "at least 25 (lifetimes, length, prefix)")?;
        let preferred_lifetime = r.u32()?;
        let valid_lifetime = r.u32()?;
        let at = r.offset();
        let prefix_len = r.u8()?;
        if prefix_len > 128 {
            return Err(DecodeError::new(
                at,
                DecodeErrorKind::InvalidValue {
                    what: "prefix-length",
                    value: u64::from(prefix_len),
                },
            ));
        }
        Ok(Some(IaPrefix {
            preferred_lifetime,
            valid_lifetime,
            prefix_len,
            prefix: r.ipv6()?,
            options: parse_options(r, scope)?,
        }))
    }

    fn data_len(&self) -> usize {
        options_len(&self.options).saturating_add(25)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        if self.prefix_len > 128 {
            return Err(EmitError::InvalidValue {
                what: "IAPREFIX prefix-length above 128",
            });
        }
        w.u32(self.preferred_lifetime)?;
        w.u32(self.valid_lifetime)?;
        w.u8(self.prefix_len)?;
        w.ipv6(&self.prefix)?;
        emit_options(&self.options, w)
    }

    fn into_static(self) -> Self::Static {
        self.into_owned()
    }
}

// ---- Option Request (§21.7) ----

/// The requested option codes of OPTION_ORO.
impl<'a> OptionValue<'a> for Vec<u16> {
    type Static = Vec<u16>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        if r.remaining() % 2 != 0 {
            return Err(bad_length(r, "a multiple of 2"));
        }
        let mut codes = Vec::with_capacity(r.remaining() / 2);
        while !r.is_empty() {
            codes.push(r.u16()?);
        }
        Ok(Some(codes))
    }

    fn data_len(&self) -> usize {
        self.len().saturating_mul(2)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        self.iter().try_for_each(|c| w.u16(*c))
    }

    fn into_static(self) -> Self::Static {
        self
    }
}

// ---- Relay Message (§21.10) ----

/// The relayed message of OPTION_RELAY_MSG: typed only at the top level of
/// a relay message (else `None`, kept as `Unknown`).
impl<'a> OptionValue<'a> for Box<Message<'a>> {
    type Static = Box<Message<'static>>;

    fn decode(r: &mut Reader<'a>, scope: Scope) -> Result<Option<Self>, DecodeError> {
        match scope.relay_depth {
            // The relayed message is enclosed by `depth` relay messages.
            Some(depth) => Ok(Some(Box::new(Message::parse_nested(r, depth)?))),
            None => Ok(None),
        }
    }

    fn data_len(&self) -> usize {
        self.buffer_len()
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        self.emit_nested(w)
    }

    fn into_static(self) -> Self::Static {
        Box::new((*self).into_owned())
    }
}

// ---- Authentication (§21.11) ----

/// OPTION_AUTH (RFC 8415 §21.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth<'a> {
    /// Protocol (3 = RKAP).
    pub protocol: u8,
    /// Algorithm (1 = HMAC-MD5).
    pub algorithm: u8,
    /// Replay detection method (0 = monotonic counter).
    pub rdm: u8,
    /// Replay detection value.
    pub replay_detection: u64,
    /// Authentication information.
    pub info: Bytes<'a>,
}

impl<'a> OptionValue<'a> for Auth<'a> {
    type Static = Auth<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 11, "at least 11")?;
        Ok(Some(Auth {
            protocol: r.u8()?,
            algorithm: r.u8()?,
            rdm: r.u8()?,
            replay_detection: r.u64()?,
            info: Cow::Borrowed(r.rest()),
        }))
    }

    fn data_len(&self) -> usize {
        self.info.len().saturating_add(11)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u8(self.protocol)?;
        w.u8(self.algorithm)?;
        w.u8(self.rdm)?;
        w.u64(self.replay_detection)?;
        w.bytes(&self.info)
    }

    fn into_static(self) -> Self::Static {
        Auth {
            protocol: self.protocol,
            algorithm: self.algorithm,
            rdm: self.rdm,
            replay_detection: self.replay_detection,
            info: owned(self.info),
        }
    }
}

// ---- Status Code (§21.13) ----

/// OPTION_STATUS_CODE (RFC 8415 §21.13). The message should be UTF-8 but is
/// kept as bytes, so a client's non-UTF-8 text is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status<'a> {
    /// The status code.
    pub code: StatusCode,
    /// The status message, as sent.
    pub message: Bytes<'a>,
}

impl<'a> Status<'a> {
    /// A status with a text message.
    pub fn new(code: StatusCode, message: &'a str) -> Self {
        Status {
            code,
            message: Cow::Borrowed(message.as_bytes()),
        }
    }

    /// The message as text, with invalid UTF-8 replaced.
    pub fn message_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.message)
    }
}

impl<'a> OptionValue<'a> for Status<'a> {
    type Static = Status<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 2, "at least 2")?;
        Ok(Some(Status {
            code: StatusCode::from(r.u16()?),
            message: Cow::Borrowed(r.rest()),
        }))
    }

    fn data_len(&self) -> usize {
        self.message.len().saturating_add(2)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u16(u16::from(self.code))?;
        w.bytes(&self.message)
    }

    fn into_static(self) -> Self::Static {
        Status {
            code: self.code,
            message: owned(self.message),
        }
    }
}

// ---- User Class and Vendor Class (§21.15, §21.16) ----

/// Decodes `len16 | data` items until the reader is empty.
fn parse_len16_items<'a>(r: &mut Reader<'a>) -> Result<Vec<Bytes<'a>>, DecodeError> {
    let mut items = Vec::new();
    while !r.is_empty() {
        let len = r.u16()?;
        items.push(Cow::Borrowed(r.take(usize::from(len))?));
    }
    Ok(items)
}

fn len16_items_len(items: &[Bytes<'_>]) -> usize {
    sum(items.iter().map(|i| i.len().saturating_add(2)))
}

fn emit_len16_items(items: &[Bytes<'_>], w: &mut Writer<'_>) -> Result<(), EmitError> {
    for item in items {
        w.len16(item.len(), "class data item longer than 65535 bytes")?;
        w.bytes(item)?;
    }
    Ok(())
}

fn owned_items(items: Vec<Bytes<'_>>) -> Vec<Bytes<'static>> {
    items.into_iter().map(owned).collect()
}

/// The user-class-data items of OPTION_USER_CLASS.
impl<'a> OptionValue<'a> for Vec<Bytes<'a>> {
    type Static = Vec<Bytes<'static>>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        Ok(Some(parse_len16_items(r)?))
    }

    fn data_len(&self) -> usize {
        len16_items_len(self)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        emit_len16_items(self, w)
    }

    fn into_static(self) -> Self::Static {
        owned_items(self)
    }
}

/// OPTION_VENDOR_CLASS (RFC 8415 §21.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorClass<'a> {
    /// IANA private enterprise number.
    pub enterprise_number: u32,
    /// The vendor-class-data items.
    pub data: Vec<Bytes<'a>>,
}

impl<'a> OptionValue<'a> for VendorClass<'a> {
    type Static = VendorClass<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 4, "at least 4 (enterprise number)")?;
        Ok(Some(VendorClass {
            enterprise_number: r.u32()?,
            data: parse_len16_items(r)?,
        }))
    }

    fn data_len(&self) -> usize {
        len16_items_len(&self.data).saturating_add(4)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u32(self.enterprise_number)?;
        emit_len16_items(&self.data, w)
    }

    fn into_static(self) -> Self::Static {
        VendorClass {
            enterprise_number: self.enterprise_number,
            data: owned_items(self.data),
        }
    }
}

// ---- Vendor-specific Information (§21.17) ----

/// OPTION_VENDOR_OPTS (RFC 8415 §21.17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorOpts<'a> {
    /// IANA private enterprise number.
    pub enterprise_number: u32,
    /// Vendor sub-options (codes private to the vendor).
    pub options: Vec<VendorSubOption<'a>>,
}

/// One sub-option of OPTION_VENDOR_OPTS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorSubOption<'a> {
    /// Vendor-defined code.
    pub code: u16,
    /// Data.
    pub data: Bytes<'a>,
}

impl<'a> OptionValue<'a> for VendorOpts<'a> {
    type Static = VendorOpts<'static>;

    fn decode(r: &mut Reader<'a>, _: Scope) -> Result<Option<Self>, DecodeError> {
        at_least(r, 4, "at least 4 (enterprise number)")?;
        let enterprise_number = r.u32()?;
        let mut options = Vec::new();
        while !r.is_empty() {
            let code = r.u16()?;
            let len = r.u16()?;
            options.push(VendorSubOption {
                code,
                data: Cow::Borrowed(r.take(usize::from(len))?),
            });
        }
        Ok(Some(VendorOpts {
            enterprise_number,
            options,
        }))
    }

    fn data_len(&self) -> usize {
        sum(self.options.iter().map(|s| s.data.len().saturating_add(4))).saturating_add(4)
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.u32(self.enterprise_number)?;
        for s in &self.options {
            w.u16(s.code)?;
            w.len16(s.data.len(), "vendor sub-option longer than 65535 bytes")?;
            w.bytes(&s.data)?;
        }
        Ok(())
    }

    fn into_static(self) -> Self::Static {
        VendorOpts {
            enterprise_number: self.enterprise_number,
            options: self
                .options
                .into_iter()
                .map(|s| VendorSubOption {
                    code: s.code,
                    data: owned(s.data),
                })
                .collect(),
        }
    }
}
