//! Resynchronisation (RFC 8156 §7.7, §8.5, §8.10): UPDREQ / UPDREQALL and
//! UPDDONE, and what a partner that lost its storage costs.

use super::*;

impl FailoverEndpoint {
    pub(super) fn send_updreq(&mut self, now: UnixTime) {
        // UPDREQALL when our storage was lost (see `on_state`), §8.5.1:
        // in whatever state we ask. A server in RECOVER whose partner is
        // in POTENTIAL-CONFLICT, RESOLUTION-INTERRUPTED or CONFLICT-DONE
        // moves to POTENTIAL-CONFLICT before asking (§8.5.2), and an
        // UPDREQ there brings only what the partner has not had
        // acknowledged: it would reach NORMAL without the bindings it lost
        // (found by duet-sim, seed 94742). UPDREQALL asks for a superset of
        // UPDREQ's answer (§7.7), so the resolution loses nothing.
        let all = self.download_pending;
        let xid = self.xid();
        let t = if all {
            FailoverMessageType::UpdReqAll
        } else {
            FailoverMessageType::UpdReq
        };
        self.updreq_sent = Some(xid);
        self.updreq_progress = now;
        self.updreq_all = all;
        self.send(FailoverMessage::new(t, xid, now.to_abs()), now);
    }

    pub(super) fn relationship_leases<'d>(&self, db: &'d LeaseDb) -> Vec<&'d Lease> {
        db.iter().filter(|l| self.owns(db, &l.key)).collect()
    }

    pub(super) fn on_updreq(&mut self, now: UnixTime, xid: TransactionId, all: bool, db: &mut LeaseDb) {
        if all {
            self.partner_lost_its_storage(now, db);
        }
        let keys: Vec<LeaseKey> = self
            .relationship_leases(db)
            .into_iter()
            .filter(|l| all || l.failover.pending_update)
            // A FREE prefix the partner never heard of needs no update
            // unless it asked for everything.
            .map(|l| l.key)
            .collect();
        let mut set = BTreeSet::new();
        for k in keys {
            set.insert(k);
            self.enqueue(
                k,
                QueueItem {
                    announce: None,
                    force: all,
                },
            );
        }
        self.serving = Some((xid, set));
    }

    /// UPDREQALL: the partner lost its storage (duet-sim found both):
    ///
    /// * with it went the renewals it gave that we never saw. The MCLT rule
    ///   bounds each by what we acknowledged for that binding (our
    ///   expiration-time) + MCLT (§4.4), but leases are freed on an
    ///   acknowledgement (§7.2 event 4), which the partner will give once
    ///   its copy from us runs out: every binding is kept, on both sides,
    ///   until that bound;
    /// * and what it acknowledged to us: our acknowledged partner lifetimes
    ///   no longer stand for anything it knows, so the MCLT rule counts
    ///   none of them until it acknowledges them again (during this very
    ///   download).
    pub(super) fn partner_lost_its_storage(&mut self, now: UnixTime, db: &mut LeaseDb) {
        let mclt = self.mclt;
        let changed: Vec<Lease> = self
            .relationship_leases(db)
            .into_iter()
            .filter_map(|l| {
                let end = l.failover.expiration_time.saturating_add(mclt);
                let hold = l.binding.is_some()
                    && matches!(l.state, LeaseState::Active | LeaseState::Expired)
                    && l.failover.expiration_time > UnixTime::ZERO
                    && end > now
                    // An EXPIRED lease's state expiration is not a held
                    // end but when it may be reused (in PARTNER-DOWN: at
                    // least that bound already): once both are NORMAL it
                    // is freed on the next acknowledgement whatever it
                    // says, so it is held ACTIVE all the same (found by
                    // duet-sim, seed 541: a renewal the partner gave just
                    // before it lost its storage was freed and given to
                    // another client).
                    && (l.state != LeaseState::Active || end > l.active_end());
                let forget = l.failover.acked_partner_lifetime > UnixTime::ZERO;
                (hold || forget).then(|| {
                    let mut l = l.clone();
                    l.failover.acked_partner_lifetime = UnixTime::ZERO;
                    if hold {
                        if l.state != LeaseState::Active {
                            l.state = LeaseState::Active;
                            l.start_time_of_state = now;
                        }
                        // Held, not given: the client's own end stays what
                        // it was told (and what BNDUPDs report, §7.4).
                        l.state_expiration = Some(end);
                    }
                    l
                })
            })
            .collect();
        for l in changed {
            if db.upsert(l.clone()).is_ok() {
                self.persist.push(l);
            }
        }
    }

    pub(super) fn on_upddone(&mut self, now: UnixTime, xid: TransactionId, db: &mut LeaseDb) {
        if self.updreq_sent != Some(xid) {
            return self.note(format!("UPDDONE {xid} matches no UPDREQ of ours"));
        }
        self.updreq_sent = None;
        if self.updreq_all {
            // The full download is complete.
            self.download_pending = false;
            self.record_dirty = true;
        }
        if let Some(next) = state::on_upddone(self.state, self.cfg.role) {
            self.enter(next, now, db);
        }
    }
}
