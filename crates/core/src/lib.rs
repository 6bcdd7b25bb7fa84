//! # duet-core
//!
//! The sans-IO heart of duet: everything that decides, nothing that does IO.
//!
//! * No sockets, no files, no tasks, no clock reads: time comes in as
//!   [`time::UnixTime`], randomness from a seeded generator.
//! * Inputs are decoded messages and timer ticks; outputs are replies,
//!   binding changes to persist, and messages for the failover partner.
//! * Nothing here panics on data from a wire, a file or a user.

pub mod alloc;
pub mod config;
pub mod dhcp;
pub mod failover;
pub mod lease;
pub mod net;
pub mod node;
pub mod policy;
pub mod store;
pub mod time;
