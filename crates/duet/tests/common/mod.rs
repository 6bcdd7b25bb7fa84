//! A lab for real-client integration tests: network namespaces joined by a
//! veth pair, a `duet serve` in one of them, and real DHCPv6 clients (ISC
//! dhclient, dhcpcd, perfdhcp), tshark and small python3 senders in the
//! other ([`Lab`]); or, for the failover pair, server and client
//! namespaces on bridges held by a "switch" namespace ([`PairLab`]).
//! Follows ../../shared/design/TESTING-NOTES.md: DAD, RA and RS off in
//! every namespace, addresses added `nodad`, every client with its own
//! lease / pid / config / script files, dhcpcd with private tmpfs mounts.
//!
//! Needs root and the tools above; nothing leaves the namespaces the lab
//! creates, and only 2001:db8::/32 addresses are used. Everything a lab
//! starts is killed by PID and its namespaces deleted when the [`Lab`] is
//! dropped, also when a test panics; leftovers of crashed earlier runs
//! (namespaces `dt-<pid>-…` whose test process is gone) are removed before
//! the first lab of a run is built. A failed test keeps its directory
//! (configs, server logs, client logs, captures) and prints where it is;
//! with `DUET_TEST_KEEP=1` in the environment every test keeps it. Kept
//! directories (marked by a `KEPT` file) are never removed automatically.
#![allow(dead_code, unreachable_pub)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// The binary under test.
pub const DUET: &str = env!("CARGO_BIN_EXE_duet");
/// Prefix of every namespace and directory name a lab creates.
pub const PREFIX: &str = "dt-";
/// The server's MAC on the lab link.
pub const SRV_MAC: &str = "02:00:00:00:00:01";
/// The server's global address on the lab link.
pub const SRV_ADDR: &str = "2001:db8:1::1";
/// The client namespace's MAC on the lab link.
pub const CLI_MAC: &str = "02:00:00:00:10:01";
/// The subnet of the lab link.
pub const SUBNET: &str = "2001:db8:1::/64";
/// First and last address of the address pool (>= 20,000 addresses).
pub const POOL_START: &str = "2001:db8:1::1000";
/// Last address of the pool.
pub const POOL_END: &str = "2001:db8:1::ffff:ffff";
/// The PD pool and its delegated length.
pub const PD_POOL: &str = "2001:db8:8000::/40";
/// Delegated prefix length.
pub const PD_LEN: u8 = 56;

static HEAVY: Mutex<()> = Mutex::new(());
static COUNTER: AtomicUsize = AtomicUsize::new(0);
static CLEAN: Once = Once::new();

/// Serialises the CPU-heavy tests (perfdhcp): hold the guard for the whole
/// test. A panic in another holder does not poison it for the rest.
pub fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where lab directories live.
pub fn base_dir() -> PathBuf {
    std::env::temp_dir().join("duet-tests")
}

// ------------------------------------------------------------------ commands

/// Runs `args` to completion, killed after `timeout` (coreutils `timeout`,
/// so no command of a test can hang it).
pub fn run(args: &[&str], timeout: Duration) -> Output {
    let secs = format!("{}", timeout.as_secs().max(1));
    let out = Command::new("timeout")
        .args(["-k", "3", &secs])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    out
}

