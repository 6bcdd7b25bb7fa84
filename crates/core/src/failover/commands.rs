//! The operator's commands: PARTNER-DOWN (§8.4), commissioning a server
//! that never reached its partner (§8.3.2), giving up on a partner that
//! died while it recovered, and the planned handover (duet's extension,
//! negotiated at CONNECT: docs/failover.md, "planned handover").

use super::*;

/// Whether `msg` is a DISCONNECT handing the sender's clients over.
pub fn is_handover(msg: &FailoverMessage<'_>) -> bool {
    msg.msg_type == FailoverMessageType::Disconnect
        && msg.options.iter().any(|o| match o {
            DhcpOption::VendorOpts(v) => {
                v.enterprise_number == FINGERPRINT_ENTERPRISE
                    && v.options.iter().any(|s| s.code == HANDOVER_SUBOPTION)
            }
            _ => false,
        })
}

impl FailoverEndpoint {
    fn refuse<T>(&self, why: impl Into<String>) -> Result<T, CommandError> {
        Err(CommandError::Refused {
            name: self.cfg.name.clone(),
            why: why.into(),
        })
    }

    /// The operator declares the partner down (§8.4).
    pub fn partner_down(&mut self, now: UnixTime, db: &mut LeaseDb) -> Result<(), CommandError> {
        if self.state == ServerState::PartnerDown {
            return Ok(());
        }
        if !state::partner_down_allowed(self.state) {
            return Err(CommandError::NotAllowed {
                name: self.cfg.name.clone(),
                state: self.state,
            });
        }
        self.enter(ServerState::PartnerDown, now, db);
        // A handover under way ends here (it needs NORMAL): serve on.
        self.check_leaving(now, db);
        Ok(())
    }

    /// Puts into service a server that has never reached its partner (a
    /// new deployment whose partner is not there yet, or a server rebuilt
    /// with an empty store whose partner is gone): RECOVER (or STARTUP) →
    /// PARTNER-DOWN, which RFC 8156 §8.3.2 says SHOULD be configurable.
    /// The partner, when it comes, recovers from this server (§8.3.2 step
    /// 5: its last operation is older than this PARTNER-DOWN, or unknown).
    pub fn commission(&mut self, now: UnixTime, db: &mut LeaseDb) -> Result<(), CommandError> {
        if self.communicated {
            return self.refuse(
                "this server has reached its partner before; use partner-down (or partner-lost if the partner died while recovering)",
            );
        }
        if !matches!(self.conn, Conn::Down) {
            return self.refuse("a connection to the partner is up: let the pair recover instead");
        }
        let shown = self.shown_state().0;
        if !matches!(shown, ServerState::Recover | ServerState::RecoverWait) {
            return self.refuse(format!(
                "commissioning puts a server that never reached its partner into service from RECOVER; this one is in {shown}"
            ));
        }
        self.startup = None;
        self.note("commissioned by the operator: PARTNER-DOWN without ever reaching the partner".into());
        self.enter(ServerState::PartnerDown, now, db);
        Ok(())
    }

    /// The partner is gone, and so is its store, after it reached RECOVER
    /// (or RECOVER-WAIT, RECOVER-DONE): forget that it was recovering, so
    /// that PARTNER-DOWN no longer caps lifetimes at the MCLT nor keeps off
    /// its delegable prefixes (`partner_recovering`). From NORMAL,
    /// COMMUNICATIONS-INTERRUPTED or RESOLUTION-INTERRUPTED this also
    /// enters PARTNER-DOWN. Safe only if the partner really does not run;
    /// if it comes back, with or without its store, it recovers from this
    /// server before serving (§8.3.2).
    pub fn partner_lost(&mut self, now: UnixTime, db: &mut LeaseDb) -> Result<(), CommandError> {
        if self.communications_ok() {
            return self.refuse("the partner is connected: it is not lost");
        }
        if self.state != ServerState::PartnerDown {
            self.partner_down(now, db)?;
        }
        if self.partner_state.is_some() {
            self.partner_state = None;
            self.record_dirty = true;
        }
        self.note("partner declared lost by the operator: its recovery is no longer waited for".into());
        Ok(())
    }

