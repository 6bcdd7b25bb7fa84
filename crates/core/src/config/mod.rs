//! The server's configuration: the TOML file of INTERFACE.md, parsed and
//! validated into typed values.
//!
//! [`Config::from_toml_str`] reads the text into serde "wire" structs (every
//! table `deny_unknown_fields`), then validates them into [`Config`]. It
//! reports **every** error it finds, each naming its key path the way an
//! operator would point at it (`subnet[0].pools[1]: end before start`);
//! TOML syntax errors name `line L, column C` instead. [`Config::load`] is
//! the only IO in this crate: it reads the file and resolves relative paths
//! against the file's directory.
//!
//! # Keys
//!
//! Durations are whole seconds. "Required" keys have no default.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `server.name` | required | this server's name; also its TLS identity |
//! | `server.data-dir` | required | server DUID, lease store, failover state (relative: to the config file's directory) |
//! | `server.interfaces` | `[]` | links to serve on-link clients on (join ff02::1:2) |
//! | `server.listen` | `[]` | extra unicast sockets, `"[2001:db8::1]:547"`; port defaults to 547 |
//! | `server.queue-size` | 4096 | datagrams the receive queue holds (each socket's receive buffer, 1 KiB per datagram); what overflows it is dropped and counted (`socket-drops`) |
//! | `server.batch-max` | 256 | most datagrams read and processed in one round before the server commits and answers |
//! | `server.commit-window-us` | 0 | how long the store writer waits for more requests before a commit, µs (0: commit as soon as the previous one is done) |
//! | `server.send-rate` | 40000 | datagrams per second the server sends to clients and relays back to back at most; a burst beyond it (the requests that queued during a slow fdatasync) leaves paced instead of overflowing the receiver's socket (0: no pacing) |
//! | `server.send-burst` | 64 | datagrams that may leave back to back before pacing starts |
//! | `server.kernel-filter` | true | while no subnet on an interface may answer new clients (a secondary in NORMAL), let the kernel discard the client messages there that could get no answer, uncounted (docs/ARCHITECTURE.md, "kernel filter") |
//! | `control.socket` | `<data-dir>/control.sock` | control socket for `duet ctl` |
//! | `subnet[].prefix` | required | the link's prefix, `2001:db8:1::/64` |
//! | `subnet[].interface` | none | link whose on-link clients belong here; one of `server.interfaces` |
//! | `subnet[].pools` | `[]` | address ranges, `"START-END"`, inclusive, inside `prefix` |
//! | `subnet[].pd-pools` | `[]` | `{ prefix = "…/40", delegated-length = 56 }` |
//! | `subnet[].preferred-lifetime` | 3000 | RFC 8415 §21.6 |
//! | `subnet[].valid-lifetime` | 4000 | RFC 8415 §21.6 |
//! | `subnet[].renew-time` | 1000 | T1 (RFC 8415 §21.4); 0 = client's choice |
//! | `subnet[].rebind-time` | 2000 | T2 (RFC 8415 §21.4); 0 = client's choice |
//! | `subnet[].dns-servers` | `[]` | RFC 3646 recursive name servers |
//! | `subnet[].domain-search` | `[]` | RFC 3646 domain search list |
//! | `subnet[].failover` | none | name of the `[[failover]]` relationship sharing this subnet |
//! | `subnet[].preference` | 0 | Preference option value (RFC 8415 §21.8) |
//! | `subnet[].rapid-commit` | false | honour Rapid Commit (RFC 8415 §21.14) |
//! | `subnet[].options` | `[]` | the subnet's options (below); they win over top-level ones with the same code |
//! | `options` | `[]` | top-level `[[options]]`: options for every subnet that does not set the same one |
//! | `subnet[].interface-id` | none | relayed messages whose relay (the one closest to the client) sends this Interface-Id (RFC 8415 §21.18) belong to this subnet, before any link-address match: `"ge-0/0/1.20"` (the text's bytes) or `{ hex = "03000000" }` (ISC dhcrelay -I sends its own number for the lower interface, 1 for the first `-l`, as 4 bytes in the relay host's byte order: `01000000` on x86); unique |
//! | `subnet[].reservations` | `[]` | host reservations: `{ duid = "00:03:…" \| hw-address = "02:00:…", addresses = […], prefixes = […], options = […] }`; addresses inside the subnet's pools, prefixes delegated prefixes of its pd-pools, each reserved once; only their client gets them (one per IA, in order); its options win over the subnet's |
//! | `failover[].name` | required | relationship name (OPTION_F_RELATIONSHIP_NAME, RFC 8156 §5.5.14), same on both partners |
//! | `failover[].role` | required | `primary` or `secondary` |
//! | `failover[].listen` | required | local address for the partner link; port defaults to 647 |
//! | `failover[].peer` | required | partner's address; port defaults to 647 |
//! | `failover[].mclt` | 3600 | Maximum Client Lead Time (RFC 8156 §5.5.6), at least 30 |
//! | `failover[].max-unacked-bndupd` | 100 | BNDUPDs in flight to the partner |
//! | `failover[].auto-partner-down` | 0 | in COMMUNICATIONS-INTERRUPTED, PARTNER-DOWN once nothing (no message, no connection attempt) has been heard from the partner for this long; never while the partner is refused (configuration, clock skew, version, identity); 0 = never |
//! | `failover[].prefix-split` | 0.5 | share of delegable prefixes the secondary holds, 0 to 1 |
//! | `failover[].keepalive` | 8 | longest silence from the partner before communications are declared lost (OPTION_F_KEEPALIVE_TIME, RFC 8156 §5.5.12); a CONTACT goes every quarter of the partner's |
//! | `failover[].rescue-after` | 5 | a secondary in NORMAL also answers a Solicit or Rebind whose Elapsed Time is at least this (RFC 7031 §4.7: the primary may have lost its client link); 0 = never, at most 655 |
//! | `failover[].handover-on-stop` | false | on SIGTERM, hand the clients over to the partner first (as `duet ctl handover`) |
//! | `failover[].tls` | required unless `insecure` | `{ cert, key, ca, peer-name }` (paths relative to the config file) |
//! | `failover[].insecure` | false | `true` allows the partner link without TLS (and then `tls` must be absent) |
//!
//! # Options
//!
//! An entry of `options` (top level or `subnet[].options`) is a standard
//! option by `name` with its `value`, or any option by `code` with
//! exactly one of `hex` (`"0a:0b"` or `"0a0b"`), `text` (sent as UTF-8)
//! or `addresses` (IPv6, 16 bytes each). `always-send = true` sends it
//! even to a client whose Option Request option does not ask for it (RFC
//! 8415 §21.7 sends only what is asked for). A code appears once per
//! level; the most specific level wins.
//!
//! | name | code | value |
//! |---|---|---|
//! | `vendor-opts` | 17 | `enterprise = N`, `value = [{ code = 1, hex \| text \| addresses = … }, …]` |
//! | `dns-servers` | 23 | `["2001:db8::53", …]` (also the subnet key `dns-servers`) |
//! | `domain-search` | 24 | `["example.org", …]` (also the subnet key `domain-search`) |
//! | `sntp-servers` | 31 | `["2001:db8::123", …]` (RFC 4075) |
//! | `information-refresh-time` | 32 | seconds, at least 600 |
//! | `ntp-server` | 56 | `[{ address = "…" }, { multicast = "ff05::101" }, { fqdn = "ntp.example.org" }]` (RFC 5908) |
//! | `aftr-name` | 64 | `"aftr.example.org"` (RFC 6334) |
//! | `sol-max-rt` | 82 | seconds, 60 to 86400 |
//! | `inf-max-rt` | 83 | seconds, 60 to 86400 |
//!
//! ```toml
//! [[options]]
//! name = "sntp-servers"
//! value = ["2001:db8::123"]
//!
//! [[subnet]]
//! prefix = "2001:db8:1::/64"
//! options = [
//!   { name = "ntp-server", value = [{ fqdn = "ntp.example.org" }] },
//!   { code = 65001, text = "site-7", always-send = true },
//! ]
//! ```
//!
//! Codes the server sets itself (DUIDs, IAs, status, Preference, Rapid
//! Commit, relay and failover options) cannot be configured.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod document;
pub mod options;
mod reservations;
mod validate;
mod wire;

