//! The endpoint state machine of RFC 8156 §8 as pure functions (digest
//! §14.4; the text wins over figure 6), so every row of the transition
//! table can be tested on its own.

use super::{Conn, Event, QueueItem};
use crate::config::Role;
use crate::lease::{Lease, LeaseDb, LeaseKey, LeaseState};
use crate::time::UnixTime;
use duet_wire::failover::SERVER_FLAG_COMMUNICATED;
use duet_wire::{FailoverMessageType, ServerState};

/// §8.3.2 step 2: a recorded state that needs communications is replaced
/// by what its "communications failed" transition leads to.
pub(crate) fn startup_previous_state(recorded: Option<ServerState>) -> ServerState {
    match recorded {
        // A15: nothing recorded → RECOVER, whatever the role.
        None | Some(ServerState::Startup) | Some(ServerState::Unknown(_)) => ServerState::Recover,
        Some(ServerState::Normal) => ServerState::CommunicationsInterrupted,
        Some(ServerState::PotentialConflict) => ServerState::ResolutionInterrupted,
        // CONFLICT-DONE (primary) "stays" on communications failure.
        Some(s) => s,
    }
}

/// What to do when communications fail in state `s` (RFC 8156 §8.8.2,
/// §8.10.2; other states stay).
pub(crate) fn on_communications_failed(s: ServerState) -> ServerState {
    match s {
        ServerState::Normal => ServerState::CommunicationsInterrupted,
        ServerState::PotentialConflict => ServerState::ResolutionInterrupted,
        other => other,
    }
}

/// The result of learning the partner's state while communications are OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnPartner {
    /// Stay in the current state.
    Stay,
    /// Move to this state.
    Go(ServerState),
}

/// The transition taken in state `own` when the partner announces `partner`
/// (communications OK, STARTUP flag clear). RFC 8156 §8.4.2 – §8.12.2.
pub(crate) fn on_partner_state(own: ServerState, role: Role, partner: ServerState) -> OnPartner {
    use OnPartner::{Go, Stay};
    use ServerState as S;
    match own {
        // §8.4.2
        S::PartnerDown => match partner {
            S::Normal
            | S::CommunicationsInterrupted
            | S::PartnerDown
            | S::PotentialConflict
            | S::ResolutionInterrupted
            | S::ConflictDone => Go(S::PotentialConflict),
            S::RecoverDone => Go(S::Normal),
            _ => Stay,
        },
        // §8.5.2
        S::Recover => match partner {
            S::PotentialConflict | S::ResolutionInterrupted | S::ConflictDone => Go(S::PotentialConflict),
            _ => Stay,
        },
        // §8.6.2: only the timer moves RECOVER-WAIT.
        S::RecoverWait => Stay,
        // §8.7.2
        S::RecoverDone => match partner {
            S::Normal | S::RecoverDone => Go(S::Normal),
            S::Recover | S::RecoverWait => Go(S::CommunicationsInterrupted),
            S::PotentialConflict => Go(S::PotentialConflict),
            _ => Stay,
        },
        // §8.8.2: an unexpected partner state sends NORMAL to
        // COMMUNICATIONS-INTERRUPTED, then that state's rule applies.
        S::Normal => match partner {
            S::Normal | S::CommunicationsInterrupted | S::RecoverDone | S::ConflictDone => Stay,
            _ => match on_partner_state(S::CommunicationsInterrupted, role, partner) {
                Stay => Go(S::CommunicationsInterrupted),
                go => go,
            },
        },
        // §8.9.2 (A21: partner RECOVER-WAIT → stay)
        S::CommunicationsInterrupted => match partner {
            S::Normal | S::CommunicationsInterrupted | S::RecoverDone => Go(S::Normal),
            S::PartnerDown | S::PotentialConflict | S::ConflictDone | S::ResolutionInterrupted => {
                Go(S::PotentialConflict)
            }
            _ => Stay,
        },
        // §8.10.2: leaves only on UPDDONE or communications failure.
        S::PotentialConflict => Stay,
        // §8.11.2: communications OK again → POTENTIAL-CONFLICT.
        S::ResolutionInterrupted => Go(S::PotentialConflict),
        // §8.12.2
        S::ConflictDone => match (role, partner) {
            (Role::Primary, S::Normal) => Go(S::Normal),
            _ => Stay,
        },
        S::Startup | S::Unknown(_) => Stay,
    }
}

