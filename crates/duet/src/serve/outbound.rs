//! Where datagrams to clients and relays leave: the DHCPv6 sockets, through
//! a [`Pacer`] (see `pace`), counting what was sent and what failed.

use super::pace::Pacer;
use super::stats::Stats;
use super::udp;
use duet_core::node::OutReply;
use std::net::Ipv6Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;

/// How a reply leaves: what the daemon knew of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Index of the socket the request came in on.
    pub socket: usize,
    /// Arrival interface.
    pub ifindex: u32,
    /// Source address to use: the request's unicast destination, if any.
    pub src: Option<Ipv6Addr>,
    /// The request's source port: where a Relay-reply goes (547 for every
    /// standard relay, RFC 8415 §18.3.10; RFC 8357 relays and `duet demo`'s
    /// use another).
    pub source_port: u16,
}

/// The DHCPv6 sockets, paced (see the module documentation).
pub struct Outbound {
    sockets: Vec<Arc<UdpSocket>>,
    stats: Arc<Stats>,
    pacer: Pacer<OutReply<Route>>,
}

impl Outbound {
    /// Sends by `sockets`, paced by `pacer`.
    pub fn new(sockets: Vec<Arc<UdpSocket>>, stats: Arc<Stats>, pacer: Pacer<OutReply<Route>>) -> Outbound {
        Outbound {
            sockets,
            stats,
            pacer,
        }
    }

    /// Sends `r` now, or as soon as pacing lets it.
    pub fn send(&mut self, now: Instant, r: OutReply<Route>) {
        match self.pacer.offer(now, r) {
            Some(r) => self.send_now(&r),
            None => {
                self.stats.replies_paced.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends the waiting datagrams whose turn has come.
    pub fn release(&mut self, now: Instant) {
        for r in self.pacer.release(now) {
            self.send_now(&r);
        }
    }

    /// Whether datagrams wait for pacing.
    pub fn waiting(&self) -> bool {
        self.pacer.waiting() > 0
    }

    /// When [`Outbound::release`] has something to send, if anything waits.
    pub fn next_release(&self) -> Option<Instant> {
        self.pacer.next_release()
    }

    /// Sends everything waiting at once (at shutdown).
    pub fn flush_all(&mut self) {
        for r in self.pacer.drain_all() {
            self.send_now(&r);
        }
    }

    fn send_now(&self, r: &OutReply<Route>) {
        let Some(sock) = self.sockets.get(r.route.socket) else {
            return;
        };
        let port = if r.port == duet_core::dhcp::SERVER_PORT {
            r.route.source_port
        } else {
            r.port
        };
        match udp::send(sock, &r.bytes, r.to, port, r.route.ifindex, r.route.src) {
            Ok(()) => {
                self.stats.replies_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(to = %r.to, error = %e, "send failed");
            }
        }
    }
}
