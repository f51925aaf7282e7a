//! Scoped goroutines (`goexec::scope`): borrows of the caller's data, the wait for every
//! goroutine (joined or not, and when `f` panics), results by `join`, panics nobody joined
//! re-raised, nested scopes, spawning from scoped goroutines, stress at 1 and 2 procs, and the
//! lifecycle edges: a plain thread, shutdown while a scope waits, `UnhandledPanic::Abort`.

mod common;

use goexec::chan;
use goexec::runtime::UnhandledPanic;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

const CHILD: &str = "GOEXEC_TEST_SCOPE_CHILD";

fn rt(procs: usize) -> goexec::Runtime {
    goexec::Runtime::builder().procs(procs).build().unwrap()
}

/// The panic message of a payload.
fn message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

/// Yields until `dump()` shows a goroutine waiting for `what`.
fn until_waiting(what: &str) {
    while !goexec::runtime::dump().contains(&format!("[{what},")) {
        goexec::yield_now();
    }
}

#[test]
fn goroutines_borrow_the_callers_stack_data() {
    let _w = common::watchdog("goroutines_borrow_the_callers_stack_data", 30);
    for procs in [1, 2] {
        let (sum, names) = rt(procs).run(|| {
            let data: Vec<u64> = (1..=100).collect();
            let names = std::sync::Mutex::new(Vec::new());
            let mut sum = 0;
            goexec::scope(|s| {
                let h = s.spawn(|| data.iter().sum::<u64>());
                for i in 0..4 {
                    let names = &names;
                    s.spawn(move || names.lock().unwrap().push(i));
                }
                sum = h.join().unwrap();
            });
            let mut names = names.into_inner().unwrap();
            names.sort();
            (sum, names)
        });
        assert_eq!(sum, 5050);
        assert_eq!(names, [0, 1, 2, 3]);
    }
}

#[test]
fn scope_waits_for_goroutines_nobody_joined() {
    let _w = common::watchdog("scope_waits_for_goroutines_nobody_joined", 30);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let done = AtomicBool::new(false);
            let (release_tx, release_rx) = chan::bounded::<()>(0);
            let (go_tx, go_rx) = chan::bounded::<()>(1);
            // Releases the scoped goroutine only once `f` has returned and the scope's caller
            // is parked waiting for it.
            let releaser = goexec::spawn(move || {
                go_rx.recv().unwrap();
                until_waiting("scope wait");
                release_tx.send(()).unwrap();
            });
            goexec::scope(|s| {
                s.spawn(|| {
                    release_rx.recv().unwrap(); // parks first
                    done.store(true, Ordering::Release);
                });
                go_tx.send(()).unwrap(); // the last thing f does
            });
            assert!(
                done.load(Ordering::Acquire),
                "scope returned before its goroutine"
            );
            releaser.join().unwrap();
        });
    }
}