/// The transition on receiving UPDDONE for our UPDREQ / UPDREQALL.
pub(crate) fn on_upddone(own: ServerState, role: Role) -> Option<ServerState> {
    match (own, role) {
        (ServerState::Recover, _) => Some(ServerState::RecoverWait),
        (ServerState::PotentialConflict, Role::Primary) => Some(ServerState::ConflictDone),
        (ServerState::PotentialConflict, Role::Secondary) => Some(ServerState::Normal),
        _ => None,
    }
}

/// Whether the operator's "partner down" command applies (§8.4: from
/// NORMAL, COMMUNICATIONS-INTERRUPTED and RESOLUTION-INTERRUPTED).
pub(crate) fn partner_down_allowed(own: ServerState) -> bool {
    matches!(
        own,
        ServerState::Normal | ServerState::CommunicationsInterrupted | ServerState::ResolutionInterrupted
    )
}

/// §8.3.2 step 5: the state a starting server enters once it hears from
/// its partner. `partner_down_since` is the start of the partner's
/// PARTNER-DOWN state when the partner is in it; `last_operating` the last
/// time this server is known to have been running.
pub(crate) fn startup_resolution(
    previous: ServerState,
    partner: ServerState,
    partner_down_since: Option<u64>,
    last_operating: Option<u64>,
) -> ServerState {
    if partner != ServerState::PartnerDown {
        return previous;
    }
    // A server that stopped while recovering (RECOVER, RECOVER-WAIT) had
    // served no client since it learnt its partner was in PARTNER-DOWN (or
    // since it lost its storage): however late its last operation, there is
    // nothing to conflict with; it resumes recovery. POTENTIAL-CONFLICT
    // here would end in RESOLUTION-INTERRUPTED, and serving, if the partner
    // failed before the resolution, while the partner may have used this
    // server's pool (found by duet-sim, seeds 1730 and 3547).
    if matches!(previous, ServerState::Recover | ServerState::RecoverWait) {
        return ServerState::Recover;
    }
    match (partner_down_since, last_operating) {
        // The partner declared us down after we stopped: we really were down.
        (Some(pd), Some(op)) if pd > op => ServerState::Recover,
        // Nothing recorded of our own operation: we have nothing to conflict with.
        (Some(_), None) => ServerState::Recover,
        // PARTNER-DOWN began before we stopped (or at the same time, A16):
        // we both served clients.
        _ => ServerState::PotentialConflict,
    }
}

/// Entering a state, and the timers (startup, keepalive and CONTACT,
/// RECOVER-WAIT, auto-partner-down, the scan).
impl super::FailoverEndpoint {
    /// When automatic PARTNER-DOWN is due (§8.9: in
    /// COMMUNICATIONS-INTERRUPTED, if configured), `Err` with the reason it
    /// is held off. duet counts from the last thing heard from the partner
    /// — a message or a connection attempt, refused or not — and never
    /// fires while the partner is being refused: a partner refused for
    /// its configuration or clock is alive and serving (docs/failover.md,
    /// "automatic partner-down"). Never while a connection is up either
    /// (it may be the partner coming back right now: found racing a
    /// reconnect by duet-sim).
    pub(super) fn auto_partner_down_due(&self) -> Result<Option<UnixTime>, String> {
        let (ServerState::CommunicationsInterrupted, Some(apd)) = (self.state, self.cfg.auto_partner_down)
        else {
            return Ok(None);
        };
        if self.parked {
            return Err("this server handed its clients over".into());
        }
        let lost = self.comms_lost_at.unwrap_or(self.state_since);
        match self.auto_pd_rule {
            super::AutoPartnerDownRule::CommunicationsLostOnly => {
                Ok((self.conn == Conn::Down).then(|| lost.saturating_add(apd)))
            }
            super::AutoPartnerDownRule::Safe => {
                if let Some(r) = &self.refusal {
                    return Err(format!(
                        "the partner is alive but {} ({}): {}",
                        if r.by_us {
                            "refused by this server"
                        } else {
                            "refuses this server"
                        },
                        r.kind.name(),
                        r.reason
                    ));
                }
                if self.conn != Conn::Down {
                    return Err("a connection to the partner is being set up".into());
                }
                Ok(Some(self.last_heard.max(lost).saturating_add(apd)))
            }
        }
    }

