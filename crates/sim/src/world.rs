//! The world: virtual time, an event queue, two servers, the partner link,
//! the clients' network, the fault schedule, and the driver that runs the
//! real core the way the daemon does (persist before transmit, commit
//! before reply).

use crate::client::{self, Act, Client};
use crate::clock::START_MS;
use crate::config::{Config, LinkMode, Scenario};
use crate::net::{Conn, Link, Seg};
use crate::node::{Armed, Node, RELATIONSHIP};
use crate::trace::{CrashPoint, Ev, Fault, NetFate, NodeId, Trace};
use crate::{Failure, Invariant, RunResult, Stats};
use duet_core::dhcp::Incoming;
use duet_core::failover::{is_handover, EndpointRecord, Event as EpEvent};
use duet_core::lease::{BindingKey, LeaseKey, LeaseKind, LeaseState};
use duet_core::node::{meta_endpoint, NodeEvent, Transmit};
use duet_core::store::{Batch, LeaseStore};
use duet_wire::{
    ClientMessage, Duid, FailoverMessage, FailoverMessageType, FrameDecoder, Message, MessageType,
    ServerState, StreamMessage, TransactionId,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::rc::Rc;

/// The primary.
pub const PRIMARY: NodeId = 0;
/// The secondary.
pub const SECONDARY: NodeId = 1;

/// Events per seed after which the run is declared a livelock.
const MAX_STEPS: u64 = 20_000_000;

/// A client datagram, with what the checker needs to know about it.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub(crate) bytes: Vec<u8>,
    pub(crate) client: u32,
    pub(crate) ty: MessageType,
    pub(crate) server: Option<Duid<'static>>,
    pub(crate) keys: Vec<LeaseKey>,
    /// Its Elapsed Time option, ms (RFC 8415 §21.9).
    pub(crate) elapsed_ms: Option<u64>,
}

#[derive(Debug)]
enum Event {
    ClientTimer {
        client: u32,
        gen: u64,
    },
    ToServer {
        node: NodeId,
        dgram: Rc<Datagram>,
    },
    ToClient {
        client: u32,
        node: NodeId,
        bytes: Rc<Vec<u8>>,
        sent: u64,
        uncapped: bool,
    },
    Link {
        conn: u64,
        to: NodeId,
    },
    Connect,
    Wake {
        node: NodeId,
        gen: u64,
    },
    FaultTick,
    Restart {
        node: NodeId,
        wipe: bool,
    },
    ArmTimeout {
        node: NodeId,
        gen: u64,
    },
    Heal {
        gen: u64,
    },
    Calm,
    Quiet,
    Check,
    /// The operator commissions the server started alone.
    Commission {
        node: NodeId,
    },
    /// The operator tells `node` its partner is lost.
    PartnerLost {
        node: NodeId,
    },
    /// The refusal period `gen` is fixed (configuration put back, clock
    /// stepped back).
    RefusalEnd {
        gen: u64,
    },
    /// A client link comes back.
    ClientLinkHeal {
        node: NodeId,
        gen: u64,
    },
    /// The operator stops the server that handed over (same process life).
    HandoverStop {
        node: NodeId,
        boot: u64,
    },
    /// The operator resumes it instead.
    HandoverResume {
        node: NodeId,
        boot: u64,
    },
    /// A recovering server crashes for long, wiped (same process life).
    RecoverCrash {
        node: NodeId,
        boot: u64,
    },
}

#[derive(Debug)]
struct Sched {
    at: u64,
    seq: u64,
    ev: Event,
}

impl PartialEq for Sched {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Sched {}
impl PartialOrd for Sched {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sched {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A lease as a client holds it, for the checker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Holding {
    pub(crate) client: u32,
    /// The IA it holds it in.
    pub(crate) iaid: u32,
    pub(crate) valid_until_ms: u64,
    /// The server whose Reply granted or last extended it.
    pub(crate) node: NodeId,
    /// When the client first got this lease (kept through extensions).
    pub(crate) since_ms: u64,
    /// Granted in PARTNER-DOWN: no MCLT cap, nothing bounds it but the
    /// granting server's store.
    pub(crate) uncapped: bool,
    /// A wipe destroyed the only durable copy of this binding (no other
    /// store covered it then): invariant 3 no longer applies.
    pub(crate) lost: bool,
    /// Lost, and beyond what the protocol can still protect (why):
    /// invariant 1 no longer applies either.
    pub(crate) orphan: Option<Orphan>,
    /// Already counted as given to another client while held.
    pub(crate) conflicted: bool,
}

/// Why a lost binding is beyond the protocol's protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Orphan {
    /// Granted in PARTNER-DOWN (no MCLT cap) and only that store knew it.
    Uncapped = 0,
    /// Both stores lost it (or the partner's lost its record of ever
    /// communicating, so the pair looks new, RFC 8156 §8.6.2).
    BothLost = 1,
}

/// Phases of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Chaos,
    Calm,
    Quiet,
    Done,
}

/// The server crashed while doing this piece of work.
#[derive(Debug)]
pub(crate) struct Crashed;

/// What a refusal period is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalCause {
    /// One server restarted with an edited configuration.
    Configuration,
    /// One server's clock stepped beyond 5 s.
    ClockStep,
}

/// A period during which the partners refuse each other while both run
/// and the link works (`refuse`, `skew-step`): no crash, partition,
/// operator command or handover is injected meanwhile (see the crate
/// documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefusalPeriod {
    pub(crate) cause: RefusalCause,
    pub(crate) node: NodeId,
    gen: u64,
    /// The cause was removed; the period ends when the partners
    /// communicate again.
    fixed: bool,
    /// A server was seen holding automatic partner-down off.
    held: bool,
}

/// What the operator does after starting a handover.
#[derive(Debug, Clone, Copy)]
struct HandoverPlan {
    /// The process life it applies to.
    boot: u64,
    /// Act when the handover ends (done or failed), else at a random
    /// moment already scheduled.
    on_done: bool,
    /// Resume the server instead of stopping it (when done).
    resume: bool,
}

/// A server started alone, to be commissioned (`commission`).
#[derive(Debug, Clone, Copy)]
struct Alone {
    node: NodeId,
    commissioned: bool,
    /// Client messages it received after the commissioning.
    tried: u64,
    /// Of which answered.
    answered: u64,
}

/// One simulated world.
pub struct World {
    pub(crate) cfg: Config,
    pub(crate) scen: Scenario,
    seed: u64,
    rng: ChaCha8Rng,
    pub(crate) now: u64,
    step: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Sched>>,
    pub(crate) nodes: [Node; 2],
    pub(crate) link: Link,
    pub(crate) clients: Vec<Client>,
    client_gen: Vec<u64>,
    pub(crate) holders: BTreeMap<LeaseKey, Vec<Holding>>,
    pub(crate) trace: Trace,
    pub(crate) phase: Phase,
    pub(crate) stats: Stats,
    pub(crate) failure: Option<Failure>,
    quiet_at: u64,
    arm_gen: u64,
    pub(crate) refusal: Option<RefusalPeriod>,
    refusal_gen: u64,
    /// The direction of this seed's clock steps (`skew-step`), fixed by
    /// its first step: +1 forwards, -1 backwards.
    step_sign: Option<i64>,
    pub(crate) client_link_down: [bool; 2],
    client_link_gen: [u64; 2],
    handover_plan: [Option<HandoverPlan>; 2],
    alone: Option<Alone>,
}

