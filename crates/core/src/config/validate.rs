//! Wire structs → typed [`Config`], recording every problem with its key
//! path.
//!
//! Each section is first checked on its own into a *draft* whose unusable
//! fields are `None` (their errors recorded); the cross-section rules
//! (overlaps, references, interfaces) then run over whatever parsed, so one
//! bad value does not hide unrelated mistakes. The final [`Config`] is built
//! only when nothing was recorded.

use super::document::{Errors, Sections};
use super::wire::{ControlWire, FailoverWire, OptionWire, PdPoolWire, Secs, ServerWire, SubnetWire, TlsWire};
use super::{
    AddressRange, Config, ControlConfig, OptionConfig, PdPoolConfig, RelationshipConfig, ReservationConfig,
    Role, ServerConfig, SubnetConfig, TlsConfig, DEFAULT_BATCH_MAX, DEFAULT_COMMIT_WINDOW, DEFAULT_KEEPALIVE,
    DEFAULT_MAX_UNACKED_BNDUPD, DEFAULT_MCLT, DEFAULT_PREFERRED_LIFETIME, DEFAULT_PREFIX_SPLIT,
    DEFAULT_QUEUE_SIZE, DEFAULT_REBIND_TIME, DEFAULT_RENEW_TIME, DEFAULT_RESCUE_AFTER, DEFAULT_SEND_BURST,
    DEFAULT_SEND_RATE, DEFAULT_VALID_LIFETIME, DHCP_SERVER_PORT, FAILOVER_PORT, MAX_RESCUE_AFTER,
    MIN_FAILOVER_LIFETIME,
};
use crate::net::Ipv6Prefix;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest finite DHCPv6 lifetime; 0xffffffff means infinity (RFC 8415
/// §7.7), which duet does not hand out.
const MAX_LIFETIME: u64 = 0xffff_fffe;
/// Longest Linux interface name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// Longest Unix socket path (sun_path less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Validates decoded sections into a [`Config`]; `None` when anything was
/// recorded in `e` (by this or by decoding).
pub(super) fn validate(s: Sections, base: &Path, e: &mut Errors) -> Option<Config> {
    let server = match (&s.server, s.server_present) {
        (Some(w), _) => Some(server(w, base, e)),
        (None, false) => {
            e.push(
                "server",
                "missing: add a [server] table with at least name and data-dir",
            );
            None
        }
        // Present but unusable: already reported.
        (None, true) => None,
    };
    let control = control(s.control.as_ref(), server.as_ref(), base, e);
    let rels: Vec<Option<RelDraft>> = s
        .failover
        .iter()
        .enumerate()
        .map(|(i, w)| {
            w.as_ref()
                .map(|w| relationship(&format!("failover[{i}]"), w, base, e))
        })
        .collect();
    let subnets: Vec<Option<SubnetDraft>> = s
        .subnets
        .iter()
        .enumerate()
        .map(|(i, w)| w.as_ref().map(|w| subnet(&format!("subnet[{i}]"), w, e)))
        .collect();
    if !s.subnet_present {
        e.push(
            "subnet",
            "no [[subnet]]: a server without subnets has nothing to offer",
        );
    }

    let options = super::options::options("options", &s.options, e);

    let reserved: Vec<(String, &ReservationConfig)> = subnets
        .iter()
        .flatten()
        .flat_map(|d| {
            d.reservations
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("{}.reservations[{i}]", d.path), r))
        })
        .collect();
    super::reservations::check_unique(&reserved, e);
    check_subnet_overlaps(&subnets, e);
    check_pool_overlaps(&subnets, e);
    check_pd_pool_overlaps(&subnets, e);
    check_interfaces(&subnets, server.as_ref(), e);
    check_interface_ids(&subnets, e);
    check_relationships(&subnets, &rels, server.as_ref(), e);

    if !e.is_empty() {
        return None;
    }
    Some(Config {
        server: server?.finish()?,
        control: control?,
        subnets: subnets
            .into_iter()
            .map(|d| d?.finish())
            .collect::<Option<Vec<_>>>()?,
        failover: rels
            .into_iter()
            .map(|d| d?.finish())
            .collect::<Option<Vec<_>>>()?,
        options,
    })
}

// ---------------------------------------------------------------- helpers

/// `v`, or an error "required" at `path` (unless the key was there with a
/// value already reported as unusable).
fn required<'a, T>(e: &mut Errors, path: &str, v: Option<&'a T>) -> Option<&'a T> {
    if v.is_none() && !e.was_removed(path) {
        e.push(path, "required key is missing");
    }
    v
}

