//! DHCPv6 server message processing (RFC 8415), sans-IO.
//!
//! [`Dhcpv6Server::handle`] takes one received datagram (bytes, source,
//! arrival interface, whether it was multicast) and `now`, and returns an
//! [`Outcome`]: either why it is discarded, or a reply with its destination
//! and the lease records it changed. The caller must make those records
//! durable before sending the reply (RFC 7031 §2 "stable storage";
//! [`crate::node::Node`] does): the in-memory [`LeaseDb`] already holds
//! them, so later requests see them.
//!
//! # Where each part of RFC 8415 lives
//!
//! | file | RFC 8415 |
//! |---|---|
//! | `process.rs` | one datagram: decode, dispatch by message type, encode before writing |
//! | `validate.rs` | §16: messages a server discards |
//! | `link.rs` | §13.1: the client's link and subnet |
//! | `relay.rs` | §19: Relay-forward in, Relay-reply out |
//! | `ia.rs` | §21.4, §21.5, §21.21: the IAs of a message, caps, lifetimes, T1/T2 |
//! | `request.rs` | §18.3.1 Solicit, §18.3.2 Request (and Rapid Commit, §21.14) |
//! | `confirm.rs` | §18.3.3 Confirm |
//! | `renew.rs` | §18.3.4 Renew, §18.3.5 Rebind |
//! | `information.rs` | §18.3.6 Information-request |
//! | `release.rs` | §18.3.7 Release, §18.3.8 Decline |
//! | `options.rs` | §21.7: configuration options as the client's ORO asks |

mod confirm;
mod ia;
mod information;
mod link;
mod options;
mod process;
mod relay;
mod release;
mod renew;
mod request;
mod validate;

pub use ia::{MAX_IAS_ANSWERED, MAX_IAS_SERVED, MAX_LEASES_PER_IA};

use crate::config::ClientIdentifier;
use crate::lease::{Lease, LeaseDb, LeaseKey, LeaseState};
use crate::net::Ipv6Prefix;
use crate::policy::{LeasePolicy, Retire, Standalone, StateTimeout};
use crate::time::UnixTime;
use duet_wire::{DecodeError, DhcpOption, Duid, MessageType, RelayMessage};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

/// UDP port servers and relays listen on (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;
/// UDP port clients listen on.
pub const CLIENT_PORT: u16 = 546;

/// One link's configuration as the processing needs it.
#[derive(Debug, Clone)]
pub struct Subnet {
    /// The link's prefix: addresses appropriate for the link (§13.1).
    pub prefix: Ipv6Prefix,
    /// Interface whose on-link (directly received) clients belong here.
    pub interface: Option<String>,
    /// Address ranges (inclusive).
    pub ranges: Vec<(Ipv6Addr, Ipv6Addr)>,
    /// Prefix pools: pool prefix and delegated length.
    pub pd_pools: Vec<(Ipv6Prefix, u8)>,
    /// Preferred lifetime given to clients.
    pub preferred_lifetime: Duration,
    /// Valid lifetime given to clients.
    pub valid_lifetime: Duration,
    /// T1.
    pub renew_time: Duration,
    /// T2.
    pub rebind_time: Duration,
    /// The configuration options this subnet's clients get (its own, then
    /// the top-level ones it does not set; `config::options::merge`).
    pub options: Vec<crate::config::OptionConfig>,
    /// Host reservations: addresses and prefixes inside this subnet's
    /// pools that only their client gets, and that client's options
    /// (already merged with [`Subnet::options`]).
    pub reservations: Vec<crate::config::ReservationConfig>,
    /// A relay Interface-Id (RFC 8415 §21.18) that selects this subnet.
    pub interface_id: Option<Vec<u8>>,
    /// OPTION_PREFERENCE value for Advertise (§21.8); 0 = omit.
    pub preference: u8,
    /// Whether Solicit with Rapid Commit is answered with a committed Reply.
    pub rapid_commit: bool,
    /// The failover relationship sharing this subnet's pools.
    pub relationship: Option<usize>,
}

/// Server-wide processing settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How long declined addresses are withheld (standalone subnets).
    pub decline_probation: Duration,
    /// OPTION_INFORMATION_REFRESH_TIME in replies to Information-request
    /// that ask for it (§21.23; never below IRT_MINIMUM, 600 s).
    pub information_refresh_time: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            decline_probation: Duration::from_secs(86_400),
            information_refresh_time: Duration::from_secs(86_400),
        }
    }
}