#[cfg(test)]
mod tests;

use crate::net::Ipv6Prefix;
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Default `server.queue-size`.
pub const DEFAULT_QUEUE_SIZE: usize = 4096;
/// Default `server.batch-max`.
pub const DEFAULT_BATCH_MAX: usize = 256;
/// Default `server.commit-window-us`: no wait beyond the previous commit.
pub const DEFAULT_COMMIT_WINDOW: Duration = Duration::ZERO;
/// Default `server.send-rate` (datagrams per second).
pub const DEFAULT_SEND_RATE: u32 = 40_000;
/// Default `server.send-burst`.
pub const DEFAULT_SEND_BURST: u32 = 64;
/// Default `subnet.preferred-lifetime`.
pub const DEFAULT_PREFERRED_LIFETIME: Duration = Duration::from_secs(3000);
/// Default `subnet.valid-lifetime`.
pub const DEFAULT_VALID_LIFETIME: Duration = Duration::from_secs(4000);
/// Default `subnet.renew-time` (T1).
pub const DEFAULT_RENEW_TIME: Duration = Duration::from_secs(1000);
/// Default `subnet.rebind-time` (T2).
pub const DEFAULT_REBIND_TIME: Duration = Duration::from_secs(2000);
/// Default `failover.mclt`.
pub const DEFAULT_MCLT: Duration = Duration::from_secs(3600);
/// Default `failover.max-unacked-bndupd`.
pub const DEFAULT_MAX_UNACKED_BNDUPD: u32 = 100;
/// Default `failover.prefix-split`.
pub const DEFAULT_PREFIX_SPLIT: f64 = 0.5;
/// Default `failover.keepalive` (OPTION_F_KEEPALIVE_TIME, RFC 8156 §5.5.12;
/// the RFC's example is 60 s). A partner that dies or is cut off silently
/// is noticed within this plus a second; CONTACTs go every quarter of it
/// (2 s), so a healthy pair never stays silent that long, even loaded.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(8);
/// Default `failover.rescue-after`: a healthy primary answers within
/// milliseconds, and a client retransmits a Solicit after about 1, 3 and 7
/// seconds (RFC 8415 §15), so its fourth try shows 5 s only when the
/// primary has missed three; a rescue is safe whenever it happens (the
/// secondary's own half and FREE-BACKUP prefixes, MCLT-capped).
pub const DEFAULT_RESCUE_AFTER: Duration = Duration::from_secs(5);
/// Longest `failover.rescue-after`: the Elapsed Time option counts up to
/// 655.35 s (RFC 8415 §21.9).
pub const MAX_RESCUE_AFTER: Duration = Duration::from_secs(655);
/// The DHCPv6 server port, default for `server.listen` (RFC 8415 §7.2).
pub const DHCP_SERVER_PORT: u16 = 547;
/// The DHCPv6 failover port (IANA `dhcp-failover`, TCP 647), default for
/// `failover.listen` and `failover.peer`.
pub const FAILOVER_PORT: u16 = 647;
/// Shortest MCLT, and shortest valid lifetime of a subnet under failover:
/// RFC 8156 never offers a lease shorter than this.
pub const MIN_FAILOVER_LIFETIME: Duration = Duration::from_secs(30);

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[control]`.
    pub control: ControlConfig,
    /// Every `[[subnet]]`, in file order. Their prefixes, pools and
    /// pd-pools never overlap.
    pub subnets: Vec<SubnetConfig>,
    /// Every `[[failover]]` relationship, in file order; names are unique
    /// and each is used by at least one subnet.
    pub failover: Vec<RelationshipConfig>,
    /// Top-level `[[options]]`: sent on every subnet that does not set the
    /// same option itself.
    pub options: Vec<OptionConfig>,
}

/// One configured option (`[[options]]`, `subnet[].options`): validated
/// and encoded once, at load.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptionConfig {
    /// The option code.
    pub code: u16,
    /// The option's data, as sent (without the 4-byte header).
    pub data: Vec<u8>,
    /// `always-send` (default false): sent even to a client whose Option
    /// Request option does not ask for it (RFC 8415 §21.7 otherwise sends
    /// only what is asked for).
    pub always_send: bool,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `name` (required): this server's name; also its TLS identity.
    pub name: String,
    /// `data-dir` (required): server DUID, lease store, failover state.
    /// A relative path is resolved against the config file's directory.
    pub data_dir: PathBuf,
    /// `interfaces` (default none): join ff02::1:2 on these and answer
    /// on-link clients. Unique, non-empty names of at most 15 bytes.
    pub interfaces: Vec<String>,
    /// `listen` (default none): extra unicast sockets, for relayed
    /// traffic: `"[2001:db8::1]:547"`, or `"[2001:db8::1]"` for port 547.
    /// IPv6 only. At least one of `interfaces` and `listen` is non-empty.
    pub listen: Vec<SocketAddr>,
    /// `queue-size` (default 4096): datagrams the bounded receive queue
    /// holds — the sockets' receive buffers, sized at 1 KiB per datagram;
    /// datagrams beyond it are dropped by the kernel and counted
    /// (`counters.socket-drops`).
    pub queue_size: usize,
    /// `batch-max` (default 256): most datagrams read and processed in one
    /// round of the processing loop; after each round the server commits
    /// what is due and answers. A larger round groups more replies into one
    /// fdatasync under load, at the cost of latency for the first of them.
    pub batch_max: usize,
    /// `commit-window-us` (default 0): after the first request of a batch,
    /// how long the store writer waits for more before it commits — fewer
    /// fsyncs under load, at the cost of that much reply latency.
    pub commit_window: Duration,
    /// `send-rate` (default 40000): datagrams per second that leave for
    /// clients and relays once `send-burst` of them left back to back; the
    /// rest wait in a bounded queue (`queue-size`) for their turn. It
    /// spreads the burst of answers that follows a stalled fdatasync, which
    /// would otherwise overflow the receiving socket. 0: no pacing.
    pub send_rate: u32,
    /// `send-burst` (default 64, 1–65536): datagrams that may leave back
    /// to back.
    pub send_burst: u32,
    /// `kernel-filter` (default true): on interfaces where this server
    /// answers only messages addressed to it (a secondary in NORMAL), a
    /// socket filter discards in the kernel the client messages that could
    /// get no answer, so the server does not wake up for them. They are
    /// then not counted under `dropped`.
    pub kernel_filter: bool,
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// `socket` (default `<data-dir>/control.sock`): the Unix socket `duet
    /// ctl` talks to. Relative paths are resolved against the config
    /// file's directory.
    pub socket: PathBuf,
}

