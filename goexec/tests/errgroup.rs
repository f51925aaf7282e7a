//! goexec::sync::ErrGroup: the first error wins, the context is cancelled at the first error
//! and at wait, the limit bounds concurrency (go waits, try_go fails), panics reach wait,
//! misuse panics with clear messages, and stress at 1 and 2 procs.

mod common;

use common::watchdog;
use goexec::chan;
use goexec::context::{Context, Error};
use goexec::sync::ErrGroup;
use goexec::Runtime;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

#[test]
fn the_first_error_wins() {
    let _w = watchdog("the_first_error_wins", 60);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let (g, ctx) = ErrGroup::<u32>::with_context(&Context::background());
            // The others fail only after the first one has (they wait for the cancel).
            for i in 1..=5 {
                let ctx = ctx.clone();
                g.go(move || {
                    let _ = ctx.done().recv();
                    Err(i)
                });
            }
            g.go(|| Err(0));
            g.go(|| Ok(()));
            assert_eq!(g.wait(), Err(0));
            // Returned once; the group is reusable.
            assert_eq!(g.wait(), Ok(()));
            g.go(|| Err(9));
            assert_eq!(g.wait(), Err(9));
        });
    }
}

#[test]
fn the_context_is_cancelled_at_the_first_error() {
    let _w = watchdog("the_context_is_cancelled_at_the_first_error", 60);
    rt(2).run(|| {
        let parent = Context::background().with_value("parent");
        let (g, ctx) = ErrGroup::<&str>::with_context(&parent);
        assert_eq!(ctx.value::<&str>(), Some(&"parent"));
        let (tx, rx) = chan::bounded::<Option<Error>>(1);
        let watcher = ctx.clone();
        g.go(move || {
            // Ends only through the cancel.
            let _ = watcher.done().recv();
            tx.send(watcher.err()).unwrap();
            Ok(())
        });
        assert_eq!(ctx.err(), None);
        g.go(|| Err("failed"));
        // Seen before wait is called.
        assert_eq!(rx.recv(), Ok(Some(Error::Canceled)));
        assert_eq!(g.wait(), Err("failed"));
        assert_eq!(parent.err(), None);
    });
}

#[test]
fn the_context_is_cancelled_when_wait_returns() {
    rt(1).run(|| {
        let (g, ctx) = ErrGroup::<()>::with_context(&Context::background());
        g.go(|| Ok(()));
        g.go(|| Ok(()));
        assert_eq!(g.wait(), Ok(()));
        assert_eq!(ctx.err(), Some(Error::Canceled));
        // Also for a group dropped without a wait.
        let (g, ctx) = ErrGroup::<()>::with_context(&Context::background());
        drop(g);
        assert_eq!(ctx.err(), Some(Error::Canceled));
    });
}

#[test]
fn wait_with_no_goroutines_returns_at_once() {
    rt(1).run(|| {
        let g = ErrGroup::<String>::new();
        assert_eq!(g.wait(), Ok(()));
        assert_eq!(g.wait(), Ok(()));
    });
    // On a plain thread too: nothing to wait for.
    assert_eq!(ErrGroup::<()>::default().wait(), Ok(()));
}

#[test]
fn the_limit_bounds_concurrency() {
    let _w = watchdog("the_limit_bounds_concurrency", 60);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let g = ErrGroup::<()>::new();
            g.set_limit(Some(3));
            let running = Arc::new(AtomicUsize::new(0));
            let max = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            for _ in 0..60 {
                let (r, max, started) = (running.clone(), max.clone(), started.clone());
                g.go(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    for _ in 0..5 {
                        goexec::yield_now();
                    }
                    r.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                });
                // go returned: a slot was free, so at most 3 run now.
                assert!(running.load(Ordering::SeqCst) <= 3);
            }
            assert_eq!(g.wait(), Ok(()));
            assert_eq!(started.load(Ordering::SeqCst), 60);
            let max = max.load(Ordering::SeqCst);
            assert!((1..=3).contains(&max), "max {max}");
            // The limit can change once the group is idle, and be lifted.
            g.set_limit(None);
            let (tx, rx) = chan::bounded::<()>(0);
            for _ in 0..10 {
                let rx = rx.clone();
                assert!(g.try_go(move || {
                    let _ = rx.recv();
                    Ok(())
                }));
            }
            drop(tx);
            assert_eq!(g.wait(), Ok(()));
        });
    }
}

