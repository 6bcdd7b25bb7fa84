//! A timer of the processing loop that stays registered across rounds.
//!
//! The loop wakes once or twice per datagram. Creating a fresh `Sleep` for
//! each of its timers in every round registers and unregisters a timer-wheel
//! entry each time; a [`Deadline`] is registered once and re-armed only when
//! what it waits for changes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

/// A timer armed for a key `K` (the moment it stands for, in whatever
/// clock the caller keeps), re-armed only when the key changes.
pub struct Deadline<K> {
    sleep: Pin<Box<Sleep>>,
    key: Option<K>,
}

impl<K: PartialEq + Copy> Default for Deadline<K> {
    fn default() -> Deadline<K> {
        Deadline::new()
    }
}

impl<K: PartialEq + Copy> Deadline<K> {
    /// A disarmed timer.
    pub fn new() -> Deadline<K> {
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            key: None,
        }
    }

    /// Arms the timer for `key`, to fire at `at(key)`, unless it is already
    /// armed for that key; `None` disarms it. `at` runs only when the key
    /// changed.
    pub fn set(&mut self, key: Option<K>, at: impl FnOnce(K) -> Instant) {
        if key == self.key {
            return;
        }
        if let Some(k) = key {
            self.sleep.as_mut().reset(at(k));
        }
        self.key = key;
    }

    /// Disarms the timer: the next [`Deadline::set`] arms it again, even
    /// for the same key.
    pub fn disarm(&mut self) {
        self.key = None;
    }

    /// Whether the timer is armed.
    pub fn armed(&self) -> bool {
        self.key.is_some()
    }

    /// Waits until the timer fires and disarms it (the next [`Deadline::set`]
    /// arms it again, even for the same key). Wait only while it is armed.
    pub fn fired(&mut self) -> Fired<'_, K> {
        Fired(self)
    }
}

/// The future of [`Deadline::fired`].
pub struct Fired<'a, K>(&'a mut Deadline<K>);

impl<K: PartialEq + Copy + Unpin> Future for Fired<'_, K> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let d = &mut *self.0;
        match d.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                d.disarm();
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn fires_at_its_deadline_then_disarms() {
        let start = Instant::now();
        let mut d: Deadline<u64> = Deadline::new();
        assert!(!d.armed());
        d.set(Some(5), |k| start + Duration::from_secs(k));
        assert!(d.armed());
        d.fired().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
        assert!(!d.armed());
        // The same key arms it again once it fired.
        d.set(Some(5), |k| start + Duration::from_secs(k));
        assert!(d.armed());
        d.fired().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn is_rearmed_only_when_the_key_changes() {
        let start = Instant::now();
        let mut d: Deadline<u64> = Deadline::new();
        d.set(Some(10), |k| start + Duration::from_secs(k));
        // The same key again: `at` is not consulted, the deadline stays.
        d.set(Some(10), |_| start + Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        let early = tokio::time::timeout(Duration::from_millis(1), d.fired()).await;
        assert!(early.is_err(), "fired before its deadline");
        // A new key moves it.
        d.set(Some(3), |k| start + Duration::from_secs(k));
        d.fired().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
        // None disarms.
        d.set(Some(20), |k| start + Duration::from_secs(k));
        d.set(None, |_| unreachable!());
        assert!(!d.armed());
    }
}