/// A required, non-empty string.
fn required_text(e: &mut Errors, path: &str, v: Option<&String>) -> Option<String> {
    let v = required(e, path, v)?;
    if v.trim().is_empty() {
        e.push(path, "must not be empty");
        return None;
    }
    Some(v.clone())
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    base.join(p)
}

/// A duration key with its default; `explicit` says which it was, for
/// messages.
#[derive(Debug, Clone, Copy)]
struct SecsKey {
    value: Duration,
    explicit: bool,
}

impl SecsKey {
    fn new(v: Option<Secs>, default: Duration) -> SecsKey {
        match v {
            Some(Secs(s)) => SecsKey {
                value: Duration::from_secs(s),
                explicit: true,
            },
            None => SecsKey {
                value: default,
                explicit: false,
            },
        }
    }

    fn secs(self) -> u64 {
        self.value.as_secs()
    }

    /// "600 s", or "3000 s (the default)".
    fn shown(self) -> String {
        if self.explicit {
            format!("{} s", self.secs())
        } else {
            format!("{} s (the default)", self.secs())
        }
    }
}

/// An IPv6 socket address: `[ADDR]:PORT`, `[ADDR]` or `ADDR` (the last two
/// with `default_port`).
fn socket(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    let parsed = if let Ok(sa) = text.parse::<SocketAddrV6>() {
        Some(sa)
    } else if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| SocketAddrV6::new(a, default_port, 0, 0))
    } else {
        text.parse::<Ipv6Addr>()
            .ok()
            .map(|a| SocketAddrV6::new(a, default_port, 0, 0))
    };
    let Some(sa) = parsed else {
        if text.parse::<SocketAddrV4>().is_ok() || text.parse::<Ipv4Addr>().is_ok() {
            return Err(format!(
                "`{text}` is an IPv4 address; duet speaks DHCPv6 only (e.g. [2001:db8::1]:{default_port})"
            ));
        }
        return Err(format!(
            "`{text}` is not an IPv6 socket address (expected [ADDRESS]:PORT, e.g. [2001:db8::1]:{default_port})"
        ));
    };
    if sa.port() == 0 {
        return Err(format!("`{text}`: port 0 is not a port one can reach"));
    }
    if sa.ip().is_multicast() {
        return Err(format!("`{text}` is a multicast address"));
    }
    Ok(SocketAddr::V6(sa))
}

fn interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty interface name".to_string());
    }
    if name.len() > MAX_IFNAME {
        return Err(format!(
            "`{name}` is longer than {MAX_IFNAME} bytes, the longest interface name"
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "`{name}` is not an interface name (no `/`, spaces or control characters)"
        ));
    }
    Ok(())
}

/// A domain name for the search list: labels of 1..=63 letters, digits,
/// `-` or `_` (not starting or ending with `-`), at most 253 characters;
/// returned without a trailing dot.
pub(super) fn domain_name(name: &str) -> Result<String, String> {
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Err("empty domain name".to_string());
    }
    if body.len() > 253 {
        return Err(format!("`{name}` is longer than 253 characters"));
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err(format!("`{name}` has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!("`{name}`: label `{label}` is longer than 63 characters"));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "`{name}`: label `{label}` may hold only letters, digits, `-` and `_`"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("`{name}`: label `{label}` starts or ends with `-`"));
        }
    }
    Ok(body.to_string())
}

fn count(e: &mut Errors, path: &str, v: Option<u64>, default: usize) -> usize {
    let Some(v) = v else { return default };
    match usize::try_from(v) {
        Ok(0) => {
            e.push(path, "must be at least 1");
            default
        }
        Ok(n) => n,
        Err(_) => {
            e.push(path, format!("{v} is too large"));
            default
        }
    }
}

// ---------------------------------------------------------------- [server]

#[derive(Debug)]
struct ServerDraft {
    name: Option<String>,
    data_dir: Option<PathBuf>,
    interfaces: Vec<String>,
    listen: Vec<SocketAddr>,
    queue_size: usize,
    batch_max: usize,
    commit_window: std::time::Duration,
    send_rate: u32,
    send_burst: u32,
    kernel_filter: bool,
}

impl ServerDraft {
    fn finish(self) -> Option<ServerConfig> {
        Some(ServerConfig {
            name: self.name?,
            data_dir: self.data_dir?,
            interfaces: self.interfaces,
            listen: self.listen,
            queue_size: self.queue_size,
            batch_max: self.batch_max,
            commit_window: self.commit_window,
            send_rate: self.send_rate,
            send_burst: self.send_burst,
            kernel_filter: self.kernel_filter,
        })
    }
}

