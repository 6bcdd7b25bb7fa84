//! `duet demo`, the README's first command: it must run with nothing but
//! the built binary (loopback, a temporary directory, no root) and exit 0
//! only when every check of its timeline held.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_runs_its_timeline_and_every_check_holds() {
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["180", env!("CARGO_BIN_EXE_duet"), "demo"])
        .output()
        .expect("run duet demo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "duet demo failed ({:?}):\n{text}",
        out.status
    );
    for step in [
        "pair connected",
        "rebound to the secondary and kept the SAME address and prefix",
        "both lease tables are equal again",
        "every check held",
    ] {
        assert!(text.contains(step), "no {step:?} in the demo's timeline:\n{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(180));
}
