use super::*;

/// The config of INTERFACE.md, verbatim.
const INTERFACE_EXAMPLE: &str = r#"
[server]
name = "dhcp-a"                       # this server's name; also its TLS identity
data-dir = "/var/lib/duet/a"          # server DUID, lease store, failover state
interfaces = ["eth0"]                 # join ff02::1:2 on these, answer on-link clients
listen = ["[2001:db8::1]:547"]        # optional extra unicast sockets (relayed traffic)

[control]
socket = "/run/duet/a.sock"           # default: <data-dir>/control.sock, mode 0600

[[subnet]]
prefix = "2001:db8:1::/64"
interface = "eth0"                    # link whose on-link clients belong here (relayed
                                      # traffic is matched by the relay's link-address)
pools = ["2001:db8:1::100-2001:db8:1::1ff"]
pd-pools = [{ prefix = "2001:db8:8000::/40", delegated-length = 56 }]
preferred-lifetime = 3000             # seconds
valid-lifetime = 4000
renew-time = 1000                     # T1
rebind-time = 2000                    # T2
dns-servers = ["2001:db8::53"]
domain-search = ["example.org"]
failover = "pair-1"                   # relationship that shares this subnet's pools; absent: not shared

[[failover]]
name = "pair-1"                       # relationship name (RFC 8156 §6.2); same on both partners
role = "primary"                      # or "secondary"
listen = "[2001:db8:ff::1]:647"       # local address for the partner link
peer = "[2001:db8:ff::2]:647"         # partner's address (the primary connects, the secondary listens)
mclt = 3600                           # seconds
max-unacked-bndupd = 100
auto-partner-down = 0                 # seconds in COMMUNICATIONS-INTERRUPTED before PARTNER-DOWN; 0 = never
prefix-split = 0.5                    # share of delegable prefixes the secondary holds
tls = { cert = "a.crt", key = "a.key", ca = "ca.crt", peer-name = "dhcp-b" }
# insecure = true                     # only this explicit line allows a link without TLS
"#;

// ------------------------------------------------------------- builders