    /// Starts a planned handover (docs/failover.md): this relationship's
    /// clients get no answer from now on, every update still due is sent
    /// (rejected ones at once), and when the partner has acknowledged all
    /// of them this server records that it handed over (RECOVER), tells
    /// the partner (a DISCONNECT the node sends only once that record is
    /// durable) and stays out until it restarts or is resumed. After
    /// `timeout` without that, the handover is abandoned and the server
    /// serves on. Needs NORMAL, the partner connected, and its support
    /// (announced at CONNECT).
    pub fn handover(
        &mut self,
        now: UnixTime,
        timeout: Duration,
        db: &mut LeaseDb,
    ) -> Result<(), CommandError> {
        if self.parked || self.leaving.is_some() {
            return Ok(());
        }
        if self.state != ServerState::Normal || !self.communications_ok() {
            return self.refuse(format!(
                "a handover needs NORMAL with the partner connected; the relationship is in {}{}",
                self.state,
                if self.communications_ok() {
                    ""
                } else {
                    " without the partner"
                }
            ));
        }
        if self.partner_extensions & EXTENSION_HANDOVER == 0 {
            return self.refuse(
                "the partner did not announce planned handover at CONNECT (another implementation or an older duet): stop this server and declare it down at the partner instead (partner-down)",
            );
        }
        self.leaving = Some(Leaving {
            deadline: now.saturating_add(timeout),
        });
        let rejected: Vec<LeaseKey> = std::mem::take(&mut self.wait_scan).into_iter().collect();
        for k in rejected {
            self.enqueue(
                k,
                QueueItem {
                    announce: None,
                    force: false,
                },
            );
        }
        self.pump(now, db);
        self.check_leaving(now, db);
        Ok(())
    }

    /// A server that handed its clients over takes part again: it recovers
    /// from its partner through RFC 8156's RECOVER (without RECOVER-WAIT:
    /// it granted nothing the partner did not acknowledge).
    pub fn resume(&mut self) -> Result<(), CommandError> {
        if !self.parked {
            return self.refuse("this server did not hand its clients over");
        }
        self.parked = false;
        self.note("resumed by the operator after a handover: recovering from the partner".into());
        Ok(())
    }

    /// Completes or abandons a handover under way.
    pub(super) fn check_leaving(&mut self, now: UnixTime, db: &mut LeaseDb) {
        let Some(leaving) = self.leaving else { return };
        if self.state != ServerState::Normal || !self.communications_ok() {
            self.leaving = None;
            self.events.push_back(Event::HandoverFailed(format!(
                "the relationship left NORMAL or lost the partner connection (now {}) before the partner acknowledged everything",
                self.state
            )));
            return;
        }
        if self.queue.is_empty() && self.in_flight.is_empty() && self.wait_scan.is_empty() {
            self.leaving = None;
            self.parked = true;
            self.handed_over = true;
            // Recorded, not announced: a STATE saying RECOVER would make the
            // partner treat us as recovering (MCLT caps in its
            // PARTNER-DOWN); the DISCONNECT below tells it instead.
            let from = self.state;
            self.state = ServerState::Recover;
            self.state_since = now;
            self.record_dirty = true;
            self.events.push_back(Event::StateChanged {
                from,
                to: ServerState::Recover,
            });
            let xid = self.xid();
            let mut m = FailoverMessage::new(FailoverMessageType::Disconnect, xid, now.to_abs());
            m.options.push(DhcpOption::StatusCode(Status::new(
                StatusCode::ServerShuttingDown,
                "planned handover: every update acknowledged",
            )));
            m.options.push(DhcpOption::VendorOpts(VendorOpts {
                enterprise_number: FINGERPRINT_ENTERPRISE,
                options: vec![VendorSubOption {
                    code: HANDOVER_SUBOPTION,
                    data: Cow::Borrowed(&[]),
                }],
            }));
            self.send(m, now);
            self.events.push_back(Event::HandoverDone);
            self.close("handed the clients over to the partner".into(), now, db);
        } else if now >= leaving.deadline {
            self.leaving = None;
            let left = self
                .queue
                .len()
                .saturating_add(self.in_flight.len())
                .saturating_add(self.wait_scan.len());
            self.events.push_back(Event::HandoverFailed(format!(
                "{left} updates still unacknowledged when the handover timed out; serving on"
            )));
        }
    }

    /// The partner handed its clients over (its DISCONNECT, after the
    /// connection closed): it acknowledged nothing more is unreported, so
    /// PARTNER-DOWN at once, and its recovery is not waited for.
    pub(super) fn partner_handed_over(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if self.state != ServerState::CommunicationsInterrupted {
            return self.note(format!(
                "the partner handed over while this server was in {}: not taking over",
                self.state
            ));
        }
        if self.partner_state.is_some() {
            self.partner_state = None;
            self.record_dirty = true;
        }
        self.note("the partner handed its clients over: PARTNER-DOWN".into());
        self.enter(ServerState::PartnerDown, now, db);
    }
}
