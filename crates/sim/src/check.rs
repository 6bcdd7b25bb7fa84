//! The invariants (see the crate documentation for their statements and
//! why they hold at every instant in this fault model).
//!
//! Stores change only at commits, and clients' views only when a client
//! takes or drops a lease, so each check runs exactly where its inputs
//! change: invariant 1 and 3 when a client takes a lease, 2 and 3 at every
//! commit, 4 at every Renew / Rebind a server processes, 5 at the end, 6
//! when a server enters PARTNER-DOWN, 7 at every STATE a server sends, 8
//! at every Solicit a secondary in NORMAL processes, 9 at the operator's
//! commissioning and when the partner of the server alone starts, 10 when
//! a handover's DISCONNECT is delivered.

use crate::world::{binding_of, Datagram, Holding, Orphan, World};
use crate::Invariant;
use duet_core::dhcp::Discard;
use duet_core::lease::{BindingKey, Lease, LeaseKey, LeaseKind, LeaseState};
use duet_core::time::UnixTime;
use duet_wire::OptionsExt;
use duet_wire::{DhcpOption, Message, MessageType, ServerState};
use std::collections::BTreeMap;

/// The table of a server, normalised for comparison across servers
/// (available addresses are omitted; the client of an available prefix is
/// not compared).
pub(crate) type Table = BTreeMap<LeaseKey, (LeaseState, Option<Vec<u8>>, UnixTime)>;

impl World {
    /// Slack for comparing times across clocks, seconds: the largest
    /// difference between two clocks (offsets within ±bound, plus the
    /// seed's largest clock step: times a server wrote while its clock was
    /// off stay off for the rest of the run; all of a seed's steps go the
    /// same way, so a later step adds no more) plus the core's whole-second
    /// rounding. At most 4 + 15 + 2 = 21 s, below the smallest MCLT
    /// (30 s): every overlap a real bug produces is MCLT-sized or a whole
    /// lease.
    pub(crate) fn tolerance_s(&self) -> u64 {
        let b = self
            .scen
            .clocks
            .iter()
            .map(|c| c.bound_ms.max(0) as u64)
            .max()
            .unwrap_or(0);
        let step = self.scen.step_max_ms.max(0) as u64;
        (2 * b + step).div_ceil(1000) + 2
    }

    fn tolerance_ms(&self) -> u64 {
        self.tolerance_s() * 1000
    }

    /// Whether server `node`'s store says `client` holds `key` until at
    /// least `until_ms` (true time, within the tolerance).
    pub(crate) fn covered(&self, node: usize, key: &LeaseKey, binding: &BindingKey, until_ms: u64) -> bool {
        self.nodes[node].store.get(key).is_some_and(|l| {
            l.state == LeaseState::Active
                && l.binding.as_ref() == Some(binding)
                && l.valid_until.0 * 1000 + self.tolerance_ms() >= until_ms
        })
    }

    /// Why the protocol no longer protects a binding whose granting server
    /// lost its store, if it does not (invariant 1 keeps applying to
    /// protected ones). It protects a binding unless:
    ///
    /// * it was granted in PARTNER-DOWN: no MCLT cap, and no other store
    ///   knew it;
    /// * or `partner`'s store was lost too since the client got the lease,
    ///   or does not record having communicated: nothing is left, and a
    ///   pair that both lost their storage looks new (RFC 8156 §8.6.2 lets
    ///   a new pair skip the MCLT wait);
    /// * or `partner`'s store was lost earlier and has not finished
    ///   downloading the granting server's copy (UPDREQALL): what it knows
    ///   is part of what the granting store held, which is now lost too —
    ///   both copies of the relationship are gone, including which server
    ///   owns each free prefix (duet-sim seed 28841: the primary, wiped and
    ///   cut off mid-download, later took a prefix the wiped secondary had
    ///   delegated while it was down, believing it its own).
    ///
    /// Everything else the MCLT rule covers: a lease given within MCLT of
    /// what the partner acknowledged for it, which the partner keeps that
    /// long once its partner asks for everything (UPDREQALL), and the
    /// recovering server waits MCLT before serving (RECOVER-WAIT).
    pub(crate) fn unprotected(&self, partner: usize, uncapped: bool, since_ms: u64) -> Option<Orphan> {
        let p = &self.nodes[partner];
        if uncapped {
            Some(Orphan::Uncapped)
        } else if p.wiped_at.is_some_and(|w| w >= since_ms)
            || !p.recorded_communicated
            || p.recorded_download_pending
        {
            Some(Orphan::BothLost)
        } else {
            None
        }
    }

