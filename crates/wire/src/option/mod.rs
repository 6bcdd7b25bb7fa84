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

pub mod code;

use crate::codec::{sum, Reader, Writer};
use crate::duid::Duid;
use crate::error::{DecodeError, DecodeErrorKind, EmitError};
use crate::message::Message;
use crate::name::DomainName;
use crate::types::{AbsTime, BindingStatus, ServerState, StatusCode};
use std::borrow::Cow;
use std::net::Ipv6Addr;

/// Bytes borrowed from the received buffer, or owned.
pub type Bytes<'a> = Cow<'a, [u8]>;

/// One option, typed where this crate knows the code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhcpOption<'a> {
    /// OPTION_CLIENTID (1, RFC 8415 §21.2).
    ClientId(Duid<'a>),
    /// OPTION_SERVERID (2, RFC 8415 §21.3).
    ServerId(Duid<'a>),
    /// OPTION_IA_NA (3, RFC 8415 §21.4).
    IaNa(IaNa<'a>),
    /// OPTION_IA_TA (4, RFC 8415 §21.5).
    IaTa(IaTa<'a>),
    /// OPTION_IAADDR (5, RFC 8415 §21.6).
    IaAddr(IaAddr<'a>),
    /// OPTION_ORO (6, RFC 8415 §21.7): requested option codes.
    Oro(Vec<u16>),
    /// OPTION_PREFERENCE (7, RFC 8415 §21.8).
    Preference(u8),
    /// OPTION_ELAPSED_TIME (8, RFC 8415 §21.9), hundredths of a second.
    ElapsedTime(u16),
    /// OPTION_RELAY_MSG (9, RFC 8415 §21.10): the relayed message.
    RelayMsg(Box<Message<'a>>),
    /// OPTION_AUTH (11, RFC 8415 §21.11).
    Auth(Auth<'a>),
    /// OPTION_UNICAST (12, RFC 8415 §21.12).
    Unicast(Ipv6Addr),
    /// OPTION_STATUS_CODE (13, RFC 8415 §21.13).
    StatusCode(Status<'a>),
    /// OPTION_RAPID_COMMIT (14, RFC 8415 §21.14).
    RapidCommit,
    /// OPTION_USER_CLASS (15, RFC 8415 §21.15): the user-class-data items.
    UserClass(Vec<Bytes<'a>>),
    /// OPTION_VENDOR_CLASS (16, RFC 8415 §21.16).
    VendorClass(VendorClass<'a>),
    /// OPTION_VENDOR_OPTS (17, RFC 8415 §21.17).
    VendorOpts(VendorOpts<'a>),
    /// OPTION_INTERFACE_ID (18, RFC 8415 §21.18).
    InterfaceId(Bytes<'a>),
    /// OPTION_RECONF_MSG (19, RFC 8415 §21.19): the message type to send.
    ReconfMsg(u8),
    /// OPTION_RECONF_ACCEPT (20, RFC 8415 §21.20).
    ReconfAccept,
    /// OPTION_DNS_SERVERS (23, RFC 3646 §3).
    DnsServers(Vec<Ipv6Addr>),
    /// OPTION_DOMAIN_LIST (24, RFC 3646 §4).
    DomainList(Vec<DomainName<'a>>),
    /// OPTION_IA_PD (25, RFC 8415 §21.21).
    IaPd(IaPd<'a>),
    /// OPTION_IAPREFIX (26, RFC 8415 §21.22).
    IaPrefix(IaPrefix<'a>),
    /// OPTION_INFORMATION_REFRESH_TIME (32, RFC 8415 §21.23), seconds.
    InformationRefreshTime(u32),
    /// OPTION_CLIENT_FQDN (39, RFC 4704 §4).
    ClientFqdn(ClientFqdn<'a>),
    /// OPTION_CLIENT_DATA (45, RFC 5007 §4.1.2.2): a container of client options.
    ClientData(Vec<DhcpOption<'a>>),
    /// OPTION_CLT_TIME (46, RFC 5007 §4.1.2.3): seconds since last client contact.
    CltTime(u32),
    /// OPTION_LQ_RELAY_DATA (47, RFC 5007 §4.1.2.4).
    LqRelayData(LqRelayData<'a>),
    /// OPTION_VSS (68, RFC 6607 §3.4).
    Vss(Vss<'a>),
    /// OPTION_SOL_MAX_RT (82, RFC 8415 §21.24), seconds.
    SolMaxRt(u32),
    /// OPTION_INF_MAX_RT (83, RFC 8415 §21.25), seconds.
    InfMaxRt(u32),
    /// OPTION_LQ_BASE_TIME (100, RFC 7653 §6.3.1).
    LqBaseTime(AbsTime),
    /// OPTION_F_BINDING_STATUS (114, RFC 8156 §5.5.1).
    BindingStatus(BindingStatus),
    /// OPTION_F_CONNECT_FLAGS (115, RFC 8156 §5.5.2); see [`crate::failover::CONNECT_FLAG_FIXED_PD_LENGTH`].
    ConnectFlags(u16),
    /// OPTION_F_DNS_REMOVAL_INFO (116, RFC 8156 §5.5.3): container.
    DnsRemovalInfo(Vec<DhcpOption<'a>>),
    /// OPTION_F_DNS_HOST_NAME (117, RFC 8156 §5.5.3.1).
    DnsHostName(DomainName<'a>),
    /// OPTION_F_DNS_ZONE_NAME (118, RFC 8156 §5.5.3.2).
    DnsZoneName(DomainName<'a>),
    /// OPTION_F_DNS_FLAGS (119, RFC 8156 §5.5.3.3).
    DnsFlags(u16),
    /// OPTION_F_EXPIRATION_TIME (120, RFC 8156 §5.5.4).
    ExpirationTime(AbsTime),
    /// OPTION_F_MAX_UNACKED_BNDUPD (121, RFC 8156 §5.5.5).
    MaxUnackedBndupd(u32),
    /// OPTION_F_MCLT (122, RFC 8156 §5.5.6), seconds.
    Mclt(u32),
    /// OPTION_F_PARTNER_LIFETIME (123, RFC 8156 §5.5.7).
    PartnerLifetime(AbsTime),
    /// OPTION_F_PARTNER_LIFETIME_SENT (124, RFC 8156 §5.5.8).
    PartnerLifetimeSent(AbsTime),
    /// OPTION_F_PARTNER_DOWN_TIME (125, RFC 8156 §5.5.9).
    PartnerDownTime(AbsTime),
    /// OPTION_F_PARTNER_RAW_CLT_TIME (126, RFC 8156 §5.5.10).
    PartnerRawCltTime(AbsTime),
    /// OPTION_F_PROTOCOL_VERSION (127, RFC 8156 §5.5.11).
    ProtocolVersion {
        /// Major version (1 for RFC 8156).
        major: u16,
        /// Minor version (0 for RFC 8156).
        minor: u16,
    },
    /// OPTION_F_KEEPALIVE_TIME (128, RFC 8156 §5.5.12), seconds.
    KeepaliveTime(u32),
    /// OPTION_F_RECONFIGURE_DATA (129, RFC 8156 §5.5.13).
    ReconfigureData(ReconfigureData<'a>),
    /// OPTION_F_RELATIONSHIP_NAME (130, RFC 8156 §5.5.14), UTF-8.
    RelationshipName(Cow<'a, str>),
    /// OPTION_F_SERVER_FLAGS (131, RFC 8156 §5.5.15); see [`crate::failover::SERVER_FLAG_STARTUP`].
    ServerFlags(u8),
    /// OPTION_F_SERVER_STATE (132, RFC 8156 §5.5.16).
    ServerState(ServerState),
    /// OPTION_F_START_TIME_OF_STATE (133, RFC 8156 §5.5.17).
    StartTimeOfState(AbsTime),
    /// OPTION_F_STATE_EXPIRATION_TIME (134, RFC 8156 §5.5.18).
    StateExpirationTime(AbsTime),
    /// Any other option (or a container outside its scope), kept verbatim.
    Unknown {
        /// The option code.
        code: u16,
        /// The option data.
        data: Bytes<'a>,
    },
}

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

/// OPTION_IA_TA (RFC 8415 §21.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaTa<'a> {
    /// Identity association id.
    pub iaid: u32,
    /// IA_TA-options.
    pub options: Vec<DhcpOption<'a>>,
}

/// OPTION_IA_PD (RFC 8415 §21.21).
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

/// OPTION_VENDOR_CLASS (RFC 8415 §21.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorClass<'a> {
    /// IANA private enterprise number.
    pub enterprise_number: u32,
    /// The vendor-class-data items.
    pub data: Vec<Bytes<'a>>,
}

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

/// OPTION_LQ_RELAY_DATA (RFC 5007 §4.1.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LqRelayData<'a> {
    /// Address of the relay closest to the client.
    pub peer_address: Ipv6Addr,
    /// The relay chain as received, innermost client message removed.
    pub relay_message: Bytes<'a>,
}

/// OPTION_VSS (RFC 6607 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vss<'a> {
    /// VSS type (255 = global default VPN).
    pub vss_type: u8,
    /// VSS information.
    pub info: Bytes<'a>,
}

/// OPTION_F_RECONFIGURE_DATA (RFC 8156 §5.5.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigureData<'a> {
    /// When the key was created.
    pub reconfigure_time: AbsTime,
    /// The RKAP reconfigure key.
    pub key: Bytes<'a>,
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

fn bad_length(r: &Reader<'_>, expected: &'static str) -> DecodeError {
    r.error(DecodeErrorKind::BadLength {
        len: r.remaining(),
        expected,
    })
}

fn exact(r: &Reader<'_>, n: usize, expected: &'static str) -> Result<(), DecodeError> {
    if r.remaining() == n {
        Ok(())
    } else {
        Err(bad_length(r, expected))
    }
}

fn at_least(r: &Reader<'_>, n: usize, expected: &'static str) -> Result<(), DecodeError> {
    if r.remaining() >= n {
        Ok(())
    } else {
        Err(bad_length(r, expected))
    }
}

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
    items.into_iter().map(|i| Cow::Owned(i.into_owned())).collect()
}

fn owned(b: Bytes<'_>) -> Bytes<'static> {
    Cow::Owned(b.into_owned())
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
    /// The option code.
    pub fn code(&self) -> u16 {
        use DhcpOption as O;
        match self {
            O::ClientId(_) => code::CLIENTID,
            O::ServerId(_) => code::SERVERID,
            O::IaNa(_) => code::IA_NA,
            O::IaTa(_) => code::IA_TA,
            O::IaAddr(_) => code::IAADDR,
            O::Oro(_) => code::ORO,
            O::Preference(_) => code::PREFERENCE,
            O::ElapsedTime(_) => code::ELAPSED_TIME,
            O::RelayMsg(_) => code::RELAY_MSG,
            O::Auth(_) => code::AUTH,
            O::Unicast(_) => code::UNICAST,
            O::StatusCode(_) => code::STATUS_CODE,
            O::RapidCommit => code::RAPID_COMMIT,
            O::UserClass(_) => code::USER_CLASS,
            O::VendorClass(_) => code::VENDOR_CLASS,
            O::VendorOpts(_) => code::VENDOR_OPTS,
            O::InterfaceId(_) => code::INTERFACE_ID,
            O::ReconfMsg(_) => code::RECONF_MSG,
            O::ReconfAccept => code::RECONF_ACCEPT,
            O::DnsServers(_) => code::DNS_SERVERS,
            O::DomainList(_) => code::DOMAIN_LIST,
            O::IaPd(_) => code::IA_PD,
            O::IaPrefix(_) => code::IAPREFIX,
            O::InformationRefreshTime(_) => code::INFORMATION_REFRESH_TIME,
            O::ClientFqdn(_) => code::CLIENT_FQDN,
            O::ClientData(_) => code::CLIENT_DATA,
            O::CltTime(_) => code::CLT_TIME,
            O::LqRelayData(_) => code::LQ_RELAY_DATA,
            O::Vss(_) => code::VSS,
            O::SolMaxRt(_) => code::SOL_MAX_RT,
            O::InfMaxRt(_) => code::INF_MAX_RT,
            O::LqBaseTime(_) => code::LQ_BASE_TIME,
            O::BindingStatus(_) => code::F_BINDING_STATUS,
            O::ConnectFlags(_) => code::F_CONNECT_FLAGS,
            O::DnsRemovalInfo(_) => code::F_DNS_REMOVAL_INFO,
            O::DnsHostName(_) => code::F_DNS_HOST_NAME,
            O::DnsZoneName(_) => code::F_DNS_ZONE_NAME,
            O::DnsFlags(_) => code::F_DNS_FLAGS,
            O::ExpirationTime(_) => code::F_EXPIRATION_TIME,
            O::MaxUnackedBndupd(_) => code::F_MAX_UNACKED_BNDUPD,
            O::Mclt(_) => code::F_MCLT,
            O::PartnerLifetime(_) => code::F_PARTNER_LIFETIME,
            O::PartnerLifetimeSent(_) => code::F_PARTNER_LIFETIME_SENT,
            O::PartnerDownTime(_) => code::F_PARTNER_DOWN_TIME,
            O::PartnerRawCltTime(_) => code::F_PARTNER_RAW_CLT_TIME,
            O::ProtocolVersion { .. } => code::F_PROTOCOL_VERSION,
            O::KeepaliveTime(_) => code::F_KEEPALIVE_TIME,
            O::ReconfigureData(_) => code::F_RECONFIGURE_DATA,
            O::RelationshipName(_) => code::F_RELATIONSHIP_NAME,
            O::ServerFlags(_) => code::F_SERVER_FLAGS,
            O::ServerState(_) => code::F_SERVER_STATE,
            O::StartTimeOfState(_) => code::F_START_TIME_OF_STATE,
            O::StateExpirationTime(_) => code::F_STATE_EXPIRATION_TIME,
            O::Unknown { code, .. } => *code,
        }
    }

    /// Decodes one option's data (`r` holds exactly option-len bytes).
    pub(crate) fn parse(code: u16, r: &mut Reader<'a>, scope: Scope) -> Result<Self, DecodeError> {
        use DhcpOption as O;
        let container = |rank: u8| scope.rank > rank;
        let option = match code {
            code::CLIENTID | code::SERVERID => {
                let at = r.offset();
                let bytes = r.rest();
                let duid = Duid::new(bytes).map_err(|e| DecodeError::new(at, e.kind))?;
                if code == code::CLIENTID {
                    O::ClientId(duid)
                } else {
                    O::ServerId(duid)
                }
            }
            code::IA_NA if container(rank::IA) => {
                at_least(r, 12, "at least 12 (IAID, T1, T2)")?;
                O::IaNa(IaNa {
                    iaid: r.u32()?,
                    t1: r.u32()?,
                    t2: r.u32()?,
                    options: parse_options(r, Scope::inner(rank::IA))?,
                })
            }
            code::IA_TA if container(rank::IA) => {
                at_least(r, 4, "at least 4 (IAID)")?;
                O::IaTa(IaTa {
                    iaid: r.u32()?,
                    options: parse_options(r, Scope::inner(rank::IA))?,
                })
            }
            code::IA_PD if container(rank::IA) => {
                at_least(r, 12, "at least 12 (IAID, T1, T2)")?;
                O::IaPd(IaPd {
                    iaid: r.u32()?,
                    t1: r.u32()?,
                    t2: r.u32()?,
                    options: parse_options(r, Scope::inner(rank::IA))?,
                })
            }
            code::IAADDR if container(rank::LEASE) => {
                at_least(r, 24, "at least 24 (address, lifetimes)")?;
                O::IaAddr(IaAddr {
                    address: r.ipv6()?,
                    preferred_lifetime: r.u32()?,
                    valid_lifetime: r.u32()?,
                    options: parse_options(r, Scope::inner(rank::LEASE))?,
                })
            }
            code::IAPREFIX if container(rank::LEASE) => {
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
                O::IaPrefix(IaPrefix {
                    preferred_lifetime,
                    valid_lifetime,
                    prefix_len,
                    prefix: r.ipv6()?,
                    options: parse_options(r, Scope::inner(rank::LEASE))?,
                })
            }
            code::ORO => {
                if r.remaining() % 2 != 0 {
                    return Err(bad_length(r, "a multiple of 2"));
                }
                let mut codes = Vec::with_capacity(r.remaining() / 2);
                while !r.is_empty() {
                    codes.push(r.u16()?);
                }
                O::Oro(codes)
            }
            code::PREFERENCE => {
                exact(r, 1, "1")?;
                O::Preference(r.u8()?)
            }
            code::ELAPSED_TIME => {
                exact(r, 2, "2")?;
                O::ElapsedTime(r.u16()?)
            }
            code::RELAY_MSG => match scope.relay_depth {
                // The relayed message is enclosed by `depth` relay messages.
                Some(depth) => O::RelayMsg(Box::new(Message::parse_nested(r, depth)?)),
                None => O::Unknown {
                    code,
                    data: Cow::Borrowed(r.rest()),
                },
            },
            code::AUTH => {
                at_least(r, 11, "at least 11")?;
                O::Auth(Auth {
                    protocol: r.u8()?,
                    algorithm: r.u8()?,
                    rdm: r.u8()?,
                    replay_detection: r.u64()?,
                    info: Cow::Borrowed(r.rest()),
                })
            }
            code::UNICAST => {
                exact(r, 16, "16")?;
                O::Unicast(r.ipv6()?)
            }
            code::STATUS_CODE => {
                at_least(r, 2, "at least 2")?;
                O::StatusCode(Status {
                    code: StatusCode::from(r.u16()?),
                    message: Cow::Borrowed(r.rest()),
                })
            }
            code::RAPID_COMMIT => {
                exact(r, 0, "0")?;
                O::RapidCommit
            }
            code::USER_CLASS => O::UserClass(parse_len16_items(r)?),
            code::VENDOR_CLASS => {
                at_least(r, 4, "at least 4 (enterprise number)")?;
                O::VendorClass(VendorClass {
                    enterprise_number: r.u32()?,
                    data: parse_len16_items(r)?,
                })
            }
            code::VENDOR_OPTS => {
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
                O::VendorOpts(VendorOpts {
                    enterprise_number,
                    options,
                })
            }
            code::INTERFACE_ID => O::InterfaceId(Cow::Borrowed(r.rest())),
            code::RECONF_MSG => {
                exact(r, 1, "1")?;
                O::ReconfMsg(r.u8()?)
            }
            code::RECONF_ACCEPT => {
                exact(r, 0, "0")?;
                O::ReconfAccept
            }
            code::DNS_SERVERS => {
                if r.remaining() % 16 != 0 {
                    return Err(bad_length(r, "a multiple of 16"));
                }
                let mut servers = Vec::with_capacity(r.remaining() / 16);
                while !r.is_empty() {
                    servers.push(r.ipv6()?);
                }
                O::DnsServers(servers)
            }
            code::DOMAIN_LIST => {
                let at = r.offset();
                O::DomainList(DomainName::parse_list(r.rest(), at)?)
            }
            code::INFORMATION_REFRESH_TIME => O::InformationRefreshTime(u32_option(r)?),
            code::CLIENT_FQDN => {
                at_least(r, 1, "at least 1 (flags)")?;
                let flags = r.u8()?;
                let at = r.offset();
                O::ClientFqdn(ClientFqdn {
                    flags,
                    name: DomainName::parse_whole(r.rest(), at)?,
                })
            }
            code::CLIENT_DATA if container(rank::CLIENT_DATA) => {
                O::ClientData(parse_options(r, Scope::inner(rank::CLIENT_DATA))?)
            }
            code::CLT_TIME => O::CltTime(u32_option(r)?),
            code::LQ_RELAY_DATA => {
                at_least(r, 16, "at least 16 (peer-address)")?;
                O::LqRelayData(LqRelayData {
                    peer_address: r.ipv6()?,
                    relay_message: Cow::Borrowed(r.rest()),
                })
            }
            code::VSS => {
                at_least(r, 1, "at least 1 (VSS type)")?;
                O::Vss(Vss {
                    vss_type: r.u8()?,
                    info: Cow::Borrowed(r.rest()),
                })
            }
            code::SOL_MAX_RT => O::SolMaxRt(u32_option(r)?),
            code::INF_MAX_RT => O::InfMaxRt(u32_option(r)?),
            code::LQ_BASE_TIME => O::LqBaseTime(AbsTime(u32_option(r)?)),
            code::F_BINDING_STATUS => {
                exact(r, 1, "1")?;
                O::BindingStatus(BindingStatus::from(r.u8()?))
            }
            code::F_CONNECT_FLAGS => {
                exact(r, 2, "2")?;
                O::ConnectFlags(r.u16()?)
            }
            code::F_DNS_REMOVAL_INFO if container(rank::DNS_REMOVAL) => {
                O::DnsRemovalInfo(parse_options(r, Scope::inner(rank::DNS_REMOVAL))?)
            }
            code::F_DNS_HOST_NAME | code::F_DNS_ZONE_NAME => {
                let at = r.offset();
                let name = DomainName::parse_whole(r.rest(), at)?;
                if code == code::F_DNS_HOST_NAME {
                    O::DnsHostName(name)
                } else {
                    O::DnsZoneName(name)
                }
            }
            code::F_DNS_FLAGS => {
                exact(r, 2, "2")?;
                O::DnsFlags(r.u16()?)
            }
            code::F_EXPIRATION_TIME => O::ExpirationTime(AbsTime(u32_option(r)?)),
            code::F_MAX_UNACKED_BNDUPD => O::MaxUnackedBndupd(u32_option(r)?),
            code::F_MCLT => O::Mclt(u32_option(r)?),
            code::F_PARTNER_LIFETIME => O::PartnerLifetime(AbsTime(u32_option(r)?)),
            code::F_PARTNER_LIFETIME_SENT => O::PartnerLifetimeSent(AbsTime(u32_option(r)?)),
            code::F_PARTNER_DOWN_TIME => O::PartnerDownTime(AbsTime(u32_option(r)?)),
            code::F_PARTNER_RAW_CLT_TIME => O::PartnerRawCltTime(AbsTime(u32_option(r)?)),
            code::F_PROTOCOL_VERSION => {
                exact(r, 4, "4")?;
                O::ProtocolVersion {
                    major: r.u16()?,
                    minor: r.u16()?,
                }
            }
            code::F_KEEPALIVE_TIME => O::KeepaliveTime(u32_option(r)?),
            code::F_RECONFIGURE_DATA => {
                at_least(r, 4, "at least 4 (reconfigure-time)")?;
                O::ReconfigureData(ReconfigureData {
                    reconfigure_time: AbsTime(r.u32()?),
                    key: Cow::Borrowed(r.rest()),
                })
            }
            code::F_RELATIONSHIP_NAME => {
                let at = r.offset();
                let text = std::str::from_utf8(r.rest())
                    .map_err(|_| DecodeError::new(at, DecodeErrorKind::InvalidUtf8))?;
                O::RelationshipName(Cow::Borrowed(text))
            }
            code::F_SERVER_FLAGS => {
                exact(r, 1, "1")?;
                O::ServerFlags(r.u8()?)
            }
            code::F_SERVER_STATE => {
                exact(r, 1, "1")?;
                O::ServerState(ServerState::from(r.u8()?))
            }
            code::F_START_TIME_OF_STATE => O::StartTimeOfState(AbsTime(u32_option(r)?)),
            code::F_STATE_EXPIRATION_TIME => O::StateExpirationTime(AbsTime(u32_option(r)?)),
            _ => O::Unknown {
                code,
                data: Cow::Borrowed(r.rest()),
            },
        };
        r.finish("option data")?;
        Ok(option)
    }

    /// Length of the option data (without the 4-byte header).
    fn data_len(&self) -> usize {
        use DhcpOption as O;
        match self {
            O::ClientId(d) | O::ServerId(d) => d.as_bytes().len(),
            O::IaNa(ia) => options_len(&ia.options).saturating_add(12),
            O::IaTa(ia) => options_len(&ia.options).saturating_add(4),
            O::IaPd(ia) => options_len(&ia.options).saturating_add(12),
            O::IaAddr(a) => options_len(&a.options).saturating_add(24),
            O::IaPrefix(p) => options_len(&p.options).saturating_add(25),
            O::Oro(codes) => codes.len().saturating_mul(2),
            O::Preference(_)
            | O::ReconfMsg(_)
            | O::BindingStatus(_)
            | O::ServerFlags(_)
            | O::ServerState(_) => 1,
            O::ElapsedTime(_) | O::ConnectFlags(_) | O::DnsFlags(_) => 2,
            O::RelayMsg(m) => m.buffer_len(),
            O::Auth(a) => a.info.len().saturating_add(11),
            O::Unicast(_) => 16,
            O::StatusCode(s) => s.message.len().saturating_add(2),
            O::RapidCommit | O::ReconfAccept => 0,
            O::UserClass(items) => len16_items_len(items),
            O::VendorClass(v) => len16_items_len(&v.data).saturating_add(4),
            O::VendorOpts(v) => {
                sum(v.options.iter().map(|s| s.data.len().saturating_add(4))).saturating_add(4)
            }
            O::InterfaceId(b) => b.len(),
            O::DnsServers(s) => s.len().saturating_mul(16),
            O::DomainList(names) => sum(names.iter().map(|n| n.as_bytes().len())),
            O::ClientFqdn(f) => f.name.as_bytes().len().saturating_add(1),
            O::ClientData(opts) | O::DnsRemovalInfo(opts) => options_len(opts),
            O::LqRelayData(l) => l.relay_message.len().saturating_add(16),
            O::Vss(v) => v.info.len().saturating_add(1),
            O::DnsHostName(n) | O::DnsZoneName(n) => n.as_bytes().len(),
            O::InformationRefreshTime(_)
            | O::CltTime(_)
            | O::SolMaxRt(_)
            | O::InfMaxRt(_)
            | O::LqBaseTime(_)
            | O::ExpirationTime(_)
            | O::MaxUnackedBndupd(_)
            | O::Mclt(_)
            | O::PartnerLifetime(_)
            | O::PartnerLifetimeSent(_)
            | O::PartnerDownTime(_)
            | O::PartnerRawCltTime(_)
            | O::ProtocolVersion { .. }
            | O::KeepaliveTime(_)
            | O::StartTimeOfState(_)
            | O::StateExpirationTime(_) => 4,
            O::ReconfigureData(r) => r.key.len().saturating_add(4),
            O::RelationshipName(n) => n.len(),
            O::Unknown { data, .. } => data.len(),
        }
    }

    /// Encoded length including the 4-byte option header.
    pub fn buffer_len(&self) -> usize {
        self.data_len().saturating_add(4)
    }

    /// Writes header and data.
    pub(crate) fn emit_into(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        use DhcpOption as O;
        let code = self.code();
        w.option_header(code, self.data_len())?;
        match self {
            O::ClientId(d) | O::ServerId(d) => w.bytes(d.as_bytes()),
            O::IaNa(IaNa {
                iaid,
                t1,
                t2,
                options,
            })
            | O::IaPd(IaPd {
                iaid,
                t1,
                t2,
                options,
            }) => {
                w.u32(*iaid)?;
                w.u32(*t1)?;
                w.u32(*t2)?;
                emit_options(options, w)
            }
            O::IaTa(ia) => {
                w.u32(ia.iaid)?;
                emit_options(&ia.options, w)
            }
            O::IaAddr(a) => {
                w.ipv6(&a.address)?;
                w.u32(a.preferred_lifetime)?;
                w.u32(a.valid_lifetime)?;
                emit_options(&a.options, w)
            }
            O::IaPrefix(p) => {
                if p.prefix_len > 128 {
                    return Err(EmitError::InvalidValue {
                        what: "IAPREFIX prefix-length above 128",
                    });
                }
                w.u32(p.preferred_lifetime)?;
                w.u32(p.valid_lifetime)?;
                w.u8(p.prefix_len)?;
                w.ipv6(&p.prefix)?;
                emit_options(&p.options, w)
            }
            O::Oro(codes) => codes.iter().try_for_each(|c| w.u16(*c)),
            O::Preference(v) | O::ReconfMsg(v) | O::ServerFlags(v) => w.u8(*v),
            O::BindingStatus(s) => w.u8(u8::from(*s)),
            O::ServerState(s) => w.u8(u8::from(*s)),
            O::ElapsedTime(v) | O::ConnectFlags(v) | O::DnsFlags(v) => w.u16(*v),
            O::RelayMsg(m) => m.emit_nested(w),
            O::Auth(a) => {
                w.u8(a.protocol)?;
                w.u8(a.algorithm)?;
                w.u8(a.rdm)?;
                w.u64(a.replay_detection)?;
                w.bytes(&a.info)
            }
            O::Unicast(a) => w.ipv6(a),
            O::StatusCode(s) => {
                w.u16(u16::from(s.code))?;
                w.bytes(&s.message)
            }
            O::RapidCommit | O::ReconfAccept => Ok(()),
            O::UserClass(items) => emit_len16_items(items, w),
            O::VendorClass(v) => {
                w.u32(v.enterprise_number)?;
                emit_len16_items(&v.data, w)
            }
            O::VendorOpts(v) => {
                w.u32(v.enterprise_number)?;
                for s in &v.options {
                    w.u16(s.code)?;
                    w.len16(s.data.len(), "vendor sub-option longer than 65535 bytes")?;
                    w.bytes(&s.data)?;
                }
                Ok(())
            }
            O::InterfaceId(b) => w.bytes(b),
            O::DnsServers(s) => s.iter().try_for_each(|a| w.ipv6(a)),
            O::DomainList(names) => {
                for n in names {
                    if !n.is_fully_qualified() {
                        return Err(EmitError::InvalidValue {
                            what: "partial name in OPTION_DOMAIN_LIST",
                        });
                    }
                    w.bytes(n.as_bytes())?;
                }
                Ok(())
            }
            O::ClientFqdn(f) => {
                w.u8(f.flags)?;
                w.bytes(f.name.as_bytes())
            }
            O::ClientData(opts) | O::DnsRemovalInfo(opts) => emit_options(opts, w),
            O::LqRelayData(l) => {
                w.ipv6(&l.peer_address)?;
                w.bytes(&l.relay_message)
            }
            O::Vss(v) => {
                w.u8(v.vss_type)?;
                w.bytes(&v.info)
            }
            O::DnsHostName(n) | O::DnsZoneName(n) => w.bytes(n.as_bytes()),
            O::InformationRefreshTime(v)
            | O::CltTime(v)
            | O::SolMaxRt(v)
            | O::InfMaxRt(v)
            | O::MaxUnackedBndupd(v)
            | O::Mclt(v)
            | O::KeepaliveTime(v) => w.u32(*v),
            O::LqBaseTime(t)
            | O::ExpirationTime(t)
            | O::PartnerLifetime(t)
            | O::PartnerLifetimeSent(t)
            | O::PartnerDownTime(t)
            | O::PartnerRawCltTime(t)
            | O::StartTimeOfState(t)
            | O::StateExpirationTime(t) => w.u32(t.0),
            O::ProtocolVersion { major, minor } => {
                w.u16(*major)?;
                w.u16(*minor)
            }
            O::ReconfigureData(r) => {
                w.u32(r.reconfigure_time.0)?;
                w.bytes(&r.key)
            }
            O::RelationshipName(n) => w.bytes(n.as_bytes()),
            O::Unknown { data, .. } => w.bytes(data),
        }
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

    /// Copies every borrowed byte so the option outlives the received buffer.
    pub fn into_owned(self) -> DhcpOption<'static> {
        use DhcpOption as O;
        match self {
            O::ClientId(d) => O::ClientId(d.into_owned()),
            O::ServerId(d) => O::ServerId(d.into_owned()),
            O::IaNa(ia) => O::IaNa(ia.into_owned()),
            O::IaTa(ia) => O::IaTa(IaTa {
                iaid: ia.iaid,
                options: owned_options(ia.options),
            }),
            O::IaPd(ia) => O::IaPd(ia.into_owned()),
            O::IaAddr(a) => O::IaAddr(a.into_owned()),
            O::IaPrefix(p) => O::IaPrefix(p.into_owned()),
            O::Oro(c) => O::Oro(c),
            O::Preference(v) => O::Preference(v),
            O::ElapsedTime(v) => O::ElapsedTime(v),
            O::RelayMsg(m) => O::RelayMsg(Box::new(m.into_owned())),
            O::Auth(a) => O::Auth(Auth {
                protocol: a.protocol,
                algorithm: a.algorithm,
                rdm: a.rdm,
                replay_detection: a.replay_detection,
                info: owned(a.info),
            }),
            O::Unicast(a) => O::Unicast(a),
            O::StatusCode(s) => O::StatusCode(Status {
                code: s.code,
                message: owned(s.message),
            }),
            O::RapidCommit => O::RapidCommit,
            O::UserClass(items) => O::UserClass(owned_items(items)),
            O::VendorClass(v) => O::VendorClass(VendorClass {
                enterprise_number: v.enterprise_number,
                data: owned_items(v.data),
            }),
            O::VendorOpts(v) => O::VendorOpts(VendorOpts {
                enterprise_number: v.enterprise_number,
                options: v
                    .options
                    .into_iter()
                    .map(|s| VendorSubOption {
                        code: s.code,
                        data: owned(s.data),
                    })
                    .collect(),
            }),
            O::InterfaceId(b) => O::InterfaceId(owned(b)),
            O::ReconfMsg(v) => O::ReconfMsg(v),
            O::ReconfAccept => O::ReconfAccept,
            O::DnsServers(s) => O::DnsServers(s),
            O::DomainList(n) => O::DomainList(n.into_iter().map(DomainName::into_owned).collect()),
            O::InformationRefreshTime(v) => O::InformationRefreshTime(v),
            O::ClientFqdn(f) => O::ClientFqdn(ClientFqdn {
                flags: f.flags,
                name: f.name.into_owned(),
            }),
            O::ClientData(o) => O::ClientData(owned_options(o)),
            O::CltTime(v) => O::CltTime(v),
            O::LqRelayData(l) => O::LqRelayData(LqRelayData {
                peer_address: l.peer_address,
                relay_message: owned(l.relay_message),
            }),
            O::Vss(v) => O::Vss(Vss {
                vss_type: v.vss_type,
                info: owned(v.info),
            }),
            O::SolMaxRt(v) => O::SolMaxRt(v),
            O::InfMaxRt(v) => O::InfMaxRt(v),
            O::LqBaseTime(t) => O::LqBaseTime(t),
            O::BindingStatus(s) => O::BindingStatus(s),
            O::ConnectFlags(v) => O::ConnectFlags(v),
            O::DnsRemovalInfo(o) => O::DnsRemovalInfo(owned_options(o)),
            O::DnsHostName(n) => O::DnsHostName(n.into_owned()),
            O::DnsZoneName(n) => O::DnsZoneName(n.into_owned()),
            O::DnsFlags(v) => O::DnsFlags(v),
            O::ExpirationTime(t) => O::ExpirationTime(t),
            O::MaxUnackedBndupd(v) => O::MaxUnackedBndupd(v),
            O::Mclt(v) => O::Mclt(v),
            O::PartnerLifetime(t) => O::PartnerLifetime(t),
            O::PartnerLifetimeSent(t) => O::PartnerLifetimeSent(t),
            O::PartnerDownTime(t) => O::PartnerDownTime(t),
            O::PartnerRawCltTime(t) => O::PartnerRawCltTime(t),
            O::ProtocolVersion { major, minor } => O::ProtocolVersion { major, minor },
            O::KeepaliveTime(v) => O::KeepaliveTime(v),
            O::ReconfigureData(r) => O::ReconfigureData(ReconfigureData {
                reconfigure_time: r.reconfigure_time,
                key: owned(r.key),
            }),
            O::RelationshipName(n) => O::RelationshipName(Cow::Owned(n.into_owned())),
            O::ServerFlags(v) => O::ServerFlags(v),
            O::ServerState(s) => O::ServerState(s),
            O::StartTimeOfState(t) => O::StartTimeOfState(t),
            O::StateExpirationTime(t) => O::StateExpirationTime(t),
            O::Unknown { code, data } => O::Unknown {
                code,
                data: owned(data),
            },
        }
    }
}

fn u32_option(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    exact(r, 4, "4")?;
    r.u32()
}

impl IaNa<'_> {
    /// Copies borrowed bytes.
    pub fn into_owned(self) -> IaNa<'static> {
        IaNa {
            iaid: self.iaid,
            t1: self.t1,
            t2: self.t2,
            options: owned_options(self.options),
        }
    }
}

impl IaPd<'_> {
    /// Copies borrowed bytes.
    pub fn into_owned(self) -> IaPd<'static> {
        IaPd {
            iaid: self.iaid,
            t1: self.t1,
            t2: self.t2,
            options: owned_options(self.options),
        }
    }
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
