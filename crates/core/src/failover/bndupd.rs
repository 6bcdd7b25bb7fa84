//! BNDUPD / BNDREPLY contents (RFC 8156 §7.4–§7.7) and conflict
//! resolution (§7.5.4), as pure functions over lease records.

use crate::config::Role;
use crate::lease::{BindingKey, Lease, LeaseKey, LeaseKind, LeaseState};
use crate::net::Ipv6Prefix;
use crate::time::UnixTime;
use duet_wire::option::{IaAddr, IaNa, IaPd, IaPrefix, Status};
use duet_wire::{
    AbsTime, BindingStatus, DhcpOption, Duid, FailoverMessage, FailoverMessageType, IaKind, OptionsExt,
    StatusCode, TransactionId,
};

/// Times within this many seconds compare as equal (RFC 8156 §7.5.1).
pub(crate) const EQUAL_TIME_SLACK: u64 = 5;

/// One lease as carried in a received BNDUPD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseUpdate {
    pub(crate) key: LeaseKey,
    pub(crate) binding: Option<BindingKey>,
    pub(crate) status: BindingStatus,
    pub(crate) t1: u32,
    pub(crate) t2: u32,
    pub(crate) preferred_lifetime: u32,
    pub(crate) valid_lifetime: u32,
    pub(crate) start_time_of_state: Option<UnixTime>,
    pub(crate) state_expiration: Option<UnixTime>,
    /// Client last transaction time, absolute (LQ_BASE_TIME − CLT_TIME, A10).
    pub(crate) clt: Option<UnixTime>,
    /// OPTION_F_PARTNER_LIFETIME exactly as received (echoed bit for bit).
    pub(crate) partner_lifetime: Option<AbsTime>,
    pub(crate) partner_raw_clt: Option<UnixTime>,
    pub(crate) expiration_time: Option<UnixTime>,
    /// OPTION_LQ_BASE_TIME: when the sender wrote the data.
    pub(crate) base: UnixTime,
}

impl LeaseUpdate {
    /// When the client was given the lifetimes the update carries: the
    /// later contact of the two servers (the sender's CLT_TIME, ours as
    /// the sender recorded it), or the time of writing if neither talked
    /// to the client — the base `lifetimes_base` used to write them.
    fn lifetimes_base(&self) -> UnixTime {
        match (self.clt, self.partner_raw_clt) {
            (None, None) => self.base,
            (a, b) => a.unwrap_or(UnixTime::ZERO).max(b.unwrap_or(UnixTime::ZERO)),
        }
    }
}

/// When a lease's client was given its current lifetimes, as far as this
/// server knows: its own last contact or the partner's, whichever is
/// later (the BNDUPD's IAADDR / IAPREFIX lifetimes count from it, §7.4).
fn lifetimes_base(l: &Lease) -> Option<UnixTime> {
    let t = l.cltt.max(l.failover.partner_raw_cltt);
    (t > UnixTime::ZERO).then_some(t)
}