#[test]
fn join_returns_each_goroutines_value() {
    let _w = common::watchdog("join_returns_each_goroutines_value", 30);
    let words = ["goroutines", "borrow", "data"];
    let lens = rt(2).run(move || {
        let text = String::from("borrowed");
        let text = &text;
        goexec::scope(|s| {
            let hs: Vec<_> = words
                .iter()
                .map(|w| s.spawn(move || w.len() + text.len()))
                .collect();
            assert!(hs.iter().all(|h| h.id() > 1));
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(lens, [18, 14, 12]);
}

#[test]
fn is_finished_turns_true_once_the_goroutine_ends() {
    let _w = common::watchdog("is_finished_turns_true_once_the_goroutine_ends", 30);
    rt(1).run(|| {
        let (tx, rx) = chan::bounded::<()>(0);
        goexec::scope(|s| {
            let h = s.spawn(|| rx.recv().unwrap());
            until_waiting("chan receive");
            assert!(!h.is_finished());
            tx.send(()).unwrap();
            while !h.is_finished() {
                goexec::yield_now();
            }
            h.join().unwrap();
        });
    });
}

#[test]
fn an_unjoined_panic_is_reraised_after_the_others_finished() {
    let _w = common::watchdog(
        "an_unjoined_panic_is_reraised_after_the_others_finished",
        30,
    );
    for procs in [1, 2] {
        // Handle dropped at once, or kept (and not joined) until `f` ends: either way the
        // scope re-raises the panic, after the slow goroutine finished.
        for drop_handle in [true, false] {
            let (payload, done) = rt(procs).run(move || {
                let done = AtomicBool::new(false);
                let (tx, rx) = chan::bounded::<()>(0);
                let r = panic::catch_unwind(AssertUnwindSafe(|| {
                    goexec::scope(|s| {
                        s.spawn(|| {
                            rx.recv().unwrap();
                            done.store(true, Ordering::Release);
                        });
                        let h = s.spawn(|| -> u32 { panic!("boom in a scoped goroutine") });
                        if drop_handle {
                            drop(h);
                        } else {
                            while !h.is_finished() {
                                goexec::yield_now();
                            }
                        }
                        // Released from a goroutine outside the scope, after f returned.
                        goexec::spawn(move || tx.send(()).unwrap());
                    })
                }));
                let payload = r.expect_err("scope did not re-raise the panic");
                (message(&*payload).to_owned(), done.load(Ordering::Acquire))
            });
            assert_eq!(payload, "boom in a scoped goroutine");
            assert!(
                done,
                "the scope re-raised before its other goroutine finished"
            );
        }
    }
}

#[test]
fn a_joined_panic_is_not_reraised_and_the_first_unjoined_one_is() {
    let _w = common::watchdog(
        "a_joined_panic_is_not_reraised_and_the_first_unjoined_one_is",
        30,
    );
    let joined = rt(2).run(|| {
        goexec::scope(|s| {
            let e = s.spawn(|| panic!("joined")).join().unwrap_err();
            assert!(e.is_panic());
            assert!(e.to_string().contains("panicked: joined"), "{e}");
            message(&*e.into_panic()).to_owned()
        })
    });
    assert_eq!(joined, "joined");

    // Two unjoined panics, one after the other: the first is re-raised.
    let first = rt(1).run(|| {
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            goexec::scope(|s| {
                let a = s.spawn(|| panic!("first"));
                while !a.is_finished() {
                    goexec::yield_now();
                }
                drop(a);
                s.spawn(|| panic!("second"));
            })
        }));
        message(&*r.unwrap_err()).to_owned()
    });
    assert_eq!(first, "first");
}

#[test]
fn a_panic_whose_handle_was_forgotten_still_fails_the_scope() {
    let _w = common::watchdog(
        "a_panic_whose_handle_was_forgotten_still_fails_the_scope",
        30,
    );
    let msg = rt(1).run(|| {
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            goexec::scope(|s| {
                std::mem::forget(s.spawn(|| panic!("forgotten")));
            })
        }));
        message(&*r.unwrap_err()).to_owned()
    });
    assert!(msg.contains("a scoped goroutine panicked"), "{msg}");
}

#[test]
fn when_f_panics_the_scope_waits_then_reraises_fs_panic() {
    let _w = common::watchdog("when_f_panics_the_scope_waits_then_reraises_fs_panic", 30);
    for procs in [1, 2] {
        let (msg, done) = rt(procs).run(|| {
            let done = AtomicBool::new(false);
            let (tx, rx) = chan::bounded::<()>(0);
            let r = panic::catch_unwind(AssertUnwindSafe(|| {
                goexec::scope(|s| {
                    s.spawn(|| {
                        rx.recv().unwrap();
                        done.store(true, Ordering::Release);
                    });
                    // A goroutine's unjoined panic too: f's wins.
                    s.spawn(|| panic!("a goroutine's panic"));
                    goexec::spawn(move || tx.send(()).unwrap());
                    panic!("f's panic");
                })
            }));
            (
                message(&*r.unwrap_err()).to_owned(),
                done.load(Ordering::Acquire),
            )
        });
        assert_eq!(msg, "f's panic");
        assert!(done, "the scope unwound before its goroutine finished");
    }
}

/// A value that counts its drop in borrowed data.
struct CountsDrop<'a>(&'a AtomicUsize);

impl Drop for CountsDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A [`CountsDrop`] whose drop lets other goroutines run first: a scope that stopped waiting
/// before its goroutines' drops ended would return in between.
struct CountsDropLate<'a> {
    _counts: CountsDrop<'a>,
}

