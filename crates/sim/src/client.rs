//! Simulated RFC 8415 clients.
//!
//! Each client has a DUID, asks for one to three addresses (IA_NAs) and up
//! to two prefixes (IA_PDs), each IA with its own IAID (the two kinds have
//! separate IAID spaces, and both start at 1: RFC 8415 §12), all in the same
//! messages, and runs the client side of RFC 8415 §18.2:
//! Solicit (collecting Advertises during the first retransmission time and
//! choosing the best), Request, Renew to its server at T1, Rebind to any
//! server at T2, Release at the end of some sessions, Decline of a new
//! address now and then (a duplicate address detected), retransmissions
//! with the §15 algorithm, each message carrying an Elapsed Time option
//! (§21.9: hundredths of a second since the first transmission of the
//! exchange, 0xffff from 655.35 s on), which a secondary in NORMAL reads to
//! rescue clients its partner does not answer (RFC 7031 §4.7). Clients
//! come and go: a session ends with a
//! Release or by simply going silent; a client that comes back uses the
//! same DUID.
//!
//! A client's own view of what it holds is what the invariants judge: a
//! lease is held from the Reply until its valid lifetime ends, counted
//! conservatively from the *first* transmission of the exchange (RFC 2131
//! §4.4.1 style), until the client releases, declines or drops it.

use crate::trace::NodeId;
use duet_core::lease::{BindingKey, LeaseKey, LeaseKind};
use duet_wire::option::{IaAddr, IaNa, IaPd, IaPrefix};
use duet_wire::{ClientMessage, DhcpOption, Duid, MessageType, OptionsExt, StatusCode, TransactionId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::net::Ipv6Addr;

/// One IA a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// An address (IA_NA) or a prefix (IA_PD).
    pub kind: LeaseKind,
    /// Its IAID.
    pub iaid: u32,
}

// RFC 8415 §7.6 (ms). SOL_MAX_RT is capped at 300 s to keep clients lively.
const SOL_TIMEOUT: u64 = 1_000;
const SOL_MAX_RT: u64 = 300_000;
const REQ_TIMEOUT: u64 = 1_000;
const REQ_MAX_RT: u64 = 30_000;
const REQ_MAX_RC: u32 = 10;
const REN_TIMEOUT: u64 = 10_000;
const REN_MAX_RT: u64 = 600_000;
const REB_TIMEOUT: u64 = 10_000;
const REB_MAX_RT: u64 = 600_000;
const REL_TIMEOUT: u64 = 1_000;
const REL_MAX_RC: u32 = 4;

/// A lease in the client's own view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The address or prefix.
    pub key: LeaseKey,
    /// End of the valid lifetime, true ms.
    pub valid_until_ms: u64,
    /// The server whose Reply granted or last extended it.
    pub node: NodeId,
}