/// One `[[subnet]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetConfig {
    /// `prefix` (required): the link's prefix.
    pub prefix: Ipv6Prefix,
    /// `interface` (optional): the link whose on-link clients belong here;
    /// one of `server.interfaces`, and no two subnets name the same one.
    /// Relayed traffic is matched by the relay's link-address instead.
    pub interface: Option<String>,
    /// `pools` (default none): address ranges `"START-END"`, inclusive,
    /// inside `prefix`.
    pub pools: Vec<AddressRange>,
    /// `pd-pools` (default none): prefixes to delegate (RFC 8415 §6.3).
    pub pd_pools: Vec<PdPoolConfig>,
    /// `preferred-lifetime` (default 3000 s), at most `valid-lifetime`.
    pub preferred_lifetime: Duration,
    /// `valid-lifetime` (default 4000 s), above zero; at least 30 s when
    /// the subnet is under failover.
    pub valid_lifetime: Duration,
    /// `renew-time`, T1 (default 1000 s; 0 leaves it to the client).
    pub renew_time: Duration,
    /// `rebind-time`, T2 (default 2000 s; 0 leaves it to the client).
    /// T1 <= T2 when both are non-zero; neither exceeds the valid lifetime.
    pub rebind_time: Duration,
    /// `dns-servers` (default none): OPTION_DNS_SERVERS (RFC 3646 §3).
    pub dns_servers: Vec<Ipv6Addr>,
    /// `domain-search` (default none): OPTION_DOMAIN_LIST (RFC 3646 §4),
    /// as dotted names without the trailing dot.
    pub domain_search: Vec<String>,
    /// `failover` (optional): the relationship whose partners share this
    /// subnet's pools; always names one of [`Config::failover`].
    pub failover: Option<String>,
    /// `preference` (default 0): the Preference option value (RFC 8415
    /// §21.8); 0 means none is sent.
    pub preference: u8,
    /// `rapid-commit` (default false): answer a Solicit carrying Rapid
    /// Commit with a Reply (RFC 8415 §21.14).
    pub rapid_commit: bool,
    /// `options` (default none): the subnet's own options; they win over
    /// the top-level ones with the same code.
    pub options: Vec<OptionConfig>,
    /// `reservations` (default none): host reservations. Their addresses
    /// and prefixes are unique in the whole configuration, each inside one
    /// of this subnet's pools (never handed to another client).
    pub reservations: Vec<ReservationConfig>,
    /// `interface-id` (optional): relayed messages whose relay closest to
    /// the client adds this Interface-Id (RFC 8415 §21.18) belong to this
    /// subnet, whatever their link-address. Written as text (its bytes) or
    /// `{ hex = "03000000" }`. Unique.
    pub interface_id: Option<Vec<u8>>,
}

