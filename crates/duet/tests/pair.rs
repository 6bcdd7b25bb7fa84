//! Real-process integration tests of the failover pair (issue 6): two (or
//! three) `duet serve` in their own network namespaces, a client link (a
//! bridge) shared with ISC dhclient clients in their own namespaces, and a
//! separate server-to-server link (a second bridge) that a test cuts by
//! disabling one bridge port. TLS material comes from `duet tls init`.
//! A client that must reach only one server gets there by a policy rule
//! (`ip -6 rule add to <client link-local> blackhole`) in the other
//! server's namespace. Needs root, iproute2 (ip, bridge), isc-dhcp-client
//! and perfdhcp (kea-admin); see tests/common. Files of a failed test (or
//! of every test with DUET_TEST_KEEP=1) stay in /tmp/duet-tests/dt-….
//!
//! Short timers so failover shows within seconds: T1 4 s, T2 6 s,
//! preferred 20 s, valid 30 s, MCLT 30 s (the minimum), keepalive 4 s.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The client link (2001:db8:1::/64) bridge.
const CLIENT_BR: &str = "brc";
/// The second client link (2001:db8:2::/64) of the m-to-1 test.
const CLIENT_BR2: &str = "brc2";
/// The server-to-server link (2001:db8:ff::/64) bridge.
const SERVER_BR: &str = "brs";

/// Subnet 1 and its pools (the subnet of every test but m-to-1's second).
const SUBNET1: &str = "2001:db8:1::/64";
const POOL1: &str = "2001:db8:1::1000-2001:db8:1::1fff";
const PD1: &str = "2001:db8:8000::/48";
/// Subnet 2 (m-to-1) and its pools.
const SUBNET2: &str = "2001:db8:2::/64";
const POOL2: &str = "2001:db8:2::1000-2001:db8:2::1fff";
const PD2: &str = "2001:db8:9000::/48";

const MCLT: u64 = 30;
const VALID: u64 = 30;

/// Bounds.
const START_TIMEOUT: Duration = Duration::from_secs(40);
const BIND_TIMEOUT: Duration = Duration::from_secs(25);

// ------------------------------------------------------------------ configs

/// One `[[subnet]]`.
struct Sub {
    prefix: &'static str,
    iface: &'static str,
    pool: &'static str,
    pd: &'static str,
    rel: &'static str,
    /// Valid lifetime (the preferred one is two thirds of it).
    valid: u64,
}

/// How the partner link is authenticated.
#[derive(Clone)]
enum Auth {
    /// `tls = { cert, key, ca, peer-name }`.
    Tls {
        cert: PathBuf,
        key: PathBuf,
        ca: PathBuf,
        peer_name: String,
    },
    /// `insecure = true`.
    Insecure,
}

/// One `[[failover]]`.
struct Rel {
    name: &'static str,
    role: &'static str,
    listen: String,
    peer: String,
    auth: Auth,
    auto_partner_down: u64,
    /// More `[[failover]]` lines; one setting `keepalive` replaces the
    /// tests' 4 s.
    extra: String,
}

/// A server's whole config (see the module comment for the timers).
fn server_toml(name: &str, data: &Path, interfaces: &[&str], subnets: &[Sub], rels: &[Rel]) -> String {
    server_toml_listen(name, data, interfaces, &[], subnets, rels)
}

/// Like [`server_toml`], with `server.listen` sockets too (a subnet whose
/// `iface` is empty has no `interface` key).
fn server_toml_listen(
    name: &str,
    data: &Path,
    interfaces: &[&str],
    listen: &[&str],
    subnets: &[Sub],
    rels: &[Rel],
) -> String {
    let quote = |v: &[&str]| {
        v.iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut t = format!(
        "[server]\nname = \"{name}\"\ndata-dir = \"{}\"\ninterfaces = [{}]\nlisten = [{}]\n",
        data.display(),
        quote(interfaces),
        quote(listen)
    );
    for s in subnets {
        let iface = if s.iface.is_empty() {
            String::new()
        } else {
            format!("interface = \"{}\"\n", s.iface)
        };
        t += &format!(
            r#"
[[subnet]]
prefix = "{}"
{iface}pools = ["{}"]
pd-pools = [{{ prefix = "{}", delegated-length = 56 }}]
renew-time = 4
rebind-time = 6
preferred-lifetime = {}
valid-lifetime = {}
dns-servers = ["2001:db8::53"]
failover = "{}"
"#,
            s.prefix,
            s.pool,
            s.pd,
            s.valid * 2 / 3,
            s.valid,
            s.rel
        );
    }
    for r in rels {
        t += &format!(
            r#"
[[failover]]
name = "{}"
role = "{}"
listen = "{}"
peer = "{}"
mclt = {MCLT}
auto-partner-down = {}
{}{}
"#,
            r.name,
            r.role,
            r.listen,
            r.peer,
            r.auto_partner_down,
            if r.extra.contains("keepalive") {
                ""
            } else {
                "keepalive = 4\n"
            },
            r.extra
        );
        match &r.auth {
            Auth::Tls {
                cert,
                key,
                ca,
                peer_name,
            } => {
                t += &format!(
                    "tls = {{ cert = \"{}\", key = \"{}\", ca = \"{}\", peer-name = \"{peer_name}\" }}\n",
                    cert.display(),
                    key.display(),
                    ca.display()
                )
            }
            Auth::Insecure => t += "insecure = true\n",
        }
    }
    t
}

/// `duet tls init --out DIR --names …` in the lab directory; returns DIR.
fn tls_init(lab: &PairLab, dir: &str, names: &[&str]) -> PathBuf {
    let out = lab.path(dir);
    let names = names.join(",");
    run_ok(
        &[
            DUET,
            "tls",
            "init",
            "--out",
            &out.to_string_lossy(),
            "--names",
            &names,
        ],
        Duration::from_secs(30),
    );
    out
}

/// TLS settings using `DIR/OWN.crt`, `DIR/OWN.key`, `CA_DIR/ca.crt`.
fn tls(dir: &Path, own: &str, ca_dir: &Path, peer_name: &str) -> Auth {
    Auth::Tls {
        cert: dir.join(format!("{own}.crt")),
        key: dir.join(format!("{own}.key")),
        ca: ca_dir.join("ca.crt"),
        peer_name: peer_name.to_string(),
    }
}

// ------------------------------------------------------------------ nodes

/// MAC of node `node` (a byte) on link `link` (a byte).
fn mac(link: u8, node: u8) -> String {
    format!("02:00:00:00:{link:02x}:{node:02x}")
}

/// Server A (dhcp-a): eth0 on the client link, eth1 on the server link.
fn add_server_a(lab: &mut PairLab) -> String {
    lab.add_node(
        "a",
        &[
            ("eth0", CLIENT_BR, &mac(1, 0xa), "2001:db8:1::a/64"),
            ("eth1", SERVER_BR, &mac(0xff, 0xa), "2001:db8:ff::a/64"),
        ],
    )
}

/// Server B (dhcp-b): eth0 on the client link, eth1 on the server link,
/// and with `second_link` eth2 on the second client link.
fn add_server_b(lab: &mut PairLab, second_link: bool) -> String {
    let mut links = vec![
        ("eth0", CLIENT_BR, mac(1, 0xb), "2001:db8:1::b/64"),
        ("eth1", SERVER_BR, mac(0xff, 0xb), "2001:db8:ff::b/64"),
    ];
    if second_link {
        links.push(("eth2", CLIENT_BR2, mac(2, 0xb), "2001:db8:2::b/64"));
    }
    let l: Vec<(&str, &str, &str, &str)> = links
        .iter()
        .map(|(i, b, m, a)| (*i, *b, m.as_str(), *a))
        .collect();
    lab.add_node("b", &l)
}

/// Server C (dhcp-c, m-to-1): eth0 on the second client link, eth1 on the
/// server link.
fn add_server_c(lab: &mut PairLab) -> String {
    lab.add_node(
        "c",
        &[
            ("eth0", CLIENT_BR2, &mac(2, 0xc), "2001:db8:2::c/64"),
            ("eth1", SERVER_BR, &mac(0xff, 0xc), "2001:db8:ff::c/64"),
        ],
    )
}

/// Client namespace `k<n>` with eth0 (MAC 02:00:00:00:20:<n>) on `bridge`.
fn add_client(lab: &mut PairLab, n: u8, bridge: &str) -> String {
    lab.add_node(&format!("k{n}"), &[("eth0", bridge, &mac(0x20, n), "")])
}

/// The DUID dhclient `-D LL` uses in client namespace `k<n>`.
fn client_duid(n: u8) -> String {
    duid_ll(&mac(0x20, n))
}

/// dhclient's IAID there: the MAC's last four bytes.
fn client_iaid(n: u8) -> u64 {
    0x2000 + u64::from(n)
}

/// Writes `NAME.toml` and starts the server in `ns` (log at debug level for
/// the duet crates).
fn start_server(lab: &PairLab, ns: &str, name: &str, toml_of: impl Fn(&Path) -> String) -> Server {
    let data = lab.path(&format!("{name}-data"));
    let config = lab.path(&format!("{name}.toml"));
    fs::write(&config, toml_of(&data)).expect("write config");
    Server::start_in(
        ns,
        &lab.dir,
        name,
        &config,
        &data,
        "info,duet=debug,duet_core=debug",
    )
}

// ------------------------------------------------------------------ status

/// `status --json` → `relationships[name = rel]`.
fn relationship(s: &Server, rel: &str) -> Value {
    let st = s.status();
    st["relationships"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == rel).cloned())
        .unwrap_or_else(|| panic!("no relationship {rel} in status: {st}"))
}

