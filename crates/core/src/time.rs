//! Time in the core: always passed in, never read from a clock.
//!
//! DHCPv6 and RFC 8156 work in whole seconds, so the core uses [`UnixTime`],
//! seconds since the Unix epoch, and [`std::time::Duration`] for intervals.
//! The daemon converts its clock once per event and hands the value in.

use duet_wire::AbsTime;
use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time: whole seconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize,
)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The epoch (also "never happened" for optional times kept as zero).
    pub const ZERO: UnixTime = UnixTime(0);

    /// Seconds since the epoch.
    pub fn secs(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> UnixTime {
        UnixTime(self.0.saturating_add(d.as_secs()))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> UnixTime {
        UnixTime(self.0.saturating_sub(d.as_secs()))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: UnixTime) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }

    /// Seconds from `self` until `later`, as a DHCPv6 lifetime (capped at
    /// 0xffff_fffe so it never reads as infinity).
    pub fn secs_until(self, later: UnixTime) -> u32 {
        u32::try_from(later.0.saturating_sub(self.0))
            .unwrap_or(u32::MAX - 1)
            .min(u32::MAX - 1)
    }

    /// RFC 8156 absolute time (seconds since 2000, mod 2^32).
    pub fn to_abs(self) -> AbsTime {
        AbsTime::from_unix(self.0)
    }

    /// From RFC 8156 absolute time, choosing the era nearest `reference`.
    pub fn from_abs(t: AbsTime, reference: UnixTime) -> UnixTime {
        UnixTime(t.to_unix_near(reference.0))
    }
}

impl Add<Duration> for UnixTime {
    type Output = UnixTime;
    fn add(self, d: Duration) -> UnixTime {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for UnixTime {
    type Output = UnixTime;
    fn sub(self, d: Duration) -> UnixTime {
        self.saturating_sub(d)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A point in time with microsecond resolution: microseconds since the
/// Unix epoch, read from the same wall clock as [`UnixTime`]. A
/// [`crate::node::Node`] is driven with it: protocol times are its whole
/// seconds ([`Timestamp::unix`]), the commit plan uses the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The start of `t`'s second.
    pub fn from_unix(t: UnixTime) -> Timestamp {
        Timestamp(t.0.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub fn micros(self) -> u64 {
        self.0
    }

    /// The whole seconds: what protocol decisions see.
    pub fn unix(self) -> UnixTime {
        UnixTime(self.0 / 1_000_000)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Timestamp {
    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        )
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A DHCPv6 time value in seconds (lifetimes, T1, T2), where 0xffffffff
/// means infinity (RFC 8415 §7.7).
pub const INFINITY: u32 = u32::MAX;

/// Seconds of a duration as a DHCPv6 time value (saturating below infinity).
pub fn wire_secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs())
        .unwrap_or(INFINITY - 1)
        .min(INFINITY - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = UnixTime(100);
        assert_eq!(t + Duration::from_secs(5), UnixTime(105));
        assert_eq!(t - Duration::from_secs(500), UnixTime(0));
        assert_eq!(t.since(UnixTime(200)), Duration::ZERO);
        assert_eq!(t.secs_until(UnixTime(130)), 30);
        assert_eq!(UnixTime(0).secs_until(UnixTime(u64::MAX)), u32::MAX - 1);
    }

    #[test]
    fn abs_time_round_trip() {
        let now = UnixTime(1_795_000_000);
        assert_eq!(UnixTime::from_abs(now.to_abs(), now), now);
    }
}
