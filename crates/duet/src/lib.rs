//! duet's daemon and command-line tools: the IO shell around `duet-core`.
//!
//! Everything that decides lives in `duet_core` (its [`duet_core::node::Node`]
//! above all); this crate does IO only.
//!
//! ## Map
//!
//! | module | contents |
//! |---|---|
//! | [`serve`] | `duet serve`: sockets, the partner links (TCP, TLS), the store writer, timers, signals, the control API, the kernel filter, reply pacing |
//! | [`ctl`] | `duet ctl`: a client of the control API |
//! | [`api`] | the JSON documents both sides share |
//! | [`tls`] | `duet tls init`, and loading and checking the partner link's certificates |
//! | [`demo`] | `duet demo`: a pair on loopback, a primary killed and brought back |

pub mod api;
pub mod ctl;
pub mod demo;
pub mod serve;
pub mod tls;
