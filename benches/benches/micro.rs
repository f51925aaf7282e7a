//! criterion benches of the micro workloads, goexec beside tokio, for regression work:
//!
//! ```text
//! cargo bench -p goexec-benches                       # all
//! cargo bench -p goexec-benches -- 'ping_pong/goexec' # a filter, as criterion takes it
//! ```
//!
//! Each iteration is one whole run of the workload at a smaller size than the compare
//! binary's (so criterion can take many samples), and criterion reports it as elements per
//! second too: divide to get the compare binary's per-operation figure. The runtimes are built
//! once per worker count and reused, as in the compare binary.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use goexec_benches::sched;
use std::time::Duration;

/// Worker counts: goexec procs, tokio current_thread (1) or multi_thread (2).
const WORKERS: [usize; 2] = [1, 2];

type Workload = fn(usize, usize) -> Duration;

/// One group per workload: goexec and tokio at each worker count, `n` operations per run.
fn group(c: &mut Criterion, name: &str, n: usize, goexec: Workload, tokio: Workload) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n as u64));
    for workers in WORKERS {
        for (side, f) in [("goexec", goexec), ("tokio", tokio)] {
            g.bench_with_input(BenchmarkId::new(side, workers), &workers, |b, &w| {
                b.iter_custom(|iters| (0..iters).map(|_| f(w, n)).sum())
            });
        }
    }
    g.finish();
}

fn micro(c: &mut Criterion) {
    group(
        c,
        "spawn_join",
        10_000,
        sched::spawn_join_goexec,
        sched::spawn_join_tokio,
    );
    group(
        c,
        "chained_spawn",
        1_000,
        sched::chained_spawn_goexec,
        sched::chained_spawn_tokio,
    );
    group(
        c,
        "yield_many",
        sched::YIELD_TASKS * 100,
        sched::yield_many_goexec,
        sched::yield_many_tokio,
    );
    group(
        c,
        "ping_pong",
        10_000,
        sched::ping_pong_goexec,
        sched::ping_pong_tokio,
    );
    group(c, "ring", 100_000, sched::ring_goexec, sched::ring_tokio);
    // The raw context switch (goexec only): one resume + suspend round trip per element.
    let mut g = c.benchmark_group("switch");
    g.throughput(Throughput::Elements(1));
    g.bench_function("goexec", |b| {
        b.iter_custom(goexec::bench_support::raw_switch_round_trips)
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // Short runs: each iteration is a whole workload run, and the VM is noisy anyway; the
    // compare binary's alternating rounds are the figures to quote.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = micro
}
criterion_main!(benches);
