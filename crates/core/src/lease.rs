//! Leases and the in-memory lease database.
//!
//! A [`Lease`] is one address (IA_NA) or one delegated prefix (IA_PD), with
//! the client it is (or was last) bound to, its RFC 8156 binding status
//! (§7.2) and the per-lease failover times (§7.3). [`LeaseDb`] holds every
//! lease record plus the indexes the server needs on the packet path:
//! by resource, by binding (client DUID, IA type, IAID — RFC 8415 §4.2),
//! the free space of every pool ([`crate::alloc`]) and a timer queue, so
//! that allocation and expiry never scan the table.

use crate::alloc::{AddressRangeSet, PrefixPoolSet};
use crate::net::Ipv6Prefix;
use crate::time::UnixTime;
use duet_wire::BindingStatus;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::Ipv6Addr;

/// What kind of IA a lease serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LeaseKind {
    /// An address for an IA_NA.
    Na,
    /// A delegated prefix for an IA_PD.
    Pd,
}

impl LeaseKind {
    /// The lease kind an IA of kind `k` holds; none for IA_TA (temporary
    /// addresses are not offered).
    pub fn of_ia(k: duet_wire::IaKind) -> Option<LeaseKind> {
        match k {
            duet_wire::IaKind::Na => Some(LeaseKind::Na),
            duet_wire::IaKind::Pd => Some(LeaseKind::Pd),
            duet_wire::IaKind::Ta => None,
        }
    }
}

impl fmt::Display for LeaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseKind::Na => "na",
            LeaseKind::Pd => "pd",
        })
    }
}

/// Identifies a lease: its kind and the address (as a /128) or prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseKey {
    /// NA or PD.
    pub kind: LeaseKind,
    /// The address as a /128, or the delegated prefix.
    pub prefix: Ipv6Prefix,
}

impl LeaseKey {
    /// The key of an address lease.
    pub fn address(a: Ipv6Addr) -> LeaseKey {
        LeaseKey {
            kind: LeaseKind::Na,
            prefix: Ipv6Prefix::new(a, 128),
        }
    }

    /// The key of a prefix lease.
    pub fn prefix(p: Ipv6Prefix) -> LeaseKey {
        LeaseKey {
            kind: LeaseKind::Pd,
            prefix: p,
        }
    }

    /// The key of an IAADDR or IAPREFIX.
    pub fn of(l: &duet_wire::IaLease<'_, '_>) -> LeaseKey {
        match l.prefix_len {
            None => LeaseKey::address(l.address),
            Some(len) => LeaseKey::prefix(Ipv6Prefix::new(l.address, len)),
        }
    }
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            LeaseKind::Na => write!(f, "{}", self.prefix.addr()),
            LeaseKind::Pd => write!(f, "{}", self.prefix),
        }
    }
}

/// A binding key (RFC 8415 §4.2): client DUID, IA type and IAID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BindingKey {
    /// The client's DUID, as bytes.
    pub duid: Vec<u8>,
    /// IA_NA or IA_PD.
    pub kind: LeaseKind,
    /// The IAID.
    pub iaid: u32,
}

/// Binding status of a lease (RFC 8156 §7.2), as stored. PENDING-FREE is
/// never stored: it resolves at once to FREE or FREE-BACKUP (digest A7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaseState {
    /// Bound to a client.
    Active,
    /// The client's valid lifetime ran out; waiting for the partner's ack.
    Expired,
    /// The client released it; waiting for the partner's ack.
    Released,
    /// Available to the primary (or, without failover, to this server).
    Free,
    /// Available to the secondary.
    FreeBackup,
    /// Unusable, after a Decline (withheld until its state expires).
    Abandoned,
    /// Made available by an operator; waiting for the partner's ack.
    Reset,
}

