//! Real-client integration tests of a standalone `duet serve` (issue 3):
//! ISC dhclient, dhcpcd and perfdhcp against the server in network
//! namespaces, a crash with `kill -9` under load, a damaged journal, bad
//! input, and `duet check-config`. Needs root, iproute2, isc-dhcp-client,
//! dhcpcd, perfdhcp (kea-admin), tshark and python3; see tests/common.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

/// Renew (T1 = 4 s) keeps the same address for the same DUID and moves
/// valid-until forward; Release frees the address.
#[test]
fn dhclient_gets_address_renews_same_and_release_frees_it() {
    let lab = Lab::new();
    let config = lab.write_config("duet.toml", Timers::Short, "");
    let server = Server::start(&lab, &config);
    let duid = duid_ll(CLI_MAC);

    let mut dh = Dhclient::start(&lab, "dhclient", &["-N"]);
    let bound = dh.wait_event("BOUND6", 1, Duration::from_secs(20));
    let addr = bound
        .get("new_ip6_address")
        .cloned()
        .unwrap_or_else(|| panic!("BOUND6 without new_ip6_address: {bound:?}"));
    assert!(
        in_pool(&addr),
        "{addr} is not in the pool {POOL_START}-{POOL_END}"
    );
    assert_eq!(
        bound.get("new_max_life").map(String::as_str),
        Some("15"),
        "valid lifetime: {bound:?}"
    );
    assert_eq!(
        bound.get("new_dhcp6_name_servers").map(String::as_str),
        Some("2001:db8::53"),
        "{bound:?}"
    );
    let lease_file = dh.lease_file();
    assert!(
        lease_file.contains(&format!("iaaddr {addr} {{")),
        "lease file does not hold {addr}:\n{lease_file}"
    );

    let leases = server.leases();
    let l = find(&leases, &addr)
        .unwrap_or_else(|| panic!("{addr} not in ctl leases: {leases:?}"))
        .clone();
    assert_eq!((l.kind.as_str(), l.state.as_str()), ("na", "active"), "{l:?}");
    assert_eq!(l.duid.as_deref(), Some(duid.as_str()), "{l:?}");
    assert_eq!(
        l.iaid,
        Some(0x1001),
        "dhclient's IAID is the MAC's last 4 bytes: {l:?}"
    );
    assert!(l.valid_until >= l.preferred_until, "{l:?}");

    // T1 is 4 s: the Renew comes, and its Reply gives the same address.
    let renewed = dh.wait_event("RENEW6", 1, Duration::from_secs(20));
    assert_eq!(
        renewed.get("new_ip6_address"),
        Some(&addr),
        "Renew changed the address: {renewed:?}"
    );
    assert!(
        dh.log().contains("XMT: Renew"),
        "no Renew in the dhclient log:\n{}",
        dh.log()
    );
    let leases = server.leases();
    let r = find(&leases, &addr)
        .unwrap_or_else(|| panic!("{addr} gone after Renew: {leases:?}"))
        .clone();
    assert_eq!((r.kind.as_str(), r.state.as_str()), ("na", "active"), "{r:?}");
    assert_eq!(r.duid, l.duid, "DUID changed on Renew");
    assert_eq!(r.iaid, l.iaid, "IAID changed on Renew");
    assert!(
        r.valid_until > l.valid_until,
        "valid-until did not move on Renew: {} -> {}",
        l.valid_until,
        r.valid_until
    );
    let bound_to_duid: Vec<_> = leases
        .iter()
        .filter(|x| x.duid.as_deref() == Some(duid.as_str()) && x.state == "active")
        .collect();
    assert_eq!(
        bound_to_duid.len(),
        1,
        "the client holds more than one binding: {bound_to_duid:?}"
    );

    dh.release();
    let freed = wait_for(Duration::from_secs(10), || {
        let leases = server.leases();
        find(&leases, &addr).filter(|l| l.state == "free").cloned()
    });
    assert!(
        freed.is_some(),
        "{addr} not free after Release: {:?}\ndhclient:\n{}",
        find(&server.leases(), &addr),
        fs::read_to_string(dh.dir.join("release.log")).unwrap_or_default()
    );
}

/// `dhclient -6 -P` gets a /56 out of 2001:db8:8000::/40.
#[test]
fn dhclient_prefix_delegation_gets_prefix() {
    let lab = Lab::new();
    let config = lab.write_config("duet.toml", Timers::Default, "");
    let server = Server::start(&lab, &config);

    let dh = Dhclient::start(&lab, "dhclient", &["-P"]);
    let bound = dh.wait_event("BOUND6", 1, Duration::from_secs(20));
    let prefix = bound
        .get("new_ip6_prefix")
        .cloned()
        .unwrap_or_else(|| panic!("BOUND6 without new_ip6_prefix: {bound:?}"));
    assert!(
        in_pd_pool(&prefix),
        "{prefix} is not a /{PD_LEN} inside {PD_POOL}"
    );
    assert!(
        dh.lease_file().contains(&format!("iaprefix {prefix} {{")),
        "lease file:\n{}",
        dh.lease_file()
    );

    let leases = server.leases();
    let l = find(&leases, &prefix).unwrap_or_else(|| panic!("{prefix} not in ctl leases: {leases:?}"));
    assert_eq!((l.kind.as_str(), l.state.as_str()), ("pd", "active"), "{l:?}");
    assert_eq!(l.duid.as_deref(), Some(duid_ll(CLI_MAC).as_str()), "{l:?}");
    assert!(
        leases.iter().all(|x| x.kind == "pd"),
        "-P asked for a prefix only: {leases:?}"
    );
}

