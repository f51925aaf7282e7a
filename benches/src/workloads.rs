//! The workloads, each a goexec function and (where one exists) the idiomatic tokio
//! equivalent, both returning their figure in the workload's unit.

use crate::sched;
use goexec::runtime::{Coroutine, CoroutineResult};
use goexec::stack::{Stack, StackPool, DEFAULT_STACK_SIZE};
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
        name: "spawn_join/1",
        unit: "ns/task",
        about: "100,000 tasks each increment an atomic, all joined; 1 worker (goexec procs 1, \
                tokio current_thread)",
        goexec: sched::spawn_join_goexec::<1>,
        tokio: Some(sched::spawn_join_tokio::<1>),
    },
    Workload {
        name: "spawn_join/2",
        unit: "ns/task",
        about: "as spawn_join/1 with 2 workers (goexec procs 2, tokio multi_thread 2)",
        goexec: sched::spawn_join_goexec::<2>,
        tokio: Some(sched::spawn_join_tokio::<2>),
    },
    Workload {
        name: "spawn_batch/1",
        unit: "ns/task",
        about: "spawn_join in batches of 1,000 (100 batches): at most 1,000 tasks alive, so \
                their memory stays in cache; 1 worker",
        goexec: sched::spawn_join_batched_goexec::<1>,
        tokio: Some(sched::spawn_join_batched_tokio::<1>),
    },
    Workload {
        name: "spawn_batch/2",
        unit: "ns/task",
        about: "as spawn_batch/1 with 2 workers",
        goexec: sched::spawn_join_batched_goexec::<2>,
        tokio: Some(sched::spawn_join_batched_tokio::<2>),
    },
    Workload {
        name: "chained/1",
        unit: "ns/link",
        about: "chained_spawn: each task spawns the next and waits for it, 10,000 deep; 1 worker",
        goexec: sched::chained_spawn_goexec::<1>,
        tokio: Some(sched::chained_spawn_tokio::<1>),
    },
    Workload {
        name: "chained/2",
        unit: "ns/link",
        about: "as chained/1 with 2 workers",
        goexec: sched::chained_spawn_goexec::<2>,
        tokio: Some(sched::chained_spawn_tokio::<2>),
    },
    Workload {
        name: "yield_many/1",
        unit: "ns/yield",
        about: "200 tasks each yield 5,000 times; 1 worker",
        goexec: sched::yield_many_goexec::<1>,
        tokio: Some(sched::yield_many_tokio::<1>),
    },
    Workload {
        name: "yield_many/2",
        unit: "ns/yield",
        about: "as yield_many/1 with 2 workers",
        goexec: sched::yield_many_goexec::<2>,
        tokio: Some(sched::yield_many_tokio::<2>),
    },
    Workload {
        name: "ping_pong/1",
        unit: "ns/round trip",
        about: "two tasks bounce a value over two channels, 200,000 round trips; goexec \
                unbuffered channels, tokio mpsc with capacity 1; 1 worker",
        goexec: sched::ping_pong_goexec::<1>,
        tokio: Some(sched::ping_pong_tokio::<1>),
    },
    Workload {
        name: "ping_pong/2",
        unit: "ns/round trip",
        about: "as ping_pong/1 with 2 workers",
        goexec: sched::ping_pong_goexec::<2>,
        tokio: Some(sched::ping_pong_tokio::<2>),
    },
    Workload {
        name: "ring/1",
        unit: "ns/hop",
        about: "Go's threadring: 503 tasks in a ring pass a counter 1,000,000 hops; goexec \
                unbuffered channels, tokio mpsc with capacity 1; 1 worker",
        goexec: sched::ring_goexec::<1>,
        tokio: Some(sched::ring_tokio::<1>),
    },
    Workload {
        name: "ring/2",
        unit: "ns/hop",
        about: "as ring/1 with 2 workers",
        goexec: sched::ring_goexec::<2>,
        tokio: Some(sched::ring_tokio::<2>),
    },
    Workload {
        name: "echo/1",
        unit: "ns/round trip",
        about: "TCP echo server, a task per connection; the same load client (a tokio \
                current_thread on its own thread) drives 64 connections x 500 round trips of \
                64 bytes; server on 1 worker",
        goexec: crate::net::echo_goexec::<1>,
        tokio: Some(crate::net::echo_tokio::<1>),
    },
    Workload {
        name: "echo/2",
        unit: "ns/round trip",
        about: "as echo/1 with the server on 2 workers",
        goexec: crate::net::echo_goexec::<2>,
        tokio: Some(crate::net::echo_tokio::<2>),
    },
    Workload {
        name: "sleep_100us",
        unit: "µs/sleep",
        about: "one task sleeps 100 µs, 200 times, on an otherwise idle runtime (1 worker): \
                timer precision; tokio, like Go, rounds a sleep up to its 1 ms timer wheel",
        goexec: sched::sleep_100us_goexec,
        tokio: Some(sched::sleep_100us_tokio),
    },
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
    Workload {
        name: "stack_pool",
        unit: "ns/get+put",
        about: "take a default-size stack from a warm StackPool and give it back: the stack \
                cost of a spawn once the pool is warm; no tokio counterpart",
        goexec: stack_pool_cycle,
        tokio: None,
    },
    Workload {
        name: "stack_fresh",
        unit: "ns/new+drop",
        about: "Stack::new + drop of a default-size stack with no pool: a slot from the arena \
                (guard already installed after the first round) and its pages released on \
                drop; no tokio counterpart",
        goexec: stack_fresh_cycle,
        tokio: None,
    },
    Workload {
        name: "stack_rss",
        unit: "bytes RSS/stack",
        about: "100,000 default-size stacks held at once, the top page of each touched (as a \
                parked goroutine's frames would): resident memory per stack, from \
                /proc/self/status; the benches' mem_parked row will compare with tokio",
        goexec: stack_rss,
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

/// Pool cycles per sample.
const POOL_ITERS: u64 = 1_000_000;

fn stack_pool_cycle() -> f64 {
    let mut pool = StackPool::new(DEFAULT_STACK_SIZE).expect("pool");
    let warm = pool.get().expect("stack");
    pool.put(warm);
    let start = Instant::now();
    for _ in 0..POOL_ITERS {
        let s = pool.get().expect("stack");
        pool.put(black_box(s));
    }
    start.elapsed().as_nanos() as f64 / POOL_ITERS as f64
}

/// Fresh allocations per sample.
const FRESH_ITERS: u64 = 20_000;

fn stack_fresh_cycle() -> f64 {
    let start = Instant::now();
    for _ in 0..FRESH_ITERS {
        drop(black_box(Stack::new(DEFAULT_STACK_SIZE).expect("stack")));
    }
    start.elapsed().as_nanos() as f64 / FRESH_ITERS as f64
}

/// Stacks held at once for the RSS figure.
const RSS_STACKS: usize = 100_000;

fn stack_rss() -> f64 {
    let mut stacks = Vec::with_capacity(RSS_STACKS);
    let before = rss_bytes();
    for _ in 0..RSS_STACKS {
        let s = Stack::new(DEFAULT_STACK_SIZE).expect("stack");
        // The word at the top of the stack, where a goroutine's first frame lives.
        let top_word = s.top().cast::<usize>().wrapping_sub(1);
        // SAFETY: the top word of the usable range of a stack nothing runs on.
        unsafe { top_word.write_volatile(1) };
        stacks.push(s);
    }
    let per_stack = (rss_bytes() - before) as f64 / RSS_STACKS as f64;
    drop(stacks);
    per_stack
}

/// The process's resident set in bytes, from /proc/self/status.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}
