//! duet's daemon and command-line tools: the IO shell around `duet-core`.
//!
//! * [`serve`] — `duet serve`: sockets, the store writer, the control API;
//! * [`ctl`] — `duet ctl`: a client of the control API;
//! * [`api`] — the JSON documents both sides share (INTERFACE.md).
//!
//! Everything that decides lives in `duet_core`; this crate does IO only.

pub mod api;
pub mod ctl;
pub mod demo;
pub mod serve;
pub mod tls;
