//! Solicit (RFC 8415 §18.3.1), Solicit with Rapid Commit (§21.14) and
//! Request (§18.3.2): picking an address or prefix for each IA.

use super::ia::{binding_key, client_ias, Grant, IaReply, MAX_IAS_SERVED};
use super::options::add_config_options;
use super::process::{reply_base, Ctx, Processed};
use super::{Dhcpv6Server, Discard, SubnetState};
use crate::lease::{BindingKey, LeaseKey, LeaseKind};
use crate::net::Ipv6Prefix;
use crate::policy::{LeasePolicy, Standalone};
use duet_wire::{DhcpOption, IaKind, MessageType, StatusCode};
use std::net::Ipv6Addr;

/// Which of the three answers to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Solicit: an Advertise, nothing committed.
    Advertise,
    /// Solicit with Rapid Commit, where the subnet allows it: a Reply.
    RapidCommit,
    /// Request: a Reply.
    Request,
}

/// Solicit (§18.3.1), Solicit with Rapid Commit, Request (§18.3.2).
pub(super) fn assign(srv: &mut Dhcpv6Server, ctx: &Ctx<'_, '_>, mode: Mode) -> Processed {
    let commit = mode != Mode::Advertise;
    let prefix = srv
        .subnet(ctx.subnet)
        .map(|s| s.cfg.prefix)
        .ok_or(Discard::NoSubnet)?;
    let mut ias = Vec::new();
    // Every lease picked so far for this message: each IA gets its own
    // (RFC 8156 §4: no address or prefix bound to two IAs).
    let mut taken: Vec<LeaseKey> = Vec::new();
    for (n, ia) in client_ias(ctx.client).into_iter().enumerate() {
        let none = match ia.kind {
            IaKind::Pd => (StatusCode::NoPrefixAvail, "no prefixes available"),
            _ => (StatusCode::NoAddrsAvail, "no addresses available"),
        };
        let Some(kind) = ia.lease_kind() else {
            ias.push(IaReply::refused(
                &ia,
                StatusCode::NoAddrsAvail,
                "temporary addresses are not offered",
            ));
            continue;
        };
        if n >= MAX_IAS_SERVED {
            ias.push(IaReply::refused(&ia, none.0, "too many IAs in one message"));
            continue;
        }
        if kind == LeaseKind::Na
            && mode == Mode::Request
            && ia.named().any(|k| !prefix.contains(k.prefix.addr()))
        {
            ias.push(IaReply::refused(
                &ia,
                StatusCode::NotOnLink,
                "address not on this link",
            ));
            continue;
        }
        let bk = binding_key(ctx, kind, ia.iaid);
        let picked = srv
            .pick(ctx, kind, &bk, &ia.listed, &taken)
            .and_then(|k| srv.lifetimes(ctx, &k, &bk).map(|l| (k, l)));
        match picked {
            Some((key, (preferred_until, valid_until))) => {
                if ctx.policy.distinct_leases_per_message() {
                    taken.push(key);
                }
                let mut out = IaReply::to(&ia);
                out.grants.push(Grant {
                    key,
                    preferred_until,
                    valid_until,
                });
                ias.push(out);
            }
            None => ias.push(IaReply::refused(&ia, none.0, none.1)),
        }
    }
    let msg_type = if mode == Mode::Advertise {
        MessageType::Advertise
    } else {
        MessageType::Reply
    };
    let mut reply = reply_base(srv.duid(), ctx.client, msg_type);
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
    add_config_options(&mut reply, ctx.client, subnet, ctx.reservation);
    Ok((reply, changes))
}

/// Whether `key` is one of subnet `s`'s addresses or delegable prefixes.
fn in_subnet(srv: &Dhcpv6Server, s: &SubnetState, key: &LeaseKey) -> bool {
    match key.kind {
        LeaseKind::Na => srv
            .db
            .range_of(key.prefix.addr())
            .is_some_and(|r| s.ranges.contains(&r)),
        LeaseKind::Pd => srv
            .db
            .pd_pool_of(&key.prefix)
            .is_some_and(|p| s.pd_pools.contains(&p)),
    }
}

impl Dhcpv6Server {
    fn address_classes(&self, ctx: &Ctx<'_, '_>) -> [bool; 2] {
        ctx.rel.map_or([true, true], |r| ctx.policy.address_classes(r))
    }

    fn prefix_classes(&self, ctx: &Ctx<'_, '_>) -> Vec<usize> {
        ctx.rel
            .map_or_else(|| vec![0, 1], |r| ctx.policy.prefix_classes(r, ctx.now))
    }

    /// Whether free space at `key` is in a class this server may allocate
    /// from now (the address halves, RFC 8156 §4.2.1; the prefix owners,
    /// §4.2.2).
    fn class_allowed(&self, ctx: &Ctx<'_, '_>, key: &LeaseKey) -> bool {
        match key.kind {
            LeaseKind::Na => {
                let odd = u128::from(key.prefix.addr()) & 1 == 1;
                self.address_classes(ctx)
                    .get(usize::from(odd))
                    .copied()
                    .unwrap_or(false)
            }
            LeaseKind::Pd => self
                .db
                .prefix_free_class(&key.prefix)
                .is_some_and(|c| self.prefix_classes(ctx).contains(&c)),
        }
    }

