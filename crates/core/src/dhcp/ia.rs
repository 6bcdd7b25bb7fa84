//! The IAs of a message (RFC 8415 §21.4, §21.5, §21.21) and what the
//! exchanges share: the caps on IAs and leases per message, lifetimes under
//! the MCLT rule (RFC 8156 §4.4), T1/T2 (RFC 8415 §21.4), and turning the
//! per-IA results into reply options and planned lease records.

use super::process::{status, Ctx};
use super::Dhcpv6Server;
use crate::lease::{BindingKey, Lease, LeaseKey, LeaseKind, LeaseState};
use crate::time::{wire_secs, UnixTime};
use duet_wire::option::{IaAddr, IaNa, IaPd, IaPrefix, IaTa};
use duet_wire::{ClientMessage, DhcpOption, IaKind, OptionsExt, StatusCode};
use std::time::Duration;

/// RFC 8156 §1: under failover, no new lease shorter than this.
const MIN_FAILOVER_LEASE: Duration = Duration::from_secs(30);

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

/// One lease in a reply IA.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grant {
    pub(super) key: LeaseKey,
    pub(super) preferred_until: UnixTime,
    pub(super) valid_until: UnixTime,
}

impl Grant {
    /// `key` with lifetimes 0: "not yours (any more)" (§18.3.4, §18.3.5).
    pub(super) fn withdrawn(key: LeaseKey, now: UnixTime) -> Grant {
        Grant {
            key,
            preferred_until: now,
            valid_until: now,
        }
    }
}

/// One IA of the reply.
#[derive(Debug)]
pub(super) struct IaReply {
    pub(super) kind: IaKind,
    pub(super) iaid: u32,
    pub(super) grants: Vec<Grant>,
    pub(super) status: Option<(StatusCode, &'static str)>,
}

impl IaReply {
    /// An answer to `ia` with nothing in it yet.
    pub(super) fn to(ia: &ClientIa) -> IaReply {
        IaReply {
            kind: ia.kind,
            iaid: ia.iaid,
            grants: vec![],
            status: None,
        }
    }

    /// An answer to `ia` with no lease and this status.
    pub(super) fn refused(ia: &ClientIa, code: StatusCode, text: &'static str) -> IaReply {
        IaReply {
            status: Some((code, text)),
            ..IaReply::to(ia)
        }
    }
}

/// One IA of a client message with the leases it lists.
pub(super) struct ClientIa {
    pub(super) kind: IaKind,
    pub(super) iaid: u32,
    /// Its IAADDRs (IA_NA, IA_TA) or IAPREFIXes (IA_PD), at most
    /// [`MAX_LEASES_PER_IA`]; a prefix hint may be a length alone
    /// (prefix `::`, RFC 8415 §18.2.1).
    pub(super) listed: Vec<LeaseKey>,
}

impl ClientIa {
    /// The lease kind this IA holds; none for an IA_TA (temporary
    /// addresses are not offered).
    pub(super) fn lease_kind(&self) -> Option<LeaseKind> {
        LeaseKind::of_ia(self.kind)
    }

    /// The listed leases that name a resource (not a length-only hint).
    pub(super) fn named(&self) -> impl Iterator<Item = LeaseKey> + '_ {
        self.listed
            .iter()
            .copied()
            .filter(|k| !(k.kind == LeaseKind::Pd && k.prefix.addr().is_unspecified()))
    }
}

/// The client's IAs in message order, at most [`MAX_IAS_ANSWERED`], each
/// with at most [`MAX_LEASES_PER_IA`] addresses or prefixes. An IAID is
/// unique among a client's IAs of one type (RFC 8415 §21.4, §21.5, §21.21):
/// a repeated one is ignored, its first occurrence answered.
pub(super) fn client_ias(client: &ClientMessage<'_>) -> Vec<ClientIa> {
    let mut out: Vec<ClientIa> = Vec::new();
    for ia in client.options.ias() {
        if out.len() == MAX_IAS_ANSWERED {
            break;
        }
        if out.iter().any(|o| o.kind == ia.kind && o.iaid == ia.iaid) {
            continue;
        }
        // Addresses in an IA_NA or IA_TA, prefixes in an IA_PD.
        let prefixes = ia.kind == IaKind::Pd;
        let listed = ia
            .leases()
            .filter(|l| l.prefix_len.is_some() == prefixes)
            .take(MAX_LEASES_PER_IA)
            .map(|l| LeaseKey::of(&l))
            .collect();
        out.push(ClientIa {
            kind: ia.kind,
            iaid: ia.iaid,
            listed,
        });
    }
    out
}

