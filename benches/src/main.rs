//! `compare`: the same workloads on goexec and on tokio, side by side.
//!
//! Runs each selected workload for several rounds, alternating goexec and tokio (A B A B ...) so
//! that drift in the machine's speed hits both alike, and prints the median with min–max per
//! side and the ratio goexec/tokio (lower is better for goexec).
//!
//! ```text
//! cargo run --release -p goexec-benches                    # everything, 5 rounds
//! cargo run --release -p goexec-benches -- --rounds 9 --only switch
//! ```
//!
//! Workloads without a tokio counterpart print "—" on tokio's side and say why in `--list`.

mod net;
mod sched;
mod workloads;

use std::process::ExitCode;
use std::time::Instant;
use workloads::{Workload, WORKLOADS};

struct Options {
    rounds: usize,
    only: Option<Vec<String>>,
}

const USAGE: &str = "\
usage: goexec-benches [--rounds N] [--only NAME[,NAME...]] [--list]

  --rounds N   samples per side and workload (default 5, at least 1)
  --only NAMES run only these workloads (comma-separated; see --list)
  --list       list the workloads and what each measures";

fn parse_args() -> Result<Option<Options>, String> {
    let mut opts = Options {
        rounds: 5,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                let v = args.next().ok_or("--rounds needs a number")?;
                opts.rounds = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("--rounds: {v:?} is not a whole number >= 1"))?;
            }
            "--only" => {
                let v = args.next().ok_or("--only needs workload names")?;
                let names: Vec<String> = v.split(',').map(str::to_owned).collect();
                for n in &names {
                    if !WORKLOADS.iter().any(|w| w.name == n) {
                        return Err(format!("--only: no workload named {n:?} (see --list)"));
                    }
                }
                opts.only = Some(names);
            }
            "--list" => {
                for w in WORKLOADS {
                    println!("{:<12} {}", w.name, w.about);
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Some(opts))
}

/// Median, min and max of one side's samples.
type Summary = (f64, f64, f64);

/// Median, min and max of the samples.
fn summary(samples: &mut [f64]) -> Summary {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    (median, samples[0], samples[n - 1])
}

fn fmt_cell(s: Option<Summary>) -> String {
    match s {
        Some((med, lo, hi)) => format!("{med:.1} ({lo:.1}–{hi:.1})"),
        None => "—".to_owned(),
    }
}

/// Both sides' summaries (goexec always measured; tokio where the workload has it).
fn run(w: &Workload, rounds: usize) -> (Option<Summary>, Option<Summary>) {
    let mut g = Vec::with_capacity(rounds);
    let mut t = Vec::with_capacity(rounds);
    // One untimed run of each side warms caches, pools and lazily started threads.
    (w.goexec)();
    if let Some(tokio) = w.tokio {
        tokio();
    }
    for round in 1..=rounds {
        eprint!("\r  {:<12} round {round}/{rounds}", w.name);
        g.push((w.goexec)());
        if let Some(tokio) = w.tokio {
            t.push(tokio());
        }
    }
    eprint!("\r{:<40}\r", "");
    let g = Some(summary(&mut g));
    let t = (!t.is_empty()).then(|| summary(&mut t));
    (g, t)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("goexec-benches: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("goexec-benches: warning: a debug build; run with --release for real figures");
    }
    let selected: Vec<&Workload> = WORKLOADS
        .iter()
        .filter(|w| {
            opts.only
                .as_ref()
                .is_none_or(|o| o.iter().any(|n| n == w.name))
        })
        .collect();
    eprintln!(
        "running {} workload(s), {} round(s) each, goexec and tokio alternating",
        selected.len(),
        opts.rounds
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for w in selected {
        let (g, t) = run(w, opts.rounds);
        let ratio = match (g, t) {
            (Some(g), Some(t)) => format!("{:.2}", g.0 / t.0),
            _ => "—".to_owned(),
        };
        rows.push([
            w.name.to_owned(),
            w.unit.to_owned(),
            fmt_cell(g),
            fmt_cell(t),
            ratio,
        ]);
    }
    let header = [
        "workload",
        "unit",
        "goexec median (min–max)",
        "tokio median (min–max)",
        "goexec/tokio",
    ];
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for r in rows {
        println!("| {} |", r.join(" | "));
    }
    println!(
        "\n{} rounds per side; lower is better; took {:.1} s",
        opts.rounds,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