fn server(w: &ServerWire, base: &Path, e: &mut Errors) -> ServerDraft {
    let name = required_text(e, "server.name", w.name.as_ref());
    if let Some(n) = &name {
        if n.chars().any(|c| c.is_whitespace() || c.is_control()) {
            e.push(
                "server.name",
                format!("`{n}` must not contain spaces or control characters"),
            );
        }
    }
    let data_dir = required_text(e, "server.data-dir", w.data_dir.as_ref()).map(|d| resolve(base, &d));

    let mut interfaces: Vec<String> = Vec::new();
    for (i, name) in w.interfaces.iter().flatten().enumerate() {
        let path = format!("server.interfaces[{i}]");
        if let Err(m) = interface_name(name) {
            e.push(path, m);
        } else if interfaces.contains(name) {
            e.push(path, format!("`{name}` is listed twice"));
        } else {
            interfaces.push(name.clone());
        }
    }

    let mut listen: Vec<SocketAddr> = Vec::new();
    for (i, text) in w.listen.iter().flatten().enumerate() {
        let path = format!("server.listen[{i}]");
        match socket(text, DHCP_SERVER_PORT) {
            Err(m) => e.push(path, m),
            Ok(sa) if listen.contains(&sa) => e.push(path, format!("{sa} is listed twice")),
            Ok(sa) => listen.push(sa),
        }
    }
    let none_given =
        w.interfaces.as_ref().is_none_or(Vec::is_empty) && w.listen.as_ref().is_none_or(Vec::is_empty);
    if none_given && !e.was_removed("server.interfaces") && !e.was_removed("server.listen") {
        e.push(
            "server.interfaces",
            "neither server.interfaces nor server.listen is set: the server would receive nothing",
        );
    }

    ServerDraft {
        name,
        data_dir,
        interfaces,
        listen,
        queue_size: count(e, "server.queue-size", w.queue_size, DEFAULT_QUEUE_SIZE),
        batch_max: count(e, "server.batch-max", w.batch_max, DEFAULT_BATCH_MAX),
        commit_window: match w.commit_window_us {
            None => DEFAULT_COMMIT_WINDOW,
            Some(us) if us <= 100_000 => std::time::Duration::from_micros(us),
            Some(us) => {
                e.push(
                    "server.commit-window-us",
                    format!("{us} µs is more than 100000 (0.1 s): replies would wait too long"),
                );
                DEFAULT_COMMIT_WINDOW
            }
        },
        send_rate: match w.send_rate {
            None => DEFAULT_SEND_RATE,
            Some(r) => u32::try_from(r).unwrap_or_else(|_| {
                e.push(
                    "server.send-rate",
                    format!("{r} datagrams per second is more than {}", u32::MAX),
                );
                DEFAULT_SEND_RATE
            }),
        },
        send_burst: match w.send_burst {
            None => DEFAULT_SEND_BURST,
            Some(b) if (1..=65_536).contains(&b) => b as u32,
            Some(b) => {
                e.push("server.send-burst", format!("{b} is not between 1 and 65536"));
                DEFAULT_SEND_BURST
            }
        },
        kernel_filter: w.kernel_filter.unwrap_or(true),
    }
}

// ---------------------------------------------------------------- [control]

fn control(
    w: Option<&ControlWire>,
    server: Option<&ServerDraft>,
    base: &Path,
    e: &mut Errors,
) -> Option<ControlConfig> {
    let (socket, how) = match w.and_then(|c| c.socket.as_ref()) {
        Some(s) if s.is_empty() => {
            e.push("control.socket", "must not be empty");
            return None;
        }
        Some(s) => (resolve(base, s), "it"),
        None => (
            server?.data_dir.as_ref()?.join("control.sock"),
            "the default, <data-dir>/control.sock,",
        ),
    };
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        e.push(
            "control.socket",
            format!(
                "{} is {len} bytes long, and {how} must fit a Unix socket path (at most {MAX_SOCKET_PATH} bytes)",
                socket.display()
            ),
        );
        return None;
    }
    Some(ControlConfig { socket })
}

// ---------------------------------------------------------------- [[subnet]]

#[derive(Debug)]
struct SubnetDraft {
    path: String,
    prefix: Option<Ipv6Prefix>,
    interface: Option<String>,
    pools: Vec<Option<AddressRange>>,
    pd_pools: Vec<Option<PdPoolConfig>>,
    preferred: SecsKey,
    valid: SecsKey,
    renew: SecsKey,
    rebind: SecsKey,
    dns_servers: Vec<Ipv6Addr>,
    domain_search: Vec<String>,
    failover: Option<String>,
    preference: u8,
    rapid_commit: bool,
    options: Vec<OptionConfig>,
    reservations: Vec<ReservationConfig>,
    interface_id: Option<Vec<u8>>,
}

