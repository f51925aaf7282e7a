//! `time::after_func` (Go's `time.AfterFunc`): the function runs once, in a goroutine of the
//! runtime the timer was made on (on a thread of its own when made on a plain thread, or once
//! that runtime's `run` has returned); stop prevents it and drops it, reset postpones it,
//! dropping the Timer does not cancel it.

mod common;

use goexec::chan::{self, RecvTimeoutError};
use goexec::time::after_func;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(20);
const HOUR: Duration = Duration::from_secs(3600);

fn rt() -> goexec::Runtime {
    goexec::Runtime::builder().procs(2).build().unwrap()
}

#[test]
fn it_runs_once_in_a_goroutine_of_its_own() {
    let _w = common::watchdog("it_runs_once_in_a_goroutine_of_its_own", 60);
    rt().run(|| {
        let (tx, rx) = chan::bounded(2);
        let start = Instant::now();
        let t = after_func(Duration::from_millis(5), move || {
            tx.send((goexec::runtime::goid(), Instant::now())).unwrap();
        });
        let (goid, at) = rx.recv_timeout(BOUND).expect("f ran");
        assert!(goid != 0 && goid != goexec::runtime::goid(), "goid {goid}");
        assert!(at >= start + Duration::from_millis(5));
        // Once: the sender went with f, so the channel closes instead of a second value.
        assert_eq!(rx.recv_timeout(BOUND), Err(RecvTimeoutError::Closed));
        assert!(!t.stop(), "it had fired");
        assert!(t.try_recv().is_none(), "its channel never receives");
        assert_eq!(
            t.receiver().recv_timeout(Duration::from_millis(10)),
            Err(RecvTimeoutError::Timeout)
        );
    });
}

#[test]
fn stop_before_it_fires_prevents_it() {
    let _w = common::watchdog("stop_before_it_fires_prevents_it", 60);
    rt().run(|| {
        let (tx, rx) = chan::bounded::<()>(1);
        let t = after_func(Duration::from_millis(20), move || tx.send(()).unwrap());
        assert!(t.stop());
        assert!(!t.stop());
        // f never ran: the stop dropped it, and its sender with it, so the channel is closed
        // and empty.
        assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Closed));
        drop(t);
    });
}

#[test]
fn reset_postpones_it() {
    let _w = common::watchdog("reset_postpones_it", 60);
    rt().run(|| {
        let (tx, rx) = chan::bounded(1);
        let t = after_func(HOUR, move || tx.send(Instant::now()).unwrap());
        let reset_at = Instant::now();
        assert!(t.reset(Duration::from_millis(5)), "it was pending");
        let at = rx.recv_timeout(BOUND).expect("f ran after the reset");
        assert!(at >= reset_at + Duration::from_millis(5));
        assert!(!t.reset(Duration::from_millis(1)), "f had run");
        assert_eq!(rx.recv_timeout(BOUND), Err(RecvTimeoutError::Closed));
    });
}

#[test]
fn a_dropped_timer_still_runs_its_function() {
    let _w = common::watchdog("a_dropped_timer_still_runs_its_function", 60);
    let rx = rt().run(|| {
        let (tx, rx) = chan::bounded(1);
        after_func(Duration::from_millis(2), move || tx.send("ran").unwrap());
        assert_eq!(rx.recv_timeout(BOUND), Ok("ran"));
        let (tx, rx) = chan::bounded(1);
        after_func(Duration::from_millis(2), move || tx.send("ran").unwrap());
        rx
    });
    // Made on a plain thread and dropped too.
    let (tx, rx2) = chan::bounded(1);
    after_func(Duration::from_millis(2), move || tx.send("ran").unwrap());
    assert_eq!(rx2.recv_timeout(BOUND), Ok("ran"));
    drop(rx);
}

#[test]
fn made_on_a_plain_thread_it_runs_on_a_thread_of_its_own() {
    let _w = common::watchdog("made_on_a_plain_thread_it_runs_on_a_thread_of_its_own", 60);
    let (tx, rx) = chan::bounded(1);
    let t = after_func(Duration::from_millis(5), move || {
        let me = std::thread::current();
        tx.send((me.name().map(str::to_owned), goexec::runtime::goid()))
            .unwrap();
    });
    let (name, goid) = rx.recv_timeout(BOUND).expect("f ran");
    assert_eq!(name.as_deref(), Some("goexec-after-func"));
    assert_eq!(goid, 0);
    assert!(!t.stop());
    let (tx, rx) = chan::bounded::<()>(1);
    let t = after_func(Duration::from_millis(20), move || tx.send(()).unwrap());
    assert!(t.stop());
    // Dropped unrun.
    assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Closed));
}

