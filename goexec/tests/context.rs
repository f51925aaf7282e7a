//! goexec::context: the cancellation tree (grandchildren, not the parent), Cancel's drop,
//! deadlines (firing through the timers, inherited from an earlier parent), errors, done() in
//! select! on goroutines and plain threads, values, bounded child lists, contexts outliving
//! their runtime, and many waiters woken by one cancel.

mod common;

use common::watchdog;
use goexec::chan::{self, RecvError, RecvTimeoutError};
use goexec::context::{Context, Error};
use goexec::{select, Runtime};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

/// Generous bound on a wait that should end at once.
const BOUND: Duration = Duration::from_secs(20);

fn closed(ctx: &Context) -> bool {
    ctx.done().is_closed()
}

#[test]
fn cancel_reaches_children_and_grandchildren() {
    let _w = watchdog("cancel_reaches_children_and_grandchildren", 60);
    rt(2).run(|| {
        let (parent, cancel) = Context::background().with_cancel();
        let (child, _c1) = parent.with_cancel();
        let valued = child.with_value(5u8);
        let (grandchild, _c2) = valued.with_timeout(Duration::from_secs(3600));
        let (sibling, _c3) = parent.with_deadline(Instant::now() + Duration::from_secs(3600));
        // A goroutine parked on the grandchild's done().
        let waiter = goexec::spawn({
            let g = grandchild.clone();
            move || g.done().recv()
        });
        for c in [&parent, &child, &valued, &grandchild, &sibling] {
            assert_eq!(c.err(), None);
            assert!(!closed(c));
        }
        cancel.cancel();
        for c in [&parent, &child, &valued, &grandchild, &sibling] {
            assert_eq!(c.err(), Some(Error::Canceled), "{c:?}");
            assert!(closed(c), "{c:?}");
        }
        assert_eq!(waiter.join().unwrap(), Err(RecvError));
        // A child of a cancelled context is born cancelled, with its error.
        let (late, _c4) = grandchild.with_timeout(Duration::from_secs(3600));
        assert_eq!(late.err(), Some(Error::Canceled));
        assert!(closed(&late));
    });
}

#[test]
fn a_childs_cancel_does_not_reach_its_parent_or_siblings() {
    let (parent, _cancel) = Context::background().with_cancel();
    let (a, cancel_a) = parent.with_cancel();
    let (b, _cancel_b) = parent.with_cancel();
    let (a1, _c) = a.with_cancel();
    cancel_a.cancel();
    assert_eq!(a.err(), Some(Error::Canceled));
    assert_eq!(a1.err(), Some(Error::Canceled));
    assert_eq!(parent.err(), None);
    assert_eq!(b.err(), None);
    assert!(!closed(&parent) && !closed(&b));
}

#[test]
fn dropping_the_cancel_cancels() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (child, child_cancel) = ctx.with_timeout(Duration::from_secs(3600));
    drop(child_cancel);
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(ctx.err(), None);
    {
        let _cancel = cancel; // Go's `defer cancel()`
    }
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(ctx.done().recv(), Err(RecvError));
}

#[test]
fn cancel_is_idempotent_and_the_first_error_stays() {
    goexec::run(|| {
        let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(1));
        let _ = ctx.done().recv();
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        cancel.cancel();
        cancel.cancel();
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    });
}

/// A goroutine parked on done() before the deadline is woken by the timer.
#[test]
fn a_timeout_fires_through_the_timers() {
    let _w = watchdog("a_timeout_fires_through_the_timers", 60);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let start = Instant::now();
            let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(30));
            let deadline = ctx.deadline().expect("a deadline");
            assert!(deadline >= start + Duration::from_millis(30));
            let done = ctx.done(); // before the deadline: no lazy check can close it
            assert!(!done.is_closed());
            assert_eq!(done.recv_timeout(BOUND), Err(RecvTimeoutError::Closed));
            assert!(Instant::now() >= deadline);
            assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        });
    }
}

#[test]
fn a_deadline_already_past_cancels_at_once() {
    goexec::run(|| {
        let (ctx, _c) = Context::background().with_deadline(Instant::now());
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        let (ctx, _c) = Context::background().with_timeout(Duration::ZERO);
        assert!(closed(&ctx));
        // A huge timeout is a far deadline, not an overflow.
        let (ctx, _c) = Context::background().with_timeout(Duration::MAX);
        assert_eq!(ctx.err(), None);
        assert!(ctx.deadline().unwrap() > Instant::now() + Duration::from_secs(86_400));
    });
}