/// What a client did, for the world to carry out and check.
#[derive(Debug, Clone)]
pub enum Act {
    /// Multicast this message to the servers.
    Send(ClientMessage<'static>),
    /// The client now holds `key` (new, or extended) until `valid_until_ms`.
    Hold {
        /// The lease.
        key: LeaseKey,
        /// The IA it holds it in.
        iaid: u32,
        /// End of its valid lifetime, true ms.
        valid_until_ms: u64,
        /// Valid lifetime in the Reply, seconds.
        valid: u32,
        /// The replying server.
        node: NodeId,
        /// Whether the client held this lease already (extension).
        extended: bool,
    },
    /// The client stopped holding `key`.
    Unhold {
        /// The lease.
        key: LeaseKey,
        /// Why.
        why: &'static str,
    },
    /// Powered on (true) or off.
    Power(bool),
}

#[derive(Debug, Clone)]
struct Advert {
    node: NodeId,
    server: Duid<'static>,
    /// Per slot.
    offers: Vec<Option<LeaseKey>>,
    preference: u8,
}

impl Advert {
    fn score(&self) -> (u8, usize) {
        (self.preference, self.offers.iter().flatten().count())
    }
}

#[derive(Debug, Clone)]
enum State {
    Off {
        on_at: u64,
    },
    /// Waiting before soliciting again.
    Idle {
        until: u64,
    },
    Soliciting {
        xid: u32,
        first: u64,
        next: u64,
        rt: u64,
        collect_until: u64,
        adverts: Vec<Advert>,
    },
    Requesting {
        xid: u32,
        first: u64,
        next: u64,
        rt: u64,
        count: u32,
        advert: Advert,
    },
    Bound,
    Renewing {
        xid: u32,
        first: u64,
        next: u64,
        rt: u64,
    },
    Rebinding {
        xid: u32,
        first: u64,
        next: u64,
        rt: u64,
    },
    /// Sending Release or Decline (the leases concerned are already dropped).
    Letting {
        msg: ClientMessage<'static>,
        first: u64,
        next: u64,
        rt: u64,
        count: u32,
        then_off: bool,
    },
}

/// One simulated client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Client number.
    pub id: u32,
    /// Its DUID.
    pub duid: Duid<'static>,
    /// Its link-local address.
    pub source: Ipv6Addr,
    /// The IAs it asks for.
    pub slots: Vec<Slot>,
    /// What it holds, per slot.
    pub held: Vec<Option<Held>>,
    /// The server it renews with.
    server: Option<(NodeId, Duid<'static>)>,
    state: State,
    t1_at: u64,
    t2_at: u64,
    session_end: u64,
    next_xid: u32,
    /// Set once the world stops client traffic (final phase).
    pub quiet: bool,
    /// Addresses this client declined, until when it would decline them
    /// again.
    declined: Vec<(LeaseKey, u64)>,
}

fn jitter(rng: &mut ChaCha8Rng, base: u64, positive: bool) -> i64 {
    let span = (base / 10).max(1) as i64;
    if positive {
        rng.random_range(1..=span)
    } else {
        rng.random_range(-span..=span)
    }
}

fn first_rt(rng: &mut ChaCha8Rng, irt: u64, positive: bool) -> u64 {
    irt.saturating_add_signed(jitter(rng, irt, positive))
}

/// `m`, sent at `now` in an exchange first transmitted at `first`, with
/// its Elapsed Time option (RFC 8415 §21.9).
fn send(mut m: ClientMessage<'static>, first: u64, now: u64) -> Act {
    m.options.retain(|o| !matches!(o, DhcpOption::ElapsedTime(_)));
    m.options.push(DhcpOption::ElapsedTime(elapsed_cs(first, now)));
    Act::Send(m)
}

/// Elapsed Time of an exchange first transmitted at `first` (ms), at `now`:
/// hundredths of a second, 0xffff for 655.35 s and more.
pub fn elapsed_cs(first: u64, now: u64) -> u16 {
    u16::try_from(now.saturating_sub(first) / 10).unwrap_or(u16::MAX)
}

fn next_rt(rng: &mut ChaCha8Rng, prev: u64, mrt: u64) -> u64 {
    let rt = (2 * prev).saturating_add_signed(jitter(rng, prev, false));
    if rt > mrt {
        mrt.saturating_add_signed(jitter(rng, mrt, false))
    } else {
        rt
    }
}

/// The lease keys a message lists in its IAs (IAADDR / IAPREFIX).
pub fn listed_keys(m: &ClientMessage<'_>) -> Vec<LeaseKey> {
    m.options
        .ia_leases()
        .filter(|(_, l)| !l.address.is_unspecified())
        .map(|(_, l)| LeaseKey::of(&l))
        .collect()
}

/// What a reply says about one IA.
#[derive(Debug, Clone, Default)]
struct IaAnswer {
    /// Leases with their valid lifetimes (0 = withdrawn).
    leases: Vec<(LeaseKey, u32)>,
    t1: u32,
    t2: u32,
}

/// What a reply says about each of `slots` (the first IA of that kind and
/// IAID; a server answers each once).
fn answers(m: &ClientMessage<'_>, slots: &[Slot]) -> Vec<Option<IaAnswer>> {
    slots
        .iter()
        .map(|slot| {
            let ia = m
                .options
                .ias()
                .find(|ia| LeaseKind::of_ia(ia.kind) == Some(slot.kind) && ia.iaid == slot.iaid)?;
            Some(IaAnswer {
                leases: ia
                    .leases()
                    .map(|l| (LeaseKey::of(&l), l.valid_lifetime))
                    .collect(),
                t1: ia.t1,
                t2: ia.t2,
            })
        })
        .collect()
}

impl Client {
    /// A client with `na` IA_NAs and `pd` IA_PDs that powers on at `on_at`
    /// (true ms).
    pub fn new(id: u32, na: u32, pd: u32, on_at: u64) -> Client {
        let duid = Duid::new(crate::node::client_duid(id))
            .unwrap_or_else(|_| unreachable!("a 10-byte DUID-LL is valid"));
        let source = Ipv6Addr::from(0xfe80_0000_0000_0000_0200_0000_0000_0000u128 | u128::from(id));
        Client {
            id,
            duid,
            source,
            slots: (1..=na)
                .map(|iaid| Slot {
                    kind: LeaseKind::Na,
                    iaid,
                })
                .chain((1..=pd).map(|iaid| Slot {
                    kind: LeaseKind::Pd,
                    iaid,
                }))
                .collect(),
            held: vec![None; (na + pd) as usize],
            server: None,
            state: State::Off { on_at },
            t1_at: 0,
            t2_at: 0,
            session_end: 0,
            next_xid: id.wrapping_mul(7919) & 0xffff,
            quiet: false,
            declined: vec![],
        }
    }