#[test]
fn a_panic_in_it_is_a_goroutines_panic() {
    let _w = common::watchdog("a_panic_in_it_is_a_goroutines_panic", 60);
    // The default policy reports the panic and the runtime goes on.
    rt().run(|| {
        let (tx, rx) = chan::bounded(1);
        after_func(Duration::from_millis(1), move || {
            tx.send(()).unwrap();
            panic!("inside after_func");
        });
        rx.recv_timeout(BOUND).expect("f ran");
        let (tx, rx) = chan::bounded(1);
        after_func(Duration::from_millis(1), move || tx.send(7).unwrap());
        assert_eq!(rx.recv_timeout(BOUND), Ok(7), "the runtime went on");
    });
    // On a plain thread: that thread's panic.
    let (tx, rx) = chan::bounded(1);
    after_func(Duration::from_millis(1), move || {
        tx.send(()).unwrap();
        panic!("inside a plain thread's after_func");
    });
    rx.recv_timeout(BOUND).expect("f ran");
    let (tx, rx) = chan::bounded(1);
    after_func(Duration::from_millis(1), move || tx.send(7).unwrap());
    assert_eq!(rx.recv_timeout(BOUND), Ok(7), "the timer thread went on");
}

/// A timer made in a goroutine outlives its runtime: once `run` returned, its entry is on the
/// process-wide heap and f runs on a thread of its own, as a plain thread's after_func.
#[test]
fn it_runs_after_its_runtime_returned() {
    let _w = common::watchdog("it_runs_after_its_runtime_returned", 60);
    let rx = rt().run(|| {
        let (tx, rx) = chan::bounded::<Option<String>>(1);
        after_func(Duration::from_millis(30), move || {
            let name = std::thread::current().name().map(str::to_owned);
            tx.send(name).unwrap();
        });
        rx
    });
    let name = rx.recv_timeout(BOUND).expect("f ran after run returned");
    assert_eq!(name.as_deref(), Some("goexec-after-func"));
}

/// An after_func made in a runtime and reset after its `run` returned runs f; one stopped
/// after `run` returned drops f, and with it what f captured, at once (nothing keeps the
/// runtime's scheduler alive through it either).
#[test]
fn reset_or_stop_after_its_runtime_returned() {
    let _w = common::watchdog("reset_or_stop_after_its_runtime_returned", 60);
    let (tx, rx) = chan::bounded::<()>(1);
    let captured = Arc::new(());
    let c = captured.clone();
    let (reset, stopped) = rt().run(move || {
        let reset = after_func(HOUR, move || tx.send(()).unwrap());
        let stopped = after_func(HOUR, move || drop(c));
        (reset, stopped)
    });
    assert!(reset.reset(Duration::from_millis(5)), "it was pending");
    assert_eq!(rx.recv_timeout(BOUND), Ok(()), "f ran after the reset");
    assert_eq!(Arc::strong_count(&captured), 2, "f waits for its hour");
    assert!(stopped.reset(HOUR), "it was pending");
    assert!(stopped.stop());
    assert_eq!(Arc::strong_count(&captured), 1, "f kept after stop");
    drop(stopped);
}

/// Stop drops f and what it captured at once, not at the stale entry's deadline or sweep.
fn stop_drops_f() {
    let captured = Arc::new(());
    let c = captured.clone();
    let t = after_func(HOUR, move || drop(c));
    assert_eq!(Arc::strong_count(&captured), 2);
    assert!(t.stop());
    assert_eq!(Arc::strong_count(&captured), 1, "f kept after stop");
    assert!(!t.reset(Duration::from_millis(1)), "nothing left to start");
    drop(t);
}

#[test]
fn stop_drops_f_at_once_in_a_goroutine() {
    let _w = common::watchdog("stop_drops_f_at_once_in_a_goroutine", 60);
    rt().run(stop_drops_f);
}

#[test]
fn stop_drops_f_at_once_on_a_plain_thread() {
    let _w = common::watchdog("stop_drops_f_at_once_on_a_plain_thread", 60);
    stop_drops_f();
}

/// after_funcs due as their runtime shuts down (fired by an M as main returns, or moved to
/// the process-wide heap at teardown): each f runs or is dropped, none is kept.
#[test]
fn due_as_its_runtime_shuts_down_f_runs_or_is_dropped() {
    let _w = common::watchdog("due_as_its_runtime_shuts_down_f_runs_or_is_dropped", 120);
    let captured = Arc::new(());
    for i in 0..50u64 {
        let c = captured.clone();
        rt().run(move || {
            let c2 = c.clone();
            goexec::spawn(move || {
                after_func(Duration::from_micros(i * 20), move || drop(c2));
            });
            after_func(Duration::from_micros(i * 10), move || drop(c));
        });
    }
    let start = Instant::now();
    while Arc::strong_count(&captured) > 1 {
        assert!(
            start.elapsed() < BOUND,
            "{} functions kept",
            Arc::strong_count(&captured) - 1
        );
        std::thread::sleep(Duration::from_millis(1)); // polling, bounded above
    }
}
