//! `duet-sim`: runs many seeds, or replays one.
//!
//! ```text
//! cargo run -p duet-sim --release -- --seeds 100000 [--start N] [--faults all|crash,partition,...]
//! cargo run -p duet-sim --release -- --seed 1234 --trace
//! ```

use duet_sim::{run_seed, run_seeds, Config, Faults, SabotageSet};
use std::process::ExitCode;

const USAGE: &str = "\
usage: duet-sim [--seeds N] [--start S] [--seed S] [--trace] [--faults LIST]
                [--sabotage mclt,durable,halves,ias,apd] [--chaos-secs N] [--max-clients N]
                [--skew-bound-ms N] [--threads N] [--tail N] [--keep-going]

  --seeds N        run seeds S..S+N (default 1000)
  --start S        first seed (default 0)
  --seed S         run exactly one seed and print its scenario and trace hash
  --trace          print every event (with --seed)
  --faults LIST    all (default), none, or a comma list of: crash, wipe, partition,
                   reset, partner-delay, client-loss, client-dup, client-delay, skew,
                   drift, operator-pd, auto-pd, refuse, skew-step, client-link,
                   handover, commission, partner-lost (\"all,-partition\" removes one)
  --sabotage LIST  break the system on purpose: mclt (no MCLT cap), durable (reply
                   before commit), halves (both address halves), ias (one lease in
                   two IAs), apd (the bare automatic partner-down rule)
  --chaos-secs N   virtual seconds of faults per seed (default 10800)
  --threads N      worker threads (default: available parallelism)
  --keep-going     do not stop at the first failing seed
  --watch LEASE    with --trace: print every store commit of that address or prefix";

fn main() -> ExitCode {
    let mut cfg = Config::default();
    let (mut start, mut count, mut one, mut threads, mut keep_going) = (0u64, 1000u64, None, 0usize, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let r: Result<(), String> = (|| {
            match a.as_str() {
                "--seeds" => count = val()?.parse().map_err(|e| format!("--seeds: {e}"))?,
                "--start" => start = val()?.parse().map_err(|e| format!("--start: {e}"))?,
                "--seed" => one = Some(val()?.parse().map_err(|e| format!("--seed: {e}"))?),
                "--trace" => cfg.trace = true,
                "--faults" => cfg.faults = Faults::parse(&val()?)?,
                "--sabotage" => cfg.sabotage = SabotageSet::parse(&val()?)?,
                "--chaos-secs" => {
                    cfg.chaos_secs = val()?.parse().map_err(|e| format!("--chaos-secs: {e}"))?
                }
                "--max-clients" => {
                    cfg.max_clients = val()?.parse().map_err(|e| format!("--max-clients: {e}"))?
                }
                "--skew-bound-ms" => {
                    cfg.skew_bound_ms = val()?.parse().map_err(|e| format!("--skew-bound-ms: {e}"))?
                }
                "--threads" => threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
                "--tail" => cfg.tail = val()?.parse().map_err(|e| format!("--tail: {e}"))?,
                "--keep-going" => keep_going = true,
                "--watch" => cfg.watch = Some(val()?),
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            if !e.is_empty() {
                eprintln!("duet-sim: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    if !(0..=2000).contains(&cfg.skew_bound_ms) {
        // Two clocks ±bound apart, whole seconds, up to 0.4 s of link delay:
        // beyond 2 s the pair could measure more than RFC 8156's 5 s.
        eprintln!("duet-sim: --skew-bound-ms must be between 0 and 2000");
        return ExitCode::from(2);
    }
    if let Some(seed) = one {
        let scen = duet_sim::World::new(seed, &cfg).scenario().to_string();
        println!("seed {seed}: {scen}");
        let r = run_seed(seed, &cfg);
        println!("{}", r.stats);
        println!("events {}  trace hash {:016x}", r.events, r.trace_hash);
        return match r.failure {
            Some(f) => {
                println!("{}", f.report(&cfg));
                ExitCode::FAILURE
            }
            None => {
                println!("seed {seed}: ok");
                ExitCode::SUCCESS
            }
        };
    }
    if threads == 0 {
        threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    println!(
        "duet-sim: seeds {start}..{} faults={} chaos={}s threads={threads}{}",
        start + count,
        cfg.faults,
        cfg.chaos_secs,
        if cfg.sabotage.any() {
            format!(" SABOTAGE={}", cfg.sabotage)
        } else {
            String::new()
        }
    );
    // Chunks of 10,000 seeds, with a progress line after each.
    let mut b = duet_sim::Batch::default();
    let t0 = std::time::Instant::now();
    let mut next = start;
    while next < start + count {
        let n = (start + count - next).min(10_000);
        let part = run_seeds(next, n, &cfg, threads, if keep_going { 0 } else { 1 });
        b.stats.merge(&part.stats);
        b.failures.extend(part.failures);
        next += n;
        if count > n {
            eprintln!(
                "  {} seeds, {} failed, {:.0} s",
                b.stats.seeds,
                b.failures.len(),
                t0.elapsed().as_secs_f64()
            );
        }
        if !keep_going && !b.failures.is_empty() {
            break;
        }
    }
    b.wall = t0.elapsed();
    println!("{}", b.stats);
    println!(
        "wall time {:.1} s ({:.2} ms per seed)",
        b.wall.as_secs_f64(),
        b.wall.as_secs_f64() * 1000.0 / b.stats.seeds.max(1) as f64
    );
    for f in &b.failures {
        println!("{}", f.report(&cfg));
    }
    if b.failures.is_empty() {
        println!("all {} seeds passed", b.stats.seeds);
        ExitCode::SUCCESS
    } else {
        println!("{} of {} seeds FAILED", b.failures.len(), b.stats.seeds);
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::USAGE;

    #[test]
    fn usage_lists_every_fault_kind() {
        let flat = USAGE.split_whitespace().collect::<Vec<_>>().join(" ");
        for name in duet_sim::config::FAULT_NAMES {
            assert!(
                flat.contains(&format!(" {name},")) || flat.contains(&format!(" {name} ")),
                "--help does not list {name}"
            );
        }
    }
}