/// dhcpcd (ia_na 1, ia_pd 2, one shot) gets an address and a prefix, both
/// active for its DUID, and the subnet's DNS servers and search list.
#[test]
fn dhcpcd_gets_address_and_prefix() {
    let lab = Lab::new();
    let config = lab.write_config("duet.toml", Timers::Default, "");
    let server = Server::start(&lab, &config);

    let run = dhcpcd_oneshot(&lab, "dhcpcd");
    assert!(
        run.status.success(),
        "dhcpcd failed ({}):\n{}",
        run.status,
        run.log
    );
    assert_eq!(
        run.addresses.len(),
        1,
        "dhcpcd addresses: {:?}\n{}",
        run.addresses,
        run.log
    );
    assert_eq!(
        run.prefixes.len(),
        1,
        "dhcpcd prefixes: {:?}\n{}",
        run.prefixes,
        run.log
    );
    let addr = &run.addresses[0];
    let prefix = &run.prefixes[0];
    assert!(in_pool(addr), "{addr} not in the pool");
    assert!(in_pd_pool(prefix), "{prefix} is not a /{PD_LEN} inside {PD_POOL}");
    let duid = run
        .duid
        .clone()
        .unwrap_or_else(|| panic!("dhcpcd left no DUID file:\n{}", run.log));

    let leases = server.leases();
    let na = find(&leases, addr).unwrap_or_else(|| panic!("{addr} not in ctl leases: {leases:?}"));
    let pd = find(&leases, prefix).unwrap_or_else(|| panic!("{prefix} not in ctl leases: {leases:?}"));
    assert_eq!((na.kind.as_str(), na.state.as_str()), ("na", "active"), "{na:?}");
    assert_eq!((pd.kind.as_str(), pd.state.as_str()), ("pd", "active"), "{pd:?}");
    assert_eq!(na.duid.as_deref(), Some(duid.as_str()), "{na:?}");
    assert_eq!(pd.duid.as_deref(), Some(duid.as_str()), "{pd:?}");
    assert_eq!(
        (na.iaid, pd.iaid),
        (Some(1), Some(2)),
        "IAIDs from ia_na 1 / ia_pd 2"
    );
    // The options it asked for, as its hook script sees them.
    for line in [
        "new_dhcp6_name_servers=2001:db8::53",
        "new_dhcp6_domain_search=example.org",
    ] {
        assert!(run.env.lines().any(|l| l == line), "no {line} in:\n{}", run.env);
    }
}

/// At least 10,000 distinct perfdhcp clients complete Solicit / Advertise /
/// Request / Reply with no drop, and all of them hold an active lease.
#[test]
fn perfdhcp_ten_thousand_clients_complete_four_way() {
    let _heavy = heavy();
    let lab = Lab::new();
    let config = lab.write_config("duet.toml", Timers::Default, "");
    let server = Server::start(&lab, &config);
    let rcvbuf_before = lab.udp6_rcvbuf_errors(&lab.cli);

    // 10,200 Solicits from a range of 1,000,000 client DUIDs at 2,000/s; -W:
    // after the last one, wait 3 s for the answers (otherwise the last
    // exchanges in flight count as drops).
    let started = Instant::now();
    let mut p = perfdhcp_start(
        &lab,
        &[
            "-R",
            "1000000",
            "-r",
            "2000",
            "-n",
            "10200",
            "-e",
            "address-only",
            "-W",
            "3000000",
        ],
        "perfdhcp.log",
    );
    let status = p.wait_timeout(Duration::from_secs(100));
    if status.is_none() {
        p.kill();
    }
    let out = p.output();
    let report = parse_perfdhcp(&out);
    let rcvbuf = lab.udp6_rcvbuf_errors(&lab.cli) - rcvbuf_before;
    let counters = server.counters();
    let ctx = format!(
        "perfdhcp ({:?} after {:?}):\n{out}\nclient-side UDP6 receive-buffer drops: {rcvbuf}\nserver counters: {}",
        status,
        started.elapsed(),
        counters.0
    );
    assert!(status.is_some(), "perfdhcp did not finish within 100 s\n{ctx}");
    let sa = report
        .exchanges
        .get("SOLICIT-ADVERTISE")
        .unwrap_or_else(|| panic!("no SOLICIT-ADVERTISE statistics\n{ctx}"));
    let rr = report
        .exchanges
        .get("REQUEST-REPLY")
        .unwrap_or_else(|| panic!("no REQUEST-REPLY statistics\n{ctx}"));
    assert!(sa.sent >= 10_200, "perfdhcp sent {} Solicits\n{ctx}", sa.sent);
    for (name, e) in [("SOLICIT-ADVERTISE", sa), ("REQUEST-REPLY", rr)] {
        assert_eq!(e.drops, 0, "{name}: drops\n{ctx}");
        assert_eq!(e.received, e.sent, "{name}: answers missing\n{ctx}");
        assert_eq!(
            (e.orphans, e.rejected),
            (0, 0),
            "{name}: orphans / rejected leases\n{ctx}"
        );
    }
    assert!(
        rr.received >= 10_000,
        "only {} completed four-way exchanges\n{ctx}",
        rr.received
    );
    assert_eq!(report.malformed, 0, "{ctx}");
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "perfdhcp exit status (3 = exchanges not completed)\n{ctx}"
    );

    let leases = server.leases();
    let active: Vec<&Lease> = leases
        .iter()
        .filter(|l| l.kind == "na" && l.state == "active")
        .collect();
    let duids: BTreeSet<&str> = active.iter().filter_map(|l| l.duid.as_deref()).collect();
    assert!(
        duids.len() >= 10_000,
        "{} active leases for {} distinct DUIDs after the run, want >= 10,000\n{ctx}",
        active.len(),
        duids.len()
    );
    assert!(
        active.iter().all(|l| in_pool(&l.what)),
        "a lease outside the pool"
    );
    // Nothing overflowed the receive queue (no kernel filter standalone).
    assert_eq!(counters.get("socket-drops"), 0, "{ctx}");
    assert_eq!(
        counters.dropped_total(),
        0,
        "the server dropped perfdhcp's messages\n{ctx}"
    );
    eprintln!(
        "perfdhcp: {} clients completed 4-way in {:?}; {} distinct DUIDs active",
        rr.received,
        started.elapsed(),
        duids.len()
    );
}

