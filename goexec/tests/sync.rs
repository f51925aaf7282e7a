//! goexec::sync: exact counts under contention, Go's mutex fairness test, WaitGroup, Once,
//! the Semaphore's bound, Cond broadcast, overlapping readers, threads, and wait reasons.

mod common;

use common::watchdog;
use goexec::sync::{Cond, Mutex, Once, RwLock, Semaphore, WaitGroup};
use goexec::{chan, select, Runtime};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

/// Yields until `dump()` shows `n` goroutines waiting with `reason` (bounded).
fn wait_for_reason(reason: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let tag = format!("[{reason}");
    while goexec::runtime::dump().matches(&tag).count() < n {
        assert!(Instant::now() < deadline, "{}", goexec::runtime::dump());
        goexec::yield_now();
    }
}

#[test]
fn mutex_hundred_goroutines_ten_thousand_increments_each() {
    let _w = watchdog("mutex_hundred_goroutines_ten_thousand_increments_each", 300);
    // A million contended locks take a minute under valgrind; a tenth still queues everyone.
    let each = if common::under_valgrind() {
        1_000
    } else {
        10_000
    };
    for procs in [1, 2] {
        let total = rt(procs).run(move || {
            let n = Arc::new(Mutex::new(0u64));
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    let n = n.clone();
                    goexec::spawn(move || {
                        for i in 0..each {
                            let mut g = n.lock();
                            *g += 1;
                            if i % 100 == 0 {
                                goexec::yield_now(); // holding it: others queue up
                            }
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            let v = *n.lock();
            v
        });
        assert_eq!(total, 100 * each, "procs {procs}");
    }
}

#[test]
fn mutex_fairness_starvation_mode() {
    let _w = watchdog("mutex_fairness_starvation_mode", 120);
    // Go's TestMutexFairness: one goroutine holds the lock almost all the time; another must
    // still get it 10 times within the time limit (starvation mode hands it over).
    for procs in [1, 2] {
        rt(procs).run(move || {
            let mu = Arc::new(Mutex::new(()));
            let (stop_tx, stop_rx) = chan::bounded::<()>(0);
            let hog = {
                let mu = mu.clone();
                goexec::spawn(move || loop {
                    let _g = mu.lock();
                    goexec::time::sleep(Duration::from_micros(100));
                    if stop_rx
                        .try_recv()
                        .is_err_and(|e| e == chan::TryRecvError::Closed)
                    {
                        return;
                    }
                })
            };
            let (done_tx, done_rx) = chan::bounded::<()>(1);
            let mu2 = mu.clone();
            goexec::spawn(move || {
                for _ in 0..10 {
                    goexec::time::sleep(Duration::from_micros(100));
                    drop(mu2.lock());
                }
                done_tx.send(()).unwrap();
            });
            select! {
                recv(done_rx) -> _ => {}
                recv(chan::after(Duration::from_secs(10))) -> _ => {
                    panic!("procs {procs}: can't acquire the Mutex in 10 seconds")
                }
            }
            drop(stop_tx);
            hog.join().unwrap();
        });
    }
}

#[test]
fn mutex_between_goroutines_and_threads() {
    let _w = watchdog("mutex_between_goroutines_and_threads", 120);
    let n = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let n = n.clone();
            std::thread::spawn(move || (0..20_000).for_each(|_| *n.lock() += 1))
        })
        .collect();
    let n2 = n.clone();
    rt(2).run(move || {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let n = n2.clone();
                goexec::spawn(move || (0..5_000).for_each(|_| *n.lock() += 1))
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*n.lock(), 80_000);
    assert!(n.try_lock().is_some());
}

#[test]
fn waitgroup_waits_for_all() {
    let _w = watchdog("waitgroup_waits_for_all", 120);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let wg = WaitGroup::new();
            wg.wait(); // zero: returns at once
            let finished = Arc::new(AtomicUsize::new(0));
            for _ in 0..100 {
                wg.add(1);
                let (wg, finished) = (wg.clone(), finished.clone());
                goexec::spawn(move || {
                    for _ in 0..3 {
                        goexec::yield_now();
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                });
            }
            // Several waiters, one a plain thread.
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let (wg, finished) = (wg.clone(), finished.clone());
                    goexec::spawn(move || {
                        wg.wait();
                        finished.load(Ordering::SeqCst)
                    })
                })
                .collect();
            let t = {
                let (wg, finished) = (wg.clone(), finished.clone());
                std::thread::spawn(move || {
                    wg.wait();
                    finished.load(Ordering::SeqCst)
                })
            };
            wg.wait();
            assert_eq!(finished.load(Ordering::SeqCst), 100);
            for h in waiters {
                assert_eq!(h.join().unwrap(), 100);
            }
            assert_eq!(t.join().unwrap(), 100);
            assert_eq!(wg.count(), 0);
        });
    }
    // A negative counter is a panic, as in Go.
    let wg = WaitGroup::new();
    let r = std::panic::catch_unwind(|| wg.done());
    assert!(r.is_err());
    assert_eq!(wg.count(), 0);
}

#[test]
fn once_runs_once_and_everyone_sees_it_done() {
    let _w = watchdog("once_runs_once_and_everyone_sees_it_done", 120);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let once = Arc::new(Once::new());
            let runs = Arc::new(AtomicUsize::new(0));
            let value = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    let (once, runs, value) = (once.clone(), runs.clone(), value.clone());
                    goexec::spawn(move || {
                        once.call_once(|| {
                            runs.fetch_add(1, Ordering::SeqCst);
                            // Others arrive and wait meanwhile.
                            for _ in 0..10 {
                                goexec::yield_now();
                            }
                            value.store(42, Ordering::SeqCst);
                        });
                        // Whoever returns sees the function's effect.
                        value.load(Ordering::SeqCst)
                    })
                })
                .collect();
            for h in hs {
                assert_eq!(h.join().unwrap(), 42);
            }
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            assert!(once.is_completed());
        });
    }
    // A panicking function counts as done (Go's semantics).
    let once = Once::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        once.call_once(|| panic!("boom"))
    }));
    assert!(r.is_err());
    assert!(once.is_completed());
    once.call_once(|| unreachable!("ran twice"));
}

