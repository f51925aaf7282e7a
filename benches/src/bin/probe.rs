//! One goexec workload, once, at procs 1: no tokio runtime and no warm-up, so that a tool
//! counting the whole process (`benches/callgrind.sh`) counts that workload alone. Prints
//! `NAME SIZE OPS`, where OPS is how many operations the run made.
//!
//! ```text
//! cargo run --release -p goexec-benches --bin probe -- NAME SIZE
//! ```

use goexec_benches::sched;
use std::process::ExitCode;

/// A workload: its name, what one operation is, the largest size taken (spawn_join and
/// chained_spawn hold every goroutine at once), and a run of a size returning its operations.
struct Workload {
    name: &'static str,
    op: &'static str,
    max: usize,
    run: fn(usize) -> usize,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "yield_many",
        op: "a yield",
        max: 100_000_000,
        run: |n| {
            sched::yield_many_goexec(1, n);
            n / sched::YIELD_TASKS * sched::YIELD_TASKS
        },
    },
    Workload {
        name: "ping_pong",
        op: "a round trip",
        max: 100_000_000,
        run: |n| {
            sched::ping_pong_goexec(1, n);
            n
        },
    },
    Workload {
        name: "ring",
        op: "a hop",
        max: 100_000_000,
        run: |n| {
            sched::ring_goexec(1, n);
            n
        },
    },
    Workload {
        name: "spawn_join",
        op: "a spawn and its join",
        max: 1_000_000,
        run: |n| {
            sched::spawn_join_goexec(1, n);
            n
        },
    },
    Workload {
        name: "chained_spawn",
        op: "a link (a spawn and its join)",
        max: 100_000,
        run: |n| {
            sched::chained_spawn_goexec(1, n);
            n
        },
    },
];

fn usage() -> String {
    let mut s =
        "usage: probe NAME SIZE\n\nNAME, what one operation is, the largest SIZE:".to_owned();
    for w in WORKLOADS {
        s.push_str(&format!("\n  {:<14} {:<30} {}", w.name, w.op, w.max));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let [name, size] = &args[..] else {
        eprintln!("probe: expected NAME SIZE\n{}", usage());
        return ExitCode::from(2);
    };
    let Some(w) = WORKLOADS.iter().find(|w| w.name == name) else {
        eprintln!("probe: no workload named {name:?}\n{}", usage());
        return ExitCode::from(2);
    };
    let Some(n) = size.parse().ok().filter(|n| (1..=w.max).contains(n)) else {
        eprintln!("probe: {name} takes a SIZE in 1..={}, not {size:?}", w.max);
        return ExitCode::from(2);
    };
    let ops = (w.run)(n);
    println!("{name} {n} {ops}");
    ExitCode::SUCCESS
}
