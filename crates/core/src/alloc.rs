//! Free-space bookkeeping for address ranges and prefix pools.
//!
//! A [`FreeSet`] is a set of `u128` indices kept as disjoint inclusive
//! intervals, so a fresh /64-sized range is one interval (no per-address
//! preallocation) and finding a free index is a B-tree lookup (no scan of
//! the table), whatever the fill level. Pools map addresses or delegated
//! prefixes to indices inside one of two *classes*:
//!
//! * address ranges: the class is the address's lowest bit — RFC 8156
//!   §4.2.1 independent allocation, primary odd (1), secondary even (0);
//! * prefix pools: the class is the owner of the delegable prefix — RFC 8156
//!   §4.2.2 proportional allocation, primary FREE (0), secondary
//!   FREE-BACKUP (1).

use crate::net::Ipv6Prefix;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::ops::Bound;

/// A set of `u128` indices stored as disjoint, non-adjacent inclusive
/// intervals `start -> end`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeSet {
    intervals: BTreeMap<u128, u128>,
    count: u128,
}

impl FreeSet {
    /// An empty set.
    pub fn new() -> FreeSet {
        FreeSet::default()
    }

    /// The set `[start, end]`; empty if `start > end`.
    pub fn interval(start: u128, end: u128) -> FreeSet {
        let mut s = FreeSet::new();
        if start <= end {
            s.intervals.insert(start, end);
            s.count = end.saturating_sub(start).saturating_add(1);
        }
        s
    }

    /// Number of members (saturating at `u128::MAX`).
    pub fn len(&self) -> u128 {
        self.count
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// Number of stored intervals (for tests and metrics).
    pub fn fragments(&self) -> usize {
        self.intervals.len()
    }

    /// The interval containing `i`, if any.
    fn containing(&self, i: u128) -> Option<(u128, u128)> {
        let (&s, &e) = self.intervals.range(..=i).next_back()?;
        (i <= e).then_some((s, e))
    }

    /// Whether `i` is a member.
    pub fn contains(&self, i: u128) -> bool {
        self.containing(i).is_some()
    }

    /// Removes `i`; returns whether it was a member.
    pub fn remove(&mut self, i: u128) -> bool {
        let Some((s, e)) = self.containing(i) else {
            return false;
        };
        self.intervals.remove(&s);
        if s < i {
            self.intervals.insert(s, i.saturating_sub(1));
        }
        if i < e {
            self.intervals.insert(i.saturating_add(1), e);
        }
        self.count = self.count.saturating_sub(1);
        true
    }

    /// Adds `i`; returns whether it was new. Merges with neighbours.
    pub fn insert(&mut self, i: u128) -> bool {
        if self.contains(i) {
            return false;
        }
        let mut start = i;
        let mut end = i;
        if let Some(prev_end) = i.checked_sub(1).and_then(|p| self.containing(p)) {
            self.intervals.remove(&prev_end.0);
            start = prev_end.0;
        }
        if let Some(next) = i.checked_add(1) {
            if let Some(next_end) = self.intervals.remove(&next) {
                end = next_end;
            }
        }
        self.intervals.insert(start, end);
        self.count = self.count.saturating_add(1);
        true
    }

    /// A member at or after `hint`, wrapping to the first member; `None`
    /// when empty. Does not remove it.
    pub fn find_from(&self, hint: u128) -> Option<u128> {
        if let Some((_, _)) = self.containing(hint) {
            return Some(hint);
        }
        self.intervals
            .range((Bound::Excluded(hint), Bound::Unbounded))
            .next()
            .or_else(|| self.intervals.iter().next())
            .map(|(&s, _)| s)
    }

    /// Iterates over the intervals in order.
    pub fn intervals(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.intervals.iter().map(|(&s, &e)| (s, e))
    }
}

/// Reserved interface identifiers that must never be assigned (RFC 8415
/// §13.1 via RFC 5453): the Subnet-Router anycast IID (all zeros) and the
/// reserved subnet anycast range `fdff:ffff:ffff:ff80`–`ffff` (RFC 2526).
pub fn is_reserved_iid(a: Ipv6Addr) -> bool {
    let iid = u128::from(a) & 0xffff_ffff_ffff_ffff;
    iid == 0 || (0xfdff_ffff_ffff_ff80..=0xfdff_ffff_ffff_ffff).contains(&iid)
}

/// Free addresses of one inclusive range, split into the two low-bit classes.
#[derive(Debug, Clone)]
pub struct AddressRangeSet {
    start: u128,
    end: u128,
    /// `free[c]` holds `a >> 1` for free addresses `a` with `a & 1 == c`.
    free: [FreeSet; 2],
}

impl AddressRangeSet {
    /// All addresses of `[start, end]` free.
    pub fn new(start: Ipv6Addr, end: Ipv6Addr) -> AddressRangeSet {
        let (s, e) = (u128::from(start), u128::from(end));
        let class = |c: u128| {
            // indices k with 2k + c in [s, e]
            let lo = if s <= c {
                0
            } else {
                s.saturating_sub(c).div_ceil(2)
            };
            if e < c {
                return FreeSet::new();
            }
            let hi = e.saturating_sub(c) / 2;
            FreeSet::interval(lo, hi)
        };
        AddressRangeSet {
            start: s,
            end: e,
            free: [class(0), class(1)],
        }
    }

