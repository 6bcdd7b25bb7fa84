//! The connection (RFC 8156 §6): CONNECT / CONNECTREPLY and their checks
//! (§6.1, version, name, MCLT, time skew, the configuration fingerprint),
//! STATE (§6.3), DISCONNECT, and the incoming-message dispatch.

use super::*;

impl FailoverEndpoint {
    pub(super) fn my_flags(&self) -> u8 {
        let mut f = 0;
        if self.startup.is_some() {
            f |= SERVER_FLAG_STARTUP;
        }
        if self.communicated_at_connect {
            f |= SERVER_FLAG_COMMUNICATED;
        }
        if self.partner_flags & SERVER_FLAG_STARTUP != 0 {
            f |= SERVER_FLAG_ACK_STARTUP;
        }
        f
    }

    /// STATE (§6.3): own state (the recorded one during STARTUP, with the
    /// STARTUP flag), flags, start time, and PARTNER-DOWN time iff in it.
    pub(super) fn send_state(&mut self, now: UnixTime) {
        if !matches!(self.conn, Conn::Established { .. }) {
            return;
        }
        let (shown, since) = self.shown_state();
        let xid = self.xid();
        let mut m = FailoverMessage::new(FailoverMessageType::State, xid, now.to_abs());
        m.options.push(DhcpOption::ServerState(shown));
        m.options.push(DhcpOption::ServerFlags(self.my_flags()));
        m.options.push(DhcpOption::StartTimeOfState(since.to_abs()));
        // Iff in PARTNER-DOWN (§6.3), a recorded one during STARTUP too:
        // when it began, restarts included.
        if shown == ServerState::PartnerDown {
            m.options.push(DhcpOption::PartnerDownTime(since.to_abs()));
        }
        self.send(m, now);
    }