    /// When the client next needs [`Client::on_timer`].
    pub fn next_timer(&self) -> Option<u64> {
        if self.quiet {
            return None;
        }
        let mut t: Vec<u64> = self.held.iter().flatten().map(|h| h.valid_until_ms).collect();
        match &self.state {
            State::Off { on_at } => t.push(*on_at),
            State::Idle { until } => t.push(*until),
            State::Soliciting {
                next,
                collect_until,
                adverts,
                ..
            } => {
                t.push(*next);
                if !adverts.is_empty() {
                    t.push(*collect_until);
                }
            }
            State::Requesting { next, .. } | State::Rebinding { next, .. } | State::Letting { next, .. } => {
                t.push(*next)
            }
            State::Bound => t.push(self.t1_at),
            State::Renewing { next, .. } => {
                t.push(*next);
                t.push(self.t2_at);
            }
        }
        if !matches!(self.state, State::Off { .. } | State::Letting { .. }) {
            t.push(self.session_end);
        }
        t.into_iter().min()
    }

    fn xid(&mut self) -> u32 {
        self.next_xid = (self.next_xid + 1) & TransactionId::MAX;
        self.next_xid
    }

    fn base(&self, t: MessageType, xid: u32) -> ClientMessage<'static> {
        let mut m = ClientMessage::new(t, TransactionId::from_low_bits(xid));
        m.options.push(DhcpOption::ClientId(self.duid.clone()));
        m
    }

    /// The binding key of slot `ix` (RFC 8415 §4.2).
    pub fn binding(&self, ix: usize) -> Option<BindingKey> {
        self.slots.get(ix).map(|s| BindingKey {
            duid: self.duid.as_bytes().to_vec(),
            kind: s.kind,
            iaid: s.iaid,
        })
    }

