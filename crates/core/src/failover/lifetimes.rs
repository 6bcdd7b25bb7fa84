//! What DHCPv6 processing may do (RFC 8156 §8.1): responsiveness by state,
//! the address halves (§4.2.1) and prefix owners (§4.2.2), the MCLT rule
//! (§4.4), reuse of released and expired leases (§8.4.1); the
//! [`LeasePolicy`] of [`Relationships`].

use super::*;

impl FailoverEndpoint {
    /// §8.4.1 / §16.3, digest's conservative formula (A18): when a lease
    /// that left a client may go to a different one in PARTNER-DOWN.
    pub(super) fn reuse_time(&self, l: &Lease, now: UnixTime) -> UnixTime {
        let pd_entry = if self.state == ServerState::PartnerDown {
            self.state_since
        } else {
            now
        };
        let latest = [
            l.valid_until,
            l.failover.partner_lifetime,
            l.failover.acked_partner_lifetime,
            l.failover.expiration_time,
            pd_entry,
        ]
        .into_iter()
        .max()
        .unwrap_or(now);
        latest
            .saturating_add(self.mclt)
            .max(l.start_time_of_state.saturating_add(self.mclt))
    }

    pub(super) fn responsiveness(&self) -> Responsiveness {
        use ServerState as S;
        // A planned handover answers no client from its start (what it
        // grants now could not be acknowledged before it leaves).
        if self.leaving.is_some() || self.parked {
            return Responsiveness::Unresponsive;
        }
        match (self.state, self.cfg.role) {
            (S::Normal, Role::Primary) | (S::ConflictDone, Role::Primary) => Responsiveness::Responsive,
            (S::Normal, Role::Secondary) | (S::RecoverDone, _) => Responsiveness::RenewResponsive,
            (S::CommunicationsInterrupted | S::PartnerDown | S::ResolutionInterrupted, _) => {
                Responsiveness::Responsive
            }
            _ => Responsiveness::Unresponsive,
        }
    }

    /// RFC 7031 §4.7: a secondary in NORMAL answers a client that has been
    /// trying for `rescue-after` (from its own half and FREE-BACKUP
    /// prefixes, MCLT-capped, with BNDUPDs as usual: what NORMAL allows it
    /// anyway).
    pub(super) fn rescue_after(&self) -> Option<Duration> {
        (self.state == ServerState::Normal
            && self.cfg.role == Role::Secondary
            && self.responsiveness() == Responsiveness::RenewResponsive)
            .then_some(self.cfg.rescue_after)
            .flatten()
    }

    pub(super) fn own_class(&self) -> usize {
        match self.cfg.role {
            Role::Primary => 1,
            Role::Secondary => 0,
        }
    }

    pub(super) fn address_classes(&self) -> [bool; 2] {
        if self.state == ServerState::RecoverDone || self.responsiveness() == Responsiveness::Unresponsive {
            return [false, false];
        }
        // §4.2.1 and A17: only the own half, in every state.
        let mut c = [false, false];
        if let Some(own) = c.get_mut(self.own_class()) {
            *own = true;
        }
        c
    }

    pub(super) fn prefix_classes(&self, now: UnixTime) -> Vec<usize> {
        if self.state == ServerState::RecoverDone || self.responsiveness() == Responsiveness::Unresponsive {
            return vec![];
        }
        // §8.11: RESOLUTION-INTERRUPTED follows a POTENTIAL-CONFLICT, which
        // a PARTNER-DOWN leads to (§8.3.2 step 5, §8.4.2, §8.5.2, §8.9.2).
        // The partner may have delegated our prefixes there (§8.4.1, after
        // MCLT, uncapped) and the resolution that would have told us was cut
        // short: "own pool" may already be taken. No new prefix until the
        // conflict is resolved; renewals, and addresses from our own half
        // (never used by the partner, A17), go on. Reached with legitimate
        // PARTNER-DOWNs when skewed clocks put the partner's PARTNER-DOWN
        // start before this server's last operation (found by duet-sim,
        // seeds 26148 and 53289).
        if self.state == ServerState::ResolutionInterrupted {
            return vec![];
        }
        let own = match self.cfg.role {
            Role::Primary => 0,
            Role::Secondary => 1,
        };
        // §8.4.1: the partner's pool only in PARTNER-DOWN, after MCLT, and
        // only once our own is used up (tried first). Not while the partner
        // recovers: it serves that pool again as soon as it is NORMAL,
        // perhaps before our allocation reaches it (found by duet-sim,
        // seed 42064).
        if self.state == ServerState::PartnerDown
            && now >= self.state_since.saturating_add(self.mclt)
            && !self.partner_recovering()
        {
            vec![own, 1usize.saturating_sub(own)]
        } else {
            vec![own]
        }
    }