/// How a reservation recognises its client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientIdentifier {
    /// `duid`: the client's DUID (OPTION_CLIENTID), bytes.
    Duid(Vec<u8>),
    /// `hw-address`: the client's link-layer address, from a DUID-LLT or
    /// DUID-LL (RFC 8415 §11.2, §11.4) or from the Client Link-Layer
    /// Address option a relay adds (RFC 6939).
    HwAddress(Vec<u8>),
}

impl fmt::Display for ClientIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, bytes) = match self {
            ClientIdentifier::Duid(b) => ("duid", b),
            ClientIdentifier::HwAddress(b) => ("hw-address", b),
        };
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "{name} {}", hex.join(":"))
    }
}

/// One entry of `subnet.reservations`: a client and what it always gets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReservationConfig {
    /// `duid` or `hw-address` (exactly one).
    pub client: ClientIdentifier,
    /// `addresses` (default none): one per IA_NA the client asks for, in
    /// order.
    pub addresses: Vec<Ipv6Addr>,
    /// `prefixes` (default none): one per IA_PD, in order; each a
    /// delegable prefix of one of the subnet's `pd-pools`.
    pub prefixes: Vec<Ipv6Prefix>,
    /// `options` (default none): win over the subnet's and the top-level
    /// ones.
    pub options: Vec<OptionConfig>,
}