#[test]
fn semaphore_bounds_concurrency() {
    let _w = watchdog("semaphore_bounds_concurrency", 120);
    for procs in [1, 2] {
        let max = rt(procs).run(|| {
            let sem = Arc::new(Semaphore::new(3));
            let inside = Arc::new(AtomicUsize::new(0));
            let max = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..50)
                .map(|_| {
                    let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
                    goexec::spawn(move || {
                        let _permit = sem.acquire();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        for _ in 0..10 {
                            goexec::yield_now();
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(sem.available_permits(), 3);
            max.load(Ordering::SeqCst)
        });
        assert_eq!(max, 3, "procs {procs}: at most 3 holders, and 3 reached");
    }
}

#[test]
fn cond_broadcast_and_signal() {
    let _w = watchdog("cond_broadcast_and_signal", 120);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let state = Arc::new((Mutex::new(0u32), Cond::new()));
            let (done_tx, done_rx) = chan::bounded::<u32>(10);
            for _ in 0..10 {
                let (state, done) = (state.clone(), done_tx.clone());
                goexec::spawn(move || {
                    let mut g = state.0.lock();
                    while *g == 0 {
                        g = state.1.wait(g);
                    }
                    done.send(*g).unwrap();
                });
            }
            wait_for_reason("sync.Cond.Wait", 10);
            *state.0.lock() = 7;
            state.1.broadcast();
            for _ in 0..10 {
                assert_eq!(done_rx.recv().unwrap(), 7);
            }

            // Signal wakes one waiter at a time.
            let state = Arc::new((Mutex::new(0u32), Cond::new()));
            let woken = Arc::new(AtomicUsize::new(0));
            for _ in 0..3 {
                let (state, woken) = (state.clone(), woken.clone());
                goexec::spawn(move || {
                    let mut g = state.0.lock();
                    while *g == 0 {
                        g = state.1.wait(g);
                    }
                    *g -= 1;
                    woken.fetch_add(1, Ordering::SeqCst);
                });
            }
            wait_for_reason("sync.Cond.Wait", 3);
            for k in 1..=3 {
                *state.0.lock() += 1;
                state.1.signal();
                let deadline = Instant::now() + Duration::from_secs(10);
                while woken.load(Ordering::SeqCst) < k {
                    assert!(Instant::now() < deadline);
                    goexec::yield_now();
                }
            }
        });
    }
}

#[test]
fn rwlock_readers_overlap_and_writers_exclude() {
    let _w = watchdog("rwlock_readers_overlap_and_writers_exclude", 120);
    for procs in [1, 2] {
        rt(procs).run(|| {
            // Four readers hold the lock at the same time: each waits, lock held, until all
            // four are inside (if readers excluded each other this would never end).
            let lock = Arc::new(RwLock::new(0u64));
            let inside = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let (lock, inside) = (lock.clone(), inside.clone());
                    goexec::spawn(move || {
                        let g = lock.read();
                        inside.fetch_add(1, Ordering::SeqCst);
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while inside.load(Ordering::SeqCst) < 4 {
                            assert!(Instant::now() < deadline, "readers did not overlap");
                            goexec::yield_now();
                        }
                        *g
                    })
                })
                .collect();
            hs.into_iter()
                .for_each(|h| assert_eq!(h.join().unwrap(), 0));

            // Writers and readers mixed: writers are exclusive (the two halves always
            // match), and every write lands.
            let lock = Arc::new(RwLock::new((0u64, 0u64)));
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let lock = lock.clone();
                    goexec::spawn(move || {
                        for k in 0..2_000 {
                            if (i + k) % 4 == 0 {
                                let mut g = lock.write();
                                g.0 += 1;
                                goexec::yield_now();
                                g.1 += 1;
                            } else {
                                let g = lock.read();
                                assert_eq!(g.0, g.1, "a reader saw a half-done write");
                            }
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            let g = lock.read();
            assert_eq!(*g, (4_000, 4_000));
        });
    }
}

#[test]
fn blocked_goroutines_show_their_wait_reasons() {
    let _w = watchdog("blocked_goroutines_show_their_wait_reasons", 120);
    rt(2).run(|| {
        let mu = Arc::new(Mutex::new(()));
        let wg = WaitGroup::new();
        let sem = Arc::new(Semaphore::new(1));
        let rw = Arc::new(RwLock::new(()));
        let held = (mu.lock(), sem.acquire(), rw.write());
        wg.add(1);
        let hs = vec![
            {
                let mu = mu.clone();
                goexec::spawn(move || drop(mu.lock()))
            },
            {
                let wg = wg.clone();
                goexec::spawn(move || wg.wait())
            },
            {
                let sem = sem.clone();
                goexec::spawn(move || drop(sem.acquire()))
            },
            {
                let rw = rw.clone();
                goexec::spawn(move || drop(rw.read()))
            },
        ];
        for reason in [
            "sync.Mutex.Lock",
            "sync.WaitGroup.Wait",
            "semacquire",
            "sync.RWMutex.RLock",
        ] {
            wait_for_reason(reason, 1);
        }
        drop(held);
        wg.done();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
}