/// A received datagram.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The UDP payload.
    pub payload: &'a [u8],
    /// IP source address.
    pub source: Ipv6Addr,
    /// Arrival interface name, if known.
    pub interface: Option<&'a str>,
    /// Whether the IP destination was a multicast address.
    pub multicast: bool,
}

/// Why a datagram is discarded without an answer. Each is counted by the
/// daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discard {
    /// Not a well-formed DHCPv6 message.
    Malformed(DecodeError),
    /// A message type a server never processes (Advertise, Reply,
    /// Reconfigure, Relay-reply, unknown types: §16).
    NotForServer(MessageType),
    /// Fails the validation rules of §16 for its type.
    Invalid(&'static str),
    /// Carries a Server Identifier that is not ours (§16).
    NotOurServerId,
    /// No configured subnet matches the client's link (§13.1).
    NoSubnet,
    /// Sent by unicast where that is never allowed (§16, §18.4).
    Unicast,
    /// The failover state says not to answer (RFC 8156 §8.1).
    Unresponsive,
    /// Nothing to answer (Confirm without addresses, Rebind without any
    /// known binding: §18.3.3, §18.3.5).
    NothingToSay,
    /// The reply would not fit in a datagram or a Relay Message option
    /// (relays echoing huge Interface-Ids); nothing was changed.
    ReplyTooLarge,
    /// The server is starting: its new DUID is not durable yet.
    Starting,
    /// The lease store failed: nothing is answered without stable storage.
    StoreFailed,
}

impl Discard {
    /// A short stable name, for counters and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Discard::Malformed(_) => "malformed",
            Discard::NotForServer(_) => "not-for-server",
            Discard::Invalid(_) => "invalid",
            Discard::NotOurServerId => "not-our-server-id",
            Discard::NoSubnet => "no-subnet",
            Discard::Unicast => "unicast",
            Discard::Unresponsive => "unresponsive",
            Discard::NothingToSay => "nothing-to-say",
            Discard::ReplyTooLarge => "reply-too-large",
            Discard::Starting => "starting",
            Discard::StoreFailed => "store-failed",
        }
    }
}

impl fmt::Display for Discard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discard::Malformed(e) => write!(f, "malformed: {e}"),
            Discard::NotForServer(t) => write!(f, "{t} is not processed by servers"),
            Discard::Invalid(why) => write!(f, "invalid message: {why}"),
            Discard::NotOurServerId => f.write_str("server identifier is not ours"),
            Discard::NoSubnet => f.write_str("no subnet for the client's link"),
            Discard::Unicast => f.write_str("unicast not allowed for this message"),
            Discard::Unresponsive => f.write_str("failover state is unresponsive"),
            Discard::NothingToSay => f.write_str("nothing to answer"),
            Discard::ReplyTooLarge => f.write_str("the reply would not fit in a datagram"),
            Discard::Starting => f.write_str("starting: the server DUID is not durable yet"),
            Discard::StoreFailed => f.write_str("the lease store failed"),
        }
    }
}

/// A reply to send once `changes` are durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The encoded message (Advertise, Reply, or Relay-reply).
    pub bytes: Vec<u8>,
    /// Destination address: the datagram's source (§18.3.10).
    pub to: Ipv6Addr,
    /// Destination port: 546 for clients, 547 for relays.
    pub port: u16,
    /// Lease records this message changed, as they now are.
    pub changes: Vec<Lease>,
}

/// What to do with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Discard it (and count why).
    Dropped(Discard),
    /// Make the changes durable, then send the reply.
    Reply(Reply),
}

/// Where a server answers only messages addressed to it (see
/// [`Dhcpv6Server::quiet_links`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuietLinks {
    /// Interfaces whose on-link clients (link-local sources) belong to a
    /// quiet subnet.
    pub interfaces: Vec<String>,
    /// Prefixes of quiet subnets that no responsive subnet overlaps: a
    /// client whose source address is in one belongs to a quiet subnet.
    pub prefixes: Vec<Ipv6Prefix>,
}

/// The DHCPv6 side of a duet server: subnets, the lease database and the
/// processing rules. Failover decisions come in through a [`LeasePolicy`].
#[derive(Debug)]
pub struct Dhcpv6Server {
    duid: Duid<'static>,
    subnets: Vec<SubnetState>,
    db: LeaseDb,
    rng: ChaCha8Rng,
    options: ServerOptions,
    /// Every reserved address and prefix: its (subnet, reservation).
    reserved_owner: HashMap<LeaseKey, (usize, usize)>,
}

