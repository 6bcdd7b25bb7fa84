//! Per-message processing (RFC 8415 §16 validation, §18.3 server behaviour).

use super::relay;
use super::{Dhcpv6Server, Drop, Incoming, Outcome, Reply, Subnet, CLIENT_PORT, SERVER_PORT};
use crate::lease::{BindingKey, Lease, LeaseKey, LeaseKind, LeaseState};
use crate::net::Ipv6Prefix;
use crate::policy::{LeasePolicy, Responsiveness, Retire, Standalone};
use crate::time::{wire_secs, UnixTime};
use duet_wire::option::{code, IaAddr, IaNa, IaPd, IaPrefix, IaTa, Status};
use duet_wire::{
    ClientMessage, DhcpOption, Duid, Message, MessageType, OptionsExt, RelayMessage, StatusCode,
};
use std::net::Ipv6Addr;
use std::time::Duration;

/// RFC 8156 §1: under failover, no new lease shorter than this.
const MIN_FAILOVER_LEASE: Duration = Duration::from_secs(30);
/// RFC 8415 §21.23 IRT_MINIMUM.
const IRT_MINIMUM: Duration = Duration::from_secs(600);

/// IAs of one message that are acted on (allocated, extended, released).
/// RFC 8415 sets no limit; a client asks for one IA per interface or
/// purpose, a handful at most. The IAs after these are answered with a
/// status code and no lease: NoAddrsAvail / NoPrefixAvail to a Solicit or
/// Request (§18.3.1, §18.3.2), NoBinding to a Renew, Rebind, Release or
/// Decline (§18.3.4, §18.3.5, §18.3.7, §18.3.8).
pub const MAX_IAS_SERVED: usize = 32;
/// IAs of one message that appear in the reply at all: past this, an IA is
/// left out, so that no message can ask for a reply larger than a datagram
/// (a 64 KiB message holds ~4,000 empty IAs; their status-only answers
/// would not fit in one).
pub const MAX_IAS_ANSWERED: usize = 256;
/// Addresses or prefixes of one IA that are considered: hints in a Solicit
/// or Request, the leases listed in a Renew, Rebind, Release or Decline,
/// and the leases of one binding extended by a Renew or Rebind.
pub const MAX_LEASES_PER_IA: usize = 8;
/// The largest UDP payload over IPv6 without jumbograms (65,535 − 8).
const MAX_DATAGRAM: usize = 65_527;