    /// The index range `[lo, hi]` of class `c` (indices are `a >> 1`).
    fn class_bounds(&self, c: usize) -> (u128, u128) {
        let c = c as u128;
        let lo = if self.start <= c {
            0
        } else {
            self.start.saturating_sub(c).div_ceil(2)
        };
        let hi = self.end.saturating_sub(c) / 2;
        (lo, hi)
    }

    /// The first and last address.
    pub fn bounds(&self) -> (Ipv6Addr, Ipv6Addr) {
        (Ipv6Addr::from(self.start), Ipv6Addr::from(self.end))
    }

    /// Number of addresses of class `c` (0 even, 1 odd) in the range.
    pub fn class_size(&self, c: usize) -> u128 {
        let (lo, hi) = self.class_bounds(c);
        if self.end < c as u128 || hi < lo {
            0
        } else {
            hi.saturating_sub(lo).saturating_add(1)
        }
    }

    /// Whether `a` lies in the range.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        (self.start..=self.end).contains(&u128::from(a))
    }

    /// Number of addresses in the range.
    pub fn size(&self) -> u128 {
        self.end
            .checked_sub(self.start)
            .map_or(0, |d| d.saturating_add(1))
    }

    /// Free addresses in class `c` (0 even, 1 odd).
    pub fn free_in_class(&self, c: usize) -> u128 {
        self.free.get(c).map_or(0, FreeSet::len)
    }

    fn split(a: Ipv6Addr) -> (usize, u128) {
        let v = u128::from(a);
        (usize::from(v & 1 == 1), v >> 1)
    }

    /// Marks `a` used; returns whether it was free.
    pub fn take(&mut self, a: Ipv6Addr) -> bool {
        let (c, k) = Self::split(a);
        self.contains(a) && self.free.get_mut(c).is_some_and(|f| f.remove(k))
    }

    /// Marks `a` free again; returns whether it was used.
    pub fn release(&mut self, a: Ipv6Addr) -> bool {
        let (c, k) = Self::split(a);
        self.contains(a) && !is_reserved_iid(a) && self.free.get_mut(c).is_some_and(|f| f.insert(k))
    }

    /// Whether `a` is free.
    pub fn is_free(&self, a: Ipv6Addr) -> bool {
        let (c, k) = Self::split(a);
        self.contains(a) && self.free.get(c).is_some_and(|f| f.contains(k))
    }

    /// Takes a free address of one of the allowed classes, starting the
    /// search at `random` (so addresses are not predictable, RFC 7721 §4.7).
    /// Reserved IIDs met on the way are dropped from the set for good.
    pub fn take_any(&mut self, classes: [bool; 2], random: u128) -> Option<Ipv6Addr> {
        let a = self.find_any(classes, random)?;
        self.take(a);
        Some(a)
    }

    /// The free address [`AddressRangeSet::take_any`] would take, left
    /// free (an offer is not a binding). Reserved IIDs met on the way are
    /// dropped from the set for good.
    pub fn find_any(&mut self, classes: [bool; 2], random: u128) -> Option<Ipv6Addr> {
        self.find_any_except(classes, random, &[])
    }

