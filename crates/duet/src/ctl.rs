//! `duet ctl`: a client of the control API on the server's Unix socket.

use crate::api::{LeaseJson, StatusJson};
use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Performs one HTTP/1.1 request on the control socket and returns the body.
pub fn request(socket: &Path, method: &str, path: &str) -> anyhow::Result<String> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to the control socket {} (is duet serve running?)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: duet\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response from the server")?;
    let status = head.lines().next().unwrap_or_default();
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    if !(200..300).contains(&code) {
        bail!("{method} {path}: {status}: {}", body.trim());
    }
    Ok(body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        let Some(chunk) = tail.get(..n) else { break };
        out.push_str(chunk);
        rest = tail.get(n..).unwrap_or_default().trim_start_matches("\r\n");
    }
    out
}

/// `duet ctl leases`.
pub fn leases(socket: &Path, json: bool) -> anyhow::Result<()> {
    let body = request(socket, "GET", "/v1/leases")?;
    if json {
        println!("{}", body.trim());
        return Ok(());
    }
    let leases: Vec<LeaseJson> = serde_json::from_str(&body).context("decoding the lease list")?;
    println!(
        "{:<4} {:<40} {:<13} {:<40} {:>10} {:>11} {:>11} RELATIONSHIP",
        "KIND", "ADDRESS/PREFIX", "STATE", "DUID", "IAID", "VALID", "PREFERRED"
    );
    for l in leases {
        println!(
            "{:<4} {:<40} {:<13} {:<40} {:>10} {:>11} {:>11} {}",
            l.kind,
            l.address.or(l.prefix).unwrap_or_default(),
            l.state,
            l.duid.unwrap_or_else(|| "-".into()),
            l.iaid.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            l.valid_until,
            l.preferred_until,
            l.relationship.unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

/// `duet ctl status`.
pub fn status(socket: &Path, json: bool) -> anyhow::Result<()> {
    let body = request(socket, "GET", "/v1/status")?;
    if json {
        println!("{}", body.trim());
        return Ok(());
    }
    let s: StatusJson = serde_json::from_str(&body).context("decoding the status")?;
    println!("server   {} (duid {})", s.server.name, s.server.duid);
    println!("version  {}   uptime {} s", s.server.version, s.server.uptime);
    if s.relationships.is_empty() {
        println!("failover none configured");
    }
    for r in &s.relationships {
        println!(
            "relationship {} ({}): {} since {}, partner {}, communications {}, unacked BNDUPD {}, clock skew {}",
            r.name,
            r.role,
            r.state,
            r.since,
            r.partner_state.as_deref().unwrap_or("unknown"),
            if r.communications_ok { "ok" } else { "interrupted" },
            r.unacked_bndupd,
            r.clock_skew.map(|s| format!("{s} s")).unwrap_or_else(|| "-".into())
        );
    }
    let c = &s.counters;
    println!(
        "counters received {} replies {} commits {} socket-drops {} dropped {:?}",
        c.received, c.replies_sent, c.commits, c.socket_drops, c.dropped
    );
    Ok(())
}

/// `duet ctl partner-down NAME` (RFC 8156 §8.4).
pub fn partner_down(socket: &Path, name: &str) -> anyhow::Result<()> {
    let body = request(socket, "POST", &format!("/v1/failover/{name}/partner-down"))?;
    let _: serde_json::Value = serde_json::from_str(&body).context("decoding the answer")?;
    println!("relationship {name}: partner declared down; this server is now in partner-down");
    Ok(())
}
