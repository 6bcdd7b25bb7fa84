//! DHCPv6 options (RFC 8415 §21), the failover options (RFC 8156 §5.5) and
//! the leasequery options failover reuses (RFC 5007, RFC 7653, RFC 6607).
//!
//! Options are decoded into [`DhcpOption`], in order, repeated options kept
//! as separate entries. Any code this crate does not know is kept as
//! [`DhcpOption::Unknown`] and emitted unchanged, so decode → emit gives the
//! received bytes back.
//!
//! ## Scopes and nesting
//!
//! Container options are decoded into typed values only where they can
//! legitimately nest, which also bounds recursion: each container has a rank
//! (OPTION_CLIENT_DATA 4 > IA_NA / IA_TA / IA_PD 3 > IAADDR / IAPREFIX 2 >
//! OPTION_F_DNS_REMOVAL_INFO 1), message level is rank 5, and a container is
//! typed only inside a scope of higher rank; elsewhere it is kept as
//! `Unknown`. OPTION_RELAY_MSG is typed only at the top level of a relay
//! message, and relay nesting is limited by [`crate::MAX_RELAY_DEPTH`].
//!
//! ## Layout
//!
//! The option table below (one `option_table!` invocation) is the single
//! list of typed options: it generates [`DhcpOption`] and its `code`,
//! decode, length, emit and `into_owned` dispatch, one `match` arm per
//! entry. Each entry names the variant, its value type and its code; the
//! value type's codec (a crate-private `OptionValue` impl: decode, length,
//! emit, detach) lives with its family:
//!
//! | file | contents |
//! |---|---|
//! | `value.rs` | the `OptionValue` trait, length checks, and the shared value types: no data, `u8`/`u16`/`u32`, [`AbsTime`], an address, opaque bytes, [`Duid`], [`DomainName`], option lists (containers) |
//! | `rfc8415.rs` | RFC 8415 §21: IA_NA/IA_TA/IA_PD, IAADDR/IAPREFIX, ORO, relay message, auth, status code, user/vendor class, vendor options |
//! | `rfc3646.rs` | DNS servers, domain list |
//! | `fqdn.rs` | client FQDN (RFC 4704) |
//! | `leasequery.rs` | LQ relay data, VSS (RFC 5007, RFC 6607) |
//! | `failover.rs` | RFC 8156 §5.5: binding status, server state, protocol version, reconfigure data, relationship name |
//! | [`code`] | the option code constants |
//!
//! ## Adding an option
//!
//! 1. Name its code in [`code`] (it joins [`code::KNOWN`] by itself).
//! 2. Add one entry, in code order, to the `option_table!` invocation
//!    below: doc comment, `Variant(ValueType) = code::NAME;` (append
//!    `, container rank::X` for a container whose contents are decoded at
//!    rank X). That is the only place that lists options: the enum variant
//!    and the code/decode/length/emit/`into_owned` dispatch follow from it.
//! 3. If the value type is new, implement `OptionValue` for it in the file
//!    of its family (a new `pub struct` also gets a `pub use` here). If it
//!    is one the table already uses (`u32`, `AbsTime`, `Duid`, ...), there
//!    is nothing else to write.
//!
//! The round-trip property tests generate options from `crate::strategy`
//! (feature `proptest`); add a generator there too (`leaf_option`, or
//! `option` for a container). A unit test fails while some typed code is
//! never generated.

pub mod code;
mod failover;
mod fqdn;
mod leasequery;
mod rfc3646;
mod rfc8415;
mod value;

pub use failover::ReconfigureData;
pub use fqdn::ClientFqdn;
pub use leasequery::{LqRelayData, Vss};
pub use rfc8415::{
    Auth, IaAddr, IaNa, IaPd, IaPrefix, IaTa, Status, VendorClass, VendorOpts, VendorSubOption,
};

use crate::codec::{sum, Reader, Writer};
use crate::duid::Duid;
use crate::error::{DecodeError, DecodeErrorKind, EmitError};
use crate::message::Message;
use crate::name::DomainName;
use crate::types::{AbsTime, BindingStatus, ServerState};
use failover::Version;
use std::borrow::Cow;
use std::net::Ipv6Addr;
use value::{owned, OptionValue};

