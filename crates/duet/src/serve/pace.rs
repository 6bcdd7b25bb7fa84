//! Pacing of the datagrams sent to clients and relays.
//!
//! The processing thread makes a batch of bindings durable with one
//! fdatasync, and while that runs it answers nothing. When the disk stalls
//! (a few ms, now and then tens of ms on a virtual disk), the requests of
//! the stall queue up at the server, and once it is over they are answered
//! as fast as the server can go: hundreds of datagrams within a millisecond
//! or two, towards a client (a relay agent, a load generator) whose socket
//! may not be reading just then. What overflows its receive buffer is lost,
//! and the client retransmits only seconds later.
//!
//! A token bucket ([`Pacer`]) smooths such bursts: a datagram leaves at once
//! while the bucket has a token — under normal load always, so pacing adds
//! no latency — and waits in a queue otherwise, released by the processing
//! loop as tokens come back (`server.send-rate` per second, up to
//! `server.send-burst` at once). The queue is bounded: a datagram that
//! finds it full leaves at once (pacing smooths, it never drops).
//!
//! Sans-IO: time is passed in, and what leaves is returned to the caller.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A token bucket with a bounded queue (see the module documentation).
#[derive(Debug)]
pub struct Pacer<T> {
    /// Tokens per second; 0: no pacing.
    rate: u32,
    /// Most tokens the bucket holds.
    burst: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Option<Instant>,
    queue: VecDeque<T>,
    /// Most datagrams the queue holds.
    cap: usize,
}

impl<T> Pacer<T> {
    /// A pacer letting `rate` datagrams per second leave (0: all at once),
    /// `burst` (at least 1) back to back, holding at most `cap` waiting.
    pub fn new(rate: u32, burst: u32, cap: usize) -> Pacer<T> {
        let burst = f64::from(burst.max(1));
        Pacer {
            rate,
            burst,
            tokens: burst,
            last: None,
            queue: VecDeque::new(),
            cap,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let gained = now.saturating_duration_since(last).as_secs_f64() * f64::from(self.rate);
            self.tokens = (self.tokens + gained).min(self.burst);
            self.last = Some(last.max(now));
        } else {
            self.last = Some(now);
        }
    }

    /// Offers one datagram at `now`: `Some` when it may leave now, `None`
    /// when it waits (then [`Pacer::release`] hands it out later, in order).
    pub fn offer(&mut self, now: Instant, item: T) -> Option<T> {
        if self.rate == 0 {
            return Some(item);
        }
        self.refill(now);
        if self.queue.is_empty() && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Some(item);
        }
        if self.queue.len() >= self.cap {
            // Full: smoothing must not become loss.
            return Some(item);
        }
        self.queue.push_back(item);
        None
    }

    /// The waiting datagrams whose turn has come at `now`, oldest first.
    pub fn release(&mut self, now: Instant) -> Vec<T> {
        if self.queue.is_empty() {
            return Vec::new();
        }
        self.refill(now);
        // Whole tokens only; `tokens` is at most `burst`, a small number.
        let n = (self.tokens.floor() as usize).min(self.queue.len());
        self.tokens -= n as f64;
        self.queue.drain(..n).collect()
    }

    /// When the next waiting datagram may leave, if one waits.
    pub fn next_release(&self) -> Option<Instant> {
        if self.queue.is_empty() || self.rate == 0 {
            return None;
        }
        let last = self.last?;
        let missing = (1.0 - self.tokens).max(0.0);
        Some(last + Duration::from_secs_f64(missing / f64::from(self.rate)))
    }

    /// Datagrams waiting.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Everything waiting, at once (at shutdown).
    pub fn drain_all(&mut self) -> Vec<T> {
        self.queue.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn under_the_rate_everything_leaves_at_once() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, 4, 100);
        // One per 2 ms is half the rate: never queued.
        for i in 0..50u64 {
            assert_eq!(p.offer(ms(t0, 2 * i), i), Some(i));
        }
        assert_eq!(p.waiting(), 0);
        assert_eq!(p.next_release(), None);
    }

    #[test]
    fn a_burst_beyond_the_bucket_waits_and_leaves_in_order_at_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, 4, 100);
        let sent: Vec<u32> = (0..10).filter_map(|i| p.offer(t0, i)).collect();
        assert_eq!(sent, vec![0, 1, 2, 3]);
        assert_eq!(p.waiting(), 6);
        // The next token is 1 ms away.
        assert_eq!(p.next_release(), Some(ms(t0, 1)));
        assert!(p.release(t0).is_empty());
        assert_eq!(p.release(ms(t0, 1)), vec![4]);
        assert_eq!(p.release(ms(t0, 3)), vec![5, 6]);
        // A newcomer queues behind those still waiting, even with a token.
        assert_eq!(p.offer(ms(t0, 4), 10), None);
        assert_eq!(p.release(ms(t0, 100)), vec![7, 8, 9, 10]);
        assert_eq!(p.waiting(), 0);
        assert_eq!(p.next_release(), None);
    }

    #[test]
    fn the_bucket_never_holds_more_than_the_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, 3, 100);
        assert_eq!(p.offer(t0, 0), Some(0));
        // A long quiet spell refills at most 3.
        let later = ms(t0, 10_000);
        let sent: Vec<u32> = (1..10).filter_map(|i| p.offer(later, i)).collect();
        assert_eq!(sent, vec![1, 2, 3]);
    }

    #[test]
    fn a_full_queue_lets_datagrams_through_instead_of_dropping() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, 1, 2);
        assert_eq!(p.offer(t0, 0), Some(0));
        assert_eq!(p.offer(t0, 1), None);
        assert_eq!(p.offer(t0, 2), None);
        assert_eq!(p.offer(t0, 3), Some(3));
        assert_eq!(p.drain_all(), vec![1, 2]);
    }

    #[test]
    fn rate_zero_is_no_pacing() {
        let t0 = Instant::now();
        let mut p = Pacer::new(0, 1, 0);
        for i in 0..1000 {
            assert_eq!(p.offer(t0, i), Some(i));
        }
        assert_eq!(p.next_release(), None);
    }

    #[test]
    fn time_going_backwards_gains_nothing() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut p = Pacer::new(1000, 1, 10);
        assert_eq!(p.offer(t0, 0), Some(0));
        assert_eq!(p.offer(t0 - Duration::from_secs(1), 1), None);
        assert!(p.release(t0 - Duration::from_secs(1)).is_empty());
    }
}
