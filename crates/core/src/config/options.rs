//! Configured DHCPv6 options (`[[options]]` at the top level, in a subnet
//! and in a reservation): named standard options with typed values, or any
//! option by code with its value as hex, text or a list of addresses. Each
//! is validated and encoded once, here, to the bytes sent (RFC 8415 §21).

use super::document::Errors;
use super::validate::domain_name;
use super::wire::OptionWire;
use super::OptionConfig;
use duet_wire::option::code;
use duet_wire::DomainName;
use std::collections::HashMap;
use std::net::Ipv6Addr;

/// OPTION_SNTP_SERVERS (RFC 4075).
pub const SNTP_SERVERS: u16 = 31;
/// OPTION_NTP_SERVER (RFC 5908).
pub const NTP_SERVER: u16 = 56;
/// OPTION_AFTR_NAME (RFC 6334).
pub const AFTR_NAME: u16 = 64;

/// How a named option's `value` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An array of unicast IPv6 addresses.
    Addresses,
    /// An array of domain names (RFC 8415 §10, uncompressed).
    Names,
    /// One domain name.
    Name,
    /// A number of seconds within the bounds.
    Seconds(u32, u32),
    /// RFC 5908 sub-options: `{ address = … }`, `{ multicast = … }`,
    /// `{ fqdn = … }`.
    Ntp,
    /// `enterprise` and an array of `{ code, hex | text | addresses }`
    /// (RFC 8415 §21.17).
    Vendor,
}

/// The named options: name, code, how the value is written.
const NAMED: &[(&str, u16, Kind)] = &[
    ("vendor-opts", code::VENDOR_OPTS, Kind::Vendor),
    ("dns-servers", code::DNS_SERVERS, Kind::Addresses),
    ("domain-search", code::DOMAIN_LIST, Kind::Names),
    ("sntp-servers", SNTP_SERVERS, Kind::Addresses),
    // RFC 8415 §21.23: never below IRT_MINIMUM (600 s).
    (
        "information-refresh-time",
        code::INFORMATION_REFRESH_TIME,
        Kind::Seconds(600, u32::MAX),
    ),
    ("ntp-server", NTP_SERVER, Kind::Ntp),
    ("aftr-name", AFTR_NAME, Kind::Name),
    // RFC 8415 §21.24, §21.25: 60 to 86400 s.
    ("sol-max-rt", code::SOL_MAX_RT, Kind::Seconds(60, 86_400)),
    ("inf-max-rt", code::INF_MAX_RT, Kind::Seconds(60, 86_400)),
];

/// Codes the server sets itself (identifiers, IAs, status, relay and
/// failover options): configuring one would break the exchange.
fn server_managed(c: u16) -> Option<&'static str> {
    Some(match c {
        0 => "0 is not an option code",
        code::CLIENTID | code::SERVERID => "the server sets the DUIDs itself",
        code::IA_NA | code::IA_TA | code::IAADDR | code::IA_PD | code::IAPREFIX => {
            "leases are given by the pools and reservations"
        }
        code::ORO | code::ELAPSED_TIME | code::USER_CLASS | code::VENDOR_CLASS | code::RECONF_ACCEPT => {
            "it is a client's option"
        }
        code::PREFERENCE => "use the subnet's `preference` key",
        code::RAPID_COMMIT => "use the subnet's `rapid-commit` key",
        code::RELAY_MSG | code::INTERFACE_ID => "it is a relay's option",
        code::AUTH | code::RECONF_MSG | code::STATUS_CODE | code::UNICAST | code::CLIENT_FQDN => {
            "the server does not send it from configuration"
        }
        code::CLIENT_DATA | code::CLT_TIME | code::LQ_RELAY_DATA | code::LQ_BASE_TIME | code::VSS => {
            "it belongs to leasequery / failover messages"
        }
        114..=134 => "it is a failover option (RFC 8156)",
        _ => return None,
    })
}

/// The name of a named option, for messages and status.
pub fn option_name(c: u16) -> Option<&'static str> {
    NAMED.iter().find(|(_, k, _)| *k == c).map(|(n, _, _)| *n)
}