/// Why a lease in a BNDUPD could not even be evaluated.
pub(crate) type Reject = (StatusCode, &'static str);

/// One lease of a BNDUPD: usable, or rejected for missing information.
pub(crate) type ParsedLease = Result<LeaseUpdate, (LeaseKey, Reject)>;

/// A parsed BNDUPD: the leases it carries, each either usable or already
/// rejected for missing information (§7.5.2). `Err` rejects the whole
/// message (neither one OPTION_CLIENT_DATA nor one OPTION_IAPREFIX).
pub(crate) fn parse_bndupd(msg: &FailoverMessage<'_>, now: UnixTime) -> Result<Vec<ParsedLease>, Reject> {
    let containers: Vec<&DhcpOption<'_>> = msg
        .options
        .iter()
        .filter(|o| matches!(o, DhcpOption::ClientData(_) | DhcpOption::IaPrefix(_)))
        .collect();
    let [container] = containers.as_slice() else {
        return Err((
            StatusCode::MissingBindingInformation,
            "a BNDUPD carries exactly one OPTION_CLIENT_DATA or OPTION_IAPREFIX",
        ));
    };
    // §7.5.2: a binding in a VPN this server does not have (duet has only
    // the global default one, RFC 6607 §3.4) is rejected as a whole.
    let inner = match container {
        DhcpOption::ClientData(opts) => opts.as_slice(),
        DhcpOption::IaPrefix(p) => p.options.as_slice(),
        _ => &[],
    };
    if inner
        .iter()
        .any(|o| matches!(o, DhcpOption::Vss(v) if !is_global_vpn(v)))
    {
        return Err((
            StatusCode::ConfigurationConflict,
            "the binding is in a VPN (OPTION_VSS) this server does not have",
        ));
    }
    match container {
        DhcpOption::ClientData(opts) => {
            let duid = opts
                .client_id()
                .ok_or((StatusCode::MissingBindingInformation, "no OPTION_CLIENTID"))?;
            let base = opts
                .iter()
                .find_map(|o| match o {
                    DhcpOption::LqBaseTime(t) => Some(UnixTime::from_abs(*t, now)),
                    _ => None,
                })
                .ok_or((StatusCode::MissingBindingInformation, "no OPTION_LQ_BASE_TIME"))?;
            let mut out = Vec::new();
            for ia in opts.ias() {
                let Some(kind) = LeaseKind::of_ia(ia.kind) else {
                    continue;
                };
                let binding = BindingKey {
                    duid: duid.as_bytes().to_vec(),
                    kind,
                    iaid: ia.iaid,
                };
                for l in ia.options {
                    if let Some(u) = lease_update(l, Some(&binding), ia.t1, ia.t2, base, now) {
                        out.push(u);
                    }
                }
            }
            if out.is_empty() {
                return Err((StatusCode::MissingBindingInformation, "no IA with a lease"));
            }
            Ok(out)
        }
        DhcpOption::IaPrefix(p) => {
            let base = p
                .options
                .iter()
                .find_map(|o| match o {
                    DhcpOption::LqBaseTime(t) => Some(UnixTime::from_abs(*t, now)),
                    _ => None,
                })
                .unwrap_or(now);
            let lease = DhcpOption::IaPrefix(p.clone());
            Ok(lease_update(&lease, None, 0, 0, base, now).into_iter().collect())
        }
        _ => Err((StatusCode::MissingBindingInformation, "no binding")),
    }
}

/// OPTION_VSS naming the global default VPN (RFC 6607 §3.4: type 255,
/// no information).
fn is_global_vpn(v: &duet_wire::option::Vss<'_>) -> bool {
    v.vss_type == 255 && v.info.is_empty()
}

fn lease_update(
    o: &DhcpOption<'_>,
    binding: Option<&BindingKey>,
    t1: u32,
    t2: u32,
    base: UnixTime,
    now: UnixTime,
) -> Option<ParsedLease> {
    let (key, pref, valid, opts) = match o {
        DhcpOption::IaAddr(a) => (
            LeaseKey::address(a.address),
            a.preferred_lifetime,
            a.valid_lifetime,
            &a.options,
        ),
        DhcpOption::IaPrefix(p) => (
            LeaseKey::prefix(Ipv6Prefix::new(p.prefix, p.prefix_len)),
            p.preferred_lifetime,
            p.valid_lifetime,
            &p.options,
        ),
        _ => return None,
    };
    let abs = |code: u16| {
        opts.iter().find_map(|o| match (o, code) {
            (DhcpOption::StartTimeOfState(t), duet_wire::option::code::F_START_TIME_OF_STATE)
            | (DhcpOption::StateExpirationTime(t), duet_wire::option::code::F_STATE_EXPIRATION_TIME)
            | (DhcpOption::PartnerRawCltTime(t), duet_wire::option::code::F_PARTNER_RAW_CLT_TIME)
            | (DhcpOption::ExpirationTime(t), duet_wire::option::code::F_EXPIRATION_TIME) => {
                Some(UnixTime::from_abs(*t, now))
            }
            _ => None,
        })
    };
    let Some(status) = opts.iter().find_map(|o| match o {
        DhcpOption::BindingStatus(s) => Some(*s),
        _ => None,
    }) else {
        return Some(Err((
            key,
            (
                StatusCode::MissingBindingInformation,
                "no OPTION_F_BINDING_STATUS",
            ),
        )));
    };
    let start = abs(duet_wire::option::code::F_START_TIME_OF_STATE);
    if start.is_none() {
        return Some(Err((
            key,
            (
                StatusCode::MissingBindingInformation,
                "no OPTION_F_START_TIME_OF_STATE",
            ),
        )));
    }
    if status == BindingStatus::Active && binding.is_none() {
        return Some(Err((
            key,
            (
                StatusCode::MissingBindingInformation,
                "ACTIVE lease without a client",
            ),
        )));
    }
    let clt = opts.iter().find_map(|o| match o {
        DhcpOption::CltTime(secs) => {
            Some(base.saturating_sub(std::time::Duration::from_secs(u64::from(*secs))))
        }
        _ => None,
    });
    Some(Ok(LeaseUpdate {
        key,
        binding: binding.cloned(),
        status,
        t1,
        t2,
        preferred_lifetime: pref,
        valid_lifetime: valid,
        start_time_of_state: start,
        state_expiration: abs(duet_wire::option::code::F_STATE_EXPIRATION_TIME),
        clt,
        partner_lifetime: opts.iter().find_map(|o| match o {
            DhcpOption::PartnerLifetime(t) => Some(*t),
            _ => None,
        }),
        partner_raw_clt: abs(duet_wire::option::code::F_PARTNER_RAW_CLT_TIME),
        expiration_time: abs(duet_wire::option::code::F_EXPIRATION_TIME),
        base,
    }))
}

/// Which role may allocate a free lease from its own pool: addresses by
/// their low bit (§4.2.1: odd primary, even secondary); delegable prefixes
/// by the FREE / FREE-BACKUP state (§4.2.2).
pub(crate) fn owner_of_free(key: &LeaseKey, state: LeaseState) -> Role {
    match key.kind {
        LeaseKind::Na => {
            if u128::from(key.prefix.addr()) & 1 == 1 {
                Role::Primary
            } else {
                Role::Secondary
            }
        }
        LeaseKind::Pd => {
            if state == LeaseState::FreeBackup {
                Role::Secondary
            } else {
                Role::Primary
            }
        }
    }
}

/// The state a lease takes when it becomes PENDING-FREE: FREE or
/// FREE-BACKUP by the pool rule (§7.2 events 5, 6, following the text, A6).
pub(crate) fn pending_free_resolves_to(key: &LeaseKey) -> LeaseState {
    match key.kind {
        LeaseKind::Na if u128::from(key.prefix.addr()) & 1 == 0 => LeaseState::FreeBackup,
        _ => LeaseState::Free,
    }
}

/// The state a received binding status is stored as (A7: PENDING-FREE is
/// resolved at once; unknown values are refused).
pub(crate) fn stored_state(u: &LeaseUpdate) -> Option<LeaseState> {
    match u.status {
        BindingStatus::PendingFree => Some(pending_free_resolves_to(&u.key)),
        s => LeaseState::from_wire(s),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Later,
    Earlier,
    Equal,
}

fn compare(a: UnixTime, b: UnixTime) -> Order {
    if a.secs() > b.secs().saturating_add(EQUAL_TIME_SLACK) {
        Order::Later
    } else if a.secs().saturating_add(EQUAL_TIME_SLACK) < b.secs() {
        Order::Earlier
    } else {
        Order::Equal
    }
}

/// Accept or reject one received lease (RFC 8156 §7.5.4, figure 4;
/// digest §13.3). `receiver` is this server's role.
///
/// Readings beyond the table (docs/failover.md):
/// * "equal" times (±5 s) in an *accept* cell: the secondary accepts, the
///   primary rejects (A8 says reject; rejecting on both sides could leave
///   the two tables different forever, since a resent update carries the
///   same times; with the primary's data winning ties they converge, the
///   same tie-break accept(3) uses). Except that a tie between the same
///   client's ACTIVE binding and a RELEASED that crossed it (recorded
///   without knowing the ACTIVE's last client contact) goes to ACTIVE, on
///   both sides.
/// * an ACTIVE update for a lease that is free *in the sender's own pool*
///   is accepted whatever the times: the sender may allocate its own pool
///   in every responsive state (§4.2), so there is nothing to judge.
pub(crate) fn resolve(
    local: Option<&Lease>,
    u: &LeaseUpdate,
    now: UnixTime,
    receiver: Role,
) -> Result<(), StatusCode> {
    let Some(local) = local else { return Ok(()) };
    let Some(new_state) = stored_state(u) else {
        return Err(StatusCode::MissingBindingInformation);
    };
    let start = u.start_time_of_state.unwrap_or(UnixTime::ZERO);
    let update_time = match new_state {
        LeaseState::Active | LeaseState::Expired | LeaseState::Released => u.clt.unwrap_or(start),
        _ => u.clt.map_or(start, |c| c.max(start)),
    };
    let local_time = if local.cltt > UnixTime::ZERO {
        local.cltt
    } else {
        local.start_time_of_state
    };
    // A tie never takes a binding from the client we gave it to: a
    // RELEASED / RESET / ABANDONED update about another client, within 5 s
    // of our ACTIVE binding, is about the lease's previous binding
    // (duet-sim seed 13618 of 6c1e5f3: the secondary had just given its
    // own, acknowledged-free address to a new client).
    let other_client_active = local.state == LeaseState::Active && local.binding != u.binding;
    let accept_cell = || match compare(update_time, local_time) {
        Order::Later => Ok(()),
        Order::Earlier => Err(StatusCode::OutdatedBindingInformation),
        Order::Equal if receiver == Role::Secondary && !other_client_active => Ok(()),
        Order::Equal => Err(StatusCode::OutdatedBindingInformation),
    };
    // time(2): the update's CLT is later than the local start-time-of-state
    // (A8: no CLT → reject).
    let time2 = || {
        u.clt
            .is_some_and(|c| compare(c, local.start_time_of_state) == Order::Later)
    };
    let sender = match receiver {
        Role::Primary => Role::Secondary,
        Role::Secondary => Role::Primary,
    };
    // The same client's ACTIVE binding and its RELEASED, within 5 s, that
    // crossed: the server that recorded the Release had not heard of the
    // other's last contact with the client (the update's
    // OPTION_F_PARTNER_RAW_CLT_TIME, §7.4, is earlier than the holder's
    // CLT). Both servers answered the client apart (COMMUNICATIONS-
    // INTERRUPTED, or a refused partner), the times cannot order the two
    // answers, and the client may have asked again after its Release (a
    // Release to one server, a Request to the other): the ACTIVE binding
    // wins the tie, on both sides alike, so the tables still converge — on
    // a lease kept until its client's end rather than one given twice
    // (duet-sim seed 43557: the primary's clock, stepped 8.6 s ahead,
    // brought a Release 12.9 s before the secondary's new grant within
    // the 5 s, the secondary took it, and the client's binding was lost).
    let tie = compare(update_time, local_time) == Order::Equal;
    let same_client = local.binding.is_some() && local.binding == u.binding;
    let crossed_release =
        |release_knew: UnixTime, active_clt: UnixTime| same_client && tie && release_knew < active_clt;
    match (local.state, new_state) {
        (LeaseState::Active, LeaseState::Active) => {
            if local.binding == u.binding || time2() || receiver == Role::Secondary {
                Ok(())
            } else {
                Err(StatusCode::AddressInUse)
            }
        }
        // time(1): our ACTIVE lease must have run out.
        (LeaseState::Active, LeaseState::Expired | LeaseState::Free | LeaseState::FreeBackup) => {
            if now >= local.valid_until {
                Ok(())
            } else {
                Err(StatusCode::OutdatedBindingInformation)
            }
        }
        (LeaseState::Reset, LeaseState::Active) => {
            if time2() {
                Ok(())
            } else {
                Err(StatusCode::OutdatedBindingInformation)
            }
        }
        (LeaseState::Free | LeaseState::FreeBackup, LeaseState::Active)
            if owner_of_free(&local.key, local.state) == sender =>
        {
            Ok(())
        }
        // The same, one step earlier: our copy still shows the previous
        // client's EXPIRED or RELEASED lease (our update that it became
        // FREE / FREE-BACKUP was lost to a tie, or is on its way), and the
        // server whose pool it returns to has given it to another client.
        // That server moved it on only after we acknowledged the end
        // (§7.2 event 4), so within the tie it is the one to believe
        // (seed 13618).
        // Only a tie is decided so: an earlier update stays outdated.
        (LeaseState::Expired | LeaseState::Released, LeaseState::Active)
            if local.binding != u.binding
                && owner_of_free(&local.key, pending_free_resolves_to(&local.key)) == sender
                && compare(update_time, local_time) == Order::Equal =>
        {
            Ok(())
        }
        // Our copy of this client's binding ran out, but the partner knows it
        // runs longer (it renewed it without our knowing): the client holds
        // it, whatever the times say (a renewal at the moment our copy ran
        // out compares "equal", and the primary would reject it forever;
        // found by duet-sim, seed 7697).
        (LeaseState::Expired, LeaseState::Active)
            if local.binding == u.binding && u.state_expiration.is_some_and(|e| e > local.valid_until) =>
        {
            Ok(())
        }
        // The crossing above, seen by the holder of the ACTIVE binding.
        (LeaseState::Active, LeaseState::Released)
            if crossed_release(u.partner_raw_clt.unwrap_or(UnixTime::ZERO), local.cltt) =>
        {
            Err(StatusCode::OutdatedBindingInformation)
        }
        // And by the holder of the RELEASED one.
        (LeaseState::Released, LeaseState::Active)
            if crossed_release(local.failover.partner_raw_cltt, u.clt.unwrap_or(UnixTime::ZERO)) =>
        {
            Ok(())
        }
        _ => accept_cell(),
    }
}

/// Applies an accepted update to the local record (§7.5.5, A9, A10).
///
/// An ACTIVE lease has two ends: the client's (`valid_until`, from the
/// lifetimes as given, counted from the client contact they were given
/// at) and the state's (OPTION_F_STATE_EXPIRATION_TIME, later when a
/// server holds the binding beyond it: see `partner_lost_its_storage`).
pub(crate) fn apply(local: Option<&Lease>, u: &LeaseUpdate, now: UnixTime) -> Option<Lease> {
    let state = stored_state(u)?;
    let update_end = u.state_expiration.unwrap_or(now);
    let base = u.lifetimes_base();
    let client_end = base
        .saturating_add(std::time::Duration::from_secs(u64::from(u.valid_lifetime)))
        .min(update_end);
    // The same client's binding never ends earlier than a lifetime either
    // server promised it: an older (or concurrent) update may carry a
    // shorter one than we gave (found by duet-sim, seed 50). The caller
    // sends our longer end back (`pending_update` stays set).
    let same = local
        .filter(|x| state == LeaseState::Active && x.state == LeaseState::Active && x.binding == u.binding);
    let (valid_until, active_end, kept) = match same {
        Some(x) => {
            let ours = x.active_end();
            (
                x.valid_until.max(client_end),
                ours.max(update_end),
                ours > update_end || x.valid_until > client_end,
            )
        }
        None => (client_end, update_end, false),
    };
    let mut l = local.cloned().unwrap_or_else(|| Lease::free(u.key, state, now));
    l.state = state;
    if u.binding.is_some() {
        l.binding = u.binding.clone();
    }
    l.start_time_of_state = u.start_time_of_state.unwrap_or(now);
    if state == LeaseState::Active {
        l.state_expiration = Some(active_end);
        l.valid_until = valid_until;
        l.preferred_until = base
            .saturating_add(std::time::Duration::from_secs(u64::from(u.preferred_lifetime)))
            .min(valid_until);
        l.t1 = u.t1;
        l.t2 = u.t2;
    } else {
        l.state_expiration = u.state_expiration;
    }
    if let Some(pl) = u.partner_lifetime {
        // expiration-time: what we acknowledged to the partner.
        l.failover.expiration_time = l.failover.expiration_time.max(UnixTime::from_abs(pl, now));
    }
    if let Some(c) = u.clt {
        l.failover.partner_raw_cltt = c;
    }
    if let Some(c) = u.partner_raw_clt {
        l.cltt = l.cltt.max(c);
    }
    if let Some(e) = u.expiration_time {
        l.failover.partner_lifetime = l.failover.partner_lifetime.max(e);
    }
    // Our record now says what the partner says: nothing to send back
    // (unless we kept a later end).
    l.failover.pending_update = kept;
    Some(l)
}

fn lease_options(l: &Lease, state: LeaseState, now: UnixTime) -> Vec<DhcpOption<'static>> {
    let mut o = vec![
        DhcpOption::BindingStatus(state.to_wire()),
        DhcpOption::StartTimeOfState(l.start_time_of_state.to_abs()),
    ];
    let timed = state == LeaseState::Active || l.state_expiration.is_some();
    if timed {
        let exp = if state == LeaseState::Active {
            l.active_end()
        } else {
            l.state_expiration.unwrap_or(l.valid_until)
        };
        o.push(DhcpOption::StateExpirationTime(exp.to_abs()));
    }
    if l.cltt > UnixTime::ZERO {
        o.push(DhcpOption::CltTime(
            u32::try_from(now.since(l.cltt).as_secs()).unwrap_or(u32::MAX),
        ));
    }
    if timed {
        o.push(DhcpOption::PartnerLifetime(
            l.failover.partner_lifetime.max(l.valid_until).to_abs(),
        ));
        o.push(DhcpOption::ExpirationTime(l.failover.expiration_time.to_abs()));
    }
    if l.failover.partner_raw_cltt > UnixTime::ZERO {
        o.push(DhcpOption::PartnerRawCltTime(
            l.failover.partner_raw_cltt.to_abs(),
        ));
    }
    o
}

/// The partner lifetime a BNDUPD for `l` carries (what the partner will
/// acknowledge): never below the client's own lease end.
pub(crate) fn sent_partner_lifetime(l: &Lease) -> UnixTime {
    l.failover.partner_lifetime.max(l.valid_until)
}

/// Builds the BNDUPD for one lease (§7.4), announcing `state` (normally the
/// lease's own; different when taking a prefix back, §4.2.2).
pub(crate) fn build_bndupd(
    l: &Lease,
    state: LeaseState,
    xid: TransactionId,
    now: UnixTime,
) -> Option<FailoverMessage<'static>> {
    let mut msg = FailoverMessage::new(FailoverMessageType::BndUpd, xid, now.to_abs());
    let opts = lease_options(l, state, now);
    // §7.4: the lifetimes as given to the client (the receiver counts them
    // from the same contact time: `LeaseUpdate::lifetimes_base`).
    let since = lifetimes_base(l).unwrap_or(now);
    let (pref, valid) = if state == LeaseState::Active {
        (
            since.secs_until(l.preferred_until),
            since.secs_until(l.valid_until),
        )
    } else {
        (0, 0)
    };
    let lease_opt = match l.key.kind {
        LeaseKind::Na => DhcpOption::IaAddr(IaAddr {
            address: l.key.prefix.addr(),
            preferred_lifetime: pref,
            valid_lifetime: valid,
            options: opts,
        }),
        LeaseKind::Pd => DhcpOption::IaPrefix(IaPrefix {
            preferred_lifetime: pref,
            valid_lifetime: valid,
            prefix_len: l.key.prefix.len(),
            prefix: l.key.prefix.addr(),
            options: opts,
        }),
    };
    match &l.binding {
        Some(b) => {
            let duid = Duid::new(b.duid.clone()).ok()?;
            let ia = match b.kind {
                LeaseKind::Na => DhcpOption::IaNa(IaNa {
                    iaid: b.iaid,
                    t1: l.t1,
                    t2: l.t2,
                    options: vec![lease_opt],
                }),
                LeaseKind::Pd => DhcpOption::IaPd(IaPd {
                    iaid: b.iaid,
                    t1: l.t1,
                    t2: l.t2,
                    options: vec![lease_opt],
                }),
            };
            msg.options.push(DhcpOption::ClientData(vec![
                DhcpOption::ClientId(duid),
                DhcpOption::LqBaseTime(now.to_abs()),
                ia,
            ]));
        }
        // §7.4 (b): a delegable prefix bound to no client.
        None if l.key.kind == LeaseKind::Pd => {
            let DhcpOption::IaPrefix(mut p) = lease_opt else {
                return None;
            };
            p.options.insert(0, DhcpOption::LqBaseTime(now.to_abs()));
            msg.options.push(DhcpOption::IaPrefix(p));
        }
        None => return None,
    }
    Some(msg)
}