impl Drop for CountsDropLate<'_> {
    fn drop(&mut self) {
        for _ in 0..10 {
            goexec::yield_now();
        }
    }
}

#[test]
fn closures_and_unjoined_results_are_dropped_before_scope_returns() {
    let _w = common::watchdog(
        "closures_and_unjoined_results_are_dropped_before_scope_returns",
        30,
    );
    const N: usize = 200;
    for procs in [1, 2] {
        let (captures, results) = rt(procs).run(|| {
            let captures = AtomicUsize::new(0);
            let results = AtomicUsize::new(0);
            goexec::scope(|s| {
                for _ in 0..N {
                    let capture = CountsDropLate {
                        _counts: CountsDrop(&captures),
                    };
                    let results = &results;
                    // Handle dropped at once: the result is dropped by the goroutine's side.
                    s.spawn(move || {
                        let _keep = &capture;
                        goexec::yield_now();
                        CountsDropLate {
                            _counts: CountsDrop(results),
                        }
                    });
                }
            });
            (
                captures.load(Ordering::SeqCst),
                results.load(Ordering::SeqCst),
            )
        });
        assert_eq!((captures, results), (N, N));
    }
}

#[test]
fn a_result_whose_drop_panics_fails_the_scope_and_it_still_returns() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("result dropped with a panic");
        }
    }
    let _w = common::watchdog(
        "a_result_whose_drop_panics_fails_the_scope_and_it_still_returns",
        30,
    );
    let msg = rt(1).run(|| {
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            goexec::scope(|s| {
                s.spawn(|| PanicsOnDrop);
            })
        }));
        message(&*r.unwrap_err()).to_owned()
    });
    assert_eq!(msg, "result dropped with a panic");
}

#[test]
fn nested_scopes_and_spawning_from_scoped_goroutines() {
    let _w = common::watchdog("nested_scopes_and_spawning_from_scoped_goroutines", 30);
    for procs in [1, 2] {
        let (outer, inner) = rt(procs).run(|| {
            let outer = AtomicUsize::new(0);
            let inner = AtomicUsize::new(0);
            goexec::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        // More goroutines into the same scope, from one of its goroutines.
                        for _ in 0..4 {
                            s.spawn(|| outer.fetch_add(1, Ordering::Relaxed));
                        }
                        // A scope of its own, borrowing the outer caller's data.
                        let local = AtomicUsize::new(0);
                        goexec::scope(|s2| {
                            for _ in 0..4 {
                                s2.spawn(|| {
                                    local.fetch_add(1, Ordering::Relaxed);
                                    inner.fetch_add(1, Ordering::Relaxed);
                                });
                            }
                        });
                        assert_eq!(local.load(Ordering::Relaxed), 4);
                    });
                }
            });
            (outer.into_inner(), inner.into_inner())
        });
        assert_eq!((outer, inner), (32, 32));
    }
}

/// A binary tree of goroutines, each spawning its children into the same scope.
fn tree<'scope>(s: &'scope goexec::Scope<'scope, '_>, depth: u32, leaves: &'scope AtomicU64) {
    if depth == 0 {
        leaves.fetch_add(1, Ordering::Relaxed);
        return;
    }
    for _ in 0..2 {
        s.spawn(move || tree(s, depth - 1, leaves));
    }
}

