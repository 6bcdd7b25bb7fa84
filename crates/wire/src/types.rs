//! Small value types shared by the DHCPv6 and failover codecs: message
//! types, status codes, binding status, server state, transaction ids and
//! RFC 8156 absolute time.

use std::fmt;

/// Declares an enum over a wire integer with one variant per registered
/// value and a catch-all for the rest, so that every value round-trips.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
        $(#[$umeta:meta])* $unknown:ident
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            $(#[$umeta])* $unknown($repr),
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                match v {
                    $( $value => $name::$variant, )+
                    other => $name::$unknown(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> $repr {
                match v {
                    $( $name::$variant => $value, )+
                    $name::$unknown(other) => other,
                }
            }
        }

        impl $name {
            /// Every registered value, in wire order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )+];

            /// The RFC name (lower case with hyphens where the project's
            /// interface shows it), or `None` for an unregistered value.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($text), )+
                    $name::$unknown(_) => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($unknown), <$repr>::from(*self)),
                }
            }
        }
    };
}

wire_enum! {
    /// DHCPv6 message types (RFC 8415 §7.3 and the IANA registry). Failover
    /// types 24–35 have their own header and enum, [`FailoverMessageType`].
    MessageType(u8) {
        /// SOLICIT (RFC 8415 §7.3).
        Solicit = 1 => "SOLICIT",
        /// ADVERTISE.
        Advertise = 2 => "ADVERTISE",
        /// REQUEST.
        Request = 3 => "REQUEST",
        /// CONFIRM.
        Confirm = 4 => "CONFIRM",
        /// RENEW.
        Renew = 5 => "RENEW",
        /// REBIND.
        Rebind = 6 => "REBIND",
        /// REPLY (also the answer to STARTTLS on the failover port).
        Reply = 7 => "REPLY",
        /// RELEASE.
        Release = 8 => "RELEASE",
        /// DECLINE.
        Decline = 9 => "DECLINE",
        /// RECONFIGURE.
        Reconfigure = 10 => "RECONFIGURE",
        /// INFORMATION-REQUEST.
        InformationRequest = 11 => "INFORMATION-REQUEST",
        /// RELAY-FORW (RFC 8415 §9).
        RelayForw = 12 => "RELAY-FORW",
        /// RELAY-REPL (RFC 8415 §9).
        RelayRepl = 13 => "RELAY-REPL",
        /// LEASEQUERY (RFC 5007).
        Leasequery = 14 => "LEASEQUERY",
        /// LEASEQUERY-REPLY (RFC 5007).
        LeasequeryReply = 15 => "LEASEQUERY-REPLY",
        /// LEASEQUERY-DONE (RFC 5460).
        LeasequeryDone = 16 => "LEASEQUERY-DONE",
        /// LEASEQUERY-DATA (RFC 5460).
        LeasequeryData = 17 => "LEASEQUERY-DATA",
        /// RECONFIGURE-REQUEST (RFC 6977).
        ReconfigureRequest = 18 => "RECONFIGURE-REQUEST",
        /// RECONFIGURE-REPLY (RFC 6977).
        ReconfigureReply = 19 => "RECONFIGURE-REPLY",
        /// DHCPV4-QUERY (RFC 7341).
        Dhcpv4Query = 20 => "DHCPV4-QUERY",
        /// DHCPV4-RESPONSE (RFC 7341).
        Dhcpv4Response = 21 => "DHCPV4-RESPONSE",
        /// ACTIVELEASEQUERY (RFC 7653).
        ActiveLeasequery = 22 => "ACTIVELEASEQUERY",
        /// STARTTLS (RFC 7653), also used on the failover port.
        StartTls = 23 => "STARTTLS",
    }
    /// Any other value (failover types included: they never use this header).
    Other
}

impl MessageType {
    /// RELAY-FORW and RELAY-REPL use the relay header (RFC 8415 §9).
    pub fn is_relay(self) -> bool {
        matches!(self, MessageType::RelayForw | MessageType::RelayRepl)
    }
}