impl SubnetDraft {
    fn finish(self) -> Option<SubnetConfig> {
        Some(SubnetConfig {
            prefix: self.prefix?,
            interface: self.interface,
            pools: self.pools.into_iter().collect::<Option<Vec<_>>>()?,
            pd_pools: self.pd_pools.into_iter().collect::<Option<Vec<_>>>()?,
            preferred_lifetime: self.preferred.value,
            valid_lifetime: self.valid.value,
            renew_time: self.renew.value,
            rebind_time: self.rebind.value,
            dns_servers: self.dns_servers,
            domain_search: self.domain_search,
            failover: self.failover,
            preference: self.preference,
            rapid_commit: self.rapid_commit,
            options: self.options,
            reservations: self.reservations,
            interface_id: self.interface_id,
        })
    }
}

fn subnet(path: &str, w: &SubnetWire, e: &mut Errors) -> SubnetDraft {
    let prefix_path = format!("{path}.prefix");
    let prefix = required(e, &prefix_path, w.prefix.as_ref()).and_then(|p| match p.parse::<Ipv6Prefix>() {
        Ok(p) => Some(p),
        Err(err) => {
            e.push(&prefix_path, err.to_string());
            None
        }
    });

    let interface = w.interface.as_ref().and_then(|name| match interface_name(name) {
        Ok(()) => Some(name.clone()),
        Err(m) => {
            e.push(format!("{path}.interface"), m);
            None
        }
    });

    let pools: Vec<Option<AddressRange>> = w
        .pools
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, text)| pool(&format!("{path}.pools[{j}]"), text, prefix, e))
        .collect();
    let pd_pools: Vec<Option<PdPoolConfig>> = w
        .pd_pools
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, p)| pd_pool(&format!("{path}.pd-pools[{j}]"), p, e))
        .collect();

    let preferred = SecsKey::new(w.preferred_lifetime, DEFAULT_PREFERRED_LIFETIME);
    let valid = SecsKey::new(w.valid_lifetime, DEFAULT_VALID_LIFETIME);
    let renew = SecsKey::new(w.renew_time, DEFAULT_RENEW_TIME);
    let rebind = SecsKey::new(w.rebind_time, DEFAULT_REBIND_TIME);
    lifetimes(path, preferred, valid, renew, rebind, e);

    let mut dns_servers = Vec::new();
    for (k, text) in w.dns_servers.iter().flatten().enumerate() {
        let p = format!("{path}.dns-servers[{k}]");
        match text.parse::<Ipv6Addr>() {
            Err(_) => e.push(p, format!("`{text}` is not an IPv6 address")),
            Ok(a) if a.is_unspecified() || a.is_multicast() => {
                e.push(p, format!("{a} is not a unicast address"));
            }
            Ok(a) => dns_servers.push(a),
        }
    }
    let mut domain_search = Vec::new();
    for (k, text) in w.domain_search.iter().flatten().enumerate() {
        match domain_name(text) {
            Ok(n) => domain_search.push(n),
            Err(m) => e.push(format!("{path}.domain-search[{k}]"), m),
        }
    }

    let interface_id = w.interface_id.as_ref().and_then(|v| {
        let bytes = match v {
            toml::Value::String(t) => Some(t.as_bytes().to_vec()),
            toml::Value::Table(t) if t.len() == 1 => t
                .get("hex")
                .and_then(toml::Value::as_str)
                .and_then(super::options::hex_bytes),
            _ => None,
        };
        match bytes {
            Some(b) if (1..=255).contains(&b.len()) => Some(b),
            _ => {
                e.push(
                    format!("{path}.interface-id"),
                    "expected 1 to 255 bytes: a text, or { hex = \"03000000\" }",
                );
                None
            }
        }
    });
    let reservations = super::reservations::reservations(
        &format!("{path}.reservations"),
        w.reservations.as_deref().unwrap_or_default(),
        prefix,
        &pools,
        &pd_pools,
        e,
    );
    let list: Vec<Option<OptionWire>> = w.options.iter().flatten().map(|o| Some(o.clone())).collect();
    let options = super::options::options(&format!("{path}.options"), &list, e);
    // The `dns-servers` and `domain-search` keys are the subnet's options
    // 23 and 24 (INTERFACE.md); setting one both ways is ambiguous.
    for (key, c, set) in [
        (
            "dns-servers",
            duet_wire::option::code::DNS_SERVERS,
            w.dns_servers.is_some(),
        ),
        (
            "domain-search",
            duet_wire::option::code::DOMAIN_LIST,
            w.domain_search.is_some(),
        ),
    ] {
        if let Some(i) = options.iter().position(|o| o.code == c).filter(|_| set) {
            e.push(
                format!("{path}.options[{i}]"),
                format!("`{key}` is also set by the subnet's `{key}` key: keep one"),
            );
        }
    }

    let failover = match &w.failover {
        Some(n) if n.trim().is_empty() => {
            e.push(
                format!("{path}.failover"),
                "must not be empty (leave the key out for no failover)",
            );
            None
        }
        other => other.clone(),
    };

    let preference = match w.preference.map(u8::try_from) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            e.push(format!("{path}.preference"), "must be from 0 to 255");
            0
        }
    };

    SubnetDraft {
        path: path.to_string(),
        prefix,
        interface,
        pools,
        pd_pools,
        preferred,
        valid,
        renew,
        rebind,
        dns_servers,
        domain_search,
        failover,
        preference,
        rapid_commit: w.rapid_commit.unwrap_or(false),
        options,
        reservations,
        interface_id,
    }
}