/// Every address a Reply gave out before `kill -9` is still active after
/// the restart; then a damaged journal tail (garbage appended, a byte of
/// the last record flipped) is set aside with a warning and a saved copy,
/// and the bindings before it survive.
#[test]
fn crash_kill9_loses_no_replied_binding() {
    let _heavy = heavy();
    let lab = Lab::new();
    let config = lab.write_config("duet.toml", Timers::Default, "");
    let mut server = Server::start(&lab, &config);
    let journal = server.data_dir.join("leases.journal");

    let pcap = lab.path("crash.pcapng");
    let mut tshark = tshark_start(&lab.cli, &pcap, &lab.path("tshark.log"));
    let mut perf = perfdhcp_start(
        &lab,
        &[
            "-R",
            "1000000",
            "-r",
            "2000",
            "-p",
            "30",
            "-e",
            "address-and-prefix",
        ],
        "perfdhcp.log",
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(server.running(), "server died under load:\n{}", server.log());
    server.kill9();
    std::thread::sleep(Duration::from_millis(500));
    perf.kill();
    std::thread::sleep(Duration::from_millis(500));
    tshark_stop(&mut tshark);

    // Every address and prefix any Reply carried, as the client saw it.
    let mut replied = BTreeSet::new();
    let mut replied_pd = BTreeSet::new();
    let rows = tshark_rows(
        &pcap,
        "dhcpv6.msgtype == 7",
        &[
            "dhcpv6.iaaddr.ip",
            "dhcpv6.iaprefix.pref_addr",
            "dhcpv6.iaprefix.pref_len",
        ],
    );
    for row in &rows {
        replied.extend(row[0].iter().cloned());
        assert_eq!(
            row[1].len(),
            row[2].len(),
            "tshark prefix fields do not pair up: {row:?}"
        );
        replied_pd.extend(row[1].iter().zip(&row[2]).map(|(a, l)| format!("{a}/{l}")));
    }
    assert!(
        replied.len() >= 100 && replied_pd.len() >= 100,
        "only {} addresses and {} prefixes in {} Replies before the crash; perfdhcp:\n{}",
        replied.len(),
        replied_pd.len(),
        rows.len(),
        perf.output()
    );

    server.restart();
    let leases = server.leases();
    let active = active_addresses(&leases);
    let active_pd = active_prefixes(&leases);
    let lost: Vec<&String> = replied
        .iter()
        .filter(|a| !active.contains(*a))
        .chain(replied_pd.iter().filter(|p| !active_pd.contains(*p)))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} replied addresses and prefixes are not active after kill -9 and restart, e.g. {:?}\n\
         restart log:\n{}",
        lost.len(),
        replied.len() + replied_pd.len(),
        lost.iter().take(10).collect::<Vec<_>>(),
        server.log()
    );
    eprintln!(
        "crash: {} addresses and {} prefixes in {} Replies, all active after restart ({} + {} active)",
        replied.len(),
        replied_pd.len(),
        rows.len(),
        active.len(),
        active_pd.len()
    );

    // Step 1: garbage after the last record.
    let (before, before_pd) = (active, active_pd);
    let st = server.stop();
    assert!(
        st.success(),
        "duet serve exit status after SIGTERM: {st}\n{}",
        server.log()
    );
    let mut bytes = fs::read(&journal).expect("read journal");
    let good_len = journal_end(&bytes);
    // Garbage where the next record would go (in the preallocated free
    // space, or appended if there is none).
    let garbage = b"\x13\x00\x00\x00garbage after the last record \xff\xfe";
    bytes.resize(bytes.len().max(good_len + garbage.len()), 0);
    bytes[good_len..good_len + garbage.len()].copy_from_slice(garbage);
    fs::write(&journal, &bytes).expect("write garbage");
    server.restart();
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("WARN") && mentions_damage(l)),
        "no warning about the damaged journal tail in the log:\n{log}"
    );
    let copies = files_starting_with(&server.data_dir, "leases.journal.corrupt-");
    assert_eq!(copies.len(), 1, "saved copies of the tail: {copies:?}");
    let copy = fs::read(&copies[0]).expect("read copy");
    assert_eq!(
        &copy[..],
        &bytes[good_len..],
        "the saved copy is not the discarded tail"
    );
    let leases = server.leases();
    assert_eq!(
        active_addresses(&leases),
        before,
        "address bindings changed by a garbage tail"
    );
    assert_eq!(
        active_prefixes(&leases),
        before_pd,
        "prefix bindings changed by a garbage tail"
    );

    // Step 2: one more binding (dhclient), the last binding record of the
    // journal; damage one byte inside it.
    let mut dh = Dhclient::start(&lab, "dhclient", &["-N"]);
    let bound = dh.wait_event("BOUND6", 1, Duration::from_secs(20));
    let addr = bound.get("new_ip6_address").cloned().expect("dhclient address");
    dh.kill();
    assert!(
        active_addresses(&server.leases()).contains(&addr),
        "{addr} not active"
    );
    let st = server.stop();
    assert!(
        st.success(),
        "duet serve exit status after SIGTERM: {st}\n{}",
        server.log()
    );
    let mut bytes = fs::read(&journal).expect("read journal");
    let records = journal_records(&bytes);
    journal_end(&bytes);
    // dhclient's binding is the last binding committed; only records without
    // a binding (the server's "last operating" heartbeat) may follow it.
    let duid = hex::decode(duid_ll(CLI_MAC)).expect("duid hex");
    let holds_duid = |&(o, t): &(usize, usize)| bytes[o + 8..o + t].windows(duid.len()).any(|w| w == duid);
    let k = records.iter().rposition(holds_duid).unwrap_or_else(|| {
        panic!(
            "no journal record holds dhclient's DUID ({} records)",
            records.len()
        )
    });
    let (off, total) = records[k];
    assert!(
        records.len() - k <= 3,
        "dhclient's binding is record {k} of {}: more than heartbeats follow it",
        records.len()
    );
    bytes[off + 8 + (total - 8) / 2] ^= 0x5a;
    fs::write(&journal, &bytes).expect("flip a byte");
    let tail = bytes[off..].to_vec();
    server.restart();
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("WARN") && mentions_damage(l)),
        "no warning about the damaged last record in the log:\n{log}"
    );
    let copies = files_starting_with(&server.data_dir, "leases.journal.corrupt-");
    assert_eq!(copies.len(), 2, "saved copies of the tails: {copies:?}");
    assert!(
        copies.iter().any(|c| fs::read(c).is_ok_and(|b| b == tail)),
        "no saved copy holds the {} bytes from the damaged record on",
        tail.len()
    );
    let leases = server.leases();
    let after = active_addresses(&leases);
    assert!(
        after.is_superset(&before),
        "address bindings from before the damaged record are missing"
    );
    assert_eq!(
        active_prefixes(&leases),
        before_pd,
        "prefix bindings from before the damaged record changed"
    );
    assert!(
        !after.contains(&addr),
        "{addr} comes from the damaged record, yet it is active"
    );
    // Cut at the damaged record (the server may have appended since).
    let now = fs::read(&journal).expect("journal");
    assert!(
        now.len() >= off && now[..off] == bytes[..off],
        "the journal before the damaged record changed"
    );
    assert!(
        !journal_records(&now)
            .iter()
            .any(|&(o, t)| now[o + 8..o + t].windows(duid.len()).any(|w| w == duid)),
        "the journal still holds a record with dhclient's binding"
    );
}

