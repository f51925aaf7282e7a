//! The task behind a `JoinHandle` and the stacks behind goroutines: results are delivered and
//! dropped exactly once whoever finishes first, handles work from plain threads and outlive
//! their runtime, and queued goroutines hold no stack. At procs 1, 2 and 4.

use goexec::Runtime;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const PROCS: [usize; 3] = [1, 2, 4];

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

/// A result that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Yields until `cond` holds; panics after far more yields than any scheduler needs.
fn yield_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000_000u64 {
        if cond() {
            return;
        }
        goexec::yield_now();
    }
    panic!("condition not reached");
}

#[test]
fn results_are_dropped_exactly_once_joined_detached_or_dropped_late() {
    const N: usize = 3_000;
    for procs in PROCS {
        let drops = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let (d, r) = (drops.clone(), ran.clone());
        rt(procs).run(move || {
            let mut late = Vec::new();
            for i in 0..N {
                let (d, r) = (d.clone(), r.clone());
                let h = goexec::spawn(move || {
                    r.fetch_add(1, Ordering::Relaxed);
                    Counted(d)
                });
                match i % 3 {
                    // Joined: the value comes out and we drop it.
                    0 => drop(h.join().unwrap()),
                    // Detached before it ran (usually): the goroutine side drops the value.
                    1 => drop(h),
                    // Dropped once finished: the handle side drops the value.
                    _ => late.push(h),
                }
            }
            for h in late {
                yield_until(|| h.is_finished());
                drop(h);
            }
            // Detached goroutines may still be queued: let them all finish.
            yield_until(|| r.load(Ordering::Relaxed) == N);
        });
        assert_eq!(ran.load(Ordering::Relaxed), N, "procs {procs}");
        assert_eq!(drops.load(Ordering::Relaxed), N, "procs {procs}");
    }
}

#[test]
fn big_closures_and_results_round_trip() {
    // Too big for the cached task cells: these take the allocator path.
    for procs in PROCS {
        let sums = rt(procs).run(|| {
            let hs: Vec<_> = (0..200u64)
                .map(|i| {
                    let input = [i as u8; 1024];
                    goexec::spawn(move || {
                        let mut out = [0u64; 64];
                        for (k, o) in out.iter_mut().enumerate() {
                            *o = input[k] as u64 + k as u64;
                        }
                        out
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap().iter().sum::<u64>())
                .collect::<Vec<_>>()
        });
        for (i, s) in sums.iter().enumerate() {
            let want = 64 * (i as u64 % 256) + (0..64).sum::<u64>();
            assert_eq!(*s, want, "procs {procs} goroutine {i}");
        }
    }
}

#[test]
fn a_plain_thread_joins_a_goroutine() {
    for procs in PROCS {
        let got = rt(procs).run(|| {
            let go = Arc::new(AtomicBool::new(false));
            let g = go.clone();
            let h = goexec::spawn(move || {
                yield_until(|| g.load(Ordering::Acquire));
                41 + 1
            });
            // The thread blocks in join (or finds the result there already).
            let t = std::thread::spawn(move || h.join().unwrap());
            go.store(true, Ordering::Release);
            // Wait for the thread without blocking this goroutine's M.
            yield_until(|| t.is_finished());
            t.join().unwrap()
        });
        assert_eq!(got, 42, "procs {procs}");
    }
}

#[test]
fn a_handle_outlives_its_runtime() {
    for procs in PROCS {
        let rt = rt(procs);
        let (finished, unstarted) = rt.run(|| {
            let finished = goexec::spawn(|| String::from("done"));
            yield_until(|| finished.is_finished());
            // Main returns at once: at procs 1 this one never runs and is cancelled at
            // shutdown; with more Ps another M may still get to run it first.
            let unstarted = goexec::spawn(|| String::from("maybe"));
            (finished, unstarted)
        });
        drop(rt);
        assert_eq!(finished.join().unwrap(), "done", "procs {procs}");
        match unstarted.join() {
            Err(e) => assert!(e.is_cancelled(), "procs {procs}: {e}"),
            Ok(v) => assert!(procs > 1 && v == "maybe", "procs {procs}: ran {v:?}"),
        }
    }
}

#[test]
fn queued_goroutines_hold_no_stack() {
    // 200,000 goroutines of 1 GiB stacks would need 200 TiB of address space, more than
    // x86_64 or aarch64 user space has: this passes only because a goroutine gets its stack
    // when it first runs, and then reuses the one its predecessor freed.
    const N: usize = 200_000;
    let rt = Runtime::builder()
        .procs(1)
        .stack_size(goexec::stack::MAX_STACK_SIZE)
        .build()
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    rt.run(move || {
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let c = c.clone();
                goexec::spawn(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(count.load(Ordering::Relaxed), N);
}

#[test]
fn goroutine_stacks_start_at_staggered_offsets() {
    // One goroutine after another on one P: each reuses the stack the previous one freed. The
    // frames still start at different offsets (cache colouring), so that goroutines' hot
    // frames spread over the cache instead of all landing on the same sets.
    let rt = Runtime::builder().procs(1).build().unwrap();
    let offsets = rt.run(|| {
        (0..64)
            .map(|_| {
                goexec::spawn(|| {
                    let local = 0u8;
                    std::hint::black_box(&local) as *const u8 as usize % 4096
                })
                .join()
                .unwrap()
            })
            .collect::<std::collections::HashSet<_>>()
    });
    assert!(
        offsets.len() >= 16,
        "only {} distinct offsets",
        offsets.len()
    );
}
