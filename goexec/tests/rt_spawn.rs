//! Spawning, joining, yielding, panics, ids, dump, locking, goroutine-locals: the scheduler's
//! public behaviour at procs 1, 2 and 4 (4 oversubscribes this 2-vCPU machine).

use goexec::runtime::{dump, goid, gomaxprocs, num_goroutine};
use goexec::{Builder, Runtime};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const PROCS: [usize; 3] = [1, 2, 4];

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

/// Goroutines alive at once in the big test: 100,000 where stacks come from arenas
/// (Linux >= 6.13). With one mapping pair per stack (older kernels, qemu-user) the default
/// vm.max_map_count allows about 32,000, so there the test holds 20,000.
fn many() -> u64 {
    match goexec::stack::guard_mode() {
        goexec::stack::GuardMode::Arena => 100_000,
        goexec::stack::GuardMode::Mapped => 20_000,
    }
}

#[test]
fn a_hundred_thousand_goroutines_all_run_and_join() {
    let n = many();
    for procs in PROCS {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let sum = rt(procs).run(move || {
            let hs: Vec<_> = (0..n)
                .map(|i| {
                    let c = c.clone();
                    goexec::spawn(move || {
                        c.fetch_add(1, Ordering::Relaxed);
                        i
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(count.load(Ordering::Relaxed), n as usize, "procs {procs}");
        assert_eq!(sum, (n - 1) * n / 2, "procs {procs}");
    }
}

/// Each goroutine spawns the next and joins it: a chain 2,000 deep of parked joiners.
fn chain(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    goexec::spawn(move || chain(depth - 1)).join().unwrap() + 1
}

#[test]
fn nested_spawn_join_chains() {
    for procs in PROCS {
        assert_eq!(rt(procs).run(|| chain(2_000)), 2_000, "procs {procs}");
        // Many short chains at once.
        let total = rt(procs).run(|| {
            let hs: Vec<_> = (0..100).map(|_| goexec::spawn(|| chain(50))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
        });
        assert_eq!(total, 100 * 50, "procs {procs}");
    }
}

#[test]
fn yield_interleaves_goroutines_on_one_p() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    rt(1).run(move || {
        let hs: Vec<_> = ['a', 'b']
            .into_iter()
            .map(|c| {
                let l = l.clone();
                goexec::spawn(move || {
                    for _ in 0..1000 {
                        l.lock().unwrap().push(c);
                        goexec::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2000);
    // With one P, each yield hands the P to the other goroutine: strict alternation.
    for w in log.windows(2) {
        assert_ne!(
            w[0],
            w[1],
            "yield did not switch goroutines: {:?}",
            &log[..20]
        );
    }
}

#[test]
fn yield_lets_every_goroutine_progress_at_every_procs() {
    for procs in PROCS {
        let rounds = Arc::new(AtomicUsize::new(0));
        let r = rounds.clone();
        rt(procs).run(move || {
            let hs: Vec<_> = (0..50)
                .map(|_| {
                    let r = r.clone();
                    goexec::spawn(move || {
                        for _ in 0..200 {
                            r.fetch_add(1, Ordering::Relaxed);
                            goexec::yield_now();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        assert_eq!(rounds.load(Ordering::Relaxed), 50 * 200);
    }
}

#[test]
fn a_panic_comes_back_through_join_and_the_runtime_goes_on() {
    for procs in PROCS {
        rt(procs).run(|| {
            let h = goexec::spawn(|| -> u32 { panic!("boom in {}", goid()) });
            let id = h.id();
            let err = h.join().unwrap_err();
            assert!(err.is_panic());
            assert_eq!(err.id(), id);
            assert_eq!(
                err.to_string(),
                format!("goroutine {id} panicked: boom in {id}")
            );
            let payload = err.into_panic();
            assert_eq!(
                payload.downcast_ref::<String>().unwrap(),
                &format!("boom in {id}")
            );
            // The runtime is fine.
            assert_eq!(goexec::spawn(|| 5).join().unwrap(), 5);
        });
    }
}

#[test]
fn a_panic_in_main_propagates_out_of_run() {
    let r = std::panic::catch_unwind(|| rt(2).run(|| panic!("main failed")));
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"main failed"));
}

#[test]
fn goroutine_ids_start_at_one_and_are_unique() {
    assert_eq!(goid(), 0, "a plain thread has no goroutine id");
    let ids = rt(2).run(|| {
        assert_eq!(goid(), 1, "main is goroutine 1");
        let hs: Vec<_> = (0..1000).map(|_| goexec::spawn(goid)).collect();
        hs.into_iter()
            .map(|h| {
                let id = h.id();
                let seen = h.join().unwrap();
                assert_eq!(id, seen, "JoinHandle::id is the goroutine's goid");
                id
            })
            .collect::<Vec<_>>()
    });
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        ids.len(),
        "ids are unique even though Gs are reused"
    );
    assert!(ids.iter().all(|&id| id > 1));
}

#[test]
fn introspection_reports_the_runtime() {
    assert_eq!((gomaxprocs(), num_goroutine()), (0, 0), "plain thread");
    rt(3).run(|| {
        assert_eq!(gomaxprocs(), 3);
        assert_eq!(num_goroutine(), 1, "just main");
        let release = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = (0..10)
            .map(|_| {
                let r = release.clone();
                goexec::spawn(move || {
                    while !r.load(Ordering::Acquire) {
                        goexec::yield_now();
                    }
                })
            })
            .collect();
        assert_eq!(num_goroutine(), 11);
        release.store(true, Ordering::Release);
        for h in hs {
            h.join().unwrap();
        }
        // A goroutine hands over its result just before it exits, so the count settles a
        // moment after the joins (as Go's NumGoroutine does): poll, bounded.
        let mut n = num_goroutine();
        for _ in 0..100_000 {
            if n == 1 {
                break;
            }
            goexec::yield_now();
            n = num_goroutine();
        }
        assert_eq!(n, 1);
    });
}

#[test]
fn dump_shows_state_wait_reason_name_and_spawn_site() {
    rt(2).run(|| {
        let release = Arc::new(AtomicBool::new(false));
        let r = release.clone();
        let line = line!() + 1;
        let busy = goexec::spawn(move || {
            while !r.load(Ordering::Acquire) {
                goexec::yield_now();
            }
        });
        let busy_id = busy.id();
        let waiter = Builder::new()
            .name("waiter")
            .spawn(move || busy.join().unwrap())
            .unwrap();
        let waiter_id = waiter.id();
        // Bounded polling until the waiter is parked in join.
        let want = format!("goroutine {waiter_id} \"waiter\" [goroutine join, ");
        let mut text = String::new();
        for _ in 0..100_000 {
            text = dump();
            if text.contains(&want) {
                break;
            }
            goexec::yield_now();
        }
        assert!(text.contains(&want), "{text}");
        assert!(
            text.starts_with("goroutine 1 [running]:\n\tspawned at "),
            "{text}"
        );
        let busy_block = format!(
            "goroutine {busy_id} [runnable]:\n\tspawned at {}:{line}:20\n",
            file!()
        );
        let busy_running = busy_block.replace("[runnable]", "[running]");
        assert!(
            text.contains(&busy_block) || text.contains(&busy_running),
            "want {busy_block:?} in:\n{text}"
        );
        release.store(true, Ordering::Release);
        waiter.join().unwrap();
        // Joined goroutines hand over their result just before they exit: poll, bounded.
        let mut left = usize::MAX;
        for _ in 0..100_000 {
            left = dump().matches("goroutine ").count();
            if left == 1 {
                break;
            }
            goexec::yield_now();
        }
        assert_eq!(left, 1, "only main is left");
    });
    assert_eq!(dump(), "", "plain thread");
}

#[test]
#[should_panic(expected = "spawn called outside a goexec runtime")]
fn spawn_outside_a_runtime_panics_with_advice() {
    goexec::spawn(|| ());
}

#[test]
fn builder_reports_errors() {
    assert!(matches!(
        Builder::new().spawn(|| ()),
        Err(goexec::runtime::SpawnError::NoRuntime)
    ));
    rt(1).run(|| {
        let err = Builder::new().stack_size(0).spawn(|| ()).unwrap_err();
        assert!(err.to_string().contains("below the minimum"), "{err}");
        // A custom stack size works, and its stack is not mixed into the default pool.
        let h = Builder::new().stack_size(64 * 1024).spawn(|| 3).unwrap();
        assert_eq!(h.join().unwrap(), 3);
        assert_eq!(goexec::spawn(|| 4).join().unwrap(), 4);
    });
}

#[test]
fn runtime_builder_rejects_bad_configuration() {
    use goexec::runtime::BuildError;
    let e = Runtime::builder().procs(0).build().unwrap_err();
    assert!(matches!(e, BuildError::ZeroProcs));
    assert!(e.to_string().contains("at least one P"), "{e}");
    let e = Runtime::builder().procs(100_000).build().unwrap_err();
    assert!(matches!(e, BuildError::TooManyProcs { requested: 100_000 }));
    let e = Runtime::builder().stack_size(1).build().unwrap_err();
    assert!(matches!(e, BuildError::Stack(_)));
}

#[test]
fn goroutines_left_unstarted_when_main_returns_are_cancelled() {
    let h = rt(1).run(|| goexec::spawn(|| 1));
    let err = h.join().unwrap_err();
    assert!(err.is_cancelled(), "{err}");
}

#[test]
fn a_runtime_runs_again_and_from_several_threads() {
    let r = rt(2);
    assert_eq!(r.run(|| 1), 1);
    assert_eq!(r.run(|| 2), 2);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let r = r.clone();
            std::thread::spawn(move || r.run(move || goexec::spawn(move || i * 10).join().unwrap()))
        })
        .collect();
    let got: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(got, [0, 10, 20, 30]);
}

#[test]
fn run_inside_a_goroutine_is_refused() {
    let msg = rt(1).run(|| {
        let r = std::panic::catch_unwind(|| rt(1).run(|| ()));
        let p = r.unwrap_err();
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    });
    assert!(msg.contains("from inside a goroutine"), "{msg}");
}

#[test]
fn lock_os_thread_pins_the_goroutine_and_reserves_the_thread() {
    // Other goroutines record the thread they run on, but only while the lock is held (the
    // flag is set after lock_os_thread and cleared before unlock_os_thread, by the locked
    // goroutine on the locked thread, so no other goroutine can be on that thread between).
    let locked_now = Arc::new(AtomicBool::new(false));
    let during_lock = Arc::new(Mutex::new(Vec::new()));
    let (flag, rec) = (locked_now.clone(), during_lock.clone());
    let (locked_thread, seen) = rt(2).run(move || {
        let f = flag.clone();
        let locked = goexec::spawn(move || {
            goexec::lock_os_thread();
            f.store(true, Ordering::SeqCst);
            let me = std::thread::current().id();
            let mut seen = Vec::new();
            for _ in 0..200 {
                goexec::yield_now();
                // Park too: join a short-lived goroutine.
                goexec::spawn(|| ()).join().unwrap();
                seen.push(std::thread::current().id());
            }
            f.store(false, Ordering::SeqCst);
            goexec::unlock_os_thread();
            (me, seen)
        });
        let others: Vec<_> = (0..200)
            .map(|_| {
                let (flag, rec) = (flag.clone(), rec.clone());
                goexec::spawn(move || {
                    for _ in 0..20 {
                        if flag.load(Ordering::SeqCst) {
                            rec.lock().unwrap().push(std::thread::current().id());
                        }
                        goexec::yield_now();
                    }
                })
            })
            .collect();
        for h in others {
            h.join().unwrap();
        }
        locked.join().unwrap()
    });
    assert_eq!(seen.len(), 200);
    assert!(
        seen.iter().all(|t| *t == locked_thread),
        "the locked goroutine moved"
    );
    let during = during_lock.lock().unwrap();
    assert!(
        !during.is_empty(),
        "no goroutine overlapped the locked period"
    );
    let on_locked = during.iter().filter(|t| **t == locked_thread).count();
    assert_eq!(
        on_locked, 0,
        "another goroutine ran on the locked thread while it was locked"
    );
}

#[test]
fn goroutine_locals_follow_the_goroutine() {
    use std::cell::Cell;
    goexec::local! {
        static COUNT: Cell<u32> = Cell::new(100);
    }
    let ok = rt(2).run(|| {
        let hs: Vec<_> = (0..50u32)
            .map(|i| {
                goexec::spawn(move || {
                    COUNT.with(|c| c.set(i));
                    for _ in 0..20 {
                        goexec::yield_now(); // may move to another thread
                        assert_eq!(COUNT.with(|c| c.get()), i);
                    }
                    true
                })
            })
            .collect();
        hs.into_iter().all(|h| h.join().unwrap()) && COUNT.with(|c| c.get()) == 100
    });
    assert!(ok);
    // A plain thread has its own.
    assert_eq!(COUNT.with(|c| c.get()), 100);
}

#[test]
fn a_runtime_reuses_its_goroutines_between_runs() {
    // The second run starts with the first run's finished goroutines and stacks: it must
    // behave exactly like a fresh one (ids from 1, results, panics, names).
    let r = rt(2);
    for round in 0..3 {
        let (main_id, ids, named) = r.run(move || {
            let hs: Vec<_> = (0..500)
                .map(|i| goexec::spawn(move || (goid(), i)))
                .collect();
            let ids: Vec<u64> = hs
                .into_iter()
                .enumerate()
                .map(|(i, h)| {
                    let (id, v) = h.join().unwrap();
                    assert_eq!(v, i);
                    id
                })
                .collect();
            let bad = goexec::spawn(|| panic!("again"));
            assert!(bad.join().unwrap_err().is_panic());
            let named = Builder::new()
                .name(format!("round {round}"))
                .spawn(dump)
                .unwrap()
                .join()
                .unwrap();
            (goid(), ids, named)
        });
        assert_eq!(main_id, 1, "round {round}");
        assert_eq!(ids, (2..502).collect::<Vec<u64>>(), "round {round}");
        assert!(
            named.contains(&format!("\"round {round}\" [running]")),
            "{named}"
        );
    }
}

#[test]
fn main_returning_with_goroutines_queued_everywhere_shuts_down_cleanly() {
    for procs in PROCS {
        // Main leaves thousands of goroutines queued (local queues, runnext, global queue)
        // and returns, then the same with a panic: the runtime must drain and stop either way.
        let hs = rt(procs).run(|| {
            (0..5_000)
                .map(|i| goexec::spawn(move || i))
                .collect::<Vec<_>>()
        });
        let cancelled = hs.into_iter().filter(|h| h.is_finished()).count();
        assert!(cancelled > 0, "procs {procs}");
        let r = std::panic::catch_unwind(|| {
            rt(procs).run(|| {
                for i in 0..5_000 {
                    goexec::spawn(move || i);
                }
                panic!("main gives up");
            })
        });
        assert!(r.is_err());
    }
}