#[test]
fn stress_thousands_of_goroutines_mutate_borrowed_data_at_1_and_2_procs() {
    let _w = common::watchdog(
        "stress_thousands_of_goroutines_mutate_borrowed_data_at_1_and_2_procs",
        120,
    );
    let (n, depth, rounds) = if common::under_valgrind() {
        (1000u64, 9, 3)
    } else {
        (5000u64, 11, 10)
    };
    for procs in [1, 2] {
        rt(procs).run(move || {
            for _ in 0..rounds {
                let total = goexec::sync::Mutex::new(0u64);
                let hits = AtomicU64::new(0);
                let mut v: Vec<u64> = (0..n).collect();
                let leaves = AtomicU64::new(0);
                let sum = goexec::scope(|s| {
                    for i in 0..n {
                        let (total, hits) = (&total, &hits);
                        s.spawn(move || {
                            *total.lock() += i;
                            hits.fetch_add(1, Ordering::Relaxed);
                            if i % 7 == 0 {
                                goexec::yield_now();
                            }
                        });
                    }
                    for chunk in v.chunks_mut(16) {
                        s.spawn(move || chunk.iter_mut().for_each(|x| *x += 1));
                    }
                    tree(s, depth, &leaves);
                    let hs: Vec<_> = (0..64u64).map(|i| s.spawn(move || i * i)).collect();
                    hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                });
                assert_eq!(*total.lock(), n * (n - 1) / 2);
                assert_eq!(hits.load(Ordering::Relaxed), n);
                assert_eq!(v.iter().sum::<u64>(), n * (n + 1) / 2);
                assert_eq!(leaves.load(Ordering::Relaxed), 1 << depth);
                assert_eq!(sum, (0..64u64).map(|i| i * i).sum::<u64>());
            }
        });
    }
}

#[test]
fn scope_outside_a_goroutine_panics_without_running_f() {
    let ran = AtomicBool::new(false);
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        goexec::scope(|_| ran.store(true, Ordering::Relaxed));
    }));
    let msg = message(&*r.unwrap_err()).to_owned();
    assert!(
        msg.contains("scope called outside a goexec runtime"),
        "{msg}"
    );
    assert!(!ran.load(Ordering::Relaxed));
}

#[test]
fn spawning_from_a_plain_thread_or_with_a_bad_stack_fails_and_the_scope_returns() {
    let _w = common::watchdog(
        "spawning_from_a_plain_thread_or_with_a_bad_stack_fails_and_the_scope_returns",
        30,
    );
    let dropped = rt(2).run(|| {
        let dropped = AtomicUsize::new(0);
        goexec::scope(|s| {
            std::thread::scope(|ts| {
                ts.spawn(|| {
                    let c = CountsDrop(&dropped);
                    let e = goexec::Builder::new()
                        .spawn_scoped(s, move || drop(c))
                        .unwrap_err();
                    assert!(matches!(e, goexec::runtime::SpawnError::NoRuntime), "{e}");
                    let c = CountsDrop(&dropped);
                    let r = panic::catch_unwind(AssertUnwindSafe(|| s.spawn(move || drop(c))));
                    let msg = message(&*r.unwrap_err()).to_owned();
                    assert!(msg.contains("outside a goexec runtime"), "{msg}");
                });
            });
            let c = CountsDrop(&dropped);
            let e = goexec::Builder::new()
                .stack_size(usize::MAX)
                .spawn_scoped(s, move || drop(c))
                .unwrap_err();
            assert!(matches!(e, goexec::runtime::SpawnError::Stack(_)), "{e}");
        });
        dropped.into_inner()
    });
    // Each closure that never ran was dropped, and the scope did not wait for it.
    assert_eq!(dropped, 3);
}

#[test]
fn a_named_scoped_goroutine_shows_its_name() {
    let _w = common::watchdog("a_named_scoped_goroutine_shows_its_name", 30);
    rt(1).run(|| {
        let greeting = String::from("hi");
        goexec::scope(|s| {
            let h = goexec::Builder::new()
                .name("greeter")
                .spawn_scoped(s, || {
                    assert!(goexec::runtime::dump().contains("\"greeter\" [running]"));
                    greeting.len()
                })
                .unwrap();
            assert_eq!(h.join().unwrap(), 2);
        });
    });
}

// ---- lifecycle edges, in child processes of this binary ----