#[test]
fn deadlines_are_inherited_from_an_earlier_parent() {
    let _w = watchdog("deadlines_are_inherited_from_an_earlier_parent", 60);
    goexec::run(|| {
        let early = Instant::now() + Duration::from_millis(30);
        let (parent, _c1) = Context::background().with_deadline(early);
        let (later, _c2) = parent.with_timeout(Duration::from_secs(3600));
        let (plain, _c3) = parent.with_cancel();
        let valued = parent.with_value("v");
        assert_eq!(later.deadline(), Some(early));
        assert_eq!(plain.deadline(), Some(early));
        assert_eq!(valued.deadline(), Some(early));
        // An earlier child's own deadline fires without touching the parent.
        let (sooner, _c4) = parent.with_timeout(Duration::from_millis(1));
        assert!(sooner.deadline().unwrap() < early);
        assert_eq!(
            sooner.done().recv_timeout(BOUND),
            Err(RecvTimeoutError::Closed)
        );
        assert_eq!(sooner.err(), Some(Error::DeadlineExceeded));
        assert_eq!(parent.err(), None);
        // The parent's deadline reaches the children with its error.
        let done = later.done();
        assert_eq!(done.recv_timeout(BOUND), Err(RecvTimeoutError::Closed));
        assert!(Instant::now() >= early);
        for c in [&parent, &later, &plain, &valued] {
            assert_eq!(c.err(), Some(Error::DeadlineExceeded), "{c:?}");
        }
    });
}

#[test]
fn errors_print_as_go_and_convert_to_io_errors() {
    assert_eq!(Error::Canceled.to_string(), "context canceled");
    assert_eq!(
        Error::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
    let e: std::io::Error = Error::DeadlineExceeded.into();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(
        e.get_ref().and_then(|e| e.downcast_ref::<Error>()),
        Some(&Error::DeadlineExceeded)
    );
    let e: std::io::Error = Error::Canceled.into();
    // Not Interrupted, which std's I/O loops retry.
    assert_eq!(e.kind(), std::io::ErrorKind::Other);
    assert_eq!(e.to_string(), "context canceled");
    assert_eq!(
        e.get_ref().and_then(|e| e.downcast_ref::<Error>()),
        Some(&Error::Canceled)
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::Canceled);
    assert_eq!(boxed.to_string(), "context canceled");
}

#[test]
fn background_and_todo_are_never_cancelled() {
    for ctx in [Context::background(), Context::todo()] {
        assert_eq!(ctx.err(), None);
        assert_eq!(ctx.deadline(), None);
        assert_eq!(
            ctx.done().recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        );
    }
    assert!(format!("{:?}", Context::background()).contains("context.Background"));
    assert!(format!("{:?}", Context::todo()).contains("context.TODO"));
    let (ctx, _c) = Context::todo().with_value(1u32).with_cancel();
    let dbg = format!("{ctx:?}");
    assert!(
        dbg.contains("context.TODO.WithValue(u32).WithCancel"),
        "{dbg}"
    );
}

#[test]
fn done_in_select_with_other_channels() {
    let _w = watchdog("done_in_select_with_other_channels", 60);
    rt(2).run(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let (tx, rx) = chan::bounded::<u32>(0);
        let worker = goexec::spawn(move || {
            let mut got = Vec::new();
            loop {
                select! {
                    recv(rx) -> v => got.push(v.unwrap()),
                    recv(ctx.done()) -> v => {
                        assert_eq!(v, Err(RecvError));
                        return (got, ctx.err());
                    },
                }
            }
        });
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        cancel.cancel();
        let (got, err) = worker.join().unwrap();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert_eq!(err, Some(Error::Canceled));
    });
}