    /// Invariants 1 and 3 when client `client` takes `key` from `node` in
    /// its IA `iaid`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_hold(
        &mut self,
        client: u32,
        iaid: u32,
        key: LeaseKey,
        until_ms: u64,
        node: usize,
        lost: bool,
        orphan: Option<Orphan>,
    ) {
        let tol = self.tolerance_ms();
        // 11: a reserved lease goes to its owner only.
        if let Some(owner) = self.reserved_owner(&key) {
            if owner != client {
                return self.fail(
                    Invariant::Reservation,
                    format!(
                        "client {client} was just given {key} by {}, reserved for client {owner}",
                        crate::trace::node_name(node)
                    ),
                );
            }
            self.stats.reserved_grants += 1;
        }
        // 1: nobody else holds it (or an overlapping prefix).
        let others: Vec<(LeaseKey, Holding)> = match key.kind {
            LeaseKind::Na => self
                .holders
                .get(&key)
                .into_iter()
                .flatten()
                .map(|h| (key, *h))
                .collect(),
            LeaseKind::Pd => self
                .holders
                .iter()
                .filter(|(k, _)| k.kind == LeaseKind::Pd && k.prefix.overlaps(&key.prefix))
                .flat_map(|(k, v)| v.iter().map(|h| (*k, *h)))
                .collect(),
        };
        for (k, h) in others {
            if (h.client == client && h.iaid == iaid) || h.valid_until_ms <= self.now + tol {
                continue;
            }
            // 1 within one client: two of its IAs given the same lease.
            if h.client == client {
                return self.fail(
                    Invariant::DoubleHolding,
                    format!(
                        "client {client} was just given {key} by {} in its IA {iaid}, but holds {k} in its IA {} too",
                        crate::trace::node_name(node),
                        h.iaid
                    ),
                );
            }
            if let Some(why) = h.orphan.or(orphan) {
                // Beyond the protocol's protection: counted, not failed.
                let first = self
                    .holders
                    .get_mut(&k)
                    .and_then(|v| v.iter_mut().find(|x| x.client == h.client))
                    .is_some_and(|x| !std::mem::replace(&mut x.conflicted, true));
                if first {
                    self.stats.orphan_conflicts[why as usize] += 1;
                }
                continue;
            }
            {
                let note = if h.lost {
                    ", a binding whose store was lost but which the MCLT rule should protect"
                } else {
                    ""
                };
                return self.fail(
                    Invariant::DoubleHolding,
                    format!(
                        "client {client} was just given {key} by {}, but client {} still holds {k} for {} s (from {}{note})",
                        crate::trace::node_name(node),
                        h.client,
                        (h.valid_until_ms - self.now) / 1000,
                        crate::trace::node_name(h.node),
                    ),
                );
            }
        }
        // 3: the binding is durable somewhere.
        let binding = binding_of(&self.clients[client as usize], key.kind, iaid);
        // 1 within one client, seen in a store: the lease was given to
        // another IA of the same client in the same exchange.
        for n in [node, 1 - node] {
            let live = self.nodes[n]
                .store
                .get(&key)
                .filter(|l| l.state == LeaseState::Active);
            if let Some(other) = live.and_then(|l| l.binding.clone()) {
                if other.duid == binding.duid && other.kind == binding.kind && other.iaid != iaid {
                    let busy = self.clients[client as usize].holding(&key).count() > 1;
                    if busy || until_ms > self.now + tol && !self.covered(node, &key, &binding, until_ms) {
                        return self.fail(
                            Invariant::DoubleHolding,
                            format!(
                                "client {client} was just given {key} by {} in its IA {iaid}, which {}'s store binds to its IA {}",
                                crate::trace::node_name(node),
                                crate::trace::node_name(n),
                                other.iaid
                            ),
                        );
                    }
                }
            }
        }
        if !lost
            && until_ms > self.now + tol
            && !self.covered(node, &key, &binding, until_ms)
            && !self.covered(1 - node, &key, &binding, until_ms)
        {
            let why = self.store_view(&key);
            self.fail(
                Invariant::DurableBinding,
                format!(
                    "client {client} got a Reply from {} for {key} valid {} s, but no store holds that binding ({why})",
                    crate::trace::node_name(node),
                    (until_ms - self.now) / 1000
                ),
            );
        }
    }

    fn store_view(&self, key: &LeaseKey) -> String {
        let show = |n: usize| match self.nodes[n].store.get(key) {
            Some(l) => format!(
                "{}: {} for {:?} until {} (local now {})",
                crate::trace::node_name(n),
                l.state,
                l.binding.as_ref().map(|b| hex(&b.duid)),
                l.valid_until,
                self.nodes[n].local(self.now)
            ),
            None => format!("{}: no record", crate::trace::node_name(n)),
        };
        format!("{}; {}", show(0), show(1))
    }

    /// Invariants 2 and 3 after `node` committed `leases`.
    pub(crate) fn check_commit(&mut self, node: usize, leases: &[Lease]) {
        let tol = self.tolerance_s();
        let tol_ms = self.tolerance_ms();
        let partner = 1 - node;
        let local = self.nodes[node].local(self.now);
        let plocal = self.nodes[partner].local(self.now);
        for l in leases {
            let live =
                |x: &Lease, at: UnixTime| x.state == LeaseState::Active && x.valid_until.0 > at.0 + tol;
            if let Some(owner) = self.reserved_owner(&l.key) {
                let duid = crate::node::client_duid(owner);
                if l.state == LeaseState::Active && l.binding.as_ref().is_some_and(|b| b.duid != duid) {
                    let why = self.store_view(&l.key);
                    return self.fail(
                        Invariant::Reservation,
                        format!(
                            "{} is reserved for client {owner}, and bound to another: {why}",
                            l.key
                        ),
                    );
                }
            }
            if live(l, local) {
                // 2 (across stores): a resource live on both is the same binding.
                if let Some(p) = self.nodes[partner].store.get(&l.key) {
                    if live(p, plocal) && p.binding != l.binding {
                        let why = self.store_view(&l.key);
                        return self.fail(
                            Invariant::StoreConsistency,
                            format!(
                                "{} is active for different clients on the two servers: {why}",
                                l.key
                            ),
                        );
                    }
                }
                // 2 (within a store): no two live delegations overlap.
                if l.key.kind == LeaseKind::Pd {
                    let n = &self.nodes[node];
                    let clash = n.active_pd.iter().find(|k| {
                        **k != l.key
                            && k.prefix.overlaps(&l.key.prefix)
                            && n.store.get(k).is_some_and(|x| live(x, local))
                    });
                    if let Some(k) = clash {
                        let msg = format!(
                            "{} holds overlapping active prefixes {} and {}",
                            crate::trace::node_name(node),
                            l.key,
                            k
                        );
                        return self.fail(Invariant::StoreConsistency, msg);
                    }
                }
            }
            // 3: what clients hold stays durable somewhere.
            let holders: Vec<(u32, u32, u64)> = self
                .holders
                .get(&l.key)
                .into_iter()
                .flatten()
                .filter(|h| !h.lost && h.valid_until_ms > self.now + tol_ms)
                .map(|h| (h.client, h.iaid, h.valid_until_ms))
                .collect();
            for (c, iaid, until) in holders {
                let b = binding_of(&self.clients[c as usize], l.key.kind, iaid);
                if !self.covered(node, &l.key, &b, until) && !self.covered(partner, &l.key, &b, until) {
                    let why = self.store_view(&l.key);
                    return self.fail(
                        Invariant::DurableBinding,
                        format!(
                            "client {c} holds {} for {} s more, but after a commit by {} no store has that binding ({why})",
                            l.key,
                            (until - self.now) / 1000,
                            crate::trace::node_name(node)
                        ),
                    );
                }
            }
        }
    }

    /// Invariant 4, before processing: the leases of this Renew / Rebind
    /// that `node` must extend. A server must when it answers this message
    /// type in its current state (Renew carrying its DUID: NORMAL,
    /// COMMUNICATIONS-INTERRUPTED, PARTNER-DOWN, RESOLUTION-INTERRUPTED,
    /// CONFLICT-DONE, RECOVER-DONE; Rebind: the responsive states) and its
    /// store holds the client's binding as current (valid beyond the
    /// tolerance): what a server knows it must not forget or refuse.
    ///
    /// A secondary in NORMAL answers a Rebind too when it rescues it (RFC
    /// 7031 §4.7: `rescue`, see [`World::rescue_due`]).
    pub(crate) fn obligations(&self, node: usize, d: &Datagram, rescue: bool) -> Vec<LeaseKey> {
        use ServerState as S;
        let n = &self.nodes[node];
        let Some(run) = &n.run else { return vec![] };
        let state = run.ep().state();
        let primary = node == crate::world::PRIMARY;
        // A server handing its clients over (or that handed them over)
        // answers none of them: it owes nothing, as in STARTUP.
        if handing_over(run) {
            return vec![];
        }
        let answers = match d.ty {
            MessageType::Renew => {
                d.server.as_ref() == Some(run.node.duid())
                    && matches!(
                        state,
                        S::Normal
                            | S::CommunicationsInterrupted
                            | S::PartnerDown
                            | S::ResolutionInterrupted
                            | S::ConflictDone
                            | S::RecoverDone
                    )
            }
            MessageType::Rebind => {
                matches!(
                    state,
                    S::CommunicationsInterrupted | S::PartnerDown | S::ResolutionInterrupted
                ) || (primary && matches!(state, S::Normal | S::ConflictDone))
                    || rescue
            }
            _ => false,
        };
        if !answers {
            return vec![];
        }
        let client = &self.clients[d.client as usize];
        let local = n.local(self.now);
        let tol = self.tolerance_s();
        d.keys
            .iter()
            .filter(|k| {
                let ix = client.holding(k).next();
                let held = ix.and_then(|ix| client.held.get(ix).copied().flatten());
                let b = ix.and_then(|ix| client.binding(ix));
                held.is_some_and(|h| h.valid_until_ms > self.now + self.tolerance_ms())
                    && n.store.get(k).is_some_and(|l| {
                        l.state == LeaseState::Active
                            && b.is_some()
                            && l.binding == b
                            && l.valid_until.0 > local.0 + tol
                    })
            })
            .copied()
            .collect()
    }

    /// Whether server `node` must rescue this Solicit or Rebind (RFC 7031
    /// §4.7): a secondary in NORMAL, not handing over, with rescue
    /// configured, and the client trying for at least that long by its
    /// Elapsed Time.
    pub(crate) fn rescue_due(&self, node: usize, d: &Datagram) -> bool {
        let (Some(after), Some(elapsed)) = (self.scen.rescue_after, d.elapsed_ms) else {
            return false;
        };
        let Some(run) = &self.nodes[node].run else {
            return false;
        };
        node == crate::world::SECONDARY
            && matches!(d.ty, MessageType::Solicit | MessageType::Rebind)
            && elapsed >= after * 1000
            && run.ep().state() == ServerState::Normal
            && !handing_over(run)
    }

    /// Invariant 8, after processing: a Solicit that had to be rescued was
    /// answered (an Advertise, with NoAddrsAvail if nothing is left).
    pub(crate) fn check_rescue(
        &mut self,
        node: usize,
        d: &Datagram,
        rescue: bool,
        out: &Result<Vec<u8>, Discard>,
    ) {
        if !rescue {
            return;
        }
        self.stats.rescue_due += 1;
        if let (MessageType::Solicit, Err(why)) = (d.ty, out) {
            let msg = format!(
                "client {} has been soliciting for {} ms (rescue-after {} s), and {} in NORMAL dropped it ({why})",
                d.client,
                d.elapsed_ms.unwrap_or(0),
                self.scen.rescue_after.unwrap_or(0),
                crate::trace::node_name(node)
            );
            self.fail(Invariant::Rescue, msg);
        }
    }

    /// Invariant 7: a STATE that `node` sends showing PARTNER-DOWN carries
    /// OPTION_F_PARTNER_DOWN_TIME, and it is when the node entered
    /// PARTNER-DOWN as the world saw it (restarts included: the node's
    /// own clock then, within its whole-second rounding).
    pub(crate) fn check_state_message(&mut self, node: usize, frame: &[u8]) {
        let mut dec = duet_wire::FrameDecoder::new();
        dec.push(frame);
        let Ok(Some(payload)) = dec.next_frame() else {
            return;
        };
        let Ok(duet_wire::StreamMessage::Failover(m)) = duet_wire::StreamMessage::parse(payload) else {
            return;
        };
        let shown = m.options.iter().find_map(|o| match o {
            DhcpOption::ServerState(s) => Some(*s),
            _ => None,
        });
        let pd_time = m.options.iter().find_map(|o| match o {
            DhcpOption::PartnerDownTime(t) => Some(*t),
            _ => None,
        });
        let name = crate::trace::node_name(node);
        let local = self.nodes[node].local(self.now).0;
        match (shown == Some(ServerState::PartnerDown), pd_time) {
            (false, None) => {}
            (false, Some(_)) => self.fail(
                Invariant::PartnerDownTime,
                format!("{name} sent a STATE showing {shown:?} with a PARTNER_DOWN_TIME"),
            ),
            (true, None) => self.fail(
                Invariant::PartnerDownTime,
                format!("{name} sent a STATE showing partner-down without PARTNER_DOWN_TIME"),
            ),
            (true, Some(t)) => {
                self.stats.pd_time_checks += 1;
                let sent = t.to_unix_near(local);
                let entered = self.nodes[node].pd_entry;
                if entered.is_none_or(|e| e.abs_diff(sent) > 1) {
                    let ago = |x: u64| local.saturating_sub(x);
                    self.fail(
                        Invariant::PartnerDownTime,
                        format!(
                            "{name} announced partner-down since {sent} ({} s ago by its clock), but it entered partner-down {}",
                            ago(sent),
                            match entered {
                                Some(e) => format!("at {e} ({} s ago)", ago(e)),
                                None => "at no moment the world saw".into(),
                            }
                        ),
                    );
                }
            }
        }
    }

    /// Invariant 10: a partner in NORMAL that receives the DISCONNECT of a
    /// completed handover enters PARTNER-DOWN at once.
    pub(crate) fn check_handover_received(&mut self, node: usize, before: ServerState) {
        let after = self.nodes[node].state();
        if before == ServerState::Normal && after.is_some() && after != Some(ServerState::PartnerDown) {
            self.fail(
                Invariant::Handover,
                format!(
                    "{} was told in NORMAL that its partner handed its clients over, and is now in {after:?}",
                    crate::trace::node_name(node)
                ),
            );
        }
    }

    /// Invariant 4, after processing: every obliged lease was extended.
    pub(crate) fn check_obligations(
        &mut self,
        node: usize,
        d: &Datagram,
        obliged: &[LeaseKey],
        out: &Result<Vec<u8>, Discard>,
    ) {
        if obliged.is_empty() {
            return;
        }
        self.stats.obligations += obliged.len() as u64;
        let granted: Vec<(LeaseKey, u32)> = match out {
            Ok(bytes) => match Message::parse(bytes) {
                Ok(Message::Client(m)) => granted(&m.options),
                _ => vec![],
            },
            Err(_) => vec![],
        };
        for k in obliged {
            if !granted.iter().any(|(g, v)| g == k && *v > 0) {
                let state = self.nodes[node].state();
                let what = match out {
                    Ok(_) => format!("a Reply without it ({granted:?})"),
                    Err(why) => format!("no answer ({why})"),
                };
                let view = self.store_view(k);
                return self.fail(
                    Invariant::LeaseStability,
                    format!(
                        "client {} asked {} ({state:?}) to extend {k} with {}, which its store knows ({view}), and got {what}",
                        d.client,
                        crate::trace::node_name(node),
                        d.ty
                    ),
                );
            }
        }
    }

    /// The fault model's premise: a server asserts PARTNER-DOWN (operator
    /// or automatic) only while its partner does not serve clients:
    /// crashed, or in a state that allocates nothing (STARTUP, RECOVER,
    /// RECOVER-WAIT, RECOVER-DONE, POTENTIAL-CONFLICT). Checked when a
    /// server enters PARTNER-DOWN from a running state (not when it resumes
    /// a recorded PARTNER-DOWN at startup). A breach is a schedule error,
    /// reported as such, never blamed on the protocol.
    ///
    /// One race is the protocol's to resolve, not a schedule error: the
    /// auto-partner-down timer firing while the restarted partner is
    /// already connecting (its STATE not yet received). The partner learns
    /// of the PARTNER-DOWN at once and both go to POTENTIAL-CONFLICT
    /// (the risk of auto-partner-down RFC 7031 §4.2 lets operators accept).
    ///
    /// Invariant 6 comes first, and is the protocol's: automatic
    /// PARTNER-DOWN while the partner runs and a refusal period is in
    /// effect (it refuses us or we refuse it: a configuration mismatch, a
    /// clock step). RFC 7031 §4.2's risk is a partner that seems gone; a
    /// refused partner has shown it is alive (it keeps connecting), so
    /// duet holds automatic PARTNER-DOWN off while a refusal stands.
    pub(crate) fn check_partner_down(&mut self, node: usize, auto: bool) {
        use ServerState as S;
        if let Some(r) = self
            .refusal
            .filter(|_| auto && self.nodes[1 - node].run.is_some())
        {
            let what = match r.cause {
                crate::world::RefusalCause::Configuration => "its configuration edited",
                crate::world::RefusalCause::ClockStep => "its clock stepped",
            };
            let msg = format!(
                "{} entered partner-down automatically while its partner runs in {:?}, refused ({} with {what})",
                crate::trace::node_name(node),
                self.nodes[1 - node].state(),
                crate::trace::node_name(r.node),
            );
            return self.fail(Invariant::AutoPartnerDown, msg);
        }
        if auto && self.link.is_open(node) && self.link.is_open(1 - node) {
            self.stats.auto_pd_races += 1;
            return;
        }
        let partner = self.nodes[1 - node].state();
        let serving = matches!(
            partner,
            Some(
                S::Normal
                    | S::CommunicationsInterrupted
                    | S::PartnerDown
                    | S::ResolutionInterrupted
                    | S::ConflictDone
            )
        );
        if serving {
            let msg = format!(
                "{} entered partner-down while its partner serves in {partner:?}",
                crate::trace::node_name(node),
            );
            self.fail(Invariant::Schedule, msg);
        }
    }

    fn table(&self, node: usize) -> Table {
        let Some(run) = &self.nodes[node].run else {
            return Table::new();
        };
        run.node
            .db()
            .iter()
            // An available address is its half's whether or not a record
            // says so (servers create those records lazily).
            .filter(|l| !(l.state.is_available() && l.key.kind == LeaseKind::Na))
            .map(|l| {
                let valid = if l.state == LeaseState::Active {
                    l.valid_until
                } else {
                    UnixTime::ZERO
                };
                // On a FREE / FREE-BACKUP prefix the client is only a hint
                // (the last user, RFC 8156 §7.2), which a prefix-form update
                // does not carry: not compared.
                let client = (!l.state.is_available())
                    .then(|| l.binding.as_ref().map(|b| b.duid.clone()))
                    .flatten();
                (l.key, (l.state, client, valid))
            })
            .collect()
    }

    /// Invariant 5: the first differences between the two tables.
    pub(crate) fn table_diff(&self) -> Vec<String> {
        let (a, b) = (self.table(0), self.table(1));
        let mut out = vec![];
        for (k, v) in &a {
            if b.get(k) != Some(v) {
                out.push(format!("{k}: {v:?} / {:?}", b.get(k)));
            }
        }
        for (k, v) in &b {
            if !a.contains_key(k) {
                out.push(format!("{k}: None / {v:?}"));
            }
        }
        out.truncate(5);
        out
    }
}

impl World {
    /// The client a reserved address or prefix belongs to.
    fn reserved_owner(&self, key: &LeaseKey) -> Option<u32> {
        self.scen
            .reservations
            .iter()
            .find(|(_, a, p)| match key.kind {
                LeaseKind::Na => key.prefix.addr() == *a,
                LeaseKind::Pd => key.prefix == *p,
            })
            .map(|(c, _, _)| *c)
    }
}

/// Whether the server hands its clients over, or did (a planned handover
/// makes it answer no client: the only unresponsive NORMAL).
fn handing_over(run: &crate::node::Running) -> bool {
    use duet_core::policy::{LeasePolicy, Responsiveness};
    run.ep().state() == ServerState::Normal
        && run.node.relationships().responsiveness(0) == Responsiveness::Unresponsive
}

/// Leases with their valid lifetimes in a message's IAs.
fn granted(opts: &[DhcpOption<'_>]) -> Vec<(LeaseKey, u32)> {
    opts.ia_leases()
        .filter(|(ia, _)| ia.kind != duet_wire::IaKind::Ta)
        .map(|(_, l)| (LeaseKey::of(&l), l.valid_lifetime))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