fn pool(path: &str, text: &str, prefix: Option<Ipv6Prefix>, e: &mut Errors) -> Option<AddressRange> {
    let range = match text.parse::<AddressRange>() {
        Ok(r) => r,
        Err(err) => {
            e.push(path, err.to_string());
            return None;
        }
    };
    let Some(prefix) = prefix else { return Some(range) };
    for a in [range.start, range.end] {
        if !prefix.contains(a) {
            e.push(path, format!("{a} is outside subnet prefix {prefix}"));
            return None;
        }
    }
    // RFC 4291 §2.6.1: the all-zero interface identifier is the
    // Subnet-Router anycast address (not on /127 links, RFC 6164).
    if prefix.len() < 127 && range.contains(prefix.addr()) {
        e.push(
            path,
            format!(
                "{range} includes {}, the Subnet-Router anycast address of {prefix} (RFC 4291 §2.6.1)",
                prefix.addr()
            ),
        );
        return None;
    }
    Some(range)
}

fn pd_pool(path: &str, w: &PdPoolWire, e: &mut Errors) -> Option<PdPoolConfig> {
    let prefix_path = format!("{path}.prefix");
    let len_path = format!("{path}.delegated-length");
    let prefix = required(e, &prefix_path, w.prefix.as_ref()).and_then(|p| match p.parse::<Ipv6Prefix>() {
        Ok(p) => Some(p),
        Err(err) => {
            e.push(&prefix_path, err.to_string());
            None
        }
    });
    let len = *required(e, &len_path, w.delegated_length.as_ref())?;
    let len = match u8::try_from(len) {
        Ok(l) if l <= 128 => l,
        _ => {
            e.push(&len_path, format!("{len} is not a prefix length (at most 128)"));
            return None;
        }
    };
    let prefix = prefix?;
    if len < prefix.len() {
        e.push(
            &len_path,
            format!("{len} is shorter than the pool prefix {prefix}: delegated prefixes must fit inside it"),
        );
        return None;
    }
    Some(PdPoolConfig {
        prefix,
        delegated_length: len,
    })
}

fn lifetimes(
    path: &str,
    preferred: SecsKey,
    valid: SecsKey,
    renew: SecsKey,
    rebind: SecsKey,
    e: &mut Errors,
) {
    let keys = [
        ("preferred-lifetime", preferred),
        ("valid-lifetime", valid),
        ("renew-time", renew),
        ("rebind-time", rebind),
    ];
    let mut too_long = false;
    for (key, v) in keys {
        if v.secs() > MAX_LIFETIME {
            e.push(
                format!("{path}.{key}"),
                format!(
                    "{} is above {MAX_LIFETIME} s, the longest finite DHCPv6 lifetime",
                    v.shown()
                ),
            );
            too_long = true;
        }
    }
    if valid.secs() == 0 {
        e.push(format!("{path}.valid-lifetime"), "must be above 0");
    }
    if preferred.secs() == 0 {
        e.push(format!("{path}.preferred-lifetime"), "must be above 0");
    }
    if too_long || valid.secs() == 0 {
        // The comparisons below would only restate the error above.
        return;
    }
    if preferred.value > valid.value {
        e.push(
            format!("{path}.preferred-lifetime"),
            format!(
                "{} is longer than valid-lifetime, {}",
                preferred.shown(),
                valid.shown()
            ),
        );
    }
    // RFC 8415 §21.4: T1 <= T2 unless either is 0 (the client's choice).
    let (t1, t2) = (renew.secs(), rebind.secs());
    if t1 > 0 && t2 > 0 && t1 > t2 {
        e.push(
            format!("{path}.renew-time"),
            format!(
                "T1, {}, is after rebind-time (T2), {}",
                renew.shown(),
                rebind.shown()
            ),
        );
    }
    if t2 > valid.secs() {
        e.push(
            format!("{path}.rebind-time"),
            format!(
                "T2, {}, is after valid-lifetime, {}",
                rebind.shown(),
                valid.shown()
            ),
        );
    } else if t2 == 0 && t1 > valid.secs() {
        e.push(
            format!("{path}.renew-time"),
            format!(
                "T1, {}, is after valid-lifetime, {}",
                renew.shown(),
                valid.shown()
            ),
        );
    }
}