    /// [`Self::auto_partner_down_due`] when it will fire.
    pub(super) fn auto_partner_down_at(&self) -> Option<UnixTime> {
        self.auto_partner_down_due().ok().flatten()
    }

    pub(super) fn enter(&mut self, next: ServerState, now: UnixTime, db: &mut LeaseDb) {
        if next == self.state {
            return;
        }
        let from = self.state;
        self.state = next;
        // Leaving STARTUP for the state it showed keeps that state's start
        // (restarts do not reset a PARTNER-DOWN time, §8.3.2).
        self.state_since = match self.resume {
            (shown, since) if from == ServerState::Startup && shown == next => since,
            _ => now,
        };
        self.record_dirty = true;
        self.events.push_back(Event::StateChanged { from, to: next });
        match next {
            ServerState::Normal => {
                // Send every update the partner has not acknowledged (§8.8).
                let pending: Vec<LeaseKey> = self
                    .relationship_leases(db)
                    .into_iter()
                    .filter(|l| l.failover.pending_update)
                    .map(|l| l.key)
                    .collect();
                for k in pending {
                    self.enqueue(
                        k,
                        QueueItem {
                            announce: None,
                            force: false,
                        },
                    );
                }
                self.wait_scan.clear();
                self.poolreq_pending = self.cfg.role == Role::Secondary;
                self.comms_lost_at = None;
            }
            ServerState::CommunicationsInterrupted => {
                self.comms_lost_at = Some(now);
            }
            ServerState::PartnerDown => {
                // Released/expired leases start their MCLT reuse clocks (§8.4.1).
                let waiting: Vec<Lease> = self
                    .relationship_leases(db)
                    .into_iter()
                    .filter(|l| {
                        matches!(
                            l.state,
                            LeaseState::Expired | LeaseState::Released | LeaseState::Reset
                        )
                    })
                    .cloned()
                    .collect();
                for mut l in waiting {
                    l.state_expiration = Some(self.reuse_time(&l, now));
                    let _ = db.upsert(l);
                }
            }
            // The primary asks first (§8.10.1); a recovering server asks
            // for what it missed (§8.5.1).
            ServerState::PotentialConflict | ServerState::Recover
                if (next == ServerState::Recover || self.cfg.role == Role::Primary)
                    && self.communications_ok()
                    && self.updreq_sent.is_none() =>
            {
                self.send_updreq(now);
            }
            ServerState::RecoverWait => {
                // §8.6.2: MAY skip the wait if this server never ran failover,
                // established from the partner's data: its flags from the
                // current connection. Without one they are unknown, not
                // "never communicated" (duet-sim seed 48086: a server that
                // restarted in RECOVER-WAIT with its partner down skipped
                // the wait). And our own record, where it says we did, wins:
                // a partner that lost its storage too says "never" of a
                // server that did run failover (seed 28841).
                // A server that handed its clients over had every lease it
                // granted acknowledged before it stopped serving: nothing
                // the wait protects (leases the partner never heard of) can
                // exist.
                if self.handed_over
                    || (self.communications_ok()
                        && self.partner_flags & SERVER_FLAG_COMMUNICATED == 0
                        && !self.communicated_before)
                {
                    self.recover_wait_until = Some(now);
                } else {
                    let failure = self.last_operating.unwrap_or(self.started_at);
                    self.recover_wait_until = Some(failure.saturating_add(self.mclt));
                }
            }
            _ => {}
        }
        if next != ServerState::RecoverWait {
            self.recover_wait_until = None;
        }
        if !matches!(next, ServerState::Recover | ServerState::RecoverWait) {
            self.handed_over = false;
        }
        self.send_state(now);
        if next == ServerState::RecoverWait && self.recover_wait_until.is_some_and(|t| t <= now) {
            self.recover_wait_until = None;
            self.enter(ServerState::RecoverDone, now, db);
        }
    }