/// A `go` over the limit parks until a slot frees.
#[test]
fn go_waits_for_a_slot() {
    let _w = watchdog("go_waits_for_a_slot", 60);
    rt(2).run(|| {
        let g = ErrGroup::<()>::new();
        g.set_limit(Some(1));
        let (release, hold) = chan::bounded::<()>(0);
        g.go(move || {
            let _ = hold.recv();
            Ok(())
        });
        let second_ran = Arc::new(AtomicUsize::new(0));
        let g2 = g.clone();
        let ran = second_ran.clone();
        let (queued_tx, queued) = chan::bounded::<()>(1);
        let starter = goexec::spawn(move || {
            queued_tx.send(()).unwrap();
            g2.go(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        });
        queued.recv().unwrap();
        // The starter cannot get past go while the first holds the slot.
        let deadline = std::time::Instant::now() + Duration::from_millis(50);
        while std::time::Instant::now() < deadline {
            assert!(!starter.is_finished());
            goexec::yield_now();
        }
        assert_eq!(second_ran.load(Ordering::SeqCst), 0);
        release.send(()).unwrap();
        starter.join().unwrap();
        assert_eq!(g.wait(), Ok(()));
        assert_eq!(second_ran.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn try_go_fails_at_the_limit() {
    let _w = watchdog("try_go_fails_at_the_limit", 60);
    rt(1).run(|| {
        let g = ErrGroup::<()>::new();
        g.set_limit(Some(2));
        let (tx, rx) = chan::bounded::<()>(0);
        for _ in 0..2 {
            let rx = rx.clone();
            assert!(g.try_go(move || {
                let _ = rx.recv();
                Ok(())
            }));
        }
        let dropped = Arc::new(());
        let probe = dropped.clone();
        assert!(!g.try_go(move || {
            drop(probe);
            unreachable!("over the limit")
        }));
        assert_eq!(
            Arc::strong_count(&dropped),
            1,
            "the refused function is dropped"
        );
        drop(tx);
        assert_eq!(g.wait(), Ok(()));
        assert!(g.try_go(|| Ok(())));
        assert_eq!(g.wait(), Ok(()));
    });
}

#[test]
fn a_panic_is_resumed_in_wait_after_every_goroutine_ended() {
    let _w = watchdog("a_panic_is_resumed_in_wait_after_every_goroutine_ended", 60);
    rt(2).run(|| {
        let (g, ctx) = ErrGroup::<&str>::with_context(&Context::background());
        let ended = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (ctx, ended) = (ctx.clone(), ended.clone());
            g.go(move || {
                let _ = ctx.done().recv(); // the panic cancels the context
                ended.fetch_add(1, Ordering::SeqCst);
                Err("an error too")
            });
        }
        g.go(|| panic!("boom in the group"));
        let p = catch_unwind(AssertUnwindSafe(|| g.wait())).expect_err("wait resumes the panic");
        assert_eq!(panic_message(p), "boom in the group");
        assert_eq!(ended.load(Ordering::SeqCst), 4);
        // The panic is resumed once; the error stays for the next wait.
        assert_eq!(g.wait(), Err("an error too"));
    });
}

#[test]
fn set_limit_while_active_panics() {
    let _w = watchdog("set_limit_while_active_panics", 60);
    rt(1).run(|| {
        let g = ErrGroup::<()>::new();
        let (tx, rx) = chan::bounded::<()>(0);
        g.go(move || {
            let _ = rx.recv();
            Ok(())
        });
        let p = catch_unwind(AssertUnwindSafe(|| g.set_limit(Some(4)))).unwrap_err();
        let msg = panic_message(p);
        assert!(
            msg.contains("modify limit while 1 goroutines in the group are still active"),
            "{msg}"
        );
        drop(tx);
        assert_eq!(g.wait(), Ok(()));
        let p = catch_unwind(AssertUnwindSafe(|| g.set_limit(Some(0)))).unwrap_err();
        assert!(panic_message(p).contains("a limit of 0"));
        g.set_limit(Some(4));
    });
}

/// go needs a runtime to spawn on: on a plain thread it panics, saying so, and leaves the
/// group as it was.
#[test]
fn go_on_a_plain_thread_panics_and_leaves_the_group_idle() {
    let g = ErrGroup::<()>::new();
    g.set_limit(Some(1));
    let p = catch_unwind(AssertUnwindSafe(|| g.go(|| Ok(())))).unwrap_err();
    let msg = panic_message(p);
    assert!(msg.contains("ErrGroup::go"), "{msg}");
    assert!(msg.contains("goroutine"), "{msg}");
    // The slot and count were given back.
    assert_eq!(g.wait(), Ok(()));
    g.set_limit(Some(2));
}

/// Many goroutines, some failing, under a limit, at 1 and 2 procs: every one runs, wait
/// returns one of the errors, and the limit holds.
#[test]
fn stress() {
    let _w = watchdog("stress", 120);
    let n = if common::under_valgrind() {
        300
    } else {
        10_000
    };
    for procs in [1, 2] {
        for limit in [None, Some(8)] {
            rt(procs).run(move || {
                let (g, ctx) = ErrGroup::<usize>::with_context(&Context::background());
                g.set_limit(limit);
                let ran = Arc::new(AtomicUsize::new(0));
                let running = Arc::new(AtomicUsize::new(0));
                let max = Arc::new(AtomicUsize::new(0));
                for i in 0..n {
                    let (ran, running, max) = (ran.clone(), running.clone(), max.clone());
                    g.go(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        if i % 7 == 0 {
                            goexec::yield_now();
                        }
                        ran.fetch_add(1, Ordering::SeqCst);
                        running.fetch_sub(1, Ordering::SeqCst);
                        if i % 1000 == 999 {
                            Err(i)
                        } else {
                            Ok(())
                        }
                    });
                }
                let e = g.wait().expect_err("some failed");
                assert_eq!(e % 1000, 999);
                assert_eq!(ran.load(Ordering::SeqCst), n);
                assert_eq!(ctx.err(), Some(Error::Canceled));
                if let Some(l) = limit {
                    assert!(max.load(Ordering::SeqCst) <= l);
                }
            });
        }
    }
}

/// `set_limit` racing a `go` in another goroutine: either the limit is refused (the `go`
/// came first and counts as active) or the `go` obeys it. It must never start unlimited
/// after the limit was set, which would let a second goroutine run beyond the limit.
#[test]
fn set_limit_racing_go_never_exceeds_the_limit() {
    let _w = watchdog("set_limit_racing_go_never_exceeds_the_limit", 120);
    let rounds = if common::under_valgrind() { 50 } else { 2000 };
    // The refused set_limits panic by design: keep their reports out of the output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let exceeded = rt(2).run(move || {
        let mut exceeded = 0;
        for _ in 0..rounds {
            let g = ErrGroup::<()>::new();
            let (tx, rx) = chan::bounded::<()>(0);
            let racer = {
                let g = g.clone();
                goexec::spawn(move || {
                    g.go(move || {
                        let _ = rx.recv();
                        Ok(())
                    })
                })
            };
            goexec::yield_now();
            let limited = catch_unwind(AssertUnwindSafe(|| g.set_limit(Some(1)))).is_ok();
            racer.join().unwrap();
            // The racer's goroutine waits on `rx`: with the limit set, its slot is taken.
            if limited && g.try_go(|| Ok(())) {
                exceeded += 1;
            }
            drop(tx);
            assert_eq!(g.wait(), Ok(()));
        }
        exceeded
    });
    std::panic::set_hook(hook);
    assert_eq!(exceeded, 0, "rounds where the limit was exceeded");
}
