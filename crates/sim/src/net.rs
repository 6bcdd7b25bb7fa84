//! The partner link: one TCP connection at a time between the two servers.
//!
//! Inside a connection bytes arrive in order, exactly once, after a delay
//! (TCP): no loss, no reordering. What can happen is what TCP allows: the
//! link is cut (partition: segments wait, and arrive late if the
//! connection survives), a side closes (FIN after its last bytes), the
//! connection is reset (RST: what is in flight is lost), a machine
//! vanishes (nothing at all: the partner finds out from its keepalive, or
//! from a reset when the machine is back). Frames may be split across
//! segments, so the receiver's frame decoder sees a byte stream.

use crate::trace::NodeId;
use duet_wire::FrameDecoder;
use std::collections::VecDeque;

/// What travels towards one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// Stream bytes.
    Data(Vec<u8>),
    /// The sender closed (after its last bytes).
    Fin,
    /// The connection was reset.
    Rst,
}

/// One TCP connection.
#[derive(Debug)]
pub struct Conn {
    /// Connection number (stale events carry an old one).
    pub id: u64,
    /// Whether each side still has it open.
    pub open: [bool; 2],
    /// Segments on their way to each side, with their arrival time (ms),
    /// in order.
    pub inflight: [VecDeque<(u64, Seg)>; 2],
    /// Each side's frame decoder.
    pub decoders: [FrameDecoder; 2],
}

impl Conn {
    /// A fresh connection, open on both sides.
    pub fn new(id: u64) -> Conn {
        Conn {
            id,
            open: [true, true],
            inflight: [VecDeque::new(), VecDeque::new()],
            decoders: [FrameDecoder::new(), FrameDecoder::new()],
        }
    }

    /// Arrival time for a segment sent now towards `to`, given a delay:
    /// never before the segments already on their way (in order).
    pub fn arrival(&self, to: NodeId, now_ms: u64, delay_ms: u64) -> u64 {
        let earliest = now_ms + delay_ms;
        self.inflight[to]
            .back()
            .map_or(earliest, |(t, _)| earliest.max(*t))
    }

    /// Nothing in flight either way.
    pub fn idle(&self) -> bool {
        self.inflight.iter().all(VecDeque::is_empty)
    }
}

/// The link between the partners.
#[derive(Debug, Default)]
pub struct Link {
    /// The current connection (possibly half-open).
    pub conn: Option<Conn>,
    /// Cut: nothing crosses.
    pub partitioned: bool,
    /// Number of the next connection.
    pub next_id: u64,
    /// A connection attempt by the primary is scheduled.
    pub connect_pending: bool,
    /// Invalidates scheduled heals.
    pub heal_gen: u64,
}

impl Link {
    /// Whether `side` has the connection open.
    pub fn is_open(&self, side: NodeId) -> bool {
        self.conn.as_ref().is_some_and(|c| c.open[side])
    }

    /// Drops the connection once neither side holds it.
    pub fn tidy(&mut self) {
        if self.conn.as_ref().is_some_and(|c| !c.open[0] && !c.open[1]) {
            self.conn = None;
        }
    }
}