/// Plain threads: waiting on done() in select!, cancelled from another thread, and a deadline
/// set on a plain thread firing while a thread waits.
#[test]
fn plain_threads() {
    let _w = watchdog("plain_threads", 60);
    let (ctx, cancel) = Context::background().with_cancel();
    let waiter = std::thread::spawn({
        let ctx = ctx.clone();
        move || {
            select! {
                recv(ctx.done()) -> _ => ctx.err(),
                recv(chan::never::<()>()) -> _ => unreachable!(),
            }
        }
    });
    std::thread::spawn(move || cancel.cancel()).join().unwrap();
    assert_eq!(waiter.join().unwrap(), Some(Error::Canceled));

    let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(20));
    let done = ctx.done();
    assert_eq!(done.recv_timeout(BOUND), Err(RecvTimeoutError::Closed));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn values_are_found_up_the_chain_and_shadowed() {
    #[derive(Debug, PartialEq)]
    struct User(&'static str);
    #[derive(Debug, PartialEq)]
    struct RequestId(u64);

    let root = Context::background();
    assert_eq!(root.value::<User>(), None);
    let a = root.with_value(User("ann")).with_value(RequestId(1));
    let (b, _c) = a.with_timeout(Duration::from_secs(3600));
    let c = b.with_value(User("bob"));
    let d = c.without_cancel();
    assert_eq!(a.value::<User>(), Some(&User("ann")));
    assert_eq!(b.value::<User>(), Some(&User("ann")));
    assert_eq!(c.value::<User>(), Some(&User("bob")));
    assert_eq!(d.value::<User>(), Some(&User("bob")));
    assert_eq!(d.value::<RequestId>(), Some(&RequestId(1)));
    assert_eq!(d.value::<u64>(), None); // the type is the key: not RequestId's u64
    assert_eq!(d.deadline(), None);
    // Values outlive their context's cancel, and are dropped with the last context.
    let probe = Arc::new(());
    let (e, cancel) = root.with_value(probe.clone()).with_cancel();
    cancel.cancel();
    assert!(e.value::<Arc<()>>().is_some());
    drop(e);
    assert_eq!(Arc::strong_count(&probe), 1);
}

/// A long-lived parent's child list holds only live children: a million children made and
/// cancelled (or dropped) leave none behind, timers included.
#[test]
fn children_made_and_cancelled_leave_the_parent() {
    let _w = watchdog("children_made_and_cancelled_leave_the_parent", 120);
    let n = if common::under_valgrind() {
        10_000
    } else {
        200_000
    };
    rt(1).run(move || {
        let (parent, _cancel) = Context::background().with_cancel();
        let children = |ctx: &Context| {
            let dbg = format!("{ctx:?}");
            let at = dbg.find("children: ").expect("a child count") + "children: ".len();
            dbg[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        };
        let live: Vec<_> = (0..10).map(|_| parent.with_cancel()).collect();
        assert_eq!(children(&parent), 10);
        for i in 0..n {
            let (child, cancel) = if i % 2 == 0 {
                parent.with_cancel()
            } else {
                parent.with_timeout(Duration::from_secs(3600))
            };
            if i % 3 == 0 {
                cancel.cancel(); // cancelled, the context kept a while
                assert!(closed(&child));
            } else {
                drop(cancel);
            }
        }
        assert_eq!(children(&parent), 10);
        drop(live);
        assert_eq!(children(&parent), 0);
        assert_eq!(parent.err(), None);
    });
}

/// Contexts made in a runtime's run work after it returned: a cancel reaches them, and a
/// deadline set there shows once it has passed.
#[test]
fn contexts_outlive_their_runtime() {
    let _w = watchdog("contexts_outlive_their_runtime", 60);
    let ((ctx, cancel), (timed, _c)) = rt(1).run(|| {
        (
            Context::background().with_cancel(),
            Context::background().with_timeout(Duration::from_millis(20)),
        )
    });
    let (child, _cc) = ctx.with_cancel();
    let waiter = std::thread::spawn(move || child.done().recv());
    cancel.cancel();
    assert_eq!(waiter.join().unwrap(), Err(RecvError));
    assert_eq!(ctx.err(), Some(Error::Canceled));

    let deadline = timed.deadline().unwrap();
    while Instant::now() < deadline {
        std::thread::sleep(deadline - Instant::now());
    }
    assert_eq!(timed.err(), Some(Error::DeadlineExceeded));
    assert!(closed(&timed));
}

/// Many goroutines parked on one context's done(), in a select with another channel: one
/// cancel wakes every one of them.
#[test]
fn one_cancel_wakes_every_waiter() {
    let _w = watchdog("one_cancel_wakes_every_waiter", 120);
    let n = if common::under_valgrind() { 200 } else { 5_000 };
    for procs in [1, 2] {
        for round in 0..3 {
            rt(procs).run(move || {
                let (ctx, cancel) = Context::background().with_cancel();
                let (_tx, other) = chan::bounded::<()>(0);
                let parked = Arc::new(AtomicUsize::new(0));
                let woken = Arc::new(AtomicUsize::new(0));
                let hs: Vec<_> = (0..n)
                    .map(|i| {
                        // A third wait on a child of the shared context.
                        let (ctx, c) = if i % 3 == 0 {
                            let (ctx, c) = ctx.with_cancel();
                            (ctx, Some(c))
                        } else {
                            (ctx.clone(), None)
                        };
                        let (other, parked, woken) = (other.clone(), parked.clone(), woken.clone());
                        goexec::spawn(move || {
                            let done = ctx.done();
                            parked.fetch_add(1, Ordering::SeqCst);
                            select! {
                                recv(done) -> _ => {},
                                recv(other) -> _ => unreachable!(),
                            }
                            assert_eq!(ctx.err(), Some(Error::Canceled));
                            woken.fetch_add(1, Ordering::SeqCst);
                            drop(c);
                        })
                    })
                    .collect();
                // Cancel while some wait and some have not started: both must end.
                if round > 0 {
                    while parked.load(Ordering::SeqCst) < n / 2 {
                        goexec::yield_now();
                    }
                }
                cancel.cancel();
                for h in hs {
                    h.join().unwrap();
                }
                assert_eq!(woken.load(Ordering::SeqCst), n);
            });
        }
    }
}

/// Cancels racing from many goroutines and threads at once with a deadline: one error wins,
/// and every context of the tree agrees.
#[test]
fn racing_cancels_agree() {
    let _w = watchdog("racing_cancels_agree", 120);
    let rounds = if common::under_valgrind() { 20 } else { 300 };
    rt(2).run(move || {
        for _ in 0..rounds {
            let (root, cancel) = Context::background().with_timeout(Duration::from_micros(200));
            let cancel = Arc::new(cancel);
            let (child, _c) = root.with_cancel();
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let cancel = cancel.clone();
                    goexec::spawn(move || cancel.cancel())
                })
                .collect();
            let t = std::thread::spawn({
                let cancel = cancel.clone();
                move || cancel.cancel()
            });
            assert_eq!(
                child.done().recv_timeout(BOUND),
                Err(RecvTimeoutError::Closed)
            );
            for h in hs {
                h.join().unwrap();
            }
            t.join().unwrap();
            let e = root.err().expect("cancelled");
            assert_eq!(child.err(), Some(e));
        }
    });
}

