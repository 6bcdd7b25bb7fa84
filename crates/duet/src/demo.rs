//! `duet demo`: the embedded default. A primary and a secondary on
//! loopback (unprivileged ports, a temporary directory, fresh certificates,
//! TLS 1.3 on the partner link), simulated clients behind a simulated relay,
//! and a readable timeline: pair connected → clients served → primary
//! killed → the secondary takes over by Rebind with the same leases →
//! primary back, recovery, tables equal. Exits 0 only if every check held.

use crate::api::{LeaseJson, StatusJson};
use crate::ctl;
use anyhow::{bail, Context};
use duet_wire::option::{IaNa, IaPd};
use duet_wire::{
    ClientMessage, DhcpOption, Duid, Message, MessageType, OptionsExt, RelayMessage, TransactionId,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    name: &'static str,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    dhcp: SocketAddr,
    child: Option<Child>,
}

impl Server {
    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn status(&self) -> Option<StatusJson> {
        ctl::request(&self.socket, "GET", "/v1/status")
            .ok()
            .and_then(|b| serde_json::from_str(&b).ok())
    }

    fn state(&self) -> Option<String> {
        self.status()
            .and_then(|s| s.relationships.first().map(|r| r.state.clone()))
    }

    fn leases(&self) -> anyhow::Result<Vec<LeaseJson>> {
        let body = ctl::request(&self.socket, "GET", "/v1/leases")?;
        Ok(serde_json::from_str(&body)?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let s = std::net::TcpListener::bind("[::1]:0")?;
    let port = s.local_addr()?.port();
    let u = UdpSocket::bind(("::1", port));
    if u.is_err() {
        return free_port();
    }
    Ok(port)
}

struct Timeline {
    start: Instant,
    failures: Vec<String>,
}

impl Timeline {
    fn say(&self, text: &str) {
        println!("[{:>6.1}s] {text}", self.start.elapsed().as_secs_f64());
    }

    fn check(&mut self, ok: bool, text: &str) {
        let mark = if ok { "ok  " } else { "FAIL" };
        println!("[{:>6.1}s]   {mark} {text}", self.start.elapsed().as_secs_f64());
        if !ok {
            self.failures.push(text.to_string());
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("  (timed out waiting for {what})");
    false
}

/// A simulated relay agent in front of the simulated clients: it wraps
/// every client message in a RELAY-FORW and sends it to both servers.
struct Relay {
    sock: UdpSocket,
    servers: Vec<SocketAddr>,
}

/// What a client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holding {
    address: Option<Ipv6Addr>,
    prefix: Option<(Ipv6Addr, u8)>,
    server: Option<Duid<'static>>,
}

impl Relay {
    fn duid(client: u32) -> Duid<'static> {
        let mut d = vec![0, 3, 0, 1, 0x02, 0xd0];
        d.extend_from_slice(&client.to_be_bytes());
        Duid::new(d).unwrap_or_else(|_| unreachable!("a 10-byte DUID is valid"))
    }

    fn message(
        t: MessageType,
        client: u32,
        xid: u32,
        server: Option<&Duid<'static>>,
        holding: Option<&Holding>,
    ) -> ClientMessage<'static> {
        let mut m = ClientMessage::new(t, TransactionId::from_low_bits(xid));
        m.options.push(DhcpOption::ClientId(Self::duid(client)));
        if let Some(s) = server {
            m.options.push(DhcpOption::ServerId(s.clone()));
        }
        m.options.push(DhcpOption::ElapsedTime(0));
        let addr = holding.and_then(|h| h.address);
        let prefix = holding.and_then(|h| h.prefix);
        m.options.push(DhcpOption::IaNa(IaNa {
            iaid: 1,
            t1: 0,
            t2: 0,
            options: addr
                .map(|a| {
                    vec![DhcpOption::IaAddr(duet_wire::option::IaAddr {
                        address: a,
                        preferred_lifetime: 0,
                        valid_lifetime: 0,
                        options: vec![],
                    })]
                })
                .unwrap_or_default(),
        }));
        m.options.push(DhcpOption::IaPd(IaPd {
            iaid: 2,
            t1: 0,
            t2: 0,
            options: prefix
                .map(|(p, l)| {
                    vec![DhcpOption::IaPrefix(duet_wire::option::IaPrefix {
                        preferred_lifetime: 0,
                        valid_lifetime: 0,
                        prefix_len: l,
                        prefix: p,
                        options: vec![],
                    })]
                })
                .unwrap_or_default(),
        }));
        m
    }

    /// Sends `m` (relayed) to every server; collects the answers for a while.
    fn exchange(
        &self,
        client: u32,
        m: &ClientMessage<'static>,
        wait: Duration,
    ) -> anyhow::Result<Vec<ClientMessage<'static>>> {
        let peer: Ipv6Addr = format!("fe80::d0:{client:x}").parse()?;
        let relayed = Message::Relay(RelayMessage {
            msg_type: MessageType::RelayForw,
            hop_count: 0,
            link_address: "2001:db8:1::1".parse()?,
            peer_address: peer,
            options: vec![
                DhcpOption::InterfaceId(Cow::Borrowed(b"demo0")),
                DhcpOption::RelayMsg(Box::new(Message::Client(m.clone()))),
            ],
        });
        let bytes = relayed.to_vec()?;
        for s in &self.servers {
            self.sock.send_to(&bytes, s)?;
        }
        let mut out = Vec::new();
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 4096];
        while Instant::now() < deadline {
            self.sock.set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))?;
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                break;
            };
            let Ok(reply) = Message::parse(buf.get(..n).unwrap_or_default()) else {
                continue;
            };
            if let Some((inner, _)) = reply.unwrap_relays() {
                if inner.transaction_id == m.transaction_id {
                    out.push(inner.clone().into_owned());
                }
            }
        }
        Ok(out)
    }
}