impl LeaseState {
    /// The wire value (RFC 8156 §5.5.1).
    pub fn to_wire(self) -> BindingStatus {
        match self {
            LeaseState::Active => BindingStatus::Active,
            LeaseState::Expired => BindingStatus::Expired,
            LeaseState::Released => BindingStatus::Released,
            LeaseState::Free => BindingStatus::Free,
            LeaseState::FreeBackup => BindingStatus::FreeBackup,
            LeaseState::Abandoned => BindingStatus::Abandoned,
            LeaseState::Reset => BindingStatus::Reset,
        }
    }

    /// From the wire; PENDING-FREE and unknown values give `None` (the
    /// caller maps PENDING-FREE by the pool rule, digest A7).
    pub fn from_wire(s: BindingStatus) -> Option<LeaseState> {
        Some(match s {
            BindingStatus::Active => LeaseState::Active,
            BindingStatus::Expired => LeaseState::Expired,
            BindingStatus::Released => LeaseState::Released,
            BindingStatus::Free => LeaseState::Free,
            BindingStatus::FreeBackup => LeaseState::FreeBackup,
            BindingStatus::Abandoned => LeaseState::Abandoned,
            BindingStatus::Reset => LeaseState::Reset,
            BindingStatus::PendingFree | BindingStatus::Unknown(_) => return None,
        })
    }

    /// Whether a lease in this state may be allocated (to its pool's owner).
    pub fn is_available(self) -> bool {
        matches!(self, LeaseState::Free | LeaseState::FreeBackup)
    }

    /// The name used in `duet ctl leases` (RFC 8156 name in lower case).
    pub fn name(self) -> &'static str {
        self.to_wire().name().unwrap_or("unknown")
    }
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-lease failover bookkeeping (RFC 8156 §7.3, digest §11.1). All zero
/// for leases outside any failover relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailoverTimes {
    /// Largest partner lifetime this server ever acknowledged to its partner.
    pub expiration_time: UnixTime,
    /// Largest partner lifetime the partner ever acknowledged to this server.
    pub acked_partner_lifetime: UnixTime,
    /// The partner lifetime most recently sent (or to send) in a BNDUPD.
    pub partner_lifetime: UnixTime,
    /// When the partner last talked to the client, as the partner said.
    pub partner_raw_cltt: UnixTime,
    /// The partner has not yet acknowledged the current state of this lease
    /// (digest A12: kept apart from `partner_lifetime`).
    pub pending_update: bool,
}

/// One address or delegated prefix and everything known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// What is leased.
    pub key: LeaseKey,
    /// The binding it belongs to (or last belonged to: a hint for giving a
    /// returning client its lease back).
    pub binding: Option<BindingKey>,
    /// Binding status (RFC 8156 §7.2).
    pub state: LeaseState,
    /// When the preferred lifetime the client was given ends.
    pub preferred_until: UnixTime,
    /// When the valid lifetime the client was given ends.
    pub valid_until: UnixTime,
    /// T1 sent to the client, seconds.
    pub t1: u32,
    /// T2 sent to the client, seconds.
    pub t2: u32,
    /// Client last transaction time: when this server last talked to the client.
    pub cltt: UnixTime,
    /// When the binding status last changed.
    pub start_time_of_state: UnixTime,
    /// When the current status ends, if it has a timeout.
    pub state_expiration: Option<UnixTime>,
    /// Failover times.
    pub failover: FailoverTimes,
}

impl Lease {
    /// A FREE lease record for `key`, with no client.
    pub fn free(key: LeaseKey, state: LeaseState, now: UnixTime) -> Lease {
        Lease {
            key,
            binding: None,
            state,
            preferred_until: UnixTime::ZERO,
            valid_until: UnixTime::ZERO,
            t1: 0,
            t2: 0,
            cltt: UnixTime::ZERO,
            start_time_of_state: now,
            state_expiration: None,
            failover: FailoverTimes::default(),
        }
    }

    /// When this lease next needs attention: an ACTIVE lease at the end of
    /// its valid lifetime, any other state at its state expiration.
    pub fn next_event(&self) -> Option<UnixTime> {
        match self.state {
            LeaseState::Active => Some(self.active_end()),
            _ => self.state_expiration,
        }
    }