/// Like [`run`], but panics unless the command succeeds.
pub fn run_ok(args: &[&str], timeout: Duration) -> String {
    let out = run(args, timeout);
    assert!(
        out.status.success(),
        "{args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip netns exec NS args…` as a vector of arguments.
pub fn in_ns<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    v
}

/// Sends `sig` (`TERM`, `KILL`, `INT`, …) to `pid`; errors are ignored.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Polls `f` every 100 ms until it returns `Some`, or `None` after `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A background process, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `args` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, args: &[&str], log: &Path, envs: &[(&str, &str)]) -> Proc {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = out.try_clone().expect("clone log file");
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..]).stdin(Stdio::null()).stdout(out).stderr(err);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} {args:?}: {e}"));
        Proc {
            name: name.to_string(),
            log: log.to_path_buf(),
            child: Some(child),
            status: None,
        }
    }

    /// Its PID (the command's own: `ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    self.status = Some(s);
                }
            }
        }
        self.status
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child.is_some() && self.try_wait().is_none()
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for(timeout, || self.try_wait())
    }

    /// Sends a signal.
    pub fn signal(&mut self, sig: &str) {
        if self.running() {
            signal(self.pid(), sig);
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if let Some(c) = self.child.as_mut() {
            if self.status.is_none() {
                let _ = c.kill();
                if let Ok(s) = c.wait() {
                    self.status = Some(s);
                }
            }
        }
        self.status
    }

    /// Its log so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

// ------------------------------------------------------------------ lab

/// Two namespaces, `srv` and `cli`, joined by a veth pair (`eth0` in
/// both): the server side has 2001:db8:1::1/64, the client side only its
/// link-local address. Dropping it kills every process in both namespaces
/// and deletes them.
pub struct Lab {
    /// `dt-<pid>-<n>`.
    pub name: String,
    /// The server namespace.
    pub srv: String,
    /// The client namespace.
    pub cli: String,
    /// This lab's directory (configs, data, logs, captures).
    pub dir: PathBuf,
}

fn pid_of_name(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Whether `pid` is a live test process (a leftover's owner may still run).
fn live_test_process(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let exe = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The integration-test binaries that build labs (tests/standalone.rs,
    // tests/pair.rs); /proc/PID/comm is the binary name, cut at 15 bytes.
    let ours = |s: &str| s.starts_with("standalone") || s.starts_with("pair-");
    !comm.is_empty() && (ours(comm.trim_end()) || ours(&exe))
}

fn kill_namespace(ns: &str) {
    for _ in 0..3 {
        let pids = run(&["ip", "netns", "pids", ns], Duration::from_secs(5));
        let text = String::from_utf8_lossy(&pids.stdout).into_owned();
        let list: Vec<u32> = text.split_whitespace().filter_map(|p| p.parse().ok()).collect();
        if list.is_empty() {
            break;
        }
        for p in list {
            signal(p, "KILL");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = run(&["ip", "netns", "del", ns], Duration::from_secs(10));
}

/// Removes namespaces and directories of earlier runs whose test process
/// is gone (a crashed or killed run cannot clean up after itself).
pub fn clean_leftovers() {
    let out = run(&["ip", "netns", "list"], Duration::from_secs(5));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        if let Some(pid) = pid_of_name(ns) {
            if !live_test_process(pid) {
                kill_namespace(ns);
            }
        }
    }
    if let Ok(rd) = fs::read_dir(base_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = pid_of_name(&name) {
                // A failed test's directory is kept on purpose (KEPT marks it).
                if !live_test_process(pid) && !e.path().join("KEPT").exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

fn new_namespace(ns: &str) {
    let t = Duration::from_secs(10);
    run_ok(&["ip", "netns", "add", ns], t);
    run_ok(
        &in_ns(
            ns,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_ra=0",
                "net.ipv6.conf.default.accept_ra=0",
                "net.ipv6.conf.all.router_solicitations=0",
                "net.ipv6.conf.default.router_solicitations=0",
            ],
        ),
        t,
    );
    run_ok(&in_ns(ns, &["ip", "link", "set", "lo", "up"]), t);
}

fn if_up(ns: &str, ifname: &str, mac: &str, addr: Option<&str>) {
    let t = Duration::from_secs(10);
    run_ok(&in_ns(ns, &["ip", "link", "set", ifname, "address", mac]), t);
    let dad = format!("net.ipv6.conf.{ifname}.accept_dad=0");
    let ra = format!("net.ipv6.conf.{ifname}.accept_ra=0");
    let rs = format!("net.ipv6.conf.{ifname}.router_solicitations=0");
    run_ok(&in_ns(ns, &["sysctl", "-qw", &dad, &ra, &rs]), t);
    if let Some(a) = addr {
        run_ok(
            &in_ns(ns, &["ip", "-6", "addr", "add", a, "dev", ifname, "nodad"]),
            t,
        );
    }
    run_ok(&in_ns(ns, &["ip", "link", "set", ifname, "up"]), t);
}

fn wait_link_local(ns: &str, ifname: &str) {
    let ok = wait_for(Duration::from_secs(10), || {
        let out = run(
            &in_ns(ns, &["ip", "-6", "addr", "show", "dev", ifname]),
            Duration::from_secs(5),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.contains("scope link") && !text.contains("tentative")).then_some(())
    });
    assert!(ok.is_some(), "no usable link-local address on {ns}/{ifname}");
}

impl Lab {
    /// Builds the lab (cleaning leftovers of crashed runs first).
    pub fn new() -> Lab {
        CLEAN.call_once(clean_leftovers);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}{}-{n}", std::process::id());
        let dir = base_dir().join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("lab dir");
        let lab = Lab {
            srv: format!("{name}-srv"),
            cli: format!("{name}-cli"),
            name,
            dir,
        };
        // From here on Drop cleans up whatever was made.
        new_namespace(&lab.srv);
        new_namespace(&lab.cli);
        run_ok(
            &[
                "ip", "link", "add", "eth0", "netns", &lab.srv, "type", "veth", "peer", "name", "eth0",
                "netns", &lab.cli,
            ],
            Duration::from_secs(10),
        );
        if_up(&lab.srv, "eth0", SRV_MAC, Some(&format!("{SRV_ADDR}/64")));
        if_up(&lab.cli, "eth0", CLI_MAC, None);
        wait_link_local(&lab.srv, "eth0");
        wait_link_local(&lab.cli, "eth0");
        // The client side has no global address; make the server's reachable
        // for unicast senders.
        run_ok(
            &in_ns(&lab.cli, &["ip", "-6", "route", "add", SUBNET, "dev", "eth0"]),
            Duration::from_secs(10),
        );
        lab
    }

    /// A file in the lab directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes the standard server config (see [`server_config`]) and returns its path.
    pub fn write_config(&self, file: &str, timers: Timers, extra_server: &str) -> PathBuf {
        let p = self.path(file);
        fs::write(&p, server_config(&self.path("data"), timers, extra_server)).expect("write config");
        p
    }

    /// Runs python3 `script` with `args` in the client namespace (bounded).
    pub fn python_cli(&self, script: &str, args: &[&str], timeout: Duration) -> String {
        let file = self.path("sender.py");
        fs::write(&file, script).expect("write python script");
        let f = file.to_string_lossy().into_owned();
        let mut a = vec!["python3", f.as_str()];
        a.extend_from_slice(args);
        run_ok(&in_ns(&self.cli, &a), timeout)
    }

    /// `UDP6 RcvbufErrors` in namespace `ns` (datagrams the kernel dropped
    /// because a receiver's socket buffer was full).
    pub fn udp6_rcvbuf_errors(&self, ns: &str) -> u64 {
        let out = run(&in_ns(ns, &["cat", "/proc/net/snmp6"]), Duration::from_secs(5));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("Udp6RcvbufErrors")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        kill_namespace(&self.cli);
        kill_namespace(&self.srv);
        if std::thread::panicking() {
            let _ = fs::write(self.dir.join("KEPT"), "kept after a failure\n");
            eprintln!(
                "lab {} failed; its files are kept in {}",
                self.name,
                self.dir.display()
            );
        } else if std::env::var_os("DUET_TEST_KEEP").is_some() {
            let _ = fs::write(self.dir.join("KEPT"), "kept (DUET_TEST_KEEP)\n");
            eprintln!(
                "lab {}: files kept in {} (DUET_TEST_KEEP)",
                self.name,
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ------------------------------------------------------------------ pair lab

/// A lab for failover tests (tests/pair.rs): a "switch" namespace holding
/// Linux bridges (client links, the server-to-server link), server
/// namespaces with veths on some of the bridges, client namespaces with
/// `eth0` on one bridge. A bridge port can be disabled and re-enabled
/// ([`PairLab::set_port`]), which cuts and heals exactly that link without
/// any carrier change. Dropping it kills every process in its namespaces
/// and deletes them; the directory is kept like [`Lab`]'s.
pub struct PairLab {
    /// `dt-<pid>-<n>`.
    pub name: String,
    /// The namespace holding the bridges.
    pub sw: String,
    /// This lab's directory.
    pub dir: PathBuf,
    namespaces: Vec<String>,
}

impl PairLab {
    /// Builds the switch namespace with one bridge per name in `bridges`
    /// (multicast snooping and STP off: every port forwards at once and
    /// multicast is flooded).
    pub fn new(bridges: &[&str]) -> PairLab {
        CLEAN.call_once(clean_leftovers);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}{}-{n}", std::process::id());
        let dir = base_dir().join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("lab dir");
        let mut lab = PairLab {
            sw: format!("{name}-sw"),
            name,
            dir,
            namespaces: Vec::new(),
        };
        let t = Duration::from_secs(10);
        lab.namespaces.push(lab.sw.clone());
        new_namespace(&lab.sw);
        for br in bridges {
            run_ok(
                &in_ns(
                    &lab.sw,
                    &[
                        "ip",
                        "link",
                        "add",
                        br,
                        "type",
                        "bridge",
                        "mcast_snooping",
                        "0",
                        "stp_state",
                        "0",
                    ],
                ),
                t,
            );
            run_ok(&in_ns(&lab.sw, &["ip", "link", "set", br, "up"]), t);
        }
        lab
    }

    /// A file in the lab directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The namespace name of node `tag`.
    pub fn ns(&self, tag: &str) -> String {
        format!("{}-{tag}", self.name)
    }

    /// The bridge port (in the switch namespace) of `tag`'s `ifname`.
    pub fn port(tag: &str, ifname: &str) -> String {
        format!("{tag}-{ifname}")
    }

    /// Adds namespace `tag` with, per `(ifname, bridge, mac, address)`, a
    /// veth whose other end (port `TAG-IFNAME`) is on `bridge`; `address`
    /// (`addr/len`, added `nodad`) may be empty. Returns the namespace.
    pub fn add_node(&mut self, tag: &str, links: &[(&str, &str, &str, &str)]) -> String {
        let ns = self.ns(tag);
        let t = Duration::from_secs(10);
        self.namespaces.push(ns.clone());
        new_namespace(&ns);
        for (ifname, bridge, mac, addr) in links {
            let port = PairLab::port(tag, ifname);
            run_ok(
                &[
                    "ip", "link", "add", &port, "netns", &self.sw, "type", "veth", "peer", "name", ifname,
                    "netns", &ns,
                ],
                t,
            );
            run_ok(
                &in_ns(&self.sw, &["ip", "link", "set", &port, "master", bridge]),
                t,
            );
            run_ok(&in_ns(&self.sw, &["ip", "link", "set", &port, "up"]), t);
            if_up(&ns, ifname, mac, (!addr.is_empty()).then_some(*addr));
        }
        for (ifname, ..) in links {
            wait_link_local(&ns, ifname);
        }
        ns
    }

    /// Enables (`true`: forwarding) or disables (`false`) bridge port `port`.
    pub fn set_port(&self, port: &str, forwarding: bool) {
        let state = if forwarding { "3" } else { "0" };
        run_ok(
            &in_ns(&self.sw, &["bridge", "link", "set", "dev", port, "state", state]),
            Duration::from_secs(10),
        );
    }

    /// The link-local address of `ifname` in `ns`.
    pub fn link_local(&self, ns: &str, ifname: &str) -> String {
        let out = run_ok(
            &in_ns(
                ns,
                &["ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link"],
            ),
            Duration::from_secs(5),
        );
        out.split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .unwrap_or_else(|| panic!("no link-local address on {ns}/{ifname}: {out}"))
            .to_string()
    }

    /// Makes namespace `ns` unable to send anything to `addr` (a policy
    /// rule `to ADDR/128 blackhole`; link-local destinations included).
    pub fn blackhole(&self, ns: &str, addr: &str) {
        let to = format!("{addr}/128");
        run_ok(
            &in_ns(ns, &["ip", "-6", "rule", "add", "to", &to, "blackhole"]),
            Duration::from_secs(10),
        );
    }
}

impl Drop for PairLab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            kill_namespace(ns);
        }
        if std::thread::panicking() {
            let _ = fs::write(self.dir.join("KEPT"), "kept after a failure\n");
            eprintln!(
                "lab {} failed; its files are kept in {}",
                self.name,
                self.dir.display()
            );
        } else if std::env::var_os("DUET_TEST_KEEP").is_some() {
            let _ = fs::write(self.dir.join("KEPT"), "kept (DUET_TEST_KEEP)\n");
            eprintln!(
                "lab {}: files kept in {} (DUET_TEST_KEEP)",
                self.name,
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ------------------------------------------------------------------ server

/// Lifetimes of the lab subnet.
#[derive(Debug, Clone, Copy)]
pub enum Timers {
    /// T1 4 s, T2 6 s, preferred 10 s, valid 15 s: Renew shows up fast.
    Short,
    /// The config defaults (T1 1000 s …): nothing expires during a test.
    Default,
}

/// The lab's server config: one subnet on eth0 with a large address pool
/// and a /40 PD pool cut into /56s. `extra_server` is appended to `[server]`.
pub fn server_config(data_dir: &Path, timers: Timers, extra_server: &str) -> String {
    let timers = match timers {
        Timers::Short => "renew-time = 4\nrebind-time = 6\npreferred-lifetime = 10\nvalid-lifetime = 15\n",
        Timers::Default => "",
    };
    format!(
        r#"[server]
name = "duet-lab"
data-dir = "{data}"
interfaces = ["eth0"]
{extra_server}

[[subnet]]
prefix = "{SUBNET}"
interface = "eth0"
pools = ["{POOL_START}-{POOL_END}"]
pd-pools = [{{ prefix = "{PD_POOL}", delegated-length = {PD_LEN} }}]
dns-servers = ["2001:db8::53"]
domain-search = ["example.org"]
{timers}"#,
        data = data_dir.display()
    )
}

/// A `duet serve` in the server namespace.
pub struct Server {
    /// Its config file.
    pub config: PathBuf,
    /// Its data directory (`server.data-dir`).
    pub data_dir: PathBuf,
    /// The namespace it runs in.
    pub ns: String,
    dir: PathBuf,
    /// Names its log files (`duet-TAG-N.log`; `duet-N.log` when empty).
    tag: String,
    /// `--log` filter.
    log_filter: String,
    starts: usize,
    proc: Option<Proc>,
}

impl Server {
    /// Starts `duet serve --config CONFIG` in `lab`'s server namespace and
    /// waits until `duet ctl status` answers.
    pub fn start(lab: &Lab, config: &Path) -> Server {
        Server::start_in(&lab.srv, &lab.dir, "", config, &lab.path("data"), "info")
    }

    /// Starts `duet serve --config CONFIG --log LOG_FILTER` in namespace
    /// `ns`, logging to `DIR/duet-TAG-N.log` (N counts the starts), and
    /// waits until `duet ctl status` answers. `data_dir` is the config's
    /// `server.data-dir` (for tests that look at the store).
    pub fn start_in(
        ns: &str,
        dir: &Path,
        tag: &str,
        config: &Path,
        data_dir: &Path,
        log_filter: &str,
    ) -> Server {
        let mut s = Server {
            config: config.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            ns: ns.to_string(),
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
            log_filter: log_filter.to_string(),
            starts: 0,
            proc: None,
        };
        s.spawn();
        s
    }

    /// The log file of the current (or last) run.
    pub fn log_path(&self) -> PathBuf {
        if self.tag.is_empty() {
            self.dir.join(format!("duet-{}.log", self.starts))
        } else {
            self.dir.join(format!("duet-{}-{}.log", self.tag, self.starts))
        }
    }

    /// Its PID (0 when not started).
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().map(Proc::pid).unwrap_or(0)
    }

    /// The log of the current (or last) run.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts it again (after [`Server::kill9`] or [`Server::stop`]), logging
    /// to a new file.
    pub fn restart(&mut self) {
        assert!(!self.running(), "restart: the server still runs");
        self.spawn();
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = self.log_path();
        let config = self.config.to_string_lossy().into_owned();
        let p = Proc::spawn(
            "duet serve",
            &in_ns(
                &self.ns,
                &[DUET, "serve", "--config", &config, "--log", &self.log_filter],
            ),
            &log,
            &[("NO_COLOR", "1")],
        );
        self.proc = Some(p);
        let ready = wait_for(Duration::from_secs(15), || {
            if !self.running() {
                return Some(false);
            }
            let out = self.ctl(&["status", "--json"]);
            (out.status.success() && serde_json::from_slice::<Value>(&out.stdout).is_ok()).then_some(true)
        });
        match ready {
            Some(true) => {}
            Some(false) => panic!("duet serve exited at start:\n{}", self.log()),
            None => panic!(
                "duet serve did not answer `ctl status` within 15 s:\n{}",
                self.log()
            ),
        }
    }

    /// Whether the server process runs.
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Proc::running)
    }

    /// `duet ctl --config CONFIG args…` (from the host: the control
    /// socket is a path, not bound to a namespace).
    pub fn ctl(&self, args: &[&str]) -> Output {
        let config = self.config.to_string_lossy().into_owned();
        let mut a = vec![DUET, "ctl", "--config", config.as_str()];
        a.extend_from_slice(args);
        run(&a, Duration::from_secs(15))
    }

    fn ctl_json(&self, what: &str) -> Value {
        let out = self.ctl(&[what, "--json"]);
        assert!(
            out.status.success(),
            "duet ctl {what} --json failed ({}): {}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "duet ctl {what} --json: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `ctl status --json`.
    pub fn status(&self) -> Value {
        self.ctl_json("status")
    }

    /// `ctl status --json` → `counters`.
    pub fn counters(&self) -> Counters {
        Counters(self.status()["counters"].clone())
    }

    /// `ctl leases --json`.
    pub fn leases(&self) -> Vec<Lease> {
        let v = self.ctl_json("leases");
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("ctl leases --json is not an array: {v}"));
        arr.iter().map(Lease::from_json).collect()
    }

    /// SIGKILL: a crash.
    pub fn kill9(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill();
        }
    }

    /// SIGTERM, and waits (up to 20 s) for a clean exit; returns its status.
    pub fn stop(&mut self) -> ExitStatus {
        let p = self.proc.as_mut().expect("server was never started");
        p.signal("TERM");
        match p.wait_timeout(Duration::from_secs(15)) {
            Some(s) => s,
            None => {
                p.kill();
                panic!("duet serve did not stop within 15 s of SIGTERM:\n{}", self.log());
            }
        }
    }
}

/// `counters` of `ctl status --json`.
#[derive(Debug, Clone)]
pub struct Counters(pub Value);

impl Counters {
    /// A top-level counter (`received`, `socket-drops`, `replies-sent`, …).
    pub fn get(&self, key: &str) -> u64 {
        self.0[key].as_u64().unwrap_or(0)
    }

    /// `dropped[reason]`.
    pub fn dropped(&self, reason: &str) -> u64 {
        self.0["dropped"][reason].as_u64().unwrap_or(0)
    }

    /// Sum of every `dropped` reason.
    pub fn dropped_total(&self) -> u64 {
        self.0["dropped"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    }
}

/// One binding of `ctl leases --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `na` or `pd`.
    pub kind: String,
    /// The address (na) or prefix (pd, `…/56`).
    pub what: String,
    /// Client DUID, hex (None when never bound).
    pub duid: Option<String>,
    /// IAID.
    pub iaid: Option<u64>,
    /// Binding state.
    pub state: String,
    /// Unix seconds.
    pub valid_until: u64,
    /// Unix seconds.
    pub preferred_until: u64,
    /// The failover relationship sharing it (None: not shared).
    pub relationship: Option<String>,
}

impl Lease {
    fn from_json(v: &Value) -> Lease {
        let kind = v["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("lease without kind: {v}"))
            .to_string();
        let what = if kind == "pd" { &v["prefix"] } else { &v["address"] };
        Lease {
            what: what
                .as_str()
                .unwrap_or_else(|| panic!("lease without address/prefix: {v}"))
                .to_string(),
            kind,
            duid: v["duid"].as_str().map(str::to_string),
            iaid: v["iaid"].as_u64(),
            state: v["state"]
                .as_str()
                .unwrap_or_else(|| panic!("lease without state: {v}"))
                .to_string(),
            valid_until: v["valid-until"]
                .as_u64()
                .unwrap_or_else(|| panic!("lease without valid-until: {v}")),
            preferred_until: v["preferred-until"]
                .as_u64()
                .unwrap_or_else(|| panic!("lease without preferred-until: {v}")),
            relationship: v["relationship"].as_str().map(str::to_string),
        }
    }
}

/// The lease for `what` (address or prefix) in `leases`.
pub fn find<'a>(leases: &'a [Lease], what: &str) -> Option<&'a Lease> {
    leases.iter().find(|l| l.what == what)
}

/// Addresses of the active NA leases.
pub fn active_addresses(leases: &[Lease]) -> BTreeSet<String> {
    leases
        .iter()
        .filter(|l| l.kind == "na" && l.state == "active")
        .map(|l| l.what.clone())
        .collect()
}

/// Prefixes (`…/56`) of the active PD leases.
pub fn active_prefixes(leases: &[Lease]) -> BTreeSet<String> {
    leases
        .iter()
        .filter(|l| l.kind == "pd" && l.state == "active")
        .map(|l| l.what.clone())
        .collect()
}

/// DUID-LL (RFC 8415 §11.4) of an Ethernet MAC, as hex: what `dhclient -D LL` uses.
pub fn duid_ll(mac: &str) -> String {
    format!("00030001{}", mac.replace(':', "").to_lowercase())
}

/// Whether `addr` lies in the lab's address pool.
pub fn in_pool(addr: &str) -> bool {
    let a: Ipv6Addr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
    let lo: Ipv6Addr = POOL_START.parse().expect("pool start");
    let hi: Ipv6Addr = POOL_END.parse().expect("pool end");
    (u128::from(lo)..=u128::from(hi)).contains(&u128::from(a))
}

/// Whether `prefix` (`addr/len`) is a /56 inside the lab's PD pool.
pub fn in_pd_pool(prefix: &str) -> bool {
    let Some((addr, len)) = prefix.split_once('/') else {
        return false;
    };
    let Ok(a) = addr.parse::<Ipv6Addr>() else {
        return false;
    };
    let Ok(len) = len.parse::<u8>() else { return false };
    let (pool, plen) = PD_POOL.split_once('/').expect("pd pool");
    let pool: Ipv6Addr = pool.parse().expect("pd pool addr");
    let plen: u32 = plen.parse().expect("pd pool len");
    let mask = |l: u32| if l == 0 { 0 } else { u128::MAX << (128 - l) };
    len == PD_LEN
        && u128::from(a) & mask(plen) == u128::from(pool)
        && u128::from(a) & !mask(u32::from(len)) == 0
}

// ------------------------------------------------------------------ ISC dhclient

/// One `dhclient -6 -d -v -D LL` in the client namespace with its own lease
/// file, pid file, empty config and a script that records every event's
/// environment (and touches nothing on the host).
pub struct Dhclient {
    /// Its directory.
    pub dir: PathBuf,
    ns: String,
    flags: Vec<String>,
    proc: Option<Proc>,
}

impl Dhclient {
    /// Starts it with `flags` (`-N`, `-P`, …) on eth0.
    pub fn start(lab: &Lab, name: &str, flags: &[&str]) -> Dhclient {
        Dhclient::start_in(&lab.cli, lab.path(name), flags)
    }

    /// Starts it with `flags` on eth0 of namespace `ns`, its files in `dir`.
    pub fn start_in(ns: &str, dir: PathBuf, flags: &[&str]) -> Dhclient {
        fs::create_dir_all(&dir).expect("dhclient dir");
        fs::write(dir.join("empty.conf"), "").expect("conf");
        fs::write(dir.join("leases"), "").expect("lease file");
        let script = dir.join("script.sh");
        fs::write(
            &script,
            format!(
                // The end line tells a reader the event is whole: a test
                // that read the file between `echo` and `env` saw an event
                // without its variables.
                "#!/bin/sh\n{{ echo \"=== $reason\"; env; echo \"{EVENT_END}\"; }} >> '{}'\nexit 0\n",
                dir.join("events.log").display()
            ),
        )
        .expect("script");
        run_ok(
            &["chmod", "755", &script.to_string_lossy()],
            Duration::from_secs(5),
        );
        let mut d = Dhclient {
            dir,
            ns: ns.to_string(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            proc: None,
        };
        let args = d.args(&["-d"]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        d.proc = Some(Proc::spawn(
            "dhclient",
            &in_ns(&d.ns, &a),
            &d.dir.join("dhclient.log"),
            &[],
        ));
        d
    }

    fn args(&self, mode: &[&str]) -> Vec<String> {
        let f = |n: &str| self.dir.join(n).to_string_lossy().into_owned();
        let mut v: Vec<String> = vec!["dhclient".into(), "-6".into()];
        v.extend(mode.iter().map(|s| s.to_string()));
        v.extend(["-v", "-D", "LL"].iter().map(|s| s.to_string()));
        v.extend(self.flags.iter().cloned());
        v.extend([
            "-lf".into(),
            f("leases"),
            "-pf".into(),
            f("pid"),
            "-cf".into(),
            f("empty.conf"),
            "-sf".into(),
            f("script.sh"),
            "eth0".into(),
        ]);
        v
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dhclient.log")).unwrap_or_default()
    }

    /// Its lease file.
    pub fn lease_file(&self) -> String {
        fs::read_to_string(self.dir.join("leases")).unwrap_or_default()
    }

    /// Every finished script invocation so far: (reason, environment).
    pub fn events(&self) -> Vec<(String, BTreeMap<String, String>)> {
        parse_events(&fs::read_to_string(self.dir.join("events.log")).unwrap_or_default())
    }

    /// Waits (bounded) for the `n`-th script event with `reason` and returns it.
    pub fn wait_event(&self, reason: &str, n: usize, timeout: Duration) -> BTreeMap<String, String> {
        wait_for(timeout, || {
            self.events()
                .into_iter()
                .filter(|(r, _)| r == reason)
                .nth(n - 1)
                .map(|e| e.1)
        })
        .unwrap_or_else(|| {
            panic!(
                "dhclient: no {reason} event #{n} within {timeout:?}\nevents: {:?}\nlog:\n{}",
                self.events().iter().map(|e| &e.0).collect::<Vec<_>>(),
                self.log()
            )
        })
    }

    /// `dhclient -6 -r` with the same files: stops the running one (through
    /// its pid file) and sends a Release.
    pub fn release(&mut self) {
        let args = self.args(&["-r"]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&in_ns(&self.ns, &a), Duration::from_secs(20));
        let _ = fs::write(
            self.dir.join("release.log"),
            [&out.stdout[..], &out.stderr[..]].concat(),
        );
        assert!(
            out.status.success(),
            "dhclient -r failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(p) = self.proc.as_mut() {
            if p.wait_timeout(Duration::from_secs(10)).is_none() {
                p.kill();
            }
        }
    }

    /// Stops it without a Release.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill();
        }
    }
}

// ------------------------------------------------------------------ dhcpcd

/// What a one-shot dhcpcd run got.
#[derive(Debug)]
pub struct DhcpcdRun {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its log (`-d`).
    pub log: String,
    /// Its DUID (from /var/lib/dhcpcd/duid), hex without separators.
    pub duid: Option<String>,
    /// Addresses it added (`adding address A/128`).
    pub addresses: Vec<String>,
    /// Prefixes delegated to it (`delegated prefix P/56`).
    pub prefixes: Vec<String>,
    /// What its hook script saw: `=== REASON` then the environment, per
    /// call (`new_dhcp6_name_servers=…`).
    pub env: String,
}

/// Runs `dhcpcd -6 -B -1` with ia_na 1 and ia_pd 2 on eth0 of the client
/// namespace, in its own mount namespace with private tmpfs mounts on /run
/// and /var/lib/dhcpcd (its pid file, control socket, DUID and lease files).
pub fn dhcpcd_oneshot(lab: &Lab, name: &str) -> DhcpcdRun {
    let dir = lab.path(name);
    fs::create_dir_all(&dir).expect("dhcpcd dir");
    let d = dir.display();
    fs::write(
        dir.join("dhcpcd.conf"),
        format!(
            "# DHCPv6 only, no router solicitation, no hooks that could touch the host\n\
             ipv6only\nnoipv6rs\n\
             nohook resolv.conf, hostname, ntp.conf, timesyncd.conf, yp.conf, wpa_supplicant\n\
             script {d}/env.sh\nduid\npersistent\n\
             option dhcp6_name_servers, dhcp6_domain_search, dhcp6_sntp_servers\n\
             interface eth0\n  ia_na 1\n  ia_pd 2 -\n"
        ),
    )
    .expect("dhcpcd.conf");
    // The hook script records each call's environment, touching nothing.
    fs::write(
        dir.join("env.sh"),
        format!("#!/bin/sh\n{{ echo \"=== $reason\"; env; }} >> '{d}/env.log'\nexit 0\n"),
    )
    .expect("env.sh");
    run_ok(
        &["chmod", "755", &dir.join("env.sh").to_string_lossy()],
        Duration::from_secs(5),
    );
    fs::write(
        dir.join("inner.sh"),
        format!(
            "set -u\n\
             mount -n -t tmpfs tmpfs /run && mkdir -p /run/dhcpcd && mount -n -t tmpfs tmpfs /var/lib/dhcpcd || exit 99\n\
             dhcpcd -6 -B -1 -d -f {d}/dhcpcd.conf --noipv6rs -t 20 eth0 > {d}/dhcpcd.log 2>&1\n\
             rc=$?\n\
             cp /var/lib/dhcpcd/duid {d}/duid 2>/dev/null\n\
             exit $rc\n"
        ),
    )
    .expect("inner.sh");
    let inner = dir.join("inner.sh").to_string_lossy().into_owned();
    let out = run(
        &in_ns(
            &lab.cli,
            &["unshare", "-m", "--propagation", "private", "bash", &inner],
        ),
        Duration::from_secs(60),
    );
    let log = fs::read_to_string(dir.join("dhcpcd.log")).unwrap_or_default();
    let duid = fs::read_to_string(dir.join("duid"))
        .ok()
        .map(|s| s.trim().replace(':', "").to_lowercase())
        .filter(|s| !s.is_empty());
    let mut addresses = Vec::new();
    let mut prefixes = Vec::new();
    for line in log.lines() {
        if let Some((_, a)) = line.split_once("adding address ") {
            addresses.push(a.trim().trim_end_matches("/128").to_string());
        }
        if let Some((_, p)) = line.split_once("delegated prefix ") {
            prefixes.push(p.trim().to_string());
        }
    }
    DhcpcdRun {
        status: out.status,
        log: format!("{log}\n(inner stderr: {})", String::from_utf8_lossy(&out.stderr)),
        duid,
        addresses,
        prefixes,
        env: fs::read_to_string(dir.join("env.log")).unwrap_or_default(),
    }
}

// ------------------------------------------------------------------ perfdhcp

/// Starts perfdhcp (`-6 -l eth0` plus `args`) in the client namespace.
pub fn perfdhcp_start(lab: &Lab, args: &[&str], log: &str) -> Proc {
    perfdhcp_start_in(&lab.cli, args, &lab.path(log))
}

/// Starts perfdhcp (`-6 -l eth0` plus `args`) in namespace `ns`.
pub fn perfdhcp_start_in(ns: &str, args: &[&str], log: &Path) -> Proc {
    let mut a = vec!["perfdhcp", "-6", "-l", "eth0"];
    a.extend_from_slice(args);
    Proc::spawn("perfdhcp", &in_ns(ns, &a), log, &[])
}

/// One exchange's statistics in perfdhcp's final report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// `sent packets`.
    pub sent: u64,
    /// `received packets`.
    pub received: u64,
    /// `drops`.
    pub drops: u64,
    /// `orphans`.
    pub orphans: u64,
    /// `rejected leases`.
    pub rejected: u64,
    /// `non unique addresses`.
    pub non_unique: u64,
}

/// perfdhcp's final report: `Malformed packets` and one [`Exchange`] per
/// `***Statistics for: X***` section (`SOLICIT-ADVERTISE`, `REQUEST-REPLY`).
#[derive(Debug, Clone, Default)]
pub struct PerfReport {
    /// `Malformed packets`.
    pub malformed: u64,
    /// Statistics by exchange name.
    pub exchanges: BTreeMap<String, Exchange>,
}

/// Parses perfdhcp's output.
pub fn parse_perfdhcp(text: &str) -> PerfReport {
    let mut r = PerfReport::default();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("***Statistics for:") {
            let name = rest.trim().trim_end_matches('*').trim().to_string();
            r.exchanges.entry(name.clone()).or_default();
            cur = Some(name);
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let Ok(v) = v.trim().parse::<u64>() else { continue };
        if k == "Malformed packets" {
            r.malformed = v;
            continue;
        }
        let Some(e) = cur.as_ref().and_then(|c| r.exchanges.get_mut(c)) else {
            continue;
        };
        match k {
            "sent packets" => e.sent = v,
            "received packets" => e.received = v,
            "drops" => e.drops = v,
            "orphans" => e.orphans = v,
            "rejected leases" => e.rejected = v,
            "non unique addresses" => e.non_unique = v,
            _ => {}
        }
    }
    r
}

// ------------------------------------------------------------------ tshark

/// tshark capturing DHCPv6 (udp 546/547) on eth0 of namespace `ns` to
/// `pcap`; returns once it says it is capturing.
pub fn tshark_start(ns: &str, pcap: &Path, log: &Path) -> Proc {
    let pcap_s = pcap.to_string_lossy().into_owned();
    let mut p = Proc::spawn(
        "tshark",
        &in_ns(
            ns,
            &[
                "tshark",
                "-q",
                "-i",
                "eth0",
                "-f",
                "udp port 546 or udp port 547",
                "-w",
                &pcap_s,
            ],
        ),
        log,
        &[],
    );
    let ok = wait_for(Duration::from_secs(15), || {
        if !p.running() {
            return Some(false);
        }
        p.output().contains("Capturing on").then_some(true)
    });
    assert_eq!(ok, Some(true), "tshark did not start capturing:\n{}", p.output());
    // As in capture.sh: give the capture a moment to be really running.
    std::thread::sleep(Duration::from_secs(1));
    p
}

/// Stops tshark the way that keeps the file whole: SIGTERM, then wait.
pub fn tshark_stop(p: &mut Proc) {
    p.signal("TERM");
    if p.wait_timeout(Duration::from_secs(10)).is_none() {
        p.kill();
        panic!("tshark did not stop on SIGTERM:\n{}", p.output());
    }
}

/// `tshark -r PCAP -Y FILTER -T fields -e FIELD`: every value, split on
/// the commas tshark puts between repeated fields.
pub fn tshark_fields(pcap: &Path, filter: &str, field: &str) -> Vec<String> {
    let out = run_ok(
        &[
            "tshark",
            "-r",
            &pcap.to_string_lossy(),
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            field,
        ],
        Duration::from_secs(60),
    );
    out.lines()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `tshark -r PCAP -Y FILTER -T fields -e F1 -e F2 …`: per packet, per
/// field, the values (split on the commas between repeated fields).
pub fn tshark_rows(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<Vec<String>>> {
    let pcap = pcap.to_string_lossy().into_owned();
    let mut args = vec!["tshark", "-r", pcap.as_str(), "-Y", filter, "-T", "fields"];
    for f in fields {
        args.extend_from_slice(&["-e", f]);
    }
    run_ok(&args, Duration::from_secs(60))
        .lines()
        .map(|l| {
            l.split('\t')
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect()
        })
        .collect()
}

// ------------------------------------------------------------------ journal

/// Byte ranges of the records of a duet-store journal: 16-byte header,
/// then `[u32 LE len][u32 LE crc][payload]` (crates/store/src/lib.rs).
/// Returns (offset, total length) per whole record; stops at the first
/// record that runs past the end.
pub fn journal_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    assert!(
        bytes.len() >= 16 && &bytes[..8] == b"DUETJNL\0",
        "not a duet journal (header {:?})",
        &bytes[..bytes.len().min(16)]
    );
    let mut out = Vec::new();
    let mut off = 16usize;
    while off + 8 <= bytes.len() {
        if bytes[off..off + 8] == [0u8; 8] {
            // A zero frame: preallocated free space starts here.
            break;
        }
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().expect("4 bytes")) as usize;
        let total = 8 + len;
        if off + total > bytes.len() {
            break;
        }
        out.push((off, total));
        off += total;
    }
    out
}

/// Files in `dir` whose names start with `prefix`.
pub fn files_starting_with(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The line the dhclient script writes after each event.
const EVENT_END: &str = "=== end";

/// The events of a dhclient script log, each "=== reason", its environment
/// and "=== end"; an event still being written (no end line yet) is left out.
fn parse_events(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    let mut open: Option<(String, BTreeMap<String, String>)> = None;
    for line in text.lines() {
        if line == EVENT_END {
            out.extend(open.take());
        } else if let Some(r) = line.strip_prefix("=== ") {
            open = Some((r.to_string(), BTreeMap::new()));
        } else if let (Some((k, v)), Some(e)) = (line.split_once('='), open.as_mut()) {
            e.1.insert(k.to_string(), v.to_string());
        }
    }
    out
}

#[test]
fn an_event_being_written_is_not_read() {
    let done = "=== BOUND6\nnew_ip6_prefix=2001:db8::/56\n=== end\n";
    assert_eq!(parse_events(done).len(), 1);
    assert_eq!(parse_events(done)[0].1["new_ip6_prefix"], "2001:db8::/56");
    assert!(parse_events(&format!("{done}=== RENEW6\nnew_ip6_prefix=x\n"))
        .iter()
        .all(|e| e.0 == "BOUND6"));
}