/// An inclusive range of addresses, written `"START-END"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressRange {
    /// First address.
    pub start: Ipv6Addr,
    /// Last address (inclusive), never before `start`.
    pub end: Ipv6Addr,
}

/// One entry of `subnet.pd-pools`: `prefix` cut into prefixes of
/// `delegated-length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PdPoolConfig {
    /// `prefix` (required): the prefix delegated prefixes come from.
    pub prefix: Ipv6Prefix,
    /// `delegated-length` (required): length of each delegated prefix,
    /// from `prefix`'s length to 128.
    pub delegated_length: u8,
}

/// A server's role in a failover relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `"primary"`: connects to the secondary.
    Primary,
    /// `"secondary"`: listens for the primary.
    Secondary,
}

/// One `[[failover]]` relationship between this server and its partner.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipConfig {
    /// `name` (required): the relationship name, the same on both partners.
    pub name: String,
    /// `role` (required): `"primary"` or `"secondary"`.
    pub role: Role,
    /// `listen` (required): local address for the partner link,
    /// `"[2001:db8:ff::1]:647"` (port defaults to 647).
    pub listen: SocketAddr,
    /// `peer` (required): the partner's address (port defaults to 647).
    pub peer: SocketAddr,
    /// `mclt` (default 3600 s, at least 30 s): Maximum Client Lead Time
    /// (RFC 8156 §5.5.6).
    pub mclt: Duration,
    /// `max-unacked-bndupd` (default 100, at least 1): BNDUPDs sent and
    /// not yet acknowledged, at most.
    pub max_unacked_bndupd: u32,
    /// `auto-partner-down` (default 0 = `None`): in
    /// COMMUNICATIONS-INTERRUPTED, the server moves to PARTNER-DOWN by
    /// itself once nothing has been heard from the partner for this long
    /// (a message or a connection attempt), and never while the partner
    /// is being refused (docs/failover.md, "automatic partner-down").
    pub auto_partner_down: Option<Duration>,
    /// `prefix-split` (default 0.5, 0 to 1): share of the delegable
    /// prefixes the secondary holds.
    pub prefix_split: f64,
    /// `tls` (required unless `insecure = true`): the partner link's TLS.
    pub tls: Option<TlsConfig>,
    /// `insecure` (default false): the partner link runs without TLS;
    /// only allowed when `tls` is absent.
    pub insecure: bool,
    /// `keepalive` (default 8 s, at least 1 s): longest silence from the
    /// partner before communications are declared lost
    /// (OPTION_F_KEEPALIVE_TIME, RFC 8156 §5.5.12).
    pub keepalive: Duration,
    /// `rescue-after` (default 5 s, 0 = `None`, at most 655 s): a
    /// secondary in NORMAL also answers a Solicit or Rebind whose Elapsed
    /// Time is at least this (RFC 7031 §4.7).
    pub rescue_after: Option<Duration>,
    /// `handover-on-stop` (default false): SIGTERM hands the clients over
    /// to the partner first.
    pub handover_on_stop: bool,
}