fn holding_of(reply: &ClientMessage<'_>) -> Holding {
    let mut h = Holding {
        address: None,
        prefix: None,
        server: reply.options.server_id().map(|d| d.clone().into_owned()),
    };
    for (_, l) in reply.options.ia_leases().filter(|(_, l)| l.valid_lifetime > 0) {
        match l.prefix_len {
            None => h.address = Some(l.address),
            Some(len) => h.prefix = Some((l.address, len)),
        }
    }
    h
}

fn write_config(
    dir: &Path,
    name: &str,
    role: &str,
    dhcp: SocketAddr,
    listen: u16,
    peer: u16,
    peer_name: &str,
) -> anyhow::Result<PathBuf> {
    let text = format!(
        r#"[server]
name = "{name}"
data-dir = "{name}"
listen = ["{dhcp}"]

[[subnet]]
prefix = "2001:db8:1::/64"
pools = ["2001:db8:1::1000-2001:db8:1::1fff"]
pd-pools = [{{ prefix = "2001:db8:8000::/48", delegated-length = 56 }}]
preferred-lifetime = 40
valid-lifetime = 60
renew-time = 10
rebind-time = 16
failover = "demo-pair"

[[failover]]
name = "demo-pair"
role = "{role}"
listen = "[::1]:{listen}"
peer = "[::1]:{peer}"
mclt = 30
keepalive = 4
tls = {{ cert = "tls/{name}.crt", key = "tls/{name}.key", ca = "tls/ca.crt", peer-name = "{peer_name}" }}
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn table(leases: &[LeaseJson]) -> BTreeMap<String, (String, Option<String>)> {
    leases
        .iter()
        .filter(|l| l.state == "active")
        .map(|l| {
            (
                l.address.clone().or(l.prefix.clone()).unwrap_or_default(),
                (l.state.clone(), l.duid.clone()),
            )
        })
        .collect()
}

/// Runs the demo; `Err` or a failed check gives a non-zero exit.
pub fn run(keep: bool, clients: u32) -> anyhow::Result<()> {
    let mut tl = Timeline {
        start: Instant::now(),
        failures: vec![],
    };
    let dir = std::env::temp_dir().join(format!("duet-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    tl.say(&format!("working directory {}", dir.display()));
    crate::tls::init(&dir.join("tls"), &["duet-a".to_string(), "duet-b".to_string()])?;
    tl.say("generated a CA and certificates for duet-a (primary) and duet-b (secondary)");
    let (pa, pb, fa, fb) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let dhcp_a = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, pa, 0, 0));
    let dhcp_b = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, pb, 0, 0));
    let mut a = Server {
        name: "duet-a",
        config: write_config(&dir, "duet-a", "primary", dhcp_a, fa, fb, "duet-b")?,
        socket: dir.join("duet-a").join("control.sock"),
        log: dir.join("duet-a.log"),
        dhcp: dhcp_a,
        child: None,
    };
    let mut b = Server {
        name: "duet-b",
        config: write_config(&dir, "duet-b", "secondary", dhcp_b, fb, fa, "duet-a")?,
        socket: dir.join("duet-b").join("control.sock"),
        log: dir.join("duet-b.log"),
        dhcp: dhcp_b,
        child: None,
    };
    b.start()?;
    a.start()?;
    tl.say(&format!(
        "started duet-a (DHCP {}) and duet-b (DHCP {}), partner link TLS 1.3 on [::1]:{fa} ↔ [::1]:{fb}",
        a.dhcp, b.dhcp
    ));
    let normal = wait_for("both servers in NORMAL", Duration::from_secs(40), || {
        a.state().as_deref() == Some("normal") && b.state().as_deref() == Some("normal")
    });
    tl.check(normal, "pair connected: both servers in state normal");
    if !normal {
        return finish(tl, &dir, true);
    }

    let relay = Relay {
        sock: UdpSocket::bind("[::1]:0")?,
        servers: vec![a.dhcp, b.dhcp],
    };
    let mut held: BTreeMap<u32, Holding> = BTreeMap::new();
    for c in 1..=clients {
        let adv = relay.exchange(
            c,
            &Relay::message(MessageType::Solicit, c, c * 10, None, None),
            Duration::from_millis(300),
        )?;
        let Some(offer) = adv
            .iter()
            .find(|m| m.msg_type == MessageType::Advertise && holding_of(m).address.is_some())
        else {
            tl.check(false, &format!("client {c}: no Advertise"));
            continue;
        };
        let server = offer.options.server_id().map(|d| d.clone().into_owned());
        let rep = relay.exchange(
            c,
            &Relay::message(MessageType::Request, c, c * 10 + 1, server.as_ref(), None),
            Duration::from_millis(300),
        )?;
        match rep.first().map(holding_of) {
            Some(h) if h.address.is_some() && h.prefix.is_some() => {
                held.insert(c, h);
            }
            _ => tl.check(
                false,
                &format!("client {c}: no Reply with an address and a prefix"),
            ),
        }
    }
    tl.check(
        held.len() == clients as usize,
        &format!(
            "{} clients got an address and a /56 prefix from the primary",
            held.len()
        ),
    );
    for (c, h) in held.iter().take(3) {
        tl.say(&format!(
            "    client {c}: {} and {}/{}",
            h.address.map(|a| a.to_string()).unwrap_or_default(),
            h.prefix.map(|p| p.0.to_string()).unwrap_or_default(),
            h.prefix.map(|p| p.1).unwrap_or(0)
        ));
    }
    let agreed = wait_for(
        "tables to agree",
        Duration::from_secs(5),
        || matches!((a.leases(), b.leases()), (Ok(x), Ok(y)) if table(&x) == table(&y) && table(&x).len() == 2 * held.len()),
    );
    tl.check(
        agreed,
        "both servers' lease tables agree (lazy BNDUPDs acknowledged)",
    );

    tl.say("killing the primary (SIGKILL)");
    a.kill();
    let ci = wait_for("the secondary to notice", Duration::from_secs(15), || {
        b.state().as_deref() == Some("communications-interrupted")
    });
    tl.check(
        ci,
        "secondary in communications-interrupted: serving alone, within MCLT",
    );
    let mut same = 0;
    for (c, h) in &held {
        // Renew to the (dead) primary goes unanswered; the client rebinds.
        let renew = relay.exchange(
            *c,
            &Relay::message(MessageType::Renew, *c, c * 10 + 2, h.server.as_ref(), Some(h)),
            Duration::from_millis(200),
        )?;
        if !renew.is_empty() {
            tl.check(
                false,
                &format!("client {c}: a Renew for the dead primary was answered"),
            );
        }
        let rebind = relay.exchange(
            *c,
            &Relay::message(MessageType::Rebind, *c, c * 10 + 3, None, Some(h)),
            Duration::from_millis(300),
        )?;
        let got = rebind.first().map(holding_of);
        if got
            .as_ref()
            .is_some_and(|g| g.address == h.address && g.prefix == h.prefix)
        {
            same += 1;
        }
    }
    tl.check(
        same == held.len(),
        &format!(
            "{same}/{} clients rebound to the secondary and kept the SAME address and prefix",
            held.len()
        ),
    );
    let fresh = relay.exchange(
        999,
        &Relay::message(MessageType::Solicit, 999, 9990, None, None),
        Duration::from_millis(300),
    )?;
    let fresh_addr = fresh.first().map(holding_of).and_then(|h| h.address);
    tl.check(
        fresh_addr.is_some_and(|a| u128::from(a) & 1 == 0),
        &format!(
            "a new client is offered {} from the secondary's (even) half",
            fresh_addr.map(|a| a.to_string()).unwrap_or("nothing".into())
        ),
    );

    tl.say("restarting the primary (its lease store kept)");
    a.start()?;
    let back = wait_for("both servers in NORMAL again", Duration::from_secs(60), || {
        a.state().as_deref() == Some("normal") && b.state().as_deref() == Some("normal")
    });
    tl.check(back, "primary back: recovery done, both servers in state normal");
    let equal = wait_for(
        "tables to agree",
        Duration::from_secs(10),
        || matches!((a.leases(), b.leases()), (Ok(x), Ok(y)) if table(&x) == table(&y)),
    );
    tl.check(equal, "both lease tables are equal again");
    if let (Ok(x), Ok(y)) = (a.leases(), b.leases()) {
        let mut owners: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for l in x.iter().chain(y.iter()).filter(|l| l.state == "active") {
            owners
                .entry(l.address.clone().or(l.prefix.clone()).unwrap_or_default())
                .or_default()
                .insert(l.duid.clone().unwrap_or_default());
        }
        let dup = owners.values().filter(|o| o.len() > 1).count();
        tl.check(
            dup == 0,
            &format!(
                "no address or prefix bound to two clients ({} active bindings)",
                owners.len()
            ),
        );
        for (c, h) in &held {
            let addr = h.address.map(|a| a.to_string());
            let on_a = x.iter().any(|l| l.address == addr && l.state == "active");
            if !on_a {
                tl.check(
                    false,
                    &format!("client {c}'s address is not active on the restarted primary"),
                );
            }
        }
    }
    a.stop();
    b.stop();
    finish(tl, &dir, keep)
}

fn finish(tl: Timeline, dir: &Path, keep: bool) -> anyhow::Result<()> {
    if tl.failures.is_empty() {
        tl.say("every check held");
        if !keep {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    } else {
        tl.say(&format!(
            "{} check(s) failed; logs and stores kept in {}",
            tl.failures.len(),
            dir.display()
        ));
        bail!("demo failed: {}", tl.failures.join("; "))
    }
}