    /// Timers: startup, keepalive / CONTACT, RECOVER-WAIT, auto-partner-down,
    /// the periodic scan.
    pub fn handle_timeout(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if let Some((previous, until)) = self.startup {
            if now >= until {
                // §8.3.2 step 6: no partner within the startup time.
                self.startup = None;
                self.enter(previous, now, db);
            }
        }
        if matches!(
            self.conn,
            Conn::Established { .. } | Conn::AwaitConnect | Conn::AwaitConnectReply
        ) {
            if now >= self.last_received.saturating_add(self.cfg.keepalive) {
                self.close(
                    format!(
                        "nothing heard from the partner for {} s",
                        self.cfg.keepalive.as_secs()
                    ),
                    now,
                    db,
                );
            } else if matches!(self.conn, Conn::Established { .. })
                && now >= self.last_sent.saturating_add(self.send_interval())
            {
                self.simple(FailoverMessageType::Contact, None, now);
            }
        }
        if self.unresponsive_partner_at().is_some_and(|at| now >= at) {
            let what = if self.acks_awaited_since.is_some() {
                format!("acknowledged none of {} BNDUPDs", self.in_flight.len())
            } else {
                "sent neither a BNDUPD nor UPDDONE in answer to our UPDREQ".to_string()
            };
            self.close(
                format!(
                    "the partner is connected but {what} for {} s",
                    self.response_timeout().as_secs()
                ),
                now,
                db,
            );
        }
        if let Some(t) = self.recover_wait_until {
            if now >= t && self.state == ServerState::RecoverWait {
                self.recover_wait_until = None;
                self.enter(ServerState::RecoverDone, now, db);
            }
        }
        if let Some(at) = self.auto_partner_down_at() {
            if now >= at {
                let apd = self.cfg.auto_partner_down.unwrap_or_default().as_secs();
                self.note(format!(
                    "auto-partner-down: nothing heard from the partner for {apd} s"
                ));
                self.enter(ServerState::PartnerDown, now, db);
            }
        }
        if now >= self.next_scan {
            self.next_scan = now.saturating_add(self.cfg.scan_interval);
            if self.may_send_updates() {
                let keys: Vec<LeaseKey> = std::mem::take(&mut self.wait_scan).into_iter().collect();
                for k in keys {
                    self.enqueue(
                        k,
                        QueueItem {
                            announce: None,
                            force: false,
                        },
                    );
                }
                if self.state == ServerState::Normal {
                    match self.cfg.role {
                        Role::Primary => self.rebalance(now, db),
                        Role::Secondary if self.secondary_low(db) && self.queue.is_empty() => {
                            self.simple(FailoverMessageType::PoolReq, None, now)
                        }
                        Role::Secondary => {}
                    }
                }
            }
        }
        self.pump(now, db);
        self.check_leaving(now, db);
    }
}

#[cfg(test)]
mod tests {
    //! One test per row of the transition table (digest §14.4), named
    //! after the row.
    use super::*;
    use OnPartner::{Go, Stay};
    use ServerState as S;

    const P: Role = Role::Primary;
    const SEC: Role = Role::Secondary;

    fn all_states() -> [S; 10] {
        [
            S::Startup,
            S::Normal,
            S::CommunicationsInterrupted,
            S::PartnerDown,
            S::PotentialConflict,
            S::Recover,
            S::RecoverWait,
            S::RecoverDone,
            S::ResolutionInterrupted,
            S::ConflictDone,
        ]
    }

    #[test]
    fn partner_down_to_potential_conflict_when_partner_is_serving() {
        for p in [
            S::Normal,
            S::CommunicationsInterrupted,
            S::PartnerDown,
            S::PotentialConflict,
            S::ResolutionInterrupted,
            S::ConflictDone,
        ] {
            assert_eq!(
                on_partner_state(S::PartnerDown, P, p),
                Go(S::PotentialConflict),
                "{p}"
            );
        }
    }

    #[test]
    fn partner_down_stays_while_partner_recovers() {
        assert_eq!(on_partner_state(S::PartnerDown, P, S::Recover), Stay);
        assert_eq!(on_partner_state(S::PartnerDown, SEC, S::RecoverWait), Stay);
    }

    #[test]
    fn partner_down_to_normal_when_partner_recover_done() {
        assert_eq!(on_partner_state(S::PartnerDown, P, S::RecoverDone), Go(S::Normal));
    }

    #[test]
    fn partner_down_stays_on_communications_failure() {
        assert_eq!(on_communications_failed(S::PartnerDown), S::PartnerDown);
    }

