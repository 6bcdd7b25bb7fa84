//! The invariants (see the crate documentation for their statements and
//! why they hold at every instant in this fault model).
//!
//! Stores change only at commits, and clients' views only when a client
//! takes or drops a lease, so each check runs exactly where its inputs
//! change: invariant 1 and 3 when a client takes a lease, 2 and 3 at every
//! commit, 4 at every Renew / Rebind a server processes, 5 at the end.

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
    /// difference between two clocks (offsets within ±bound) plus the
    /// core's whole-second rounding. Every overlap a real bug produces is
    /// MCLT-sized (≥ 30 s) or a whole lease.
    pub(crate) fn tolerance_s(&self) -> u64 {
        let b = self
            .scen
            .clocks
            .iter()
            .map(|c| c.bound_ms.max(0) as u64)
            .max()
            .unwrap_or(0);
        (2 * b).div_ceil(1000) + 2
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
    pub(crate) fn obligations(&self, node: usize, d: &Datagram) -> Vec<LeaseKey> {
        use ServerState as S;
        let n = &self.nodes[node];
        let Some(run) = &n.run else { return vec![] };
        let state = run.ep().state();
        let primary = node == crate::world::PRIMARY;
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
    pub(crate) fn check_partner_down(&mut self, node: usize, auto: bool) {
        use ServerState as S;
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
