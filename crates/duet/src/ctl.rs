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
    // A handover answers when it ends (its timeout, at most 600 s).
    s.set_read_timeout(Some(Duration::from_secs(if path.contains("/handover") {
        620
    } else {
        10
    })))?;
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

/// A Unix time as a UTC date, `2026-12-08 01:02:03 UTC`.
pub fn utc(secs: u64) -> String {
    // Days to civil date (Howard Hinnant's algorithm, proleptic Gregorian).
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration in words: `45 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
pub fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// A Unix time relative to `now`: the date, and how long ago or ahead.
pub fn when(t: u64, now: u64) -> String {
    if t >= now {
        format!("{} (in {})", utc(t), span(t - now))
    } else {
        format!("{} ({} ago)", utc(t), span(now - t))
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `duet ctl status`.
pub fn status(socket: &Path, json: bool) -> anyhow::Result<()> {
    let body = request(socket, "GET", "/v1/status")?;
    if json {
        println!("{}", body.trim());
        return Ok(());
    }
    let s: StatusJson = serde_json::from_str(&body).context("decoding the status")?;
    print!("{}", status_text(&s, unix_now()));
    Ok(())
}

/// The text `duet ctl status` prints for `s` at Unix time `now`.
pub fn status_text(s: &StatusJson, now: u64) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "server   {} (duid {})", s.server.name, s.server.duid);
    let _ = writeln!(o, "version  {}   up {}", s.server.version, span(s.server.uptime));
    if s.relationships.is_empty() {
        let _ = writeln!(o, "failover none configured");
    }
    for r in &s.relationships {
        let _ = writeln!(
            o,
            "relationship {} ({}): {} since {}",
            r.name,
            r.role,
            r.state,
            when(r.since, now)
        );
        let _ = writeln!(
            o,
            "  partner {}, communications {}, last heard {}, clock skew {}",
            r.partner_state.as_deref().unwrap_or("unknown"),
            if r.communications_ok { "ok" } else { "interrupted" },
            if r.last_heard == 0 {
                "never".to_string()
            } else {
                when(r.last_heard, now)
            },
            r.clock_skew
                .map(|s| format!("{s} s"))
                .unwrap_or_else(|| "-".into())
        );
        let _ = writeln!(
            o,
            "  updates {} queued, {} unacknowledged",
            r.queued_bndupd, r.unacked_bndupd
        );
        if let Some(f) = &r.refusal {
            let _ = writeln!(
                o,
                "  refused ({}) by {} at {}: {}",
                f.kind,
                if f.by == "us" {
                    "this server"
                } else {
                    "the partner"
                },
                when(f.at, now),
                f.reason
            );
        }
        match (r.auto_partner_down_at, &r.auto_partner_down_held) {
            (Some(t), _) => {
                let _ = writeln!(
                    o,
                    "  automatic partner-down at {} unless the partner is heard",
                    when(t, now)
                );
            }
            (None, Some(why)) => {
                let _ = writeln!(o, "  automatic partner-down held off: {why}");
            }
            (None, None) => {}
        }
        if let Some(t) = r.recover_wait_until {
            let _ = writeln!(o, "  recover-wait ends {}", when(t, now));
        }
        if r.state == "partner-down" {
            match r.partner_pool_from {
                Some(t) => {
                    let _ = writeln!(
                        o,
                        "  the partner's delegable prefixes usable from {}",
                        when(t, now)
                    );
                }
                None => {
                    let _ = writeln!(o, "  the partner's delegable prefixes are not used while it recovers (partner-lost clears that if it is gone for good)");
                }
            }
        }
        if let Some(h) = &r.handover {
            let _ = writeln!(o, "  handover: {h}");
        }
        if let Some(a) = r.rescue_after {
            let _ = writeln!(
                o,
                "  rescues clients trying for {a} s or more (in normal, as secondary)"
            );
        }
        for a in &r.address_ranges {
            let _ = writeln!(
                o,
                "  addresses {}: primary half {} of {} free, secondary half {} of {} free",
                a.range, a.primary_free, a.primary_size, a.secondary_free, a.secondary_size
            );
        }
        for p in &r.prefix_pools {
            let _ = writeln!(
                o,
                "  prefixes {}: {} free (primary), {} free-backup (secondary) of {}",
                p.pool, p.free, p.free_backup, p.size
            );
        }
        for n in &r.subnets {
            let _ = writeln!(
                o,
                "  subnet {}{}: {} client messages, {} answered ({} rescued), last answer {}",
                n.prefix,
                n.interface
                    .as_deref()
                    .map(|i| format!(" on {i}"))
                    .unwrap_or_default(),
                n.seen,
                n.answered,
                n.rescued,
                n.last_answered
                    .map_or_else(|| "never".to_string(), |t| when(t, now))
            );
        }
    }
    let c = &s.counters;
    let _ = writeln!(
        o,
        "counters received {} replies {} commits {} socket-drops {} dropped {:?}",
        c.received, c.replies_sent, c.commits, c.socket_drops, c.dropped
    );
    if !c.failover_refusals.is_empty() {
        let _ = writeln!(o, "refusals {:?}", c.failover_refusals);
    }
    o
}

/// `duet ctl partner-down NAME` (RFC 8156 §8.4).
pub fn partner_down(socket: &Path, name: &str) -> anyhow::Result<()> {
    let body = request(socket, "POST", &format!("/v1/failover/{name}/partner-down"))?;
    let _: serde_json::Value = serde_json::from_str(&body).context("decoding the answer")?;
    println!("relationship {name}: partner declared down; this server is now in partner-down");
    Ok(())
}

/// An operator command on relationship `name` whose answer is a text.
pub fn command(socket: &Path, name: &str, what: &str, query: &str) -> anyhow::Result<()> {
    let body = request(socket, "POST", &format!("/v1/failover/{name}/{what}{query}"))?;
    let v: serde_json::Value = serde_json::from_str(&body).context("decoding the answer")?;
    println!("{}", v["result"].as_str().unwrap_or(body.trim()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_692_983), "2026-12-08 01:23:03 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    #[test]
    fn spans_and_relative_times_read_as_words() {
        assert_eq!(span(45), "45 s");
        assert_eq!(span(200), "3 min 20 s");
        assert_eq!(span(7500), "2 h 5 min");
        assert_eq!(span(273_600), "3 d 4 h");
        assert_eq!(when(100, 40), format!("{} (in 1 min 0 s)", utc(100)));
        assert_eq!(when(40, 100), format!("{} (1 min 0 s ago)", utc(40)));
    }
}
