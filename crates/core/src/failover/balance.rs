//! Pool balance for delegable prefixes (RFC 8156 §4.2.2): the primary moves
//! free prefixes to FREE-BACKUP so the secondary holds its share;
//! POOLREQ / POOLRESP.

use super::*;

impl FailoverEndpoint {
    pub(super) fn balance_targets(&self, db: &LeaseDb) -> Vec<(usize, u128, u128, u128)> {
        self.cfg
            .pd_pools
            .iter()
            .filter_map(|&i| db.pd_pools().get(i).map(|p| (i, p)))
            .map(|(i, p)| {
                let (f0, f1) = (p.free_in_class(0), p.free_in_class(1));
                let total = f0.saturating_add(f1);
                let target = ((total as f64) * self.cfg.prefix_split.clamp(0.0, 1.0)).round() as u128;
                (i, f0, f1, target)
            })
            .collect()
    }

    /// Primary: moves free delegable prefixes so the secondary holds its
    /// configured share (FREE-BACKUP), with a threshold against churn.
    pub(super) fn rebalance(&mut self, now: UnixTime, db: &mut LeaseDb) {
        if self.cfg.role != Role::Primary {
            return;
        }
        for (pool, f0, f1, target) in self.balance_targets(db) {
            let threshold = (f0.saturating_add(f1) / 20).max(1);
            // At most 4096 prefixes move per scan.
            let picks = |db: &LeaseDb, class: usize, n: u128| {
                let n = usize::try_from(n).unwrap_or(usize::MAX).min(4096);
                db.pd_pools()
                    .get(pool)
                    .map(|p| p.pick_free(class, n))
                    .unwrap_or_default()
            };
            if f1.saturating_add(threshold) <= target {
                for p in picks(db, 0, target.saturating_sub(f1)) {
                    let key = LeaseKey::prefix(p);
                    let mut l = db
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| Lease::free(key, LeaseState::Free, now));
                    l.state = LeaseState::FreeBackup;
                    l.start_time_of_state = now;
                    l.failover.pending_update = true;
                    if db.upsert(l.clone()).is_ok() {
                        self.persist.push(l);
                        self.enqueue(
                            key,
                            QueueItem {
                                announce: None,
                                force: false,
                            },
                        );
                    }
                }
            } else if f1 > target.saturating_add(threshold) {
                for p in picks(db, 1, f1.saturating_sub(target)) {
                    let key = LeaseKey::prefix(p);
                    // Recorded as unacknowledged: after a crash before the
                    // partner's answer we resend our FREE-BACKUP (undoing
                    // the take-back the partner may have applied) instead
                    // of the two tables disagreeing on the owner for good
                    // (found by duet-sim, seed 5812).
                    if let Some(mut l) = db.get(&key).cloned().filter(|l| !l.failover.pending_update) {
                        l.failover.pending_update = true;
                        if db.upsert(l.clone()).is_ok() {
                            self.persist.push(l);
                        }
                    }
                    self.enqueue(
                        key,
                        QueueItem {
                            announce: Some(LeaseState::Free),
                            force: true,
                        },
                    );
                }
            }
        }
    }

    pub(super) fn on_poolreq(&mut self, now: UnixTime, xid: TransactionId, db: &mut LeaseDb) {
        if self.cfg.role == Role::Primary {
            self.simple(FailoverMessageType::PoolResp, Some(xid), now);
            self.rebalance(now, db);
        }
    }

    /// Secondary: asks for a check when its share ran below half its target.
    pub(super) fn secondary_low(&self, db: &LeaseDb) -> bool {
        self.balance_targets(db)
            .iter()
            .any(|&(_, _, f1, target)| f1 < target / 2)
    }
}