// ---------------------------------------------------------------- [[failover]]

#[derive(Debug)]
struct RelDraft {
    path: String,
    name: Option<String>,
    role: Option<Role>,
    listen: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    mclt: Duration,
    max_unacked_bndupd: u32,
    auto_partner_down: Option<Duration>,
    prefix_split: f64,
    tls: Option<Option<TlsConfig>>,
    insecure: bool,
    keepalive: Duration,
    rescue_after: Option<Duration>,
    handover_on_stop: bool,
}

impl RelDraft {
    fn finish(self) -> Option<RelationshipConfig> {
        Some(RelationshipConfig {
            name: self.name?,
            role: self.role?,
            listen: self.listen?,
            peer: self.peer?,
            mclt: self.mclt,
            max_unacked_bndupd: self.max_unacked_bndupd,
            auto_partner_down: self.auto_partner_down,
            prefix_split: self.prefix_split,
            tls: self.tls?,
            insecure: self.insecure,
            keepalive: self.keepalive,
            rescue_after: self.rescue_after,
            handover_on_stop: self.handover_on_stop,
        })
    }
}

fn relationship(path: &str, w: &FailoverWire, base: &Path, e: &mut Errors) -> RelDraft {
    let name = required_text(e, &format!("{path}.name"), w.name.as_ref());
    let role_path = format!("{path}.role");
    let role = required(e, &role_path, w.role.as_ref()).and_then(|r| match r.parse::<Role>() {
        Ok(r) => Some(r),
        Err(err) => {
            e.push(&role_path, err.to_string());
            None
        }
    });
    let mut address = |key: &str, v: Option<&String>| {
        let p = format!("{path}.{key}");
        required(e, &p, v).and_then(|t| match socket(t, FAILOVER_PORT) {
            Ok(sa) => Some(sa),
            Err(m) => {
                e.push(&p, m);
                None
            }
        })
    };
    let listen = address("listen", w.listen.as_ref());
    let mut peer = address("peer", w.peer.as_ref());
    if let Some(p) = peer {
        if p.ip().is_unspecified() {
            e.push(
                format!("{path}.peer"),
                format!("{p}: the partner needs a real address, not ::"),
            );
            peer = None;
        } else if Some(p) == listen {
            e.push(
                format!("{path}.peer"),
                format!("{p} is also {path}.listen: the partner is another server"),
            );
            peer = None;
        }
    }

    let mclt = SecsKey::new(w.mclt, DEFAULT_MCLT);
    if mclt.value < MIN_FAILOVER_LIFETIME {
        e.push(
            format!("{path}.mclt"),
            format!(
                "{} is below {} s, the shortest MCLT",
                mclt.shown(),
                MIN_FAILOVER_LIFETIME.as_secs()
            ),
        );
    } else if mclt.secs() > u64::from(u32::MAX) {
        e.push(
            format!("{path}.mclt"),
            format!("{} does not fit the protocol's 32 bits", mclt.shown()),
        );
    }

    let max_unacked_bndupd = match w.max_unacked_bndupd.map(u32::try_from) {
        None => DEFAULT_MAX_UNACKED_BNDUPD,
        Some(Ok(0)) => {
            e.push(format!("{path}.max-unacked-bndupd"), "must be at least 1");
            DEFAULT_MAX_UNACKED_BNDUPD
        }
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            e.push(
                format!("{path}.max-unacked-bndupd"),
                format!("must be at most {}", u32::MAX),
            );
            DEFAULT_MAX_UNACKED_BNDUPD
        }
    };

    let auto_partner_down = match w.auto_partner_down {
        None | Some(Secs(0)) => None,
        Some(Secs(s)) => Some(Duration::from_secs(s)),
    };

    let prefix_split = w.prefix_split.unwrap_or(DEFAULT_PREFIX_SPLIT);
    if !(0.0..=1.0).contains(&prefix_split) {
        e.push(
            format!("{path}.prefix-split"),
            format!("{prefix_split} is not between 0 and 1"),
        );
    }

    let keepalive = SecsKey::new(w.keepalive, DEFAULT_KEEPALIVE);
    if keepalive.secs() == 0 {
        e.push(format!("{path}.keepalive"), "must be at least 1 s");
    } else if keepalive.secs() > u64::from(u32::MAX) {
        e.push(
            format!("{path}.keepalive"),
            format!("{} does not fit the protocol's 32 bits", keepalive.shown()),
        );
    }

    let rescue = SecsKey::new(w.rescue_after, DEFAULT_RESCUE_AFTER);
    let rescue_after = match rescue.secs() {
        0 => None,
        s if s > MAX_RESCUE_AFTER.as_secs() => {
            e.push(
                format!("{path}.rescue-after"),
                format!(
                    "{} is beyond {} s, the longest Elapsed Time a client can report (RFC 8415 §21.9); 0 turns rescue off",
                    rescue.shown(),
                    MAX_RESCUE_AFTER.as_secs()
                ),
            );
            None
        }
        _ => Some(rescue.value),
    };

    let insecure = w.insecure.unwrap_or(false);
    let tls_path = format!("{path}.tls");
    let tls = match (&w.tls, insecure) {
        (Some(_), true) => {
            e.push(
                format!("{path}.insecure"),
                "insecure = true and a tls table are both given; choose one",
            );
            None
        }
        (Some(t), false) => tls(&tls_path, t, base, e).map(Some),
        (None, true) => Some(None),
        (None, false) => {
            if !e.was_removed(&tls_path) {
                e.push(
                    &tls_path,
                    "missing: give tls = { cert, key, ca, peer-name }, or insecure = true to run the \
                     partner link without TLS",
                );
            }
            None
        }
    };

    RelDraft {
        path: path.to_string(),
        name,
        role,
        listen,
        peer,
        mclt: mclt.value,
        max_unacked_bndupd,
        auto_partner_down,
        prefix_split,
        tls,
        insecure,
        keepalive: keepalive.value,
        rescue_after,
        handover_on_stop: w.handover_on_stop.unwrap_or(false),
    }
}