/// One lease's verdict for a BNDREPLY.
pub(crate) struct Verdict<'u> {
    pub(crate) update: &'u LeaseUpdate,
    pub(crate) result: Result<(), StatusCode>,
}

/// Builds the BNDREPLY (§7.6) echoing each lease with its verdict. For a
/// message rejected as a whole, pass `whole = Some(status)`.
pub(crate) fn build_bndreply(
    request: &FailoverMessage<'_>,
    verdicts: &[Verdict<'_>],
    whole: Option<(StatusCode, &'static str)>,
    now: UnixTime,
) -> FailoverMessage<'static> {
    let mut reply = FailoverMessage::new(
        FailoverMessageType::BndReply,
        request.transaction_id,
        now.to_abs(),
    );
    let status_opt = |code: StatusCode, text: &'static str| DhcpOption::StatusCode(Status::new(code, text));
    if let Some((code, text)) = whole {
        // Echo the container with the status in it.
        for o in &request.options {
            match o {
                DhcpOption::ClientData(inner) => {
                    let mut v = vec![status_opt(code, text)];
                    if let Some(d) = inner.client_id() {
                        v.insert(0, DhcpOption::ClientId(d.clone().into_owned()));
                    }
                    // §7.6: OPTION_VSS as received.
                    v.extend(
                        inner
                            .iter()
                            .filter(|x| matches!(x, DhcpOption::Vss(_)))
                            .map(|x| x.clone().into_owned()),
                    );
                    reply.options.push(DhcpOption::ClientData(v));
                }
                DhcpOption::IaPrefix(p) => reply.options.push(DhcpOption::IaPrefix(IaPrefix {
                    options: vec![status_opt(code, text)],
                    ..p.clone().into_owned()
                })),
                _ => {}
            }
        }
        if reply.options.is_empty() {
            reply.options.push(status_opt(code, text));
        }
        return reply;
    }
    let lease_reply = |v: &Verdict<'_>| {
        let u = v.update;
        let mut opts = Vec::new();
        if let Err(code) = v.result {
            opts.push(status_opt(
                code,
                match code {
                    StatusCode::AddressInUse => "address in use by another client",
                    StatusCode::OutdatedBindingInformation => "our binding information is more recent",
                    StatusCode::ConfigurationConflict => "not in this relationship's pools",
                    _ => "rejected",
                },
            ));
        }
        opts.push(DhcpOption::BindingStatus(u.status));
        if let Some(e) = u.state_expiration {
            opts.push(DhcpOption::StateExpirationTime(e.to_abs()));
        }
        if let Some(pl) = u.partner_lifetime {
            opts.push(DhcpOption::PartnerLifetimeSent(pl));
        }
        match u.key.kind {
            LeaseKind::Na => DhcpOption::IaAddr(IaAddr {
                address: u.key.prefix.addr(),
                preferred_lifetime: u.preferred_lifetime,
                valid_lifetime: u.valid_lifetime,
                options: opts,
            }),
            LeaseKind::Pd => DhcpOption::IaPrefix(IaPrefix {
                preferred_lifetime: u.preferred_lifetime,
                valid_lifetime: u.valid_lifetime,
                prefix_len: u.key.prefix.len(),
                prefix: u.key.prefix.addr(),
                options: opts,
            }),
        }
    };
    let client = verdicts.iter().find_map(|v| v.update.binding.as_ref());
    match client {
        Some(b) => {
            let mut cd: Vec<DhcpOption<'static>> = Vec::new();
            if let Ok(d) = Duid::new(b.duid.clone()) {
                cd.push(DhcpOption::ClientId(d));
            }
            // Group leases back into their IAs, in order.
            let mut ias: Vec<(LeaseKind, u32, u32, u32, Vec<DhcpOption<'static>>)> = Vec::new();
            for v in verdicts {
                let Some(bk) = &v.update.binding else { continue };
                let item = lease_reply(v);
                match ias.iter_mut().find(|(k, i, ..)| *k == bk.kind && *i == bk.iaid) {
                    Some(ia) => ia.4.push(item),
                    None => ias.push((bk.kind, bk.iaid, v.update.t1, v.update.t2, vec![item])),
                }
            }
            for (kind, iaid, t1, t2, options) in ias {
                cd.push(match kind {
                    LeaseKind::Na => DhcpOption::IaNa(IaNa {
                        iaid,
                        t1,
                        t2,
                        options,
                    }),
                    LeaseKind::Pd => DhcpOption::IaPd(IaPd {
                        iaid,
                        t1,
                        t2,
                        options,
                    }),
                });
            }
            reply.options.push(DhcpOption::ClientData(cd));
        }
        None => {
            for v in verdicts {
                reply.options.push(lease_reply(v));
            }
        }
    }
    reply
}

/// One lease's outcome in a received BNDREPLY (§7.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) key: LeaseKey,
    pub(crate) result: Result<(), StatusCode>,
    pub(crate) partner_lifetime_sent: Option<AbsTime>,
}