/// The reply, and the lease records to write once it is known to encode
/// (not yet in the database).
type Processed = Result<(ClientMessage<'static>, Vec<Lease>), Drop>;

pub(super) fn handle(
    srv: &mut Dhcpv6Server,
    now: UnixTime,
    inc: Incoming<'_>,
    policy: &dyn LeasePolicy,
) -> Outcome {
    let msg = match Message::parse(inc.payload) {
        Ok(m) => m,
        Err(e) => return Outcome::Dropped(Drop::Malformed(e)),
    };
    let Some((client, relays)) = msg.unwrap_relays() else {
        return Outcome::Dropped(Drop::Invalid("relay message without a relayed message"));
    };
    if !relay::all_forwards(&relays) {
        return Outcome::Dropped(Drop::NotForServer(MessageType::RelayRepl));
    }
    match process(srv, now, &inc, client, &relays, policy) {
        Err(drop) => Outcome::Dropped(drop),
        Ok((reply, planned)) => {
            let relayed = !relays.is_empty();
            let out = if relayed {
                relay::wrap(reply, &relays)
            } else {
                Message::Client(reply)
            };
            // The reply is encoded before any lease changes: a reply that
            // cannot be sent leaves no trace in the database (with the caps
            // above only relays echoing huge Interface-Ids get here).
            let bytes = match out.to_vec() {
                Ok(b) if b.len() <= MAX_DATAGRAM => b,
                _ => return Outcome::Dropped(Drop::ReplyTooLarge),
            };
            // Planned records are for resources of our pools, and one
            // message plans each at most once, so the upserts succeed.
            let changes = planned
                .into_iter()
                .filter(|l| srv.db.upsert(l.clone()).is_ok())
                .collect();
            Outcome::Reply(Reply {
                bytes,
                to: inc.source,
                port: if relayed { SERVER_PORT } else { CLIENT_PORT },
                changes,
            })
        }
    }
}

/// Everything one message's processing needs.
struct Ctx<'p, 'm> {
    now: UnixTime,
    client: &'m ClientMessage<'m>,
    duid: Vec<u8>,
    subnet: Option<usize>,
    rel: Option<usize>,
    policy: &'p dyn LeasePolicy,
}

fn process(
    srv: &mut Dhcpv6Server,
    now: UnixTime,
    inc: &Incoming<'_>,
    client: &ClientMessage<'_>,
    relays: &[&RelayMessage<'_>],
    policy: &dyn LeasePolicy,
) -> Processed {
    use MessageType as T;
    let t = client.msg_type;
    if !matches!(
        t,
        T::Solicit
            | T::Request
            | T::Confirm
            | T::Renew
            | T::Rebind
            | T::Release
            | T::Decline
            | T::InformationRequest
    ) {
        return Err(Drop::NotForServer(t));
    }
    validate(srv.duid(), client)?;
    let direct_unicast = relays.is_empty() && !inc.multicast;
    if direct_unicast {
        match t {
            // §16: never legitimate by unicast; Information-request too
            // (digest D1: we never hand out OPTION_UNICAST).
            T::Solicit | T::Confirm | T::Rebind | T::InformationRequest => return Err(Drop::Unicast),
            // §18.4: tell the client to use multicast.
            _ => return Ok((use_multicast(srv.duid(), client), Vec::new())),
        }
    }
    let subnet = select_subnet(srv, inc, relays);
    let rel = subnet
        .and_then(|i| srv.subnets.get(i))
        .and_then(|s| s.cfg.relationship);
    if let Some(r) = rel {
        match policy.responsiveness(r) {
            Responsiveness::Responsive => {}
            Responsiveness::RenewResponsive if client.options.server_id().is_some() => {}
            _ => return Err(Drop::Unresponsive),
        }
    }
    let ctx = Ctx {
        now,
        client,
        duid: client
            .options
            .client_id()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default(),
        subnet,
        rel,
        policy,
    };
    match t {
        T::InformationRequest => Ok((information_reply(srv, &ctx), Vec::new())),
        T::Confirm => confirm(srv, &ctx),
        _ if ctx.subnet.is_none() => Err(Drop::NoSubnet),
        T::Solicit => {
            let rapid = client.options.find(code::RAPID_COMMIT).is_some()
                && ctx
                    .subnet
                    .and_then(|i| srv.subnets.get(i))
                    .is_some_and(|s| s.cfg.rapid_commit);
            assign(srv, &ctx, if rapid { Mode::RapidCommit } else { Mode::Advertise })
        }
        T::Request => assign(srv, &ctx, Mode::Request),
        T::Renew => extend(srv, &ctx, false),
        T::Rebind => extend(srv, &ctx, true),
        T::Release => retire(srv, &ctx, Retire::Released),
        T::Decline => retire(srv, &ctx, Retire::Declined),
        _ => Err(Drop::NotForServer(t)),
    }
}

/// The discard rules of RFC 8415 §16.2–§16.12.
fn validate(our: &Duid<'_>, m: &ClientMessage<'_>) -> Result<(), Drop> {
    use MessageType as T;
    let client_id = m.options.client_id().is_some();
    let server_id = m.options.server_id();
    let has_ia = m
        .options
        .iter()
        .any(|o| matches!(o, DhcpOption::IaNa(_) | DhcpOption::IaTa(_) | DhcpOption::IaPd(_)));
    match m.msg_type {
        T::Solicit | T::Confirm | T::Rebind => {
            if !client_id {
                return Err(Drop::Invalid("no Client Identifier"));
            }
            if server_id.is_some() {
                return Err(Drop::Invalid("Server Identifier not allowed in this message"));
            }
        }
        T::Request | T::Renew | T::Release | T::Decline => {
            if !client_id {
                return Err(Drop::Invalid("no Client Identifier"));
            }
            match server_id {
                None => return Err(Drop::Invalid("no Server Identifier")),
                Some(s) if s != our => return Err(Drop::NotOurServerId),
                Some(_) => {}
            }
        }
        T::InformationRequest => {
            if has_ia {
                return Err(Drop::Invalid("IA option in Information-request"));
            }
            if server_id.is_some_and(|s| s != our) {
                return Err(Drop::NotOurServerId);
            }
        }
        _ => {}
    }
    Ok(())
}

/// §13.1: the innermost non-zero relay link-address names the link; a
/// direct client's link is its arrival interface (or, for a global source
/// address, the subnet holding it).
fn select_subnet(srv: &Dhcpv6Server, inc: &Incoming<'_>, relays: &[&RelayMessage<'_>]) -> Option<usize> {
    let by_addr = |a: Ipv6Addr| srv.subnets.iter().position(|s| s.cfg.prefix.contains(a));
    if !relays.is_empty() {
        // Try levels from the innermost outwards.
        return relays
            .iter()
            .rev()
            .map(|r| r.link_address)
            .filter(|a| !a.is_unspecified())
            .find_map(by_addr)
            .or_else(|| relay::client_link(relays).and_then(by_addr));
    }
    let link_local = (u128::from(inc.source) >> 118) == 0x3fa; // fe80::/10
    if !link_local {
        if let Some(i) = by_addr(inc.source) {
            return Some(i);
        }
    }
    let iface = inc.interface?;
    srv.subnets
        .iter()
        .position(|s| s.cfg.interface.as_deref() == Some(iface))
}

fn reply_base(
    srv: &Dhcpv6Server,
    client: &ClientMessage<'_>,
    msg_type: MessageType,
) -> ClientMessage<'static> {
    let mut reply = ClientMessage::new(msg_type, client.transaction_id);
    reply.options.push(DhcpOption::ServerId(srv.duid().clone()));
    if let Some(c) = client.options.client_id() {
        reply.options.push(DhcpOption::ClientId(c.clone().into_owned()));
    }
    reply
}