    /// [`AddressRangeSet::find_any`], passing over the addresses in
    /// `except` (free here, but already picked for another IA of the same
    /// message: nothing is taken until the message is committed).
    pub fn find_any_except(
        &mut self,
        classes: [bool; 2],
        random: u128,
        except: &[Ipv6Addr],
    ) -> Option<Ipv6Addr> {
        let first = usize::from(random & 1 == 1);
        for c in [first, first ^ 1] {
            if !classes.get(c).copied().unwrap_or(false) {
                continue;
            }
            let (lo, hi) = self.class_bounds(c);
            let span = hi.saturating_sub(lo).saturating_add(1);
            let mut hint = lo.saturating_add((random >> 1).checked_rem(span).unwrap_or(0));
            let Some(set) = self.free.get_mut(c) else { continue };
            // Each reserved IID is removed once, and the members are met in
            // cyclic order from `hint`, so after `except.len() + 1` excluded
            // ones every member has been seen: the loop is bounded.
            let mut excluded = 0usize;
            while let Some(k) = set.find_from(hint) {
                let a = Ipv6Addr::from((k << 1) | c as u128);
                if is_reserved_iid(a) {
                    set.remove(k);
                } else if !except.contains(&a) {
                    return Some(a);
                } else if excluded >= except.len() {
                    break;
                } else {
                    excluded = excluded.saturating_add(1);
                    hint = k.wrapping_add(1);
                }
            }
        }
        None
    }
}

/// Free delegable prefixes of one PD pool, split by owner class.
#[derive(Debug, Clone)]
pub struct PrefixPoolSet {
    prefix: Ipv6Prefix,
    delegated_len: u8,
    /// `free[c]` holds sub-prefix indices owned by class `c`.
    free: [FreeSet; 2],
}

