//! What the failover engine lets DHCPv6 processing do (RFC 8156 §8.1,
//! digest §15), as a trait the processing consults, plus the plain policy
//! of a server outside any failover relationship.

use crate::lease::{BindingKey, Lease, LeaseState};
use crate::time::UnixTime;
use std::time::Duration;

/// How a server answers clients in its current failover state (RFC 8156 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Responsiveness {
    /// Answers every valid client message.
    Responsive,
    /// Answers only messages carrying this server's DUID in a Server
    /// Identifier option (Request, Renew, Release, Decline,
    /// Information-request addressed to it).
    RenewResponsive,
    /// Answers nothing.
    Unresponsive,
}

/// Why a lease leaves the ACTIVE state (RFC 8156 §7.2 events 3, 8, 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// The valid lifetime ran out.
    Expired,
    /// The client sent Release.
    Released,
    /// The client sent Decline.
    Declined,
}

/// Decisions DHCPv6 processing asks of the failover endpoint that owns a
/// subnet's pools. `rel` is the relationship's index.
pub trait LeasePolicy {
    /// Whether and how to answer clients (RFC 8156 §8.1 (a)).
    fn responsiveness(&self, rel: usize) -> Responsiveness;

    /// While [`Responsiveness::RenewResponsive`]: the Elapsed Time (RFC
    /// 8415 §21.9) from which a Solicit or Rebind is answered anyway, the
    /// rescue of a client that does not reach the server that should
    /// answer it (RFC 7031 §4.7). `None`: never.
    fn rescue_after(&self, _rel: usize) -> Option<std::time::Duration> {
        None
    }

    /// Low-bit address classes this server may allocate new addresses from
    /// now: `[even, odd]` (RFC 8156 §4.2.1: primary odd, secondary even).
    fn address_classes(&self, rel: usize) -> [bool; 2];

    /// Owner classes of delegable prefixes this server may delegate from
    /// now, in the order to try (own pool first, RFC 8156 §8.4.1): 0 = FREE
    /// (primary's), 1 = FREE-BACKUP (secondary's).
    fn prefix_classes(&self, rel: usize, now: UnixTime) -> Vec<usize>;

    /// Whether a lease that is not available (EXPIRED, RELEASED…), or is
    /// bound to another binding, may go to `binding` now.
    fn may_reuse(&self, rel: usize, lease: &Lease, binding: &BindingKey, now: UnixTime) -> bool;

    /// The latest valid-lifetime end this server may promise a client for
    /// `lease` (the MCLT rule, RFC 8156 §4.4); `None` = no cap.
    fn valid_until_cap(&self, rel: usize, lease: Option<&Lease>, now: UnixTime) -> Option<UnixTime>;

    /// The partner lifetime to record with a lease just given out with
    /// renewal time `t1`, when configuration would give `desired` (RFC 8156
    /// §4.4, §8.8.1): far enough ahead that the next renewal can get the
    /// full desired lifetime.
    fn partner_lifetime(&self, rel: usize, desired: Duration, t1: Duration, now: UnixTime) -> UnixTime;

    /// The state a lease goes to when it leaves ACTIVE, and its state
    /// expiration.
    fn retire(&self, rel: usize, event: Retire, now: UnixTime) -> (LeaseState, Option<UnixTime>);

    /// A lease in a state other than ACTIVE reached its state expiration:
    /// what happens now (RFC 8156 §7.2, e.g. EXPIRED → FREE after MCLT in
    /// PARTNER-DOWN, ABANDONED → FREE after the probation).
    fn state_timeout(&self, rel: usize, lease: &Lease, now: UnixTime) -> StateTimeout;

    /// Whether the leases picked for the IAs of one message are kept
    /// distinct (RFC 8415 §21.4: an address belongs to one IA; RFC 8156
    /// §4: never bound to two). Always true; a policy layer of the
    /// simulator's sabotage turns it off to show that its checker notices.
    fn distinct_leases_per_message(&self) -> bool {
        true
    }
}

/// The answer to [`LeasePolicy::state_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateTimeout {
    /// Move to this state, with this state expiration.
    Change(LeaseState, Option<UnixTime>),
    /// Ask again at this time.
    Later(UnixTime),
    /// No timeout in this state (the lease waits for a partner's ack).
    Never,
}

/// The policy of a server (or subnet) outside any failover relationship:
/// always responsive, every address, no lifetime cap, released and expired
/// leases free at once, declined addresses withheld for `decline_probation`.
#[derive(Debug, Clone, Copy)]
pub struct Standalone {
    /// How long a declined address is withheld.
    pub decline_probation: Duration,
}

impl Default for Standalone {
    fn default() -> Self {
        Standalone {
            decline_probation: Duration::from_secs(86_400),
        }
    }
}

impl LeasePolicy for Standalone {
    fn responsiveness(&self, _rel: usize) -> Responsiveness {
        Responsiveness::Responsive
    }

    fn address_classes(&self, _rel: usize) -> [bool; 2] {
        [true, true]
    }

    fn prefix_classes(&self, _rel: usize, _now: UnixTime) -> Vec<usize> {
        vec![0, 1]
    }

    fn may_reuse(&self, _rel: usize, lease: &Lease, binding: &BindingKey, now: UnixTime) -> bool {
        match lease.state {
            LeaseState::Free | LeaseState::FreeBackup => true,
            LeaseState::Active => lease.binding.as_ref() == Some(binding) || lease.valid_until <= now,
            LeaseState::Expired | LeaseState::Released | LeaseState::Reset => true,
            LeaseState::Abandoned => false,
        }
    }

    fn valid_until_cap(&self, _rel: usize, _lease: Option<&Lease>, _now: UnixTime) -> Option<UnixTime> {
        None
    }

    fn partner_lifetime(&self, _rel: usize, _desired: Duration, _t1: Duration, _now: UnixTime) -> UnixTime {
        UnixTime::ZERO
    }

    fn retire(&self, _rel: usize, event: Retire, now: UnixTime) -> (LeaseState, Option<UnixTime>) {
        match event {
            Retire::Expired | Retire::Released => (LeaseState::Free, None),
            Retire::Declined => (
                LeaseState::Abandoned,
                Some(now.saturating_add(self.decline_probation)),
            ),
        }
    }

    fn state_timeout(&self, _rel: usize, lease: &Lease, _now: UnixTime) -> StateTimeout {
        match lease.state {
            LeaseState::Abandoned | LeaseState::Expired | LeaseState::Released | LeaseState::Reset => {
                StateTimeout::Change(LeaseState::Free, None)
            }
            _ => StateTimeout::Never,
        }
    }
}