/// Validates one level's `options` array (`path` is the array's key path,
/// `subnet[0].options`). Entries with errors are left out; a code set twice
/// at one level is an error at the second.
pub(super) fn options(path: &str, list: &[Option<OptionWire>], e: &mut Errors) -> Vec<OptionConfig> {
    let mut out: Vec<OptionConfig> = Vec::new();
    let mut first: HashMap<u16, usize> = HashMap::new();
    for (i, w) in list.iter().enumerate() {
        let Some(w) = w else { continue };
        let p = format!("{path}[{i}]");
        let Some(o) = option(&p, w, e) else { continue };
        if let Some(j) = first.get(&o.code) {
            e.push(
                p,
                format!("option {} is already set at {path}[{j}]", describe(o.code)),
            );
            continue;
        }
        first.insert(o.code, i);
        out.push(o);
    }
    out
}

fn describe(c: u16) -> String {
    match option_name(c) {
        Some(n) => format!("{c} ({n})"),
        None => c.to_string(),
    }
}

fn option(path: &str, w: &OptionWire, e: &mut Errors) -> Option<OptionConfig> {
    let always_send = w.always_send.unwrap_or(false);
    let (c, data) = match (&w.name, w.code) {
        (Some(_), Some(_)) => {
            e.push(
                path,
                "give `name` (a standard option) or `code` (any option), not both",
            );
            return None;
        }
        (None, None) => {
            e.push(
                format!("{path}.name"),
                "missing: `name` (a standard option) or `code` (any option)",
            );
            return None;
        }
        (Some(name), None) => {
            let Some(&(_, c, kind)) = NAMED.iter().find(|(n, _, _)| n == name) else {
                let known: Vec<&str> = NAMED.iter().map(|(n, _, _)| *n).collect();
                e.push(
                    format!("{path}.name"),
                    format!(
                        "unknown option `{name}`; known: {}; any other by `code` with `hex`, `text` or `addresses`",
                        known.join(", ")
                    ),
                );
                return None;
            };
            for (key, set) in [
                ("hex", w.hex.is_some()),
                ("text", w.text.is_some()),
                ("addresses", w.addresses.is_some()),
            ] {
                if set {
                    e.push(
                        format!("{path}.{key}"),
                        format!("`{name}` takes `value`, not `{key}`"),
                    );
                }
            }
            if w.enterprise.is_some() && kind != Kind::Vendor {
                e.push(
                    format!("{path}.enterprise"),
                    "only `vendor-opts` takes `enterprise`",
                );
            }
            (c, named_value(path, name, kind, w, e)?)
        }
        (None, Some(c)) => {
            let Some(c) = u16::try_from(c).ok() else {
                e.push(format!("{path}.code"), "must be from 1 to 65535");
                return None;
            };
            if let Some(why) = server_managed(c) {
                e.push(
                    format!("{path}.code"),
                    format!("option {c} cannot be configured: {why}"),
                );
                return None;
            }
            if let Some(n) = option_name(c) {
                e.push(
                    format!("{path}.code"),
                    format!("option {c} has a name: write name = \"{n}\" with its `value`"),
                );
                return None;
            }
            if w.value.is_some() {
                e.push(
                    format!("{path}.value"),
                    "an option by `code` takes `hex`, `text` or `addresses`",
                );
                return None;
            }
            if w.enterprise.is_some() {
                e.push(
                    format!("{path}.enterprise"),
                    "only `vendor-opts` takes `enterprise`",
                );
                return None;
            }
            (
                c,
                raw_value(
                    path,
                    w.hex.as_deref(),
                    w.text.as_deref(),
                    w.addresses.as_deref(),
                    e,
                )?,
            )
        }
    };
    if data.len() > usize::from(u16::MAX) {
        e.push(
            path,
            format!("the value is {} bytes; an option holds at most 65535", data.len()),
        );
        return None;
    }
    Some(OptionConfig {
        code: c,
        data,
        always_send,
    })
}