/// Where the journal's last record ends; checks that only zeros (free
/// space) follow it.
fn journal_end(bytes: &[u8]) -> usize {
    let end = journal_records(bytes).last().map_or(16, |&(o, t)| o + t);
    assert!(
        bytes[end..].iter().all(|&b| b == 0),
        "the journal does not end with a whole record and free space (zeros) after it"
    );
    end
}

fn mentions_damage(line: &str) -> bool {
    let l = line.to_lowercase();
    ["corrupt", "discard", "tail", "set aside", "damaged"]
        .iter()
        .any(|w| l.contains(w))
}

/// A small sender of bad datagrams, run in the client namespace:
/// `sender.py MODE SERVER_ADDR [SEED COUNT]`; prints how many datagrams it
/// sent. Every datagram goes to ff02::1:2%eth0 and to SERVER_ADDR, except
/// in `flood` mode (alternating).
const SENDER: &str = r#"
import errno, random, socket, struct, sys, time
mode, server = sys.argv[1], sys.argv[2]
ifx = socket.if_nametoindex("eth0")
dsts = [("ff02::1:2", 547, 0, ifx), (server, 547, 0, 0)]
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifx)
sent = 0
def send(p, to=dsts):
    global sent
    for d in to:
        for _ in range(1000):
            try:
                s.sendto(p, d)
                sent += 1
                break
            except OSError as e:
                if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
                time.sleep(0.001)
def opt(code, data):
    return struct.pack("!HH", code, len(data)) + data
duid = bytes.fromhex("0003000102000000beef")
def solicit(xid):
    return bytes([1]) + xid + opt(1, duid) + opt(8, b"\0\0") + opt(3, struct.pack("!III", 7, 0, 0))
if mode == "truncated":
    for p in (b"\x01", b"\x03\x00", b"\x0c\x00\x00"):
        send(p)
elif mode == "overrun":
    # CLIENTID, then an IA_NA claiming 40 bytes of which 12 are there
    send(b"\x01\xab\xcd\xef" + opt(1, duid) + struct.pack("!HH", 3, 40) + struct.pack("!III", 7, 0, 0))
elif mode == "relay":
    m = solicit(b"\x11\x22\x33")
    link = bytes(16)
    peer = bytes.fromhex("fe800000000000000000000000000001")
    for hop in range(40):
        m = bytes([12, hop]) + link + peer + opt(9, m)
    send(m)
elif mode == "flood":
    rnd = random.Random(int(sys.argv[3]))
    for i in range(int(sys.argv[4])):
        p = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200)))
        send(p, [dsts[i % 2]])
else:
    raise SystemExit("unknown mode " + mode)
print(sent)
"#;

/// Sends one kind of bad datagram and checks every copy was counted as
/// malformed.
fn send_malformed(lab: &Lab, server: &Server, mode: &str) {
    let before = server.counters();
    let sent: u64 = lab
        .python_cli(SENDER, &[mode, SRV_ADDR], Duration::from_secs(20))
        .trim()
        .parse()
        .expect("count");
    let after = wait_for(Duration::from_secs(10), || {
        let c = server.counters();
        (c.get("received") >= before.get("received") + sent).then_some(c)
    })
    .unwrap_or_else(|| {
        panic!(
            "{mode}: the server did not receive the {sent} datagrams: {}",
            server.counters().0
        )
    });
    assert_eq!(
        after.dropped("malformed") - before.dropped("malformed"),
        sent,
        "{mode}: not every datagram counted as malformed: before {} after {}",
        before.0,
        after.0
    );
    assert_eq!(
        after.get("replies-sent"),
        before.get("replies-sent"),
        "{mode}: the server answered bad input"
    );
}

