//! The DHCPv6 UDP sockets: port 547, joined to ff02::1:2 on each configured
//! interface, with the arrival interface and destination address of every
//! datagram taken from IPV6_PKTINFO (RFC 3542), and replies sent out of the
//! interface the request came in on.

use nix::libc;
use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn6,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// One received datagram's addressing.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Payload length.
    pub len: usize,
    /// Sender.
    pub source: SocketAddrV6,
    /// IP destination (from IPV6_PKTINFO).
    pub dst: Option<Ipv6Addr>,
    /// Arrival interface index (from IPV6_PKTINFO; 0 if unknown).
    pub ifindex: u32,
}

/// Bytes of receive buffer per datagram of `server.queue-size`: a DHCPv6
/// datagram of a few hundred bytes takes about this much kernel memory.
pub const QUEUE_BYTES_PER_DATAGRAM: usize = 1024;

/// Opens a UDP socket on `addr` with IPV6_RECVPKTINFO, SO_REUSEADDR, and
/// (when `join` lists interfaces) membership of ff02::1:2 on each. Its
/// receive buffer is the server's bounded receive queue: room for `queue`
/// datagrams; what overflows it the kernel drops and counts (the socket's
/// drops, `counters.socket-drops`).
pub fn bind(addr: SocketAddrV6, join: &[u32], queue: usize) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_only_v6(true)?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    // Room for bursts (a stalled fdatasync at 10k+/s fills the default
    // quickly). SO_RCVBUFFORCE (root) may go beyond net.core.rmem_max.
    let want = queue.saturating_mul(QUEUE_BYTES_PER_DATAGRAM);
    if setsockopt(&sock, sockopt::RcvBufForce, &want).is_err() {
        let _ = sock.set_recv_buffer_size(want);
    }
    // The kernel reports twice what it grants (bookkeeping included).
    if let Ok(got) = sock.recv_buffer_size() {
        if got / 2 < want {
            tracing::warn!(%addr, asked = want, granted = got / 2, "the receive queue is smaller than server.queue-size asks (raise net.core.rmem_max, or run with CAP_NET_ADMIN)");
        }
    }
    sock.bind(&SocketAddr::V6(addr).into())?;
    for &ifindex in join {
        sock.join_multicast_v6(&ALL_DHCP_RELAY_AGENTS_AND_SERVERS, ifindex)?;
    }
    setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
    UdpSocket::from_std(sock.into())
}

