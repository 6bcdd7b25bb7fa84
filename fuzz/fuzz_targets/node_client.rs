//! The node under client traffic: datagrams that decode (every message
//! type, many IAs and hints, edge lifetimes and IAIDs, deep relays, huge
//! Interface-Ids) and time passing, for a standalone server and for each
//! partner of a pair in NORMAL. See `node_harness.rs` for what is checked.
#![no_main]

#[path = "node_harness.rs"]
mod node_harness;

use arbitrary::Arbitrary;
use duet_core::config::Role;
use duet_wire::ServerState;
use libfuzzer_sys::fuzz_target;
use node_harness::{ClientSpec, Harness, Op, Secs};

#[derive(Arbitrary, Debug)]
enum Step {
    Client(ClientSpec),
    Advance(Secs),
    Tick(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: u8,
    seed: u64,
    steps: Vec<Step>,
}

fuzz_target!(|input: Input| {
    let role = match input.mode % 3 {
        0 => None,
        1 => Some(Role::Primary),
        _ => Some(Role::Secondary),
    };
    let mut h = Harness::new(role, input.seed);
    h.connect(ServerState::Normal);
    for s in input.steps.into_iter().take(48) {
        let op = match s {
            Step::Client(c) => Op::Client(c),
            Step::Advance(d) => Op::Advance(d),
            Step::Tick(ms) => Op::Tick(ms),
        };
        h.op(&op);
    }
});