fn status(code: StatusCode, text: &'static str) -> DhcpOption<'static> {
    DhcpOption::StatusCode(Status::new(code, text))
}

/// §18.4: Reply with only UseMulticast, Server ID and Client ID.
fn use_multicast(our: &Duid<'static>, client: &ClientMessage<'_>) -> ClientMessage<'static> {
    let mut reply = ClientMessage::new(MessageType::Reply, client.transaction_id);
    reply.options.push(DhcpOption::ServerId(our.clone()));
    if let Some(c) = client.options.client_id() {
        reply.options.push(DhcpOption::ClientId(c.clone().into_owned()));
    }
    reply
        .options
        .push(status(StatusCode::UseMulticast, "use multicast"));
    reply
}

fn requested(client: &ClientMessage<'_>) -> Vec<u16> {
    client
        .options
        .iter()
        .find_map(|o| match o {
            DhcpOption::Oro(codes) => Some(codes.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Configuration options the client asked for in its ORO (digest §4.2:
/// only requested options).
fn add_config_options(
    reply: &mut ClientMessage<'static>,
    client: &ClientMessage<'_>,
    subnet: Option<&Subnet>,
) {
    let oro = requested(client);
    let Some(s) = subnet else { return };
    if oro.contains(&code::DNS_SERVERS) && !s.dns_servers.is_empty() {
        reply.options.push(DhcpOption::DnsServers(s.dns_servers.clone()));
    }
    if oro.contains(&code::DOMAIN_LIST) && !s.domain_search.is_empty() {
        reply
            .options
            .push(DhcpOption::DomainList(s.domain_search.clone()));
    }
}

/// §18.3.6.
fn information_reply(srv: &Dhcpv6Server, ctx: &Ctx<'_, '_>) -> ClientMessage<'static> {
    let mut reply = reply_base(srv, ctx.client, MessageType::Reply);
    add_config_options(
        &mut reply,
        ctx.client,
        ctx.subnet.and_then(|i| srv.subnets.get(i)).map(|s| &s.cfg),
    );
    if requested(ctx.client).contains(&code::INFORMATION_REFRESH_TIME) {
        let irt = srv.options.information_refresh_time.max(IRT_MINIMUM);
        reply
            .options
            .push(DhcpOption::InformationRefreshTime(wire_secs(irt)));
    }
    reply
}

/// §18.3.3: Success if every address is on the link, NotOnLink if any is
/// not; no reply without addresses or without a known link.
fn confirm(srv: &Dhcpv6Server, ctx: &Ctx<'_, '_>) -> Processed {
    let subnet = ctx
        .subnet
        .and_then(|i| srv.subnets.get(i))
        .ok_or(Drop::NothingToSay)?;
    let addrs: Vec<Ipv6Addr> = ctx
        .client
        .options
        .iter()
        .flat_map(|o| match o {
            DhcpOption::IaNa(ia) => ia.options.as_slice(),
            DhcpOption::IaTa(ia) => ia.options.as_slice(),
            _ => &[],
        })
        .filter_map(|o| match o {
            DhcpOption::IaAddr(a) => Some(a.address),
            _ => None,
        })
        .collect();
    if addrs.is_empty() {
        return Err(Drop::NothingToSay);
    }
    let mut reply = reply_base(srv, ctx.client, MessageType::Reply);
    if addrs.iter().all(|a| subnet.cfg.prefix.contains(*a)) {
        reply
            .options
            .push(status(StatusCode::Success, "all addresses on link"));
    } else {
        reply.options.push(status(StatusCode::NotOnLink, "not on link"));
    }
    Ok((reply, Vec::new()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Advertise,
    RapidCommit,
    Request,
}

/// One lease in a reply IA.
#[derive(Debug, Clone, Copy)]
struct Grant {
    key: LeaseKey,
    preferred_until: UnixTime,
    valid_until: UnixTime,
}

/// One IA of the reply.
#[derive(Debug)]
struct IaReply {
    kind: IaType,
    iaid: u32,
    grants: Vec<Grant>,
    status: Option<(StatusCode, &'static str)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IaType {
    Na,
    Ta,
    Pd,
}

/// The IAs of a client message with their hints.
struct ClientIa {
    kind: IaType,
    iaid: u32,
    addrs: Vec<Ipv6Addr>,
    prefixes: Vec<(u8, Ipv6Addr)>,
}

/// The client's IAs in message order, at most [`MAX_IAS_ANSWERED`], each
/// with at most [`MAX_LEASES_PER_IA`] addresses or prefixes. An IAID is
/// unique among a client's IAs of one type (RFC 8415 §21.4, §21.5, §21.21):
/// a repeated one is ignored, its first occurrence answered.
fn client_ias(client: &ClientMessage<'_>) -> Vec<ClientIa> {
    let addrs = |opts: &[DhcpOption<'_>]| {
        opts.iter()
            .filter_map(|o| match o {
                DhcpOption::IaAddr(a) => Some(a.address),
                _ => None,
            })
            .take(MAX_LEASES_PER_IA)
            .collect()
    };
    let ias = client.options.iter().filter_map(|o| match o {
        DhcpOption::IaNa(ia) => Some(ClientIa {
            kind: IaType::Na,
            iaid: ia.iaid,
            addrs: addrs(&ia.options),
            prefixes: vec![],
        }),
        DhcpOption::IaTa(ia) => Some(ClientIa {
            kind: IaType::Ta,
            iaid: ia.iaid,
            addrs: addrs(&ia.options),
            prefixes: vec![],
        }),
        DhcpOption::IaPd(ia) => Some(ClientIa {
            kind: IaType::Pd,
            iaid: ia.iaid,
            addrs: vec![],
            prefixes: ia
                .options
                .iter()
                .filter_map(|o| match o {
                    DhcpOption::IaPrefix(p) => Some((p.prefix_len, p.prefix)),
                    _ => None,
                })
                .take(MAX_LEASES_PER_IA)
                .collect(),
        }),
        _ => None,
    });
    let mut out: Vec<ClientIa> = Vec::new();
    for ia in ias {
        if out.len() == MAX_IAS_ANSWERED {
            break;
        }
        if !out.iter().any(|o| o.kind == ia.kind && o.iaid == ia.iaid) {
            out.push(ia);
        }
    }
    out
}

/// An IA past [`MAX_IAS_SERVED`]: no lease, a status code.
fn beyond_the_cap(ia: &ClientIa, code: StatusCode) -> IaReply {
    IaReply {
        kind: ia.kind,
        iaid: ia.iaid,
        grants: vec![],
        status: Some((code, "too many IAs in one message")),
    }
}

fn binding_key(ctx: &Ctx<'_, '_>, kind: LeaseKind, iaid: u32) -> BindingKey {
    BindingKey {
        duid: ctx.duid.clone(),
        kind,
        iaid,
    }
}

impl Dhcpv6Server {
    fn subnet(&self, i: Option<usize>) -> Option<&super::SubnetState> {
        i.and_then(|i| self.subnets.get(i))
    }

    fn address_classes(&self, ctx: &Ctx<'_, '_>) -> [bool; 2] {
        ctx.rel.map_or([true, true], |r| ctx.policy.address_classes(r))
    }

    /// Whether the lease at `key` may go to `bk` now.
    fn may_take(&self, ctx: &Ctx<'_, '_>, key: &LeaseKey, bk: &BindingKey) -> bool {
        let Some(lease) = self.db.get(key) else {
            // No record: free space of its pool, in an allowed class.
            return match key.kind {
                LeaseKind::Na => {
                    let a = key.prefix.addr();
                    self.db.address_is_free(a)
                        && self.address_classes(ctx)[usize::from(u128::from(a) & 1 == 1)]
                }
                LeaseKind::Pd => self.prefix_class_allowed(ctx, &key.prefix),
            };
        };
        if lease.is_active_for(bk, ctx.now) {
            return true;
        }
        if lease.state.is_available() {
            return match key.kind {
                LeaseKind::Na => {
                    self.address_classes(ctx)[usize::from(u128::from(key.prefix.addr()) & 1 == 1)]
                }
                LeaseKind::Pd => self.prefix_class_allowed(ctx, &key.prefix),
            };
        }
        match ctx.rel {
            Some(r) => ctx.policy.may_reuse(r, lease, bk, ctx.now),
            None => Standalone::default().may_reuse(0, lease, bk, ctx.now),
        }
    }

    fn prefix_classes(&self, ctx: &Ctx<'_, '_>) -> Vec<usize> {
        ctx.rel
            .map_or_else(|| vec![0, 1], |r| ctx.policy.prefix_classes(r, ctx.now))
    }

    fn prefix_class_allowed(&self, ctx: &Ctx<'_, '_>, p: &Ipv6Prefix) -> bool {
        self.db
            .prefix_free_class(p)
            .is_some_and(|c| self.prefix_classes(ctx).contains(&c))
    }

    /// Picks an address for an IA_NA (§18.3.2, §13.1): the binding's own
    /// lease, a usable hint, the lease this binding held last, then a free
    /// address at random. Never one of `taken`, the leases already picked
    /// for other IAs of the same message (nothing is taken from the free
    /// space until the message is committed).
    fn pick_address(
        &mut self,
        ctx: &Ctx<'_, '_>,
        bk: &BindingKey,
        hints: &[Ipv6Addr],
        taken: &[LeaseKey],
    ) -> Option<LeaseKey> {
        let s = self.subnet(ctx.subnet)?;
        let ranges = s.ranges.clone();
        let in_subnet =
            |db: &crate::lease::LeaseDb, a: Ipv6Addr| db.range_of(a).is_some_and(|r| ranges.contains(&r));
        if let Some(k) = self
            .db
            .of_binding(bk)
            .find(|l| {
                l.is_active_for(bk, ctx.now)
                    && in_subnet(&self.db, l.key.prefix.addr())
                    && !taken.contains(&l.key)
            })
            .map(|l| l.key)
        {
            return Some(k);
        }
        for &h in hints {
            let key = LeaseKey::address(h);
            if in_subnet(&self.db, h) && !taken.contains(&key) && self.may_take(ctx, &key, bk) {
                return Some(key);
            }
        }
        let last: Vec<LeaseKey> = self.db.of_binding(bk).map(|l| l.key).collect();
        for key in last {
            if in_subnet(&self.db, key.prefix.addr()) && !taken.contains(&key) && self.may_take(ctx, &key, bk)
            {
                return Some(key);
            }
        }
        let classes = self.address_classes(ctx);
        let except: Vec<Ipv6Addr> = taken
            .iter()
            .filter(|k| k.kind == LeaseKind::Na)
            .map(|k| k.prefix.addr())
            .collect();
        for r in ranges {
            let random = self.random();
            if let Some(a) = self.db.find_free_address(r, classes, random, &except) {
                return Some(LeaseKey::address(a));
            }
        }
        None
    }

    /// Picks a delegated prefix for an IA_PD (§18.3.2, §13.3).
    /// Never one of `taken` (see `pick_address`).
    fn pick_prefix(
        &mut self,
        ctx: &Ctx<'_, '_>,
        bk: &BindingKey,
        hints: &[(u8, Ipv6Addr)],
        taken: &[LeaseKey],
    ) -> Option<LeaseKey> {
        let s = self.subnet(ctx.subnet)?;
        let pools = s.pd_pools.clone();
        let in_subnet =
            |db: &crate::lease::LeaseDb, p: &Ipv6Prefix| db.pd_pool_of(p).is_some_and(|i| pools.contains(&i));
        if let Some(k) = self
            .db
            .of_binding(bk)
            .find(|l| {
                l.is_active_for(bk, ctx.now) && in_subnet(&self.db, &l.key.prefix) && !taken.contains(&l.key)
            })
            .map(|l| l.key)
        {
            return Some(k);
        }
        for &(len, addr) in hints {
            if addr.is_unspecified() {
                continue;
            }
            let p = Ipv6Prefix::new(addr, len);
            let key = LeaseKey::prefix(p);
            if in_subnet(&self.db, &p) && !taken.contains(&key) && self.may_take(ctx, &key, bk) {
                return Some(key);
            }
        }
        let last: Vec<LeaseKey> = self.db.of_binding(bk).map(|l| l.key).collect();
        for key in last {
            if in_subnet(&self.db, &key.prefix) && !taken.contains(&key) && self.may_take(ctx, &key, bk) {
                return Some(key);
            }
        }
        // Pools whose delegated length matches a length hint first (RFC 8168).
        let wanted: Vec<u8> = hints.iter().map(|(l, _)| *l).filter(|l| *l > 0).collect();
        let mut order = pools;
        order.sort_by_key(|&i| {
            let len = self.db.pd_pools().get(i).map(|p| p.delegated_len()).unwrap_or(0);
            !wanted.contains(&len)
        });
        let except: Vec<Ipv6Prefix> = taken
            .iter()
            .filter(|k| k.kind == LeaseKind::Pd)
            .map(|k| k.prefix)
            .collect();
        for class in self.prefix_classes(ctx) {
            for &pool in &order {
                let random = self.random();
                if let Some(p) = self.db.find_free_prefix(pool, class, random, &except) {
                    return Some(LeaseKey::prefix(p));
                }
            }
        }
        None
    }

    /// Lifetimes for a lease given or extended now: the configured ones,
    /// capped by the MCLT rule; `None` if a *new* failover lease would be
    /// shorter than 30 s (RFC 8156 §1).
    fn lifetimes(&self, ctx: &Ctx<'_, '_>, key: &LeaseKey, bk: &BindingKey) -> Option<(UnixTime, UnixTime)> {
        let s = &self.subnet(ctx.subnet)?.cfg;
        // Only this binding's own record counts for the MCLT rule: what the
        // partner acknowledged for a previous client says nothing of this
        // one (found by duet-sim, seed 6879).
        // Looked up only where it is used (in a relationship): standalone,
        // it was 4 % of duet's user-space time in a profile at 2000/s.
        let current = ctx
            .rel
            .and_then(|_| self.db.get(key))
            .filter(|l| l.is_active_for(bk, ctx.now));
        let desired = ctx.now + s.valid_lifetime;
        let cap = ctx
            .rel
            .and_then(|r| ctx.policy.valid_until_cap(r, current, ctx.now));
        let valid_until = cap.map_or(desired, |c| desired.min(c));
        let is_new = current.is_none();
        if ctx.rel.is_some() && is_new && valid_until.since(ctx.now) < MIN_FAILOVER_LEASE {
            return None;
        }
        if valid_until <= ctx.now {
            return None;
        }
        let preferred_until = (ctx.now + s.preferred_lifetime).min(valid_until);
        Some((preferred_until, valid_until))
    }

    /// T1 and T2 for a reply whose shortest preferred lifetime is
    /// `shortest` (RFC 8415 §18.1, §21.4): the configured values, or 0.5 and
    /// 0.8 of `shortest` when capping made it shorter than configured.
    fn t1_t2(&self, ctx: &Ctx<'_, '_>, shortest: Option<Duration>) -> (Duration, Duration) {
        let Some(s) = self.subnet(ctx.subnet).map(|s| &s.cfg) else {
            return (Duration::ZERO, Duration::ZERO);
        };
        match shortest {
            None => (Duration::ZERO, Duration::ZERO),
            Some(p) if p < s.preferred_lifetime => (p / 2, p * 4 / 5),
            Some(_) => (s.renew_time, s.rebind_time),
        }
    }

    /// The record `g` makes of its lease, not yet written (see `handle`).
    fn plan(
        &self,
        ctx: &Ctx<'_, '_>,
        g: &Grant,
        bk: &BindingKey,
        t1: Duration,
        t2: Duration,
    ) -> Option<Lease> {
        let s = &self.subnet(ctx.subnet)?.cfg;
        let desired = s.valid_lifetime;
        let mut lease = self
            .db
            .get(&g.key)
            .cloned()
            .unwrap_or_else(|| Lease::free(g.key, LeaseState::Free, ctx.now));
        let bound = lease.is_active_for(bk, ctx.now);
        if !bound {
            lease.start_time_of_state = ctx.now;
            // A new binding: the partner has acknowledged nothing of it yet.
            lease.failover.acked_partner_lifetime = UnixTime::ZERO;
        }
        // A Reply may promise less than an earlier one (the MCLT cap, or a
        // partner's earlier grant): the client may never receive it and keep
        // the earlier lifetime, so the binding lasts until the latest end
        // ever promised (found by duet-sim, seed 7).
        let valid_until = if bound {
            lease.valid_until.max(g.valid_until)
        } else {
            g.valid_until
        };
        lease.binding = Some(bk.clone());
        lease.state = LeaseState::Active;
        lease.preferred_until = g.preferred_until;
        lease.valid_until = valid_until;
        lease.t1 = wire_secs(t1);
        lease.t2 = wire_secs(t2);
        lease.cltt = ctx.now;
        lease.state_expiration = Some(valid_until);
        if let Some(r) = ctx.rel {
            lease.failover.pending_update = true;
            let pl = ctx.policy.partner_lifetime(r, desired, t1, ctx.now);
            lease.failover.partner_lifetime = lease.failover.partner_lifetime.max(pl);
        }
        Some(lease)
    }

    /// Turns per-IA results into reply options (same T1/T2 in every IA,
    /// §18.1), planning the grants' records when `commit`.
    fn finish(
        &self,
        ctx: &Ctx<'_, '_>,
        reply: &mut ClientMessage<'static>,
        ias: Vec<IaReply>,
        commit: bool,
    ) -> Vec<Lease> {
        let shortest = ias
            .iter()
            .flat_map(|ia| &ia.grants)
            .filter(|g| g.valid_until > ctx.now)
            .map(|g| g.preferred_until.since(ctx.now))
            .min();
        let (t1, t2) = self.t1_t2(ctx, shortest);
        let mut changes = Vec::new();
        for ia in ias {
            let kind = match ia.kind {
                IaType::Pd => LeaseKind::Pd,
                _ => LeaseKind::Na,
            };
            let bk = binding_key(ctx, kind, ia.iaid);
            let mut opts = Vec::new();
            for g in &ia.grants {
                let live = g.valid_until > ctx.now;
                if commit && live {
                    if let Some(l) = self.plan(ctx, g, &bk, t1, t2) {
                        changes.push(l);
                    }
                }
                let pref = ctx.now.secs_until(g.preferred_until);
                let valid = ctx.now.secs_until(g.valid_until);
                opts.push(match g.key.kind {
                    LeaseKind::Na => DhcpOption::IaAddr(IaAddr {
                        address: g.key.prefix.addr(),
                        preferred_lifetime: pref,
                        valid_lifetime: valid,
                        options: vec![],
                    }),
                    LeaseKind::Pd => DhcpOption::IaPrefix(IaPrefix {
                        preferred_lifetime: pref,
                        valid_lifetime: valid,
                        prefix_len: g.key.prefix.len(),
                        prefix: g.key.prefix.addr(),
                        options: vec![],
                    }),
                });
            }
            if let Some((code, text)) = ia.status {
                opts.push(status(code, text));
            }
            let has_live = ia.grants.iter().any(|g| g.valid_until > ctx.now);
            let (it1, it2) = if has_live {
                (wire_secs(t1), wire_secs(t2))
            } else {
                (0, 0)
            };
            reply.options.push(match ia.kind {
                IaType::Na => DhcpOption::IaNa(IaNa {
                    iaid: ia.iaid,
                    t1: it1,
                    t2: it2,
                    options: opts,
                }),
                IaType::Ta => DhcpOption::IaTa(IaTa {
                    iaid: ia.iaid,
                    options: opts,
                }),
                IaType::Pd => DhcpOption::IaPd(IaPd {
                    iaid: ia.iaid,
                    t1: it1,
                    t2: it2,
                    options: opts,
                }),
            });
        }
        changes
    }
}

/// Solicit (§18.3.1), Solicit with Rapid Commit, Request (§18.3.2).
fn assign(srv: &mut Dhcpv6Server, ctx: &Ctx<'_, '_>, mode: Mode) -> Processed {
    let commit = mode != Mode::Advertise;
    let prefix = srv
        .subnet(ctx.subnet)
        .map(|s| s.cfg.prefix)
        .ok_or(Drop::NoSubnet)?;
    let mut ias = Vec::new();
    // Every lease picked so far for this message: each IA gets its own
    // (RFC 8156 §4: no address or prefix bound to two IAs).
    let mut taken: Vec<LeaseKey> = Vec::new();
    for (n, ia) in client_ias(ctx.client).into_iter().enumerate() {
        if n >= MAX_IAS_SERVED {
            let code = match ia.kind {
                IaType::Pd => StatusCode::NoPrefixAvail,
                _ => StatusCode::NoAddrsAvail,
            };
            ias.push(beyond_the_cap(&ia, code));
            continue;
        }
        let mut out = IaReply {
            kind: ia.kind,
            iaid: ia.iaid,
            grants: vec![],
            status: None,
        };
        match ia.kind {
            IaType::Ta => {
                out.status = Some((StatusCode::NoAddrsAvail, "temporary addresses are not offered"))
            }
            IaType::Na if mode == Mode::Request && ia.addrs.iter().any(|a| !prefix.contains(*a)) => {
                out.status = Some((StatusCode::NotOnLink, "address not on this link"));
            }
            IaType::Na => {
                let bk = binding_key(ctx, LeaseKind::Na, ia.iaid);
                match srv
                    .pick_address(ctx, &bk, &ia.addrs, &taken)
                    .and_then(|k| srv.lifetimes(ctx, &k, &bk).map(|l| (k, l)))
                {
                    Some((key, (preferred_until, valid_until))) => {
                        if ctx.policy.distinct_leases_per_message() {
                            taken.push(key);
                        }
                        out.grants.push(Grant {
                            key,
                            preferred_until,
                            valid_until,
                        })
                    }
                    None => out.status = Some((StatusCode::NoAddrsAvail, "no addresses available")),
                }
            }
            IaType::Pd => {
                let bk = binding_key(ctx, LeaseKind::Pd, ia.iaid);
                match srv
                    .pick_prefix(ctx, &bk, &ia.prefixes, &taken)
                    .and_then(|k| srv.lifetimes(ctx, &k, &bk).map(|l| (k, l)))
                {
                    Some((key, (preferred_until, valid_until))) => {
                        if ctx.policy.distinct_leases_per_message() {
                            taken.push(key);
                        }
                        out.grants.push(Grant {
                            key,
                            preferred_until,
                            valid_until,
                        })
                    }
                    None => out.status = Some((StatusCode::NoPrefixAvail, "no prefixes available")),
                }
            }
        }
        ias.push(out);
    }
    let msg_type = if mode == Mode::Advertise {
        MessageType::Advertise
    } else {
        MessageType::Reply
    };
    let mut reply = reply_base(srv, ctx.client, msg_type);
    let changes = srv.finish(ctx, &mut reply, ias, commit);
    let subnet = srv.subnet(ctx.subnet).map(|s| &s.cfg);
    if mode == Mode::Advertise {
        if let Some(p) = subnet.map(|s| s.preference).filter(|p| *p > 0) {
            reply.options.push(DhcpOption::Preference(p));
        }
    }
    if mode == Mode::RapidCommit {
        reply.options.push(DhcpOption::RapidCommit);
    }
    add_config_options(&mut reply, ctx.client, subnet);
    Ok((reply, changes))
}

/// Renew (§18.3.4) and Rebind (§18.3.5).
fn extend(srv: &mut Dhcpv6Server, ctx: &Ctx<'_, '_>, rebind: bool) -> Processed {
    let prefix = srv
        .subnet(ctx.subnet)
        .map(|s| s.cfg.prefix)
        .ok_or(Drop::NoSubnet)?;
    let mut ias = Vec::new();
    let mut anything = false;
    for (n, ia) in client_ias(ctx.client).into_iter().enumerate() {
        if n >= MAX_IAS_SERVED {
            ias.push(beyond_the_cap(&ia, StatusCode::NoBinding));
            continue;
        }
        let kind = if ia.kind == IaType::Pd {
            LeaseKind::Pd
        } else {
            LeaseKind::Na
        };
        let bk = binding_key(ctx, kind, ia.iaid);
        let mut out = IaReply {
            kind: ia.kind,
            iaid: ia.iaid,
            grants: vec![],
            status: None,
        };
        let owned: Vec<LeaseKey> = srv
            .db
            .of_binding(&bk)
            .filter(|l| l.is_active_for(&bk, ctx.now))
            .map(|l| l.key)
            .take(MAX_LEASES_PER_IA)
            .collect();
        for key in &owned {
            if let Some((preferred_until, valid_until)) = srv.lifetimes(ctx, key, &bk) {
                out.grants.push(Grant {
                    key: *key,
                    preferred_until,
                    valid_until,
                });
            }
        }
        // Leases the client lists that are not (or no longer) its own, or
        // not appropriate for its link: lifetimes 0 (§18.3.4, §18.3.5).
        let listed: Vec<LeaseKey> = ia
            .addrs
            .iter()
            .map(|a| LeaseKey::address(*a))
            .chain(
                ia.prefixes
                    .iter()
                    .map(|(l, a)| LeaseKey::prefix(Ipv6Prefix::new(*a, *l))),
            )
            .filter(|k| !(k.kind == LeaseKind::Pd && k.prefix.addr().is_unspecified()))
            .collect();
        for key in listed {
            if owned.contains(&key) {
                continue;
            }
            let off_link = match key.kind {
                LeaseKind::Na => !prefix.contains(key.prefix.addr()),
                LeaseKind::Pd => srv.db.pd_pool_of(&key.prefix).is_none(),
            };
            let someone_elses = srv.db.get(&key).is_some_and(|l| {
                l.state == LeaseState::Active && l.valid_until > ctx.now && l.binding.as_ref() != Some(&bk)
            });
            if off_link || someone_elses {
                out.grants.push(Grant {
                    key,
                    preferred_until: ctx.now,
                    valid_until: ctx.now,
                });
            }
        }
        if out.grants.is_empty() {
            out.status = Some((StatusCode::NoBinding, "no binding for this IA"));
        } else {
            anything = true;
        }
        ias.push(out);
    }
    // §18.3.5: a Rebind this server knows nothing about gets no Reply, so
    // the server that does know the client can answer.
    if rebind && !anything {
        return Err(Drop::NothingToSay);
    }
    let mut reply = reply_base(srv, ctx.client, MessageType::Reply);
    let changes = srv.finish(ctx, &mut reply, ias, true);
    add_config_options(&mut reply, ctx.client, srv.subnet(ctx.subnet).map(|s| &s.cfg));
    Ok((reply, changes))
}

/// Release (§18.3.7) and Decline (§18.3.8).
fn retire(srv: &mut Dhcpv6Server, ctx: &Ctx<'_, '_>, event: Retire) -> Processed {
    let standalone = Standalone {
        decline_probation: srv.options.decline_probation,
    };
    let mut reply = reply_base(srv, ctx.client, MessageType::Reply);
    let mut changes = Vec::new();
    let mut ia_opts = Vec::new();
    for (n, ia) in client_ias(ctx.client).into_iter().enumerate() {
        let kind = if ia.kind == IaType::Pd {
            LeaseKind::Pd
        } else {
            LeaseKind::Na
        };
        let bk = binding_key(ctx, kind, ia.iaid);
        let listed: Vec<LeaseKey> = ia
            .addrs
            .iter()
            .map(|a| LeaseKey::address(*a))
            .chain(
                ia.prefixes
                    .iter()
                    .map(|(l, a)| LeaseKey::prefix(Ipv6Prefix::new(*a, *l))),
            )
            .collect();
        // Past the cap, an IA is answered as if it had no binding.
        let bound: Vec<Lease> = srv
            .db
            .of_binding(&bk)
            .filter(|l| n < MAX_IAS_SERVED && l.is_active_for(&bk, ctx.now))
            .cloned()
            .collect();
        if bound.is_empty() {
            let no_binding = vec![status(StatusCode::NoBinding, "no binding for this IA")];
            ia_opts.push(match ia.kind {
                IaType::Pd => DhcpOption::IaPd(IaPd {
                    iaid: ia.iaid,
                    t1: 0,
                    t2: 0,
                    options: no_binding,
                }),
                IaType::Ta => DhcpOption::IaTa(IaTa {
                    iaid: ia.iaid,
                    options: no_binding,
                }),
                IaType::Na => DhcpOption::IaNa(IaNa {
                    iaid: ia.iaid,
                    t1: 0,
                    t2: 0,
                    options: no_binding,
                }),
            });
            continue;
        }
        // Decline concerns addresses only (digest D6).
        if event == Retire::Declined && kind == LeaseKind::Pd {
            continue;
        }
        for mut lease in bound.into_iter().filter(|l| listed.contains(&l.key)) {
            let rel = srv.relationship_of(&lease.key);
            let (state, exp) = match rel {
                Some(r) => ctx.policy.retire(r, event, ctx.now),
                None => standalone.retire(0, event, ctx.now),
            };
            lease.state = state;
            lease.start_time_of_state = ctx.now;
            lease.state_expiration = exp;
            lease.cltt = ctx.now;
            lease.failover.pending_update |= rel.is_some();
            changes.push(lease);
        }
    }
    reply.options.extend(ia_opts);
    reply.options.push(status(
        StatusCode::Success,
        if event == Retire::Declined {
            "decline processed"
        } else {
            "release processed"
        },
    ));
    Ok((reply, changes))
}