/// Truncated datagrams, an option running past the end, relay messages
/// nested 40 deep and 20,000 random datagrams are dropped and counted
/// (as malformed), and a real client is served afterwards.
#[test]
fn bad_input_is_dropped_counted_and_client_still_served() {
    let lab = Lab::new();
    let config = lab.write_config("duet.toml", Timers::Default, "");
    let mut server = Server::start(&lab, &config);

    send_malformed(&lab, &server, "truncated");
    send_malformed(&lab, &server, "overrun");
    send_malformed(&lab, &server, "relay");

    let before = server.counters();
    let sent: u64 = lab
        .python_cli(
            SENDER,
            &["flood", SRV_ADDR, "3", "20000"],
            Duration::from_secs(40),
        )
        .trim()
        .parse()
        .expect("count");
    assert_eq!(sent, 20_000);
    // Wait until the server has worked through the flood.
    let mut last = before.get("received");
    let settled = wait_for(Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(400));
        let c = server.counters();
        let r = c.get("received");
        let done = r == last && r > before.get("received");
        last = r;
        done.then_some(c)
    })
    .unwrap_or_else(|| {
        panic!(
            "the server never settled after the flood: {}",
            server.counters().0
        )
    });
    assert!(
        server.running(),
        "the server died in the flood:\n{}",
        server.log()
    );
    let received = settled.get("received") - before.get("received");
    let malformed = settled.dropped("malformed") - before.dropped("malformed");
    let dropped = settled.dropped_total() - before.dropped_total();
    let overflow = settled.get("socket-drops") - before.get("socket-drops");
    eprintln!("flood: {sent} sent, {received} received, {malformed} malformed, {dropped} dropped in all, {overflow} receive-queue overflows");
    assert!(
        malformed > 0,
        "no malformed datagram counted in the flood: {}",
        settled.0
    );
    assert!(
        received > 0 && dropped + overflow >= received - 50,
        "random datagrams were answered: {}",
        settled.0
    );

    let dh = Dhclient::start(&lab, "dhclient", &["-N"]);
    let bound = dh.wait_event("BOUND6", 1, Duration::from_secs(20));
    let addr = bound.get("new_ip6_address").cloned().expect("address");
    let leases = server.leases();
    let l = find(&leases, &addr).unwrap_or_else(|| panic!("{addr} not in ctl leases"));
    assert_eq!(l.state, "active");
    assert_eq!(l.duid.as_deref(), Some(duid_ll(CLI_MAC).as_str()));
    let st = server.stop();
    assert!(st.success(), "exit status after SIGTERM: {st}\n{}", server.log());
}

/// Whether a `check-config` line is about key `path` (or a key below it).
fn names_key(line: &str, path: &str) -> bool {
    line.strip_prefix(path)
        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('.'))
}