/// A reader that reports its context's cancellation as an I/O error stops std's loops:
/// `read_exact` returns the error instead of retrying it.
#[test]
fn a_cancelled_read_is_not_retried_by_std() {
    struct CtxReader {
        ctx: Context,
        reads: usize,
    }
    impl std::io::Read for CtxReader {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            if self.reads > 1000 {
                return Err(std::io::Error::other("retried a thousand times"));
            }
            match self.ctx.err() {
                Some(e) => Err(e.into()),
                None => Ok(0),
            }
        }
    }
    for cancelled in [
        Context::background().with_cancel(),
        Context::background().with_deadline(Instant::now()),
    ] {
        let (ctx, cancel) = cancelled;
        cancel.cancel();
        let want = ctx.err().unwrap();
        let mut r = CtxReader { ctx, reads: 0 };
        let e = std::io::Read::read_exact(&mut r, &mut [0u8; 4]).unwrap_err();
        assert_eq!(r.reads, 1, "read_exact retried: {e}");
        assert_eq!(
            e.get_ref().and_then(|e| e.downcast_ref::<Error>()),
            Some(&want)
        );
    }
}

/// Dropping a long chain of contexts from its leaf needs no stack per level: 100,000
/// `with_value`s, then 100,000 `with_cancel`s, dropped in a goroutine with the default stack.
#[test]
fn a_deep_chain_drops_without_recursion() {
    let _w = watchdog("a_deep_chain_drops_without_recursion", 120);
    const DEPTH: usize = 100_000;
    rt(1).run(|| {
        goexec::spawn(|| {
            let mut ctx = Context::background();
            for i in 0..DEPTH {
                ctx = ctx.with_value(i);
            }
            assert_eq!(ctx.value::<usize>(), Some(&(DEPTH - 1)));
            drop(ctx);
        })
        .join()
        .unwrap();
        goexec::spawn(|| {
            let mut ctx = Context::background();
            let mut cancels = Vec::with_capacity(DEPTH);
            for _ in 0..DEPTH {
                let (c, k) = ctx.with_cancel();
                cancels.push(k);
                ctx = c;
            }
            drop(cancels); // the root's first: one iterative cancel of the chain
            assert_eq!(ctx.err(), Some(Error::Canceled));
            drop(ctx);
        })
        .join()
        .unwrap();
        // Both kinds interleaved, the leaf dropped while every node is live.
        goexec::spawn(|| {
            let mut ctx = Context::background();
            let mut cancels = Vec::with_capacity(DEPTH / 2);
            for i in 0..DEPTH / 2 {
                let (c, k) = ctx.with_value(i).with_cancel();
                cancels.push(k);
                ctx = c;
            }
            drop(ctx);
            while cancels.pop().is_some() {}
        })
        .join()
        .unwrap();
    });
}