/// Bytes borrowed from the received buffer, or owned.
pub type Bytes<'a> = Cow<'a, [u8]>;

/// Generates [`DhcpOption`] and its per-variant dispatch from the option
/// table. An entry is one of
///
/// * `Variant(Type) = code::NAME;`: data of value type `Type`;
/// * `Variant(Type) = code::NAME, container rank::X;`: a container, typed
///   only in a scope of rank above X, its contents decoded at rank X;
/// * `Variant = code::NAME;`: a unit variant, no data (value type `()`);
/// * `Variant { field: Type, ... } as Value = code::NAME;`: a struct
///   variant whose fields are those of the (`Copy`) value type `Value`.
///
/// The `@`-rules map the three variant shapes onto their value type.
macro_rules! option_table {
    // The value type of an entry.
    (@type ($T:ty)) => { $T };
    (@type as $SV:ident) => { $SV };
    (@type) => { () };

    // The scope an entry's value is decoded in.
    (@scope $scope:ident) => { $scope };
    (@scope $scope:ident, $rank:path) => { Scope::inner($rank) };

    // A pattern matching the variant and binding its value (tuple) or
    // fields (struct).
    (@pat $v:ident => $V:ident ($T:ty)) => { DhcpOption::$V($v) };
    (@pat $v:ident => $V:ident { $($f:ident),* } as $SV:ident) => { DhcpOption::$V { $($f),* } };
    (@pat $v:ident => $V:ident) => { DhcpOption::$V };

    // A reference to the value, from the bindings of `@pat` matched by reference.
    (@ref $v:ident => $V:ident ($T:ty)) => { $v };
    (@ref $v:ident => $V:ident { $($f:ident),* } as $SV:ident) => { &$SV { $($f: *$f),* } };
    (@ref $v:ident => $V:ident) => { &() };

    // The value, from the bindings of `@pat` matched by value.
    (@value $v:ident => $V:ident ($T:ty)) => { $v };
    (@value $v:ident => $V:ident { $($f:ident),* } as $SV:ident) => { $SV { $($f),* } };
    (@value $v:ident => $V:ident) => { () };

    // The variant holding the value `$v`.
    (@build $v:ident => $V:ident ($T:ty)) => { DhcpOption::$V($v) };
    (@build $v:ident => $V:ident { $($f:ident),* } as $SV:ident) => {{
        let $SV { $($f),* } = $v;
        DhcpOption::$V { $($f),* }
    }};
    (@build $v:ident => $V:ident) => {{
        let () = $v;
        DhcpOption::$V
    }};

    ($(
        $(#[$doc:meta])*
        $V:ident
        $(($T:ty))?
        $({ $($(#[$fdoc:meta])* $f:ident: $ft:ty),* $(,)? } as $SV:ident)?
        = code::$code:ident
        $(, container $rank:path)?;
    )*) => {
        /// One option, typed where this crate knows the code.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum DhcpOption<'a> {
            $(
                $(#[$doc])*
                $V $(($T))? $({ $($(#[$fdoc])* $f: $ft),* })?,
            )*
            /// Any other option (or a container outside its scope), kept verbatim.
            Unknown {
                /// The option code.
                code: u16,
                /// The option data.
                data: Bytes<'a>,
            },
        }

        /// Every code the table types (somewhere), in table order.
        pub(crate) const TYPED_CODES: &[u16] = &[$(code::$code),*];

        impl<'a> DhcpOption<'a> {
            /// The option code.
            pub fn code(&self) -> u16 {
                match self {
                    $(DhcpOption::$V { .. } => code::$code,)*
                    DhcpOption::Unknown { code, .. } => *code,
                }
            }

            /// Decodes one option's data (`r` holds exactly option-len bytes).
            pub(crate) fn parse(code: u16, r: &mut Reader<'a>, scope: Scope) -> Result<Self, DecodeError> {
                let option = match code {
                    $(
                        code::$code $(if scope.rank > $rank)? => {
                            let decoded = <option_table!(@type $(($T))? $(as $SV)?) as OptionValue<'a>>::decode(
                                r,
                                option_table!(@scope scope $(, $rank)?),
                            )?;
                            match decoded {
                                Some(value) => {
                                    option_table!(@build value => $V $(($T))? $({ $($f),* } as $SV)?)
                                }
                                None => DhcpOption::unknown(code, r),
                            }
                        }
                    )*
                    _ => DhcpOption::unknown(code, r),
                };
                r.finish("option data")?;
                Ok(option)
            }

            /// Length of the option data (without the 4-byte header).
            fn data_len(&self) -> usize {
                match self {
                    $(
                        option_table!(@pat value => $V $(($T))? $({ $($f),* } as $SV)?) => {
                            OptionValue::data_len(
                                option_table!(@ref value => $V $(($T))? $({ $($f),* } as $SV)?),
                            )
                        }
                    )*
                    DhcpOption::Unknown { data, .. } => data.len(),
                }
            }

            /// Writes header and data.
            pub(crate) fn emit_into(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
                w.option_header(self.code(), self.data_len())?;
                match self {
                    $(
                        option_table!(@pat value => $V $(($T))? $({ $($f),* } as $SV)?) => {
                            OptionValue::emit(
                                option_table!(@ref value => $V $(($T))? $({ $($f),* } as $SV)?),
                                w,
                            )
                        }
                    )*
                    DhcpOption::Unknown { data, .. } => w.bytes(data),
                }
            }

            /// Copies every borrowed byte so the option outlives the received buffer.
            pub fn into_owned(self) -> DhcpOption<'static> {
                match self {
                    $(
                        option_table!(@pat value => $V $(($T))? $({ $($f),* } as $SV)?) => {
                            let value = OptionValue::into_static(
                                option_table!(@value value => $V $(($T))? $({ $($f),* } as $SV)?),
                            );
                            option_table!(@build value => $V $(($T))? $({ $($f),* } as $SV)?)
                        }
                    )*
                    DhcpOption::Unknown { code, data } => DhcpOption::Unknown {
                        code,
                        data: owned(data),
                    },
                }
            }
        }
    };
}

// The option table: every typed option, in code order. See "Adding an
// option" in the module documentation.
option_table! {
    /// OPTION_CLIENTID (1, RFC 8415 §21.2).
    ClientId(Duid<'a>) = code::CLIENTID;
    /// OPTION_SERVERID (2, RFC 8415 §21.3).
    ServerId(Duid<'a>) = code::SERVERID;
    /// OPTION_IA_NA (3, RFC 8415 §21.4).
    IaNa(IaNa<'a>) = code::IA_NA, container rank::IA;
    /// OPTION_IA_TA (4, RFC 8415 §21.5).
    IaTa(IaTa<'a>) = code::IA_TA, container rank::IA;
    /// OPTION_IAADDR (5, RFC 8415 §21.6).
    IaAddr(IaAddr<'a>) = code::IAADDR, container rank::LEASE;
    /// OPTION_ORO (6, RFC 8415 §21.7): requested option codes.
    Oro(Vec<u16>) = code::ORO;
    /// OPTION_PREFERENCE (7, RFC 8415 §21.8).
    Preference(u8) = code::PREFERENCE;
    /// OPTION_ELAPSED_TIME (8, RFC 8415 §21.9), hundredths of a second.
    ElapsedTime(u16) = code::ELAPSED_TIME;
    /// OPTION_RELAY_MSG (9, RFC 8415 §21.10): the relayed message.
    RelayMsg(Box<Message<'a>>) = code::RELAY_MSG;
    /// OPTION_AUTH (11, RFC 8415 §21.11).
    Auth(Auth<'a>) = code::AUTH;
    /// OPTION_UNICAST (12, RFC 8415 §21.12).
    Unicast(Ipv6Addr) = code::UNICAST;
    /// OPTION_STATUS_CODE (13, RFC 8415 §21.13).
    StatusCode(Status<'a>) = code::STATUS_CODE;
    /// OPTION_RAPID_COMMIT (14, RFC 8415 §21.14).
    RapidCommit = code::RAPID_COMMIT;
    /// OPTION_USER_CLASS (15, RFC 8415 §21.15): the user-class-data items.
    UserClass(Vec<Bytes<'a>>) = code::USER_CLASS;
    /// OPTION_VENDOR_CLASS (16, RFC 8415 §21.16).
    VendorClass(VendorClass<'a>) = code::VENDOR_CLASS;
    /// OPTION_VENDOR_OPTS (17, RFC 8415 §21.17).
    VendorOpts(VendorOpts<'a>) = code::VENDOR_OPTS;
    /// OPTION_INTERFACE_ID (18, RFC 8415 §21.18).
    InterfaceId(Bytes<'a>) = code::INTERFACE_ID;
    /// OPTION_RECONF_MSG (19, RFC 8415 §21.19): the message type to send.
    ReconfMsg(u8) = code::RECONF_MSG;
    /// OPTION_RECONF_ACCEPT (20, RFC 8415 §21.20).
    ReconfAccept = code::RECONF_ACCEPT;
    /// OPTION_DNS_SERVERS (23, RFC 3646 §3).
    DnsServers(Vec<Ipv6Addr>) = code::DNS_SERVERS;
    /// OPTION_DOMAIN_LIST (24, RFC 3646 §4).
    DomainList(Vec<DomainName<'a>>) = code::DOMAIN_LIST;
    /// OPTION_IA_PD (25, RFC 8415 §21.21).
    IaPd(IaPd<'a>) = code::IA_PD, container rank::IA;
    /// OPTION_IAPREFIX (26, RFC 8415 §21.22).
    IaPrefix(IaPrefix<'a>) = code::IAPREFIX, container rank::LEASE;
    /// OPTION_INFORMATION_REFRESH_TIME (32, RFC 8415 §21.23), seconds.
    InformationRefreshTime(u32) = code::INFORMATION_REFRESH_TIME;
    /// OPTION_CLIENT_FQDN (39, RFC 4704 §4).
    ClientFqdn(ClientFqdn<'a>) = code::CLIENT_FQDN;
    /// OPTION_CLIENT_DATA (45, RFC 5007 §4.1.2.2): a container of client options.
    ClientData(Vec<DhcpOption<'a>>) = code::CLIENT_DATA, container rank::CLIENT_DATA;
    /// OPTION_CLT_TIME (46, RFC 5007 §4.1.2.3): seconds since last client contact.
    CltTime(u32) = code::CLT_TIME;
    /// OPTION_LQ_RELAY_DATA (47, RFC 5007 §4.1.2.4).
    LqRelayData(LqRelayData<'a>) = code::LQ_RELAY_DATA;
    /// OPTION_VSS (68, RFC 6607 §3.4).
    Vss(Vss<'a>) = code::VSS;
    /// OPTION_SOL_MAX_RT (82, RFC 8415 §21.24), seconds.
    SolMaxRt(u32) = code::SOL_MAX_RT;
    /// OPTION_INF_MAX_RT (83, RFC 8415 §21.25), seconds.
    InfMaxRt(u32) = code::INF_MAX_RT;
    /// OPTION_LQ_BASE_TIME (100, RFC 7653 §6.3.1).
    LqBaseTime(AbsTime) = code::LQ_BASE_TIME;
    /// OPTION_F_BINDING_STATUS (114, RFC 8156 §5.5.1).
    BindingStatus(BindingStatus) = code::F_BINDING_STATUS;
    /// OPTION_F_CONNECT_FLAGS (115, RFC 8156 §5.5.2); see [`crate::failover::CONNECT_FLAG_FIXED_PD_LENGTH`].
    ConnectFlags(u16) = code::F_CONNECT_FLAGS;
    /// OPTION_F_DNS_REMOVAL_INFO (116, RFC 8156 §5.5.3): container.
    DnsRemovalInfo(Vec<DhcpOption<'a>>) = code::F_DNS_REMOVAL_INFO, container rank::DNS_REMOVAL;
    /// OPTION_F_DNS_HOST_NAME (117, RFC 8156 §5.5.3.1).
    DnsHostName(DomainName<'a>) = code::F_DNS_HOST_NAME;
    /// OPTION_F_DNS_ZONE_NAME (118, RFC 8156 §5.5.3.2).
    DnsZoneName(DomainName<'a>) = code::F_DNS_ZONE_NAME;
    /// OPTION_F_DNS_FLAGS (119, RFC 8156 §5.5.3.3).
    DnsFlags(u16) = code::F_DNS_FLAGS;
    /// OPTION_F_EXPIRATION_TIME (120, RFC 8156 §5.5.4).
    ExpirationTime(AbsTime) = code::F_EXPIRATION_TIME;
    /// OPTION_F_MAX_UNACKED_BNDUPD (121, RFC 8156 §5.5.5).
    MaxUnackedBndupd(u32) = code::F_MAX_UNACKED_BNDUPD;
    /// OPTION_F_MCLT (122, RFC 8156 §5.5.6), seconds.
    Mclt(u32) = code::F_MCLT;
    /// OPTION_F_PARTNER_LIFETIME (123, RFC 8156 §5.5.7).
    PartnerLifetime(AbsTime) = code::F_PARTNER_LIFETIME;
    /// OPTION_F_PARTNER_LIFETIME_SENT (124, RFC 8156 §5.5.8).
    PartnerLifetimeSent(AbsTime) = code::F_PARTNER_LIFETIME_SENT;
    /// OPTION_F_PARTNER_DOWN_TIME (125, RFC 8156 §5.5.9).
    PartnerDownTime(AbsTime) = code::F_PARTNER_DOWN_TIME;
    /// OPTION_F_PARTNER_RAW_CLT_TIME (126, RFC 8156 §5.5.10).
    PartnerRawCltTime(AbsTime) = code::F_PARTNER_RAW_CLT_TIME;
    /// OPTION_F_PROTOCOL_VERSION (127, RFC 8156 §5.5.11).
    ProtocolVersion {
        /// Major version (1 for RFC 8156).
        major: u16,
        /// Minor version (0 for RFC 8156).
        minor: u16,
    } as Version = code::F_PROTOCOL_VERSION;
    /// OPTION_F_KEEPALIVE_TIME (128, RFC 8156 §5.5.12), seconds.
    KeepaliveTime(u32) = code::F_KEEPALIVE_TIME;
    /// OPTION_F_RECONFIGURE_DATA (129, RFC 8156 §5.5.13).
    ReconfigureData(ReconfigureData<'a>) = code::F_RECONFIGURE_DATA;
    /// OPTION_F_RELATIONSHIP_NAME (130, RFC 8156 §5.5.14), UTF-8.
    RelationshipName(Cow<'a, str>) = code::F_RELATIONSHIP_NAME;
    /// OPTION_F_SERVER_FLAGS (131, RFC 8156 §5.5.15); see [`crate::failover::SERVER_FLAG_STARTUP`].
    ServerFlags(u8) = code::F_SERVER_FLAGS;
    /// OPTION_F_SERVER_STATE (132, RFC 8156 §5.5.16).
    ServerState(ServerState) = code::F_SERVER_STATE;
    /// OPTION_F_START_TIME_OF_STATE (133, RFC 8156 §5.5.17).
    StartTimeOfState(AbsTime) = code::F_START_TIME_OF_STATE;
    /// OPTION_F_STATE_EXPIRATION_TIME (134, RFC 8156 §5.5.18).
    StateExpirationTime(AbsTime) = code::F_STATE_EXPIRATION_TIME;
}

/// Nesting ranks (see the module documentation).
pub(crate) mod rank {
    pub(crate) const MESSAGE: u8 = 5;
    pub(crate) const CLIENT_DATA: u8 = 4;
    pub(crate) const IA: u8 = 3;
    pub(crate) const LEASE: u8 = 2;
    pub(crate) const DNS_REMOVAL: u8 = 1;
}

/// Where an option list is being decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    rank: u8,
    /// Set at the top level of a relay message: the nesting depth of that
    /// relay message (1 = outermost).
    relay_depth: Option<usize>,
}

impl Scope {
    pub(crate) const MESSAGE: Scope = Scope {
        rank: rank::MESSAGE,
        relay_depth: None,
    };

    pub(crate) fn relay(depth: usize) -> Scope {
        Scope {
            rank: rank::MESSAGE,
            relay_depth: Some(depth),
        }
    }

    fn inner(rank: u8) -> Scope {
        Scope {
            rank,
            relay_depth: None,
        }
    }
}

/// Decodes an option list that fills `r`.
pub(crate) fn parse_options<'a>(
    r: &mut Reader<'a>,
    scope: Scope,
) -> Result<Vec<DhcpOption<'a>>, DecodeError> {
    let mut options = Vec::new();
    while !r.is_empty() {
        let code = r.u16()?;
        let len = r.u16().map_err(|e| e.in_option(code))?;
        let mut data = r.sub(usize::from(len)).map_err(|e| e.in_option(code))?;
        let option = DhcpOption::parse(code, &mut data, scope).map_err(|e| e.in_option(code))?;
        options.push(option);
    }
    Ok(options)
}

/// Encoded length of an option list.
pub(crate) fn options_len(options: &[DhcpOption<'_>]) -> usize {
    sum(options.iter().map(DhcpOption::buffer_len))
}

pub(crate) fn emit_options(options: &[DhcpOption<'_>], w: &mut Writer<'_>) -> Result<(), EmitError> {
    options.iter().try_for_each(|o| o.emit_into(w))
}

pub(crate) fn owned_options(options: Vec<DhcpOption<'_>>) -> Vec<DhcpOption<'static>> {
    options.into_iter().map(DhcpOption::into_owned).collect()
}

impl<'a> DhcpOption<'a> {
    /// An `Unknown` option holding the rest of `r`.
    fn unknown(code: u16, r: &mut Reader<'a>) -> Self {
        DhcpOption::Unknown {
            code,
            data: Cow::Borrowed(r.rest()),
        }
    }

    /// Encoded length including the 4-byte option header.
    pub fn buffer_len(&self) -> usize {
        self.data_len().saturating_add(4)
    }

    /// Encodes this option alone into a new buffer.
    pub fn to_vec(&self) -> Result<Vec<u8>, EmitError> {
        let mut buf = vec![0u8; self.buffer_len()];
        let mut w = Writer::new(&mut buf);
        self.emit_into(&mut w)?;
        Ok(buf)
    }

    /// Decodes one option (header and data) at message scope; the buffer must
    /// hold exactly that option.
    pub fn parse_one(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut options = parse_options(&mut r, Scope::MESSAGE)?;
        match (options.pop(), options.is_empty()) {
            (Some(option), true) => Ok(option),
            (None, _) => Err(r.error(DecodeErrorKind::Truncated {
                needed: 4,
                available: 0,
            })),
            (Some(_), false) => Err(DecodeError::new(
                0,
                DecodeErrorKind::TrailingBytes {
                    count: bytes.len(),
                    what: "a single option",
                },
            )),
        }
    }
}

/// The three kinds of identity association (RFC 8415 §12: each has its own
/// IAID space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IaKind {
    /// OPTION_IA_NA: non-temporary addresses.
    Na,
    /// OPTION_IA_TA: temporary addresses.
    Ta,
    /// OPTION_IA_PD: delegated prefixes.
    Pd,
}

/// One IA of an option list, whatever its kind (see [`OptionsExt::ias`]).
#[derive(Debug, Clone, Copy)]
pub struct IaView<'o, 'a> {
    /// Which kind.
    pub kind: IaKind,
    /// Its IAID.
    pub iaid: u32,
    /// T1 (0 for an IA_TA).
    pub t1: u32,
    /// T2 (0 for an IA_TA).
    pub t2: u32,
    /// Its options (leases, status).
    pub options: &'o [DhcpOption<'a>],
}

/// One address or prefix of an IA (see [`IaView::leases`]).
#[derive(Debug, Clone, Copy)]
pub struct IaLease<'o, 'a> {
    /// The address, or the prefix's first address.
    pub address: Ipv6Addr,
    /// `None` for an address (IAADDR), the prefix length for an IAPREFIX.
    pub prefix_len: Option<u8>,
    /// Preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// Valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// Its options.
    pub options: &'o [DhcpOption<'a>],
}

impl<'o, 'a> IaLease<'o, 'a> {
    /// The IAADDR or IAPREFIX option `o`, as a lease.
    pub fn of(o: &'o DhcpOption<'a>) -> Option<IaLease<'o, 'a>> {
        match o {
            DhcpOption::IaAddr(a) => Some(IaLease {
                address: a.address,
                prefix_len: None,
                preferred_lifetime: a.preferred_lifetime,
                valid_lifetime: a.valid_lifetime,
                options: &a.options,
            }),
            DhcpOption::IaPrefix(p) => Some(IaLease {
                address: p.prefix,
                prefix_len: Some(p.prefix_len),
                preferred_lifetime: p.preferred_lifetime,
                valid_lifetime: p.valid_lifetime,
                options: &p.options,
            }),
            _ => None,
        }
    }
}

impl<'o, 'a> IaView<'o, 'a> {
    /// The IA option `o`, as a view.
    pub fn of(o: &'o DhcpOption<'a>) -> Option<IaView<'o, 'a>> {
        match o {
            DhcpOption::IaNa(ia) => Some(IaView {
                kind: IaKind::Na,
                iaid: ia.iaid,
                t1: ia.t1,
                t2: ia.t2,
                options: &ia.options,
            }),
            DhcpOption::IaTa(ia) => Some(IaView {
                kind: IaKind::Ta,
                iaid: ia.iaid,
                t1: 0,
                t2: 0,
                options: &ia.options,
            }),
            DhcpOption::IaPd(ia) => Some(IaView {
                kind: IaKind::Pd,
                iaid: ia.iaid,
                t1: ia.t1,
                t2: ia.t2,
                options: &ia.options,
            }),
            _ => None,
        }
    }

    /// Its addresses (IA_NA, IA_TA) or prefixes (IA_PD), in order.
    pub fn leases(&self) -> impl Iterator<Item = IaLease<'o, 'a>> + 'o {
        self.options.iter().filter_map(IaLease::of)
    }
}

/// Lookups over an option list, for the common "find the one X" questions.
pub trait OptionsExt<'a> {
    /// The first option with `code`.
    fn find(&self, code: u16) -> Option<&DhcpOption<'a>>;
    /// How many options carry `code`.
    fn count_of(&self, code: u16) -> usize;
    /// The first OPTION_CLIENTID.
    fn client_id(&self) -> Option<&Duid<'a>>;
    /// The first OPTION_SERVERID.
    fn server_id(&self) -> Option<&Duid<'a>>;
    /// The first OPTION_STATUS_CODE.
    fn status(&self) -> Option<&Status<'a>>;
    /// Every IA_NA, IA_TA and IA_PD, in order.
    fn ias<'o>(&'o self) -> impl Iterator<Item = IaView<'o, 'a>> + 'o
    where
        'a: 'o;
    /// Every address and prefix of every IA, with its IA, in order.
    fn ia_leases<'o>(&'o self) -> impl Iterator<Item = (IaView<'o, 'a>, IaLease<'o, 'a>)> + 'o
    where
        'a: 'o,
    {
        self.ias().flat_map(|ia| ia.leases().map(move |l| (ia, l)))
    }
}

impl<'a> OptionsExt<'a> for [DhcpOption<'a>] {
    fn find(&self, code: u16) -> Option<&DhcpOption<'a>> {
        self.iter().find(|o| o.code() == code)
    }

    fn count_of(&self, code: u16) -> usize {
        self.iter().filter(|o| o.code() == code).count()
    }

    fn client_id(&self) -> Option<&Duid<'a>> {
        self.iter().find_map(|o| match o {
            DhcpOption::ClientId(d) => Some(d),
            _ => None,
        })
    }

    fn server_id(&self) -> Option<&Duid<'a>> {
        self.iter().find_map(|o| match o {
            DhcpOption::ServerId(d) => Some(d),
            _ => None,
        })
    }

    fn status(&self) -> Option<&Status<'a>> {
        self.iter().find_map(|o| match o {
            DhcpOption::StatusCode(s) => Some(s),
            _ => None,
        })
    }

    fn ias<'o>(&'o self) -> impl Iterator<Item = IaView<'o, 'a>> + 'o
    where
        'a: 'o,
    {
        self.iter().filter_map(IaView::of)
    }
}