/// Own state in relationship `rel` (or "?" when ctl fails).
fn state(s: &Server, rel: &str) -> String {
    let out = s.ctl(&["status", "--json"]);
    if !out.status.success() {
        return "?".into();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["relationships"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == rel))
        .and_then(|r| r["state"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// The server's DUID (hex) from `status --json`.
fn server_duid(s: &Server) -> String {
    s.status()["server"]["duid"]
        .as_str()
        .unwrap_or_else(|| panic!("status without server.duid"))
        .to_lowercase()
}

/// `counters.partner-refused`, summed over the reasons.
fn partner_refused(s: &Server) -> u64 {
    s.counters().0["partner-refused"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// Waits until every `(server, relationship)` is in `want`; panics with
/// the states and logs otherwise.
fn wait_states(what: &str, servers: &[(&Server, &str)], want: &str, timeout: Duration) {
    let ok = wait_for(timeout, || {
        servers.iter().all(|(s, r)| state(s, r) == want).then_some(())
    });
    if ok.is_none() {
        let states: Vec<String> = servers
            .iter()
            .map(|(s, r)| format!("{} {r}: {}", s.config.display(), state(s, r)))
            .collect();
        let logs: Vec<String> = servers
            .iter()
            .map(|(s, _)| format!("--- {}:\n{}", s.log_path().display(), tail(&s.log(), 60)))
            .collect();
        panic!(
            "{what}: not all {want} within {timeout:?}: {states:?}\n{}",
            logs.join("\n")
        );
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One active binding as compared between partners.
type Binding = (String, String, Option<String>, Option<u64>);

/// Active bindings (kind, address/prefix, DUID, IAID) of relationship
/// `rel` (None: all).
fn active(s: &Server, rel: Option<&str>) -> BTreeSet<Binding> {
    s.leases()
        .into_iter()
        .filter(|l| l.state == "active" && rel.is_none_or(|r| l.relationship.as_deref() == Some(r)))
        .map(|l| (l.kind, l.what, l.duid, l.iaid))
        .collect()
}

/// Waits until both servers' active bindings (of `rel`) are equal and hold
/// everything in `must`; returns the common table, or panics with both.
fn wait_tables_agree(
    what: &str,
    x: &Server,
    y: &Server,
    rel: Option<&str>,
    must: &[&str],
    timeout: Duration,
) -> BTreeSet<Binding> {
    let mut last = (BTreeSet::new(), BTreeSet::new());
    let began = Instant::now();
    let ok = wait_for(timeout, || {
        let (tx, ty) = (active(x, rel), active(y, rel));
        let has_all = must.iter().all(|m| tx.iter().any(|b| b.1 == *m));
        let done = tx == ty && has_all;
        last = (tx.clone(), ty);
        done.then_some(tx)
    });
    if let Some(t) = &ok {
        eprintln!(
            "{what}: tables agree ({} active bindings) after {:?}",
            t.len(),
            began.elapsed()
        );
    }
    ok.unwrap_or_else(|| {
        let only_x: Vec<_> = last.0.difference(&last.1).collect();
        let only_y: Vec<_> = last.1.difference(&last.0).collect();
        panic!(
            "{what}: the active bindings do not agree (or miss one of {must:?}) within {timeout:?}\n\
             only on {}: {only_x:?}\nonly on {}: {only_y:?}\ncommon: {:?}",
            x.config.display(),
            y.config.display(),
            last.0.intersection(&last.1).collect::<Vec<_>>()
        )
    })
}

/// Every address or prefix active on either server is held by one DUID.
fn assert_no_duplicate_holders(servers: &[&Server]) {
    let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in servers {
        for l in s.leases().into_iter().filter(|l| l.state == "active") {
            holders
                .entry(l.what.clone())
                .or_default()
                .insert(l.duid.clone().unwrap_or_default());
        }
    }
    let dups: Vec<_> = holders.iter().filter(|(_, d)| d.len() > 1).collect();
    assert!(
        dups.is_empty(),
        "addresses / prefixes held by two different DUIDs: {dups:?}"
    );
}

// ------------------------------------------------------------------ dhclient

/// The server DUID of dhclient's most recent lease in its lease file, as
/// hex without separators (`option dhcp6.server-id 0:1:0:1:…;`).
fn lease_file_server_id(dh: &Dhclient) -> Option<String> {
    let text = dh.lease_file();
    let last = text.rsplit("lease6 {").next()?;
    let line = last.lines().find(|l| l.contains("dhcp6.server-id"))?;
    let v = line
        .split("dhcp6.server-id")
        .nth(1)?
        .trim()
        .trim_end_matches(';')
        .trim();
    Some(hex_of_dhclient_bytes(v))
}

/// `0:1:0:1:2b:…` or `"…"`-quoted text → hex.
fn hex_of_dhclient_bytes(v: &str) -> String {
    v.split(':')
        .map(|b| format!("{:02x}", u8::from_str_radix(b.trim(), 16).unwrap_or(0)))
        .collect()
}

/// Waits for a script event at position `from` or later (dhclient runs
/// its script once per address and once per prefix) whose reason is one
/// of `reasons` and which carries `key`; returns (position, value).
fn wait_value(dh: &Dhclient, from: usize, reasons: &[&str], key: &str, timeout: Duration) -> (usize, String) {
    wait_for(timeout, || {
        dh.events()
            .into_iter()
            .enumerate()
            .skip(from)
            .find(|(_, (r, env))| reasons.contains(&r.as_str()) && env.contains_key(key))
            .map(|(i, (_, env))| (i, env[key].clone()))
    })
    .unwrap_or_else(|| {
        panic!(
            "dhclient {}: no {reasons:?} event with {key} after event #{from} within {timeout:?}\n\
             events: {:?}\nlog:\n{}",
            dh.dir.display(),
            dh.events().iter().map(|e| &e.0).collect::<Vec<_>>(),
            tail(&dh.log(), 40)
        )
    })
}

/// Number of script events so far.
fn event_count(dh: &Dhclient) -> usize {
    dh.events().len()
}

/// Whether the address's last bit is 0 (the secondary's half).
fn even(addr: &str) -> bool {
    let a: Ipv6Addr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
    u128::from(a) & 1 == 0
}

// ------------------------------------------------------------------ pair

/// A primary (A) and a secondary (B) of relationship "pair-1" on the
/// client link, partner link over the server link.
struct Pair {
    lab: PairLab,
    a: Server,
    b: Server,
    ns_a: String,
    ns_b: String,
}

const REL: &str = "pair-1";

/// Builds the lab (client bridge, server bridge, A, B), certificates for
/// dhcp-a and dhcp-b, starts B then A, and waits for both in NORMAL.
fn start_pair(auto_partner_down: u64) -> Pair {
    let p = build_pair(auto_partner_down, POOL1);
    wait_states("fresh pair", &[(&p.a, REL), (&p.b, REL)], "normal", START_TIMEOUT);
    p
}

/// [`start_pair`] without the wait, B's address pool being `pool_b`.
fn build_pair(auto_partner_down: u64, pool_b: &'static str) -> Pair {
    build_pair_with(auto_partner_down, pool_b, "", VALID)
}

/// [`build_pair`] with more `[[failover]]` lines on both servers and the
/// valid lifetime `valid`.
fn build_pair_with(auto_partner_down: u64, pool_b: &'static str, extra: &str, valid: u64) -> Pair {
    build_pair_full(auto_partner_down, pool_b, extra, valid, ["", ""])
}

/// [`build_pair_with`], with `subnet_extra` lines added to the subnet of
/// the primary (`[0]`) and of the secondary (`[1]`).
fn build_pair_full(
    auto_partner_down: u64,
    pool_b: &'static str,
    extra: &str,
    valid: u64,
    subnet_extra: [&str; 2],
) -> Pair {
    let in_subnet = |toml: String, more: &str| {
        toml.replacen(
            &format!("failover = \"{REL}\"\n"),
            &format!("failover = \"{REL}\"\n{more}"),
            1,
        )
    };
    let mut lab = PairLab::new(&[CLIENT_BR, SERVER_BR]);
    let ns_a = add_server_a(&mut lab);
    let ns_b = add_server_b(&mut lab, false);
    let certs = tls_init(&lab, "tls", &["dhcp-a", "dhcp-b"]);
    let sub = |pool| Sub {
        prefix: SUBNET1,
        iface: "eth0",
        pool,
        pd: PD1,
        rel: REL,
        valid,
    };
    let rel = |role, listen: &str, peer: &str, auth| Rel {
        name: REL,
        role,
        listen: format!("[{listen}]:647"),
        peer: format!("[{peer}]:647"),
        auth,
        auto_partner_down,
        extra: extra.to_string(),
    };
    let b = start_server(&lab, &ns_b, "dhcp-b", |d| {
        in_subnet(
            server_toml(
                "dhcp-b",
                d,
                &["eth0"],
                &[sub(pool_b)],
                &[rel(
                    "secondary",
                    "2001:db8:ff::b",
                    "2001:db8:ff::a",
                    tls(&certs, "dhcp-b", &certs, "dhcp-a"),
                )],
            ),
            subnet_extra[1],
        )
    });
    let a = start_server(&lab, &ns_a, "dhcp-a", |d| {
        in_subnet(
            server_toml(
                "dhcp-a",
                d,
                &["eth0"],
                &[sub(POOL1)],
                &[rel(
                    "primary",
                    "2001:db8:ff::a",
                    "2001:db8:ff::b",
                    tls(&certs, "dhcp-a", &certs, "dhcp-b"),
                )],
            ),
            subnet_extra[0],
        )
    });
    Pair {
        lab,
        a,
        b,
        ns_a,
        ns_b,
    }
}

// ------------------------------------------------------------------ tests

/// Both up: dhclient -N and dhclient -N -P get their leases from the
/// primary (its Server ID in the lease file; the secondary sends no reply
/// at all), and within 2 s of the clients' BOUND6 both servers' `leases
/// --json` hold the same active bindings.
#[test]
fn both_up_clients_served_by_primary_tables_agree() {
    let mut p = start_pair(0);
    let duid_a = server_duid(&p.a);
    let duid_b = server_duid(&p.b);
    assert_ne!(duid_a, duid_b, "both servers have the same DUID");
    let k1 = add_client(&mut p.lab, 1, CLIENT_BR);
    let k2 = add_client(&mut p.lab, 2, CLIENT_BR);
    // Each client in turn: within 2 s of its BOUND6 (seen by polling its
    // script's record) the secondary's table equals the primary's.
    let dh1 = Dhclient::start_in(&k1, p.lab.path("k1"), &["-N"]);
    let (_, addr1) = wait_value(&dh1, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    wait_tables_agree(
        "first client",
        &p.a,
        &p.b,
        Some(REL),
        &[&addr1],
        Duration::from_secs(2),
    );
    let dh2 = Dhclient::start_in(&k2, p.lab.path("k2"), &["-N", "-P"]);
    let (_, addr2) = wait_value(&dh2, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix2) = wait_value(&dh2, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    let bound_at = Instant::now();

    // Served by the primary: its DUID in both lease files, odd addresses
    // (the primary's half in NORMAL).
    for dh in [&dh1, &dh2] {
        assert_eq!(
            lease_file_server_id(dh).as_deref(),
            Some(duid_a.as_str()),
            "lease not from the primary (A {duid_a}, B {duid_b}):\n{}",
            dh.lease_file()
        );
    }
    let table = wait_tables_agree(
        "both up",
        &p.a,
        &p.b,
        Some(REL),
        &[&addr1, &addr2, &prefix2],
        Duration::from_secs(2).saturating_sub(bound_at.elapsed()),
    );
    let want: BTreeSet<Binding> = [("na", &addr1, 1), ("na", &addr2, 2), ("pd", &prefix2, 2)]
        .into_iter()
        .map(|(k, w, n)| {
            (
                k.to_string(),
                w.clone(),
                Some(client_duid(n)),
                Some(client_iaid(n)),
            )
        })
        .collect();
    assert_eq!(table, want, "active bindings on both servers");
    assert!(
        !even(&addr1) && !even(&addr2),
        "not from the primary's (odd) half: {addr1} {addr2}"
    );
    assert!(
        p.b.counters().get("replies-sent") == 0,
        "the secondary answered clients in NORMAL: {:?}",
        p.b.counters()
    );
    // Its kernel filter kept the clients' Solicits and Requests (for the
    // primary) from waking it: at least 2 per client.
    assert!(
        p.b.counters().get("socket-drops") >= 4,
        "the secondary's kernel filter discarded nothing: {:?}",
        p.b.counters()
    );
    for (s, rel) in [(&p.a, REL), (&p.b, REL)] {
        let r = relationship(s, rel);
        assert_eq!(r["communications-ok"], true, "{r}");
        assert_eq!(r["partner-state"], "normal", "{r}");
    }
}

/// Kill -9 the primary once `dh` (client k1, -N -P) is bound and both
/// tables hold its bindings; checks the secondary goes
/// COMMUNICATIONS-INTERRUPTED and answers the client's Rebind with the
/// SAME address and prefix (script environment of REBIND6; the lease file
/// now names the secondary's Server ID; the secondary's `leases` has both
/// active for the client's DUID). Returns (address, prefix).
fn kill_primary_and_rebind(p: &mut Pair, dh: &Dhclient) -> (String, String) {
    let (_, addr) = wait_value(dh, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix) = wait_value(dh, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    wait_tables_agree(
        "before the kill",
        &p.a,
        &p.b,
        Some(REL),
        &[&addr, &prefix],
        Duration::from_secs(5),
    );
    let duid_b = server_duid(&p.b);
    let from = event_count(dh);
    p.a.kill9();
    wait_states(
        "primary killed",
        &[(&p.b, REL)],
        "communications-interrupted",
        Duration::from_secs(10),
    );
    // T2 is 6 s: the unanswered Renew turns into a Rebind the secondary
    // answers; dhclient runs its script (REBIND6) per address and prefix.
    let (i, new_addr) = wait_value(dh, from, &["REBIND6"], "new_ip6_address", Duration::from_secs(30));
    let (j, new_prefix) = wait_value(dh, from, &["REBIND6"], "new_ip6_prefix", Duration::from_secs(5));
    assert_eq!(new_addr, addr, "Rebind changed the address (event #{i})");
    assert_eq!(new_prefix, prefix, "Rebind changed the prefix (event #{j})");
    assert!(
        dh.log().contains("XMT: Rebind"),
        "no Rebind in the dhclient log:\n{}",
        dh.log()
    );
    assert_eq!(
        lease_file_server_id(dh).as_deref(),
        Some(duid_b.as_str()),
        "the Rebind was not answered by the secondary:\n{}",
        dh.lease_file()
    );
    let on_b = active(&p.b, Some(REL));
    for w in [&addr, &prefix] {
        assert!(
            on_b.iter()
                .any(|(_, x, d, _)| x == w && d.as_deref() == Some(client_duid(1).as_str())),
            "{w} not active for the client on the secondary: {on_b:?}"
        );
    }
    (addr, prefix)
}

/// A new client k<n> (fresh DUID, -N -P) while the primary is down gets
/// an address of the secondary's (even) half and one of the prefixes the
/// secondary held as free-backup, with the secondary's Server ID. Returns
/// (the running dhclient, address, prefix).
fn new_client_served_by_secondary(p: &mut Pair, n: u8) -> (Dhclient, String, String) {
    let ns = add_client(&mut p.lab, n, CLIENT_BR);
    let backup = free_backup_prefixes(&p.b);
    let dh = Dhclient::start_in(&ns, p.lab.path(&format!("k{n}")), &["-N", "-P"]);
    let (_, addr) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    assert!(
        even(&addr),
        "new client got {addr}, not from the secondary's (even) half"
    );
    assert!(
        backup.contains(&prefix),
        "new client got {prefix}, not one of the secondary's free-backup prefixes ({} of them)",
        backup.len()
    );
    assert_eq!(
        lease_file_server_id(&dh).as_deref(),
        Some(server_duid(&p.b).as_str()),
        "{}",
        dh.lease_file()
    );
    let on_b = active(&p.b, Some(REL));
    assert!(
        on_b.iter()
            .any(|(_, x, d, _)| *x == addr && d.as_deref() == Some(client_duid(n).as_str())),
        "{addr} not active on the secondary: {on_b:?}"
    );
    (dh, addr, prefix)
}

/// Prefixes the server holds as `free-backup` (the secondary's share).
fn free_backup_prefixes(s: &Server) -> BTreeSet<String> {
    s.leases()
        .into_iter()
        .filter(|l| l.kind == "pd" && l.state == "free-backup")
        .map(|l| l.what)
        .collect()
}

/// The primary restarts (its store kept): both back in NORMAL, the tables
/// agree and hold `must`, no address or prefix held by two DUIDs.
fn restart_primary_and_recover(p: &mut Pair, must: &[&str]) {
    p.a.restart();
    wait_states(
        "primary restarted",
        &[(&p.a, REL), (&p.b, REL)],
        "normal",
        Duration::from_secs(75),
    );
    wait_tables_agree(
        "after recovery",
        &p.a,
        &p.b,
        Some(REL),
        must,
        Duration::from_secs(10),
    );
    assert_no_duplicate_holders(&[&p.a, &p.b]);
    for s in [&p.a, &p.b] {
        let r = relationship(s, REL);
        assert_eq!(r["communications-ok"], true, "{r}");
    }
}

/// Server down: kill -9 the primary; the client's Rebind is answered by
/// the secondary with the same address and prefix; a new client gets an
/// even address from the secondary; `ctl partner-down` moves the
/// secondary to PARTNER-DOWN; the primary restarts and both are NORMAL
/// with equal tables.
#[test]
fn primary_killed_secondary_answers_rebind_same_lease() {
    let mut p = start_pair(0);
    let k1 = add_client(&mut p.lab, 1, CLIENT_BR);
    let dh = Dhclient::start_in(&k1, p.lab.path("k1"), &["-N", "-P"]);
    let (addr, prefix) = kill_primary_and_rebind(&mut p, &dh);
    let (_dh2, fresh, fresh_prefix) = new_client_served_by_secondary(&mut p, 2);

    // No auto-partner-down: the secondary stays COMMUNICATIONS-INTERRUPTED
    // until the operator says otherwise.
    assert_eq!(state(&p.b, REL), "communications-interrupted");
    let out = p.b.ctl(&["partner-down", REL]);
    assert!(
        out.status.success(),
        "ctl partner-down failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_states(
        "ctl partner-down",
        &[(&p.b, REL)],
        "partner-down",
        Duration::from_secs(5),
    );
    let r = relationship(&p.b, REL);
    assert_eq!(r["communications-ok"], false, "{r}");
    let bad = p.b.ctl(&["partner-down", "no-such-relationship"]);
    assert!(
        !bad.status.success(),
        "partner-down of an unknown relationship succeeded"
    );

    restart_primary_and_recover(&mut p, &[&addr, &prefix, &fresh, &fresh_prefix]);
}

/// Same crash with `auto-partner-down = 5`: the secondary reaches
/// PARTNER-DOWN by itself after 5 s of COMMUNICATIONS-INTERRUPTED, keeps
/// serving, and the pair recovers when the primary comes back.
#[test]
fn primary_killed_auto_partner_down_reached_then_recovers() {
    let mut p = start_pair(5);
    let k1 = add_client(&mut p.lab, 1, CLIENT_BR);
    let dh = Dhclient::start_in(&k1, p.lab.path("k1"), &["-N", "-P"]);
    let (addr, prefix) = kill_primary_and_rebind(&mut p, &dh);
    wait_states(
        "auto-partner-down",
        &[(&p.b, REL)],
        "partner-down",
        Duration::from_secs(15),
    );
    let since = relationship(&p.b, REL)["since"].as_u64().unwrap_or(0);
    assert!(since > 0, "no since for partner-down");
    let (_dh2, fresh, fresh_prefix) = new_client_served_by_secondary(&mut p, 2);
    restart_primary_and_recover(&mut p, &[&addr, &prefix, &fresh, &fresh_prefix]);
}

/// A client in namespace `k<n>` that the server in `blocked_ns` cannot
/// answer (its replies to the client's link-local address are blackholed),
/// running dhclient -N -P; returns (dhclient, address, prefix).
fn client_only_reaching(p: &mut Pair, n: u8, blocked_ns: &str) -> (Dhclient, String, String) {
    let ns = add_client(&mut p.lab, n, CLIENT_BR);
    let ll = p.lab.link_local(&ns, "eth0");
    p.lab.blackhole(blocked_ns, &ll);
    let dh = Dhclient::start_in(&ns, p.lab.path(&format!("k{n}")), &["-N", "-P"]);
    let (_, addr) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    (dh, addr, prefix)
}

/// Partition: only the server-to-server link is cut (A's port on that
/// bridge disabled). Both servers go COMMUNICATIONS-INTERRUPTED; a client
/// that reaches only A gets an odd address from A, one that reaches only B
/// an even address and a free-backup prefix from B, a perfdhcp burst from
/// a client reaching both is served too; the client bound before the cut
/// keeps renewing. After the heal both are NORMAL, the tables agree
/// (every client's bindings on both) and no address or prefix is held by
/// two DUIDs.
#[test]
fn partition_both_serve_then_heal_tables_agree() {
    let mut p = start_pair(0);
    let (duid_a, duid_b) = (server_duid(&p.a), server_duid(&p.b));
    let k1 = add_client(&mut p.lab, 1, CLIENT_BR);
    let dh1 = Dhclient::start_in(&k1, p.lab.path("k1"), &["-N", "-P"]);
    let (_, addr1) = wait_value(&dh1, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix1) = wait_value(&dh1, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    wait_tables_agree(
        "before the cut",
        &p.a,
        &p.b,
        Some(REL),
        &[&addr1, &prefix1],
        Duration::from_secs(5),
    );
    let backup = free_backup_prefixes(&p.b);

    let cut_at = Instant::now();
    p.lab.set_port(&PairLab::port("a", "eth1"), false);
    wait_states(
        "server link cut",
        &[(&p.a, REL), (&p.b, REL)],
        "communications-interrupted",
        Duration::from_secs(15),
    );
    eprintln!(
        "both communications-interrupted {:?} after the cut",
        cut_at.elapsed()
    );
    for s in [&p.a, &p.b] {
        let r = relationship(s, REL);
        assert_eq!(r["communications-ok"], false, "{r}");
    }
    // Both hand out leases, each from its own share.
    let ns_a = p.ns_a.clone();
    let ns_b = p.ns_b.clone();
    let (dh2, addr2, prefix2) = client_only_reaching(&mut p, 2, &ns_b);
    let (dh3, addr3, prefix3) = client_only_reaching(&mut p, 3, &ns_a);
    assert_eq!(
        lease_file_server_id(&dh2).as_deref(),
        Some(duid_a.as_str()),
        "{}",
        dh2.lease_file()
    );
    assert_eq!(
        lease_file_server_id(&dh3).as_deref(),
        Some(duid_b.as_str()),
        "{}",
        dh3.lease_file()
    );
    assert!(!even(&addr2), "A gave {addr2}, not from its (odd) half");
    assert!(even(&addr3), "B gave {addr3}, not from its (even) half");
    assert!(
        backup.contains(&prefix3),
        "B gave {prefix3}, not one of its free-backup prefixes"
    );
    assert!(
        !backup.contains(&prefix2),
        "A gave {prefix2}, one of B's free-backup prefixes"
    );
    // Partitioned: neither knows the other's new bindings yet.
    let (ta, tb) = (active(&p.a, Some(REL)), active(&p.b, Some(REL)));
    assert!(
        !tb.iter().any(|b| b.1 == addr2),
        "B knows {addr2} during the partition"
    );
    assert!(
        !ta.iter().any(|b| b.1 == addr3),
        "A knows {addr3} during the partition"
    );

    // A short perfdhcp burst from a namespace reaching both servers: both
    // answer every Solicit; the Requests go to whichever answered first.
    let (perf_a, perf_b) = {
        let _heavy = heavy();
        let kp = add_client(&mut p.lab, 9, CLIENT_BR);
        let log = p.lab.path("perfdhcp.log");
        let mut perf = perfdhcp_start_in(
            &kp,
            &["-R", "100", "-r", "40", "-p", "3", "-e", "address-and-prefix"],
            &log,
        );
        let done = perf.wait_timeout(Duration::from_secs(20));
        assert!(done.is_some(), "perfdhcp did not finish:\n{}", perf.output());
        let perf_duids = |s: &Server| {
            s.leases()
                .into_iter()
                .filter(|l| l.state == "active" && l.kind == "na")
                .filter(|l| !l.duid.as_deref().unwrap_or("").starts_with("00030001020000002"))
                .count()
        };
        let (na, nb) = (perf_duids(&p.a), perf_duids(&p.b));
        eprintln!(
            "perfdhcp: {na} addresses from A, {nb} from B\n{}",
            tail(&perf.output(), 30)
        );
        (na, nb)
    };
    assert!(
        perf_a > 0 && perf_b > 0,
        "perfdhcp leases: {perf_a} from A, {perf_b} from B"
    );
    // Each allocated from its own share only: nothing is active for two
    // different DUIDs across the two (still separate) tables.
    assert_no_duplicate_holders(&[&p.a, &p.b]);

    // Renewals of the client bound before the cut still work (A answers).
    let from = event_count(&dh1);
    let (_, again) = wait_value(
        &dh1,
        from,
        &["RENEW6", "REBIND6"],
        "new_ip6_address",
        Duration::from_secs(15),
    );
    assert_eq!(again, addr1, "the pre-partition client changed address");

    // Heal.
    p.lab.set_port(&PairLab::port("a", "eth1"), true);
    let healed = Instant::now();
    wait_states(
        "server link healed",
        &[(&p.a, REL), (&p.b, REL)],
        "normal",
        Duration::from_secs(40),
    );
    eprintln!("both normal {:?} after the heal", healed.elapsed());
    let table = wait_tables_agree(
        "after the heal",
        &p.a,
        &p.b,
        Some(REL),
        &[&addr1, &prefix1, &addr2, &prefix2, &addr3, &prefix3],
        Duration::from_secs(40),
    );
    for (n, addr, prefix) in [
        (1, &addr1, &prefix1),
        (2, &addr2, &prefix2),
        (3, &addr3, &prefix3),
    ] {
        for w in [addr, prefix] {
            assert!(
                table
                    .iter()
                    .any(|b| &b.1 == w && b.2.as_deref() == Some(client_duid(n).as_str())),
                "{w} not active for client {n} on both: {table:?}"
            );
        }
    }
    assert_no_duplicate_holders(&[&p.a, &p.b]);
}

/// One secure-link misconfiguration: who presents what, and what must
/// show up where.
struct BadLink {
    what: &'static str,
    primary: Auth,
    secondary: Auth,
    /// Substring of the refusal reason in the secondary's log.
    secondary_log: &'static str,
    /// Substring of the primary's log (debug), or "": where the primary
    /// itself rejects (then its `partner-connect-failures` grows too).
    primary_log: &'static str,
}

/// A peer with a certificate for another name (same CA), a certificate
/// from another CA (self-signed chain), or no TLS is refused: in each case
/// (either side presenting the bad credential) the accepting secondary
/// logs the reason and counts it in `partner-refused`, both report
/// `communications-ok` false and neither ever reaches NORMAL, while a
/// correctly configured pair in the same lab does. The pairs run side by
/// side on the same two namespaces, each on its own ports.
#[test]
fn peer_with_wrong_certificate_self_signed_or_no_tls_is_refused() {
    let mut lab = PairLab::new(&[CLIENT_BR, SERVER_BR]);
    let ns_a = add_server_a(&mut lab);
    let ns_b = add_server_b(&mut lab, false);
    let good = tls_init(&lab, "tls", &["dhcp-a", "dhcp-b", "dhcp-x"]);
    let other = tls_init(&lab, "tls-other", &["dhcp-a", "dhcp-b"]);
    let cases = [
        BadLink {
            what: "control: correct certificates",
            primary: tls(&good, "dhcp-a", &good, "dhcp-b"),
            secondary: tls(&good, "dhcp-b", &good, "dhcp-a"),
            secondary_log: "",
            primary_log: "",
        },
        BadLink {
            what: "secondary's certificate is for another name (same CA)",
            primary: tls(&good, "dhcp-a", &good, "dhcp-b"),
            secondary: tls(&good, "dhcp-x", &good, "dhcp-a"),
            secondary_log: "TLS handshake failed",
            primary_log: "certificate not valid for name \"dhcp-b\"",
        },
        BadLink {
            what: "primary's certificate is for another name (same CA)",
            primary: tls(&good, "dhcp-x", &good, "dhcp-b"),
            secondary: tls(&good, "dhcp-b", &good, "dhcp-a"),
            secondary_log: "the peer's certificate is not for",
            primary_log: "",
        },
        BadLink {
            what: "secondary's certificate from another CA",
            primary: tls(&good, "dhcp-a", &good, "dhcp-b"),
            secondary: tls(&other, "dhcp-b", &good, "dhcp-a"),
            secondary_log: "TLS handshake failed",
            // Both CAs carry the same subject: webpki finds "the" issuer by
            // name and the signature does not verify.
            primary_log: "invalid peer certificate",
        },
        BadLink {
            what: "primary's certificate from another CA",
            primary: tls(&other, "dhcp-a", &good, "dhcp-b"),
            secondary: tls(&good, "dhcp-b", &good, "dhcp-a"),
            secondary_log: "TLS handshake failed: invalid peer certificate",
            primary_log: "",
        },
        BadLink {
            what: "primary insecure = true, secondary secure",
            primary: Auth::Insecure,
            secondary: tls(&good, "dhcp-b", &good, "dhcp-a"),
            secondary_log: "requires STARTTLS",
            primary_log: "",
        },
        BadLink {
            what: "primary secure, secondary insecure = true",
            primary: tls(&good, "dhcp-a", &good, "dhcp-b"),
            secondary: Auth::Insecure,
            secondary_log: "peer asked for TLS on an insecure relationship",
            primary_log: "refused STARTTLS",
        },
    ];
    let mut pairs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let port = 6470 + i;
        let dhcp_b = format!("[2001:db8:1::b]:{}", 5470 + i);
        let dhcp_a = format!("[2001:db8:1::a]:{}", 5470 + i);
        let sub = || Sub {
            prefix: SUBNET1,
            iface: "",
            pool: POOL1,
            pd: PD1,
            rel: REL,
            valid: VALID,
        };
        let rel = |role, listen: &str, peer: &str, auth: &Auth| Rel {
            name: REL,
            role,
            listen: format!("[{listen}]:{port}"),
            peer: format!("[{peer}]:{port}"),
            auth: auth.clone(),
            auto_partner_down: 0,
            extra: String::new(),
        };
        let b = start_server(&lab, &ns_b, &format!("case{i}-b"), |d| {
            server_toml_listen(
                "dhcp-b",
                d,
                &[],
                &[&dhcp_b],
                &[sub()],
                &[rel("secondary", "2001:db8:ff::b", "2001:db8:ff::a", &c.secondary)],
            )
        });
        let a = start_server(&lab, &ns_a, &format!("case{i}-a"), |d| {
            server_toml_listen(
                "dhcp-a",
                d,
                &[],
                &[&dhcp_a],
                &[sub()],
                &[rel("primary", "2001:db8:ff::a", "2001:db8:ff::b", &c.primary)],
            )
        });
        pairs.push((a, b));
    }
    // Watch every pair for a while: the primary retries (backoff 2 s, 4 s, …).
    let end = Instant::now() + Duration::from_secs(14);
    let mut reached_normal = vec![false; cases.len()];
    let mut refused_first = vec![None; cases.len()];
    while Instant::now() < end {
        for (i, (a, b)) in pairs.iter().enumerate() {
            if state(a, REL) == "normal" || state(b, REL) == "normal" {
                reached_normal[i] = true;
            }
            if refused_first[i].is_none() {
                let n = partner_refused(b);
                if n > 0 {
                    refused_first[i] = Some(n);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut failures = Vec::new();
    for (i, (c, (a, b))) in cases.iter().zip(&pairs).enumerate() {
        let refused = partner_refused(b);
        let (ra, rb) = (relationship(a, REL), relationship(b, REL));
        let (la, lb) = (a.log(), b.log());
        let mut why = Vec::new();
        if c.secondary_log.is_empty() {
            // The control pair.
            if !reached_normal[i] || ra["state"] != "normal" || rb["state"] != "normal" {
                why.push(format!("did not reach normal: {} / {}", ra["state"], rb["state"]));
            }
            if refused != 0 {
                why.push(format!("{refused} refusals"));
            }
        } else {
            if reached_normal[i] {
                why.push("reached normal".to_string());
            }
            if ra["communications-ok"] != false || rb["communications-ok"] != false {
                why.push(format!(
                    "communications-ok {} / {}",
                    ra["communications-ok"], rb["communications-ok"]
                ));
            }
            // Refused at every retry: counted at least twice, and growing.
            if refused < 2 || refused_first[i].is_none_or(|f| f >= refused) {
                why.push(format!(
                    "partner-refused did not grow: first {:?}, last {refused}",
                    refused_first[i]
                ));
            }
            if !lb.contains("refused partner connection") || !lb.contains(c.secondary_log) {
                why.push(format!("secondary log lacks the refusal / {:?}", c.secondary_log));
            }
            if !c.primary_log.is_empty() {
                if !la.contains(c.primary_log) {
                    why.push(format!("primary log lacks {:?}", c.primary_log));
                }
                let failures: u64 = a.counters().0["partner-connect-failures"][REL]
                    .as_u64()
                    .unwrap_or(0);
                if failures < 2 {
                    why.push(format!("primary's partner-connect-failures: {failures}"));
                }
            }
        }
        if !why.is_empty() {
            failures.push(format!(
                "case {i} ({}): {}\n  secondary {}: {}\n--- primary log:\n{}\n--- secondary log:\n{}",
                c.what,
                why.join("; "),
                b.config.display(),
                b.counters().0["partner-refused"],
                tail(&la, 15),
                tail(&lb, 15)
            ));
        } else {
            let reason = lb
                .lines()
                .find(|l| l.contains("refused partner connection"))
                .unwrap_or("(none)");
            eprintln!(
                "\ncase {i} ({}): ok; secondary partner-refused {refused}, primary \
                 partner-connect-failures {}; {}",
                c.what,
                a.counters().0["partner-connect-failures"][REL],
                reason.trim()
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// m-to-1: B is the secondary of relationship "ab" with A (subnet 1 on the
/// first client link) and of "cb" with C (subnet 2 on the second client
/// link), both over one listening socket. Both relationships reach NORMAL,
/// a client on each link is served by its primary, B's status shows both
/// relationships and B's table holds each relationship's bindings under
/// its name. Then C is killed: "cb" goes COMMUNICATIONS-INTERRUPTED, B
/// answers the subnet-2 client's Rebind with the same lease, "ab" stays
/// NORMAL.
#[test]
fn m_to_1_one_server_in_two_relationships() {
    let mut lab = PairLab::new(&[CLIENT_BR, CLIENT_BR2, SERVER_BR]);
    let ns_a = add_server_a(&mut lab);
    let ns_b = add_server_b(&mut lab, true);
    let ns_c = add_server_c(&mut lab);
    let certs = tls_init(&lab, "tls", &["dhcp-a", "dhcp-b", "dhcp-c"]);
    let sub1 = || Sub {
        prefix: SUBNET1,
        iface: "eth0",
        pool: POOL1,
        pd: PD1,
        rel: "ab",
        valid: VALID,
    };
    let sub2 = |iface| Sub {
        prefix: SUBNET2,
        iface,
        pool: POOL2,
        pd: PD2,
        rel: "cb",
        valid: VALID,
    };
    let rel = |name, role, listen: &str, peer: &str, auth| Rel {
        name,
        role,
        listen: format!("[{listen}]:647"),
        peer: format!("[{peer}]:647"),
        auth,
        auto_partner_down: 0,
        extra: String::new(),
    };
    let b = start_server(&lab, &ns_b, "dhcp-b", |d| {
        server_toml(
            "dhcp-b",
            d,
            &["eth0", "eth2"],
            &[sub1(), sub2("eth2")],
            &[
                rel(
                    "ab",
                    "secondary",
                    "2001:db8:ff::b",
                    "2001:db8:ff::a",
                    tls(&certs, "dhcp-b", &certs, "dhcp-a"),
                ),
                rel(
                    "cb",
                    "secondary",
                    "2001:db8:ff::b",
                    "2001:db8:ff::c",
                    tls(&certs, "dhcp-b", &certs, "dhcp-c"),
                ),
            ],
        )
    });
    let a = start_server(&lab, &ns_a, "dhcp-a", |d| {
        server_toml(
            "dhcp-a",
            d,
            &["eth0"],
            &[sub1()],
            &[rel(
                "ab",
                "primary",
                "2001:db8:ff::a",
                "2001:db8:ff::b",
                tls(&certs, "dhcp-a", &certs, "dhcp-b"),
            )],
        )
    });
    let mut c = start_server(&lab, &ns_c, "dhcp-c", |d| {
        server_toml(
            "dhcp-c",
            d,
            &["eth0"],
            &[sub2("eth0")],
            &[rel(
                "cb",
                "primary",
                "2001:db8:ff::c",
                "2001:db8:ff::b",
                tls(&certs, "dhcp-c", &certs, "dhcp-b"),
            )],
        )
    });
    wait_states(
        "m-to-1",
        &[(&a, "ab"), (&b, "ab"), (&b, "cb"), (&c, "cb")],
        "normal",
        START_TIMEOUT,
    );
    let st = b.status();
    let rels = st["relationships"].as_array().cloned().unwrap_or_default();
    let names: BTreeSet<&str> = rels.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, BTreeSet::from(["ab", "cb"]), "B's relationships: {st}");
    for r in &rels {
        assert_eq!(
            (
                r["role"].as_str(),
                r["state"].as_str(),
                r["partner-state"].as_str(),
                &r["communications-ok"]
            ),
            (
                Some("secondary"),
                Some("normal"),
                Some("normal"),
                &Value::Bool(true)
            ),
            "{r}"
        );
    }

    let k1 = add_client(&mut lab, 1, CLIENT_BR);
    let k2 = add_client(&mut lab, 2, CLIENT_BR2);
    let dh1 = Dhclient::start_in(&k1, lab.path("k1"), &["-N", "-P"]);
    let dh2 = Dhclient::start_in(&k2, lab.path("k2"), &["-N", "-P"]);
    let (_, addr1) = wait_value(&dh1, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix1) = wait_value(&dh1, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    let (_, addr2) = wait_value(&dh2, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix2) = wait_value(&dh2, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    assert!(
        addr1.starts_with("2001:db8:1::") && prefix1.starts_with("2001:db8:80"),
        "{addr1} {prefix1}"
    );
    assert!(
        addr2.starts_with("2001:db8:2::") && prefix2.starts_with("2001:db8:90"),
        "{addr2} {prefix2}"
    );
    assert_eq!(
        lease_file_server_id(&dh1),
        Some(server_duid(&a)),
        "{}",
        dh1.lease_file()
    );
    assert_eq!(
        lease_file_server_id(&dh2),
        Some(server_duid(&c)),
        "{}",
        dh2.lease_file()
    );
    let ab = wait_tables_agree(
        "ab",
        &a,
        &b,
        Some("ab"),
        &[&addr1, &prefix1],
        Duration::from_secs(5),
    );
    let cb = wait_tables_agree(
        "cb",
        &c,
        &b,
        Some("cb"),
        &[&addr2, &prefix2],
        Duration::from_secs(5),
    );
    assert_eq!(ab, active(&a, None), "A holds bindings outside ab");
    assert_eq!(cb, active(&c, None), "C holds bindings outside cb");
    assert_eq!(
        active(&b, None),
        ab.union(&cb).cloned().collect(),
        "B's bindings are not exactly ab's and cb's"
    );

    // C dies: only "cb" is affected; B rebinds C's client with the same lease.
    let from = event_count(&dh2);
    c.kill9();
    wait_states(
        "C killed",
        &[(&b, "cb")],
        "communications-interrupted",
        Duration::from_secs(10),
    );
    let (_, re_addr) = wait_value(
        &dh2,
        from,
        &["REBIND6"],
        "new_ip6_address",
        Duration::from_secs(30),
    );
    let (_, re_prefix) = wait_value(&dh2, from, &["REBIND6"], "new_ip6_prefix", Duration::from_secs(5));
    assert_eq!(
        (re_addr, re_prefix),
        (addr2, prefix2),
        "B's Rebind answer changed the lease"
    );
    assert_eq!(
        lease_file_server_id(&dh2),
        Some(server_duid(&b)),
        "{}",
        dh2.lease_file()
    );
    assert_eq!(state(&b, "ab"), "normal", "ab disturbed by cb's partner dying");
    assert_eq!(state(&a, "ab"), "normal");
    // A's client keeps being served by A.
    let from1 = event_count(&dh1);
    let (_, again) = wait_value(
        &dh1,
        from1,
        &["RENEW6"],
        "new_ip6_address",
        Duration::from_secs(15),
    );
    assert_eq!(again, addr1);
    assert_eq!(
        lease_file_server_id(&dh1),
        Some(server_duid(&a)),
        "{}",
        dh1.lease_file()
    );
}

/// The most common crash: kill -9 the primary and restart it while the
/// secondary is still COMMUNICATIONS-INTERRUPTED (no partner-down). The
/// secondary's Rebind answer and the binding it made for a new client
/// meanwhile reach the restarted primary; both NORMAL, tables equal.
#[test]
fn primary_restarted_before_partner_down_tables_agree() {
    let mut p = start_pair(0);
    let k1 = add_client(&mut p.lab, 1, CLIENT_BR);
    let dh = Dhclient::start_in(&k1, p.lab.path("k1"), &["-N", "-P"]);
    let (addr, prefix) = kill_primary_and_rebind(&mut p, &dh);
    let (_dh2, fresh, fresh_prefix) = new_client_served_by_secondary(&mut p, 2);
    assert_eq!(state(&p.b, REL), "communications-interrupted");
    restart_primary_and_recover(&mut p, &[&addr, &prefix, &fresh, &fresh_prefix]);
}

/// Config drift: B's address pool differs from A's. The CONNECT is
/// refused with ConfigurationConflict naming the differing pool lines,
/// logged on both sides; the pair never reaches NORMAL.
#[test]
fn peer_with_different_pools_is_refused_configuration_conflict() {
    let p = build_pair(0, "2001:db8:1::1000-2001:db8:1::17ff");
    let end = Instant::now() + Duration::from_secs(14);
    while Instant::now() < end {
        for s in [&p.a, &p.b] {
            assert_ne!(
                state(s, REL),
                "normal",
                "a pair with different pools reached normal"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (la, lb) = (p.a.log(), p.b.log());
    // The refusing secondary names what only it has and what only the
    // primary has, by role, so the same text reads right in both logs.
    let diff = "subnets and pools differ between the partners: \
                only at the secondary: [\"subnet 2001:db8:1::/64 pool 2001:db8:1::1000-2001:db8:1::17ff\"]; \
                only at the primary: [\"subnet 2001:db8:1::/64 pool 2001:db8:1::1000-2001:db8:1::1fff\"]";
    assert!(
        lb.contains("refused CONNECT: ConfigurationConflict") && lb.contains(diff),
        "the secondary's log does not say what differs:\n{}",
        tail(&lb, 20)
    );
    assert!(
        la.contains("partner refused our CONNECT")
            && la.contains("ConfigurationConflict")
            && la.contains(diff),
        "the primary's log does not say what differs:\n{}",
        tail(&la, 20)
    );
    for s in [&p.a, &p.b] {
        let r = relationship(s, REL);
        assert_ne!(r["state"], "normal", "{r}");
    }
}

// ------------------------------------------------------------------ issue 26

/// Time until `f` holds (polled every 100 ms), or panic after `timeout`.
fn time_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    if wait_for(timeout, || f().then_some(())).is_none() {
        panic!("{what}: not within {timeout:?}");
    }
    t0.elapsed()
}

/// Planned maintenance (RFC 7031 §4, issue 26 point 3): `ctl handover` on
/// the primary. The secondary is in PARTNER-DOWN as soon as the command
/// returns, serves a new client and the bound client's Rebind (same lease),
/// while the primary answers nobody; the primary restarts and both are
/// NORMAL with equal tables. Then SIGTERM with `handover-on-stop = true`
/// does the same.
#[test]
fn planned_handover_the_partner_takes_over_at_once_and_the_primary_recovers() {
    let p0 = build_pair_with(0, POOL1, "handover-on-stop = true\n", VALID);
    wait_states(
        "fresh pair",
        &[(&p0.a, REL), (&p0.b, REL)],
        "normal",
        START_TIMEOUT,
    );
    let mut p = p0;
    assert_eq!(relationship(&p.a, REL)["partner-handover"], true);
    let k1 = add_client(&mut p.lab, 1, CLIENT_BR);
    let dh = Dhclient::start_in(&k1, p.lab.path("k1"), &["-N", "-P"]);
    let (_, addr) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    assert_eq!(
        lease_file_server_id(&dh).as_deref(),
        Some(server_duid(&p.a).as_str())
    );

    let t0 = Instant::now();
    let out = p.a.ctl(&["handover", REL]);
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "ctl handover failed: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail(&p.a.log(), 40)
    );
    let pd = time_until("secondary in partner-down", Duration::from_secs(2), || {
        state(&p.b, REL) == "partner-down"
    });
    eprintln!(
        "handover: the command took {took:?}; the secondary was in partner-down {pd:?} after it returned"
    );
    let ra = relationship(&p.a, REL);
    assert_eq!(ra["handover"], "handed-over", "{ra}");
    assert_eq!(ra["state"], "recover", "{ra}");
    wait_tables_agree(
        "after the handover",
        &p.a,
        &p.b,
        Some(REL),
        &[&addr, &prefix],
        Duration::from_secs(2),
    );

    // The bound client: Renew to the primary unanswered, Rebind answered by
    // the secondary with the same address and prefix.
    let from = event_count(&dh);
    let (_, a2) = wait_value(
        &dh,
        from,
        &["REBIND6"],
        "new_ip6_address",
        Duration::from_secs(30),
    );
    let (_, p2) = wait_value(&dh, from, &["REBIND6"], "new_ip6_prefix", Duration::from_secs(5));
    assert_eq!((a2.as_str(), p2.as_str()), (addr.as_str(), prefix.as_str()));
    assert_eq!(
        lease_file_server_id(&dh).as_deref(),
        Some(server_duid(&p.b).as_str())
    );
    let (_dh2, fresh, fresh_prefix) = new_client_served_by_secondary(&mut p, 2);

    // Stop (a parked server hands over nothing more), start: recovery.
    assert!(p.a.stop().success(), "{}", tail(&p.a.log(), 40));
    restart_primary_and_recover(&mut p, &[&addr, &prefix, &fresh, &fresh_prefix]);

    // SIGTERM with handover-on-stop: the secondary takes over at once.
    let t0 = Instant::now();
    assert!(p.a.stop().success(), "{}", tail(&p.a.log(), 40));
    let stopped = t0.elapsed();
    assert!(
        p.a.log().contains("handover complete"),
        "no handover on stop:\n{}",
        tail(&p.a.log(), 40)
    );
    let pd = time_until(
        "secondary in partner-down after SIGTERM",
        Duration::from_secs(2),
        || state(&p.b, REL) == "partner-down",
    );
    eprintln!(
        "SIGTERM with handover-on-stop: stopped in {stopped:?}, the secondary in partner-down {pd:?} later"
    );
    restart_primary_and_recover(&mut p, &[&addr, &prefix, &fresh, &fresh_prefix]);
}

/// Drops DHCPv6 traffic on `ns`'s client interface eth0 with nftables
/// (the link stays up, as after a failed switch port or filter).
fn drop_client_link(ns: &str) {
    for rule in [
        "add table inet duet_test",
        "add chain inet duet_test in { type filter hook input priority 0 ; }",
        "add chain inet duet_test out { type filter hook output priority 0 ; }",
        "add rule inet duet_test in iifname eth0 udp dport 547 drop",
        "add rule inet duet_test out oifname eth0 udp sport 547 drop",
    ] {
        let mut args = vec!["nft"];
        args.extend(rule.split(' '));
        run_ok(&in_ns(ns, &args), Duration::from_secs(10));
    }
}

fn restore_client_link(ns: &str) {
    run_ok(
        &in_ns(ns, &["nft", "delete", "table", "inet", "duet_test"]),
        Duration::from_secs(10),
    );
}

/// Partial communication loss (RFC 7031 §4.7, issue 26 point 4): the
/// primary's client link drops DHCPv6 (nftables; carrier and the partner
/// link up, so both stay NORMAL). The secondary rescues: the bound
/// client's Rebind gets the same address and prefix, a new client gets a
/// lease within rescue-after + 5 s; after the link returns the tables
/// agree and no address or prefix is held twice.
#[test]
fn the_secondary_rescues_clients_when_the_primary_loses_its_client_link() {
    // A valid lifetime of 2 min: dhclient's Rebind starts 10 s after T2
    // (its Renew's retransmission time) and is retransmitted after 10 s,
    // the first with an Elapsed Time of 5 s or more (RFC 8415 §15: the
    // first transmission of an exchange says 0).
    let mut p = build_pair_with(0, POOL1, "rescue-after = 5\n", 120);
    wait_states("fresh pair", &[(&p.a, REL), (&p.b, REL)], "normal", START_TIMEOUT);
    let k1 = add_client(&mut p.lab, 1, CLIENT_BR);
    let dh = Dhclient::start_in(&k1, p.lab.path("k1"), &["-N", "-P"]);
    let (_, addr) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, prefix) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    // Its first lease is MCLT-capped (30 s); the renewal at T1 gets 120 s.
    wait_value(&dh, 0, &["RENEW6"], "new_ip6_address", Duration::from_secs(15));
    wait_tables_agree(
        "bound",
        &p.a,
        &p.b,
        Some(REL),
        &[&addr, &prefix],
        Duration::from_secs(5),
    );

    drop_client_link(&p.ns_a);
    let cut = Instant::now();
    let from = event_count(&dh);
    let (_, a2) = wait_value(
        &dh,
        from,
        &["REBIND6"],
        "new_ip6_address",
        Duration::from_secs(40),
    );
    let (_, p2) = wait_value(&dh, from, &["REBIND6"], "new_ip6_prefix", Duration::from_secs(5));
    eprintln!(
        "rescue: the bound client's Rebind answered {:?} after the cut",
        cut.elapsed()
    );
    assert_eq!((a2.as_str(), p2.as_str()), (addr.as_str(), prefix.as_str()));
    assert_eq!(
        lease_file_server_id(&dh).as_deref(),
        Some(server_duid(&p.b).as_str())
    );

    let t0 = Instant::now();
    let (_dh2, fresh, fresh_prefix) = new_client_served_by_secondary(&mut p, 2);
    let took = t0.elapsed();
    eprintln!("rescue: a new client bound {took:?} after it started");
    assert!(
        took <= Duration::from_secs(10),
        "rescue-after 5 s + 5 s: {took:?}"
    );
    for s in [&p.a, &p.b] {
        assert_eq!(state(s, REL), "normal", "the partners never lost each other");
    }
    let sub = &relationship(&p.b, REL)["subnets"][0];
    assert!(sub["rescued"].as_u64().unwrap_or(0) >= 2, "{sub}");

    restore_client_link(&p.ns_a);
    wait_tables_agree(
        "after the link returned",
        &p.a,
        &p.b,
        Some(REL),
        &[&addr, &prefix, &fresh, &fresh_prefix],
        Duration::from_secs(10),
    );
    assert_no_duplicate_holders(&[&p.a, &p.b]);
}

/// Failure detection by default (issue 26 point 5): no `keepalive` in the
/// configuration; the server link is cut silently (a bridge port disabled:
/// no FIN, no RST). Both partners notice within 10 s, and a client that
/// reaches only the secondary is served.
#[test]
fn a_silent_cut_is_noticed_within_ten_seconds_by_default() {
    let mut p = build_pair_with(0, POOL1, "# keepalive: the default\n", VALID);
    wait_states("fresh pair", &[(&p.a, REL), (&p.b, REL)], "normal", START_TIMEOUT);
    p.lab.set_port(&PairLab::port("a", "eth1"), false);
    let t0 = Instant::now();
    let mut seen = [None, None];
    wait_for(Duration::from_secs(15), || {
        for (i, s) in [&p.a, &p.b].into_iter().enumerate() {
            if seen[i].is_none() && state(s, REL) == "communications-interrupted" {
                seen[i] = Some(t0.elapsed());
            }
        }
        seen.iter().all(Option::is_some).then_some(())
    });
    eprintln!(
        "silent cut noticed after {:?} (primary), {:?} (secondary)",
        seen[0], seen[1]
    );
    for (who, t) in ["primary", "secondary"].iter().zip(seen) {
        let t = t.unwrap_or_else(|| panic!("the {who} did not notice within 15 s"));
        assert!(t <= Duration::from_secs(10), "the {who} noticed after {t:?}");
    }
    let ns_a = p.ns_a.clone();
    let t1 = Instant::now();
    let (_dh, addr, _prefix) = client_only_reaching(&mut p, 2, &ns_a);
    eprintln!(
        "a client reaching only the secondary bound {:?} after it started",
        t1.elapsed()
    );
    assert!(even(&addr), "{addr}");
    p.lab.set_port(&PairLab::port("a", "eth1"), true);
    wait_states(
        "healed",
        &[(&p.a, REL), (&p.b, REL)],
        "normal",
        Duration::from_secs(40),
    );
    assert_no_duplicate_holders(&[&p.a, &p.b]);
}

/// Issue 27: both partners hold the same host reservation (by the client's
/// link-layer address) of an odd address — the primary's half — and a
/// prefix. dhclient -N -P gets them from the primary; with the primary
/// killed, the same client starting afresh (empty lease file, same DUID)
/// gets them again from the secondary alone in COMMUNICATIONS-INTERRUPTED,
/// which never allocates the primary's half to anyone else. Then the
/// secondary restarts with another reserved address: the partners refuse
/// each other (ConfigurationConflict) and the refusal names both
/// reservations.
#[test]
fn a_reserved_client_keeps_its_lease_from_the_secondary_and_mismatched_reservations_are_refused() {
    const NA: &str = "2001:db8:1::1235";
    const PD: &str = "2001:db8:8000:ab00::/56";
    let res = |na: &str| {
        format!(
            "reservations = [{{ hw-address = \"{}\", addresses = [\"{na}\"], prefixes = [\"{PD}\"] }}]\n",
            mac(0x20, 1)
        )
    };
    let mut p = build_pair_full(0, POOL1, "", VALID, [&res(NA), &res(NA)]);
    wait_states("fresh pair", &[(&p.a, REL), (&p.b, REL)], "normal", START_TIMEOUT);
    let k1 = add_client(&mut p.lab, 1, CLIENT_BR);
    let mut dh = Dhclient::start_in(&k1, p.lab.path("k1"), &["-N", "-P"]);
    let (_, a) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, pd) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    assert_eq!((a.as_str(), pd.as_str()), (NA, PD), "from the primary");
    wait_tables_agree(
        "reserved lease",
        &p.a,
        &p.b,
        Some(REL),
        &[NA, PD],
        Duration::from_secs(5),
    );
    dh.kill();

    p.a.kill9();
    wait_states(
        "primary killed",
        &[(&p.b, REL)],
        "communications-interrupted",
        Duration::from_secs(15),
    );
    let mut dh = Dhclient::start_in(&k1, p.lab.path("k1-again"), &["-N", "-P"]);
    let (_, a) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_address", BIND_TIMEOUT);
    let (_, pd) = wait_value(&dh, 0, &["BOUND6"], "new_ip6_prefix", BIND_TIMEOUT);
    assert_eq!((a.as_str(), pd.as_str()), (NA, PD), "from the secondary alone");
    let leases = p.b.leases();
    let l = find(&leases, NA).unwrap_or_else(|| panic!("{NA} not in the secondary's leases: {leases:?}"));
    assert_eq!(
        (l.state.as_str(), l.duid.as_deref()),
        ("active", Some(client_duid(1).as_str())),
        "{l:?}"
    );
    dh.kill();

    // The secondary's reservation edited on its own.
    let text = fs::read_to_string(&p.b.config).expect("config");
    fs::write(&p.b.config, text.replace(NA, "2001:db8:1::1237")).expect("config");
    p.b.stop();
    p.b.restart();
    p.a.restart();
    let log = wait_for(Duration::from_secs(30), || {
        let log = p.b.log();
        log.contains("ConfigurationConflict").then_some(log)
    })
    .unwrap_or_else(|| panic!("no ConfigurationConflict in the secondary's log:\n{}", p.b.log()));
    let refusal = log
        .lines()
        .find(|l| l.contains("ConfigurationConflict"))
        .unwrap_or_default();
    for want in [NA, "2001:db8:1::1237", "reservation hw-address 02:00:00:00:20:01"] {
        assert!(
            refusal.contains(want),
            "the refusal does not name {want}: {refusal}"
        );
    }
}