fn child(mode: &str) {
    // A child that does not end fails its parent's assertions instead of lingering.
    let _w = common::watchdog("scope child", 30);
    match mode {
        "shutdown" => {
            // A scope waits in a goroutine other than main, for a goroutine parked forever;
            // main returns: both are abandoned, and run returns.
            let r = rt(2).run(|| {
                let (started_tx, started_rx) = chan::bounded::<()>(1);
                goexec::spawn(move || {
                    let (_tx, rx) = chan::bounded::<()>(0);
                    let local = String::from("borrowed by the scoped goroutine");
                    goexec::scope(|s| {
                        s.spawn(|| {
                            let _ = rx.recv();
                            local.len()
                        });
                        started_tx.send(()).unwrap();
                    });
                    unreachable!("the scope returned");
                });
                started_rx.recv().unwrap();
                until_waiting("scope wait");
                7
            });
            assert_eq!(r, 7);
            eprintln!("child: run returned");
        }
        "abort" => {
            goexec::Runtime::builder()
                .procs(2)
                .unhandled_panic(UnhandledPanic::Abort)
                .build()
                .unwrap()
                .run(|| {
                    let (_tx, rx) = chan::bounded::<()>(0);
                    goexec::scope(|s| {
                        s.spawn(|| {
                            // Parked while the other panics: the process ends anyway.
                            let _ = rx.recv_timeout(std::time::Duration::from_secs(20));
                        });
                        goexec::Builder::new()
                            .name("doomed")
                            .spawn_scoped(s, || {
                                // Once main waits in the scope, for the dump below.
                                until_waiting("scope wait");
                                panic!("scoped kaboom")
                            })
                            .unwrap();
                    });
                    eprintln!("child: scope returned");
                });
            eprintln!("child: run returned");
        }
        "abort_result_drop" => {
            // A scoped goroutine's result nobody joins panics in its drop: a goroutine's
            // panic like any other, so Abort ends the process.
            struct P;
            impl Drop for P {
                fn drop(&mut self) {
                    panic!("result drop panics");
                }
            }
            goexec::Runtime::builder()
                .procs(1)
                .unhandled_panic(UnhandledPanic::Abort)
                .build()
                .unwrap()
                .run(|| {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        goexec::scope(|s| {
                            drop(s.spawn(|| P));
                        })
                    }));
                    eprintln!("child: scope returned");
                });
        }
        other => panic!("unknown child mode {other:?}"),
    }
}

fn run_child(mode: &str) -> (Option<i32>, String) {
    let out = common::run_test_child(
        "lifecycle_shutdown_while_a_scope_waits_and_abort_on_a_scoped_panic",
        &[(CHILD, mode)],
        std::time::Duration::from_secs(60),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lifecycle_shutdown_while_a_scope_waits_and_abort_on_a_scoped_panic() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode);
        return;
    }
    let _w = common::watchdog(
        "lifecycle_shutdown_while_a_scope_waits_and_abort_on_a_scoped_panic",
        90,
    );
    let (code, err) = run_child("shutdown");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("child: run returned"), "{err}");
    assert!(!err.contains("the scope returned"), "{err}");

    let (code, err) = run_child("abort");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"doomed\" panicked"), "{err}");
    assert!(err.contains("scoped kaboom"), "{err}");
    assert!(
        err.contains("UnhandledPanic is Abort: exiting with status 2"),
        "{err}"
    );
    // The dump shows the main goroutine in its scope.
    assert!(err.contains("goroutine 1 [scope wait"), "{err}");
    assert!(!err.contains("child: scope returned"), "{err}");

    let (code, err) = run_child("abort_result_drop");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("result drop panics"), "{err}");
    assert!(!err.contains("child: scope returned"), "{err}");
}

/// A payload's own drop that panics (a result whose drop panics with such a payload, after a
/// first unjoined panic) does not keep the scope waiting: the payload is leaked instead.
#[test]
fn a_panic_payload_whose_drop_panics_does_not_hang_the_scope() {
    let _w = common::watchdog(
        "a_panic_payload_whose_drop_panics_does_not_hang_the_scope",
        60,
    );
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the payload's own drop panics");
        }
    }
    struct PanicsWithBomb;
    impl Drop for PanicsWithBomb {
        fn drop(&mut self) {
            std::panic::panic_any(Bomb);
        }
    }
    let r = rt(1).run(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            goexec::scope(|s| {
                let a = s.spawn(|| -> () { panic!("first") });
                while !a.is_finished() {
                    goexec::yield_now();
                }
                drop(a); // the first unjoined panic
                drop(s.spawn(|| PanicsWithBomb));
            });
        }))
    });
    let payload = r.expect_err("the first unjoined panic is re-raised");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"first"));
}