impl PrefixPoolSet {
    /// Every delegable prefix free and owned by class 0 (the primary,
    /// RFC 8156 §4.2.2: "all delegable prefixes start owned by the primary").
    pub fn new(prefix: Ipv6Prefix, delegated_len: u8) -> PrefixPoolSet {
        let bits = u32::from(delegated_len.saturating_sub(prefix.len()));
        let last = if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits).saturating_sub(1)
        };
        PrefixPoolSet {
            prefix,
            delegated_len,
            free: [FreeSet::interval(0, last), FreeSet::new()],
        }
    }

    /// The pool prefix.
    pub fn prefix(&self) -> Ipv6Prefix {
        self.prefix
    }

    /// The delegated length.
    pub fn delegated_len(&self) -> u8 {
        self.delegated_len
    }

    /// Number of delegable prefixes in the pool.
    pub fn size(&self) -> u128 {
        let bits = u32::from(self.delegated_len.saturating_sub(self.prefix.len()));
        if bits >= 128 {
            u128::MAX
        } else {
            1u128 << bits
        }
    }

    /// Whether `p` is one of this pool's delegable prefixes.
    pub fn is_member(&self, p: &Ipv6Prefix) -> bool {
        p.len() == self.delegated_len && self.prefix.covers(p)
    }

    fn index(&self, p: &Ipv6Prefix) -> Option<u128> {
        if self.is_member(p) {
            self.prefix.subprefix_index(p)
        } else {
            None
        }
    }

    /// Free prefixes owned by class `c`.
    pub fn free_in_class(&self, c: usize) -> u128 {
        self.free.get(c).map_or(0, FreeSet::len)
    }

    /// The owner class of a free prefix, if it is free.
    pub fn free_class_of(&self, p: &Ipv6Prefix) -> Option<usize> {
        let i = self.index(p)?;
        (0..2).find(|&c| self.free.get(c).is_some_and(|f| f.contains(i)))
    }

    /// Marks `p` used (whatever its owner); returns whether it was free.
    pub fn take(&mut self, p: &Ipv6Prefix) -> bool {
        let Some(i) = self.index(p) else { return false };
        self.free.iter_mut().any(|f| f.remove(i))
    }

    /// Marks `p` free and owned by class `c`; returns whether it changed.
    pub fn release(&mut self, p: &Ipv6Prefix, c: usize) -> bool {
        let Some(i) = self.index(p) else { return false };
        let other = c.min(1) ^ 1;
        let moved = self.free.get_mut(other).is_some_and(|f| f.remove(i));
        self.free.get_mut(c.min(1)).is_some_and(|f| f.insert(i)) || moved
    }

    /// Takes a free prefix owned by class `c`, searching from `random`.
    pub fn take_any(&mut self, c: usize, random: u128) -> Option<Ipv6Prefix> {
        let p = self.find_any(c, random)?;
        self.take(&p);
        Some(p)
    }

    /// The free prefix [`PrefixPoolSet::take_any`] would take, left free.
    pub fn find_any(&self, c: usize, random: u128) -> Option<Ipv6Prefix> {
        self.find_any_except(c, random, &[])
    }

    /// [`PrefixPoolSet::find_any`], passing over the prefixes in `except`
    /// (already picked for another IA of the same message).
    pub fn find_any_except(&self, c: usize, random: u128, except: &[Ipv6Prefix]) -> Option<Ipv6Prefix> {
        let set = self.free.get(c)?;
        let size_mask = {
            let bits = u32::from(self.delegated_len.saturating_sub(self.prefix.len()));
            if bits >= 128 {
                u128::MAX
            } else {
                (1u128 << bits).saturating_sub(1)
            }
        };
        let mut hint = random & size_mask;
        // Bounded as in `AddressRangeSet::find_any_except`.
        for _ in 0..=except.len() {
            let i = set.find_from(hint)?;
            let p = self.prefix.subprefix(self.delegated_len, i)?;
            if !except.contains(&p) {
                return Some(p);
            }
            hint = i.wrapping_add(1) & size_mask;
        }
        None
    }

    /// Up to `n` free prefixes of class `from`, lowest first (for moving
    /// ownership when rebalancing, RFC 8156 §4.2.2).
    pub fn pick_free(&self, from: usize, n: usize) -> Vec<Ipv6Prefix> {
        let Some(set) = self.free.get(from) else {
            return Vec::new();
        };
        set.intervals()
            .flat_map(|(s, e)| (s..=e).take(n))
            .take(n)
            .filter_map(|i| self.prefix.subprefix(self.delegated_len, i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn free_set_splits_and_merges() {
        let mut s = FreeSet::interval(0, 9);
        assert!(s.remove(5));
        assert!(!s.remove(5));
        assert_eq!(s.len(), 9);
        assert_eq!(s.fragments(), 2);
        assert_eq!(s.find_from(5), Some(6));
        assert!(s.insert(5));
        assert_eq!(s.fragments(), 1);
        assert_eq!(s.len(), 10);
        assert!(s.remove(9));
        assert_eq!(s.find_from(9), Some(0), "wraps around");
    }

    #[test]
    fn free_set_handles_the_extremes() {
        let mut s = FreeSet::interval(0, u128::MAX);
        assert_eq!(s.len(), u128::MAX, "saturates");
        assert!(s.remove(u128::MAX));
        assert!(s.remove(0));
        assert!(s.insert(u128::MAX));
        assert!(s.insert(0));
        assert_eq!(s.fragments(), 1);
    }

    #[test]
    fn address_range_splits_by_low_bit() {
        let mut r = AddressRangeSet::new("2001:db8::100".parse().unwrap(), "2001:db8::1ff".parse().unwrap());
        assert_eq!(r.free_in_class(0), 128);
        assert_eq!(r.free_in_class(1), 128);
        let a = r.take_any([false, true], 77).unwrap();
        assert_eq!(u128::from(a) & 1, 1, "primary takes odd addresses only");
        assert!(r.contains(a));
        assert!(!r.is_free(a));
        assert!(r.release(a));
        assert!(r.is_free(a));
    }

    #[test]
    fn address_selection_is_spread_over_the_range_not_sequential() {
        // RFC 8415 §13.1 / RFC 7721 §4.7: addresses should not be predictable.
        let mut r = AddressRangeSet::new(
            "2001:db8::1000".parse().unwrap(),
            "2001:db8::1fff".parse().unwrap(),
        );
        let mut x: u128 = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321;
        let mut max = 0u128;
        for _ in 0..20 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = u128::from(r.take_any([true, true], x).unwrap());
            max = max.max(a - 0x2001_0db8_0000_0000_0000_0000_0000_1000);
        }
        assert!(max > 1000, "20 picks all in the first 1000 addresses: sequential");
    }

    #[test]
    fn address_range_never_returns_reserved_iids() {
        let mut r = AddressRangeSet::new("2001:db8::".parse().unwrap(), "2001:db8::3".parse().unwrap());
        let mut got = vec![];
        while let Some(a) = r.take_any([true, true], 0) {
            got.push(a);
        }
        assert_eq!(got.len(), 3, "2001:db8:: (IID 0) is withheld");
        assert!(!got.contains(&"2001:db8::".parse().unwrap()));
    }

    #[test]
    fn class_sizes_add_up_to_the_range() {
        for (a, b) in [
            (0x1000u128, 0x1000u128),
            (0x1000, 0x1001),
            (0x1001, 0x1007),
            (0, 2),
            (1, 1),
        ] {
            let r = AddressRangeSet::new(Ipv6Addr::from(a), Ipv6Addr::from(b));
            assert_eq!(r.class_size(0) + r.class_size(1), r.size(), "{a:x}-{b:x}");
            assert_eq!(r.class_size(0), r.free_in_class(0), "{a:x}-{b:x}");
            assert_eq!(r.class_size(1), r.free_in_class(1), "{a:x}-{b:x}");
        }
    }

    #[test]
    fn slash_64_range_is_one_interval_per_class() {
        let p: Ipv6Prefix = "2001:db8:1::/64".parse().unwrap();
        let mut r = AddressRangeSet::new(p.addr(), p.last());
        assert_eq!(r.free_in_class(0) + r.free_in_class(1), 1u128 << 64);
        for i in 0..1000u128 {
            r.take_any(
                [true, true],
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
            )
            .unwrap();
        }
        let taken = (1u128 << 64) - (r.free_in_class(0) + r.free_in_class(1));
        // 1000 handed out, plus any reserved IIDs met (and dropped) on the way.
        assert!((1000..=1000 + 129).contains(&taken), "{taken}");
    }

    #[test]
    fn prefix_pool_starts_owned_by_primary_and_moves_ownership() {
        let mut p = PrefixPoolSet::new("2001:db8:8000::/40".parse().unwrap(), 56);
        assert_eq!(p.size(), 65536);
        assert_eq!(p.free_in_class(0), 65536);
        let moved = p.pick_free(0, 3);
        for q in &moved {
            assert!(p.release(q, 1));
        }
        assert_eq!(p.free_in_class(1), 3);
        let got = p.take_any(1, 12345).unwrap();
        assert!(moved.contains(&got));
        assert_eq!(p.free_class_of(&got), None);
        assert_eq!(
            p.free_class_of(&moved[0].clone()).or(p.free_class_of(&moved[1])),
            Some(1)
        );
    }

    #[test]
    fn find_any_except_passes_over_excluded_members_and_stops() {
        let mut r = AddressRangeSet::new("2001:db8::10".parse().unwrap(), "2001:db8::13".parse().unwrap());
        let all: Vec<Ipv6Addr> = (0x10..=0x13u128)
            .map(|i| Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | i))
            .collect();
        for random in 0..8u128 {
            for n in 0..all.len() {
                let except = &all[..n];
                let a = r.find_any_except([true, true], random, except).unwrap();
                assert!(!except.contains(&a), "{a} was excluded");
            }
            assert_eq!(r.find_any_except([true, true], random, &all), None);
        }
        let mut p = PrefixPoolSet::new("2001:db8:8000::/54".parse().unwrap(), 56);
        let prefixes = p.pick_free(0, 4);
        for random in 0..8u128 {
            let first = p.find_any_except(0, random, &prefixes[..3]).unwrap();
            assert_eq!(first, prefixes[3]);
            assert_eq!(p.find_any_except(0, random, &prefixes), None);
        }
        assert!(p.take(&prefixes[0]));
        assert_eq!(p.find_any_except(0, 0, &prefixes[1..]), None);
    }

    proptest! {
        /// A FreeSet behaves like a plain set of integers.
        #[test]
        fn free_set_matches_a_btreeset(ops in proptest::collection::vec((any::<bool>(), 0u128..64), 0..200)) {
            let mut s = FreeSet::interval(0, 63);
            let mut model: std::collections::BTreeSet<u128> = (0..64).collect();
            for (insert, i) in ops {
                if insert {
                    prop_assert_eq!(s.insert(i), model.insert(i));
                } else {
                    prop_assert_eq!(s.remove(i), model.remove(&i));
                }
                prop_assert_eq!(s.len(), model.len() as u128);
                let flat: Vec<u128> = s.intervals().flat_map(|(a, b)| a..=b).collect();
                prop_assert_eq!(flat, model.iter().copied().collect::<Vec<_>>());
            }
        }

        /// Allocating until exhaustion never hands out an address twice.
        #[test]
        fn address_allocation_never_repeats(seed in any::<u128>(), len in 1u128..300) {
            let start = 0x2001_0db8_0000_0000_0000_0000_0000_0100u128;
            let mut r = AddressRangeSet::new(Ipv6Addr::from(start), Ipv6Addr::from(start + len - 1));
            let mut seen = std::collections::HashSet::new();
            let mut x = seed;
            while let Some(a) = r.take_any([true, true], x) {
                prop_assert!(seen.insert(a));
                prop_assert!(r.contains(a));
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            }
            prop_assert_eq!(seen.len() as u128, len);
        }
    }
}