    /// When an ACTIVE lease ends: the client's valid lifetime, or later if
    /// the binding is held beyond it (a state expiration past it: the
    /// partner may have extended it unseen, RFC 8156 §4.4).
    pub fn active_end(&self) -> UnixTime {
        self.state_expiration
            .map_or(self.valid_until, |e| e.max(self.valid_until))
    }

    /// Whether the lease is bound to this binding and still valid at `now`.
    pub fn is_active_for(&self, binding: &BindingKey, now: UnixTime) -> bool {
        self.state == LeaseState::Active && self.valid_until > now && self.binding.as_ref() == Some(binding)
    }
}

/// Why a lease could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseDbError {
    /// The address or prefix is in no configured pool.
    #[error("{0} is in no configured pool")]
    NotInPool(LeaseKey),
}

/// Where a lease's resource lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolRef {
    Range(usize),
    Pd(usize),
}

/// Every lease record, with indexes by binding, by pool free space and by
/// next event time.
#[derive(Debug, Clone)]
pub struct LeaseDb {
    leases: BTreeMap<LeaseKey, Lease>,
    by_binding: HashMap<BindingKey, BTreeSet<LeaseKey>>,
    timers: BTreeSet<(UnixTime, LeaseKey)>,
    ranges: Vec<AddressRangeSet>,
    pd_pools: Vec<PrefixPoolSet>,
    /// Host reservations: never free space, whatever their record says
    /// (only their owner gets them, by name, not from the free search).
    reserved: HashSet<LeaseKey>,
}

/// Records `key` under binding `b` (the key is cloned only for a binding
/// not yet in the index).
fn link(index: &mut HashMap<BindingKey, BTreeSet<LeaseKey>>, b: &BindingKey, key: LeaseKey) {
    match index.get_mut(b) {
        Some(set) => {
            set.insert(key);
        }
        None => {
            index.insert(b.clone(), BTreeSet::from([key]));
        }
    }
}

/// Removes `key` from binding `b`, and the binding once it has no key left.
fn unlink(index: &mut HashMap<BindingKey, BTreeSet<LeaseKey>>, b: &BindingKey, key: &LeaseKey) {
    if let Some(set) = index.get_mut(b) {
        set.remove(key);
        if set.is_empty() {
            index.remove(b);
        }
    }
}

impl LeaseDb {
    /// An empty database over the given address ranges (inclusive) and
    /// prefix pools (prefix, delegated length). Indices into these lists
    /// name the pools in the other methods.
    pub fn new(ranges: &[(Ipv6Addr, Ipv6Addr)], pd_pools: &[(Ipv6Prefix, u8)]) -> LeaseDb {
        LeaseDb {
            leases: BTreeMap::new(),
            by_binding: HashMap::new(),
            timers: BTreeSet::new(),
            ranges: ranges.iter().map(|&(s, e)| AddressRangeSet::new(s, e)).collect(),
            pd_pools: pd_pools.iter().map(|&(p, l)| PrefixPoolSet::new(p, l)).collect(),
            reserved: HashSet::new(),
        }
    }

    /// Takes reserved addresses and prefixes out of the free space for
    /// good: the free search never offers them; their owner gets them by
    /// name. Keys outside every pool are ignored (the configuration puts
    /// reservations inside the pools).
    pub fn reserve(&mut self, keys: impl IntoIterator<Item = LeaseKey>) {
        for key in keys {
            match self.pool_of(&key) {
                Some(PoolRef::Range(i)) => {
                    if let Some(r) = self.ranges.get_mut(i) {
                        r.take(key.prefix.addr());
                    }
                }
                Some(PoolRef::Pd(i)) => {
                    if let Some(p) = self.pd_pools.get_mut(i) {
                        p.take(&key.prefix);
                    }
                }
                None => continue,
            }
            self.reserved.insert(key);
        }
    }