    #[test]
    fn recover_to_potential_conflict_when_partner_in_conflict_states() {
        for p in [S::PotentialConflict, S::ResolutionInterrupted, S::ConflictDone] {
            assert_eq!(
                on_partner_state(S::Recover, SEC, p),
                Go(S::PotentialConflict),
                "{p}"
            );
        }
    }

    #[test]
    fn recover_stays_for_any_other_partner_state() {
        for p in [
            S::Normal,
            S::CommunicationsInterrupted,
            S::PartnerDown,
            S::Recover,
            S::RecoverWait,
            S::RecoverDone,
        ] {
            assert_eq!(on_partner_state(S::Recover, P, p), Stay, "{p}");
        }
    }

    #[test]
    fn recover_to_recover_wait_on_upddone() {
        assert_eq!(on_upddone(S::Recover, P), Some(S::RecoverWait));
        assert_eq!(on_upddone(S::Recover, SEC), Some(S::RecoverWait));
    }

    #[test]
    fn recover_stays_on_communications_failure() {
        assert_eq!(on_communications_failed(S::Recover), S::Recover);
    }

    #[test]
    fn recover_wait_stays_on_partner_state_and_communications_failure() {
        for p in all_states() {
            assert_eq!(on_partner_state(S::RecoverWait, P, p), Stay, "{p}");
        }
        assert_eq!(on_communications_failed(S::RecoverWait), S::RecoverWait);
    }

    #[test]
    fn recover_done_to_normal_when_partner_normal_or_recover_done() {
        assert_eq!(on_partner_state(S::RecoverDone, P, S::Normal), Go(S::Normal));
        assert_eq!(
            on_partner_state(S::RecoverDone, SEC, S::RecoverDone),
            Go(S::Normal)
        );
    }

    #[test]
    fn recover_done_to_communications_interrupted_when_partner_recovering() {
        assert_eq!(
            on_partner_state(S::RecoverDone, P, S::Recover),
            Go(S::CommunicationsInterrupted)
        );
        assert_eq!(
            on_partner_state(S::RecoverDone, P, S::RecoverWait),
            Go(S::CommunicationsInterrupted)
        );
    }

    #[test]
    fn recover_done_to_potential_conflict_when_partner_potential_conflict() {
        assert_eq!(
            on_partner_state(S::RecoverDone, P, S::PotentialConflict),
            Go(S::PotentialConflict)
        );
    }

    #[test]
    fn recover_done_stays_on_communications_failure() {
        assert_eq!(on_communications_failed(S::RecoverDone), S::RecoverDone);
    }

    #[test]
    fn normal_to_partner_down_by_operator() {
        assert!(partner_down_allowed(S::Normal));
    }

    #[test]
    fn normal_to_communications_interrupted_when_communications_fail() {
        assert_eq!(on_communications_failed(S::Normal), S::CommunicationsInterrupted);
    }

    #[test]
    fn normal_to_communications_interrupted_then_partner_rule_on_unexpected_state() {
        assert_eq!(
            on_partner_state(S::Normal, P, S::PartnerDown),
            Go(S::PotentialConflict)
        );
        assert_eq!(
            on_partner_state(S::Normal, P, S::PotentialConflict),
            Go(S::PotentialConflict)
        );
        assert_eq!(
            on_partner_state(S::Normal, P, S::Recover),
            Go(S::CommunicationsInterrupted)
        );
        assert_eq!(on_partner_state(S::Normal, P, S::Normal), Stay);
        assert_eq!(on_partner_state(S::Normal, SEC, S::ConflictDone), Stay);
    }

    #[test]
    fn communications_interrupted_to_partner_down_by_operator_or_timer() {
        assert!(partner_down_allowed(S::CommunicationsInterrupted));
    }

    #[test]
    fn communications_interrupted_to_normal_when_partner_normal_like() {
        for p in [S::Normal, S::CommunicationsInterrupted, S::RecoverDone] {
            assert_eq!(
                on_partner_state(S::CommunicationsInterrupted, P, p),
                Go(S::Normal),
                "{p}"
            );
        }
    }

    #[test]
    fn communications_interrupted_stays_when_partner_recover() {
        assert_eq!(
            on_partner_state(S::CommunicationsInterrupted, P, S::Recover),
            Stay
        );
        assert_eq!(
            on_partner_state(S::CommunicationsInterrupted, P, S::RecoverWait),
            Stay,
            "A21"
        );
    }