/// A deadline that fires cancels a 100,000-deep subtree from the timers' own stack (an M's,
/// or on a plain thread the process-wide timer thread's) without a frame per level, and wakes
/// the leaf's waiter. The deadline leaves time to build the whole chain first (checked: a
/// chain finished after it would be born cancelled, and test less).
#[test]
fn a_deadline_cancels_a_deep_subtree_from_the_timer() {
    let _w = watchdog("a_deadline_cancels_a_deep_subtree_from_the_timer", 120);
    const DEPTH: usize = 100_000;
    let after = if common::under_emulation() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    };
    let deep = move || {
        let (root, root_cancel) = Context::background().with_timeout(after);
        let root_done = root.done();
        let mut ctx = root;
        let mut cancels = Vec::with_capacity(DEPTH);
        for i in 0..DEPTH {
            let (c, k) = ctx.with_value(i).with_cancel();
            cancels.push(k);
            ctx = c;
        }
        assert!(
            !root_done.is_closed(),
            "the deadline passed before the chain was built: lengthen it"
        );
        assert_eq!(
            ctx.done().recv_timeout(BOUND),
            Err(RecvTimeoutError::Closed)
        );
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        (ctx, cancels, root_cancel)
    };
    for procs in [1, 2] {
        rt(procs).run(move || {
            drop(goexec::spawn(deep).join().unwrap());
        });
    }
    // Dropped on this thread after the cancel: the chain again, without recursion.
    drop(deep());
}

/// A `Cancel` that is forgotten keeps its node registered with the parent, as in Go (where
/// the parent's map holds it): until the parent is cancelled, which unlinks it.
#[test]
fn a_forgotten_cancel_stays_registered_until_the_parent_is_cancelled() {
    let (parent, cancel) = Context::background().with_cancel();
    let mut kept = Vec::new();
    for _ in 0..100 {
        let (child, c) = parent.with_cancel();
        std::mem::forget(c);
        kept.push(child.done());
        drop(child);
    }
    assert!(
        format!("{parent:?}").contains("children: 100"),
        "{parent:?}"
    );
    cancel.cancel();
    assert!(format!("{parent:?}").contains("children: 0"), "{parent:?}");
    assert!(kept.iter().all(|d| d.is_closed()));
}

/// A deadline set in a runtime whose `run` has returned still closes `done()` when it
/// passes, for a receiver on a plain thread that waits from before it.
#[test]
fn a_returned_runtimes_deadline_closes_done() {
    let _w = watchdog("a_returned_runtimes_deadline_closes_done", 60);
    let (ctx, _c) = rt(1).run(|| Context::background().with_timeout(Duration::from_millis(50)));
    let done = ctx.done();
    assert_eq!(done.recv_timeout(BOUND), Err(RecvTimeoutError::Closed));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

/// A child made on a plain thread after the runtime returned, inheriting the dead runtime's
/// deadline (its own is later: it arms no timer), closes at that deadline.
#[test]
fn a_child_of_a_returned_runtimes_deadline_closes_at_it() {
    let _w = watchdog("a_child_of_a_returned_runtimes_deadline_closes_at_it", 60);
    let (ctx, _c) = rt(1).run(|| Context::background().with_timeout(Duration::from_millis(50)));
    let (child, _cc) = ctx.with_timeout(Duration::from_secs(3600));
    assert_eq!(child.deadline(), ctx.deadline());
    assert_eq!(
        child.done().recv_timeout(BOUND),
        Err(RecvTimeoutError::Closed)
    );
    assert!(Instant::now() >= ctx.deadline().unwrap());
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

/// A deadline set in one runtime closes `done()` for a goroutine of a later runtime.
#[test]
fn a_returned_runtimes_deadline_closes_done_in_a_later_runtime() {
    let _w = watchdog(
        "a_returned_runtimes_deadline_closes_done_in_a_later_runtime",
        60,
    );
    let (ctx, _c) = rt(1).run(|| Context::background().with_timeout(Duration::from_millis(50)));
    let got = rt(2).run(move || {
        goexec::spawn(move || {
            let r = select! {
                recv(ctx.done()) -> r => r.map_err(|_| "closed"),
                recv(chan::after(BOUND)) -> _ => Ok(()),
            };
            (r, ctx.err())
        })
        .join()
        .unwrap()
    });
    assert_eq!(got, (Err("closed"), Some(Error::DeadlineExceeded)));
}