    /// Whether `key` is a host reservation.
    pub fn is_reserved(&self, key: &LeaseKey) -> bool {
        self.reserved.contains(key)
    }

    fn pool_of(&self, key: &LeaseKey) -> Option<PoolRef> {
        match key.kind {
            LeaseKind::Na => {
                let a = key.prefix.addr();
                self.ranges.iter().position(|r| r.contains(a)).map(PoolRef::Range)
            }
            LeaseKind::Pd => self
                .pd_pools
                .iter()
                .position(|p| p.is_member(&key.prefix))
                .map(PoolRef::Pd),
        }
    }

    /// Index of the address range holding `a`.
    pub fn range_of(&self, a: Ipv6Addr) -> Option<usize> {
        self.ranges.iter().position(|r| r.contains(a))
    }

    /// Index of the prefix pool holding delegable prefix `p`.
    pub fn pd_pool_of(&self, p: &Ipv6Prefix) -> Option<usize> {
        self.pd_pools.iter().position(|q| q.is_member(p))
    }

    /// The address ranges (for metrics and balance checks).
    pub fn ranges(&self) -> &[AddressRangeSet] {
        &self.ranges
    }

    /// The prefix pools.
    pub fn pd_pools(&self) -> &[PrefixPoolSet] {
        &self.pd_pools
    }

    /// Number of lease records.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether there are no lease records.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The record for `key`.
    pub fn get(&self, key: &LeaseKey) -> Option<&Lease> {
        self.leases.get(key)
    }

    /// Every record, in key order (deterministic, for the simulator).
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    /// The leases recorded for a binding (active or last held), in key order.
    pub fn of_binding(&self, binding: &BindingKey) -> impl Iterator<Item = &Lease> {
        self.by_binding
            .get(binding)
            .into_iter()
            .flatten()
            .filter_map(|k| self.leases.get(k))
    }

