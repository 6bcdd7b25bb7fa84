//! Virtual time and the servers' clocks.
//!
//! The world runs on one true clock in milliseconds. Each server reads its
//! own clock: true time plus an offset that starts anywhere in
//! `[-bound, +bound]` and drifts at a constant rate, turning back at the
//! bound (an NTP-disciplined clock slewing within its error). Drift alone
//! never makes the local clock run backwards (its rate is far below
//! 100 %); a *step* (the `skew-step` fault: NTP failing on one host, then
//! fixed) moves it at once, forwards or back. The core sees it in whole
//! seconds, as the daemon would.

use duet_core::time::{Timestamp, UnixTime};

/// True time at which every simulation starts (ms since the Unix epoch).
pub const START_MS: u64 = 1_800_000_000_000;

/// One server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Clock {
    /// Offset at true time `START_MS`, milliseconds.
    pub base_ms: i64,
    /// Drift, parts per million (sign = direction at the start).
    pub rate_ppm: i64,
    /// The drifting offset never leaves `[-bound_ms, +bound_ms]`.
    pub bound_ms: i64,
    /// A step added to that offset (the `skew-step` fault), ms.
    pub step_ms: i64,
}

impl Clock {
    /// A clock exactly on true time.
    pub fn exact() -> Clock {
        Clock {
            base_ms: 0,
            rate_ppm: 0,
            bound_ms: 0,
            step_ms: 0,
        }
    }

    /// The offset (local − true) at true time `t_ms`, milliseconds: a
    /// triangle wave of slope `rate_ppm` between the bounds, plus the step.
    pub fn offset_ms(&self, t_ms: u64) -> i64 {
        self.drift_ms(t_ms) + self.step_ms
    }

    fn drift_ms(&self, t_ms: u64) -> i64 {
        let b = self.bound_ms.max(0);
        let base = self.base_ms.clamp(-b, b);
        if self.rate_ppm == 0 || b == 0 {
            return base;
        }
        let elapsed = i128::from(t_ms.saturating_sub(START_MS));
        let span = i128::from(2 * b);
        // Position along an unfolded line starting at base + b in [0, span].
        let p = i128::from(base + b) + i128::from(self.rate_ppm) * elapsed / 1_000_000;
        let m = p.rem_euclid(2 * span);
        let folded = if m <= span { m } else { 2 * span - m };
        (folded as i64) - b
    }

    /// Local time in milliseconds.
    pub fn local_ms(&self, t_ms: u64) -> u64 {
        t_ms.saturating_add_signed(self.offset_ms(t_ms))
    }

    /// Local time as the core sees it (whole seconds).
    pub fn local(&self, t_ms: u64) -> UnixTime {
        UnixTime(self.local_ms(t_ms) / 1000)
    }

    /// Local time as a node is driven (milliseconds, as microseconds).
    pub fn local_ts(&self, t_ms: u64) -> Timestamp {
        Timestamp(self.local_ms(t_ms).saturating_mul(1000))
    }

    /// An estimate of the earliest true time (ms, not before `now_ms`) at
    /// which the local clock reads `deadline`; callers check again when
    /// they get there (the offset may have drifted meanwhile).
    pub fn true_ms_for(&self, deadline: UnixTime, now_ms: u64) -> u64 {
        self.true_ms_for_ts(Timestamp::from_unix(deadline), now_ms)
    }

    /// [`Clock::true_ms_for`] of a [`Timestamp`], rounded up to the next
    /// millisecond.
    pub fn true_ms_for_ts(&self, deadline: Timestamp, now_ms: u64) -> u64 {
        let target = deadline.micros().div_ceil(1000);
        target.saturating_add_signed(-self.offset_ms(now_ms)).max(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_stays_within_the_bound_and_local_time_is_monotonic() {
        let c = Clock {
            base_ms: 1500,
            rate_ppm: 700,
            bound_ms: 2000,
            step_ms: 0,
        };
        let mut last = 0;
        for i in 0..200_000u64 {
            let t = START_MS + i * 997;
            let o = c.offset_ms(t);
            assert!((-2000..=2000).contains(&o), "{o}");
            let l = c.local_ms(t);
            assert!(l >= last);
            last = l;
        }
    }

    #[test]
    fn true_time_for_a_deadline_is_close() {
        let c = Clock {
            base_ms: -1234,
            rate_ppm: 0,
            bound_ms: 2000,
            step_ms: 0,
        };
        let d = UnixTime(START_MS / 1000 + 100);
        let t = c.true_ms_for(d, START_MS);
        assert!(c.local(t) >= d);
        assert!(c.local(t - 1) < d);
    }
}
