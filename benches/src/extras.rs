//! goexec-only rows: the raw context switch, the Coroutine API, and stack costs. tokio has
//! no stackful switch or stacks, so these have no tokio side.

use goexec::runtime::{Coroutine, CoroutineResult};
use goexec::stack::{Stack, StackPool, DEFAULT_STACK_SIZE};
use std::hint::black_box;
use std::time::Instant;

/// Round trips per sample: enough for ~50 ms at a few ns each.
const SWITCH_ITERS: u64 = 10_000_000;

/// The raw context switch: ns per resume + suspend round trip.
pub fn raw_switch_round_trip() -> f64 {
    let t = goexec::bench_support::raw_switch_round_trips(SWITCH_ITERS);
    t.as_nanos() as f64 / SWITCH_ITERS as f64
}

/// `Coroutine::resume` + `Yielder::suspend`: ns per round trip.
pub fn coroutine_round_trip() -> f64 {
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

/// A default-size stack from a warm `StackPool` and back: ns per get + put.
pub fn stack_pool_cycle() -> f64 {
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

/// `Stack::new` + drop with no pool: ns per cycle.
pub fn stack_fresh_cycle() -> f64 {
    let start = Instant::now();
    for _ in 0..FRESH_ITERS {
        drop(black_box(Stack::new(DEFAULT_STACK_SIZE).expect("stack")));
    }
    start.elapsed().as_nanos() as f64 / FRESH_ITERS as f64
}

/// Stacks held at once for the RSS figure.
const RSS_STACKS: usize = 100_000;

/// Resident bytes per default-size stack with its top page touched, 100,000 held.
pub fn stack_rss() -> f64 {
    let mut stacks = Vec::with_capacity(RSS_STACKS);
    let before = crate::mem::rss_bytes();
    for _ in 0..RSS_STACKS {
        let s = Stack::new(DEFAULT_STACK_SIZE).expect("stack");
        // The word at the top of the stack, where a goroutine's first frame lives.
        let top_word = s.top().cast::<usize>().wrapping_sub(1);
        // SAFETY: the top word of the usable range of a stack nothing runs on.
        unsafe { top_word.write_volatile(1) };
        stacks.push(s);
    }
    let per_stack = (crate::mem::rss_bytes() - before) as f64 / RSS_STACKS as f64;
    drop(stacks);
    per_stack
}