    /// Whether the lease at `key` may go to `bk` now.
    fn may_take(&self, ctx: &Ctx<'_, '_>, key: &LeaseKey, bk: &BindingKey) -> bool {
        let Some(lease) = self.db.get(key) else {
            // No record: free space of its pool, in an allowed class.
            let free = match key.kind {
                LeaseKind::Na => self.db.address_is_free(key.prefix.addr()),
                LeaseKind::Pd => true,
            };
            return free && self.class_allowed(ctx, key);
        };
        if lease.is_active_for(bk, ctx.now) {
            return true;
        }
        if lease.state.is_available() {
            return self.class_allowed(ctx, key);
        }
        match ctx.rel {
            Some(r) => ctx.policy.may_reuse(r, lease, bk, ctx.now),
            None => Standalone::default().may_reuse(0, lease, bk, ctx.now),
        }
    }

    /// Whether reserved `key` may go to its owner's binding `bk` now: no
    /// record, a free one, its own, or one that ended and may be reused
    /// (RFC 8156's rules for a lease a previous client held).
    fn may_take_reserved(&self, ctx: &Ctx<'_, '_>, key: &LeaseKey, bk: &BindingKey) -> bool {
        let Some(lease) = self.db.get(key) else {
            return true;
        };
        if lease.is_active_for(bk, ctx.now) || lease.state.is_available() {
            return true;
        }
        if lease.state == crate::lease::LeaseState::Active {
            // Another binding holds it (another IA of this client, or a
            // client that had it before the reservation).
            return false;
        }
        match ctx.rel {
            Some(r) => ctx.policy.may_reuse(r, lease, bk, ctx.now),
            None => Standalone::default().may_reuse(0, lease, bk, ctx.now),
        }
    }

    /// Picks an address (IA_NA) or a delegated prefix (IA_PD) for `bk`
    /// (§18.3.2, §13.1, §13.3): the binding's own lease, a usable hint, the
    /// lease this binding held last, then free space at random (addresses
    /// not predictable, RFC 7721 §4.7; prefix pools whose delegated length
    /// matches a length hint first, RFC 8168). Never one of `taken`, the
    /// leases already picked for other IAs of the same message (nothing is
    /// taken from the free space until the message is committed).
    pub(super) fn pick(
        &mut self,
        ctx: &Ctx<'_, '_>,
        kind: LeaseKind,
        bk: &BindingKey,
        hints: &[LeaseKey],
        taken: &[LeaseKey],
    ) -> Option<LeaseKey> {
        let s = self.subnet(ctx.subnet)?;
        let mine = |k: &LeaseKey| {
            k.kind == kind
                && !taken.contains(k)
                && in_subnet(self, s, k)
                && !self.reserved_for_another(ctx, k)
        };
        if let Some(k) = self
            .db
            .of_binding(bk)
            .find(|l| l.is_active_for(bk, ctx.now) && mine(&l.key))
            .map(|l| l.key)
        {
            return Some(k);
        }
        // The client's host reservation, whatever the pool halves say: only
        // this client ever gets it, so either partner may give it
        // (docs/failover.md, "host reservations"). One per IA, in order;
        // one held by another of its IAs, or still by a previous client,
        // is skipped.
        if let Some(k) = self
            .reserved_leases(ctx, kind)
            .into_iter()
            .find(|k| !taken.contains(k) && self.may_take_reserved(ctx, k, bk))
        {
            return Some(k);
        }
        let named = hints
            .iter()
            .filter(|k| !(k.kind == LeaseKind::Pd && k.prefix.addr().is_unspecified()));
        let last = self.db.of_binding(bk).map(|l| l.key);
        if let Some(k) = named
            .copied()
            .chain(last)
            .find(|k| mine(k) && self.may_take(ctx, k, bk))
        {
            return Some(k);
        }
        let ranges = s.ranges.len();
        match kind {
            LeaseKind::Na => {
                let classes = self.address_classes(ctx);
                let except: Vec<Ipv6Addr> = taken
                    .iter()
                    .filter(|k| k.kind == LeaseKind::Na)
                    .map(|k| k.prefix.addr())
                    .collect();
                // By position: the free search needs the database mutably.
                for i in 0..ranges {
                    let Some(r) = self.subnet(ctx.subnet).and_then(|s| s.ranges.get(i)).copied() else {
                        break;
                    };
                    let random = self.random();
                    if let Some(a) = self.db.find_free_address(r, classes, random, &except) {
                        return Some(LeaseKey::address(a));
                    }
                }
            }
            LeaseKind::Pd => {
                let wanted: Vec<u8> = hints.iter().map(|k| k.prefix.len()).filter(|l| *l > 0).collect();
                let mut order = s.pd_pools.clone();
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
            }
        }
        None
    }
}