impl World {
    /// A world for `seed`.
    pub fn new(seed: u64, cfg: &Config) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut scen = Scenario::draw(cfg, &mut rng);
        scen.draw_reservations(seed);
        let nodes = [
            Node::new(PRIMARY, scen.clocks[0]),
            Node::new(SECONDARY, scen.clocks[1]),
        ];
        let mut clients = Vec::new();
        for id in 0..scen.clients {
            // How many addresses and prefixes, each its own IA, all in
            // the same messages (most ask for one of each).
            let (na, pd) = match rng.random_range(0..12) {
                0 | 1 => (1, 0),
                2 => (0, 1),
                3 => (2, 0),
                4 => (0, 2),
                5 => (2, 1),
                6 => (1, 2),
                7 => (3, 1),
                _ => (1, 1),
            };
            let on = START_MS + rng.random_range(0..600_000);
            clients.push(Client::new(id, na, pd, on));
        }
        let n = clients.len();
        let mut stats = Stats {
            seeds: 1,
            ..Stats::default()
        };
        match scen.mode {
            LinkMode::Partitions => stats.partition_mode += 1,
            LinkMode::CrashOnly => stats.crash_only_mode += 1,
        }
        if scen.auto_pd.is_some() {
            stats.auto_pd_configured += 1;
        }
        if scen.refusals {
            stats.refusal_schedules += 1;
        }
        if scen.commission.is_some() {
            stats.commission_seeds += 1;
        }
        if !scen.reservations.is_empty() {
            stats.reservation_seeds += 1;
        }
        World {
            trace: Trace::new(cfg.tail, cfg.trace),
            cfg: cfg.clone(),
            scen,
            seed,
            rng,
            now: START_MS,
            step: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            link: Link::default(),
            clients,
            client_gen: vec![0; n],
            holders: BTreeMap::new(),
            phase: Phase::Chaos,
            stats,
            failure: None,
            quiet_at: 0,
            arm_gen: 0,
            refusal: None,
            refusal_gen: 0,
            step_sign: None,
            client_link_down: [false; 2],
            client_link_gen: [0; 2],
            handover_plan: [None; 2],
            alone: None,
        }
    }

    /// The scenario this seed drew.
    pub fn scenario(&self) -> &Scenario {
        &self.scen
    }

    fn at(&mut self, at: u64, ev: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Sched {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        }));
    }

    pub(crate) fn ev(&mut self, ev: Ev) {
        self.trace.push(self.step, self.now, ev);
    }

    /// Records an invariant violation (the first one ends the run).
    pub(crate) fn fail(&mut self, invariant: Invariant, message: String) {
        if self.failure.is_some() {
            return;
        }
        self.failure = Some(Failure {
            seed: self.seed,
            step: self.step,
            t_ms: self.now - START_MS,
            invariant,
            message,
            scenario: self.scen.to_string(),
            tail: vec![],
        });
    }

    /// Runs the seed to the end.
    pub fn run(mut self) -> RunResult {
        let chaos_end = START_MS + self.cfg.chaos_secs * 1000;
        // A commissioning seed starts one server alone; the operator
        // commissions it after its STARTUP, and its partner first starts
        // (empty) later. Faults wait for the partner.
        let mut faults_from = START_MS;
        if let Some((node, secs)) = self.scen.commission {
            self.alone = Some(Alone {
                node,
                commissioned: false,
                tried: 0,
                answered: 0,
            });
            self.restart(node, false);
            let startup = (self.scen.keepalive + 5 + 2) * 1000;
            self.at(START_MS + startup, Event::Commission { node });
            self.nodes[1 - node].restart_pending = true;
            faults_from = START_MS + secs * 1000;
            self.at(
                faults_from,
                Event::Restart {
                    node: 1 - node,
                    wipe: false,
                },
            );
        } else {
            for i in [PRIMARY, SECONDARY] {
                self.restart(i, false);
            }
        }
        for c in 0..self.clients.len() {
            self.schedule_client(c);
        }
        let gap = self.scen.fault_gap * 1000;
        let first = self.rng.random_range(0..gap.max(1));
        self.at(faults_from + first, Event::FaultTick);
        self.at(chaos_end, Event::Calm);
        while let Some(Reverse(s)) = self.queue.pop() {
            self.now = s.at;
            self.step += 1;
            if self.step > MAX_STEPS {
                self.fail(Invariant::Livelock, format!("more than {MAX_STEPS} events"));
                break;
            }
            self.handle(s.ev);
            if self.failure.is_some() || self.phase == Phase::Done {
                break;
            }
        }
        if self.failure.is_none() && self.phase != Phase::Done {
            self.fail(Invariant::Livelock, "the event queue ran dry".into());
        }
        self.stats.steps += self.step;
        self.stats.virtual_ms += self.now - START_MS;
        let tail = self.trace.tail();
        if let Some(f) = &mut self.failure {
            f.tail = tail;
        }
        RunResult {
            seed: self.seed,
            trace_hash: self.trace.hash(),
            events: self.trace.len(),
            stats: self.stats,
            failure: self.failure,
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::ClientTimer { client, gen } => {
                let c = client as usize;
                if self.client_gen[c] == gen {
                    let acts = self.clients[c].on_timer(self.now, &mut self.rng);
                    self.apply_acts(c, acts, None);
                    self.schedule_client(c);
                }
            }
            Event::ToServer { node, dgram } => self.server_receives(node, &dgram),
            Event::ToClient {
                client,
                node,
                bytes,
                sent,
                uncapped,
            } => {
                if self.client_link_down[node] {
                    self.stats.client_link_lost += 1;
                } else {
                    self.client_receives(client as usize, node, &bytes, (sent, uncapped))
                }
            }
            Event::Link { conn, to } => self.link_event(conn, to),
            Event::Connect => self.connect(),
            Event::Wake { node, gen } => {
                if self.nodes[node].wake_gen == gen {
                    let _ = self.wake(node);
                }
            }
            Event::FaultTick => self.fault_tick(),
            Event::Restart { node, wipe } => self.restart(node, wipe),
            Event::ArmTimeout { node, gen } => {
                if let Some(a) = self.nodes[node].armed.filter(|a| a.gen == gen) {
                    if self.pd_guard() {
                        self.at(self.now + 1000, Event::ArmTimeout { node, gen });
                    } else {
                        self.crash(node, a.machine, a.downtime, a.wipe);
                    }
                }
            }
            Event::Heal { gen } => {
                if self.link.heal_gen == gen {
                    self.heal();
                }
            }
            Event::Calm => self.calm(),
            Event::Quiet => {
                self.ev(Ev::Fault(Fault::Quiet));
                self.phase = Phase::Quiet;
                for c in &mut self.clients {
                    c.quiet = true;
                }
                self.quiet_at = self.now;
                self.at(self.now + 1000, Event::Check);
            }
            Event::Check => self.final_check(),
            Event::Commission { node } => self.commission(node),
            Event::PartnerLost { node } => self.partner_lost(node),
            Event::RefusalEnd { gen } => self.end_refusal(gen),
            Event::ClientLinkHeal { node, gen } => {
                if self.client_link_gen[node] == gen && self.client_link_down[node] {
                    self.client_link_down[node] = false;
                    self.ev(Ev::Fault(Fault::ClientLink { node, up: true }));
                }
            }
            Event::HandoverStop { node, boot } => self.handover_stop(node, boot),
            Event::HandoverResume { node, boot } => self.handover_resume(node, boot),
            Event::RecoverCrash { node, boot } => self.recover_crash(node, boot),
        }
    }

    // ---- clients ---------------------------------------------------------

    fn schedule_client(&mut self, c: usize) {
        self.client_gen[c] += 1;
        if let Some(t) = self.clients[c].next_timer() {
            let gen = self.client_gen[c];
            self.at(
                t.max(self.now + 1),
                Event::ClientTimer {
                    client: c as u32,
                    gen,
                },
            );
        }
    }

    /// `reply`: when the Reply these acts answer was sent, and whether its
    /// server was in PARTNER-DOWN.
    fn apply_acts(&mut self, c: usize, acts: Vec<Act>, reply: Option<(u64, bool)>) {
        let id = c as u32;
        for a in acts {
            match a {
                Act::Send(m) => self.client_send(c, m),
                Act::Hold {
                    key,
                    iaid,
                    valid_until_ms,
                    valid,
                    node,
                    extended,
                } => {
                    self.ev(Ev::Hold {
                        client: id,
                        key,
                        valid,
                        node,
                    });
                    if extended {
                        self.stats.extended += 1;
                    } else {
                        self.stats.granted += 1;
                        if self.alone.is_some_and(|a| a.node == node && a.commissioned) {
                            self.stats.commission_grants += 1;
                        }
                    }
                    // A Reply from a server that lost its store since it
                    // sent it: only the partner can still know the binding.
                    let (sent, uncapped) = reply.unwrap_or((self.now, false));
                    let since_ms = self
                        .holders
                        .get(&key)
                        .and_then(|v| v.iter().find(|h| h.client == id && h.iaid == iaid))
                        .map_or(sent, |h| h.since_ms);
                    let wiped = self.nodes[node].wiped_at.is_some_and(|w| w >= sent);
                    let binding = binding_of(&self.clients[c], key.kind, iaid);
                    let lost = wiped && !self.covered(1 - node, &key, &binding, valid_until_ms);
                    let orphan = if lost {
                        self.unprotected(1 - node, uncapped, since_ms)
                    } else {
                        None
                    };
                    let node = if wiped { 1 - node } else { node };
                    self.check_hold(id, iaid, key, valid_until_ms, node, lost, orphan);
                    let v = self.holders.entry(key).or_default();
                    v.retain(|h| !(h.client == id && h.iaid == iaid));
                    v.push(Holding {
                        client: id,
                        iaid,
                        valid_until_ms,
                        node,
                        since_ms,
                        uncapped,
                        lost,
                        orphan,
                        conflicted: false,
                    });
                }
                Act::Unhold { key, why } => {
                    self.ev(Ev::Unhold { client: id, key, why });
                    if let Some(v) = self.holders.get_mut(&key) {
                        v.retain(|h| h.client != id);
                        if v.is_empty() {
                            self.holders.remove(&key);
                        }
                    }
                }
                Act::Power(on) => self.ev(Ev::Power { client: id, on }),
            }
        }
    }

    fn client_send(&mut self, c: usize, m: ClientMessage<'static>) {
        self.stats.client_msgs += 1;
        self.ev(Ev::ClientSend {
            client: c as u32,
            ty: m.msg_type,
            xid: m.transaction_id.get(),
        });
        let Ok(bytes) = m.to_vec() else {
            return self.fail(Invariant::Codec, format!("client message does not encode: {m:?}"));
        };
        let dgram = Rc::new(Datagram {
            bytes,
            client: c as u32,
            ty: m.msg_type,
            server: m.options.iter().find_map(|o| match o {
                duet_wire::DhcpOption::ServerId(d) => Some(d.clone()),
                _ => None,
            }),
            keys: client::listed_keys(&m),
            elapsed_ms: m.options.iter().find_map(|o| match o {
                duet_wire::DhcpOption::ElapsedTime(cs) => Some(u64::from(*cs) * 10),
                _ => None,
            }),
        });
        // Multicast: each server gets its own copy, lost or not on its own.
        for node in [PRIMARY, SECONDARY] {
            if self.client_link_down[node] {
                self.stats.client_link_lost += 1;
                continue;
            }
            for at in self.udp_fates(c as u32, true) {
                self.at(
                    at,
                    Event::ToServer {
                        node,
                        dgram: dgram.clone(),
                    },
                );
            }
        }
    }

    /// Arrival times of one datagram: none (lost), one, or two (duplicated).
    fn udp_fates(&mut self, client: u32, to_server: bool) -> Vec<u64> {
        let calm = self.phase >= Phase::Calm;
        let (loss, dup, reorder) = if calm {
            (0.0, 0.0, 0.0)
        } else {
            (self.scen.loss, self.scen.dup, self.scen.reorder)
        };
        if self.rng.random_bool(loss) {
            self.stats.udp_lost += 1;
            self.ev(Ev::Udp {
                client,
                to_server,
                fate: NetFate::Lost,
            });
            return vec![];
        }
        let copies = if self.rng.random_bool(dup) {
            self.stats.udp_dup += 1;
            self.ev(Ev::Udp {
                client,
                to_server,
                fate: NetFate::Duplicated,
            });
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let (lo, hi) = if calm { (1, 2) } else { self.scen.delay_ms };
                let mut d = self.rng.random_range(lo..hi.max(lo + 1));
                if self.rng.random_bool(reorder) {
                    d += self.rng.random_range(500..3000);
                }
                self.now + d
            })
            .collect()
    }

    fn client_receives(&mut self, c: usize, node: NodeId, bytes: &[u8], reply: (u64, bool)) {
        let m = match Message::parse(bytes) {
            Ok(Message::Client(m)) => m,
            Ok(Message::Relay(_)) => return,
            Err(e) => return self.fail(Invariant::Codec, format!("server reply does not parse: {e}")),
        };
        let acts = self.clients[c].on_message(self.now, node, &m, &mut self.rng, 0.02);
        self.apply_acts(c, acts, Some(reply));
        self.schedule_client(c);
    }

    // ---- servers: DHCPv6 -------------------------------------------------

    fn server_receives(&mut self, node: NodeId, d: &Datagram) {
        if self.nodes[node].run.is_none() {
            return;
        }
        if self.client_link_down[node] {
            self.stats.client_link_lost += 1;
            return;
        }
        let rescue = self.rescue_due(node, d);
        let obliged = self.obligations(node, d, rescue);
        let now = self.nodes[node].now(self.now);
        let source = self.clients[d.client as usize].source;
        let Some(run) = self.nodes[node].run.as_mut() else {
            return;
        };
        let out = run
            .node
            .handle_datagram(
                now,
                Incoming {
                    payload: &d.bytes,
                    source,
                    interface: Some("eth0"),
                    multicast: true,
                },
                d.client,
            )
            .map(<[u8]>::to_vec);
        let outcome = match &out {
            Ok(_) => "reply",
            Err(why) => why.name(),
        };
        self.ev(Ev::Serve {
            node,
            client: d.client,
            ty: d.ty,
            outcome,
        });
        self.check_obligations(node, d, &obliged, &out);
        self.check_rescue(node, d, rescue, &out);
        self.stats.rescued += self.nodes[node].take_rescued();
        if let Some(a) = self.alone.as_mut().filter(|a| a.node == node && a.commissioned) {
            a.tried += 1;
            a.answered += u64::from(out.is_ok());
        }
        let _ = self.drive(node);
    }

    fn reply(&mut self, node: NodeId, client: u32, bytes: Rc<Vec<u8>>) {
        if self.client_link_down[node] {
            self.stats.client_link_lost += 1;
            return;
        }
        let uncapped = self.nodes[node].state() == Some(ServerState::PartnerDown);
        for at in self.udp_fates(client, false) {
            self.at(
                at,
                Event::ToClient {
                    client,
                    node,
                    bytes: bytes.clone(),
                    sent: self.now,
                    uncapped,
                },
            );
        }
    }

    // ---- servers: the driver ---------------------------------------------

    /// Crashes the node here if a crash is armed for this point.
    fn durable_point(&mut self, node: NodeId, point: CrashPoint) -> Result<(), Crashed> {
        match self.nodes[node].armed {
            Some(a) if a.point == point && !self.pd_guard() => {
                self.crash(node, a.machine, a.downtime, a.wipe);
                Err(Crashed)
            }
            _ if self.nodes[node].run.is_none() => Err(Crashed),
            _ => Ok(()),
        }
    }

    pub(crate) fn commit(&mut self, node: NodeId, batch: &Batch) {
        let n = &mut self.nodes[node];
        if n.store.commit(batch).is_err() {
            unreachable!("memory stores do not fail");
        }
        for l in &batch.leases {
            if l.key.kind == LeaseKind::Pd {
                if l.state == LeaseState::Active {
                    n.active_pd.insert(l.key);
                } else {
                    n.active_pd.remove(&l.key);
                }
            }
        }
        // The last record of the batch is the one the store keeps.
        if let Some((_, b)) = batch
            .meta
            .iter()
            .rfind(|(k, _)| *k == meta_endpoint(RELATIONSHIP))
        {
            if let Ok(r) = serde_json::from_slice::<EndpointRecord>(b) {
                n.recorded = Some(ServerState::from(r.state));
                n.recorded_communicated = r.communicated;
                n.recorded_download_pending = r.download_pending;
                // What a restart will resume: the PARTNER-DOWN entry the
                // world saw, if the record says PARTNER-DOWN. A commit made
                // in the same step as the entry comes before the node's
                // events are read (the daemon's order), or instead of them
                // (a crash armed after the commit): the entry is now.
                if n.recorded == Some(ServerState::PartnerDown) {
                    if !n.pd_open {
                        n.pd_entry = Some(n.clock.local(self.now).0);
                        n.pd_open = true;
                    }
                    n.pd_entry_durable = n.pd_entry;
                } else {
                    n.pd_entry_durable = None;
                }
            }
        }
        self.ev(Ev::Commit {
            node,
            leases: batch.leases.len() as u32,
        });
        if let Some(w) = &self.cfg.watch {
            for l in batch.leases.iter().filter(|l| l.key.to_string() == *w) {
                println!(
                    "          {} store: {} {} for {:?} valid_until {} exp {:?} cltt {} start {} pending {} acked {} pl {} et {}",
                    crate::trace::node_name(node),
                    l.key,
                    l.state,
                    l.binding.as_ref().map(|b| b.duid.last().copied().unwrap_or(0)),
                    l.valid_until.0 % 100_000,
                    l.state_expiration.map(|t| t.0 % 100_000),
                    l.cltt.0 % 100_000,
                    l.start_time_of_state.0 % 100_000,
                    l.failover.pending_update,
                    l.failover.acked_partner_lifetime.0 % 100_000,
                    l.failover.partner_lifetime.0 % 100_000,
                    l.failover.expiration_time.0 % 100_000,
                );
            }
        }
        self.check_commit(node, &batch.leases);
    }

    /// The daemon's order: every commit the node hands out is made durable
    /// (a crash may be armed just before or after it) and reported; then
    /// what may leave leaves; then its events are acted on and its next
    /// wake-up scheduled.
    fn drive(&mut self, node: NodeId) -> Result<(), Crashed> {
        loop {
            let now = self.nodes[node].now(self.now);
            let Some(c) = self.nodes[node]
                .run
                .as_mut()
                .and_then(|r| r.node.poll_commit(now))
            else {
                break;
            };
            self.durable_point(node, CrashPoint::BeforeCommit)?;
            self.commit(node, &c.batch);
            self.durable_point(node, CrashPoint::AfterCommit)?;
            let run = self.nodes[node].run.as_mut().ok_or(Crashed)?;
            if run.node.commit_done(now, c.seq, Ok(())).is_err() {
                unreachable!("memory stores do not fail");
            }
        }
        let now = self.nodes[node].now(self.now);
        while let Some(t) = self.nodes[node]
            .run
            .as_mut()
            .and_then(|r| r.node.poll_transmit(now))
        {
            match t {
                Transmit::Reply(r) => self.reply(node, r.route, Rc::new(r.bytes)),
                Transmit::Partner { conn, frame, .. } => {
                    if self.link.conn.as_ref().is_none_or(|c| c.id != conn) {
                        continue;
                    }
                    match frame_type(&frame) {
                        Some((ty, xid)) => {
                            self.ev(Ev::PartnerSend { node, ty, xid });
                            if ty == FailoverMessageType::State {
                                self.check_state_message(node, &frame);
                            }
                        }
                        None => {
                            self.fail(Invariant::Codec, "failover message does not decode".into());
                            continue;
                        }
                    }
                    self.link_send(node, frame);
                }
                Transmit::Close { conn, .. } => {
                    if self.link.conn.as_ref().is_some_and(|c| c.id == conn) {
                        self.close_side(node, "closed by the endpoint");
                    }
                }
            }
        }
        let mut auto = false;
        while let Some(e) = self.nodes[node].run.as_mut().and_then(|r| r.node.poll_event()) {
            let NodeEvent::Failover { event: e, .. } = e else {
                continue;
            };
            match e {
                EpEvent::StateChanged { from, to } => {
                    self.ev(Ev::State { node, from, to });
                    self.stats.states[usize::from(u8::from(to)).min(10)] += 1;
                    if to == ServerState::PartnerDown && from != ServerState::Startup {
                        let n = &mut self.nodes[node];
                        n.pd_entry = Some(n.clock.local(self.now).0);
                        n.pd_open = true;
                        self.check_partner_down(node, auto);
                    } else if to != ServerState::PartnerDown {
                        self.nodes[node].pd_open = false;
                    }
                    if to == ServerState::Recover {
                        self.maybe_crash_while_recovering(node);
                    }
                }
                EpEvent::Close(reason) => self.ev(Ev::Notice {
                    node,
                    text: format!("close: {reason}"),
                }),
                EpEvent::Notice(text) => {
                    if text.starts_with("auto-partner-down") {
                        self.stats.auto_pd += 1;
                        auto = true;
                    }
                    if text.starts_with("the partner handed its clients over") {
                        self.stats.handover_partner_pd += 1;
                    }
                    self.ev(Ev::Notice { node, text });
                }
                EpEvent::ConnectRefused(text) => self.ev(Ev::Notice {
                    node,
                    text: format!("CONNECT refused: {text}"),
                }),
                EpEvent::Refused(r) => {
                    self.stats.refusals_seen += 1;
                    self.ev(Ev::Notice {
                        node,
                        text: format!(
                            "refusal ({}, {}): {}",
                            r.kind.name(),
                            if r.by_us { "by us" } else { "by the partner" },
                            r.reason
                        ),
                    })
                }
                EpEvent::HandoverDone => {
                    self.stats.handovers_done += 1;
                    self.ev(Ev::Notice {
                        node,
                        text: "handover done".into(),
                    });
                    self.handover_ended(node, true);
                }
                EpEvent::HandoverFailed(why) => {
                    self.stats.handovers_failed += 1;
                    self.ev(Ev::Notice {
                        node,
                        text: format!("handover failed: {why}"),
                    });
                    self.handover_ended(node, false);
                }
                EpEvent::CommunicationsOk => self.refusal_maybe_over(),
                EpEvent::CommunicationsLost => {}
            }
        }
        self.watch_auto_pd_held(node);
        self.schedule_wake(node);
        Ok(())
    }

    fn schedule_wake(&mut self, node: NodeId) {
        let now = self.now;
        let n = &mut self.nodes[node];
        let Some(run) = &n.run else { return };
        let Some(t) = run.node.poll_timeout() else { return };
        let at = n.clock.true_ms_for_ts(t, now);
        n.wake_gen += 1;
        let gen = n.wake_gen;
        self.at(at, Event::Wake { node, gen });
    }

    fn wake(&mut self, node: NodeId) -> Result<(), Crashed> {
        let now = self.nodes[node].now(self.now);
        let run = self.nodes[node].run.as_mut().ok_or(Crashed)?;
        run.node.handle_timeout(now);
        self.drive(node)
    }

    // ---- the partner link --------------------------------------------------

    fn partner_delay(&mut self) -> u64 {
        let (lo, hi) = self.scen.partner_delay_ms;
        self.rng.random_range(lo..hi.max(lo + 1))
    }

    fn push_seg(&mut self, to: NodeId, seg: Seg) {
        let delay = self.partner_delay();
        let now = self.now;
        let Some(c) = self.link.conn.as_mut() else { return };
        let at = c.arrival(to, now, delay);
        let was_empty = c.inflight[to].is_empty();
        c.inflight[to].push_back((at, seg));
        let id = c.id;
        if was_empty && !self.link.partitioned {
            self.at(at, Event::Link { conn: id, to });
        }
    }

    fn link_send(&mut self, from: NodeId, frame: Vec<u8>) {
        if !self.link.is_open(from) {
            return;
        }
        // TCP may cut a frame anywhere: sometimes two segments.
        if frame.len() > 8 && self.rng.random_bool(0.2) {
            let cut = self.rng.random_range(1..frame.len());
            let (a, b) = frame.split_at(cut);
            self.push_seg(1 - from, Seg::Data(a.to_vec()));
            self.push_seg(1 - from, Seg::Data(b.to_vec()));
        } else {
            self.push_seg(1 - from, Seg::Data(frame));
        }
    }

    fn link_event(&mut self, id: u64, to: NodeId) {
        if self.link.partitioned {
            return;
        }
        let now = self.now;
        let Some(c) = self.link.conn.as_mut().filter(|c| c.id == id) else {
            return;
        };
        let Some(&(at, _)) = c.inflight[to].front() else {
            return;
        };
        if at > now {
            self.at(at, Event::Link { conn: id, to });
            return;
        }
        let Some((_, seg)) = c.inflight[to].pop_front() else {
            return;
        };
        let open = c.open[to];
        match seg {
            // A closed socket (or a machine back from a crash) answers
            // with a reset; a dead machine says nothing.
            Seg::Data(_) if !open => {
                if self.nodes[to].machine_up {
                    self.push_seg(1 - to, Seg::Rst);
                }
            }
            Seg::Data(bytes) => {
                c.decoders[to].push(&bytes);
                let mut frames = Vec::new();
                let mut bad = None;
                loop {
                    match c.decoders[to].next_frame() {
                        Ok(Some(f)) => frames.push(f.to_vec()),
                        Ok(None) => break,
                        Err(e) => {
                            bad = Some(e);
                            break;
                        }
                    }
                }
                if let Some(e) = bad {
                    return self.fail(Invariant::Codec, format!("bad frame: {e}"));
                }
                for f in frames {
                    if !self.link.conn.as_ref().is_some_and(|c| c.id == id && c.open[to]) {
                        break;
                    }
                    let msg = match StreamMessage::parse(&f) {
                        Ok(StreamMessage::Failover(m)) => m.into_owned(),
                        Ok(_) => continue,
                        Err(e) => return self.fail(Invariant::Codec, format!("bad failover message: {e}")),
                    };
                    if self.deliver(to, id, &msg).is_err() {
                        break;
                    }
                }
            }
            Seg::Fin => {
                if open {
                    self.side_closed(to, "FIN");
                }
            }
            Seg::Rst => {
                if open {
                    c.inflight[to].clear();
                    self.side_closed(to, "RST");
                }
            }
        }
        self.link.tidy();
        if let Some(c) = self.link.conn.as_ref().filter(|c| c.id == id) {
            if let Some(&(at, _)) = c.inflight[to].front() {
                self.at(at, Event::Link { conn: id, to });
            }
        }
    }

    fn deliver(&mut self, to: NodeId, conn: u64, msg: &FailoverMessage<'_>) -> Result<(), Crashed> {
        self.ev(Ev::PartnerRecv {
            node: to,
            ty: msg.msg_type,
            xid: msg.transaction_id.get(),
        });
        let now = self.nodes[to].now(self.now);
        let run = self.nodes[to].run.as_mut().ok_or(Crashed)?;
        let before = run.ep().state();
        run.node.partner_message(now, 0, conn, msg);
        let r = self.drive(to);
        if is_handover(msg) {
            self.check_handover_received(to, before);
        }
        r
    }

    /// Side `node` learns its connection is gone (FIN, RST, replaced).
    fn side_closed(&mut self, node: NodeId, why: &'static str) {
        self.end_side(node, why, false);
    }

    /// The endpoint at `node` asked to close: FIN after what it already
    /// sent (called from `drive`, which goes on with the node).
    fn close_side(&mut self, node: NodeId, why: &'static str) {
        self.end_side(node, why, true);
    }

    fn end_side(&mut self, node: NodeId, why: &'static str, by_us: bool) {
        let Some(c) = self.link.conn.as_mut() else { return };
        if !c.open[node] {
            return;
        }
        c.open[node] = false;
        let id = c.id;
        self.ev(Ev::ConnDown { node, id, why });
        if by_us {
            self.push_seg(1 - node, Seg::Fin);
        }
        let now = self.nodes[node].now(self.now);
        if let Some(run) = self.nodes[node].run.as_mut() {
            run.node.partner_closed(now, 0, id);
            if !by_us {
                let _ = self.drive(node);
            }
        }
        if by_us {
            self.link.tidy();
        }
        if node == PRIMARY {
            self.ensure_connect(2000);
        }
    }

    /// The primary (re)connects every 2 s while it has no connection.
    fn ensure_connect(&mut self, delay: u64) {
        if self.nodes[PRIMARY].run.is_none() || self.link.is_open(PRIMARY) || self.link.connect_pending {
            return;
        }
        self.link.connect_pending = true;
        self.at(self.now + delay, Event::Connect);
    }

    fn connect(&mut self) {
        self.link.connect_pending = false;
        if self.nodes[PRIMARY].run.is_none() || self.link.is_open(PRIMARY) {
            return;
        }
        if self.link.partitioned || self.nodes[SECONDARY].run.is_none() {
            return self.ensure_connect(2000);
        }
        // The secondary accepts the new connection and drops the old one.
        if self.link.is_open(SECONDARY) {
            self.side_closed(SECONDARY, "replaced by a new connection");
        }
        self.link.conn = None;
        if self.nodes[SECONDARY].run.is_none() || self.nodes[PRIMARY].run.is_none() {
            return self.ensure_connect(2000);
        }
        self.link.next_id += 1;
        let id = self.link.next_id;
        self.link.conn = Some(Conn::new(id));
        self.ev(Ev::ConnUp { id });
        // (If the secondary crashes at its first durable point, the primary
        // still has its end of the connection: it finds out from FIN, RST
        // or its keepalive.)
        for node in [SECONDARY, PRIMARY] {
            let now = self.nodes[node].now(self.now);
            if let Some(run) = self.nodes[node].run.as_mut() {
                run.node.partner_connected(now, 0, id);
                let _ = self.drive(node);
            }
        }
    }

    fn heal(&mut self) {
        self.link.partitioned = false;
        self.link.heal_gen += 1;
        self.ev(Ev::Fault(Fault::Heal));
        // Segments held up by the cut arrive now, in order.
        let now = self.now;
        let mut wake = vec![];
        if let Some(c) = self.link.conn.as_mut() {
            for to in [PRIMARY, SECONDARY] {
                for (at, _) in c.inflight[to].iter_mut() {
                    *at = (*at).max(now + 1);
                }
                if let Some(&(at, _)) = c.inflight[to].front() {
                    wake.push((at, c.id, to));
                }
            }
        }
        for (at, conn, to) in wake {
            self.at(at, Event::Link { conn, to });
        }
        self.ensure_connect(0);
    }

    // ---- faults ------------------------------------------------------------

    /// A PARTNER-DOWN is recorded somewhere and a server is starting: the
    /// link must work until it has heard its partner.
    fn pd_guard(&self) -> bool {
        let pd = self
            .nodes
            .iter()
            .any(|n| n.recorded_state() == Some(ServerState::PartnerDown));
        pd && self.nodes.iter().any(|n| n.state() == Some(ServerState::Startup))
    }

    pub(crate) fn crash(&mut self, node: NodeId, machine: bool, downtime: u64, wipe: bool) {
        if self.nodes[node].run.is_none() {
            return;
        }
        self.stats.crashes += 1;
        if machine {
            self.stats.machine_crashes += 1;
        }
        self.ev(Ev::Fault(Fault::Crash { node, machine }));
        self.halt(node, machine, downtime, wipe);
    }

    /// The operator stops the node (not counted as a crash).
    fn stop(&mut self, node: NodeId, machine: bool, downtime: u64) {
        if self.nodes[node].run.is_none() {
            return;
        }
        self.ev(Ev::Fault(Fault::Stop { node, machine }));
        self.halt(node, machine, downtime, false);
    }

    /// The operator restarts the daemon: it says goodbye (DISCONNECT,
    /// ServerShuttingDown), its process ends, and it starts again after
    /// `downtime` with the configuration it has then.
    fn graceful_restart(&mut self, node: NodeId, downtime: u64) {
        let now = self.nodes[node].now(self.now);
        if let Some(run) = self.nodes[node].run.as_mut() {
            run.node.shutdown(now);
        }
        if self.drive(node).is_ok() {
            self.stop(node, false, downtime);
        }
    }

    /// The process (or the machine) is gone; it restarts after `downtime`.
    fn halt(&mut self, node: NodeId, machine: bool, downtime: u64, wipe: bool) {
        let n = &mut self.nodes[node];
        n.run = None;
        n.armed = None;
        n.wake_gen += 1;
        n.machine_up = !machine;
        if let Some(c) = self.link.conn.as_mut() {
            if c.open[node] {
                c.open[node] = false;
                c.inflight[node].clear();
                let id = c.id;
                self.ev(Ev::ConnDown {
                    node,
                    id,
                    why: "crash",
                });
                if !machine {
                    self.push_seg(1 - node, Seg::Fin);
                }
            }
        }
        self.link.tidy();
        if !self.nodes[node].restart_pending {
            self.nodes[node].restart_pending = true;
            let at = if self.phase >= Phase::Calm {
                self.now + 1000
            } else {
                self.now + downtime
            };
            self.at(at, Event::Restart { node, wipe });
        }
    }

    fn restart(&mut self, node: NodeId, wipe: bool) {
        if self.nodes[node].run.is_some() {
            self.nodes[node].restart_pending = false;
            return;
        }
        let first = self.step == 0;
        // The partner recorded PARTNER-DOWN: come back only while it runs
        // and the link works, so that STARTUP hears it (RFC 8156 §8.3.2
        // step 5); a server that cannot tell would resume serving while
        // its partner believes it alone serves.
        let partner = &self.nodes[1 - node];
        let partner_pd = partner.recorded_state() == Some(ServerState::PartnerDown);
        let both_pd_down =
            partner.run.is_none() && self.nodes[node].recorded_state() == Some(ServerState::PartnerDown);
        if !first && partner_pd && !both_pd_down && (partner.run.is_none() || self.link.partitioned) {
            self.at(self.now + 1000, Event::Restart { node, wipe });
            return;
        }
        self.nodes[node].restart_pending = false;
        if wipe {
            self.stats.wipes += 1;
            let n = &mut self.nodes[node];
            n.store = duet_core::store::MemoryStore::new();
            n.active_pd.clear();
            n.recorded = None;
            n.recorded_communicated = false;
            n.recorded_download_pending = false;
            n.pd_entry = None;
            n.pd_open = false;
            n.pd_entry_durable = None;
            n.wiped_at = Some(self.now);
            // Bindings the partner's store still covers survive the wipe
            // (it is now their durable copy); the others are lost, and
            // orphans if the protocol can no longer protect them either.
            let (mut lost, mut orphans) = (0, 0);
            // Already lost with the partner's store: now nothing is left.
            for h in self
                .holders
                .values_mut()
                .flatten()
                .filter(|h| h.lost && h.orphan.is_none())
            {
                h.orphan = Some(Orphan::BothLost);
                orphans += 1;
            }
            let keys: Vec<(LeaseKey, Holding)> = self
                .holders
                .iter()
                .flat_map(|(k, v)| v.iter().filter(|h| !h.lost).map(|h| (*k, *h)))
                .collect();
            for (k, h) in keys {
                let (c, until) = (h.client, h.valid_until_ms);
                let binding = binding_of(&self.clients[c as usize], k.kind, h.iaid);
                let survives = self.covered(1 - node, &k, &binding, until);
                let why = self.unprotected(1 - node, h.uncapped, h.since_ms);
                if let Some(h) = self
                    .holders
                    .get_mut(&k)
                    .and_then(|v| v.iter_mut().find(|x| x.client == c && x.iaid == h.iaid))
                {
                    if survives {
                        h.node = 1 - node;
                    } else {
                        h.lost = true;
                        lost += 1;
                        h.orphan = why;
                        orphans += u64::from(why.is_some());
                    }
                }
            }
            self.stats.lost += lost;
            self.stats.orphaned += orphans;
        }
        if !first {
            self.ev(Ev::Fault(Fault::Restart { node, wiped: wipe }));
        }
        if self.alone.is_some_and(|a| a.node != node) {
            self.end_alone();
        }
        let (scen, sab, now) = (&self.scen, self.cfg.sabotage, self.now);
        self.nodes[node].boot(scen, sab, now, &mut self.rng);
        let _ = self.drive(node);
        if node == PRIMARY {
            self.ensure_connect(0);
        }
    }

    fn fault_tick(&mut self) {
        if self.phase != Phase::Chaos {
            return;
        }
        if self.alone.is_some() {
            return self.at(self.now + 1000, Event::FaultTick);
        }
        let gap = self.scen.fault_gap as f64 * 1000.0;
        let u: f64 = self.rng.random_range(1e-9..1.0);
        let next = self.now + (-u.ln() * gap) as u64 + 1;
        self.at(next, Event::FaultTick);
        let f = self.cfg.faults;
        let guard = self.pd_guard();
        // While the partners refuse each other both run and the link
        // works: nothing else that takes a server down, cuts the link or
        // involves the operator.
        let refusing = self.refusal.is_some();
        let mut kinds: Vec<(u32, u8)> = vec![];
        if f.crash && !guard && !refusing && self.nodes.iter().any(|n| n.run.is_some() && n.armed.is_none()) {
            kinds.push((4, 0));
        }
        if f.partition
            && self.scen.mode == LinkMode::Partitions
            && !self.link.partitioned
            && !guard
            && !refusing
        {
            kinds.push((3, 1));
        }
        if f.reset && self.link.conn.is_some() && !self.link.partitioned && !guard {
            kinds.push((2, 2));
        }
        let w = self.scen.weights;
        let calm_pair = self.calm_pair();
        if w[0] > 0 && calm_pair {
            kinds.push((w[0], 4));
        }
        if w[1] > 0 && calm_pair {
            kinds.push((w[1], 5));
        }
        if w[2] > 0 && !self.client_link_down.iter().all(|d| *d) {
            kinds.push((w[2], 6));
        }
        if w[3] > 0 && calm_pair {
            kinds.push((w[3], 7));
        }
        let pd_candidates: Vec<NodeId> = [PRIMARY, SECONDARY]
            .into_iter()
            .filter(|&i| {
                !refusing
                    && self.nodes[1 - i].run.is_none()
                    && matches!(
                        self.nodes[i].state(),
                        Some(
                            ServerState::Normal
                                | ServerState::CommunicationsInterrupted
                                | ServerState::ResolutionInterrupted
                        )
                    )
            })
            .collect();
        if f.operator_pd && !pd_candidates.is_empty() {
            kinds.push((6, 3));
        }
        let total: u32 = kinds.iter().map(|k| k.0).sum();
        if total == 0 {
            return;
        }
        let mut pick = self.rng.random_range(0..total);
        let kind = kinds
            .iter()
            .find(|k| {
                if pick < k.0 {
                    true
                } else {
                    pick -= k.0;
                    false
                }
            })
            .map_or(0, |k| k.1);
        match kind {
            0 => self.fault_crash(),
            1 => {
                self.stats.partitions += 1;
                self.link.partitioned = true;
                self.link.heal_gen += 1;
                self.ev(Ev::Fault(Fault::Partition));
                let ka = self.scen.keepalive * 1000;
                let dur = match self.rng.random_range(0..3) {
                    0 => self.rng.random_range(500..ka),
                    1 => self.rng.random_range(ka..8 * ka),
                    _ => self.rng.random_range(8 * ka..(8 * ka).max(self.scen.mclt * 6000)),
                };
                let gen = self.link.heal_gen;
                self.at(self.now + dur, Event::Heal { gen });
            }
            4 => self.start_refusal(RefusalCause::Configuration),
            5 => self.start_refusal(RefusalCause::ClockStep),
            6 => self.client_link_fault(),
            7 => self.handover_fault(),
            2 => {
                self.stats.resets += 1;
                self.ev(Ev::Fault(Fault::Reset));
                if let Some(c) = self.link.conn.as_mut() {
                    c.inflight = Default::default();
                }
                for side in [SECONDARY, PRIMARY] {
                    self.side_closed(side, "reset");
                }
                self.link.tidy();
            }
            _ => {
                let node = pd_candidates[self.rng.random_range(0..pd_candidates.len())];
                let now = self.nodes[node].now(self.now);
                let Some(run) = self.nodes[node].run.as_mut() else {
                    return;
                };
                let accepted = run.node.partner_down(now, RELATIONSHIP).is_ok();
                if accepted {
                    self.stats.operator_pd += 1;
                }
                self.ev(Ev::Fault(Fault::OperatorPartnerDown { node, accepted }));
                let _ = self.drive(node);
            }
        }
    }

    // ---- refusals, client links, the operator's commands ----------------

    /// Both servers run in NORMAL and talk, with nothing else going on: a
    /// refusal period or a handover may start.
    fn calm_pair(&self) -> bool {
        self.phase == Phase::Chaos
            && self.refusal.is_none()
            && self.alone.is_none()
            && self.handover_plan.iter().all(Option::is_none)
            && !self.link.partitioned
            && !self.pd_guard()
            && self.nodes.iter().all(|n| {
                n.armed.is_none()
                    && !n.restart_pending
                    && n.run
                        .as_ref()
                        .is_some_and(|r| r.ep().state() == ServerState::Normal && r.ep().communications_ok())
            })
    }

    /// `refuse` / `skew-step`: one server restarts with an edited
    /// configuration, or its clock steps by 6 s or more, for a while.
    fn start_refusal(&mut self, cause: RefusalCause) {
        let node = self.rng.random_range(0..2);
        self.refusal_gen += 1;
        let gen = self.refusal_gen;
        self.refusal = Some(RefusalPeriod {
            cause,
            node,
            gen,
            fixed: false,
            held: false,
        });
        match cause {
            RefusalCause::ClockStep => {
                self.stats.skew_steps += 1;
                let max = self.scen.step_max_ms.max(6_000);
                let size = self.rng.random_range(6_000..=max);
                let drawn = if self.rng.random_bool(0.5) { 1 } else { -1 };
                // Every step of a seed goes the same way (either server):
                // a lease written while one clock was stepped is judged,
                // until it ends, by a clock that may be stepped again. Two
                // steps the same way differ by at most `step_max_ms`, the
                // checker's tolerance; two opposite ones by up to twice it
                // (duet-sim seed 96812: P granted 30 s with its clock
                // stepped 10.5 s behind; it was put right, stepped 10.4 s
                // ahead 3 s later, and P expired the binding, correctly by
                // its clock, 21 s before the client's end).
                let step = size * *self.step_sign.get_or_insert(drawn);
                self.nodes[node].clock.step_ms = step;
                self.ev(Ev::Fault(Fault::ClockStep { node, step_ms: step }));
                self.schedule_wake(node);
            }
            RefusalCause::Configuration => {
                self.stats.config_refusals += 1;
                self.nodes[node].bad_fingerprint = true;
                self.ev(Ev::Fault(Fault::Reconfigure { node, edited: true }));
                let downtime = self.rng.random_range(500..3_000);
                self.graceful_restart(node, downtime);
            }
        }
        let dur = match self.rng.random_range(0..3) {
            0 => self.rng.random_range(10_000..60_000),
            1 => self.rng.random_range(60_000..400_000),
            _ => self.rng.random_range(400_000..900_000),
        };
        self.at(self.now + dur, Event::RefusalEnd { gen });
    }

    /// The cause of refusal period `gen` is removed: the configuration is
    /// put back (another restart), or the clock steps back.
    fn end_refusal(&mut self, gen: u64) {
        let Some(r) = self.refusal.as_mut().filter(|r| r.gen == gen && !r.fixed) else {
            return;
        };
        r.fixed = true;
        let (node, cause) = (r.node, r.cause);
        match cause {
            RefusalCause::ClockStep => {
                self.nodes[node].clock.step_ms = 0;
                self.ev(Ev::Fault(Fault::ClockStep { node, step_ms: 0 }));
                self.schedule_wake(node);
            }
            RefusalCause::Configuration => {
                self.nodes[node].bad_fingerprint = false;
                self.ev(Ev::Fault(Fault::Reconfigure { node, edited: false }));
                if self.nodes[node].run.is_some() {
                    let downtime = self.rng.random_range(500..3_000);
                    self.graceful_restart(node, downtime);
                }
            }
        }
        self.refusal_maybe_over();
    }

    /// A refusal period ends once its cause is removed and the partners
    /// communicate again.
    fn refusal_maybe_over(&mut self) {
        let Some(r) = self.refusal.filter(|r| r.fixed) else {
            return;
        };
        let talking = self
            .nodes
            .iter()
            .all(|n| n.run.as_ref().is_some_and(|x| x.ep().communications_ok()));
        if talking {
            if r.held {
                self.stats.auto_pd_held += 1;
            }
            self.refusal = None;
        }
    }

    /// During a refusal period: whether `node` holds automatic
    /// partner-down off (what a refused partner needs).
    fn watch_auto_pd_held(&mut self, node: NodeId) {
        if self.scen.auto_pd.is_none() || self.refusal.is_none_or(|r| r.held) {
            return;
        }
        let held = self.nodes[node]
            .run
            .as_ref()
            .is_some_and(|r| r.ep().status().auto_partner_down_held.is_some());
        if let Some(r) = self.refusal.as_mut().filter(|_| held) {
            r.held = true;
        }
    }

    /// `client-link`: one server's client link drops for a while.
    fn client_link_fault(&mut self) {
        let node = self.rng.random_range(0..2);
        if self.client_link_down[node] {
            return;
        }
        self.stats.client_link_outages += 1;
        self.client_link_down[node] = true;
        self.client_link_gen[node] += 1;
        let gen = self.client_link_gen[node];
        self.ev(Ev::Fault(Fault::ClientLink { node, up: false }));
        let dur = match self.rng.random_range(0..3) {
            0 => self.rng.random_range(5_000..60_000),
            1 => self.rng.random_range(60_000..300_000),
            _ => self.rng.random_range(300_000..1_200_000),
        };
        self.at(self.now + dur, Event::ClientLinkHeal { node, gen });
    }

    /// `handover`: the operator hands one server's clients over; it is
    /// stopped (or resumed) when that ends, or stopped at any moment of it.
    fn handover_fault(&mut self) {
        let node = self.rng.random_range(0..2);
        let now = self.nodes[node].now(self.now);
        let on_done = self.rng.random_bool(0.6);
        let resume = self.rng.random_bool(0.2);
        let boot = self.nodes[node].boots;
        let Some(run) = self.nodes[node].run.as_mut() else {
            return;
        };
        // Planned first: the handover may complete within the command.
        self.handover_plan[node] = Some(HandoverPlan {
            boot,
            on_done,
            resume,
        });
        let accepted = run
            .node
            .handover(now, RELATIONSHIP, std::time::Duration::from_secs(10))
            .is_ok();
        self.ev(Ev::Fault(Fault::Handover { node, accepted }));
        if accepted {
            self.stats.handovers += 1;
        }
        if !accepted || !on_done {
            let at = self.now + self.rng.random_range(0..15_000);
            self.at(at, Event::HandoverStop { node, boot });
        }
        let _ = self.drive(node);
    }

    /// `node`'s handover ended (`done`, or failed / abandoned).
    fn handover_ended(&mut self, node: NodeId, done: bool) {
        let boot = self.nodes[node].boots;
        let Some(p) = self.handover_plan[node].filter(|p| p.boot == boot && p.on_done) else {
            return;
        };
        if done && p.resume {
            let at = self.now + self.rng.random_range(1_000..60_000);
            self.at(at, Event::HandoverResume { node, boot });
        } else {
            let at = self.now + self.rng.random_range(0..3_000);
            self.at(at, Event::HandoverStop { node, boot });
        }
    }

    fn handover_stop(&mut self, node: NodeId, boot: u64) {
        if self.nodes[node].boots != boot || self.nodes[node].run.is_none() {
            self.handover_plan[node] = None;
            return;
        }
        if self.pd_guard() {
            return self.at(self.now + 1000, Event::HandoverStop { node, boot });
        }
        self.handover_plan[node] = None;
        self.stats.handover_stops += 1;
        let machine = self.rng.random_bool(0.2);
        let mclt = self.scen.mclt * 1000;
        let downtime = match self.rng.random_range(0..3) {
            0 => self.rng.random_range(500..10_000),
            1 => self.rng.random_range(10_000..2 * mclt + 20_000),
            _ => self.rng.random_range(2 * mclt..8 * mclt + 60_000),
        };
        self.stop(node, machine, downtime);
    }

    fn handover_resume(&mut self, node: NodeId, boot: u64) {
        self.handover_plan[node] = None;
        if self.nodes[node].boots != boot {
            return;
        }
        let now = self.nodes[node].now(self.now);
        let Some(run) = self.nodes[node].run.as_mut() else {
            return;
        };
        let accepted = run.node.resume(now, RELATIONSHIP).is_ok();
        if accepted {
            self.stats.handover_resumes += 1;
        }
        self.ev(Ev::Fault(Fault::Resume { node, accepted }));
        let _ = self.drive(node);
    }

    /// `commission`: the operator puts the server started alone into
    /// service (RECOVER → PARTNER-DOWN) once its STARTUP is over.
    fn commission(&mut self, node: NodeId) {
        if self.alone.is_none_or(|a| a.node != node) {
            return;
        }
        if self.nodes[node].state() == Some(ServerState::Startup) {
            return self.at(self.now + 1000, Event::Commission { node });
        }
        let now = self.nodes[node].now(self.now);
        let Some(run) = self.nodes[node].run.as_mut() else {
            return;
        };
        let r = run.node.commission(now, RELATIONSHIP);
        self.ev(Ev::Fault(Fault::Commission {
            node,
            accepted: r.is_ok(),
        }));
        match r {
            Ok(()) => {
                self.stats.commissions += 1;
                if let Some(a) = self.alone.as_mut() {
                    a.commissioned = true;
                }
            }
            Err(e) => {
                let state = self.nodes[node].state();
                self.fail(
                    Invariant::Commissioning,
                    format!(
                        "{}, alone with an empty store and out of STARTUP ({state:?}), refused commissioning: {e}",
                        crate::trace::node_name(node)
                    ),
                );
            }
        }
        let _ = self.drive(node);
    }

    /// The partner of the server alone starts: that server must have
    /// served the clients that tried meanwhile.
    fn end_alone(&mut self) {
        let Some(a) = self.alone.take() else { return };
        if a.commissioned && a.tried > 0 && a.answered == 0 {
            self.fail(
                Invariant::Commissioning,
                format!(
                    "{} was commissioned alone, and answered none of the {} client messages it got before its partner started",
                    crate::trace::node_name(a.node),
                    a.tried
                ),
            );
        }
    }

    /// `partner-lost`: a server that enters RECOVER may crash during its
    /// recovery (RECOVER, RECOVER-WAIT or RECOVER-DONE), for long, wiped.
    fn maybe_crash_while_recovering(&mut self, node: NodeId) {
        let p = self.scen.partner_lost_p;
        if self.phase != Phase::Chaos || p <= 0.0 || !self.rng.random_bool(p) {
            return;
        }
        let within = (self.scen.mclt + 20) * 1000;
        let at = self.now + self.rng.random_range(0..within);
        let boot = self.nodes[node].boots;
        self.at(at, Event::RecoverCrash { node, boot });
    }

    fn recover_crash(&mut self, node: NodeId, boot: u64) {
        let n = &self.nodes[node];
        let recovering = matches!(
            n.state(),
            Some(ServerState::Recover | ServerState::RecoverWait | ServerState::RecoverDone)
        );
        if n.boots != boot
            || !recovering
            || n.armed.is_some()
            || self.nodes[1 - node].run.is_none()
            || self.phase != Phase::Chaos
            || self.refusal.is_some()
            || self.pd_guard()
        {
            return;
        }
        self.stats.recover_crashes += 1;
        let machine = self.rng.random_bool(0.5);
        let downtime = self.rng.random_range(600_000..2_400_000);
        self.crash(node, machine, downtime, true);
        let at = self.now + self.rng.random_range(5_000..120_000);
        self.at(at, Event::PartnerLost { node: 1 - node });
    }

    /// The operator tells `node` its partner is gone with its store (only
    /// while the partner is down, as for the operator's partner-down).
    fn partner_lost(&mut self, node: NodeId) {
        if self.nodes[1 - node].run.is_some() || self.refusal.is_some() {
            return;
        }
        let now = self.nodes[node].now(self.now);
        let Some(run) = self.nodes[node].run.as_mut() else {
            return;
        };
        let accepted = run.node.partner_lost(now, RELATIONSHIP).is_ok();
        if accepted {
            self.stats.partner_lost += 1;
        }
        self.ev(Ev::Fault(Fault::PartnerLost { node, accepted }));
        let _ = self.drive(node);
    }

    fn fault_crash(&mut self) {
        let up: Vec<NodeId> = [PRIMARY, SECONDARY]
            .into_iter()
            .filter(|&i| self.nodes[i].run.is_some() && self.nodes[i].armed.is_none())
            .collect();
        if up.is_empty() {
            return;
        }
        let node = up[self.rng.random_range(0..up.len())];
        let machine = self.rng.random_bool(0.5);
        let mclt = self.scen.mclt * 1000;
        let downtime = match self.rng.random_range(0..3) {
            0 => self.rng.random_range(500..10_000),
            1 => self.rng.random_range(10_000..2 * mclt + 20_000),
            _ => self.rng.random_range(2 * mclt..8 * mclt + 60_000),
        };
        let wipe = self.rng.random_bool(self.scen.wipe_p);
        let point = match self.rng.random_range(0..4) {
            0 => Some(CrashPoint::BeforeCommit),
            1 => Some(CrashPoint::AfterCommit),
            _ => None,
        };
        match point {
            None => self.crash(node, machine, downtime, wipe),
            Some(point) => {
                self.stats.armed_crashes += 1;
                self.arm_gen += 1;
                let gen = self.arm_gen;
                self.nodes[node].armed = Some(Armed {
                    point,
                    machine,
                    downtime,
                    wipe,
                    gen,
                });
                self.ev(Ev::Fault(Fault::Arm { node, point }));
                self.at(self.now + 30_000, Event::ArmTimeout { node, gen });
            }
        }
    }

    fn calm(&mut self) {
        self.ev(Ev::Fault(Fault::Calm));
        self.phase = Phase::Calm;
        for n in &mut self.nodes {
            n.armed = None;
        }
        if self.link.partitioned {
            self.heal();
        }
        // Whatever makes the partners refuse each other is fixed, client
        // links come back, and a server that handed over with nothing
        // planned for it any more is resumed.
        if let Some(r) = self.refusal {
            self.end_refusal(r.gen);
        }
        for node in [PRIMARY, SECONDARY] {
            if self.client_link_down[node] {
                self.client_link_down[node] = false;
                self.ev(Ev::Fault(Fault::ClientLink { node, up: true }));
            }
            let parked = self.nodes[node]
                .run
                .as_ref()
                .is_some_and(|r| r.ep().status().handover.is_some());
            if parked && self.handover_plan[node].is_none() {
                let boot = self.nodes[node].boots;
                self.at(self.now + 11_000, Event::HandoverResume { node, boot });
            }
        }
        for node in [PRIMARY, SECONDARY] {
            if self.nodes[node].run.is_none() {
                self.nodes[node].restart_pending = true;
                self.at(self.now + 1, Event::Restart { node, wipe: false });
            }
        }
        let settle = (3 * self.scen.mclt + 300).max(self.scen.valid) * 1000;
        self.at(self.now + settle, Event::Quiet);
    }

    fn final_check(&mut self) {
        let deadline = self.quiet_at + (self.scen.valid + 900) * 1000;
        if self.converged() {
            self.phase = Phase::Done;
            return;
        }
        if self.now >= deadline {
            let why = self.divergence();
            self.fail(Invariant::Convergence, why);
            return;
        }
        self.at(self.now + 1000, Event::Check);
    }

    /// Both servers in NORMAL, talking, nothing in flight or queued, and
    /// both tables equal.
    fn converged(&self) -> bool {
        let quiet_link = self
            .link
            .conn
            .as_ref()
            .is_some_and(|c| c.open == [true, true] && c.idle());
        let eps_idle = self.nodes.iter().all(|n| {
            n.run.as_ref().is_some_and(|r| {
                let s = r.ep().status();
                s.state == ServerState::Normal
                    && s.communications_ok
                    && s.queued_bndupd == 0
                    && s.unacked_bndupd == 0
            })
        });
        quiet_link && eps_idle && self.table_diff().is_empty()
    }

    fn divergence(&self) -> String {
        let states: Vec<String> = self
            .nodes
            .iter()
            .map(|n| match &n.run {
                Some(r) => format!("{:?}", r.ep().status()),
                None => "down".into(),
            })
            .collect();
        format!(
            "after faults stopped the pair did not converge: {}; first differences (key, primary, secondary): {:?}",
            states.join("; "),
            self.table_diff()
        )
    }
}

/// The type and transaction id of an encoded failover frame.
fn frame_type(frame: &[u8]) -> Option<(FailoverMessageType, u32)> {
    let mut d = FrameDecoder::new();
    d.push(frame);
    let payload = d.next_frame().ok()??;
    match StreamMessage::parse(payload).ok()? {
        StreamMessage::Failover(m) => Some((m.msg_type, TransactionId::get(m.transaction_id))),
        StreamMessage::Tls(_) => None,
    }
}

/// The binding key of `c`'s IA of kind `kind` and IAID `iaid`.
pub(crate) fn binding_of(c: &Client, kind: LeaseKind, iaid: u32) -> BindingKey {
    BindingKey {
        duid: c.duid.as_bytes().to_vec(),
        kind,
        iaid,
    }
}