fn named_value(path: &str, name: &str, kind: Kind, w: &OptionWire, e: &mut Errors) -> Option<Vec<u8>> {
    let vp = format!("{path}.value");
    let Some(v) = &w.value else {
        e.push(
            &vp,
            format!("missing: `{name}` needs a value ({})", expected(kind)),
        );
        return None;
    };
    let mut data = Vec::new();
    match kind {
        Kind::Addresses => {
            for (k, a) in array(&vp, v, kind, e)?.iter().enumerate() {
                data.extend_from_slice(&unicast(&format!("{vp}[{k}]"), a.as_str(), e)?.octets());
            }
        }
        Kind::Names => {
            for (k, n) in array(&vp, v, kind, e)?.iter().enumerate() {
                data.extend_from_slice(&name_wire(&format!("{vp}[{k}]"), n.as_str(), e)?);
            }
        }
        Kind::Name => data = name_wire(&vp, v.as_str(), e)?,
        Kind::Seconds(lo, hi) => {
            let n = v.as_integer().and_then(|n| u32::try_from(n).ok());
            match n {
                Some(n) if (lo..=hi).contains(&n) => data.extend_from_slice(&n.to_be_bytes()),
                _ if hi == u32::MAX => {
                    e.push(&vp, format!("must be a whole number of seconds, at least {lo}"));
                    return None;
                }
                _ => {
                    e.push(
                        &vp,
                        format!("must be a whole number of seconds from {lo} to {hi}"),
                    );
                    return None;
                }
            }
        }
        Kind::Ntp => {
            for (k, sub) in array(&vp, v, kind, e)?.iter().enumerate() {
                let sp = format!("{vp}[{k}]");
                let (sub_code, bytes) = ntp_suboption(&sp, sub, e)?;
                push_sub(&mut data, sub_code, &bytes);
            }
        }
        Kind::Vendor => {
            let Some(ent) = w.enterprise.and_then(|n| u32::try_from(n).ok()) else {
                e.push(
                    format!("{path}.enterprise"),
                    "missing or not a 32-bit number: the vendor's IANA enterprise number",
                );
                return None;
            };
            data.extend_from_slice(&ent.to_be_bytes());
            for (k, sub) in array(&vp, v, kind, e)?.iter().enumerate() {
                let sp = format!("{vp}[{k}]");
                let Some(t) = sub.as_table() else {
                    e.push(&sp, "expected a table `{ code = N, hex | text | addresses = … }`");
                    return None;
                };
                let sub_code = t
                    .get("code")
                    .and_then(|c| c.as_integer())
                    .and_then(|c| u16::try_from(c).ok());
                let Some(sub_code) = sub_code else {
                    e.push(format!("{sp}.code"), "missing or not from 0 to 65535");
                    return None;
                };
                if let Some(k) = t
                    .keys()
                    .find(|k| !matches!(k.as_str(), "code" | "hex" | "text" | "addresses"))
                {
                    e.push(
                        format!("{sp}.{k}"),
                        "unknown key; expected `code`, `hex`, `text` or `addresses`",
                    );
                    return None;
                }
                let addrs: Option<Vec<String>> = match t.get("addresses") {
                    None => None,
                    Some(a) => Some(
                        a.as_array()
                            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                            .filter(|x: &Vec<String>| x.len() == a.as_array().map_or(0, Vec::len))
                            .or_else(|| {
                                e.push(format!("{sp}.addresses"), "expected an array of IPv6 addresses");
                                None
                            })?,
                    ),
                };
                let bytes = raw_value(
                    &sp,
                    t.get("hex").and_then(|x| x.as_str()),
                    t.get("text").and_then(|x| x.as_str()),
                    addrs.as_deref(),
                    e,
                )?;
                push_sub(&mut data, sub_code, &bytes);
            }
        }
    }
    Some(data)
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Addresses => "an array of IPv6 addresses",
        Kind::Names => "an array of domain names",
        Kind::Name => "a domain name",
        Kind::Seconds(..) => "a number of seconds",
        Kind::Ntp => "an array of `{ address = … }`, `{ multicast = … }` or `{ fqdn = … }`",
        Kind::Vendor => "an array of `{ code = N, hex | text | addresses = … }`",
    }
}

fn array<'v>(path: &str, v: &'v toml::Value, kind: Kind, e: &mut Errors) -> Option<&'v Vec<toml::Value>> {
    match v.as_array() {
        Some(a) if !a.is_empty() => Some(a),
        Some(_) => {
            e.push(path, format!("must not be empty ({})", expected(kind)));
            None
        }
        None => {
            e.push(path, format!("expected {}", expected(kind)));
            None
        }
    }
}

fn push_sub(data: &mut Vec<u8>, c: u16, bytes: &[u8]) {
    data.extend_from_slice(&c.to_be_bytes());
    // Callers bound the whole option to 65535 bytes; a longer sub-option
    // makes the whole option too long and is refused there.
    data.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    data.extend_from_slice(bytes);
}