    fn ia(slot: Slot, key: Option<LeaseKey>) -> DhcpOption<'static> {
        match slot.kind {
            LeaseKind::Na => DhcpOption::IaNa(IaNa {
                iaid: slot.iaid,
                t1: 0,
                t2: 0,
                options: key
                    .map(|k| {
                        vec![DhcpOption::IaAddr(IaAddr {
                            address: k.prefix.addr(),
                            preferred_lifetime: 0,
                            valid_lifetime: 0,
                            options: vec![],
                        })]
                    })
                    .unwrap_or_default(),
            }),
            LeaseKind::Pd => DhcpOption::IaPd(IaPd {
                iaid: slot.iaid,
                t1: 0,
                t2: 0,
                options: key
                    .map(|k| {
                        vec![DhcpOption::IaPrefix(IaPrefix {
                            preferred_lifetime: 0,
                            valid_lifetime: 0,
                            prefix_len: k.prefix.len(),
                            prefix: k.prefix.addr(),
                            options: vec![],
                        })]
                    })
                    .unwrap_or_default(),
            }),
        }
    }

    fn solicit_msg(&self, xid: u32) -> ClientMessage<'static> {
        let mut m = self.base(MessageType::Solicit, xid);
        m.options.extend(self.slots.iter().map(|&s| Self::ia(s, None)));
        m
    }

    fn request_msg(&self, xid: u32, a: &Advert) -> ClientMessage<'static> {
        let mut m = self.base(MessageType::Request, xid);
        m.options.push(DhcpOption::ServerId(a.server.clone()));
        for (ix, &s) in self.slots.iter().enumerate() {
            m.options.push(Self::ia(s, a.offers.get(ix).copied().flatten()));
        }
        m
    }

    fn extend_msg(&self, t: MessageType, xid: u32) -> ClientMessage<'static> {
        let mut m = self.base(t, xid);
        if t == MessageType::Renew {
            if let Some((_, s)) = &self.server {
                m.options.push(DhcpOption::ServerId(s.clone()));
            }
        }
        for (s, h) in self.slots.iter().zip(&self.held) {
            if let Some(h) = h {
                m.options.push(Self::ia(*s, Some(h.key)));
            }
        }
        m
    }

    fn start_solicit(&mut self, now: u64, rng: &mut ChaCha8Rng, out: &mut Vec<Act>) {
        let xid = self.xid();
        let rt = first_rt(rng, SOL_TIMEOUT, true);
        out.push(send(self.solicit_msg(xid), now, now));
        self.state = State::Soliciting {
            xid,
            first: now,
            next: now + rt,
            rt,
            collect_until: now + rt,
            adverts: vec![],
        };
    }

    fn start_request(&mut self, now: u64, rng: &mut ChaCha8Rng, advert: Advert, out: &mut Vec<Act>) {
        let xid = self.xid();
        let rt = first_rt(rng, REQ_TIMEOUT, false);
        out.push(send(self.request_msg(xid, &advert), now, now));
        self.state = State::Requesting {
            xid,
            first: now,
            next: now + rt,
            rt,
            count: 1,
            advert,
        };
    }

    fn start_extend(&mut self, now: u64, rng: &mut ChaCha8Rng, rebind: bool, out: &mut Vec<Act>) {
        let xid = self.xid();
        let (t, irt) = if rebind {
            (MessageType::Rebind, REB_TIMEOUT)
        } else {
            (MessageType::Renew, REN_TIMEOUT)
        };
        let rt = first_rt(rng, irt, false);
        out.push(send(self.extend_msg(t, xid), now, now));
        self.state = if rebind {
            State::Rebinding {
                xid,
                first: now,
                next: now + rt,
                rt,
            }
        } else {
            State::Renewing {
                xid,
                first: now,
                next: now + rt,
                rt,
            }
        };
    }

    /// Release (`release`) or Decline the leases at `ixs`; they are dropped
    /// from the client's view at once (RFC 8415 §18.2.6, §18.2.7).
    fn let_go(
        &mut self,
        now: u64,
        rng: &mut ChaCha8Rng,
        ixs: &[usize],
        release: bool,
        then_off: bool,
        out: &mut Vec<Act>,
    ) {
        let Some((_, server)) = self.server.clone() else {
            return;
        };
        let xid = self.xid();
        let t = if release {
            MessageType::Release
        } else {
            MessageType::Decline
        };
        let mut m = self.base(t, xid);
        m.options.push(DhcpOption::ServerId(server));
        for &ix in ixs {
            let (Some(slot), Some(h)) = (
                self.slots.get(ix).copied(),
                self.held.get_mut(ix).and_then(Option::take),
            ) else {
                continue;
            };
            m.options.push(Self::ia(slot, Some(h.key)));
            out.push(Act::Unhold {
                key: h.key,
                why: if release { "released" } else { "declined" },
            });
        }
        let rt = first_rt(rng, REL_TIMEOUT, false);
        out.push(send(m.clone(), now, now));
        self.state = State::Letting {
            msg: m,
            first: now,
            next: now + rt,
            rt,
            count: 1,
            then_off,
        };
    }

    fn holds_any(&self) -> bool {
        self.held.iter().any(Option::is_some)
    }

    fn power_off(&mut self, now: u64, rng: &mut ChaCha8Rng, out: &mut Vec<Act>) {
        for h in self.held.iter_mut() {
            if let Some(x) = h.take() {
                out.push(Act::Unhold {
                    key: x.key,
                    why: "powered off",
                });
            }
        }
        out.push(Act::Power(false));
        self.server = None;
        self.state = State::Off {
            on_at: now + rng.random_range(10_000..3_600_000),
        };
    }

    /// After the leases it holds changed: keep going, or start over.
    fn after_loss(&mut self, now: u64, rng: &mut ChaCha8Rng, out: &mut Vec<Act>) {
        if !self.holds_any()
            && matches!(
                self.state,
                State::Bound | State::Renewing { .. } | State::Rebinding { .. }
            )
        {
            self.server = None;
            self.start_solicit(now, rng, out);
        }
    }

    /// Timer work due at `now`.
    pub fn on_timer(&mut self, now: u64, rng: &mut ChaCha8Rng) -> Vec<Act> {
        let mut out = vec![];
        if self.quiet {
            return out;
        }
        for h in self.held.iter_mut() {
            if h.is_some_and(|x| x.valid_until_ms <= now) {
                if let Some(x) = h.take() {
                    out.push(Act::Unhold {
                        key: x.key,
                        why: "valid lifetime over",
                    });
                }
            }
        }
        self.after_loss(now, rng, &mut out);
        let active = !matches!(self.state, State::Off { .. } | State::Letting { .. });
        if active && now >= self.session_end {
            if self.holds_any() && self.server.is_some() && rng.random_bool(0.5) {
                let all: Vec<usize> = (0..self.slots.len()).collect();
                self.let_go(now, rng, &all, true, true, &mut out);
            } else {
                self.power_off(now, rng, &mut out);
            }
            return out;
        }
        match &mut self.state {
            State::Off { on_at } if now >= *on_at => {
                out.push(Act::Power(true));
                self.session_end = now + rng.random_range(600_000..14_400_000);
                self.start_solicit(now, rng, &mut out);
            }
            State::Idle { until } if now >= *until => self.start_solicit(now, rng, &mut out),
            State::Soliciting {
                collect_until,
                adverts,
                ..
            } if now >= *collect_until && !adverts.is_empty() => {
                let best = Self::best(adverts);
                self.start_request(now, rng, best, &mut out);
            }
            State::Soliciting {
                xid, first, next, rt, ..
            } if now >= *next => {
                let (x, f) = (*xid, *first);
                *rt = next_rt(rng, *rt, SOL_MAX_RT);
                *next = now + *rt;
                out.push(send(self.solicit_msg(x), f, now));
            }
            State::Requesting {
                xid,
                first,
                next,
                rt,
                count,
                advert,
            } if now >= *next => {
                if *count >= REQ_MAX_RC {
                    self.start_solicit(now, rng, &mut out);
                } else {
                    *count += 1;
                    *rt = next_rt(rng, *rt, REQ_MAX_RT);
                    *next = now + *rt;
                    let (x, f, a) = (*xid, *first, advert.clone());
                    out.push(send(self.request_msg(x, &a), f, now));
                }
            }
            State::Bound if now >= self.t1_at => {
                let rebind = now >= self.t2_at;
                self.start_extend(now, rng, rebind, &mut out);
            }
            State::Renewing { .. } if now >= self.t2_at => self.start_extend(now, rng, true, &mut out),
            State::Renewing {
                xid, first, next, rt, ..
            } if now >= *next => {
                let (x, f) = (*xid, *first);
                *rt = next_rt(rng, *rt, REN_MAX_RT);
                *next = now + *rt;
                out.push(send(self.extend_msg(MessageType::Renew, x), f, now));
            }
            State::Rebinding {
                xid, first, next, rt, ..
            } if now >= *next => {
                let (x, f) = (*xid, *first);
                *rt = next_rt(rng, *rt, REB_MAX_RT);
                *next = now + *rt;
                out.push(send(self.extend_msg(MessageType::Rebind, x), f, now));
            }
            State::Letting {
                msg,
                first,
                next,
                rt,
                count,
                then_off,
            } if now >= *next => {
                if *count >= REL_MAX_RC {
                    let off = *then_off;
                    self.finish_letting(now, rng, off, &mut out);
                } else {
                    *count += 1;
                    *rt = next_rt(rng, *rt, u64::MAX);
                    *next = now + *rt;
                    out.push(send(msg.clone(), *first, now));
                }
            }
            _ => {}
        }
        out
    }

    fn finish_letting(&mut self, now: u64, rng: &mut ChaCha8Rng, off: bool, out: &mut Vec<Act>) {
        if off {
            self.power_off(now, rng, out);
        } else if self.holds_any() {
            self.state = State::Bound;
        } else {
            self.server = None;
            self.state = State::Idle {
                until: now + rng.random_range(1_000..20_000),
            };
        }
    }

    fn best(adverts: &[Advert]) -> Advert {
        // Highest preference, then the most IAs served; the first received
        // wins ties (RFC 8415 §18.2.1, §18.2.9).
        let mut best = &adverts[0];
        for a in &adverts[1..] {
            if a.score() > best.score() {
                best = a;
            }
        }
        best.clone()
    }

    fn current_xid(&self) -> Option<u32> {
        match &self.state {
            State::Soliciting { xid, .. }
            | State::Requesting { xid, .. }
            | State::Renewing { xid, .. }
            | State::Rebinding { xid, .. } => Some(*xid),
            State::Letting { msg, .. } => Some(msg.transaction_id.get()),
            _ => None,
        }
    }

    fn set_timers(&mut self, first: u64, a: &[Option<IaAnswer>]) {
        let t = a
            .iter()
            .flatten()
            .filter(|x| x.leases.iter().any(|(_, v)| *v > 0))
            .map(|x| (x.t1, x.t2))
            .min();
        let shortest = self
            .held
            .iter()
            .flatten()
            .map(|h| h.valid_until_ms.saturating_sub(first))
            .min()
            .unwrap_or(0);
        let (t1, t2) = match t {
            Some((t1, t2)) if t1 > 0 && t2 >= t1 => (u64::from(t1) * 1000, u64::from(t2) * 1000),
            // T1 = 0: the client chooses (RFC 8415 §21.4).
            _ => (shortest / 2, shortest * 4 / 5),
        };
        self.t1_at = first + t1;
        self.t2_at = first + t2.max(t1);
    }

    /// A message from server `node` (an Advertise or a Reply).
    pub fn on_message(
        &mut self,
        now: u64,
        node: NodeId,
        m: &ClientMessage<'_>,
        rng: &mut ChaCha8Rng,
        decline_p: f64,
    ) -> Vec<Act> {
        let mut out = vec![];
        if self.quiet
            || m.options.client_id() != Some(&self.duid)
            || self.current_xid() != Some(m.transaction_id.get())
        {
            return out;
        }
        let Some(server) = m.options.server_id().map(|s| s.clone().into_owned()) else {
            return out;
        };
        let ans = answers(m, &self.slots);
        match (&mut self.state, m.msg_type) {
            (
                State::Soliciting {
                    adverts,
                    collect_until,
                    ..
                },
                MessageType::Advertise,
            ) => {
                let offers: Vec<Option<LeaseKey>> = ans
                    .iter()
                    .map(|a| {
                        a.as_ref()
                            .and_then(|a| a.leases.iter().find(|(_, v)| *v > 0).map(|(k, _)| *k))
                    })
                    .collect();
                if offers.iter().all(Option::is_none) {
                    // RFC 8415 §18.2.9: ignore an Advertise with nothing in it.
                    return out;
                }
                let preference = m
                    .options
                    .iter()
                    .find_map(|o| match o {
                        DhcpOption::Preference(p) => Some(*p),
                        _ => None,
                    })
                    .unwrap_or(0);
                adverts.push(Advert {
                    node,
                    server,
                    offers,
                    preference,
                });
                if now >= *collect_until {
                    let best = Self::best(adverts);
                    self.start_request(now, rng, best, &mut out);
                }
            }
            (State::Requesting { first, advert, .. }, MessageType::Reply) => {
                let first = *first;
                let node = advert.node;
                if m.options.status().is_some_and(|s| s.code != StatusCode::Success) {
                    self.start_solicit(now, rng, &mut out);
                    return out;
                }
                let mut fresh_na = None;
                for (ix, a) in ans.iter().enumerate() {
                    let (Some(a), Some(slot)) = (a, self.slots.get(ix).copied()) else {
                        continue;
                    };
                    if let Some(&(key, valid)) = a.leases.iter().find(|(_, v)| *v > 0) {
                        let before = self.held.get(ix).copied().flatten();
                        let extended = before.is_some_and(|h| h.key == key);
                        if let Some(old) = before.filter(|h| h.key != key) {
                            out.push(Act::Unhold {
                                key: old.key,
                                why: "replaced in a Request",
                            });
                        }
                        let h = Held {
                            key,
                            valid_until_ms: first + u64::from(valid) * 1000,
                            node,
                        };
                        if let Some(x) = self.held.get_mut(ix) {
                            *x = Some(h);
                        }
                        out.push(Act::Hold {
                            key,
                            iaid: slot.iaid,
                            valid_until_ms: h.valid_until_ms,
                            valid,
                            node,
                            extended,
                        });
                        if slot.kind == LeaseKind::Na && !extended && fresh_na.is_none() {
                            fresh_na = Some((ix, key));
                        }
                    }
                }
                self.server = Some((node, server));
                if !self.holds_any() {
                    self.server = None;
                    self.state = State::Idle {
                        until: now + rng.random_range(2_000..30_000),
                    };
                    return out;
                }
                self.set_timers(first, &ans);
                self.state = State::Bound;
                // Duplicate address detection fails now and then (RFC 8415
                // §18.2.8), and keeps failing for an address declined less
                // than ten minutes ago (the other host is still there).
                self.declined.retain(|(_, until)| *until > now);
                let again = fresh_na.is_some_and(|(_, k)| self.declined.iter().any(|(d, _)| *d == k));
                if let Some((ix, k)) = fresh_na.filter(|_| again || rng.random_bool(decline_p)) {
                    self.declined.push((k, now + 600_000));
                    self.let_go(now, rng, &[ix], false, false, &mut out);
                }
            }
            (State::Renewing { first, .. } | State::Rebinding { first, .. }, MessageType::Reply) => {
                let first = *first;
                if m.options.status().is_some_and(|s| s.code != StatusCode::Success) {
                    return out;
                }
                let mut extended_any = false;
                for (ix, a) in ans.iter().enumerate() {
                    let (Some(h), Some(a), Some(slot)) = (
                        self.held.get(ix).copied().flatten(),
                        a,
                        self.slots.get(ix).copied(),
                    ) else {
                        continue;
                    };
                    match a.leases.iter().find(|(k, _)| *k == h.key) {
                        Some(&(_, 0)) => {
                            if let Some(x) = self.held.get_mut(ix) {
                                *x = None;
                            }
                            out.push(Act::Unhold {
                                key: h.key,
                                why: "zero lifetime in a Reply",
                            });
                        }
                        Some(&(key, valid)) => {
                            let nh = Held {
                                key,
                                // The new lifetimes replace the old ones
                                // (RFC 8415 §18.2.10.1).
                                valid_until_ms: first + u64::from(valid) * 1000,
                                node,
                            };
                            if let Some(x) = self.held.get_mut(ix) {
                                *x = Some(nh);
                            }
                            extended_any = true;
                            out.push(Act::Hold {
                                key,
                                iaid: slot.iaid,
                                valid_until_ms: nh.valid_until_ms,
                                valid,
                                node,
                                extended: true,
                            });
                        }
                        // NoBinding, or nothing about this lease: the client
                        // keeps what it has until its lifetime ends.
                        None => {}
                    }
                }
                if extended_any {
                    self.server = Some((node, server));
                    self.set_timers(first, &ans);
                    self.state = State::Bound;
                }
                self.after_loss(now, rng, &mut out);
            }
            (State::Letting { then_off, .. }, MessageType::Reply) => {
                let off = *then_off;
                self.finish_letting(now, rng, off, &mut out);
            }
            _ => {}
        }
        out
    }

    /// The slots in which this client holds the lease at `key` (one, unless
    /// a server gave it twice).
    pub fn holding(&self, key: &LeaseKey) -> impl Iterator<Item = usize> + '_ {
        let key = *key;
        self.held
            .iter()
            .enumerate()
            .filter(move |(_, h)| h.is_some_and(|h| h.key == key))
            .map(|(ix, _)| ix)
    }
}
