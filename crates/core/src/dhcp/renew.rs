//! Renew (RFC 8415 §18.3.4) and Rebind (§18.3.5): extending what a client
//! holds, and telling it what it no longer does.

use super::ia::{binding_key, client_ias, Grant, IaReply, MAX_IAS_SERVED, MAX_LEASES_PER_IA};
use super::options::add_config_options;
use super::process::{reply_base, Ctx, Processed};
use super::{Dhcpv6Server, Discard};
use crate::lease::{LeaseKey, LeaseKind, LeaseState};
use duet_wire::{MessageType, StatusCode};

/// Renew (§18.3.4) and Rebind (§18.3.5).
pub(super) fn extend(srv: &mut Dhcpv6Server, ctx: &Ctx<'_, '_>, rebind: bool) -> Processed {
    let prefix = srv
        .subnet(ctx.subnet)
        .map(|s| s.cfg.prefix)
        .ok_or(Discard::NoSubnet)?;
    let mut ias = Vec::new();
    let mut anything = false;
    for (n, ia) in client_ias(ctx.client).into_iter().enumerate() {
        // Past the cap, and for an IA_TA (never given), no binding.
        let kind = match ia.lease_kind() {
            Some(k) if n < MAX_IAS_SERVED => k,
            _ => {
                let why = if n < MAX_IAS_SERVED {
                    "no binding for this IA"
                } else {
                    "too many IAs in one message"
                };
                ias.push(IaReply::refused(&ia, StatusCode::NoBinding, why));
                continue;
            }
        };
        let bk = binding_key(ctx, kind, ia.iaid);
        let mut out = IaReply::to(&ia);
        let owned: Vec<LeaseKey> = srv
            .db
            .of_binding(&bk)
            .filter(|l| l.is_active_for(&bk, ctx.now))
            .map(|l| l.key)
            .take(MAX_LEASES_PER_IA)
            .collect();
        for key in &owned {
            // Reserved for another client since it was given (a
            // reservation added to the configuration): not extended; the
            // client drops it and asks for another (§18.3.4).
            if srv.reserved_for_another(ctx, key) {
                out.grants.push(Grant::withdrawn(*key, ctx.now));
                continue;
            }
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
        for key in ia.named().filter(|k| !owned.contains(k)) {
            let off_link = match key.kind {
                LeaseKind::Na => !prefix.contains(key.prefix.addr()),
                LeaseKind::Pd => srv.db.pd_pool_of(&key.prefix).is_none(),
            };
            let someone_elses = srv.db.get(&key).is_some_and(|l| {
                l.state == LeaseState::Active && l.valid_until > ctx.now && l.binding.as_ref() != Some(&bk)
            });
            if off_link || someone_elses {
                out.grants.push(Grant::withdrawn(key, ctx.now));
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
        return Err(Discard::NothingToSay);
    }
    let mut reply = reply_base(srv.duid(), ctx.client, MessageType::Reply);
    let changes = srv.finish(ctx, &mut reply, ias, true);
    add_config_options(
        &mut reply,
        ctx.client,
        srv.subnet(ctx.subnet).map(|s| &s.cfg),
        ctx.reservation,
    );
    Ok((reply, changes))
}
