//! The event trace: a hash over every event (to prove two runs of a seed
//! are identical), the last events (printed on failure) and, on request,
//! every event as it happens.

use duet_core::lease::LeaseKey;
use duet_wire::{FailoverMessageType, MessageType, ServerState};
use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Which server: 0 = primary, 1 = secondary.
pub type NodeId = usize;

/// Node names for the trace.
pub fn node_name(n: NodeId) -> &'static str {
    if n == 0 {
        "P"
    } else {
        "S"
    }
}

/// What happened to a client datagram or a partner segment in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetFate {
    /// Lost.
    Lost,
    /// Delivered twice.
    Duplicated,
}

/// A fault the world injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The node crashes now.
    Crash {
        /// Which.
        node: NodeId,
        /// The whole machine (no FIN to the partner) rather than the process.
        machine: bool,
    },
    /// The node will crash at its next durable point (see [`CrashPoint`]).
    Arm {
        /// Which.
        node: NodeId,
        /// Where.
        point: CrashPoint,
    },
    /// The node restarts from its store (`wiped`: from an empty one).
    Restart {
        /// Which.
        node: NodeId,
        /// Its store was lost.
        wiped: bool,
    },
    /// The server-to-server link is cut.
    Partition,
    /// The link works again.
    Heal,
    /// The partner connection is reset (what is in flight is lost).
    Reset,
    /// The operator declares the partner down at this node.
    OperatorPartnerDown {
        /// Where the command is given.
        node: NodeId,
        /// Whether the endpoint accepted it.
        accepted: bool,
    },
    /// The operator stops the node's process (or its machine): not a
    /// crash, for the statistics.
    Stop {
        /// Which.
        node: NodeId,
        /// The whole machine.
        machine: bool,
    },
    /// The node's configuration is edited on that server only (`edited`),
    /// or put back: it takes effect at its next restart.
    Reconfigure {
        /// Which.
        node: NodeId,
        /// Edited (true) or put back.
        edited: bool,
    },
    /// The node's clock steps to this offset from its drifting one, ms
    /// (0: back).
    ClockStep {
        /// Which.
        node: NodeId,
        /// The step.
        step_ms: i64,
    },
    /// The node's client link goes down (`up` false) or comes back.
    ClientLink {
        /// Which.
        node: NodeId,
        /// Up again.
        up: bool,
    },
    /// The operator starts a planned handover of the node's clients.
    Handover {
        /// Which.
        node: NodeId,
        /// Whether the node accepted the command.
        accepted: bool,
    },
    /// The operator resumes a node that handed its clients over.
    Resume {
        /// Which.
        node: NodeId,
        /// Whether the node accepted the command.
        accepted: bool,
    },
    /// The operator commissions a node that never reached its partner.
    Commission {
        /// Which.
        node: NodeId,
        /// Whether the node accepted the command.
        accepted: bool,
    },
    /// The operator tells the node its partner is lost with its store.
    PartnerLost {
        /// Where the command is given.
        node: NodeId,
        /// Whether the node accepted the command.
        accepted: bool,
    },
    /// Faults stop; every crashed node restarts, the link heals, client
    /// traffic becomes reliable.
    Calm,
    /// Clients stop talking, so that the tables can settle.
    Quiet,
}

/// Where an armed crash hits, relative to the store commit of the next
/// piece of work the node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// After processing, before the commit: the in-memory changes are lost,
    /// nothing is sent.
    BeforeCommit,
    /// After the commit, before anything is sent.
    AfterCommit,
}