    /// Inserts or replaces a record, keeping every index in step. A record
    /// that replaces one is written in place, and an index whose entry
    /// did not change (the binding, the next event) is left alone.
    pub fn upsert(&mut self, lease: Lease) -> Result<(), LeaseDbError> {
        let key = lease.key;
        let pool = self.pool_of(&key).ok_or(LeaseDbError::NotInPool(key))?;
        let state = lease.state;
        let event = lease.next_event();
        match self.leases.get_mut(&key) {
            Some(slot) => {
                let old = std::mem::replace(slot, lease);
                if old.binding != slot.binding {
                    if let Some(b) = &old.binding {
                        unlink(&mut self.by_binding, b, &key);
                    }
                    if let Some(b) = &slot.binding {
                        link(&mut self.by_binding, b, key);
                    }
                }
                let old_event = old.next_event();
                if old_event != event {
                    if let Some(t) = old_event {
                        self.timers.remove(&(t, key));
                    }
                    if let Some(t) = event {
                        self.timers.insert((t, key));
                    }
                }
            }
            None => {
                if let Some(b) = &lease.binding {
                    link(&mut self.by_binding, b, key);
                }
                if let Some(t) = event {
                    self.timers.insert((t, key));
                }
                self.leases.insert(key, lease);
            }
        }
        if self.reserved.contains(&key) {
            return Ok(());
        }
        match pool {
            PoolRef::Range(i) => {
                if let Some(r) = self.ranges.get_mut(i) {
                    if state.is_available() {
                        r.release(key.prefix.addr());
                    } else {
                        r.take(key.prefix.addr());
                    }
                }
            }
            PoolRef::Pd(i) => {
                if let Some(p) = self.pd_pools.get_mut(i) {
                    match state {
                        LeaseState::Free => {
                            p.release(&key.prefix, 0);
                        }
                        LeaseState::FreeBackup => {
                            p.release(&key.prefix, 1);
                        }
                        _ => {
                            p.take(&key.prefix);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The earliest time a lease needs attention.
    pub fn next_timer(&self) -> Option<UnixTime> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Keys of leases whose next event is at or before `now`, earliest
    /// first, at most `limit` of them.
    pub fn due(&self, now: UnixTime, limit: usize) -> Vec<LeaseKey> {
        self.timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(limit)
            .map(|(_, k)| *k)
            .collect()
    }

    /// Whether `a` is free in its range.
    pub fn address_is_free(&self, a: Ipv6Addr) -> bool {
        self.range_of(a)
            .and_then(|i| self.ranges.get(i))
            .is_some_and(|r| r.is_free(a))
    }

    /// A free address from range `range` in one of the allowed low-bit
    /// classes, searching from `random`; not yet taken (commit it with
    /// [`LeaseDb::upsert`]).
    /// Addresses in `except` are passed over (already picked for another
    /// IA of the same message).
    pub fn find_free_address(
        &mut self,
        range: usize,
        classes: [bool; 2],
        random: u128,
        except: &[Ipv6Addr],
    ) -> Option<Ipv6Addr> {
        let r = self.ranges.get_mut(range)?;
        r.find_any_except(classes, random, except)
    }

    /// The owner class of delegable prefix `p` if it is free (0 primary /
    /// FREE, 1 secondary / FREE-BACKUP).
    pub fn prefix_free_class(&self, p: &Ipv6Prefix) -> Option<usize> {
        self.pd_pool_of(p)
            .and_then(|i| self.pd_pools.get(i))
            .and_then(|q| q.free_class_of(p))
    }

    /// A free delegable prefix of pool `pool` owned by class `class`,
    /// searching from `random`, passing over `except`; not yet taken.
    pub fn find_free_prefix(
        &self,
        pool: usize,
        class: usize,
        random: u128,
        except: &[Ipv6Prefix],
    ) -> Option<Ipv6Prefix> {
        self.pd_pools.get(pool)?.find_any_except(class, random, except)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> LeaseDb {
        LeaseDb::new(
            &[(
                "2001:db8:1::100".parse().unwrap(),
                "2001:db8:1::1ff".parse().unwrap(),
            )],
            &[("2001:db8:8000::/40".parse().unwrap(), 56)],
        )
    }

    fn active(key: LeaseKey, duid: u8, until: u64) -> Lease {
        Lease {
            binding: Some(BindingKey {
                duid: vec![0, 3, duid],
                kind: key.kind,
                iaid: 1,
            }),
            state: LeaseState::Active,
            valid_until: UnixTime(until),
            preferred_until: UnixTime(until),
            ..Lease::free(key, LeaseState::Free, UnixTime(0))
        }
    }

    #[test]
    fn upsert_keeps_free_space_and_indexes_in_step() {
        let mut d = db();
        let a: Ipv6Addr = "2001:db8:1::101".parse().unwrap();
        assert!(d.address_is_free(a));
        d.upsert(active(LeaseKey::address(a), 1, 100)).unwrap();
        assert!(!d.address_is_free(a));
        let b = BindingKey {
            duid: vec![0, 3, 1],
            kind: LeaseKind::Na,
            iaid: 1,
        };
        assert_eq!(d.of_binding(&b).count(), 1);
        assert_eq!(d.next_timer(), Some(UnixTime(100)));
        assert_eq!(d.due(UnixTime(99), 10), vec![]);
        assert_eq!(d.due(UnixTime(100), 10), vec![LeaseKey::address(a)]);
        let mut freed = d.get(&LeaseKey::address(a)).unwrap().clone();
        freed.state = LeaseState::Free;
        d.upsert(freed).unwrap();
        assert!(d.address_is_free(a));
        assert_eq!(d.next_timer(), None);
        assert_eq!(d.of_binding(&b).count(), 1, "the last holder stays as a hint");
    }

    #[test]
    fn upsert_refuses_resources_outside_every_pool() {
        let mut d = db();
        let key = LeaseKey::address("2001:db8:2::1".parse().unwrap());
        assert_eq!(d.upsert(active(key, 1, 5)), Err(LeaseDbError::NotInPool(key)));
        let wrong_len = LeaseKey::prefix("2001:db8:8000::/48".parse().unwrap());
        assert!(d.upsert(active(wrong_len, 1, 5)).is_err());
    }

    #[test]
    fn prefix_ownership_follows_free_and_free_backup() {
        let mut d = db();
        let p: Ipv6Prefix = "2001:db8:8000:100::/56".parse().unwrap();
        assert_eq!(d.prefix_free_class(&p), Some(0));
        d.upsert(Lease::free(
            LeaseKey::prefix(p),
            LeaseState::FreeBackup,
            UnixTime(1),
        ))
        .unwrap();
        assert_eq!(d.prefix_free_class(&p), Some(1));
        assert_eq!(d.find_free_prefix(0, 1, 0, &[]), Some(p));
        d.upsert(active(LeaseKey::prefix(p), 2, 50)).unwrap();
        assert_eq!(d.prefix_free_class(&p), None);
        assert_eq!(d.find_free_prefix(0, 1, 0, &[]), None);
    }

    #[test]
    fn find_free_address_respects_classes_and_does_not_take() {
        let mut d = db();
        let a = d.find_free_address(0, [true, false], 12345, &[]).unwrap();
        assert_eq!(u128::from(a) & 1, 0);
        assert!(d.address_is_free(a), "finding is not taking");
    }

    proptest::proptest! {
        /// After any sequence of upserts (records replaced in place, with
        /// or without a change of binding, state or times), the binding
        /// index, the timer index and the free space say what the records
        /// say.
        #[test]
        fn indexes_match_the_records_after_any_upserts(
            ops in proptest::collection::vec((0u8..6, 0u8..4, 0u8..4, 0u64..50), 1..60)
        ) {
            const STATES: [LeaseState; 4] =
                [LeaseState::Active, LeaseState::Free, LeaseState::Expired, LeaseState::Released];
            let mut d = db();
            let addr = |n: u8| Ipv6Addr::from(u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100)) + u128::from(n));
            for &(n, who, st, t) in &ops {
                let key = LeaseKey::address(addr(n));
                let mut l = active(key, who, 10 + t);
                l.binding = (who > 0).then(|| BindingKey { duid: vec![0, 3, who], kind: LeaseKind::Na, iaid: 1 });
                l.state = STATES[usize::from(st)];
                l.state_expiration = (t % 3 == 0).then_some(UnixTime(t));
                d.upsert(l).unwrap();
            }
            let records: Vec<Lease> = d.iter().cloned().collect();
            for who in 0u8..4 {
                let b = BindingKey { duid: vec![0, 3, who], kind: LeaseKind::Na, iaid: 1 };
                let want: Vec<LeaseKey> = records.iter().filter(|l| l.binding.as_ref() == Some(&b)).map(|l| l.key).collect();
                let got: Vec<LeaseKey> = d.of_binding(&b).map(|l| l.key).collect();
                proptest::prop_assert_eq!(got, want);
            }
            let mut events: Vec<(UnixTime, LeaseKey)> = records.iter().filter_map(|l| l.next_event().map(|t| (t, l.key))).collect();
            events.sort();
            proptest::prop_assert_eq!(d.next_timer(), events.first().map(|e| e.0));
            let due: Vec<LeaseKey> = events.iter().take_while(|e| e.0 <= UnixTime(30)).map(|e| e.1).collect();
            proptest::prop_assert_eq!(d.due(UnixTime(30), usize::MAX), due);
            for n in 0u8..6 {
                let free = d.get(&LeaseKey::address(addr(n))).is_none_or(|l| l.state.is_available());
                proptest::prop_assert_eq!(d.address_is_free(addr(n)), free);
            }
        }
    }

    #[test]
    fn state_names_match_the_operator_interface() {
        assert_eq!(LeaseState::FreeBackup.to_string(), "free-backup");
        assert_eq!(LeaseState::Active.to_string(), "active");
        assert_eq!(LeaseState::from_wire(BindingStatus::PendingFree), None);
    }
}
