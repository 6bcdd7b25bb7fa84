//! The commit plan: when a node's pending work becomes one store commit.
//!
//! Everything a node decides lands in one pending commit: lease records and
//! metadata to make durable, and the replies and partner messages that may
//! leave only once they are (RFC 7031 §2 "stable storage"; RFC 8156 §7.5.2
//! for a BNDREPLY, §6.3 for a STATE). The plan says how long that commit
//! may wait for company, by what it carries:
//!
//! | pending work | waits at most |
//! |---|---|
//! | a client's reply | [`CommitPlan::window`] (0: none) |
//! | records or messages that answer no client (a partner's BNDUPDs applied, lease timers, state records, a held partner message) | [`CommitPlan::quiet_delay`], or the window if longer |
//! | only acknowledgement bookkeeping (what a BNDREPLY changed) | [`CommitPlan::lazy_delay`] |
//! | [`CommitPlan::group_max`] partner messages, or [`CommitPlan::max_records`] records | nothing: due at once |
//!
//! One commit is in flight at a time: what arrives meanwhile forms the
//! next one, so one fdatasync serves a whole burst. Partner messages a
//! commit releases (and those that need none) leave in groups, at most
//! [`CommitPlan::quiet_delay`] after the first or at once when there are
//! [`CommitPlan::group_max`]: one wake-up and one TLS record at the
//! partner instead of one per message.

use crate::time::Timestamp;
use std::time::Duration;

/// How long pending work may wait before it is committed, and how partner
/// messages are grouped (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPlan {
    /// How long a commit that answers a client waits for more work
    /// (`server.commit-window-us`): fewer fdatasyncs under load, that much
    /// more latency per reply. 0 commits as soon as the previous commit is
    /// done.
    pub window: Duration,
    /// How long work that answers no client waits for company, and how
    /// long partner messages wait to leave in a group.
    pub quiet_delay: Duration,
    /// How long acknowledgement bookkeeping alone waits for a commit to
    /// ride on. Losing it in a crash is harmless: the update is sent again
    /// and lifetimes are capped more tightly meanwhile (RFC 8156 §4.4).
    pub lazy_delay: Duration,
    /// Partner messages held for a commit, or waiting to leave, at which
    /// the commit (or the group) goes at once: a group of BNDUPDs held here
    /// plus a group of BNDREPLYs held by the partner stays well below the
    /// default MAX_UNACKED_BNDUPD of 100.
    pub group_max: usize,
    /// Lease records at which a commit goes at once.
    pub max_records: usize,
}

impl Default for CommitPlan {
    fn default() -> Self {
        CommitPlan {
            window: Duration::ZERO,
            quiet_delay: Duration::from_millis(5),
            lazy_delay: Duration::from_secs(1),
            group_max: 16,
            max_records: 4096,
        }
    }
}

/// What a piece of pending work is, for [`CommitPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A client's reply waits for the commit.
    Reply,
    /// Records, metadata or a partner message that answer no client.
    Quiet,
    /// Acknowledgement bookkeeping only.
    Lazy,
}

impl CommitPlan {
    /// The latest time pending work of kind `w`, added at `now`, may be
    /// committed.
    pub fn deadline(&self, w: Work, now: Timestamp) -> Timestamp {
        now.saturating_add(match w {
            Work::Reply => self.window,
            Work::Quiet => self.window.max(self.quiet_delay),
            Work::Lazy => self.lazy_delay.max(self.window),
        })
    }

    /// The deadline of a pending commit after adding work `w` at `now`,
    /// given its earlier deadline and what it then holds.
    pub fn due(
        &self,
        earlier: Option<Timestamp>,
        w: Work,
        now: Timestamp,
        records: usize,
        partner_messages: usize,
    ) -> Timestamp {
        if records >= self.max_records || partner_messages >= self.group_max {
            return now;
        }
        let d = self.deadline(w, now);
        earlier.map_or(d, |e| e.min(d))
    }

    /// When a group of partner messages, the first queued at `first`, with
    /// `n` in it, leaves.
    pub fn group_due(&self, first: Timestamp, n: usize) -> Timestamp {
        if n >= self.group_max {
            first
        } else {
            first.saturating_add(self.quiet_delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp(1_800_000_000_000_000);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_reply_commits_at_once_without_a_window_and_waits_the_window_with_one() {
        let p = CommitPlan::default();
        assert_eq!(p.due(None, Work::Reply, T, 1, 0), T);
        let w = CommitPlan { window: ms(2), ..p };
        assert_eq!(w.due(None, Work::Reply, T, 1, 0), T + ms(2));
        // A later reply does not push an earlier deadline back.
        assert_eq!(w.due(Some(T + ms(2)), Work::Reply, T + ms(1), 2, 0), T + ms(2));
    }

    #[test]
    fn quiet_work_waits_a_little_and_lazy_work_up_to_a_second() {
        let p = CommitPlan::default();
        assert_eq!(p.due(None, Work::Quiet, T, 1, 0), T + ms(5));
        assert_eq!(p.due(None, Work::Lazy, T, 1, 0), T + ms(1000));
        // Lazy work rides on whatever comes first.
        assert_eq!(
            p.due(Some(T + ms(1000)), Work::Reply, T + ms(10), 2, 0),
            T + ms(10)
        );
        assert_eq!(p.due(Some(T + ms(5)), Work::Lazy, T, 2, 0), T + ms(5));
        // A window longer than the quiet delay holds quiet work too.
        let w = CommitPlan { window: ms(20), ..p };
        assert_eq!(w.due(None, Work::Quiet, T, 1, 0), T + ms(20));
    }

    #[test]
    fn size_limits_make_a_commit_due_at_once() {
        let p = CommitPlan::default();
        assert_eq!(p.due(None, Work::Lazy, T, p.max_records, 0), T);
        assert_eq!(p.due(None, Work::Quiet, T, 1, p.group_max), T);
        assert_eq!(
            p.due(None, Work::Quiet, T, p.max_records - 1, p.group_max - 1),
            T + ms(5)
        );
    }

    #[test]
    fn partner_groups_leave_after_the_quiet_delay_or_when_full() {
        let p = CommitPlan::default();
        assert_eq!(p.group_due(T, 1), T + ms(5));
        assert_eq!(p.group_due(T, p.group_max), T);
    }
}