wire_enum! {
    /// Failover message types (RFC 8156 §5.3, §11).
    FailoverMessageType(u8) {
        /// BNDUPD (§5.3.1).
        BndUpd = 24 => "BNDUPD",
        /// BNDREPLY (§5.3.2).
        BndReply = 25 => "BNDREPLY",
        /// POOLREQ (§5.3.3).
        PoolReq = 26 => "POOLREQ",
        /// POOLRESP (§5.3.4).
        PoolResp = 27 => "POOLRESP",
        /// UPDREQ (§5.3.5).
        UpdReq = 28 => "UPDREQ",
        /// UPDREQALL (§5.3.6).
        UpdReqAll = 29 => "UPDREQALL",
        /// UPDDONE (§5.3.7).
        UpdDone = 30 => "UPDDONE",
        /// CONNECT (§5.3.8).
        Connect = 31 => "CONNECT",
        /// CONNECTREPLY (§5.3.9).
        ConnectReply = 32 => "CONNECTREPLY",
        /// DISCONNECT (§5.3.10).
        Disconnect = 33 => "DISCONNECT",
        /// STATE (§5.3.11).
        State = 34 => "STATE",
        /// CONTACT (§5.3.12).
        Contact = 35 => "CONTACT",
    }
    /// Not a failover message type; never produced by parsing.
    Other
}

wire_enum! {
    /// Status codes (RFC 8415 §21.13, §24; RFC 5007, 5460, 7653, 8156 §5.6).
    StatusCode(u16) {
        /// Success (0).
        Success = 0 => "Success",
        /// UnspecFail (1).
        UnspecFail = 1 => "UnspecFail",
        /// NoAddrsAvail (2).
        NoAddrsAvail = 2 => "NoAddrsAvail",
        /// NoBinding (3).
        NoBinding = 3 => "NoBinding",
        /// NotOnLink (4).
        NotOnLink = 4 => "NotOnLink",
        /// UseMulticast (5).
        UseMulticast = 5 => "UseMulticast",
        /// NoPrefixAvail (6).
        NoPrefixAvail = 6 => "NoPrefixAvail",
        /// UnknownQueryType (7, RFC 5007).
        UnknownQueryType = 7 => "UnknownQueryType",
        /// MalformedQuery (8, RFC 5007).
        MalformedQuery = 8 => "MalformedQuery",
        /// NotConfigured (9, RFC 5007).
        NotConfigured = 9 => "NotConfigured",
        /// NotAllowed (10, RFC 5007).
        NotAllowed = 10 => "NotAllowed",
        /// QueryTerminated (11, RFC 5460).
        QueryTerminated = 11 => "QueryTerminated",
        /// DataMissing (12, RFC 7653).
        DataMissing = 12 => "DataMissing",
        /// CatchUpComplete (13, RFC 7653).
        CatchUpComplete = 13 => "CatchUpComplete",
        /// NotSupported (14, RFC 7653).
        NotSupported = 14 => "NotSupported",
        /// TLSConnectionRefused (15, RFC 7653).
        TlsConnectionRefused = 15 => "TLSConnectionRefused",
        /// AddressInUse (16, RFC 8156).
        AddressInUse = 16 => "AddressInUse",
        /// ConfigurationConflict (17, RFC 8156).
        ConfigurationConflict = 17 => "ConfigurationConflict",
        /// MissingBindingInformation (18, RFC 8156).
        MissingBindingInformation = 18 => "MissingBindingInformation",
        /// OutdatedBindingInformation (19, RFC 8156).
        OutdatedBindingInformation = 19 => "OutdatedBindingInformation",
        /// ServerShuttingDown (20, RFC 8156).
        ServerShuttingDown = 20 => "ServerShuttingDown",
        /// DNSUpdateNotSupported (21, RFC 8156).
        DnsUpdateNotSupported = 21 => "DNSUpdateNotSupported",
        /// ExcessiveTimeSkew (22, RFC 8156).
        ExcessiveTimeSkew = 22 => "ExcessiveTimeSkew",
    }
    /// A code registered after this crate was written, or unassigned.
    Unknown
}

wire_enum! {
    /// Binding status of a lease (RFC 8156 §5.5.1, §7.2).
    BindingStatus(u8) {
        /// Leased to a client.
        Active = 1 => "active",
        /// The client's lease ran out.
        Expired = 2 => "expired",
        /// The client released it.
        Released = 3 => "released",
        /// Transient: about to become FREE or FREE-BACKUP.
        PendingFree = 4 => "pending-free",
        /// Available to the primary.
        Free = 5 => "free",
        /// Available to the secondary.
        FreeBackup = 6 => "free-backup",
        /// Unusable (typically after a Decline).
        Abandoned = 7 => "abandoned",
        /// Made available by an operator.
        Reset = 8 => "reset",
    }
    /// Reserved (0) or unassigned values.
    Unknown
}

