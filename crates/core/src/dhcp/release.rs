//! Release (RFC 8415 §18.3.7) and Decline (§18.3.8): leases a client gives
//! back, or says are in use by someone else on its link.

use super::ia::{binding_key, client_ias, ia_option, MAX_IAS_SERVED};
use super::process::{reply_base, status, Ctx, Processed};
use super::Dhcpv6Server;
use crate::lease::{Lease, LeaseKind};
use crate::policy::{LeasePolicy, Retire, Standalone};
use duet_wire::{MessageType, StatusCode};

/// Release (§18.3.7) and Decline (§18.3.8).
pub(super) fn retire(srv: &mut Dhcpv6Server, ctx: &Ctx<'_, '_>, event: Retire) -> Processed {
    let standalone = Standalone {
        decline_probation: srv.options.decline_probation,
    };
    let mut reply = reply_base(srv.duid(), ctx.client, MessageType::Reply);
    let mut changes = Vec::new();
    let mut ia_opts = Vec::new();
    for (n, ia) in client_ias(ctx.client).into_iter().enumerate() {
        // Past the cap, and for an IA_TA (never given), no binding.
        let bound: Vec<Lease> = match ia.lease_kind() {
            Some(kind) if n < MAX_IAS_SERVED => {
                let bk = binding_key(ctx, kind, ia.iaid);
                srv.db
                    .of_binding(&bk)
                    .filter(|l| l.is_active_for(&bk, ctx.now))
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        if bound.is_empty() {
            let no_binding = vec![status(StatusCode::NoBinding, "no binding for this IA")];
            ia_opts.push(ia_option(ia.kind, ia.iaid, 0, 0, no_binding));
            continue;
        }
        // Decline concerns addresses only (digest D6).
        if event == Retire::Declined && ia.lease_kind() == Some(LeaseKind::Pd) {
            continue;
        }
        for mut lease in bound.into_iter().filter(|l| ia.listed.contains(&l.key)) {
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
