//! Fairness under CPU hogs, without signals: a goroutine spinning in pure arithmetic loses its
//! P after ~10 ms (sysmon, `runtime/preempt.rs`) and the others run on another thread.
//!
//! Each test leaves a spinning goroutine behind on a detached thread (as Go would at exit, had
//! the process not ended), so these live in their own test binary.

use goexec::time::sleep;
use goexec::Runtime;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

/// Spins in pure arithmetic, never entering the runtime, until `stop` is set.
/// The tests here spin hog threads; run one at a time, so that on a 2-vCPU machine the
/// latency test is not measuring the other tests' hogs competing for the CPUs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn busy(stop: Arc<AtomicBool>) -> u64 {
    let mut x = 1u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    x
}

#[test]
fn gos_seed_example_finishes_at_procs_1() {
    let _serial = serial();
    // Go 1.13 and earlier hung here: `go busy()` at GOMAXPROCS=1, then main sleeps and prints.
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let start = Instant::now();
    // A watchdog: without the retake this never returns, and the test fails instead of hanging.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let printed = Runtime::builder().procs(1).build().unwrap().run(move || {
            goexec::spawn(move || busy(s));
            sleep(1000 * MS);
            format!("main woke after {:?}", start.elapsed())
        });
        let _ = tx.send(printed);
    });
    let printed = rx.recv_timeout(Duration::from_secs(10));
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let printed = printed.expect("the seed program hung: the hog kept its P");
    assert!(printed.starts_with("main woke"));
    assert!(took >= 1000 * MS && took < 3000 * MS, "took {took:?}");
}

#[test]
fn a_sleep_loop_keeps_its_latency_while_two_hogs_spin_at_procs_1() {
    let _serial = serial();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let worst = Runtime::builder().procs(1).build().unwrap().run(move || {
        for _ in 0..2 {
            let s = s.clone();
            goexec::spawn(move || busy(s));
        }
        let mut worst = Duration::ZERO;
        for _ in 0..30 {
            let t = Instant::now();
            sleep(10 * MS);
            worst = worst.max(t.elapsed());
        }
        worst
    });
    stop.store(true, Ordering::Relaxed);
    // 60 ms is the bound asked for (natively the worst is ~21 ms here). Under qemu-user, which
    // CI uses for aarch64 and which runs the spinning threads and the thread start-ups many
    // times slower, the bound is relaxed (CI sets GOEXEC_TEST_EMULATED there).
    let bound = if std::env::var_os("GOEXEC_TEST_EMULATED").is_some() {
        200 * MS
    } else {
        60 * MS
    };
    assert!(worst < bound, "a 10 ms sleep took {worst:?} with two hogs");
}

#[test]
fn a_hog_that_returns_to_the_runtime_gets_a_p_back() {
    let _serial = serial();
    // The hog loses its P, then calls into the runtime (spawn, yield, sleep, join) without
    // one, and finishes; everything else keeps running meanwhile.
    for procs in [1, 2] {
        let v = Runtime::builder().procs(procs).build().unwrap().run(|| {
            let hog = goexec::spawn(|| {
                let t = Instant::now();
                let mut x = 0u64;
                while t.elapsed() < 50 * MS {
                    x = black_box(x.wrapping_add(1));
                }
                let h = goexec::spawn(|| 2);
                goexec::yield_now();
                sleep(MS);
                h.join().unwrap()
            });
            let others: Vec<_> = (0..10)
                .map(|i| {
                    goexec::spawn(move || {
                        sleep(MS);
                        i
                    })
                })
                .collect();
            let sum: u64 = others.into_iter().map(|h| h.join().unwrap()).sum();
            sum + hog.join().unwrap()
        });
        assert_eq!(v, 45 + 2, "procs {procs}");
    }
}

#[test]
fn a_goroutine_spawning_without_scheduling_points_loses_its_p_safely() {
    let _serial = serial();
    // Spawning is a runtime entry but not a scheduling point: a goroutine that does nothing
    // else for 40 ms is a hog to sysmon, which takes its P while it keeps entering the
    // runtime. This races the retake against the entries (preempt.rs) thousands of times;
    // every spawned goroutine must still run exactly once, and the queues stay intact.
    for procs in [1, 2] {
        for round in 0..3 {
            let (spawned, ran) = Runtime::builder().procs(procs).build().unwrap().run(|| {
                let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let spawner = {
                    let ran = ran.clone();
                    goexec::spawn(move || {
                        let t = Instant::now();
                        let mut hs = Vec::new();
                        while t.elapsed() < 40 * MS {
                            let ran = ran.clone();
                            hs.push(goexec::spawn(move || {
                                ran.fetch_add(1, Ordering::Relaxed);
                            }));
                        }
                        let n = hs.len();
                        for h in hs {
                            h.join().unwrap();
                        }
                        n
                    })
                };
                // Others keep yielding meanwhile, on whichever P they get.
                let yielders: Vec<_> = (0..4)
                    .map(|_| {
                        goexec::spawn(|| {
                            for _ in 0..2000 {
                                goexec::yield_now();
                            }
                        })
                    })
                    .collect();
                for y in yielders {
                    y.join().unwrap();
                }
                let n = spawner.join().unwrap();
                (n, ran.load(Ordering::Relaxed))
            });
            assert_eq!(spawned, ran, "procs {procs} round {round}");
            assert!(spawned > 0);
        }
    }
}

#[test]
fn hogs_that_come_back_again_and_again_keep_the_runtime_consistent() {
    let _serial = serial();
    // Goroutines alternate 12 ms of pure arithmetic (losing their P each time) with bursts of
    // runtime calls; yielders run beside them. Everything finishes with the right totals.
    for procs in [1, 2] {
        let total = Runtime::builder().procs(procs).build().unwrap().run(|| {
            let hogs: Vec<_> = (0..3u64)
                .map(|i| {
                    goexec::spawn(move || {
                        let mut sum = 0;
                        for round in 0..4u64 {
                            let t = Instant::now();
                            let mut x = i;
                            while t.elapsed() < 12 * MS {
                                x = black_box(x.wrapping_mul(3).wrapping_add(1));
                            }
                            let hs: Vec<_> = (0..50).map(|k| goexec::spawn(move || k)).collect();
                            sum += hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
                            goexec::yield_now();
                            sleep(Duration::from_micros(100 * (round + 1)));
                        }
                        sum
                    })
                })
                .collect();
            let yielders: Vec<_> = (0..4)
                .map(|_| {
                    goexec::spawn(|| {
                        for _ in 0..5000 {
                            goexec::yield_now();
                        }
                        1u64
                    })
                })
                .collect();
            hogs.into_iter()
                .chain(yielders)
                .map(|h| h.join().unwrap())
                .sum::<u64>()
        });
        assert_eq!(total, 3 * 4 * (49 * 50 / 2) + 4, "procs {procs}");
    }
}