/// `duet check-config` exits 1 and names the key path of each error.
#[test]
fn check_config_names_bad_keys() {
    let dir = base_dir().join(format!("{PREFIX}{}-check-config", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");
    let server = "[server]\nname = \"t\"\ndata-dir = \"data\"\ninterfaces = [\"eth0\"]\n";
    let subnet = |body: &str| {
        format!("{server}\n[[subnet]]\nprefix = \"2001:db8:1::/64\"\ninterface = \"eth0\"\n{body}\n")
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "good",
            subnet("pools = [\"2001:db8:1::100-2001:db8:1::1ff\"]"),
            "",
            "",
        ),
        (
            "bad-prefix",
            format!("{server}\n[[subnet]]\nprefix = \"2001:db8:zz::/64\"\ninterface = \"eth0\"\n"),
            "subnet[0].prefix",
            "",
        ),
        (
            "prefix-too-long",
            format!("{server}\n[[subnet]]\nprefix = \"2001:db8:1::/129\"\ninterface = \"eth0\"\n"),
            "subnet[0].prefix",
            "",
        ),
        (
            "pool-outside",
            subnet("pools = [\"2001:db8:2::1-2001:db8:2::5\"]"),
            "subnet[0].pools[0]",
            "outside",
        ),
        (
            "end-before-start",
            subnet("pools = [\"2001:db8:1::50-2001:db8:1::10\"]"),
            "subnet[0].pools[0]",
            "end before start",
        ),
        (
            "overlap",
            subnet("pools = [\"2001:db8:1::100-2001:db8:1::200\", \"2001:db8:1::150-2001:db8:1::250\"]"),
            "subnet[0].pools[1]",
            "overlap",
        ),
        (
            "short-delegated-length",
            subnet("pd-pools = [{ prefix = \"2001:db8:8000::/40\", delegated-length = 32 }]"),
            "subnet[0].pd-pools[0].delegated-length",
            "shorter",
        ),
        (
            "overlapping-pd-pools",
            subnet(
                "pd-pools = [{ prefix = \"2001:db8:8000::/40\", delegated-length = 56 }, \
                 { prefix = \"2001:db8:8000::/44\", delegated-length = 56 }]",
            ),
            "subnet[0].pd-pools[1]",
            "overlap",
        ),
        (
            "unknown-key-server",
            format!("{server}bogus = 1\n"),
            "server.bogus",
            "unknown",
        ),
        (
            "unknown-key-subnet",
            subnet("colour = \"blue\""),
            "subnet[0].colour",
            "unknown",
        ),
        (
            "bad-timers",
            subnet("renew-time = 20\nrebind-time = 10"),
            "subnet[0].renew-time",
            "",
        ),
    ];
    let mut failures = Vec::new();
    for (name, text, path, word) in &cases {
        let file = dir.join(format!("{name}.toml"));
        fs::write(&file, text).expect("write config");
        let out = run(
            &[DUET, "check-config", &file.to_string_lossy()],
            Duration::from_secs(20),
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = out.status.code();
        let ok = if path.is_empty() {
            code == Some(0)
        } else {
            code == Some(1)
                && stdout
                    .lines()
                    .any(|l| names_key(l, path) && l.to_lowercase().contains(word))
        };
        if !ok {
            failures.push(format!(
                "{name}: exit {code:?}, want {} naming `{path}` {word:?}:\n{stdout}{}",
                if path.is_empty() { 0 } else { 1 },
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    // Every error is reported, not only the first.
    let all = format!(
        "{server}bogus = 1\n\n[[subnet]]\nprefix = \"2001:db8:1::/64\"\ninterface = \"eth0\"\n\
         pools = [\"2001:db8:1::50-2001:db8:1::10\", \"2001:db8:2::1-2001:db8:2::5\"]\n\
         pd-pools = [{{ prefix = \"2001:db8:8000::/40\", delegated-length = 32 }}]\n"
    );
    let file = dir.join("all.toml");
    fs::write(&file, &all).expect("write config");
    let out = run(
        &[DUET, "check-config", &file.to_string_lossy()],
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for path in [
        "server.bogus",
        "subnet[0].pools[0]",
        "subnet[0].pools[1]",
        "subnet[0].pd-pools[0]",
    ] {
        if out.status.code() != Some(1) || !stdout.lines().any(|l| names_key(l, path)) {
            failures.push(format!(
                "all-in-one: exit {:?}, `{path}` not named:\n{stdout}",
                out.status.code()
            ));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "check-config:\n{}", failures.join("\n"));
}

/// A client in the client namespace that sends `COUNT` Solicits (distinct
/// DUIDs) back to back from port 546 and then collects Advertises for
/// `WAIT` seconds: `burst.py COUNT WAIT`; prints "answered first last",
/// the arrival times in seconds after the last send.
const BURST: &str = r#"
import socket, struct, sys, time
count, wait = int(sys.argv[1]), float(sys.argv[2])
ifx = socket.if_nametoindex("eth0")
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifx)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("::", 546))
def opt(code, data):
    return struct.pack("!HH", code, len(data)) + data
for i in range(count):
    duid = bytes.fromhex("00030001020000") + struct.pack("!H", i) + b"\x01"
    xid = struct.pack("!I", i)[1:]
    m = bytes([1]) + xid + opt(1, duid) + opt(8, b"\0\0") + opt(3, struct.pack("!III", i + 1, 0, 0))
    s.sendto(m, ("ff02::1:2", 547, 0, ifx))
t0 = time.monotonic()
seen, times = set(), []
s.settimeout(0.2)
while time.monotonic() - t0 < wait:
    try:
        p = s.recv(2048)
    except socket.timeout:
        continue
    if p and p[0] == 2 and p[1:4] not in seen:
        seen.add(p[1:4])
        times.append(time.monotonic() - t0)
print(len(seen), min(times, default=0), max(times, default=0))
"#;

/// `server.send-rate` paces a burst: 40 Solicits sent at once, with
/// send-rate = 50 and send-burst = 5, are all answered, the first 5 at once
/// and the rest spread over about (40 - 5) / 50 = 0.7 s, and
/// `replies-paced` counts those that waited.
#[test]
fn a_burst_of_answers_is_paced_and_none_is_lost() {
    let lab = Lab::new();
    let config = lab.write_config("duet.toml", Timers::Default, "send-rate = 50\nsend-burst = 5");
    let server = Server::start(&lab, &config);
    let out = lab.python_cli(BURST, &["40", "3"], Duration::from_secs(20));
    let f: Vec<f64> = out.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let &[answered, first, last] = f.as_slice() else {
        panic!("burst.py printed {out:?}")
    };
    assert_eq!(answered, 40.0, "not every Solicit was answered: {out}");
    assert!(first < 0.3, "the first Advertise waited {first} s");
    assert!(
        last >= 0.5,
        "the last Advertise came {last} s after the burst: not paced"
    );
    let c = server.counters();
    let paced = c.get("replies-paced");
    assert!((30..=40).contains(&paced), "replies-paced = {paced}: {}", c.0);
}

/// A relay agent's Relay-forward of a Request with 2,000 IAs of one kind:
/// `bigrelay.py KIND SERVER_ADDR SERVER_DUID_HEX`; prints the size of the
/// Relay-reply it got (0: none within 5 s) and the number of IAs in it
/// with a lease.
const BIG_RELAY: &str = r#"
import socket, struct, sys
kind, server, sduid = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
def opt(code, data):
    return struct.pack("!HH", code, len(data)) + data
duid = bytes.fromhex("000300010200000000aa")
ias = b""
for iaid in range(2000):
    ias += opt(25 if kind == "pd" else 3, struct.pack("!III", iaid, 0, 0))
req = bytes([3, 0x12, 0x34, 0x56]) + opt(1, duid) + opt(2, sduid) + opt(8, b"\0\0") + ias
link = socket.inet_pton(socket.AF_INET6, "2001:db8:1::1")
peer = socket.inet_pton(socket.AF_INET6, "fe80::99")
fwd = bytes([12, 0]) + link + peer + opt(18, b"port-7") + opt(9, req)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 547))
s.settimeout(5)
s.sendto(fwd, (server, 547))
try:
    rep, _ = s.recvfrom(70000)
except socket.timeout:
    print(0, 0)
    raise SystemExit
# Relay-reply: type, hop, link, peer, then options; find RELAY_MSG (9).
def options(b):
    out = []
    while len(b) >= 4:
        c, l = struct.unpack("!HH", b[:4])
        out.append((c, b[4:4 + l]))
        b = b[4 + l:]
    return out
inner = dict(options(rep[34:]))[9]
granted = 0
for c, d in options(inner[4:]):
    if c in (3, 25) and any(cc in (5, 26) for cc, _ in options(d[12:])):
        granted += 1
print(len(rep), granted)
"#;

/// Issue 30 point 2 on the wire: a relay's Request with 2,000 IA_NAs, then
/// one with 2,000 IA_PDs, against a pool of 64 addresses and 64 prefixes.
/// The server answers within a datagram, serves at most 32 IAs, does not
/// empty the pools, and a real client is served afterwards.
#[test]
fn a_relayed_request_with_two_thousand_ias_leaves_the_pool_to_others() {
    let lab = Lab::new();
    let config = lab.path("small.toml");
    let text = server_config(&lab.path("data"), Timers::Default, "")
        .replace(POOL_END, "2001:db8:1::103f")
        .replace(PD_POOL, "2001:db8:8000::/50");
    fs::write(&config, text).expect("write config");
    let mut server = Server::start(&lab, &config);
    let duid = server.status()["server"]["duid"]
        .as_str()
        .expect("server DUID")
        .to_string();
    for kind in ["na", "pd"] {
        let out = lab.python_cli(BIG_RELAY, &[kind, SRV_ADDR, &duid], Duration::from_secs(20));
        let v: Vec<u64> = out.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        let (size, granted) = (v[0], v[1]);
        assert!(size > 0, "{kind}: no Relay-reply\n{}", server.log());
        assert!(size <= 65_527, "{kind}: a {size}-byte reply");
        assert_eq!(granted, 32, "{kind}: IAs served");
    }
    let leases = server.leases();
    let active = |k: &str| {
        leases
            .iter()
            .filter(|l| l.kind == k && l.state == "active")
            .count()
    };
    assert_eq!(
        (active("na"), active("pd")),
        (32, 32),
        "the pools are not emptied"
    );
    let dh = Dhclient::start(&lab, "dhclient", &["-N", "-P"]);
    let bound = dh.wait_event("BOUND6", 1, Duration::from_secs(20));
    let addr = bound.get("new_ip6_address").cloned().expect("address");
    assert!(find(&server.leases(), &addr).is_some_and(|l| l.state == "active"));
    let st = server.stop();
    assert!(st.success(), "exit status after SIGTERM: {st}\n{}", server.log());
}

/// Issue 27: host reservations and options, with real clients. A pool of
/// four addresses and four /56s, one of each reserved for the dhclient's
/// link-layer address (from its DUID-LL): perfdhcp's 30 clients (other
/// DUIDs) fill the rest and never get the reserved ones; then dhclient -N
/// -P gets exactly its reservation, its reservation's SNTP servers and the
/// subnet's DNS servers and domain search in its script environment, and a
/// raw option by code (65001, text) is on the wire with its bytes.
#[test]
fn dhclient_gets_its_reservation_and_options_and_no_one_else_does() {
    const RESERVED_NA: &str = "2001:db8:1::1002";
    const RESERVED_PD: &str = "2001:db8:8000:300::/56";
    let lab = Lab::new();
    let data = lab.path("data");
    let config = lab.path("duet.toml");
    fs::write(
        &config,
        format!(
            r#"[server]
name = "duet-lab"
data-dir = "{data}"
interfaces = ["eth0"]

[[options]]
code = 65001
text = "duet-raw"
always-send = true

[[subnet]]
prefix = "{SUBNET}"
interface = "eth0"
pools = ["2001:db8:1::1000-2001:db8:1::1003"]
pd-pools = [{{ prefix = "2001:db8:8000::/54", delegated-length = 56 }}]
dns-servers = ["2001:db8::53"]
domain-search = ["example.org"]
reservations = [
  {{ hw-address = "{CLI_MAC}", addresses = ["{RESERVED_NA}"], prefixes = ["{RESERVED_PD}"],
     options = [{{ name = "sntp-servers", value = ["2001:db8::123"], always-send = true }}] }},
]
"#,
            data = data.display()
        ),
    )
    .expect("config");
    let server = Server::start(&lab, &config);

    let mut p = perfdhcp_start(
        &lab,
        &[
            "-R",
            "30",
            "-r",
            "30",
            "-n",
            "30",
            "-e",
            "address-and-prefix",
            "-W",
            "2000000",
        ],
        "perfdhcp.log",
    );
    if p.wait_timeout(Duration::from_secs(60)).is_none() {
        p.kill();
    }
    let leases = server.leases();
    let active = |kind: &str| {
        leases
            .iter()
            .filter(|l| l.kind == kind && l.state == "active")
            .map(|l| l.what.clone())
            .collect::<BTreeSet<_>>()
    };
    let (na, pd) = (active("na"), active("pd"));
    assert_eq!(
        na.len(),
        3,
        "the three unreserved addresses: {na:?}\n{}",
        p.output()
    );
    assert_eq!(pd.len(), 3, "the three unreserved prefixes: {pd:?}");
    assert!(
        !na.contains(RESERVED_NA) && !pd.contains(RESERVED_PD),
        "{na:?} {pd:?}"
    );

    let cap = lab.path("cli.pcap");
    let mut dump = Proc::spawn(
        "dumpcap",
        &in_ns(
            &lab.cli,
            &[
                "dumpcap",
                "-q",
                "-i",
                "eth0",
                "-f",
                "udp port 546",
                "-w",
                &cap.to_string_lossy(),
            ],
        ),
        &lab.path("dumpcap.log"),
        &[],
    );
    wait_for(Duration::from_secs(10), || {
        fs::metadata(&cap).ok().filter(|m| m.len() > 0)
    });
    let dh = Dhclient::start(&lab, "dhclient", &["-N", "-P"]);
    let bound = dh.wait_event("BOUND6", 1, Duration::from_secs(30));
    let got = |k: &str| bound.get(k).cloned().unwrap_or_default();
    assert_eq!(got("new_ip6_address"), RESERVED_NA, "{bound:?}");
    // dhclient reports the IA_PD in an event of its own.
    let with_prefix = wait_for(Duration::from_secs(30), || {
        dh.events()
            .into_iter()
            .find(|(r, e)| r == "BOUND6" && e.contains_key("new_ip6_prefix"))
            .map(|e| e.1)
    })
    .unwrap_or_else(|| panic!("no BOUND6 with a prefix: {:?}", dh.events()));
    assert_eq!(
        with_prefix.get("new_ip6_prefix").map(String::as_str),
        Some(RESERVED_PD),
        "{with_prefix:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    dump.signal("TERM");
    dump.wait_timeout(Duration::from_secs(10));
    // dhclient names an option it does not know by its code.
    assert_eq!(got("new_dhcp6_unknown_65001"), "duet-raw", "{bound:?}");
    assert_eq!(got("new_dhcp6_name_servers").trim(), "2001:db8::53", "{bound:?}");
    assert_eq!(got("new_dhcp6_domain_search").trim(), "example.org.", "{bound:?}");
    assert_eq!(got("new_dhcp6_sntp_servers").trim(), "2001:db8::123", "{bound:?}");
    let hex = run_ok(
        &[
            "tshark",
            "-r",
            &cap.to_string_lossy(),
            "-Y",
            "dhcpv6.msgtype == 2 || dhcpv6.msgtype == 7",
            "-T",
            "fields",
            "-e",
            "udp.payload",
        ],
        Duration::from_secs(30),
    );
    // 65001 = 0xfde9, length 8, "duet-raw"
    assert!(
        hex.contains(&format!(
            "fde90008{}",
            "duet-raw".bytes().map(|b| format!("{b:02x}")).collect::<String>()
        )),
        "option 65001 not in the Advertise and Replies: {hex}"
    );
}

/// Issue 27: a real relay, ISC `dhcrelay -6`, in its own namespace between
/// the client's link (2001:db8:2::/64) and the server's. Without
/// Interface-Id the relay's link-address selects subnet 2001:db8:2::/64;
/// with `-I` its Interface-Id (dhcrelay's number for the interface) selects the subnet
/// configured with it (2001:db8:3::/64), although the link-address still says
/// 2001:db8:2::/64. The Replies reach dhclient through the relay.
#[test]
fn dhclient_through_dhcrelay_by_link_address_then_by_interface_id() {
    let mut lab = PairLab::new(&["brc", "brs"]);
    let srv = lab.add_node(
        "srv",
        &[("eth0", "brs", "02:00:00:00:27:01", "2001:db8:ff::1/64")],
    );
    let rly = lab.add_node(
        "rly",
        &[
            ("eth0", "brs", "02:00:00:00:27:02", "2001:db8:ff::2/64"),
            ("eth1", "brc", "02:00:00:00:27:03", "2001:db8:2::1/64"),
        ],
    );
    let cli = lab.add_node("cli", &[("eth0", "brc", CLI_MAC, "")]);
    // ISC dhcrelay -I sends, as the Interface-Id, its own number for the
    // lower interface (1 for the first `-l`), 4 bytes in host order.
    let id_hex: String = 1u32.to_ne_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let data = lab.path("data");
    let config = lab.path("duet.toml");
    fs::write(
        &config,
        format!(
            r#"[server]
name = "duet-relay-lab"
data-dir = "{data}"
listen = ["[2001:db8:ff::1]:547"]

[[subnet]]
prefix = "2001:db8:2::/64"
pools = ["2001:db8:2::1000-2001:db8:2::1fff"]

[[subnet]]
prefix = "2001:db8:3::/64"
pools = ["2001:db8:3::1000-2001:db8:3::1fff"]
interface-id = {{ hex = "{id_hex}" }}
"#,
            data = data.display()
        ),
    )
    .expect("config");
    let server = Server::start_in(&srv, &lab.dir, "", &config, &data, "info");
    let relay = |args: &[&str], log: &str| {
        let mut a = vec!["dhcrelay", "-6", "-d", "--no-pid"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-l", "eth1", "-u", "2001:db8:ff::1%eth0"]);
        Proc::spawn("dhcrelay", &in_ns(&rly, &a), &lab.path(log), &[])
    };
    let bound_address = |dh: &Dhclient| {
        dh.wait_event("BOUND6", 1, Duration::from_secs(30))
            .get("new_ip6_address")
            .cloned()
            .unwrap_or_default()
    };

    let mut r = relay(&[], "dhcrelay-1.log");
    let dh = Dhclient::start_in(&cli, lab.path("dhclient-1"), &["-N"]);
    let a = bound_address(&dh);
    assert!(
        a.starts_with("2001:db8:2::"),
        "by link-address: {a}\nrelay:\n{}",
        r.output()
    );
    drop(dh);
    r.kill();

    let cap = lab.path("relay.pcap");
    let mut dump = Proc::spawn(
        "dumpcap",
        &in_ns(
            &srv,
            &[
                "dumpcap",
                "-q",
                "-i",
                "eth0",
                "-f",
                "udp port 547",
                "-w",
                &cap.to_string_lossy(),
            ],
        ),
        &lab.path("dumpcap.log"),
        &[],
    );
    wait_for(Duration::from_secs(10), || {
        fs::metadata(&cap).ok().filter(|m| m.len() > 0)
    });
    let mut r = relay(&["-I"], "dhcrelay-2.log");
    // Another DUID: a fresh DUID-LLT (its own lease file), so the first
    // binding does not answer for it.
    let dh = Dhclient::start_in(&cli, lab.path("dhclient-2"), &["-N", "-D", "LLT"]);
    let b = bound_address(&dh);
    dump.signal("TERM");
    dump.wait_timeout(Duration::from_secs(10));
    let ids = run(
        &[
            "tshark",
            "-r",
            &cap.to_string_lossy(),
            "-T",
            "fields",
            "-e",
            "dhcpv6.interface_id",
        ],
        Duration::from_secs(30),
    );
    assert!(
        b.starts_with("2001:db8:3::"),
        "by Interface-Id {id_hex}: {b}\nInterface-Ids seen: {}\nrelay:\n{}",
        String::from_utf8_lossy(&ids.stdout),
        r.output()
    );
    drop(dh);
    r.kill();
    let leases = server.leases();
    for x in [&a, &b] {
        let l = find(&leases, x).unwrap_or_else(|| panic!("{x} not in ctl leases: {leases:?}"));
        assert_eq!(l.state, "active", "{l:?}");
    }
}