wire_enum! {
    /// Failover endpoint state (RFC 8156 §5.5.16, §8).
    ServerState(u8) {
        /// STARTUP (never sent; the STARTUP flag is used instead).
        Startup = 1 => "startup",
        /// NORMAL.
        Normal = 2 => "normal",
        /// COMMUNICATIONS-INTERRUPTED.
        CommunicationsInterrupted = 3 => "communications-interrupted",
        /// PARTNER-DOWN.
        PartnerDown = 4 => "partner-down",
        /// POTENTIAL-CONFLICT.
        PotentialConflict = 5 => "potential-conflict",
        /// RECOVER.
        Recover = 6 => "recover",
        /// RECOVER-WAIT.
        RecoverWait = 7 => "recover-wait",
        /// RECOVER-DONE.
        RecoverDone = 8 => "recover-done",
        /// RESOLUTION-INTERRUPTED.
        ResolutionInterrupted = 9 => "resolution-interrupted",
        /// CONFLICT-DONE.
        ConflictDone = 10 => "conflict-done",
    }
    /// Reserved (0) or unassigned values.
    Unknown
}

/// A 24-bit transaction id (RFC 8415 §8, RFC 8156 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TransactionId(u32);

impl TransactionId {
    /// Largest valid id.
    pub const MAX: u32 = 0x00ff_ffff;

    /// Wraps a value; `None` if it does not fit 24 bits.
    pub const fn new(v: u32) -> Option<Self> {
        if v <= Self::MAX {
            Some(TransactionId(v))
        } else {
            None
        }
    }

    /// Keeps the low 24 bits (for counters that wrap).
    pub const fn from_low_bits(v: u32) -> Self {
        TransactionId(v & Self::MAX)
    }

    /// The id.
    pub const fn get(self) -> u32 {
        self.0
    }

    pub(crate) fn from_bytes(b: [u8; 3]) -> Self {
        let [x, y, z] = b;
        TransactionId(u32::from_be_bytes([0, x, y, z]))
    }

    pub(crate) fn to_bytes(self) -> [u8; 3] {
        let [_, x, y, z] = self.0.to_be_bytes();
        [x, y, z]
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06x}", self.0)
    }
}

/// Seconds between the Unix epoch and 2000-01-01T00:00:00Z.
pub const EPOCH_2000_UNIX: u64 = 946_684_800;

/// RFC 8156 absolute time (§3): seconds since 2000-01-01 00:00:00 UTC,
/// modulo 2^32. Used by `sent-time` and the failover time options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AbsTime(pub u32);

impl AbsTime {
    /// Converts Unix seconds (wrapping modulo 2^32 after 2136).
    pub fn from_unix(unix_secs: u64) -> AbsTime {
        let since_2000 = unix_secs.wrapping_sub(EPOCH_2000_UNIX);
        AbsTime(since_2000 as u32)
    }

    /// Unix seconds of this time, choosing the 2^32-second era nearest to
    /// `reference_unix` (the receiver's clock).
    pub fn to_unix_near(self, reference_unix: u64) -> u64 {
        let reference = AbsTime::from_unix(reference_unix);
        let delta = self.0.wrapping_sub(reference.0) as i32;
        reference_unix.saturating_add_signed(i64::from(delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_enums_round_trip_every_value() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(MessageType::from(v)), v);
            assert_eq!(u8::from(FailoverMessageType::from(v)), v);
            assert_eq!(u8::from(BindingStatus::from(v)), v);
            assert_eq!(u8::from(ServerState::from(v)), v);
        }
        for v in 0..=200u16 {
            assert_eq!(u16::from(StatusCode::from(v)), v);
        }
    }

    #[test]
    fn names_follow_rfc_and_interface_spelling() {
        assert_eq!(
            ServerState::CommunicationsInterrupted.to_string(),
            "communications-interrupted"
        );
        assert_eq!(BindingStatus::FreeBackup.to_string(), "free-backup");
        assert_eq!(StatusCode::Unknown(99).to_string(), "Unknown(99)");
        assert_eq!(FailoverMessageType::BndUpd.to_string(), "BNDUPD");
    }

    #[test]
    fn transaction_id_is_24_bits() {
        assert!(TransactionId::new(0x0100_0000).is_none());
        let t = TransactionId::new(0x00ab_cdef).unwrap();
        assert_eq!(t.to_bytes(), [0xab, 0xcd, 0xef]);
        assert_eq!(TransactionId::from_bytes([0xab, 0xcd, 0xef]), t);
        assert_eq!(TransactionId::from_low_bits(0x0123_4567).get(), 0x23_4567);
    }

    #[test]
    fn abs_time_converts_from_and_to_unix() {
        assert_eq!(AbsTime::from_unix(EPOCH_2000_UNIX), AbsTime(0));
        let now = 1_795_000_000; // 2026
        let t = AbsTime::from_unix(now);
        assert_eq!(t.to_unix_near(now + 100), now);
        assert_eq!(AbsTime::from_unix(now + 7).to_unix_near(now), now + 7);
    }
}