/// The IA option of kind `kind` (an IA_TA has no T1/T2).
pub(super) fn ia_option(
    kind: IaKind,
    iaid: u32,
    t1: u32,
    t2: u32,
    options: Vec<DhcpOption<'static>>,
) -> DhcpOption<'static> {
    match kind {
        IaKind::Na => DhcpOption::IaNa(IaNa {
            iaid,
            t1,
            t2,
            options,
        }),
        IaKind::Ta => DhcpOption::IaTa(IaTa { iaid, options }),
        IaKind::Pd => DhcpOption::IaPd(IaPd {
            iaid,
            t1,
            t2,
            options,
        }),
    }
}

/// The binding of the client of `ctx` for an IA (RFC 8415 §4.2).
pub(super) fn binding_key(ctx: &Ctx<'_, '_>, kind: LeaseKind, iaid: u32) -> BindingKey {
    BindingKey {
        duid: ctx.duid.clone(),
        kind,
        iaid,
    }
}

impl Dhcpv6Server {
    /// Lifetimes for a lease given or extended now: the configured ones,
    /// capped by the MCLT rule; `None` if a *new* failover lease would be
    /// shorter than 30 s (RFC 8156 §1).
    pub(super) fn lifetimes(
        &self,
        ctx: &Ctx<'_, '_>,
        key: &LeaseKey,
        bk: &BindingKey,
    ) -> Option<(UnixTime, UnixTime)> {
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
        let desired = ctx.now.saturating_add(s.valid_lifetime);
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
        let preferred_until = ctx.now.saturating_add(s.preferred_lifetime).min(valid_until);
        Some((preferred_until, valid_until))
    }

    /// T1 and T2 for a reply whose shortest preferred lifetime is
    /// `shortest` (RFC 8415 §18.1, §21.4): the configured values, or 0.5 and
    /// 0.8 of `shortest` when capping made it shorter than configured.
    pub(super) fn t1_t2(&self, ctx: &Ctx<'_, '_>, shortest: Option<Duration>) -> (Duration, Duration) {
        let Some(s) = self.subnet(ctx.subnet).map(|s| &s.cfg) else {
            return (Duration::ZERO, Duration::ZERO);
        };
        match shortest {
            None => (Duration::ZERO, Duration::ZERO),
            Some(p) if p < s.preferred_lifetime => (
                p.checked_div(2).unwrap_or_default(),
                p.checked_mul(4).and_then(|x| x.checked_div(5)).unwrap_or(p),
            ),
            Some(_) => (s.renew_time, s.rebind_time),
        }
    }

    /// The record `g` makes of its lease, not yet written (see `handle`).
    pub(super) fn plan(
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
        // Nor does it end a hold: a binding held beyond the client's end
        // (`Lease::active_end`: the partner, which lost its storage, may
        // have extended it unseen up to MCLT past what we acknowledged,
        // RFC 8156 §4.4) stays held that long, or a Reply the client never
        // receives frees it while the client still holds the extension
        // (found by duet-sim, seeds 29355, 55179 and 61211).
        let held_until = if bound {
            valid_until.max(lease.active_end())
        } else {
            valid_until
        };
        lease.binding = Some(bk.clone());
        lease.state = LeaseState::Active;
        lease.preferred_until = g.preferred_until;
        lease.valid_until = valid_until;
        lease.t1 = wire_secs(t1);
        lease.t2 = wire_secs(t2);
        lease.cltt = ctx.now;
        lease.state_expiration = Some(held_until);
        if let Some(r) = ctx.rel {
            lease.failover.pending_update = true;
            let pl = ctx.policy.partner_lifetime(r, desired, t1, ctx.now);
            lease.failover.partner_lifetime = lease.failover.partner_lifetime.max(pl);
        }
        Some(lease)
    }

    /// Turns per-IA results into reply options (same T1/T2 in every IA,
    /// §18.1), planning the grants' records when `commit`.
    pub(super) fn finish(
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
            let mut opts = Vec::new();
            for g in &ia.grants {
                let live = g.valid_until > ctx.now;
                if commit && live {
                    let bk = binding_key(ctx, g.key.kind, ia.iaid);
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
            reply.options.push(ia_option(ia.kind, ia.iaid, it1, it2, opts));
        }
        changes
    }
}
