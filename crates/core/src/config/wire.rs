//! The config file as serde reads it: one struct per TOML table, every key
//! optional (so a missing key is reported by validation with its path, all
//! of them at once, instead of serde stopping at the first), unknown keys
//! refused (`deny_unknown_fields`), values still unchecked strings and
//! numbers. `validate` turns these into the typed [`super::Config`].

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A duration written as whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Secs(pub(super) u64);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secs, D::Error> {
        struct SecsVisitor;
        impl Visitor<'_> for SecsVisitor {
            type Value = Secs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secs, E> {
                Ok(Secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secs, E> {
                u64::try_from(v)
                    .map(Secs)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        d.deserialize_u64(SecsVisitor)
    }
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ServerWire {
    pub(super) name: Option<String>,
    pub(super) data_dir: Option<String>,
    pub(super) interfaces: Option<Vec<String>>,
    pub(super) listen: Option<Vec<String>>,
    pub(super) queue_size: Option<u64>,
    pub(super) batch_max: Option<u64>,
    pub(super) commit_window_us: Option<u64>,
    pub(super) send_rate: Option<u64>,
    pub(super) send_burst: Option<u64>,
    pub(super) kernel_filter: Option<bool>,
}

/// `[control]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ControlWire {
    pub(super) socket: Option<String>,
}

/// One `[[subnet]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct SubnetWire {
    pub(super) prefix: Option<String>,
    pub(super) interface: Option<String>,
    pub(super) pools: Option<Vec<String>>,
    pub(super) pd_pools: Option<Vec<PdPoolWire>>,
    pub(super) preferred_lifetime: Option<Secs>,
    pub(super) valid_lifetime: Option<Secs>,
    pub(super) renew_time: Option<Secs>,
    pub(super) rebind_time: Option<Secs>,
    pub(super) dns_servers: Option<Vec<String>>,
    pub(super) domain_search: Option<Vec<String>>,
    pub(super) failover: Option<String>,
    pub(super) preference: Option<u64>,
    pub(super) rapid_commit: Option<bool>,
    pub(super) options: Option<Vec<OptionWire>>,
    pub(super) reservations: Option<Vec<ReservationWire>>,
    pub(super) interface_id: Option<toml::Value>,
}

/// One entry of `subnet.reservations`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ReservationWire {
    pub(super) duid: Option<String>,
    pub(super) hw_address: Option<String>,
    pub(super) addresses: Option<Vec<String>>,
    pub(super) prefixes: Option<Vec<String>>,
    pub(super) options: Option<Vec<OptionWire>>,
}

/// One entry of `options` (top level, subnet, reservation): a named
/// standard option with `value`, or any option by `code` with `hex`,
/// `text` or `addresses`. The value's shape depends on the name, so it is
/// checked by `options`, not by serde.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct OptionWire {
    pub(super) name: Option<String>,
    pub(super) code: Option<u64>,
    pub(super) value: Option<toml::Value>,
    pub(super) hex: Option<String>,
    pub(super) text: Option<String>,
    pub(super) addresses: Option<Vec<String>>,
    pub(super) enterprise: Option<u64>,
    pub(super) always_send: Option<bool>,
}

/// One entry of `subnet.pd-pools`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct PdPoolWire {
    pub(super) prefix: Option<String>,
    pub(super) delegated_length: Option<u64>,
}

/// One `[[failover]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FailoverWire {
    pub(super) name: Option<String>,
    pub(super) role: Option<String>,
    pub(super) listen: Option<String>,
    pub(super) peer: Option<String>,
    pub(super) mclt: Option<Secs>,
    pub(super) max_unacked_bndupd: Option<u64>,
    pub(super) auto_partner_down: Option<Secs>,
    pub(super) prefix_split: Option<f64>,
    pub(super) tls: Option<TlsWire>,
    pub(super) insecure: Option<bool>,
    pub(super) keepalive: Option<Secs>,
    pub(super) rescue_after: Option<Secs>,
    pub(super) handover_on_stop: Option<bool>,
}

/// `failover.tls`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct TlsWire {
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
    pub(super) ca: Option<String>,
    pub(super) peer_name: Option<String>,
}