fn unicast(path: &str, text: Option<&str>, e: &mut Errors) -> Option<Ipv6Addr> {
    let Some(text) = text else {
        e.push(path, "expected an IPv6 address in quotes");
        return None;
    };
    match text.parse::<Ipv6Addr>() {
        Err(_) => {
            e.push(path, format!("`{text}` is not an IPv6 address"));
            None
        }
        Ok(a) if a.is_unspecified() || a.is_multicast() => {
            e.push(path, format!("{a} is not a unicast address"));
            None
        }
        Ok(a) => Some(a),
    }
}

/// A domain name in wire format, fully qualified (RFC 8415 §10).
fn name_wire(path: &str, text: Option<&str>, e: &mut Errors) -> Option<Vec<u8>> {
    let Some(text) = text else {
        e.push(path, "expected a domain name in quotes");
        return None;
    };
    let checked = match domain_name(text) {
        Ok(n) => n,
        Err(m) => {
            e.push(path, m);
            return None;
        }
    };
    match DomainName::from_text(&checked, true) {
        Ok(n) => Some(n.as_bytes().to_vec()),
        Err(err) => {
            e.push(path, format!("`{text}`: {err}"));
            None
        }
    }
}

/// One RFC 5908 sub-option: 1 server address, 2 multicast address, 3
/// server FQDN.
fn ntp_suboption(path: &str, v: &toml::Value, e: &mut Errors) -> Option<(u16, Vec<u8>)> {
    let t = v.as_table().filter(|t| t.len() == 1);
    let Some((k, x)) = t.and_then(|t| t.iter().next()) else {
        e.push(
            path,
            "expected `{ address = … }`, `{ multicast = … }` or `{ fqdn = … }`",
        );
        return None;
    };
    let kp = format!("{path}.{k}");
    match k.as_str() {
        "address" => Some((1, unicast(&kp, x.as_str(), e)?.octets().to_vec())),
        "multicast" => match x.as_str().map(str::parse::<Ipv6Addr>) {
            Some(Ok(a)) if a.is_multicast() => Some((2, a.octets().to_vec())),
            _ => {
                e.push(kp, "expected an IPv6 multicast address in quotes");
                None
            }
        },
        "fqdn" => Some((3, name_wire(&kp, x.as_str(), e)?)),
        _ => {
            e.push(kp, "unknown key; expected `address`, `multicast` or `fqdn`");
            None
        }
    }
}

/// Exactly one of `hex` (pairs of hex digits, `:` or spaces allowed
/// between them), `text` (UTF-8, sent as is) or `addresses`.
fn raw_value(
    path: &str,
    hex: Option<&str>,
    text: Option<&str>,
    addresses: Option<&[String]>,
    e: &mut Errors,
) -> Option<Vec<u8>> {
    match (hex, text, addresses) {
        (Some(h), None, None) => {
            let bytes = hex_bytes(h);
            if bytes.is_none() {
                e.push(
                    format!("{path}.hex"),
                    format!("`{h}` is not hex (pairs of digits 0-9 a-f, `:` or spaces between them)"),
                );
            }
            bytes
        }
        (None, Some(t), None) => Some(t.as_bytes().to_vec()),
        (None, None, Some(list)) => {
            let mut data = Vec::new();
            for (k, a) in list.iter().enumerate() {
                let ap = format!("{path}.addresses[{k}]");
                match a.parse::<Ipv6Addr>() {
                    Ok(a) => data.extend_from_slice(&a.octets()),
                    Err(_) => {
                        e.push(ap, format!("`{a}` is not an IPv6 address"));
                        return None;
                    }
                }
            }
            Some(data)
        }
        _ => {
            e.push(path, "give exactly one of `hex`, `text` or `addresses`");
            None
        }
    }
}

/// Hex bytes, with `:`, `-`, spaces or nothing between them (an empty
/// text is no bytes).
pub(super) fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !matches!(c, ':' | '-' | ' ')).collect();
    if digits.len() % 2 != 0 {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i.saturating_add(2))
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

/// The options a subnet sends: its own, then the global ones it does not
/// set (the most specific level wins, RFC 8415 §21 leaves levels to the
/// server).
pub fn merge(specific: &[OptionConfig], general: &[OptionConfig]) -> Vec<OptionConfig> {
    let mut out = specific.to_vec();
    for o in general {
        if !out.iter().any(|s| s.code == o.code) {
            out.push(o.clone());
        }
    }
    out
}
