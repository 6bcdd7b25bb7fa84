//! # duet-core
//!
//! The sans-IO heart of duet: everything that decides, nothing that does IO.
//!
//! * No sockets, no files, no tasks, no clock reads: time comes in as
//!   [`time::Timestamp`] / [`time::UnixTime`], randomness from a seeded
//!   generator (`.ci/check-sans-io` enforces it).
//! * Inputs are decoded messages and timer ticks; outputs are replies,
//!   binding changes to persist, and messages for the failover partner.
//! * Nothing here panics on data from a wire, a file or a user.
//!
//! ## Map
//!
//! | module | contents |
//! |---|---|
//! | [`node`] | **the driver of a server**: the daemon, the simulator and the tests all drive a [`node::Node`]; the commit plan |
//! | [`dhcp`] | DHCPv6 server processing (RFC 8415), one file per exchange |
//! | [`failover`] | the RFC 8156 endpoint, one file per part of the RFC |
//! | [`policy`] | what failover lets DHCPv6 processing do ([`policy::LeasePolicy`]), and the standalone policy |
//! | [`lease`] | lease records (RFC 8156 §7.2 states) and the in-memory [`lease::LeaseDb`] with its indexes |
//! | [`alloc`] | free space of address ranges and prefix pools (intervals, the address halves and prefix owners) |
//! | [`store`] | the [`store::LeaseStore`] interface, an in-memory store, a faulty one for tests |
//! | [`config`] | the configuration file: parsing and validation, every error with its key path |
//! | [`net`] | IPv6 prefixes |
//! | [`time`] | time as the core sees it |

// Everything here acts on data from a wire, a file or a user: no panicking
// arithmetic, indexing, unwrap or expect outside tests. Provably safe sites
// use saturating or checked forms (the time types add saturating).
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]

pub mod alloc;
pub mod config;
pub mod dhcp;
pub mod failover;
pub mod lease;
pub mod net;
pub mod node;
pub mod policy;
pub mod store;
#[cfg(test)]
mod testing;
pub mod time;
