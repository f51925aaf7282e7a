//! Scheduler stress tests that need crate-internal blocking primitives.

use super::g::WaitReason;
use super::park::{block_on_guard, Waiter};
use crate::Runtime;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A counting semaphore with one waiter slot, built directly on park/ready: a lost wakeup
/// leaves a goroutine parked forever (the watchdog reports it), a doubled one makes goready
/// abort (the G would not be Waiting).
struct Notify {
    state: Mutex<(u64, Option<Waiter>)>,
    posted: AtomicU64,
    taken: AtomicU64,
}

impl Notify {
    fn new() -> Arc<Notify> {
        Arc::new(Notify {
            state: Mutex::new((0, None)),
            posted: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        })
    }

    fn post(&self) {
        self.posted.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        let w = s.1.take();
        drop(s);
        if let Some(w) = w {
            w.wake();
        }
    }

    fn wait(&self) {
        let mut s = self.state.lock().unwrap();
        loop {
            if s.0 > 0 {
                s.0 -= 1;
                self.taken.fetch_add(1, Ordering::Relaxed);
                return;
            }
            assert!(s.1.is_none(), "Notify supports one waiter");
            s.1 = Some(Waiter::current());
            block_on_guard(s, WaitReason::Test);
            s = self.state.lock().unwrap();
        }
    }
}

/// Aborts the test process with a message if `done` is not set within `limit`: a lost wakeup
/// would otherwise hang the suite.
fn watchdog(name: &'static str, limit: Duration) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while !d.load(Ordering::Acquire) {
            if start.elapsed() > limit {
                eprintln!("{name}: no progress within {limit:?}: a wakeup was lost");
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    done
}

/// Two goroutines pass a token back and forth `rounds` times: 2 × rounds park/ready pairs.
fn ping_pong(procs: usize, rounds: u64) {
    let done = watchdog("ping_pong", Duration::from_secs(120));
    let (a, b) = (Notify::new(), Notify::new());
    let (a2, b2) = (a.clone(), b.clone());
    let (a1, b1) = (a.clone(), b.clone());
    Runtime::builder()
        .procs(procs)
        .build()
        .unwrap()
        .run(move || {
            let (a, b) = (a1, b1);
            let pong = crate::spawn(move || {
                for _ in 0..rounds {
                    b2.wait();
                    a2.post();
                }
            });
            for _ in 0..rounds {
                b.post();
                a.wait();
            }
            pong.join().unwrap();
        });
    done.store(true, Ordering::Release);
    for n in [&a, &b] {
        assert_eq!(n.posted.load(Ordering::Relaxed), rounds);
        assert_eq!(n.taken.load(Ordering::Relaxed), rounds);
    }
}

#[test]
fn park_ready_ping_pong_one_p() {
    ping_pong(1, 500_000);
}

#[test]
fn park_ready_ping_pong_two_ps() {
    ping_pong(2, 1_000_000);
}

/// Many goroutines in a ring, each waking the next: wakeups cross Ps constantly at procs 2
/// and 4, and every one must arrive exactly once.
fn ring(procs: usize, n: usize, laps: u64) {
    let done = watchdog("ring", Duration::from_secs(120));
    let notes: Vec<Arc<Notify>> = (0..n).map(|_| Notify::new()).collect();
    let ns = notes.clone();
    Runtime::builder()
        .procs(procs)
        .build()
        .unwrap()
        .run(move || {
            let hs: Vec<_> = (0..n)
                .map(|i| {
                    let me = ns[i].clone();
                    let next = ns[(i + 1) % n].clone();
                    crate::spawn(move || {
                        for _ in 0..laps {
                            me.wait();
                            next.post();
                        }
                    })
                })
                .collect();
            ns[0].post();
            for h in hs {
                h.join().unwrap();
            }
        });
    done.store(true, Ordering::Release);
    let posted: u64 = notes.iter().map(|n| n.posted.load(Ordering::Relaxed)).sum();
    let taken: u64 = notes.iter().map(|n| n.taken.load(Ordering::Relaxed)).sum();
    assert_eq!(taken, n as u64 * laps);
    // One token circulates: every wait consumed a post; the last post is left over.
    assert_eq!(posted, taken + 1);
}

#[test]
fn park_ready_ring_across_ps() {
    for procs in [1, 2, 4] {
        ring(procs, 100, 2_000);
    }
}

/// A plain thread and a goroutine hand a token back and forth: goready from a foreign thread
/// (the global queue) and a thread parked by a goroutine.
#[test]
fn park_ready_with_a_plain_thread() {
    let done = watchdog("thread ping_pong", Duration::from_secs(120));
    let (a, b) = (Notify::new(), Notify::new());
    let (a2, b2) = (a.clone(), b.clone());
    const ROUNDS: u64 = 20_000;
    let thread = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            b2.wait();
            a2.post();
        }
    });
    Runtime::builder().procs(2).build().unwrap().run(move || {
        for _ in 0..ROUNDS {
            b.post();
            a.wait();
        }
    });
    thread.join().unwrap();
    done.store(true, Ordering::Release);
}