/// One traced event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ev {
    /// A client sent a message (multicast: to both servers).
    ClientSend {
        /// Client id.
        client: u32,
        /// Type.
        ty: MessageType,
        /// Transaction id.
        xid: u32,
    },
    /// A server processed a client message.
    Serve {
        /// Server.
        node: NodeId,
        /// Client.
        client: u32,
        /// Type.
        ty: MessageType,
        /// Reply type, or the drop reason.
        outcome: &'static str,
    },
    /// A client datagram (or reply) met a network fault.
    Udp {
        /// Client.
        client: u32,
        /// Towards the server (true) or the client.
        to_server: bool,
        /// What happened.
        fate: NetFate,
    },
    /// A client now holds a lease, per a Reply.
    Hold {
        /// Client.
        client: u32,
        /// Lease.
        key: LeaseKey,
        /// Valid lifetime, seconds.
        valid: u32,
        /// From which server.
        node: NodeId,
    },
    /// A client no longer holds a lease.
    Unhold {
        /// Client.
        client: u32,
        /// Lease.
        key: LeaseKey,
        /// Why.
        why: &'static str,
    },
    /// A client powered on or off.
    Power {
        /// Client.
        client: u32,
        /// On.
        on: bool,
    },
    /// A store commit.
    Commit {
        /// Server.
        node: NodeId,
        /// Lease records in it.
        leases: u32,
    },
    /// A failover message left a server.
    PartnerSend {
        /// Sender.
        node: NodeId,
        /// Type.
        ty: FailoverMessageType,
        /// Transaction id.
        xid: u32,
    },
    /// A failover message reached a server.
    PartnerRecv {
        /// Receiver.
        node: NodeId,
        /// Type.
        ty: FailoverMessageType,
        /// Transaction id.
        xid: u32,
    },
    /// A TCP connection between the partners came up.
    ConnUp {
        /// Connection number.
        id: u64,
    },
    /// A server saw its side of the connection end.
    ConnDown {
        /// Server.
        node: NodeId,
        /// Connection number.
        id: u64,
        /// FIN, RST, local close…
        why: &'static str,
    },
    /// An endpoint changed state.
    State {
        /// Server.
        node: NodeId,
        /// From.
        from: ServerState,
        /// To.
        to: ServerState,
    },
    /// An endpoint notice (close reasons, rejected updates, auto-partner-down).
    Notice {
        /// Server.
        node: NodeId,
        /// Text.
        text: String,
    },
    /// A fault.
    Fault(Fault),
}

impl fmt::Display for Ev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ev::ClientSend { client, ty, xid } => write!(f, "c{client} sends {ty} xid {xid:06x}"),
            Ev::Serve {
                node,
                client,
                ty,
                outcome,
            } => write!(f, "{} handles {ty} from c{client}: {outcome}", node_name(*node)),
            Ev::Udp {
                client,
                to_server,
                fate,
            } => {
                let dir = if *to_server { "to servers" } else { "to client" };
                write!(f, "udp c{client} {dir}: {fate:?}")
            }
            Ev::Hold {
                client,
                key,
                valid,
                node,
            } => write!(
                f,
                "c{client} holds {key} for {valid} s (from {})",
                node_name(*node)
            ),
            Ev::Unhold { client, key, why } => write!(f, "c{client} drops {key}: {why}"),
            Ev::Power { client, on } => write!(f, "c{client} powers {}", if *on { "on" } else { "off" }),
            Ev::Commit { node, leases } => write!(f, "{} commits {leases} lease records", node_name(*node)),
            Ev::PartnerSend { node, ty, xid } => write!(f, "{} -> {ty} xid {xid:06x}", node_name(*node)),
            Ev::PartnerRecv { node, ty, xid } => write!(f, "{} <- {ty} xid {xid:06x}", node_name(*node)),
            Ev::ConnUp { id } => write!(f, "connection {id} up"),
            Ev::ConnDown { node, id, why } => write!(f, "{} connection {id} down ({why})", node_name(*node)),
            Ev::State { node, from, to } => write!(f, "{} state {from} -> {to}", node_name(*node)),
            Ev::Notice { node, text } => write!(f, "{} notice: {text}", node_name(*node)),
            Ev::Fault(x) => write!(f, "FAULT {x:?}"),
        }
    }
}

/// FNV-1a, 64 bit: a hasher with no random keys, so the trace hash is the
/// same in every process.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The trace of one run.
#[derive(Debug)]
pub struct Trace {
    hash: Fnv,
    tail: VecDeque<(u64, u64, Ev)>,
    cap: usize,
    print: bool,
    count: u64,
}

impl Trace {
    /// Keeps the last `cap` events; prints every event when `print`.
    pub fn new(cap: usize, print: bool) -> Trace {
        Trace {
            hash: Fnv::default(),
            tail: VecDeque::with_capacity(cap.min(4096)),
            cap,
            print,
            count: 0,
        }
    }

    /// Records an event at true time `t_ms` and step `step`.
    pub fn push(&mut self, step: u64, t_ms: u64, ev: Ev) {
        self.count += 1;
        t_ms.hash(&mut self.hash);
        ev.hash(&mut self.hash);
        if self.print {
            println!("{}", line(step, t_ms, &ev));
        }
        if self.cap == 0 {
            return;
        }
        if self.tail.len() == self.cap {
            self.tail.pop_front();
        }
        self.tail.push_back((step, t_ms, ev));
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// Number of events so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether nothing was traced.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The last events, formatted.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().map(|(s, t, e)| line(*s, *t, e)).collect()
    }
}

/// One trace line: step, time since the start (s.ms), event.
pub fn line(step: u64, t_ms: u64, ev: &Ev) -> String {
    let rel = t_ms.saturating_sub(crate::clock::START_MS);
    format!("[{step:>7} +{:>6}.{:03}] {ev}", rel / 1000, rel % 1000)
}