/// `failover.tls`: the partner link's TLS material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `cert`: this server's certificate chain (PEM).
    pub cert: PathBuf,
    /// `key`: this server's private key (PEM).
    pub key: PathBuf,
    /// `ca`: the CA the partner's certificate must chain to (PEM).
    pub ca: PathBuf,
    /// `peer-name`: the name the partner's certificate must carry.
    pub peer_name: String,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Where: a key path (`subnet[0].pools[1]`, `failover[0].mclt`), or
    /// `line L, column C` for a TOML syntax error, or the file's path when
    /// it cannot be read.
    pub path: String,
    /// What is wrong, for an operator.
    pub message: String,
}

/// Every problem found in a config file, in file order; never empty when
/// returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ConfigError::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigErrors {
    /// The error at exactly `path`, if any (handy in tests and tools).
    pub fn at(&self, path: &str) -> Option<&ConfigError> {
        self.0.iter().find(|e| e.path == path)
    }
}

impl Config {
    /// Parses and validates a config. Relative paths (`data-dir`,
    /// `control.socket`, TLS files) are resolved against `base_dir`.
    /// Returns every error found, not just the first.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let mut errors = document::Errors::default();
        let Some((sections, positions)) = document::parse(text, &mut errors) else {
            return Err(ConfigErrors(errors.into_sorted(&document::Positions::default())));
        };
        let config = validate::validate(sections, base_dir, &mut errors);
        match config {
            Some(c) if errors.is_empty() => Ok(c),
            _ => {
                let list = errors.into_sorted(&positions);
                if list.is_empty() {
                    // Validation built nothing yet reported nothing: a bug
                    // here, but say so rather than accept a broken config.
                    return Err(ConfigErrors(vec![ConfigError {
                        path: "config".to_string(),
                        message: "internal error: validation failed without a reason".to_string(),
                    }]));
                }
                Err(ConfigErrors(list))
            }
        }
    }

    /// Reads the file at `path` and calls [`Config::from_toml_str`] with the
    /// file's directory (made absolute) as the base for relative paths.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                path: path.display().to_string(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Config::from_toml_str(&text, &dir)
    }

    /// The relationship called `name`.
    pub fn relationship(&self, name: &str) -> Option<&RelationshipConfig> {
        self.failover.iter().find(|r| r.name == name)
    }

    /// The relationship that shares `subnet`, if it is under failover.
    pub fn relationship_of(&self, subnet: &SubnetConfig) -> Option<&RelationshipConfig> {
        subnet.failover.as_deref().and_then(|n| self.relationship(n))
    }

    /// The subnets shared through the relationship called `name`.
    pub fn subnets_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a SubnetConfig> + 'a {
        self.subnets
            .iter()
            .filter(move |s| s.failover.as_deref() == Some(name))
    }

    /// The subnet serving on-link clients of interface `name`.
    pub fn subnet_for_interface(&self, name: &str) -> Option<&SubnetConfig> {
        self.subnets.iter().find(|s| s.interface.as_deref() == Some(name))
    }

    /// The subnet whose prefix contains `addr` (for relayed traffic: the
    /// relay's link-address).
    pub fn subnet_containing(&self, addr: Ipv6Addr) -> Option<&SubnetConfig> {
        self.subnets.iter().find(|s| s.prefix.contains(addr))
    }
}