fn tls(path: &str, w: &TlsWire, base: &Path, e: &mut Errors) -> Option<TlsConfig> {
    let cert = required_text(e, &format!("{path}.cert"), w.cert.as_ref());
    let key = required_text(e, &format!("{path}.key"), w.key.as_ref());
    let ca = required_text(e, &format!("{path}.ca"), w.ca.as_ref());
    let peer_name = required_text(e, &format!("{path}.peer-name"), w.peer_name.as_ref());
    Some(TlsConfig {
        cert: resolve(base, &cert?),
        key: resolve(base, &key?),
        ca: resolve(base, &ca?),
        peer_name: peer_name?,
    })
}

// ---------------------------------------------------------------- cross-checks

fn check_subnet_overlaps(subnets: &[Option<SubnetDraft>], e: &mut Errors) {
    for (i, s) in subnets.iter().enumerate() {
        let Some((s, p)) = s.as_ref().and_then(|s| Some((s, s.prefix?))) else {
            continue;
        };
        let mut earlier = subnets
            .iter()
            .take(i)
            .flatten()
            .filter_map(|o| Some((o, o.prefix?)));
        if let Some((o, q)) = earlier.find(|(_, q)| q.overlaps(&p)) {
            e.push(
                format!("{}.prefix", s.path),
                format!("{p} overlaps {}.prefix, {q}", o.path),
            );
        }
    }
}

fn check_pool_overlaps(subnets: &[Option<SubnetDraft>], e: &mut Errors) {
    let pools: Vec<(String, AddressRange)> = subnets
        .iter()
        .flatten()
        .flat_map(|s| {
            s.pools
                .iter()
                .enumerate()
                .filter_map(move |(j, r)| Some((format!("{}.pools[{j}]", s.path), (*r)?)))
        })
        .collect();
    for (i, (path, r)) in pools.iter().enumerate() {
        if let Some((other, o)) = pools.iter().take(i).find(|(_, o)| o.overlaps(r)) {
            e.push(path, format!("{r} overlaps {other}, {o}"));
        }
    }
}

fn check_pd_pool_overlaps(subnets: &[Option<SubnetDraft>], e: &mut Errors) {
    let prefixes: Vec<(String, Ipv6Prefix)> = subnets
        .iter()
        .flatten()
        .filter_map(|s| Some((format!("{}.prefix", s.path), s.prefix?)))
        .collect();
    let pools: Vec<(String, Ipv6Prefix)> = subnets
        .iter()
        .flatten()
        .flat_map(|s| {
            s.pd_pools
                .iter()
                .enumerate()
                .filter_map(move |(j, p)| Some((format!("{}.pd-pools[{j}]", s.path), (*p)?.prefix)))
        })
        .collect();
    for (i, (path, p)) in pools.iter().enumerate() {
        if let Some((other, o)) = pools.iter().take(i).find(|(_, o)| o.overlaps(p)) {
            e.push(path, format!("{p} overlaps {other}, {o}"));
        } else if let Some((other, o)) = prefixes.iter().find(|(_, o)| o.overlaps(p)) {
            e.push(
                path,
                format!("{p} overlaps {other}, {o}: delegated prefixes cannot come from a link's prefix"),
            );
        }
    }
}

