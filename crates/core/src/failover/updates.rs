//! The update queue and binding updates (RFC 8156 §7): lazy BNDUPDs
//! (§4.3), at most MAX_UNACKED_BNDUPD in flight, one per lease; BNDUPDs
//! received (§7.5) and BNDREPLYs (§7.7).

use super::*;

impl FailoverEndpoint {
    pub(super) fn enqueue(&mut self, key: LeaseKey, item: QueueItem) {
        match self.queued.get_mut(&key) {
            Some(q) => {
                q.force |= item.force;
                if item.announce.is_some() {
                    q.announce = item.announce;
                }
            }
            None => {
                self.queued.insert(key, item);
                self.queue.push_back(key);
            }
        }
    }

    /// Lease records changed by DHCPv6 processing (or by the lease timers)
    /// are now durable: queue their lazy updates (§4.3).
    pub fn leases_changed<'a>(
        &mut self,
        now: UnixTime,
        leases: impl IntoIterator<Item = &'a Lease>,
        db: &mut LeaseDb,
    ) {
        for l in leases {
            if l.failover.pending_update && self.owns(db, &l.key) {
                self.wait_scan.remove(&l.key);
                self.enqueue(
                    l.key,
                    QueueItem {
                        announce: None,
                        force: false,
                    },
                );
            }
        }
        self.pump(now, db);
    }

    pub(super) fn may_send_updates(&self) -> bool {
        self.communications_ok()
            && (matches!(self.state, ServerState::Normal | ServerState::ConflictDone)
                || self.serving.is_some())
    }

    /// Sends queued BNDUPDs up to the partner's limit, one in flight per
    /// lease (digest A23), then UPDDONE / POOLREQ when due.
    pub(super) fn pump(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if !self.may_send_updates() {
            return;
        }
        let limit = self.partner_max_unacked.max(1) as usize;
        let mut deferred = Vec::new();
        while self.in_flight.len() < limit {
            let Some(key) = self.queue.pop_front() else { break };
            let Some(item) = self.queued.remove(&key) else {
                continue;
            };
            if self.in_flight_keys.contains_key(&key) {
                deferred.push((key, item));
                continue;
            }
            let Some(lease) = db.get(&key).cloned() else {
                continue;
            };
            // Taking a prefix back is for a prefix still free: one given to
            // a client since is announced as it is, or its acknowledgement
            // would free it under the client (found by duet-sim, seed 89).
            let announce = item.announce.filter(|_| lease.state.is_available());
            if !(lease.failover.pending_update || item.force || announce.is_some()) {
                self.mark_answered(&key);
                continue;
            }
            let announced = announce.unwrap_or(lease.state);
            let xid = self.xid();
            let Some(msg) = build_bndupd(&lease, announced, xid, now) else {
                self.mark_answered(&key);
                continue;
            };
            self.in_flight_keys.insert(key, xid);
            self.in_flight.insert(
                xid,
                InFlight {
                    key,
                    sent_partner_lifetime: bndupd::sent_partner_lifetime(&lease),
                    snapshot: lease,
                    announced,
                },
            );
            if self.acks_awaited_since.is_none() {
                self.acks_awaited_since = Some(now);
            }
            self.send(msg, now);
        }
        for (k, item) in deferred {
            self.enqueue(k, item);
        }
        if let Some((xid, remaining)) = &self.serving {
            if remaining.is_empty() {
                let xid = *xid;
                self.serving = None;
                self.simple(FailoverMessageType::UpdDone, Some(xid), now);
            }
        }
        if self.poolreq_pending
            && self.queue.is_empty()
            && self.in_flight.is_empty()
            && self.state == ServerState::Normal
        {
            self.poolreq_pending = false;
            self.simple(FailoverMessageType::PoolReq, None, now);
        }
    }

    pub(super) fn mark_answered(&mut self, key: &LeaseKey) {
        if let Some((_, remaining)) = &mut self.serving {
            remaining.remove(key);
        }
    }

    /// A BNDUPD from the partner (§7.5).
    pub(super) fn on_bndupd(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        // Progress of our UPDREQ / UPDREQALL, if one is out.
        self.updreq_progress = now;
        let parsed = match parse_bndupd(msg, now) {
            Ok(p) => p,
            Err(whole) => {
                let reply = build_bndreply(msg, &[], Some(whole), now);
                return self.send(reply, now);
            }
        };
        if parsed.len() > MAX_LEASES_PER_BNDUPD {
            // Its BNDREPLY could not hold every verdict: refused whole,
            // nothing applied, and answered all the same (§7.5.2: every
            // BNDUPD gets a BNDREPLY).
            self.note(format!(
                "refused a BNDUPD of {} leases (at most {MAX_LEASES_PER_BNDUPD})",
                parsed.len()
            ));
            let reply = build_bndreply(
                msg,
                &[],
                Some((StatusCode::UnspecFail, "too many leases in one BNDUPD")),
                now,
            );
            return self.send(reply, now);
        }
        let mut updates = Vec::new();
        let mut early_rejects = Vec::new();
        for p in parsed {
            match p {
                Ok(u) => updates.push(u),
                Err((key, reason)) => early_rejects.push((key, reason)),
            }
        }
        let mut results = Vec::new();
        for u in &updates {
            let result = if !self.owns(db, &u.key) {
                Err(StatusCode::ConfigurationConflict)
            } else {
                let local = db.get(&u.key).cloned();
                match bndupd::resolve(local.as_ref(), u, now, self.cfg.role) {
                    Ok(()) => match bndupd::apply(local.as_ref(), u, now) {
                        Some(l) if db.upsert(l.clone()).is_ok() => {
                            if l.failover.pending_update {
                                // We kept a later end: the partner gets it.
                                self.enqueue(
                                    u.key,
                                    QueueItem {
                                        announce: None,
                                        force: false,
                                    },
                                );
                            }
                            self.persist.push(l);
                            Ok(())
                        }
                        _ => Err(StatusCode::ConfigurationConflict),
                    },
                    Err(code) => {
                        // §7.7: our data is newer: make sure the partner gets it.
                        if let Some(mut l) = local {
                            let was_pending = l.failover.pending_update;
                            if !was_pending {
                                l.failover.pending_update = true;
                                if db.upsert(l.clone()).is_ok() {
                                    self.persist.push(l);
                                    self.enqueue(
                                        u.key,
                                        QueueItem {
                                            announce: None,
                                            force: false,
                                        },
                                    );
                                }
                            } else {
                                self.wait_scan.insert(u.key);
                            }
                        }
                        self.note(format!("rejected the partner's update of {}: {code}", u.key));
                        Err(code)
                    }
                }
            };
            results.push(result);
        }
        let verdicts: Vec<Verdict<'_>> = updates
            .iter()
            .zip(results)
            .map(|(update, result)| Verdict { update, result })
            .collect();
        for (key, (code, why)) in &early_rejects {
            self.note(format!(
                "partner's update of {key} is missing information: {why} ({code})"
            ));
        }
        let reply = if verdicts.is_empty() {
            let first = early_rejects.first().map(|(_, r)| *r);
            build_bndreply(msg, &[], first, now)
        } else {
            build_bndreply(msg, &verdicts, None, now)
        };
        self.send(reply, now);
    }

    /// A BNDREPLY (§7.7).
    pub(super) fn on_bndreply(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        let Some(f) = self.in_flight.remove(&msg.transaction_id) else {
            return self.note(format!(
                "BNDREPLY {} matches no BNDUPD in flight",
                msg.transaction_id
            ));
        };
        self.in_flight_keys.remove(&f.key);
        self.acks_awaited_since = (!self.in_flight.is_empty()).then_some(now);
        self.mark_answered(&f.key);
        let acks = parse_bndreply(msg);
        let ack = acks.iter().find(|a| a.key == f.key).cloned();
        let result = match ack {
            Some(a) => a.result.map(|()| a.partner_lifetime_sent),
            // A BNDREPLY that does not mention the lease: treat as rejected.
            None => Err(StatusCode::MissingBindingInformation),
        };
        let Some(mut lease) = db.get(&f.key).cloned() else {
            return;
        };
        match result {
            Ok(pls) => {
                let acked = pls.map_or(f.sent_partner_lifetime, |t| UnixTime::from_abs(t, now));
                // It acknowledges the binding that was sent: a lease given to
                // another client since keeps nothing of it (the MCLT rule
                // would otherwise count it for the new client; found by
                // duet-sim, seed 6879).
                if lease.binding == f.snapshot.binding
                    && lease.state == LeaseState::Active
                    && f.announced == LeaseState::Active
                {
                    lease.failover.acked_partner_lifetime = lease.failover.acked_partner_lifetime.max(acked);
                }
                let unchanged = lease.state == f.snapshot.state
                    && lease.binding == f.snapshot.binding
                    && lease.valid_until == f.snapshot.valid_until
                    && lease.start_time_of_state == f.snapshot.start_time_of_state
                    && lease.cltt == f.snapshot.cltt;
                let mut resend = true;
                if unchanged {
                    if f.announced != lease.state {
                        // Taking a delegable prefix back (§4.2.2): it is ours now.
                        lease.state = f.announced;
                        lease.start_time_of_state = now;
                        lease.failover.pending_update = false;
                    } else if matches!(
                        lease.state,
                        LeaseState::Expired | LeaseState::Released | LeaseState::Reset
                    ) && matches!(
                        self.partner_state,
                        Some(ServerState::Recover | ServerState::RecoverWait)
                    ) {
                        // A partner still recovering (after losing its
                        // storage, perhaps) stores our update but cannot
                        // vouch that no client of its own holds the lease:
                        // it may have extended it just before it failed. The
                        // lease stays pending and is sent again once the
                        // partner is back (after its MCLT wait; found by
                        // duet-sim, seed 388): entering NORMAL resends it.
                        resend = false;
                    } else if matches!(
                        lease.state,
                        LeaseState::Expired | LeaseState::Released | LeaseState::Reset
                    ) {
                        // §7.2 event 4: acknowledged → PENDING-FREE → FREE / FREE-BACKUP.
                        lease.state = bndupd::pending_free_resolves_to(&lease.key);
                        lease.start_time_of_state = now;
                        lease.state_expiration = None;
                        lease.failover.pending_update = true;
                    } else {
                        lease.failover.pending_update = false;
                    }
                } else {
                    // The lease changed since (the partner's own update may
                    // have changed it): the partner now holds what we sent,
                    // not what we hold, so it gets ours too (otherwise it can
                    // keep a stale state forever; found by duet-sim, seed
                    // 7829).
                    lease.failover.pending_update = true;
                }
                if db.upsert(lease.clone()).is_ok() {
                    if lease.failover.pending_update && resend {
                        self.enqueue(
                            lease.key,
                            QueueItem {
                                announce: None,
                                force: false,
                            },
                        );
                    }
                    self.persist.push(lease);
                }
            }
            Err(code) => {
                self.note(format!("partner rejected our update of {}: {code}", f.key));
                self.wait_scan.insert(f.key);
            }
        }
    }
}

/// The leases a BNDUPD reports (RFC 8156 §7.4): every IAADDR and IAPREFIX
/// of its OPTION_CLIENT_DATA, or its one top-level IAPREFIX.
pub fn reported_leases<'m>(msg: &'m FailoverMessage<'_>) -> impl Iterator<Item = LeaseKey> + 'm {
    msg.options.iter().flat_map(|o| {
        let keys: Vec<LeaseKey> = match o {
            DhcpOption::ClientData(cd) => cd.ia_leases().map(|(_, l)| LeaseKey::of(&l)).collect(),
            other => duet_wire::IaLease::of(other)
                .map(|l| LeaseKey::of(&l))
                .into_iter()
                .collect(),
        };
        keys
    })
}