/// Waits until one of `sockets` has a datagram; its index.
pub async fn readable(sockets: &[std::sync::Arc<UdpSocket>]) -> usize {
    std::future::poll_fn(|cx| {
        for (i, s) in sockets.iter().enumerate() {
            if s.poll_recv_ready(cx).is_ready() {
                return std::task::Poll::Ready(i);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// A control-message buffer for [`try_recv`], made once and reused (one
/// allocation per server, not one per datagram).
pub fn cmsg_buffer() -> Vec<u8> {
    nix::cmsg_space!(libc::in6_pktinfo)
}

/// Receives one datagram into `buf` if there is one (WouldBlock otherwise,
/// which also clears the socket's readiness); `cmsg` (from [`cmsg_buffer`])
/// receives its IPV6_PKTINFO.
pub fn try_recv(sock: &UdpSocket, buf: &mut [u8], cmsg: &mut [u8]) -> io::Result<Received> {
    sock.try_io(Interest::READABLE, || recv_now(sock.as_raw_fd(), buf, cmsg))
}

fn recv_now(fd: i32, buf: &mut [u8], cmsg: &mut [u8]) -> io::Result<Received> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg =
        recvmsg::<SockaddrIn6>(fd, &mut iov, Some(cmsg), MsgFlags::MSG_DONTWAIT).map_err(io::Error::from)?;
    let source = msg
        .address
        .map(|a| SocketAddrV6::new(a.ip(), a.port(), a.flowinfo(), a.scope_id()))
        .ok_or_else(|| io::Error::other("datagram without an IPv6 source"))?;
    let mut dst = None;
    let mut ifindex = 0;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::Ipv6PacketInfo(pi) = c {
            dst = Some(Ipv6Addr::from(pi.ipi6_addr.s6_addr));
            ifindex = pi.ipi6_ifindex;
        }
    }
    Ok(Received {
        len: msg.bytes,
        source,
        dst,
        ifindex,
    })
}

/// Sends `data` to `to` (scoped to `ifindex` when `to` is link-local), from
/// source address `src` when given (the request's unicast destination).
/// Usable from any thread: it never waits for readiness.
pub fn send(
    sock: &UdpSocket,
    data: &[u8],
    to: Ipv6Addr,
    port: u16,
    ifindex: u32,
    src: Option<Ipv6Addr>,
) -> io::Result<()> {
    let link_local = (u128::from(to) >> 118) == 0x3fa;
    let scope = if link_local { ifindex } else { 0 };
    let dest = SockaddrIn6::from(SocketAddrV6::new(to, port, 0, scope));
    let pktinfo = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: src.unwrap_or(Ipv6Addr::UNSPECIFIED).octets(),
        },
        ipi6_ifindex: if link_local { ifindex } else { 0 },
    };
    let iov = [IoSlice::new(data)];
    let with_info = [ControlMessage::Ipv6PacketInfo(&pktinfo)];
    let cmsgs: &[ControlMessage<'_>] = if src.is_some() || link_local {
        &with_info
    } else {
        &[]
    };
    sendmsg(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_DONTWAIT, Some(&dest))
        .map(|_| ())
        .map_err(io::Error::from)
}

/// Index of a network interface.
pub fn ifindex(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| io::Error::other(format!("interface {name}: {e}")))
}

/// Datagrams the kernel dropped at these sockets since they were opened
/// (receive buffer full, or discarded by a socket filter): the "drops"
/// column of `/proc/self/net/udp6` for their inodes. 0 when unreadable.
pub fn kernel_drops<S: std::os::fd::AsFd>(sockets: &[S]) -> u64 {
    let inodes: Vec<u64> = sockets
        .iter()
        .filter_map(|s| nix::sys::stat::fstat(s.as_fd()).ok())
        .map(|st| st.st_ino)
        .collect();
    let Ok(table) = std::fs::read_to_string("/proc/self/net/udp6") else {
        return 0;
    };
    drops_of(&table, &inodes)
}

/// Sums the "drops" column (the last) of the `/proc/net/udp6` lines whose
/// inode (the 10th column) is one of `inodes`.
fn drops_of(table: &str, inodes: &[u64]) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = cols.get(9)?.parse().ok()?;
            let drops: u64 = cols.last()?.parse().ok()?;
            inodes.contains(&inode).then_some(drops)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_summed_for_our_inodes_only() {
        let table = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  120: 00000000000000000000000000000000:0223 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 51234 2 0000000000000000 17
  121: 00000000000000000000000001000000:0224 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 51235 2 0000000000000000 5
  122: 00000000000000000000000001000000:0225 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 51236 2 0000000000000000 100
";
        assert_eq!(drops_of(table, &[51234, 51235]), 22);
        assert_eq!(drops_of(table, &[]), 0);
        assert_eq!(drops_of("garbage\nnot a table", &[1]), 0);
    }

    #[test]
    fn a_filtered_datagram_is_a_kernel_drop() {
        let rx = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let before = kernel_drops(&[&rx]);
        // A filter that discards everything.
        socket2::SockRef::from(&rx)
            .attach_filter(&[socket2::SockFilter::new(0x06, 0, 0, 0)])
            .unwrap();
        let tx = std::net::UdpSocket::bind("[::1]:0").unwrap();
        for _ in 0..3 {
            tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        }
        assert_eq!(kernel_drops(&[&rx]) - before, 3);
    }
}
