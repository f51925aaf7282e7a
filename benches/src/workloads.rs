//! The workloads, each a goexec function and (where one exists) the idiomatic tokio
//! equivalent, both returning their figure in the workload's unit.

use goexec::runtime::{Coroutine, CoroutineResult};
use std::hint::black_box;
use std::time::Instant;

/// One row of the comparison.
pub struct Workload {
    pub name: &'static str,
    pub unit: &'static str,
    pub about: &'static str,
    pub goexec: fn() -> f64,
    pub tokio: Option<fn() -> f64>,
}

pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "switch",
        unit: "ns/round trip",
        about: "the bare context switch: resume + suspend, a value each way (two stack \
                switches); tokio has no stackful switch, so no tokio figure: its task switch \
                is compared by yield_many",
        goexec: raw_switch_round_trip,
        tokio: None,
    },
    Workload {
        name: "coroutine",
        unit: "ns/round trip",
        about: "Coroutine::resume + Yielder::suspend: the switch plus the stack-overflow \
                record and moving the values; no tokio counterpart",
        goexec: coroutine_round_trip,
        tokio: None,
    },
];

/// Round trips per sample: enough for ~50 ms at a few ns each.
const SWITCH_ITERS: u64 = 10_000_000;

fn raw_switch_round_trip() -> f64 {
    let t = goexec::bench_support::raw_switch_round_trips(SWITCH_ITERS);
    t.as_nanos() as f64 / SWITCH_ITERS as f64
}

fn coroutine_round_trip() -> f64 {
    let mut co = Coroutine::<u64, u64, ()>::new(|y, mut n| loop {
        n = y.suspend(n + 1);
    })
    .expect("coroutine stack");
    let start = Instant::now();
    let mut acc = 0u64;
    for i in 0..SWITCH_ITERS {
        if let CoroutineResult::Yield(v) = co.resume(black_box(i)) {
            acc = acc.wrapping_add(v);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / SWITCH_ITERS as f64;
    black_box(acc);
    ns
}