impl SubnetConfig {
    /// The pool holding `addr`, if any.
    pub fn pool_containing(&self, addr: Ipv6Addr) -> Option<&AddressRange> {
        self.pools.iter().find(|p| p.contains(addr))
    }

    /// The pd-pool whose prefix covers `prefix`, if any.
    pub fn pd_pool_covering(&self, prefix: &Ipv6Prefix) -> Option<&PdPoolConfig> {
        self.pd_pools.iter().find(|p| p.prefix.covers(prefix))
    }
}

impl AddressRange {
    /// Number of addresses in the range (at least 1; `::-ffff:…:ffff`
    /// saturates at `u128::MAX`).
    pub fn len(&self) -> u128 {
        u128::from(self.end)
            .saturating_sub(u128::from(self.start))
            .saturating_add(1)
    }

    /// Always false: a range holds at least its start.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `addr` lies in the range.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        self.start <= addr && addr <= self.end
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &AddressRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Why an address range did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressRangeError {
    /// Not of the form `START-END`.
    #[error("`{0}` is not an address range (expected START-END, e.g. 2001:db8:1::100-2001:db8:1::1ff)")]
    Syntax(String),
    /// One side is not an IPv6 address.
    #[error("`{0}` is not an IPv6 address")]
    BadAddress(String),
    /// `END` comes before `START`.
    #[error("end before start")]
    EndBeforeStart,
}

impl FromStr for AddressRange {
    type Err = AddressRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| AddressRangeError::Syntax(s.to_string()))?;
        let (a, b) = (a.trim(), b.trim());
        let start: Ipv6Addr = a
            .parse()
            .map_err(|_| AddressRangeError::BadAddress(a.to_string()))?;
        let end: Ipv6Addr = b
            .parse()
            .map_err(|_| AddressRangeError::BadAddress(b.to_string()))?;
        if end < start {
            return Err(AddressRangeError::EndBeforeStart);
        }
        Ok(AddressRange { start, end })
    }
}

impl PdPoolConfig {
    /// Number of prefixes of `delegated_length` in the pool (saturating at
    /// `u128::MAX` for `::/0` cut into /128s).
    pub fn prefix_count(&self) -> u128 {
        let bits = u32::from(self.delegated_length.saturating_sub(self.prefix.len()));
        1u128.checked_shl(bits).unwrap_or(u128::MAX)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        })
    }
}

/// A role other than `primary` or `secondary`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role (expected `primary` or `secondary`)")]
pub struct RoleError(pub String);

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "primary" => Ok(Role::Primary),
            "secondary" => Ok(Role::Secondary),
            other => Err(RoleError(other.to_string())),
        }
    }
}
