//! A bare DHCPv6 responder: the floor under the standalone benchmark, not a
//! server. No allocation logic, no lease table, no runtime: one blocking
//! socket; the Advertise and the Reply are built from the request (the
//! address is the /64 given + 64 bits of a hash of the client's DUID); with
//! a data directory, each Reply waits for one 128-byte record written to a
//! preallocated file and fdatasync'd, as duet's journal does.
//!
//! `bench/standalone.sh` runs it as `SERVERS=bare` (and `bare-nosync`) so
//! that a run measures, on the same machine and load, what an exchange costs
//! before any server logic: the "bare responder" figures.
//!
//! Usage: `bare_responder IFACE PREFIX [DATA_DIR]`, e.g.
//! `bare_responder eth0 2001:db8:1:0:1:: /tmp/bare` (port 547, root).

use duet_wire::option::{IaAddr, IaNa};
use duet_wire::{ClientMessage, DhcpOption, Duid, Message, MessageType, OptionsExt};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::unix::fs::FileExt;

const RECORD: usize = 128;
const FILE_SIZE: usize = 1 << 20;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(iface), Some(prefix)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: bare_responder IFACE PREFIX [DATA_DIR]");
    };
    let prefix: Ipv6Addr = prefix.parse()?;
    let ifindex = nix::net::if_::if_nametoindex(iface.as_str())?;
    let sock = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)?;
    sock.set_only_v6(true)?;
    sock.set_reuse_address(true)?;
    sock.set_recv_buffer_size(4 << 20)?;
    sock.bind(&SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 547, 0, 0)).into())?;
    sock.join_multicast_v6(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2), ifindex)?;
    let sock: UdpSocket = sock.into();
    let journal = match args.get(3) {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(std::path::Path::new(dir).join("journal"))?;
            f.write_all(&vec![0u8; FILE_SIZE])?;
            f.sync_all()?;
            Some(f)
        }
        None => None,
    };
    let server = Duid::new(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1])?;
    let mut buf = vec![0u8; 65_536];
    let mut record = [0u8; RECORD];
    let mut n = 0usize;
    loop {
        let (len, from) = sock.recv_from(&mut buf)?;
        let Some(bytes) = buf.get(..len) else { continue };
        let Ok(Message::Client(m)) = Message::parse(bytes) else {
            continue;
        };
        let reply_type = match m.msg_type {
            MessageType::Solicit => MessageType::Advertise,
            MessageType::Request => MessageType::Reply,
            _ => continue,
        };
        let Some(client) = m.options.client_id() else {
            continue;
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        client.as_bytes().hash(&mut h);
        let address = Ipv6Addr::from((u128::from(prefix) & !u128::from(u64::MAX)) | u128::from(h.finish()));
        let mut reply = ClientMessage::new(reply_type, m.transaction_id);
        reply.options.push(DhcpOption::ServerId(server.clone()));
        reply.options.push(DhcpOption::ClientId(client.clone()));
        for o in &m.options {
            if let DhcpOption::IaNa(ia) = o {
                reply.options.push(DhcpOption::IaNa(IaNa {
                    iaid: ia.iaid,
                    t1: 1000,
                    t2: 2000,
                    options: vec![DhcpOption::IaAddr(IaAddr {
                        address,
                        preferred_lifetime: 3000,
                        valid_lifetime: 4000,
                        options: vec![],
                    })],
                }));
            }
        }
        let out = reply.to_vec()?;
        if let (MessageType::Reply, Some(f)) = (reply_type, journal.as_ref()) {
            let id = client.as_bytes();
            let k = id.len().min(RECORD - 16);
            record.fill(0);
            record[..16].copy_from_slice(&address.octets());
            record[16..16 + k].copy_from_slice(&id[..k]);
            f.write_all_at(&record, ((n * RECORD) % FILE_SIZE) as u64)?;
            f.sync_data()?;
            n += 1;
        }
        sock.send_to(&out, from)?;
    }
}