/// OPTION_CLIENT_LINKLAYER_ADDR (RFC 6939): link-layer type (2 bytes),
/// then the client's link-layer address, added by a relay.
const CLIENT_LINKLAYER_ADDR: u16 = 79;

#[derive(Debug)]
struct SubnetState {
    cfg: Subnet,
    /// Indices of this subnet's ranges / pools in the lease database.
    ranges: Vec<usize>,
    pd_pools: Vec<usize>,
    counters: SubnetCounters,
    /// Reservation index by client identifier.
    reserved_for: HashMap<ClientIdentifier, usize>,
}

/// What one subnet's clients sent and got, since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubnetCounters {
    /// Client messages attributed to the subnet (RFC 8415 §13.1), before
    /// the failover state's say: a quiet link's kernel filter discards
    /// some before they get here.
    pub seen: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Of those answered, answered only as a rescue (RFC 7031 §4.7).
    pub rescued: u64,
    /// When a client of the subnet was last answered.
    pub last_answered: Option<UnixTime>,
}

impl Dhcpv6Server {
    /// A server with an empty lease database. `seed` drives address
    /// selection (the daemon seeds it from the OS; tests and the simulator
    /// from their own seed).
    pub fn new(duid: Duid<'static>, subnets: Vec<Subnet>, options: ServerOptions, seed: u64) -> Dhcpv6Server {
        let mut ranges = Vec::new();
        let mut pd_pools = Vec::new();
        let subnets = subnets
            .into_iter()
            .map(|cfg| {
                let r = cfg
                    .ranges
                    .iter()
                    .map(|r| {
                        ranges.push(*r);
                        ranges.len().saturating_sub(1)
                    })
                    .collect();
                let p = cfg
                    .pd_pools
                    .iter()
                    .map(|p| {
                        pd_pools.push(*p);
                        pd_pools.len().saturating_sub(1)
                    })
                    .collect();
                let reserved_for = cfg
                    .reservations
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.client.clone(), i))
                    .collect();
                SubnetState {
                    cfg,
                    ranges: r,
                    pd_pools: p,
                    counters: SubnetCounters::default(),
                    reserved_for,
                }
            })
            .collect::<Vec<_>>();
        let mut db = LeaseDb::new(&ranges, &pd_pools);
        let mut owners = HashMap::new();
        for (si, s) in subnets.iter().enumerate() {
            for (ri, r) in s.cfg.reservations.iter().enumerate() {
                let keys = r
                    .addresses
                    .iter()
                    .map(|a| LeaseKey::address(*a))
                    .chain(r.prefixes.iter().map(|p| LeaseKey::prefix(*p)));
                for k in keys {
                    owners.insert(k, (si, ri));
                }
            }
        }
        db.reserve(owners.keys().copied());
        Dhcpv6Server {
            duid,
            subnets,
            db,
            rng: ChaCha8Rng::seed_from_u64(seed),
            options,
            reserved_owner: owners,
        }
    }

    /// Whether `key` is reserved, for a client other than this message's.
    fn reserved_for_another(&self, ctx: &process::Ctx<'_, '_>, key: &LeaseKey) -> bool {
        self.reserved_owner
            .get(key)
            .is_some_and(|&(s, r)| ctx.subnet != Some(s) || ctx.reservation != Some(r))
    }

    /// Reserved addresses and prefixes that a lease in the table binds to
    /// another client (granted before the reservation was configured): the
    /// lease, and the reservation's client. Each is resolved as it goes:
    /// the holder's next Renew or Rebind gets it with lifetimes 0 and the
    /// owner gets it once that lease has ended (docs/operations.md).
    pub fn reservation_conflicts(&self, now: UnixTime) -> Vec<(&Lease, &ClientIdentifier)> {
        let mut out = Vec::new();
        for (key, &(s, r)) in &self.reserved_owner {
            let (Some(lease), Some(res)) = (
                self.db.get(key),
                self.subnets.get(s).and_then(|s| s.cfg.reservations.get(r)),
            ) else {
                continue;
            };
            let owner = lease.binding.as_ref().is_some_and(|b| match &res.client {
                ClientIdentifier::Duid(d) => &b.duid == d,
                // A link-layer reservation: the holder's DUID-LL/LLT says.
                ClientIdentifier::HwAddress(hw) => b.duid.ends_with(hw),
            });
            if lease.state == LeaseState::Active && lease.active_end() > now && !owner {
                out.push((lease, &res.client));
            }
        }
        out.sort_by_key(|(l, _)| l.key);
        out
    }

    /// The client's reserved leases of `kind`, in configuration order.
    fn reserved_leases(&self, ctx: &process::Ctx<'_, '_>, kind: crate::lease::LeaseKind) -> Vec<LeaseKey> {
        let Some(r) = ctx
            .reservation
            .and_then(|i| self.subnet(ctx.subnet)?.cfg.reservations.get(i))
        else {
            return Vec::new();
        };
        match kind {
            crate::lease::LeaseKind::Na => r.addresses.iter().map(|a| LeaseKey::address(*a)).collect(),
            crate::lease::LeaseKind::Pd => r.prefixes.iter().map(|p| LeaseKey::prefix(*p)).collect(),
        }
    }

    /// The reservation of subnet `subnet` for this client: by DUID, else by
    /// link-layer address — from a DUID-LLT or DUID-LL (RFC 8415 §11.2,
    /// §11.4), or from a relay's Client Link-Layer Address option (RFC
    /// 6939).
    fn reservation_for(
        &self,
        subnet: Option<usize>,
        duid: &[u8],
        relays: &[&RelayMessage<'_>],
    ) -> Option<usize> {
        let s = self.subnet(subnet)?;
        if s.reserved_for.is_empty() {
            return None;
        }
        if let Some(i) = s.reserved_for.get(&ClientIdentifier::Duid(duid.to_vec())) {
            return Some(*i);
        }
        let from_duid = match duid {
            [0, 1, _, _, _, _, _, _, ll @ ..] | [0, 3, _, _, ll @ ..] if !ll.is_empty() => Some(ll),
            _ => None,
        };
        let from_relay = relays.iter().find_map(|r| {
            r.options.iter().find_map(|o| match o {
                DhcpOption::Unknown { code, data } if *code == CLIENT_LINKLAYER_ADDR => data.get(2..),
                _ => None,
            })
        });
        from_duid
            .into_iter()
            .chain(from_relay)
            .find_map(|ll| s.reserved_for.get(&ClientIdentifier::HwAddress(ll.to_vec())))
            .copied()
    }

    /// Subnet `i`, if any.
    fn subnet(&self, i: Option<usize>) -> Option<&SubnetState> {
        i.and_then(|i| self.subnets.get(i))
    }

    /// This server's DUID.
    pub fn duid(&self) -> &Duid<'static> {
        &self.duid
    }

    /// The lease database.
    pub fn db(&self) -> &LeaseDb {
        &self.db
    }

    /// The lease database, for the failover engine and for loading.
    pub fn db_mut(&mut self) -> &mut LeaseDb {
        &mut self.db
    }

    /// The configured subnets.
    pub fn subnets(&self) -> impl Iterator<Item = &Subnet> {
        self.subnets.iter().map(|s| &s.cfg)
    }

    /// Each subnet's counters, in configuration order.
    pub fn subnet_counters(&self) -> impl Iterator<Item = (&Subnet, SubnetCounters)> {
        self.subnets.iter().map(|s| (&s.cfg, s.counters))
    }

    /// Lease-database indices of the address ranges and prefix pools of the
    /// subnets under relationship `rel`.
    pub fn pools_of_relationship(&self, rel: usize) -> (Vec<usize>, Vec<usize>) {
        let mut ranges = Vec::new();
        let mut pd = Vec::new();
        for s in self.subnets.iter().filter(|s| s.cfg.relationship == Some(rel)) {
            ranges.extend(&s.ranges);
            pd.extend(&s.pd_pools);
        }
        (ranges, pd)
    }

    /// Where this server, as the policy stands now, answers a client only
    /// when the message carries this server's DUID: the subnet the message
    /// belongs to (RFC 8415 §13.1, see `select_subnet`) is under a
    /// relationship that is not
    /// [`Responsive`](crate::policy::Responsiveness::Responsive) — a
    /// secondary in NORMAL, or any server in a state that answers no one.
    ///
    /// The daemon uses this to let the kernel discard there the client
    /// messages that could not get an answer (Solicit, Confirm, Rebind, and
    /// messages for another server), so that the partner of an active server
    /// does not wake up for every client datagram on the link.
    pub fn quiet_links(&self, policy: &dyn LeasePolicy) -> QuietLinks {
        let quiet = |s: &SubnetState| {
            s.cfg
                .relationship
                .is_some_and(|r| policy.responsiveness(r) != crate::policy::Responsiveness::Responsive)
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut out = QuietLinks::default();
        for s in &self.subnets {
            // A link-local source: the interface's first subnet.
            if let Some(iface) = s.cfg.interface.as_deref() {
                if !seen.contains(&iface) {
                    seen.push(iface);
                    if quiet(s) {
                        out.interfaces.push(iface.to_string());
                    }
                }
            }
            // A global source: a subnet containing it, so only where no
            // responsive subnet overlaps.
            if quiet(s)
                && !self
                    .subnets
                    .iter()
                    .any(|o| !quiet(o) && o.cfg.prefix.overlaps(&s.cfg.prefix))
            {
                out.prefixes.push(s.cfg.prefix);
            }
        }
        out
    }

    /// The relationship whose pools hold `key`, if any.
    pub fn relationship_of(&self, key: &LeaseKey) -> Option<usize> {
        let idx = match key.kind {
            crate::lease::LeaseKind::Na => self.db.range_of(key.prefix.addr()),
            crate::lease::LeaseKind::Pd => self.db.pd_pool_of(&key.prefix),
        }?;
        self.subnets
            .iter()
            .find(|s| match key.kind {
                crate::lease::LeaseKind::Na => s.ranges.contains(&idx),
                crate::lease::LeaseKind::Pd => s.pd_pools.contains(&idx),
            })
            .and_then(|s| s.cfg.relationship)
    }

    /// Restores lease records read from the store at start. Records for
    /// resources no longer in any pool are returned, not loaded.
    pub fn load(&mut self, leases: impl IntoIterator<Item = Lease>) -> Vec<Lease> {
        let mut orphans = Vec::new();
        for lease in leases {
            if self.db.upsert(lease.clone()).is_err() {
                orphans.push(lease);
            }
        }
        orphans
    }

    /// When [`Dhcpv6Server::handle_timeout`] next has work.
    pub fn next_timeout(&self) -> Option<UnixTime> {
        self.db.next_timer()
    }

    /// Moves leases whose time has come to their next state (RFC 8156 §7.2:
    /// ACTIVE → EXPIRED (failover) or FREE (standalone) at the end of the
    /// valid lifetime; other timed states as the policy says). Returns the
    /// changed records (to persist), at most `limit` per call.
    pub fn handle_timeout(&mut self, now: UnixTime, policy: &dyn LeasePolicy, limit: usize) -> Vec<Lease> {
        let standalone = Standalone {
            decline_probation: self.options.decline_probation,
        };
        let mut changed = Vec::new();
        for key in self.db.due(now, limit) {
            let Some(mut lease) = self.db.get(&key).cloned() else {
                continue;
            };
            // The change happened when it was due, not when a server that
            // was down got round to it: conflict resolution compares these
            // times with the partner's (a late expiry stamped with the
            // restart time would outrank the partner's newer allocation;
            // found by duet-sim, seed 5532).
            let due = lease.next_event().map_or(now, |t| t.min(now));
            let rel = self.relationship_of(&key);
            let (policy, r): (&dyn LeasePolicy, usize) = match rel {
                Some(r) => (policy, r),
                None => (&standalone, 0),
            };
            let step = match lease.state {
                LeaseState::Active => {
                    let (state, exp) = policy.retire(r, Retire::Expired, now);
                    StateTimeout::Change(state, exp)
                }
                _ => policy.state_timeout(r, &lease, now),
            };
            match step {
                StateTimeout::Change(state, state_expiration) => {
                    lease.state = state;
                    lease.start_time_of_state = due;
                    lease.state_expiration = state_expiration;
                    lease.failover.pending_update |= rel.is_some();
                }
                // Only the timer moves: nothing to persist.
                StateTimeout::Later(t) => {
                    lease.state_expiration = Some(t.max(now.saturating_add(Duration::from_secs(1))))
                }
                StateTimeout::Never => lease.state_expiration = None,
            }
            let persist = matches!(step, StateTimeout::Change(..));
            if self.db.upsert(lease.clone()).is_ok() && persist {
                changed.push(lease);
            }
        }
        changed
    }

    /// Processes one datagram (see the module documentation).
    pub fn handle(&mut self, now: UnixTime, incoming: Incoming<'_>, policy: &dyn LeasePolicy) -> Outcome {
        process::handle(self, now, incoming, policy)
    }

    fn random(&mut self) -> u128 {
        let hi = u128::from(self.rng.next_u64());
        let lo = u128::from(self.rng.next_u64());
        (hi << 64) | lo
    }
}

#[cfg(test)]
mod tests;