    pub(super) fn connect_options(&self) -> Vec<DhcpOption<'static>> {
        let mut o = vec![
            DhcpOption::ProtocolVersion {
                major: PROTOCOL_VERSION.0,
                minor: PROTOCOL_VERSION.1,
            },
            DhcpOption::Mclt(u32::try_from(self.mclt.as_secs()).unwrap_or(u32::MAX)),
            DhcpOption::KeepaliveTime(u32::try_from(self.cfg.keepalive.as_secs()).unwrap_or(u32::MAX)),
            DhcpOption::MaxUnackedBndupd(self.cfg.max_unacked_bndupd.max(1)),
        ];
        // A4: the relationship name goes in CONNECTREPLY too.
        o.push(DhcpOption::RelationshipName(Cow::Owned(self.cfg.name.clone())));
        // Every delegable prefix of a pool is delegated at the pool's one length.
        o.push(DhcpOption::ConnectFlags(CONNECT_FLAG_FIXED_PD_LENGTH));
        let mut vendor = vec![VendorSubOption {
            code: EXTENSIONS_SUBOPTION,
            data: Cow::Owned(EXTENSION_HANDOVER.to_be_bytes().to_vec()),
        }];
        if let Some(fp) = &self.cfg.fingerprint {
            vendor.push(VendorSubOption {
                code: FINGERPRINT_SUBOPTION,
                data: Cow::Owned(fp.clone()),
            });
        }
        o.push(DhcpOption::VendorOpts(VendorOpts {
            enterprise_number: FINGERPRINT_ENTERPRISE,
            options: vendor,
        }));
        o
    }

    pub(super) fn fingerprint_of(opts: &[DhcpOption<'_>]) -> Option<Vec<u8>> {
        opts.iter().find_map(|o| match o {
            DhcpOption::VendorOpts(v) if v.enterprise_number == FINGERPRINT_ENTERPRISE => v
                .options
                .iter()
                .find(|s| s.code == FINGERPRINT_SUBOPTION)
                .map(|s| s.data.to_vec()),
            _ => None,
        })
    }

    /// Records a refusal between the partners (see [`Refusal`]).
    pub(super) fn refused(&mut self, kind: RefusalKind, reason: String, by_us: bool, now: UnixTime) {
        let r = Refusal {
            kind,
            reason,
            at: now,
            by_us,
        };
        self.refusal = Some(r.clone());
        self.events.push_back(Event::Refused(r));
    }

    /// The partner showed it is alive without a connection reaching this
    /// endpoint: a connection attempt that failed or was refused before
    /// CONNECT (TLS, its certificate, an unknown relationship name), with
    /// the refusal if it was one. Automatic PARTNER-DOWN counts from here,
    /// and is held off while a refusal stands.
    pub fn handle_attempt(&mut self, now: UnixTime, refusal: Option<(RefusalKind, String)>) {
        self.last_heard = self.last_heard.max(now);
        if let Some((kind, reason)) = refusal {
            self.refused(kind, reason, true, now);
        }
    }

    /// The TCP (+TLS) connection to the partner is up. The primary sends
    /// CONNECT (§6.1.1); the secondary waits for it. A server that handed
    /// its clients over stays out: it closes at once (primary) or refuses
    /// the CONNECT (secondary).
    pub fn handle_connected(&mut self, now: UnixTime) {
        self.communicated_at_connect = self.communicated;
        self.last_received = now;
        self.last_heard = self.last_heard.max(now);
        self.last_sent = now;
        self.partner_extensions = 0;
        // What the previous connection's partner announced does not carry
        // over: its CONNECT / CONNECTREPLY tells again.
        self.partner_keepalive = self.cfg.keepalive;
        self.partner_max_unacked = 1;
        match self.cfg.role {
            Role::Primary if self.parked => {
                self.events.push_back(Event::Close(
                    "this server handed its clients over and waits to be resumed or restarted".into(),
                ));
            }
            Role::Primary => {
                let xid = self.xid();
                let mut m = FailoverMessage::new(FailoverMessageType::Connect, xid, now.to_abs());
                m.options = self.connect_options();
                self.send(m, now);
                self.conn = Conn::AwaitConnectReply;
            }
            Role::Secondary => self.conn = Conn::AwaitConnect,
        }
    }

    /// The connection is gone (closed or reset).
    pub fn handle_closed(&mut self, now: UnixTime, db: &mut LeaseDb) {
        self.transmit.clear();
        self.connection_lost(now, db);
    }

    pub(super) fn connection_lost(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if self.conn == Conn::Down {
            return;
        }
        let was_ok = self.communications_ok();
        self.conn = Conn::Down;
        // Everything in flight goes back to the head of the queue (sent
        // again after the next connection, §8.8.1).
        let mut back: Vec<(TransactionId, InFlight)> =
            std::mem::take(&mut self.in_flight).into_iter().collect();
        back.sort_by_key(|(x, _)| *x);
        self.in_flight_keys.clear();
        self.acks_awaited_since = None;
        for (_, f) in back.into_iter().rev() {
            let item = QueueItem {
                announce: (f.announced != f.snapshot.state).then_some(f.announced),
                force: false,
            };
            if self.queued.insert(f.key, item).is_none() {
                self.queue.push_front(f.key);
            }
        }
        self.updreq_sent = None;
        self.serving = None;
        if was_ok {
            self.events.push_back(Event::CommunicationsLost);
        }
        let next = state::on_communications_failed(self.state);
        self.enter(next, now, db);
        // A handover still waiting for acknowledgements is abandoned now,
        // not at the next timer: without its DISCONNECT the partner does
        // not take over (it stays in COMMUNICATIONS-INTERRUPTED, §8.9,
        // serving from its own pool only), so this server must answer its
        // clients again (duet-sim seeds 38069, 51902).
        self.check_leaving(now, db);
    }

    /// We close: what is already queued (a refusing CONNECTREPLY, a
    /// DISCONNECT) is still sent, then the driver closes the connection.
    pub(super) fn close(&mut self, reason: String, now: UnixTime, db: &mut LeaseDb) {
        self.events.push_back(Event::Close(reason));
        self.connection_lost(now, db);
    }

    /// A message from the partner.
    pub fn handle_message(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        self.last_received = now;
        self.last_heard = self.last_heard.max(now);
        let sent = UnixTime::from_abs(msg.sent_time, now);
        let skew = i64::try_from(sent.secs())
            .unwrap_or(0)
            .saturating_sub(i64::try_from(now.secs()).unwrap_or(0));
        self.clock_skew = Some(skew);
        let skewed = skew.unsigned_abs() > MAX_TIME_SKEW;
        use FailoverMessageType as T;
        match (self.conn, msg.msg_type) {
            (Conn::Down, _) => {}
            (Conn::AwaitConnect, T::Connect) => self.on_connect(now, msg, skewed, db),
            (Conn::AwaitConnectReply, T::ConnectReply) => self.on_connect_reply(now, msg, db),
            // A DISCONNECT ends the connection anyway and carries no time
            // to compare; a late one (held up in transit) must still be
            // read, a handover's above all (duet-sim seed 15273).
            (Conn::Established { .. }, t) if skewed && t != T::Disconnect => {
                // §7.5.1: SHOULD drop the connection.
                let why = format!("partner clock differs by {skew} s (more than {MAX_TIME_SKEW} s)");
                self.refused(RefusalKind::TimeSkew, why.clone(), true, now);
                self.close(why, now, db);
            }
            (Conn::Established { .. }, T::State) => self.on_state(now, msg, db),
            (Conn::Established { .. }, T::Contact) => {}
            (Conn::Established { .. }, T::Disconnect) => {
                let why = bndupd::status_text(&msg.options);
                self.close(format!("partner sent DISCONNECT {why}"), now, db);
                if is_handover(msg) {
                    self.partner_handed_over(now, db);
                }
            }
            (Conn::Established { .. }, T::BndUpd) => self.on_bndupd(now, msg, db),
            (Conn::Established { .. }, T::BndReply) => self.on_bndreply(now, msg, db),
            (Conn::Established { .. }, T::UpdReq | T::UpdReqAll) => {
                self.on_updreq(now, msg.transaction_id, msg.msg_type == T::UpdReqAll, db)
            }
            (Conn::Established { .. }, T::UpdDone) => self.on_upddone(now, msg.transaction_id, db),
            (Conn::Established { .. }, T::PoolReq) => self.on_poolreq(now, msg.transaction_id, db),
            (Conn::Established { .. }, T::PoolResp) => {}
            (c, t) => {
                self.close(format!("unexpected {t} in connection state {c:?}"), now, db);
            }
        }
        self.pump(now, db);
        self.check_leaving(now, db);
    }

    pub(super) fn reject_connect(
        &mut self,
        now: UnixTime,
        request: TransactionId,
        code: StatusCode,
        text: String,
        db: &mut LeaseDb,
    ) {
        let mut m = FailoverMessage::new(FailoverMessageType::ConnectReply, request, now.to_abs());
        m.options.push(DhcpOption::StatusCode(Status {
            code,
            message: Cow::Owned(text.clone().into_bytes()),
        }));
        self.send(m, now);
        if code != StatusCode::ServerShuttingDown {
            self.refused(RefusalKind::of_status(code), format!("{code}: {text}"), true, now);
        }
        self.close(format!("refused CONNECT: {code}: {text}"), now, db);
    }

    /// What the partner's CONNECT (`secondary`) or CONNECTREPLY announces
    /// that this endpoint cannot work with (§6.1.2, §6.1.3): the protocol
    /// version, the relationship name (§5.5.14), CONNECT_FLAGS (§5.5.2:
    /// every prefix of a pool is delegated at the pool's one length here),
    /// the configuration fingerprint (compared by the secondary only), and
    /// the MCLT (the primary's rules: the secondary adopts it, the primary
    /// drops a CONNECTREPLY that differs).
    pub(super) fn partner_params_refused(
        &self,
        opts: &[DhcpOption<'_>],
        secondary: bool,
    ) -> Option<(StatusCode, String)> {
        let version = opts.iter().find_map(|o| match o {
            DhcpOption::ProtocolVersion { major, minor } => Some((*major, *minor)),
            _ => None,
        });
        if version.map(|v| v.0) != Some(PROTOCOL_VERSION.0) {
            return Some((
                StatusCode::NotSupported,
                format!("protocol version {version:?} not supported"),
            ));
        }
        let name = opts.iter().find_map(|o| match o {
            DhcpOption::RelationshipName(n) => Some(n.to_string()),
            _ => None,
        });
        match name {
            Some(n) if n != self.cfg.name => {
                return Some((
                    StatusCode::ConfigurationConflict,
                    format!("relationship {n:?} is not {:?}", self.cfg.name),
                ))
            }
            None if secondary && !self.cfg.sole_with_peer => {
                return Some((
                    StatusCode::ConfigurationConflict,
                    "CONNECT without a relationship name, and this server has several relationships with that primary".into(),
                ))
            }
            _ => {}
        }
        let flags = opts.iter().find_map(|o| match o {
            DhcpOption::ConnectFlags(f) => Some(*f),
            _ => None,
        });
        match flags {
            None => {
                return Some((
                    StatusCode::ConfigurationConflict,
                    "no OPTION_F_CONNECT_FLAGS".into(),
                ))
            }
            Some(f) if f & CONNECT_FLAG_FIXED_PD_LENGTH == 0 => {
                return Some((
                    StatusCode::ConfigurationConflict,
                    "the partner delegates prefixes of several lengths from one delegable prefix (FIXED_PD_LENGTH clear); duet delegates one length per pool".into(),
                ))
            }
            Some(_) => {}
        }
        if secondary {
            if let (Some(mine), Some(theirs)) = (&self.cfg.fingerprint, Self::fingerprint_of(opts)) {
                if *mine != theirs {
                    // Only the secondary compares: name the roles, not
                    // "here", so the text reads right in the primary's log too.
                    let diff = fingerprint_diff(mine, &theirs, "secondary", "primary");
                    return Some((
                        StatusCode::ConfigurationConflict,
                        format!("the relationship's subnets and pools differ between the partners: {diff}"),
                    ));
                }
            }
        }
        let mclt = opts.iter().find_map(|o| match o {
            DhcpOption::Mclt(m) => Some(u64::from(*m)),
            _ => None,
        });
        match mclt {
            None => Some((StatusCode::MissingBindingInformation, "no OPTION_F_MCLT".into())),
            Some(m) if !secondary && m != self.mclt.as_secs() => Some((
                StatusCode::ConfigurationConflict,
                format!(
                    "CONNECTREPLY with MCLT {m} s, not ours ({} s)",
                    self.mclt.as_secs()
                ),
            )),
            Some(_) => None,
        }
    }

    /// Secondary (§6.1.2).
    pub(super) fn on_connect(
        &mut self,
        now: UnixTime,
        msg: &FailoverMessage<'_>,
        skewed: bool,
        db: &mut LeaseDb,
    ) {
        let xid = msg.transaction_id;
        if self.parked {
            return self.reject_connect(
                now,
                xid,
                StatusCode::ServerShuttingDown,
                "this server handed its clients over and waits to be resumed or restarted".into(),
                db,
            );
        }
        if skewed {
            let skew = self.clock_skew.unwrap_or(0);
            return self.reject_connect(
                now,
                xid,
                StatusCode::ExcessiveTimeSkew,
                format!("clocks differ by {skew} s"),
                db,
            );
        }
        if let Some((code, text)) = self.partner_params_refused(&msg.options, true) {
            return self.reject_connect(now, xid, code, text, db);
        }
        if let Some(mclt) = msg.options.iter().find_map(|o| match o {
            DhcpOption::Mclt(m) => Some(*m),
            _ => None,
        }) {
            if Duration::from_secs(u64::from(mclt)) != self.mclt {
                self.note(format!(
                    "adopting the primary's MCLT of {mclt} s (configured {} s)",
                    self.mclt.as_secs()
                ));
                self.mclt = Duration::from_secs(u64::from(mclt));
                self.record_dirty = true;
            }
        }
        self.adopt_partner_params(&msg.options);
        let mut reply = FailoverMessage::new(FailoverMessageType::ConnectReply, xid, now.to_abs());
        reply.options = self.connect_options();
        self.send(reply, now);
        self.conn = Conn::Established { comms_ok: false };
        self.send_state(now);
    }

    pub(super) fn adopt_partner_params(&mut self, opts: &[DhcpOption<'_>]) {
        for o in opts {
            match o {
                DhcpOption::KeepaliveTime(k) => self.partner_keepalive = Duration::from_secs(u64::from(*k)),
                DhcpOption::MaxUnackedBndupd(n) => {
                    self.partner_max_unacked = (*n).clamp(1, MAX_UNACKED_BNDUPD_CAP)
                }
                DhcpOption::VendorOpts(v) if v.enterprise_number == FINGERPRINT_ENTERPRISE => {
                    for sub in v.options.iter().filter(|s| s.code == EXTENSIONS_SUBOPTION) {
                        if let Ok(b) = <[u8; 4]>::try_from(sub.data.as_ref()) {
                            self.partner_extensions = u32::from_be_bytes(b);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Primary (§6.1.3).
    pub(super) fn on_connect_reply(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        if let Some(s) = msg.options.status().filter(|s| s.code != StatusCode::Success) {
            let text = format!("{}: {}", s.code, s.message_lossy());
            self.events.push_back(Event::ConnectRefused(text.clone()));
            // A partner shutting down (or parked after a handover) refuses
            // nothing about us.
            if s.code != StatusCode::ServerShuttingDown {
                self.refused(RefusalKind::of_status(s.code), text.clone(), false, now);
            }
            return self.close(format!("partner refused CONNECT: {text}"), now, db);
        }
        if let Some((code, text)) = self.partner_params_refused(&msg.options, false) {
            self.simple(FailoverMessageType::Disconnect, None, now);
            self.refused(RefusalKind::of_status(code), text.clone(), true, now);
            return self.close(format!("CONNECTREPLY not acceptable: {text}"), now, db);
        }
        self.adopt_partner_params(&msg.options);
        self.conn = Conn::Established { comms_ok: false };
        self.send_state(now);
    }

    pub(super) fn on_state(&mut self, now: UnixTime, msg: &FailoverMessage<'_>, db: &mut LeaseDb) {
        let mut partner = None;
        let mut flags = 0;
        let mut since = None;
        let mut pd_time = None;
        for o in &msg.options {
            match o {
                DhcpOption::ServerState(s) => partner = Some(*s),
                DhcpOption::ServerFlags(f) => flags = *f,
                DhcpOption::StartTimeOfState(t) => since = Some(UnixTime::from_abs(*t, now)),
                DhcpOption::PartnerDownTime(t) => pd_time = Some(UnixTime::from_abs(*t, now)),
                _ => {}
            }
        }
        let Some(partner) = partner.and_then(|p| state_from_u8(u8::from(p))) else {
            return self.close("STATE without a valid OPTION_F_SERVER_STATE".into(), now, db);
        };
        let first = !self.communications_ok();
        self.partner_flags = flags;
        self.partner_down_since = if partner == ServerState::PartnerDown {
            pd_time.or(since)
        } else {
            None
        };
        if self.partner_state != Some(partner) {
            self.record_dirty = true;
        }
        self.partner_state = Some(partner);
        self.partner_state_since = since.unwrap_or(now);
        if first {
            self.conn = Conn::Established { comms_ok: true };
            // No record of the partner, which has one of us: our storage
            // was lost and we need its whole database (§8.5.1, A5). That
            // need is recorded together with COMMUNICATED and lasts until
            // an UPDREQALL is complete: recorded alone, a crash before or
            // during the download would make the restarted server ask for
            // the changes only, and serve from a partial table (found by
            // duet-sim, seeds 235 and 4057).
            if !self.communicated_before && flags & SERVER_FLAG_COMMUNICATED != 0 {
                self.download_pending = true;
            }
            self.communicated = true;
            self.record_dirty = true;
            self.comms_lost_at = None;
            // Working together again: whatever was refused is fixed.
            self.refusal = None;
            self.events.push_back(Event::CommunicationsOk);
        }
        // §8.3.2 step 5: a starting server decides where to go.
        if let Some((previous, _)) = self.startup {
            let current = state::startup_resolution(
                previous,
                partner,
                self.partner_down_since.map(UnixTime::secs),
                self.last_operating.map(UnixTime::secs),
            );
            self.startup = None;
            self.enter(current, now, db);
        } else if first {
            // A fresh connection: (re)announce our state.
            self.send_state(now);
        }
        // A22: never act on a STARTUP-flagged STATE.
        if flags & SERVER_FLAG_STARTUP != 0 {
            return;
        }
        match state::on_partner_state(self.state, self.cfg.role, partner) {
            state::OnPartner::Go(next) => self.enter(next, now, db),
            state::OnPartner::Stay => {}
        }
        // Per-state actions that depend on the partner's state.
        match (self.state, self.cfg.role, partner) {
            (ServerState::Recover, _, _) if self.updreq_sent.is_none() => self.send_updreq(now),
            (ServerState::PotentialConflict, Role::Secondary, ServerState::ConflictDone)
                if self.updreq_sent.is_none() =>
            {
                self.send_updreq(now)
            }
            (ServerState::PotentialConflict, Role::Primary, _) if self.updreq_sent.is_none() && first => {
                self.send_updreq(now)
            }
            _ => {}
        }
    }

    /// This server is stopping: tell the partner with DISCONNECT
    /// (ServerShuttingDown, §5.3.10); the driver then closes the connection.
    pub fn shutdown(&mut self, now: UnixTime) {
        if matches!(self.conn, Conn::Established { .. }) {
            let xid = self.xid();
            let mut m = FailoverMessage::new(FailoverMessageType::Disconnect, xid, now.to_abs());
            m.options.push(DhcpOption::StatusCode(Status::new(
                StatusCode::ServerShuttingDown,
                "server shutting down",
            )));
            self.send(m, now);
            self.events.push_back(Event::Close("shutting down".into()));
        }
    }
}

/// Names what differs between two configuration fingerprints (one item per
/// line): what only `mine` has and what only `theirs` has, labelled.
pub fn fingerprint_diff(mine: &[u8], theirs: &[u8], mine_label: &str, theirs_label: &str) -> String {
    let lines =
        |b: &[u8]| -> BTreeSet<String> { String::from_utf8_lossy(b).lines().map(str::to_string).collect() };
    let (a, b) = (lines(mine), lines(theirs));
    let only_here: Vec<&String> = a.difference(&b).collect();
    let only_there: Vec<&String> = b.difference(&a).collect();
    format!("only at the {mine_label}: {only_here:?}; only at the {theirs_label}: {only_there:?}")
}