    #[test]
    fn communications_interrupted_to_potential_conflict_when_partner_in_conflict_or_down() {
        for p in [
            S::PartnerDown,
            S::PotentialConflict,
            S::ConflictDone,
            S::ResolutionInterrupted,
        ] {
            assert_eq!(
                on_partner_state(S::CommunicationsInterrupted, SEC, p),
                Go(S::PotentialConflict),
                "{p}"
            );
        }
    }

    #[test]
    fn potential_conflict_to_resolution_interrupted_when_communications_fail() {
        assert_eq!(
            on_communications_failed(S::PotentialConflict),
            S::ResolutionInterrupted
        );
    }

    #[test]
    fn potential_conflict_primary_to_conflict_done_on_upddone() {
        assert_eq!(on_upddone(S::PotentialConflict, P), Some(S::ConflictDone));
    }

    #[test]
    fn potential_conflict_secondary_to_normal_on_upddone() {
        assert_eq!(on_upddone(S::PotentialConflict, SEC), Some(S::Normal));
    }

    #[test]
    fn potential_conflict_secondary_stays_when_primary_conflict_done() {
        assert_eq!(on_partner_state(S::PotentialConflict, SEC, S::ConflictDone), Stay);
    }

    #[test]
    fn resolution_interrupted_to_partner_down_by_operator() {
        assert!(partner_down_allowed(S::ResolutionInterrupted));
        assert!(!partner_down_allowed(S::PotentialConflict));
        assert!(!partner_down_allowed(S::Recover));
    }

    #[test]
    fn resolution_interrupted_to_potential_conflict_when_communications_ok() {
        for p in all_states() {
            assert_eq!(
                on_partner_state(S::ResolutionInterrupted, P, p),
                Go(S::PotentialConflict)
            );
        }
    }

    #[test]
    fn conflict_done_primary_to_normal_when_secondary_normal() {
        assert_eq!(on_partner_state(S::ConflictDone, P, S::Normal), Go(S::Normal));
        assert_eq!(on_partner_state(S::ConflictDone, P, S::PotentialConflict), Stay);
    }

    #[test]
    fn conflict_done_primary_stays_on_communications_failure() {
        assert_eq!(on_communications_failed(S::ConflictDone), S::ConflictDone);
    }

    #[test]
    fn startup_previous_state_replaces_states_needing_communications() {
        assert_eq!(startup_previous_state(None), S::Recover, "A15");
        assert_eq!(
            startup_previous_state(Some(S::Normal)),
            S::CommunicationsInterrupted
        );
        assert_eq!(
            startup_previous_state(Some(S::PotentialConflict)),
            S::ResolutionInterrupted
        );
        assert_eq!(startup_previous_state(Some(S::PartnerDown)), S::PartnerDown);
        assert_eq!(startup_previous_state(Some(S::RecoverWait)), S::RecoverWait);
    }

    #[test]
    fn startup_to_recover_when_partner_went_down_after_we_stopped() {
        assert_eq!(
            startup_resolution(S::CommunicationsInterrupted, S::PartnerDown, Some(200), Some(100)),
            S::Recover
        );
    }

    #[test]
    fn startup_to_potential_conflict_when_partner_went_down_before_we_stopped() {
        assert_eq!(
            startup_resolution(S::CommunicationsInterrupted, S::PartnerDown, Some(100), Some(200)),
            S::PotentialConflict
        );
        assert_eq!(
            startup_resolution(S::CommunicationsInterrupted, S::PartnerDown, Some(100), Some(100)),
            S::PotentialConflict,
            "A16: equal times are a conflict"
        );
    }

    #[test]
    fn startup_while_recovering_resumes_recovery_whatever_the_times() {
        for previous in [S::Recover, S::RecoverWait] {
            assert_eq!(
                startup_resolution(previous, S::PartnerDown, Some(100), Some(200)),
                S::Recover,
                "{previous}"
            );
        }
    }

    #[test]
    fn startup_to_previous_state_when_partner_not_partner_down() {
        assert_eq!(
            startup_resolution(S::CommunicationsInterrupted, S::Normal, None, Some(5)),
            S::CommunicationsInterrupted
        );
    }
}