/// The hog handshake (preempt.rs) raced as often as it can be: sysmon treats 50 µs without a
/// scheduling point as hogging, so it takes the P of goroutines that are spawning (runtime
/// entries that are not scheduling points) dozens of times per run, or asks the M to hand it
/// on when it is inside an entry. Every goroutine must run exactly once, and nothing hangs (a
/// watchdog prints the scheduler's state if it does).
#[test]
fn hog_retakes_race_runtime_entries() {
    use std::sync::atomic::AtomicUsize;
    for procs in [1, 2] {
        let (spawned, ran, took, busy) =
            Runtime::builder()
                .procs(procs)
                .build()
                .unwrap()
                .run(move || {
                    let sched = super::m::with_m(|m| m.sched.clone()).unwrap();
                    sched.hog_ns.store(50_000, Ordering::Relaxed);
                    let watched = sched.clone();
                    let done = Arc::new(AtomicBool::new(false));
                    let d2 = done.clone();
                    std::thread::spawn(move || {
                        let t = Instant::now();
                        while !d2.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(50));
                            if t.elapsed() > Duration::from_secs(60) {
                                // Straight to stderr: the harness captures eprintln!, and an
                                // abort would lose it.
                                use std::io::Write;
                                let _ = writeln!(
                                    std::io::stderr(),
                                    "hog_retakes_race_runtime_entries hangs:\n{}",
                                    watched.debug_state()
                                );
                                std::process::abort();
                            }
                        }
                    });
                    let ran = Arc::new(AtomicUsize::new(0));
                    // Until 30 retakes, at least 300 ms and at most 5 s (emulators are slow).
                    let stop = Arc::new(AtomicBool::new(false));
                    let spawners: Vec<_> = (0..3)
                        .map(|_| {
                            let ran = ran.clone();
                            let stop = stop.clone();
                            crate::spawn(move || {
                                let mut n = 0;
                                while !stop.load(Ordering::Relaxed) {
                                    let hs: Vec<_> = (0..1000)
                                        .map(|i: u64| {
                                            // Goroutine code between the entries (not in the
                                            // runtime): where sysmon can take the P.
                                            let mut x = i;
                                            for _ in 0..1000 {
                                                x = std::hint::black_box(x.wrapping_mul(3) + 1);
                                            }
                                            let ran = ran.clone();
                                            crate::spawn(move || {
                                                ran.fetch_add(1, Ordering::Relaxed);
                                            })
                                        })
                                        .collect();
                                    n += hs.len();
                                    for h in hs {
                                        h.join().unwrap();
                                    }
                                }
                                n
                            })
                        })
                        .collect();
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_secs(5)
                        && (t.elapsed() < Duration::from_millis(300)
                            || sched.hog_retakes.load(Ordering::Relaxed) < 30)
                    {
                        crate::time::sleep(Duration::from_millis(5));
                    }
                    stop.store(true, Ordering::Relaxed);
                    let n: usize = spawners.into_iter().map(|h| h.join().unwrap()).sum();
                    done.store(true, Ordering::Relaxed);
                    sched
                        .hog_ns
                        .store(super::preempt::HOG_NS, Ordering::Relaxed);
                    (
                        n,
                        ran.load(Ordering::Relaxed),
                        sched.hog_retakes.load(Ordering::Relaxed),
                        sched.hog_asked.load(Ordering::Relaxed),
                    )
                });
        assert_eq!(spawned, ran, "procs {procs}");
        if super::preempt::enabled() {
            assert!(took >= 1, "procs {procs}: no retakes ({busy} asked) in 5 s");
        }
        eprintln!("procs {procs}: {spawned} goroutines, {took} retakes, {busy} asked");
    }
}

