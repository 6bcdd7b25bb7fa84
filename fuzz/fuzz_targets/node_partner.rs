//! The node under partner traffic: after a good CONNECT (or CONNECTREPLY)
//! and STATE, every failover message type with edge values (BNDUPDs of
//! many leases, any binding status and times near and far, BNDREPLYs for
//! any transaction, STATE of any state and flags, UPDREQ/UPDREQALL/UPDDONE,
//! POOLREQ, a second CONNECT, huge MAX_UNACKED_BNDUPD…), mixed with client
//! traffic, reconnections, the operator's partner-down and time passing.
//! See `node_harness.rs` for what is checked.
#![no_main]

#[path = "node_harness.rs"]
mod node_harness;

use arbitrary::Arbitrary;
use duet_core::config::Role;
use duet_wire::ServerState;
use libfuzzer_sys::fuzz_target;
use node_harness::{Harness, Op};

#[derive(Arbitrary, Debug)]
struct Input {
    secondary: bool,
    partner_state: u8,
    seed: u64,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let role = if input.secondary { Role::Secondary } else { Role::Primary };
    let mut h = Harness::new(Some(role), input.seed);
    h.connect(ServerState::from(input.partner_state % 12));
    for op in input.ops.into_iter().take(48) {
        h.op(&op);
    }
});