    pub(super) fn may_reuse(&self, lease: &Lease, binding: &crate::lease::BindingKey) -> bool {
        // §4.2.2.1: the same client may get its EXPIRED/RELEASED lease back
        // as long as no BNDUPD about that was sent yet.
        matches!(lease.state, LeaseState::Expired | LeaseState::Released)
            && lease.binding.as_ref() == Some(binding)
            && lease.failover.pending_update
            && !self.in_flight_keys.contains_key(&lease.key)
            && !self.wait_scan.contains(&lease.key)
    }

    /// The partner is up and recovering: it will serve its pool again as
    /// soon as it is NORMAL, perhaps before our latest changes reach it
    /// (they are sent lazily once we are NORMAL too).
    pub(super) fn partner_recovering(&self) -> bool {
        matches!(
            self.partner_state,
            Some(ServerState::Recover | ServerState::RecoverWait | ServerState::RecoverDone)
        )
    }

    pub(super) fn valid_until_cap(&self, lease: Option<&Lease>, now: UnixTime) -> Option<UnixTime> {
        // §8.4.1: no cap in PARTNER-DOWN; but while the partner recovers,
        // what we give now may reach it only after it serves again, and if
        // we fail first it is all its own PARTNER-DOWN has to go by (found
        // by duet-sim, seed 24845): the MCLT rule again.
        if self.state == ServerState::PartnerDown && !self.partner_recovering() {
            return None;
        }
        // §4.4: never beyond what the partner acknowledged plus MCLT.
        let acked = lease.map_or(UnixTime::ZERO, |l| l.failover.acked_partner_lifetime);
        Some(acked.max(now).saturating_add(self.mclt))
    }

    pub(super) fn retire(&self, event: Retire, now: UnixTime) -> (LeaseState, Option<UnixTime>) {
        let state = match event {
            Retire::Expired => LeaseState::Expired,
            Retire::Released => LeaseState::Released,
            Retire::Declined => {
                return (
                    LeaseState::Abandoned,
                    Some(now.saturating_add(Duration::from_secs(86_400))),
                )
            }
        };
        if self.state == ServerState::PartnerDown {
            (state, Some(now.saturating_add(self.mclt)))
        } else {
            (state, None)
        }
    }

    pub(super) fn state_timeout(&self, lease: &Lease, now: UnixTime) -> StateTimeout {
        match lease.state {
            LeaseState::Expired | LeaseState::Released | LeaseState::Reset => {
                if self.state != ServerState::PartnerDown {
                    // Waits for the partner's acknowledgement.
                    return StateTimeout::Never;
                }
                let at = self.reuse_time(lease, now);
                if now >= at {
                    StateTimeout::Change(bndupd::pending_free_resolves_to(&lease.key), None)
                } else {
                    StateTimeout::Later(at)
                }
            }
            LeaseState::Abandoned => StateTimeout::Change(LeaseState::Reset, None),
            _ => StateTimeout::Never,
        }
    }
}

impl LeasePolicy for Relationships {
    fn responsiveness(&self, rel: usize) -> Responsiveness {
        self.get(rel)
            .map_or(Responsiveness::Unresponsive, FailoverEndpoint::responsiveness)
    }

    fn rescue_after(&self, rel: usize) -> Option<Duration> {
        self.get(rel).and_then(FailoverEndpoint::rescue_after)
    }

    fn address_classes(&self, rel: usize) -> [bool; 2] {
        self.get(rel)
            .map_or([false, false], FailoverEndpoint::address_classes)
    }

    fn prefix_classes(&self, rel: usize, now: UnixTime) -> Vec<usize> {
        self.get(rel).map_or_else(Vec::new, |e| e.prefix_classes(now))
    }

    fn may_reuse(
        &self,
        rel: usize,
        lease: &Lease,
        binding: &crate::lease::BindingKey,
        _now: UnixTime,
    ) -> bool {
        self.get(rel).is_some_and(|e| e.may_reuse(lease, binding))
    }

    fn valid_until_cap(&self, rel: usize, lease: Option<&Lease>, now: UnixTime) -> Option<UnixTime> {
        self.get(rel).map_or(Some(now), |e| e.valid_until_cap(lease, now))
    }

    fn partner_lifetime(&self, _rel: usize, desired: Duration, t1: Duration, now: UnixTime) -> UnixTime {
        // §4.4.1's scheme: far enough ahead for the next renewal at T1 to
        // get the full desired lifetime.
        now.saturating_add(t1).saturating_add(desired)
    }

    fn retire(&self, rel: usize, event: Retire, now: UnixTime) -> (LeaseState, Option<UnixTime>) {
        self.get(rel)
            .map_or((LeaseState::Expired, None), |e| e.retire(event, now))
    }

    fn state_timeout(&self, rel: usize, lease: &Lease, now: UnixTime) -> StateTimeout {
        self.get(rel)
            .map_or(StateTimeout::Never, |e| e.state_timeout(lease, now))
    }
}