fn check_interfaces(subnets: &[Option<SubnetDraft>], server: Option<&ServerDraft>, e: &mut Errors) {
    for (i, s) in subnets.iter().enumerate() {
        let Some((s, name)) = s.as_ref().and_then(|s| Some((s, s.interface.as_ref()?))) else {
            continue;
        };
        let path = format!("{}.interface", s.path);
        if let Some(server) = server {
            if !server.interfaces.contains(name) && !e.was_removed("server.interfaces") {
                e.push(
                    &path,
                    format!("`{name}` is not one of server.interfaces {:?}", server.interfaces),
                );
                continue;
            }
        }
        let earlier = subnets
            .iter()
            .take(i)
            .flatten()
            .find(|o| o.interface.as_ref() == Some(name));
        if let Some(o) = earlier {
            e.push(
                &path,
                format!(
                    "`{name}` is already the interface of {}; one subnet per link",
                    o.path
                ),
            );
        }
    }
}

/// Each relay Interface-Id names one subnet.
fn check_interface_ids(subnets: &[Option<SubnetDraft>], e: &mut Errors) {
    for (i, s) in subnets.iter().enumerate() {
        let Some((s, id)) = s.as_ref().and_then(|s| Some((s, s.interface_id.as_ref()?))) else {
            continue;
        };
        if let Some(o) = subnets
            .iter()
            .take(i)
            .flatten()
            .find(|o| o.interface_id.as_ref() == Some(id))
        {
            e.push(
                format!("{}.interface-id", s.path),
                format!(
                    "{} is already the interface-id of {}",
                    String::from_utf8_lossy(id),
                    o.path
                ),
            );
        }
    }
}

fn check_relationships(
    subnets: &[Option<SubnetDraft>],
    rels: &[Option<RelDraft>],
    server: Option<&ServerDraft>,
    e: &mut Errors,
) {
    for (i, r) in rels.iter().enumerate() {
        let Some((r, name)) = r.as_ref().and_then(|r| Some((r, r.name.as_ref()?))) else {
            continue;
        };
        if let Some(o) = rels
            .iter()
            .take(i)
            .flatten()
            .find(|o| o.name.as_ref() == Some(name))
        {
            e.push(
                format!("{}.name", r.path),
                format!("`{name}` is already the name of {}", o.path),
            );
            continue;
        }
        // A subnet that failed to decode may be the user; it is reported.
        let all_subnets = subnets.iter().all(Option::is_some);
        if all_subnets
            && !subnets
                .iter()
                .flatten()
                .any(|s| s.failover.as_ref() == Some(name))
        {
            e.push(
                &r.path,
                format!("no [[subnet]] has failover = \"{name}\": the relationship shares nothing"),
            );
        }
        let own = server.and_then(|s| s.name.as_ref());
        let peer = r.tls.as_ref().and_then(|t| t.as_ref()).map(|t| &t.peer_name);
        if let (Some(own), Some(peer)) = (own, peer) {
            if own == peer {
                e.push(
                    format!("{}.tls.peer-name", r.path),
                    format!("`{peer}` is this server's own name (server.name); give the partner's"),
                );
            }
        }
    }

    let names: Vec<&String> = rels.iter().flatten().filter_map(|r| r.name.as_ref()).collect();
    for s in subnets.iter().flatten() {
        let Some(name) = &s.failover else { continue };
        // A relationship that failed to decode at all may be the one meant;
        // it is reported already, so only complain when all decoded.
        if !names.contains(&name) {
            if rels.iter().all(Option::is_some) && !rels.iter().flatten().any(|r| r.name.is_none()) {
                let known = if names.is_empty() {
                    "there is no [[failover]]".to_string()
                } else {
                    format!(
                        "known: {}",
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                e.push(
                    format!("{}.failover", s.path),
                    format!("no [[failover]] named `{name}` ({known})"),
                );
            }
            continue;
        }
        if s.valid.value < MIN_FAILOVER_LIFETIME {
            e.push(
                format!("{}.valid-lifetime", s.path),
                format!(
                    "{} is below {} s, the shortest lease a subnet under failover may give",
                    s.valid.shown(),
                    MIN_FAILOVER_LIFETIME.as_secs()
                ),
            );
        }
    }
}