const SERVER: &[(&str, &str)] = &[
    ("name", r#""dhcp-a""#),
    ("data-dir", r#""/var/lib/duet/a""#),
    ("interfaces", r#"["eth0"]"#),
];
const SUBNET: &[(&str, &str)] = &[
    ("prefix", r#""2001:db8:1::/64""#),
    ("interface", r#""eth0""#),
    ("pools", r#"["2001:db8:1::100-2001:db8:1::1ff"]"#),
];
const FAILOVER: &[(&str, &str)] = &[
    ("name", r#""pair-1""#),
    ("role", r#""primary""#),
    ("listen", r#""[2001:db8:ff::1]:647""#),
    ("peer", r#""[2001:db8:ff::2]:647""#),
    (
        "tls",
        r#"{ cert = "a.crt", key = "a.key", ca = "ca.crt", peer-name = "dhcp-b" }"#,
    ),
];

/// A TOML table: `base` with `changes` applied (`Some` sets or adds a key,
/// `None` removes it).
fn table(header: &str, base: &[(&str, &str)], changes: &[(&str, Option<&str>)]) -> String {
    let mut keys: Vec<(String, String)> = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (k, v) in changes {
        keys.retain(|(key, _)| key != k);
        if let Some(v) = v {
            keys.push((k.to_string(), v.to_string()));
        }
    }
    let mut out = format!("{header}\n");
    for (k, v) in keys {
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
}

fn server(changes: &[(&str, Option<&str>)]) -> String {
    table("[server]", SERVER, changes)
}

fn subnet(changes: &[(&str, Option<&str>)]) -> String {
    table("[[subnet]]", SUBNET, changes)
}

fn failover(changes: &[(&str, Option<&str>)]) -> String {
    table("[[failover]]", FAILOVER, changes)
}

fn parse(parts: &[String]) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(&parts.join("\n"), Path::new("/etc/duet"))
}

fn ok(parts: &[String]) -> Config {
    match parse(parts) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn errors(parts: &[String]) -> Vec<String> {
    match parse(parts) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// The single error of an invalid config, as `path: message`.
fn only_error(parts: &[String]) -> String {
    let errs = errors(parts);
    assert_eq!(errs.len(), 1, "expected exactly one error, got {errs:#?}");
    errs.into_iter().next().unwrap_or_default()
}

/// The path of the single error.
fn only_error_path(parts: &[String]) -> String {
    let e = only_error(parts);
    e.split_once(": ").map(|(p, _)| p.to_string()).unwrap_or(e)
}

fn with_failover(subnet_changes: &[(&str, Option<&str>)], fo: &[(&str, Option<&str>)]) -> Vec<String> {
    let mut s: Vec<(&str, Option<&str>)> = vec![("failover", Some(r#""pair-1""#))];
    s.extend_from_slice(subnet_changes);
    vec![server(&[]), subnet(&s), failover(fo)]
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn p(s: &str) -> Ipv6Prefix {
    s.parse().unwrap()
}

// ------------------------------------------------------------- whole files

#[test]
fn interface_example_parses_with_failover() {
    let c = Config::from_toml_str(INTERFACE_EXAMPLE, Path::new("/etc/duet")).unwrap();
    assert_eq!(c.server.name, "dhcp-a");
    assert_eq!(c.server.data_dir, PathBuf::from("/var/lib/duet/a"));
    assert_eq!(c.server.interfaces, vec!["eth0".to_string()]);
    assert_eq!(
        c.server.listen,
        vec!["[2001:db8::1]:547".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(c.control.socket, PathBuf::from("/run/duet/a.sock"));

    assert_eq!(c.subnets.len(), 1);
    let s = &c.subnets[0];
    assert_eq!(s.prefix, p("2001:db8:1::/64"));
    assert_eq!(s.interface.as_deref(), Some("eth0"));
    assert_eq!(
        s.pools,
        vec![AddressRange {
            start: a("2001:db8:1::100"),
            end: a("2001:db8:1::1ff")
        }]
    );
    assert_eq!(s.pools[0].len(), 256);
    assert_eq!(
        s.pd_pools,
        vec![PdPoolConfig {
            prefix: p("2001:db8:8000::/40"),
            delegated_length: 56
        }]
    );
    assert_eq!(s.pd_pools[0].prefix_count(), 65536);
    assert_eq!(
        (
            s.preferred_lifetime,
            s.valid_lifetime,
            s.renew_time,
            s.rebind_time
        ),
        (secs(3000), secs(4000), secs(1000), secs(2000))
    );
    assert_eq!(s.dns_servers, vec![a("2001:db8::53")]);
    assert_eq!(s.domain_search, vec!["example.org".to_string()]);
    assert_eq!(s.failover.as_deref(), Some("pair-1"));

    assert_eq!(c.failover.len(), 1);
    let r = &c.failover[0];
    assert_eq!(r.name, "pair-1");
    assert_eq!(r.role, Role::Primary);
    assert_eq!(r.listen, "[2001:db8:ff::1]:647".parse::<SocketAddr>().unwrap());
    assert_eq!(r.peer, "[2001:db8:ff::2]:647".parse::<SocketAddr>().unwrap());
    assert_eq!(r.mclt, secs(3600));
    assert_eq!(r.max_unacked_bndupd, 100);
    assert_eq!(r.auto_partner_down, None);
    assert_eq!(r.prefix_split, 0.5);
    assert!(!r.insecure);
    assert_eq!(r.keepalive, DEFAULT_KEEPALIVE);
    assert_eq!(
        r.tls,
        Some(TlsConfig {
            cert: PathBuf::from("/etc/duet/a.crt"),
            key: PathBuf::from("/etc/duet/a.key"),
            ca: PathBuf::from("/etc/duet/ca.crt"),
            peer_name: "dhcp-b".to_string(),
        })
    );
    assert_eq!(c.relationship_of(s).map(|r| r.name.as_str()), Some("pair-1"));
}

#[test]
fn standalone_example_parses_without_failover() {
    let text = include_str!("../../../../examples/standalone.toml");
    let c = Config::from_toml_str(text, Path::new("/x")).unwrap();
    assert!(c.failover.is_empty());
    assert_eq!(c.subnets.len(), 1);
    let s = &c.subnets[0];
    assert_eq!(s.prefix, p("2001:db8:1::/64"));
    assert_eq!(s.interface.as_deref(), Some("eth0"));
    assert_eq!(s.pools[0].start, a("2001:db8:1::100"));
    assert_eq!(s.pools[0].end, a("2001:db8:1::1ff"));
    assert_eq!(s.failover, None);
    assert_eq!(c.server.interfaces, vec!["eth0".to_string()]);
}

// ------------------------------------------------------------- defaults

#[test]
fn defaults_apply_when_optional_keys_absent() {
    let c = ok(&[server(&[]), subnet(&[("interface", None), ("pools", None)])]);
    assert_eq!(c.server.listen, Vec::<SocketAddr>::new());
    assert_eq!(c.server.queue_size, 4096);
    assert_eq!(c.server.batch_max, 256);
    assert_eq!(c.control.socket, PathBuf::from("/var/lib/duet/a/control.sock"));
    let s = &c.subnets[0];
    assert_eq!(s.interface, None);
    assert!(s.pools.is_empty() && s.pd_pools.is_empty());
    assert_eq!(s.preferred_lifetime, secs(3000));
    assert_eq!(s.valid_lifetime, secs(4000));
    assert_eq!(s.renew_time, secs(1000));
    assert_eq!(s.rebind_time, secs(2000));
    assert!(s.dns_servers.is_empty() && s.domain_search.is_empty());
    assert_eq!(s.failover, None);
    assert_eq!(s.preference, 0);
    assert!(!s.rapid_commit);
    assert!(c.failover.is_empty());
}

#[test]
fn failover_defaults_apply_when_optional_keys_absent() {
    let c = ok(&with_failover(&[], &[]));
    let r = &c.failover[0];
    assert_eq!(r.mclt, secs(3600));
    assert_eq!(r.max_unacked_bndupd, 100);
    assert_eq!(r.auto_partner_down, None);
    assert_eq!(r.prefix_split, 0.5);
    assert!(!r.insecure);
    assert_eq!(r.keepalive, secs(8));
    assert_eq!(r.rescue_after, Some(secs(5)));
    assert!(!r.handover_on_stop);
}

#[test]
fn optional_keys_override_defaults_when_given() {
    let c = ok(&with_failover(
        &[("preference", Some("255")), ("rapid-commit", Some("true"))],
        &[
            ("auto-partner-down", Some("600")),
            ("keepalive", Some("10")),
            ("prefix-split", Some("1")),
            ("mclt", Some("30")),
            ("max-unacked-bndupd", Some("1")),
            ("rescue-after", Some("30")),
            ("handover-on-stop", Some("true")),
        ],
    ));
    assert_eq!(c.subnets[0].preference, 255);
    assert!(c.subnets[0].rapid_commit);
    let r = &c.failover[0];
    assert_eq!(r.auto_partner_down, Some(secs(600)));
    assert_eq!(r.keepalive, secs(10));
    assert_eq!(r.prefix_split, 1.0);
    assert_eq!(r.mclt, secs(30));
    assert_eq!(r.max_unacked_bndupd, 1);
    assert_eq!(r.rescue_after, Some(secs(30)));
    assert!(r.handover_on_stop);
    let c = ok(&with_failover(&[], &[("rescue-after", Some("0"))]));
    assert_eq!(c.failover[0].rescue_after, None, "0 turns rescue off");

    let c = ok(&[
        server(&[("queue-size", Some("8")), ("batch-max", Some("2"))]),
        subnet(&[]),
    ]);
    assert_eq!((c.server.queue_size, c.server.batch_max), (8, 2));
    assert!(c.server.kernel_filter, "on by default");

    let c = ok(&[server(&[("kernel-filter", Some("false"))]), subnet(&[])]);
    assert!(!c.server.kernel_filter);
    let e = errors(&[server(&[("kernel-filter", Some("\"no\""))]), subnet(&[])]);
    assert!(e.iter().any(|l| l.contains("kernel-filter")), "{e:?}");
}

#[test]
fn renew_and_rebind_accept_zero_when_left_to_client() {
    let c = ok(&[
        server(&[]),
        subnet(&[("renew-time", Some("0")), ("rebind-time", Some("0"))]),
    ]);
    assert_eq!(
        (c.subnets[0].renew_time, c.subnets[0].rebind_time),
        (secs(0), secs(0))
    );
    // T1 only, T2 left to the client: no T1 <= T2 rule.
    ok(&[
        server(&[]),
        subnet(&[("renew-time", Some("3000")), ("rebind-time", Some("0"))]),
    ]);
}

#[test]
fn insecure_link_accepted_when_tls_absent() {
    let c = ok(&with_failover(&[], &[("tls", None), ("insecure", Some("true"))]));
    assert!(c.failover[0].insecure);
    assert_eq!(c.failover[0].tls, None);
}

// ------------------------------------------------------------- paths

#[test]
fn relative_paths_resolve_against_base_dir() {
    let c = ok(&with_failover(
        &[],
        &[(
            "tls",
            Some(r#"{ cert = "tls/a.crt", key = "/abs/a.key", ca = "../ca.crt", peer-name = "b" }"#),
        )],
    ));
    let tls = c.failover[0].tls.clone().unwrap();
    assert_eq!(tls.cert, PathBuf::from("/etc/duet/tls/a.crt"));
    assert_eq!(tls.key, PathBuf::from("/abs/a.key"));
    assert_eq!(tls.ca, PathBuf::from("/etc/duet/../ca.crt"));

    let c = ok(&[server(&[("data-dir", Some(r#""state/a""#))]), subnet(&[])]);
    assert_eq!(c.server.data_dir, PathBuf::from("/etc/duet/state/a"));
    assert_eq!(c.control.socket, PathBuf::from("/etc/duet/state/a/control.sock"));

    let c = ok(&[
        server(&[]),
        table("[control]", &[("socket", r#""run/a.sock""#)], &[]),
        subnet(&[]),
    ]);
    assert_eq!(c.control.socket, PathBuf::from("/etc/duet/run/a.sock"));
}

#[test]
fn load_resolves_paths_against_file_dir() {
    let dir = std::env::temp_dir().join(format!("duet-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.toml");
    let text = [server(&[("data-dir", Some(r#""data""#))]), subnet(&[])].join("\n");
    std::fs::write(&file, text).unwrap();
    let c = Config::load(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(c.server.data_dir, dir.join("data"));
    assert!(c.server.data_dir.is_absolute());
}

#[test]
fn load_reports_path_when_file_unreadable() {
    let missing = Path::new("/nonexistent/duet/none.toml");
    let e = Config::load(missing).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].path, "/nonexistent/duet/none.toml");
    assert!(e.0[0].message.starts_with("cannot read"), "{}", e.0[0].message);
}

// ------------------------------------------------------------- structure

#[test]
fn unknown_key_named_with_its_path() {
    let e = only_error(&[server(&[("colour", Some("1"))]), subnet(&[])]);
    assert!(
        e.starts_with("server.colour: unknown key; expected one of `name`"),
        "{e}"
    );

    let e = only_error(&[
        server(&[]),
        subnet(&[]),
        subnet(&[
            ("prefix", Some(r#""2001:db8:2::/64""#)),
            ("pools", None),
            ("interface", None),
            ("pool", Some("[]")),
        ]),
    ]);
    assert!(e.starts_with("subnet[1].pool: unknown key"), "{e}");

    let pd = r#"[{ prefix = "2001:db8:8000::/48", delegated-length = 56, lenght = 1 }]"#;
    let e = only_error(&[server(&[]), subnet(&[("pd-pools", Some(pd))])]);
    assert_eq!(
        e,
        "subnet[0].pd-pools[0].lenght: unknown key; expected `prefix` or `delegated-length`"
    );

    let tls = r#"{ cert = "a.crt", key = "a.key", ca = "ca.crt", peer-name = "b", verify = false }"#;
    let e = only_error(&with_failover(&[], &[("tls", Some(tls))]));
    assert!(e.starts_with("failover[0].tls.verify: unknown key"), "{e}");

    let e = only_error(&[server(&[]), subnet(&[]), "[logging]\nlevel = 1\n".to_string()]);
    assert!(
        e.starts_with("logging: unknown key; expected one of `server`"),
        "{e}"
    );
}

#[test]
fn unknown_keys_all_reported_when_several() {
    let errs = errors(&[
        server(&[("a", Some("1")), ("b", Some("2"))]),
        subnet(&[("c", Some("3"))]),
    ]);
    let paths: Vec<&str> = errs
        .iter()
        .filter_map(|e| e.split_once(':').map(|(p, _)| p))
        .collect();
    assert_eq!(paths, vec!["server.a", "server.b", "subnet[0].c"]);
}

#[test]
fn wrong_type_named_with_key_path() {
    let e = only_error(&[server(&[]), subnet(&[("valid-lifetime", Some(r#""4000""#))])]);
    assert_eq!(
        e,
        r#"subnet[0].valid-lifetime: invalid type: string "4000", expected a whole number of seconds"#
    );

    let e = only_error(&with_failover(&[], &[("mclt", Some("-5"))]));
    assert_eq!(
        e,
        "failover[0].mclt: invalid value: integer `-5`, expected a whole number of seconds"
    );

    let e = only_error_path(&[
        server(&[]),
        subnet(&[("pools", Some(r#"["2001:db8:1::100-2001:db8:1::1ff", 7]"#))]),
    ]);
    assert_eq!(e, "subnet[0].pools[1]");

    let e = only_error(&with_failover(&[], &[("tls", Some(r#""a.crt""#))]));
    assert_eq!(
        e,
        r#"failover[0].tls: invalid type: string "a.crt", expected a table"#
    );
}

#[test]
fn wrong_type_not_reported_again_as_missing() {
    // `name` is present but not a string: one error, not also "missing".
    let e = only_error(&[server(&[("name", Some("42"))]), subnet(&[])]);
    assert!(e.starts_with("server.name: invalid type: integer `42`"), "{e}");
}

#[test]
fn syntax_error_names_line_and_column() {
    let text = "[server]\nname = \"a\"\ndata-dir = \n";
    let e = Config::from_toml_str(text, Path::new("/")).unwrap_err();
    assert!(!e.0.is_empty());
    assert_eq!(e.0[0].path, "line 3, column 12", "{e}");
}

#[test]
fn syntax_error_reported_for_duplicate_key() {
    let text = "[server]\nname = \"a\"\nname = \"b\"\n";
    let e = Config::from_toml_str(text, Path::new("/")).unwrap_err();
    assert_eq!(e.to_string(), "line 3, column 1: duplicate key");
}

#[test]
fn server_table_required() {
    assert_eq!(
        only_error(&[subnet(&[])]),
        "server: missing: add a [server] table with at least name and data-dir"
    );
}

#[test]
fn required_keys_reported_when_missing() {
    let errs = errors(&[
        server(&[("name", None), ("data-dir", None)]),
        subnet(&[("prefix", None)]),
        failover(&[("name", None), ("role", None), ("listen", None), ("peer", None)]),
    ]);
    assert_eq!(
        errs,
        vec![
            "server.name: required key is missing",
            "server.data-dir: required key is missing",
            "subnet[0].prefix: required key is missing",
            "failover[0].name: required key is missing",
            "failover[0].role: required key is missing",
            "failover[0].listen: required key is missing",
            "failover[0].peer: required key is missing",
        ]
    );
}

#[test]
fn subnet_required_when_none() {
    assert_eq!(
        only_error(&[server(&[])]),
        "subnet: no [[subnet]]: a server without subnets has nothing to offer"
    );
}

#[test]
fn subnet_must_be_array_of_tables() {
    let text = table("[subnet]", SUBNET, &[]);
    assert_eq!(
        only_error(&[server(&[]), text]),
        "subnet: must be an array of tables: write [[subnet]], not [subnet]"
    );
}

#[test]
fn every_error_reported_in_file_order() {
    let errs = errors(&[
        server(&[("listen", Some(r#"["10.0.0.1:547"]"#))]),
        subnet(&[
            ("pools", Some(r#"["2001:db8:1::1ff-2001:db8:1::100"]"#)),
            ("valid-lifetime", Some("0")),
        ]),
        failover(&[("mclt", Some("10")), ("prefix-split", Some("2.5"))]),
    ]);
    let paths: Vec<&str> = errs
        .iter()
        .filter_map(|e| e.split_once(':').map(|(p, _)| p))
        .collect();
    assert_eq!(
        paths,
        vec![
            "server.listen[0]",
            "subnet[0].pools[0]",
            "subnet[0].valid-lifetime",
            // The relationship is not used by any subnet.
            "failover[0]",
            "failover[0].mclt",
            "failover[0].prefix-split",
        ],
        "{errs:#?}"
    );
}

#[test]
fn errors_display_one_per_line() {
    let e = parse(&[server(&[("name", None), ("data-dir", None)]), subnet(&[])]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "server.name: required key is missing\nserver.data-dir: required key is missing"
    );
    assert_eq!(
        e.at("server.data-dir").map(|e| e.message.as_str()),
        Some("required key is missing")
    );
}

// ------------------------------------------------------------- [server]

#[test]
fn server_name_rejected_when_empty() {
    assert_eq!(
        only_error(&[server(&[("name", Some(r#""""#))]), subnet(&[])]),
        "server.name: must not be empty"
    );
}

#[test]
fn interface_rejected_when_empty_or_duplicate() {
    let e = only_error(&[server(&[("interfaces", Some(r#"["eth0", ""]"#))]), subnet(&[])]);
    assert_eq!(e, "server.interfaces[1]: empty interface name");
    let e = only_error(&[
        server(&[("interfaces", Some(r#"["eth0", "eth0"]"#))]),
        subnet(&[]),
    ]);
    assert_eq!(e, "server.interfaces[1]: `eth0` is listed twice");
    let e = only_error_path(&[
        server(&[("interfaces", Some(r#"["eth0", "a-very-long-ifname0"]"#))]),
        subnet(&[]),
    ]);
    assert_eq!(e, "server.interfaces[1]");
}

#[test]
fn server_rejected_when_no_interface_or_listen() {
    let e = only_error(&[server(&[("interfaces", None)]), subnet(&[("interface", None)])]);
    assert_eq!(e, "server.interfaces: neither server.interfaces nor server.listen is set: the server would receive nothing");
    // listen alone (relay-only server) is fine.
    ok(&[
        server(&[
            ("interfaces", Some("[]")),
            ("listen", Some(r#"["[2001:db8::1]:547"]"#)),
        ]),
        subnet(&[("interface", None)]),
    ]);
}

#[test]
fn listen_port_defaults_to_547_when_omitted() {
    let c = ok(&[
        server(&[(
            "listen",
            Some(r#"["[2001:db8::1]", "2001:db8::2", "[2001:db8::3]:5547"]"#),
        )]),
        subnet(&[]),
    ]);
    let ports: Vec<u16> = c.server.listen.iter().map(SocketAddr::port).collect();
    assert_eq!(ports, vec![547, 547, 5547]);
}

#[test]
fn listen_rejected_when_ipv4_or_garbage() {
    let e = only_error(&[
        server(&[("listen", Some(r#"["[2001:db8::1]:547", "192.0.2.1:547"]"#))]),
        subnet(&[]),
    ]);
    assert!(
        e.starts_with("server.listen[1]: `192.0.2.1:547` is an IPv4 address"),
        "{e}"
    );
    let e = only_error_path(&[server(&[("listen", Some(r#"["localhost:547"]"#))]), subnet(&[])]);
    assert_eq!(e, "server.listen[0]");
    let e = only_error_path(&[server(&[("listen", Some(r#"["[2001:db8::1]:0"]"#))]), subnet(&[])]);
    assert_eq!(e, "server.listen[0]");
}

#[test]
fn queue_size_rejected_when_zero() {
    let e = only_error(&[server(&[("queue-size", Some("0"))]), subnet(&[])]);
    assert_eq!(e, "server.queue-size: must be at least 1");
    let e = only_error(&[server(&[("batch-max", Some("0"))]), subnet(&[])]);
    assert_eq!(e, "server.batch-max: must be at least 1");
}

#[test]
fn send_pacing_defaults_and_limits() {
    let c = ok(&[server(&[]), subnet(&[])]);
    assert_eq!(
        (c.server.send_rate, c.server.send_burst),
        (DEFAULT_SEND_RATE, DEFAULT_SEND_BURST)
    );
    let c = ok(&[
        server(&[("send-rate", Some("0")), ("send-burst", Some("1"))]),
        subnet(&[]),
    ]);
    assert_eq!((c.server.send_rate, c.server.send_burst), (0, 1));
    let e = only_error(&[server(&[("send-burst", Some("0"))]), subnet(&[])]);
    assert_eq!(e, "server.send-burst: 0 is not between 1 and 65536");
    let e = only_error(&[server(&[("send-rate", Some("5000000000"))]), subnet(&[])]);
    assert_eq!(
        e,
        "server.send-rate: 5000000000 datagrams per second is more than 4294967295"
    );
    let e = only_error_path(&[server(&[("send-rate", Some("-1"))]), subnet(&[])]);
    assert_eq!(e, "server.send-rate");
}

#[test]
fn control_socket_rejected_when_too_long() {
    let long = format!(r#""/run/{}.sock""#, "x".repeat(120));
    let e = only_error_path(&[
        server(&[]),
        table("[control]", &[("socket", &long)], &[]),
        subnet(&[]),
    ]);
    assert_eq!(e, "control.socket");
}

// ------------------------------------------------------------- pools

#[test]
fn pool_rejected_when_end_before_start() {
    let pools = r#"["2001:db8:1::100-2001:db8:1::1ff", "2001:db8:1::200-2001:db8:1::2ff"]"#;
    ok(&[server(&[]), subnet(&[("pools", Some(pools))])]);
    let pools = r#"["2001:db8:1::100-2001:db8:1::1ff", "2001:db8:1::2ff-2001:db8:1::200"]"#;
    assert_eq!(
        only_error(&[server(&[]), subnet(&[("pools", Some(pools))])]),
        "subnet[0].pools[1]: end before start"
    );
}

#[test]
fn pool_rejected_when_outside_prefix() {
    let pools = r#"["2001:db8:2::1-2001:db8:2::ff"]"#;
    assert_eq!(
        only_error(&[server(&[]), subnet(&[("pools", Some(pools))])]),
        "subnet[0].pools[0]: 2001:db8:2::1 is outside subnet prefix 2001:db8:1::/64"
    );
    let pools = r#"["2001:db8:1::1-2001:db8:2::ff"]"#;
    assert_eq!(
        only_error(&[server(&[]), subnet(&[("pools", Some(pools))])]),
        "subnet[0].pools[0]: 2001:db8:2::ff is outside subnet prefix 2001:db8:1::/64"
    );
}

#[test]
fn pool_rejected_when_not_a_range() {
    for bad in [
        r#""2001:db8:1::100""#,
        r#""2001:db8:1::100-""#,
        r#""x-2001:db8:1::1ff""#,
    ] {
        let pools = format!("[{bad}]");
        assert_eq!(
            only_error_path(&[server(&[]), subnet(&[("pools", Some(&pools))])]),
            "subnet[0].pools[0]"
        );
    }
}

#[test]
fn pool_rejected_when_holding_subnet_router_anycast() {
    let pools = r#"["2001:db8:1::-2001:db8:1::ff"]"#;
    let e = only_error(&[server(&[]), subnet(&[("pools", Some(pools))])]);
    assert!(
        e.starts_with(
            "subnet[0].pools[0]: 2001:db8:1::-2001:db8:1::ff includes 2001:db8:1::, the Subnet-Router"
        ),
        "{e}"
    );
}

#[test]
fn pools_rejected_when_overlapping_in_subnet() {
    let pools = r#"["2001:db8:1::100-2001:db8:1::1ff", "2001:db8:1::1ff-2001:db8:1::2ff"]"#;
    assert_eq!(
        only_error(&[server(&[]), subnet(&[("pools", Some(pools))])]),
        "subnet[0].pools[1]: 2001:db8:1::1ff-2001:db8:1::2ff overlaps subnet[0].pools[0], 2001:db8:1::100-2001:db8:1::1ff"
    );
}

#[test]
fn pools_rejected_when_overlapping_across_subnets() {
    // Overlapping subnets make overlapping pools possible.
    let errs = errors(&[
        server(&[]),
        subnet(&[("prefix", Some(r#""2001:db8:1::/48""#)), ("interface", None)]),
        subnet(&[]),
    ]);
    assert_eq!(
        errs,
        vec![
            "subnet[1].prefix: 2001:db8:1::/64 overlaps subnet[0].prefix, 2001:db8:1::/48",
            "subnet[1].pools[0]: 2001:db8:1::100-2001:db8:1::1ff overlaps subnet[0].pools[0], \
             2001:db8:1::100-2001:db8:1::1ff",
        ]
    );
}

#[test]
fn subnets_rejected_when_overlapping() {
    let e = only_error(&[
        server(&[]),
        subnet(&[("pools", None)]),
        subnet(&[
            ("prefix", Some(r#""2001:db8:1:0:8000::/65""#)),
            ("pools", None),
            ("interface", None),
        ]),
    ]);
    assert_eq!(
        e,
        "subnet[1].prefix: 2001:db8:1:0:8000::/65 overlaps subnet[0].prefix, 2001:db8:1::/64"
    );
}

#[test]
fn prefix_rejected_when_malformed() {
    let e = only_error(&[
        server(&[]),
        subnet(&[("prefix", Some(r#""2001:db8:1::1/64""#)), ("pools", None)]),
    ]);
    assert!(
        e.starts_with("subnet[0].prefix: `2001:db8:1::1/64` has bits set past its length"),
        "{e}"
    );
}

// ------------------------------------------------------------- pd-pools

#[test]
fn pd_pool_rejected_when_delegated_length_shorter_than_prefix() {
    let pd = r#"[{ prefix = "2001:db8:8000::/40", delegated-length = 32 }]"#;
    let e = only_error(&[server(&[]), subnet(&[("pd-pools", Some(pd))])]);
    assert!(
        e.starts_with("subnet[0].pd-pools[0].delegated-length: 32 is shorter than the pool prefix"),
        "{e}"
    );
}

#[test]
fn pd_pool_rejected_when_delegated_length_above_128() {
    let pd = r#"[{ prefix = "2001:db8:8000::/40", delegated-length = 129 }]"#;
    let e = only_error(&[server(&[]), subnet(&[("pd-pools", Some(pd))])]);
    assert_eq!(
        e,
        "subnet[0].pd-pools[0].delegated-length: 129 is not a prefix length (at most 128)"
    );
    let pd = r#"[{ prefix = "2001:db8:8000::/40", delegated-length = 128 }]"#;
    ok(&[server(&[]), subnet(&[("pd-pools", Some(pd))])]);
}

#[test]
fn pd_pool_keys_required() {
    let pd = r#"[{ prefix = "2001:db8:8000::/40" }, { delegated-length = 56 }]"#;
    let errs = errors(&[server(&[]), subnet(&[("pd-pools", Some(pd))])]);
    assert_eq!(
        errs,
        vec![
            "subnet[0].pd-pools[0].delegated-length: required key is missing",
            "subnet[0].pd-pools[1].prefix: required key is missing",
        ]
    );
}

#[test]
fn pd_pools_rejected_when_overlapping() {
    let pd = r#"[{ prefix = "2001:db8:8000::/40", delegated-length = 56 }]"#;
    let pd2 = r#"[{ prefix = "2001:db8:8000::/48", delegated-length = 60 }]"#;
    let e = only_error(&[
        server(&[]),
        subnet(&[("pd-pools", Some(pd))]),
        subnet(&[
            ("prefix", Some(r#""2001:db8:2::/64""#)),
            ("pools", None),
            ("interface", None),
            ("pd-pools", Some(pd2)),
        ]),
    ]);
    assert_eq!(
        e,
        "subnet[1].pd-pools[0]: 2001:db8:8000::/48 overlaps subnet[0].pd-pools[0], 2001:db8:8000::/40"
    );
}

#[test]
fn pd_pool_rejected_when_overlapping_subnet_prefix() {
    let pd = r#"[{ prefix = "2001:db8:1::/48", delegated-length = 56 }]"#;
    let e = only_error_path(&[server(&[]), subnet(&[("pd-pools", Some(pd))])]);
    assert_eq!(e, "subnet[0].pd-pools[0]");
}

// ------------------------------------------------------------- lifetimes

#[test]
fn preferred_rejected_when_above_valid() {
    let e = only_error(&[server(&[]), subnet(&[("preferred-lifetime", Some("5000"))])]);
    assert_eq!(
        e,
        "subnet[0].preferred-lifetime: 5000 s is longer than valid-lifetime, 4000 s (the default)"
    );
}

#[test]
fn defaulted_lifetime_named_as_default_when_in_conflict() {
    let errs = errors(&[server(&[]), subnet(&[("valid-lifetime", Some("600"))])]);
    assert_eq!(
        errs,
        vec![
            "subnet[0].preferred-lifetime: 3000 s (the default) is longer than valid-lifetime, 600 s",
            "subnet[0].rebind-time: T2, 2000 s (the default), is after valid-lifetime, 600 s",
        ]
    );
}

#[test]
fn renew_rejected_when_after_rebind() {
    let e = only_error(&[
        server(&[]),
        subnet(&[("renew-time", Some("2500")), ("rebind-time", Some("2000"))]),
    ]);
    assert_eq!(
        e,
        "subnet[0].renew-time: T1, 2500 s, is after rebind-time (T2), 2000 s"
    );
}

#[test]
fn rebind_rejected_when_after_valid() {
    let e = only_error(&[
        server(&[]),
        subnet(&[
            ("rebind-time", Some("4001")),
            ("preferred-lifetime", Some("3000")),
        ]),
    ]);
    assert_eq!(
        e,
        "subnet[0].rebind-time: T2, 4001 s, is after valid-lifetime, 4000 s (the default)"
    );
}

#[test]
fn renew_rejected_when_after_valid_and_rebind_zero() {
    let e = only_error(&[
        server(&[]),
        subnet(&[("renew-time", Some("5000")), ("rebind-time", Some("0"))]),
    ]);
    assert_eq!(
        e,
        "subnet[0].renew-time: T1, 5000 s, is after valid-lifetime, 4000 s (the default)"
    );
}

#[test]
fn valid_lifetime_rejected_when_zero() {
    let errs = errors(&[
        server(&[]),
        subnet(&[
            ("valid-lifetime", Some("0")),
            ("preferred-lifetime", Some("0")),
            ("renew-time", Some("0")),
            ("rebind-time", Some("0")),
        ]),
    ]);
    assert_eq!(
        errs,
        vec![
            "subnet[0].valid-lifetime: must be above 0",
            "subnet[0].preferred-lifetime: must be above 0"
        ]
    );
}

#[test]
fn lifetime_rejected_when_infinite() {
    let e = only_error_path(&[server(&[]), subnet(&[("valid-lifetime", Some("4294967295"))])]);
    assert_eq!(e, "subnet[0].valid-lifetime");
}

#[test]
fn valid_lifetime_rejected_when_below_30s_under_failover() {
    let lt = [
        ("valid-lifetime", Some("29")),
        ("preferred-lifetime", Some("20")),
        ("renew-time", Some("10")),
        ("rebind-time", Some("15")),
    ];
    let e = only_error(&with_failover(&lt, &[]));
    assert_eq!(
        e,
        "subnet[0].valid-lifetime: 29 s is below 30 s, the shortest lease a subnet under failover may give"
    );
    // Without failover, short leases are allowed.
    ok(&[server(&[]), subnet(&lt)]);
}

// ------------------------------------------------------------- options

#[test]
fn dns_server_rejected_when_not_ipv6() {
    let e = only_error(&[
        server(&[]),
        subnet(&[("dns-servers", Some(r#"["2001:db8::53", "192.0.2.53"]"#))]),
    ]);
    assert_eq!(e, "subnet[0].dns-servers[1]: `192.0.2.53` is not an IPv6 address");
    let e = only_error_path(&[server(&[]), subnet(&[("dns-servers", Some(r#"["ff02::1"]"#))])]);
    assert_eq!(e, "subnet[0].dns-servers[0]");
}

#[test]
fn domain_search_rejected_when_not_a_dns_name() {
    let long_label = "a".repeat(64);
    let long_name = vec!["abcdefghi"; 26].join("."); // 259 characters
    for (bad, want) in [
        (
            "exa mple.org".to_string(),
            "subnet[0].domain-search[1]: `exa mple.org`: label `exa mple`",
        ),
        (
            "a..b".to_string(),
            "subnet[0].domain-search[1]: `a..b` has an empty label",
        ),
        (format!("{long_label}.org"), "subnet[0].domain-search[1]: `aaaa"),
        (long_name, "subnet[0].domain-search[1]: `abcdefghi."),
        (
            "-a.org".to_string(),
            "subnet[0].domain-search[1]: `-a.org`: label `-a` starts or ends with `-`",
        ),
    ] {
        let list = format!(r#"["example.org", "{bad}"]"#);
        let e = only_error(&[server(&[]), subnet(&[("domain-search", Some(&list))])]);
        assert!(e.starts_with(want), "{e}");
    }
    let c = ok(&[
        server(&[]),
        subnet(&[("domain-search", Some(r#"["example.org.", "_srv.x-y.example"]"#))]),
    ]);
    assert_eq!(
        c.subnets[0].domain_search,
        vec!["example.org", "_srv.x-y.example"]
    );
}

#[test]
fn preference_rejected_when_above_255() {
    let e = only_error(&[server(&[]), subnet(&[("preference", Some("256"))])]);
    assert_eq!(e, "subnet[0].preference: must be from 0 to 255");
}

// ------------------------------------------------------------- interfaces

#[test]
fn subnet_interface_rejected_when_not_a_server_interface() {
    let e = only_error(&[server(&[]), subnet(&[("interface", Some(r#""eth1""#))])]);
    assert_eq!(
        e,
        r#"subnet[0].interface: `eth1` is not one of server.interfaces ["eth0"]"#
    );
}

#[test]
fn subnet_interface_rejected_when_shared_by_two_subnets() {
    let e = only_error(&[
        server(&[]),
        subnet(&[]),
        subnet(&[("prefix", Some(r#""2001:db8:2::/64""#)), ("pools", None)]),
    ]);
    assert_eq!(
        e,
        "subnet[1].interface: `eth0` is already the interface of subnet[0]; one subnet per link"
    );
}

// ------------------------------------------------------------- failover

#[test]
fn subnet_failover_rejected_when_relationship_unknown() {
    let e = only_error(&[server(&[]), subnet(&[("failover", Some(r#""pair-9""#))])]);
    assert_eq!(
        e,
        "subnet[0].failover: no [[failover]] named `pair-9` (there is no [[failover]])"
    );
    let errs = errors(&with_failover(&[("failover", Some(r#""pair-2""#))], &[]));
    assert_eq!(
        errs,
        vec![
            "subnet[0].failover: no [[failover]] named `pair-2` (known: `pair-1`)",
            r#"failover[0]: no [[subnet]] has failover = "pair-1": the relationship shares nothing"#,
        ]
    );
}

#[test]
fn relationship_rejected_when_unused() {
    let e = only_error(&[server(&[]), subnet(&[]), failover(&[])]);
    assert_eq!(
        e,
        r#"failover[0]: no [[subnet]] has failover = "pair-1": the relationship shares nothing"#
    );
}

#[test]
fn relationship_names_rejected_when_duplicate() {
    let mut parts = with_failover(&[], &[]);
    parts.push(failover(&[("listen", Some(r#""[2001:db8:ff::1]:648""#))]));
    assert_eq!(
        only_error(&parts),
        "failover[1].name: `pair-1` is already the name of failover[0]"
    );
}

#[test]
fn role_rejected_when_not_primary_or_secondary() {
    let e = only_error(&with_failover(&[], &[("role", Some(r#""master""#))]));
    assert_eq!(
        e,
        "failover[0].role: `master` is not a role (expected `primary` or `secondary`)"
    );
    let c = ok(&with_failover(&[], &[("role", Some(r#""secondary""#))]));
    assert_eq!(c.failover[0].role, Role::Secondary);
}

#[test]
fn mclt_rejected_when_below_30s() {
    let e = only_error(&with_failover(&[], &[("mclt", Some("29"))]));
    assert_eq!(e, "failover[0].mclt: 29 s is below 30 s, the shortest MCLT");
}

#[test]
fn max_unacked_bndupd_rejected_when_zero() {
    let e = only_error(&with_failover(&[], &[("max-unacked-bndupd", Some("0"))]));
    assert_eq!(e, "failover[0].max-unacked-bndupd: must be at least 1");
}

#[test]
fn prefix_split_rejected_when_outside_0_to_1() {
    for bad in ["-0.1", "1.01", "nan"] {
        let e = only_error_path(&with_failover(&[], &[("prefix-split", Some(bad))]));
        assert_eq!(e, "failover[0].prefix-split", "{bad}");
    }
    ok(&with_failover(&[], &[("prefix-split", Some("0"))]));
}

#[test]
fn rescue_after_beyond_what_elapsed_time_can_say_is_rejected() {
    let e = only_error(&with_failover(&[], &[("rescue-after", Some("656"))]));
    assert!(
        e.starts_with("failover[0].rescue-after: 656 s is beyond 655 s"),
        "{e}"
    );
    ok(&with_failover(&[], &[("rescue-after", Some("655"))]));
}

#[test]
fn keepalive_rejected_when_zero() {
    let e = only_error(&with_failover(&[], &[("keepalive", Some("0"))]));
    assert_eq!(e, "failover[0].keepalive: must be at least 1 s");
}

#[test]
fn failover_port_defaults_to_647_when_omitted() {
    let c = ok(&with_failover(
        &[],
        &[
            ("listen", Some(r#""[2001:db8:ff::1]""#)),
            ("peer", Some(r#""2001:db8:ff::2""#)),
        ],
    ));
    assert_eq!(
        c.failover[0].listen,
        "[2001:db8:ff::1]:647".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        c.failover[0].peer,
        "[2001:db8:ff::2]:647".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn peer_rejected_when_ipv4_unspecified_or_same_as_listen() {
    let e = only_error_path(&with_failover(&[], &[("peer", Some(r#""192.0.2.2:647""#))]));
    assert_eq!(e, "failover[0].peer");
    let e = only_error_path(&with_failover(&[], &[("peer", Some(r#""[::]:647""#))]));
    assert_eq!(e, "failover[0].peer");
    let e = only_error_path(&with_failover(
        &[],
        &[("peer", Some(r#""[2001:db8:ff::1]:647""#))],
    ));
    assert_eq!(e, "failover[0].peer");
}

#[test]
fn tls_required_when_not_insecure() {
    let e = only_error(&with_failover(&[], &[("tls", None)]));
    assert!(
        e.starts_with(
            "failover[0].tls: missing: give tls = { cert, key, ca, peer-name }, or insecure = true"
        ),
        "{e}"
    );
    let e = only_error_path(&with_failover(&[], &[("tls", None), ("insecure", Some("false"))]));
    assert_eq!(e, "failover[0].tls");
}

#[test]
fn tls_rejected_when_insecure_too() {
    let e = only_error(&with_failover(&[], &[("insecure", Some("true"))]));
    assert_eq!(
        e,
        "failover[0].insecure: insecure = true and a tls table are both given; choose one"
    );
}

#[test]
fn tls_keys_required_and_non_empty() {
    let tls = r#"{ cert = "a.crt", key = "a.key", peer-name = "" }"#;
    let errs = errors(&with_failover(&[], &[("tls", Some(tls))]));
    // Errors about absent keys come after those of the keys present.
    assert_eq!(
        errs,
        vec![
            "failover[0].tls.peer-name: must not be empty",
            "failover[0].tls.ca: required key is missing",
        ]
    );
}

#[test]
fn tls_peer_name_rejected_when_own_name() {
    let tls = r#"{ cert = "a.crt", key = "a.key", ca = "ca.crt", peer-name = "dhcp-a" }"#;
    let e = only_error_path(&with_failover(&[], &[("tls", Some(tls))]));
    assert_eq!(e, "failover[0].tls.peer-name");
}

// ------------------------------------------------------------- types and lookups

#[test]
fn address_range_parses_and_measures() {
    let r: AddressRange = "2001:db8::10 - 2001:db8::1f".parse().unwrap();
    assert_eq!(r.len(), 16);
    assert_eq!(r.to_string(), "2001:db8::10-2001:db8::1f");
    assert!(r.contains(a("2001:db8::1f")) && !r.contains(a("2001:db8::20")));
    let all: AddressRange = ":: - ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
    assert_eq!(all.len(), u128::MAX);
    assert_eq!(
        "2001:db8::2-2001:db8::1".parse::<AddressRange>(),
        Err(AddressRangeError::EndBeforeStart)
    );
}

#[test]
fn role_displays_lower_case() {
    assert_eq!(Role::Primary.to_string(), "primary");
    assert_eq!(Role::Secondary.to_string(), "secondary");
    assert_eq!("secondary".parse::<Role>(), Ok(Role::Secondary));
}

#[test]
fn lookups_find_subnets_and_relationships() {
    let c = ok(&[
        server(&[("interfaces", Some(r#"["eth0", "eth1"]"#))]),
        subnet(&[("failover", Some(r#""pair-1""#))]),
        subnet(&[
            ("prefix", Some(r#""2001:db8:2::/64""#)),
            ("interface", Some(r#""eth1""#)),
            ("pools", Some(r#"["2001:db8:2::100-2001:db8:2::1ff"]"#)),
            (
                "pd-pools",
                Some(r#"[{ prefix = "2001:db8:8000::/48", delegated-length = 56 }]"#),
            ),
        ]),
        failover(&[]),
    ]);
    assert_eq!(c.relationship("pair-1").map(|r| r.role), Some(Role::Primary));
    assert!(c.relationship("pair-2").is_none());
    assert_eq!(c.subnets_of("pair-1").count(), 1);
    assert_eq!(
        c.subnet_for_interface("eth1").map(|s| s.prefix),
        Some(p("2001:db8:2::/64"))
    );
    assert!(c.subnet_for_interface("eth9").is_none());
    let s = c.subnet_containing(a("2001:db8:2::1")).unwrap();
    assert_eq!(s.prefix, p("2001:db8:2::/64"));
    assert!(c.relationship_of(s).is_none());
    assert!(s.pool_containing(a("2001:db8:2::1ff")).is_some());
    assert!(s.pool_containing(a("2001:db8:2::200")).is_none());
    assert!(s.pd_pool_covering(&p("2001:db8:8000:100::/56")).is_some());
    assert!(s.pd_pool_covering(&p("2001:db8:9000::/56")).is_none());
}

#[test]
fn wrong_type_in_array_not_reported_again_as_absent() {
    // `interfaces` is dropped for its bad element; that must not also read
    // as "no interfaces" or as eth0 missing from them.
    let e = only_error(&[server(&[("interfaces", Some(r#"["eth0", 1]"#))]), subnet(&[])]);
    assert_eq!(
        e,
        "server.interfaces[1]: invalid type: integer `1`, expected a string"
    );
}

#[test]
fn pd_pools_accepted_when_written_as_array_of_tables() {
    let text = [
        server(&[]),
        subnet(&[]),
        "[[subnet.pd-pools]]\nprefix = \"2001:db8:8000::/48\"\ndelegated-length = 56\n".to_string(),
        "[[subnet.pd-pools]]\nprefix = \"2001:db8:9000::/48\"\ndelegated-length = \"x\"\n".to_string(),
    ];
    let e = only_error(&text);
    assert_eq!(
        e,
        r#"subnet[0].pd-pools[1].delegated-length: invalid type: string "x", expected a whole number"#
    );
}

#[test]
fn missing_sections_reported_after_present_keys() {
    let errs = errors(&[table("[server]", SERVER, &[("subnet", Some("[1]"))])]);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with("server.subnet: unknown key"), "{errs:#?}");
    assert!(errs[1].starts_with("subnet: no [[subnet]]"), "{errs:#?}");
}

// ------------------------------------------------------------- options

fn opt(cfg: &[OptionConfig], code: u16) -> &OptionConfig {
    cfg.iter()
        .find(|o| o.code == code)
        .unwrap_or_else(|| panic!("no option {code} in {cfg:?}"))
}

#[test]
fn named_options_are_encoded_as_sent() {
    let c = ok(&[
        server(&[]),
        subnet(&[(
            "options",
            Some(
                r#"[
  { name = "sntp-servers", value = ["2001:db8::123"] },
  { name = "ntp-server", value = [{ address = "2001:db8::7b" }, { multicast = "ff05::101" }, { fqdn = "ntp.example.org" }] },
  { name = "aftr-name", value = "aftr.example.org", always-send = true },
  { name = "sol-max-rt", value = 3600 },
  { name = "inf-max-rt", value = 7200 },
  { name = "information-refresh-time", value = 86400 },
  { name = "vendor-opts", enterprise = 4491, value = [{ code = 1, hex = "0a:0b" }, { code = 2, text = "hi" }] },
]"#,
            ),
        )]),
    ]);
    let s = &c.subnets[0].options;
    assert_eq!(opt(s, 31).data, a("2001:db8::123").octets());
    let ntp = &opt(s, 56).data;
    assert_eq!(&ntp[..4], &[0, 1, 0, 16]);
    assert_eq!(&ntp[4..20], &a("2001:db8::7b").octets());
    assert_eq!(&ntp[20..24], &[0, 2, 0, 16]);
    assert_eq!(&ntp[40..44], &[0, 3, 0, 17]);
    assert_eq!(&ntp[44..], b"\x03ntp\x07example\x03org\x00");
    let aftr = opt(s, 64);
    assert_eq!(aftr.data, b"\x04aftr\x07example\x03org\x00");
    assert!(aftr.always_send);
    assert_eq!(opt(s, 82).data, 3600u32.to_be_bytes());
    assert!(!opt(s, 82).always_send);
    assert_eq!(opt(s, 83).data, 7200u32.to_be_bytes());
    assert_eq!(opt(s, 32).data, 86400u32.to_be_bytes());
    assert_eq!(
        opt(s, 17).data,
        [0, 0, 0x11, 0x8b, 0, 1, 0, 2, 0x0a, 0x0b, 0, 2, 0, 2, b'h', b'i']
    );
}

#[test]
fn any_option_by_code_as_hex_text_or_addresses() {
    let c = ok(&[
        server(&[]),
        subnet(&[]),
        r#"
[[options]]
code = 65000
hex = "de ad:be ef"
[[options]]
code = 65001
text = "hello"
[[options]]
code = 65002
addresses = ["2001:db8::1", "2001:db8::2"]
always-send = true
"#
        .to_string(),
    ]);
    assert_eq!(opt(&c.options, 65000).data, [0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(opt(&c.options, 65001).data, b"hello");
    assert_eq!(opt(&c.options, 65002).data.len(), 32);
    assert!(opt(&c.options, 65002).always_send);
}

#[test]
fn the_subnet_wins_over_the_top_level() {
    let c = ok(&[
        server(&[]),
        subnet(&[(
            "options",
            Some(r#"[{ name = "sntp-servers", value = ["2001:db8::1"] }]"#),
        )]),
        r#"
[[options]]
name = "sntp-servers"
value = ["2001:db8::2"]
[[options]]
name = "sol-max-rt"
value = 600
"#
        .to_string(),
    ]);
    let merged = options::merge(&c.subnets[0].options, &c.options);
    assert_eq!(opt(&merged, 31).data, a("2001:db8::1").octets());
    assert_eq!(opt(&merged, 82).data, 600u32.to_be_bytes());
    assert_eq!(merged.len(), 2);
}

#[test]
fn bad_options_are_named_by_their_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"[{ name = "ntp-servers", value = [] }]"#,
            "subnet[0].options[0].name",
            "unknown option `ntp-servers`",
        ),
        (
            r#"[{ name = "sntp-servers", value = ["ff02::1"] }]"#,
            "subnet[0].options[0].value[0]",
            "not a unicast",
        ),
        (
            r#"[{ name = "sntp-servers", value = [] }]"#,
            "subnet[0].options[0].value",
            "must not be empty",
        ),
        (
            r#"[{ name = "sntp-servers" }]"#,
            "subnet[0].options[0].value",
            "missing",
        ),
        (
            r#"[{ name = "sol-max-rt", value = 10 }]"#,
            "subnet[0].options[0].value",
            "from 60 to 86400",
        ),
        (
            r#"[{ name = "information-refresh-time", value = 10 }]"#,
            "subnet[0].options[0].value",
            "at least 600",
        ),
        (
            r#"[{ name = "aftr-name", value = "a..b" }]"#,
            "subnet[0].options[0].value",
            "empty label",
        ),
        (
            r#"[{ name = "ntp-server", value = [{ server = "x" }] }]"#,
            "subnet[0].options[0].value[0].server",
            "unknown key",
        ),
        (
            r#"[{ name = "ntp-server", value = [{ multicast = "2001:db8::1" }] }]"#,
            "subnet[0].options[0].value[0].multicast",
            "multicast",
        ),
        (
            r#"[{ name = "vendor-opts", value = [{ code = 1, hex = "00" }] }]"#,
            "subnet[0].options[0].enterprise",
            "enterprise number",
        ),
        (
            r#"[{ name = "dns-servers", value = ["2001:db8::1"], hex = "00" }]"#,
            "subnet[0].options[0].hex",
            "takes `value`",
        ),
        (
            r#"[{ code = 2, hex = "00" }]"#,
            "subnet[0].options[0].code",
            "sets the DUIDs itself",
        ),
        (
            r#"[{ code = 3, hex = "00" }]"#,
            "subnet[0].options[0].code",
            "pools and reservations",
        ),
        (
            r#"[{ code = 120, hex = "00" }]"#,
            "subnet[0].options[0].code",
            "failover option",
        ),
        (
            r#"[{ code = 70000, hex = "00" }]"#,
            "subnet[0].options[0].code",
            "from 1 to 65535",
        ),
        (
            r#"[{ code = 31, hex = "00" }]"#,
            "subnet[0].options[0].code",
            r#"name = "sntp-servers""#,
        ),
        (
            r#"[{ code = 65000, hex = "0g" }]"#,
            "subnet[0].options[0].hex",
            "not hex",
        ),
        (
            r#"[{ code = 65000, hex = "abc" }]"#,
            "subnet[0].options[0].hex",
            "not hex",
        ),
        (
            r#"[{ code = 65000, hex = "00", text = "x" }]"#,
            "subnet[0].options[0]",
            "exactly one of",
        ),
        (r#"[{ code = 65000 }]"#, "subnet[0].options[0]", "exactly one of"),
        (
            r#"[{ code = 65000, value = 1 }]"#,
            "subnet[0].options[0].value",
            "takes `hex`",
        ),
        (
            r#"[{ name = "sntp-servers", code = 31, value = ["2001:db8::1"] }]"#,
            "subnet[0].options[0]",
            "not both",
        ),
        (r#"[{ hex = "00" }]"#, "subnet[0].options[0].name", "missing"),
        (
            r#"[{ code = 65000, hex = "00", color = 1 }]"#,
            "subnet[0].options[0].color",
            "unknown key",
        ),
        (
            r#"[{ code = 65000, hex = "00" }, { code = 65000, text = "x" }]"#,
            "subnet[0].options[1]",
            "already set at subnet[0].options[0]",
        ),
    ];
    for (value, path, message) in cases {
        let e = only_error(&[server(&[]), subnet(&[("options", Some(value))])]);
        assert!(
            e.starts_with(&format!("{path}: ")) && e.contains(message),
            "{value}\n  expected {path}: …{message}…\n  got {e}"
        );
    }
}

#[test]
fn dns_servers_set_twice_in_a_subnet_is_refused() {
    let e = only_error(&[
        server(&[]),
        subnet(&[
            ("dns-servers", Some(r#"["2001:db8::53"]"#)),
            (
                "options",
                Some(r#"[{ name = "dns-servers", value = ["2001:db8::54"] }]"#),
            ),
        ]),
    ]);
    assert!(
        e.starts_with("subnet[0].options[0]: ") && e.contains("keep one"),
        "{e}"
    );
}

#[test]
fn a_bad_top_level_option_is_named() {
    let e = only_error(&[
        server(&[]),
        subnet(&[]),
        "[[options]]\nname = \"sol-max-rt\"\nvalue = \"x\"\n".to_string(),
    ]);
    assert!(e.starts_with("options[0].value: "), "{e}");
}

// ------------------------------------------------------------- reservations

const POOLS: &str = r#"["2001:db8:1::100-2001:db8:1::1ff"]"#;
const PD: &str = r#"[{ prefix = "2001:db8:8000::/48", delegated-length = 56 }]"#;

fn reserving(res: &str) -> Vec<String> {
    vec![
        server(&[]),
        subnet(&[
            ("pools", Some(POOLS)),
            ("pd-pools", Some(PD)),
            ("reservations", Some(res)),
        ]),
    ]
}

#[test]
fn reservations_by_duid_and_hw_address() {
    let c = ok(&reserving(
        r#"[
  { duid = "00:03:00:01:02:00:00:00:00:05", addresses = ["2001:db8:1::105"], prefixes = ["2001:db8:8000:500::/56"],
    options = [{ name = "sntp-servers", value = ["2001:db8::5"] }] },
  { hw-address = "02-00-00-00-00-06", addresses = ["2001:db8:1::106", "2001:db8:1::107"] },
]"#,
    ));
    let r = &c.subnets[0].reservations;
    assert_eq!(
        r[0].client,
        ClientIdentifier::Duid(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 5])
    );
    assert_eq!(r[0].addresses, vec![a("2001:db8:1::105")]);
    assert_eq!(r[0].prefixes, vec![p("2001:db8:8000:500::/56")]);
    assert_eq!(r[0].options[0].code, 31);
    assert_eq!(r[1].client, ClientIdentifier::HwAddress(vec![2, 0, 0, 0, 0, 6]));
    assert_eq!(r[1].addresses.len(), 2);
}

#[test]
fn bad_reservations_are_named_by_their_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"[{ duid = "zz", addresses = ["2001:db8:1::105"] }]"#,
            "subnet[0].reservations[0].duid",
            "not a DUID",
        ),
        (
            r#"[{ hw-address = "02:00", duid = "000300010200", addresses = ["2001:db8:1::105"] }]"#,
            "subnet[0].reservations[0]",
            "not both",
        ),
        (
            r#"[{ addresses = ["2001:db8:1::105"] }]"#,
            "subnet[0].reservations[0].duid",
            "missing",
        ),
        (
            r#"[{ duid = "000300010200" }]"#,
            "subnet[0].reservations[0]",
            "reserves nothing",
        ),
        (
            r#"[{ duid = "000300010200", addresses = ["2001:db8:2::1"] }]"#,
            "subnet[0].reservations[0].addresses[0]",
            "outside the subnet",
        ),
        (
            r#"[{ duid = "000300010200", addresses = ["2001:db8:1::5"] }]"#,
            "subnet[0].reservations[0].addresses[0]",
            "none of the subnet's pools",
        ),
        (
            r#"[{ duid = "000300010200", prefixes = ["2001:db8:8000:500::/60"] }]"#,
            "subnet[0].reservations[0].prefixes[0]",
            "delegated-length",
        ),
        (
            r#"[{ duid = "000300010200", prefixes = ["2001:db8:9000::/56"] }]"#,
            "subnet[0].reservations[0].prefixes[0]",
            "pd-pools",
        ),
        (
            r#"[{ duid = "000300010200", addresses = ["2001:db8:1::105", "2001:db8:1::105"] }]"#,
            "subnet[0].reservations[0].addresses[1]",
            "twice",
        ),
        (
            r#"[{ duid = "000300010200", addresses = ["2001:db8:1::105"] }, { duid = "00:03:00:01:02:00", addresses = ["2001:db8:1::106"] }]"#,
            "subnet[0].reservations[1]",
            "already reserved at subnet[0].reservations[0]",
        ),
        (
            r#"[{ duid = "000300010200", addresses = ["2001:db8:1::105"] }, { duid = "000300010201", addresses = ["2001:db8:1::105"] }]"#,
            "subnet[0].reservations[1]",
            "2001:db8:1::105 is already reserved at subnet[0].reservations[0]",
        ),
        (
            r#"[{ duid = "000300010200", addresses = ["2001:db8:1::105"], color = 1 }]"#,
            "subnet[0].reservations[0].color",
            "unknown key",
        ),
        (
            r#"[{ duid = "000300010200", options = [{ name = "sol-max-rt", value = 1 }] }]"#,
            "subnet[0].reservations[0].options[0].value",
            "from 60",
        ),
    ];
    for (value, path, message) in cases {
        let e = only_error(&reserving(value));
        assert!(
            e.starts_with(&format!("{path}: ")) && e.contains(message),
            "{value}\n  expected {path}: …{message}…\n  got {e}"
        );
    }
}

#[test]
fn an_interface_id_names_one_subnet() {
    let c = ok(&[server(&[]), subnet(&[("interface-id", Some(r#""vlan-20""#))])]);
    assert_eq!(c.subnets[0].interface_id.as_deref(), Some(&b"vlan-20"[..]));
    let c = ok(&[
        server(&[]),
        subnet(&[("interface-id", Some(r#"{ hex = "03:00:00:00" }"#))]),
    ]);
    assert_eq!(c.subnets[0].interface_id.as_deref(), Some(&[3u8, 0, 0, 0][..]));
    let e = only_error(&[
        server(&[]),
        subnet(&[("interface-id", Some(r#""vlan-20""#))]),
        table(
            "[[subnet]]",
            &[
                ("prefix", r#""2001:db8:2::/64""#),
                ("interface-id", r#""vlan-20""#),
            ],
            &[],
        ),
    ]);
    assert!(
        e.starts_with("subnet[1].interface-id: ") && e.contains("already"),
        "{e}"
    );
    let e = only_error(&[server(&[]), subnet(&[("interface-id", Some(r#""""#))])]);
    assert!(e.starts_with("subnet[0].interface-id: "), "{e}");
}