/// `systemstack` (spawn and the park fast path use it) runs its closure off the goroutine's
/// stack, on the M's, and hands the result back; spawning and parking from deep recursion on
/// a goroutine keep working with it (their frames are on the M's stack).
#[test]
fn systemstack_runs_off_the_goroutine_stack() {
    let rt = Runtime::builder().procs(2).build().unwrap();
    rt.run(|| {
        for _ in 0..100 {
            let g = super::tls::current_g().expect("on a goroutine");
            let own = g.stack_range();
            let here = std::hint::black_box(1u64);
            assert!(own.contains(&(std::ptr::addr_of!(here) as usize)));
            let (there, v) = g.systemstack(|| {
                let x = std::hint::black_box(6u64);
                (std::ptr::addr_of!(x) as usize, x * 7)
            });
            assert_eq!(v, 42);
            assert!(
                !own.contains(&there),
                "the closure ran on the goroutine's stack"
            );
            // Moves to another M now and then, whose g0 stack must be the one used.
            goexec_yield_and_spawn();
        }
    });

    fn goexec_yield_and_spawn() {
        let h = crate::spawn(|| {
            crate::yield_now();
            5
        });
        crate::yield_now();
        assert_eq!(h.join().unwrap(), 5);
    }
}

/// A wakeup that meets a traceback's scan bit waits for the walk to end, then readies the G:
/// the G does not run while it is held, and the wakeup is not lost.
#[test]
fn a_wakeup_waits_out_a_traceback_scan() {
    let done = watchdog(
        "a_wakeup_waits_out_a_traceback_scan",
        Duration::from_secs(60),
    );
    Runtime::builder().procs(2).build().unwrap().run(|| {
        let n = Notify::new();
        let n2 = n.clone();
        let woke = Arc::new(AtomicBool::new(false));
        let w2 = woke.clone();
        let h = crate::spawn(move || {
            n2.wait();
            w2.store(true, Ordering::SeqCst);
        });
        let me = super::m::current_g().unwrap();
        let g = loop {
            let found = me
                .sched()
                .all_gs()
                .into_iter()
                .find(|g| g.id() == h.id() && g.status() == super::g::GStatus::Waiting);
            if let Some(g) = found {
                break g;
            }
            crate::yield_now();
        };
        // A failed CAS out of Waiting retries while the G is still Waiting, with the scan
        // bit or without it (a walk that ended between the CAS and the look): a wakeup
        // that took a just-cleared bit for a double wake ended the process.
        assert!(g.is_still(super::g::GStatus::Waiting));
        let guard = g.scan_waiting().expect("the G is Waiting");
        assert!(g.is_still(super::g::GStatus::Waiting));
        assert!(!g.is_still(super::g::GStatus::Runnable));
        // A second walk waits for the first: it cannot take the G meanwhile.
        assert!(g.scan_waiting().is_none());
        // The status reads Waiting all the while.
        assert_eq!(g.status(), super::g::GStatus::Waiting);
        let poster = std::thread::spawn(move || n.post());
        // The post's goready cannot finish while the guard is held: it has 200 ms to show
        // otherwise.
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until && !poster.is_finished() {
            std::thread::yield_now();
        }
        assert!(!poster.is_finished(), "goready went past the scan bit");
        assert!(!woke.load(Ordering::SeqCst));
        drop(guard);
        poster.join().unwrap();
        h.join().unwrap();
        assert!(woke.load(Ordering::SeqCst));
    });
    done.store(true, Ordering::Release);
}