/// Reads the per-lease outcomes of a BNDREPLY: an error status at any level
/// rejects everything nested below it (§7.6).
pub(crate) fn parse_bndreply(msg: &FailoverMessage<'_>) -> Vec<Ack> {
    fn failed(opts: &[DhcpOption<'_>]) -> Option<StatusCode> {
        opts.status()
            .map(|s| s.code)
            .filter(|c| *c != StatusCode::Success)
    }
    fn lease(o: &DhcpOption<'_>, inherited: Option<StatusCode>) -> Option<Ack> {
        let (key, opts) = match o {
            DhcpOption::IaAddr(a) => (LeaseKey::address(a.address), &a.options),
            DhcpOption::IaPrefix(p) => (
                LeaseKey::prefix(Ipv6Prefix::new(p.prefix, p.prefix_len)),
                &p.options,
            ),
            _ => return None,
        };
        let err = inherited.or_else(|| failed(opts));
        Some(Ack {
            key,
            result: err.map_or(Ok(()), Err),
            partner_lifetime_sent: opts.iter().find_map(|o| match o {
                DhcpOption::PartnerLifetimeSent(t) => Some(*t),
                _ => None,
            }),
        })
    }
    let top = failed(&msg.options);
    let mut acks = Vec::new();
    for o in &msg.options {
        match o {
            DhcpOption::ClientData(cd) => {
                let cd_err = top.or_else(|| failed(cd));
                for ia in cd.ias().filter(|ia| ia.kind != IaKind::Ta) {
                    let err = cd_err.or_else(|| failed(ia.options));
                    acks.extend(ia.options.iter().filter_map(|l| lease(l, err)));
                }
            }
            DhcpOption::IaPrefix(_) => acks.extend(lease(o, top)),
            _ => {}
        }
    }
    acks
}

/// A STATUS option's text, for logs.
pub(crate) fn status_text(o: &[DhcpOption<'_>]) -> String {
    o.status()
        .map(|s| format!("{} ({})", s.code, s.message_lossy()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
