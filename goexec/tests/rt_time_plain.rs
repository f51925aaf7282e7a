//! Timers on plain threads (threads not running a goroutine): `after`, `tick`, `Timer`,
//! `Ticker`, `Sleep`, `timeout`, before any runtime exists (in a child process: the tests of
//! one binary share the process, and another test may have built a runtime), beside one, and
//! after `run` returned. They go to the process-wide timer thread.

mod common;

use goexec::chan::{self, RecvTimeoutError};
use goexec::select;
use goexec::time::{self, Ticker, Timer};
use std::time::{Duration, Instant};

/// A bound for receives that should complete within milliseconds: generous for a loaded
/// 2-vCPU machine and valgrind, short enough to fail rather than hang.
const BOUND: Duration = Duration::from_secs(20);

const HOUR: Duration = Duration::from_secs(3600);

/// Set in the child run by `everything_works_before_any_runtime_exists`.
const CHILD: &str = "GOEXEC_TIME_PLAIN_CHILD";

fn after_fires() {
    let start = Instant::now();
    let at = chan::after(Duration::from_millis(5))
        .recv_timeout(BOUND)
        .expect("after fired");
    assert!(at >= start + Duration::from_millis(5));
    assert!(Instant::now() >= at);
}

fn select_with_after() {
    let (_tx, rx) = chan::bounded::<u32>(0);
    let start = Instant::now();
    select! {
        recv(rx) -> v => panic!("nobody sends, got {v:?}"),
        recv(time::after(Duration::from_millis(5))) -> at => {
            assert!(at.expect("a deadline") >= start + Duration::from_millis(5));
        }
    }
}

fn ticker_ticks() {
    // Read before the ticker starts: a thread preempted for over a tick between the two
    // would otherwise read a later instant than the first tick's.
    let mut last = Instant::now();
    let t = Ticker::new(Duration::from_millis(2));
    for _ in 0..3 {
        let at = t.receiver().recv_timeout(BOUND).expect("the ticker ticked");
        assert!(at >= last, "ticks go forward");
        last = at;
    }
    t.stop();
    let tick = time::tick(Duration::from_millis(2));
    for _ in 0..2 {
        tick.recv_timeout(BOUND).expect("tick ticked");
    }
}

fn timer_stop_and_reset() {
    let t = Timer::new(Duration::from_secs(3600));
    assert!(t.stop(), "it was pending");
    assert!(!t.stop());
    assert!(!t.reset(Duration::from_millis(2)), "it was stopped");
    t.receiver().recv_timeout(BOUND).expect("the reset fired");
    assert!(
        !t.reset(Duration::from_secs(3600)),
        "it had fired and been received"
    );
    assert!(t.stop(), "the reset made it pending");
    // Stopped before it fires: nothing comes.
    let t = Timer::new(Duration::from_millis(20));
    assert!(t.stop());
    assert_eq!(
        t.receiver().recv_timeout(Duration::from_millis(60)),
        Err(RecvTimeoutError::Timeout)
    );
}

fn sleep_async_completes() {
    let start = Instant::now();
    futures::executor::block_on(time::sleep_async(Duration::from_millis(5)));
    assert!(start.elapsed() >= Duration::from_millis(5));
    let start = Instant::now();
    goexec::block_on(time::sleep_async(Duration::from_millis(5)));
    assert!(start.elapsed() >= Duration::from_millis(5));
    // A reset Sleep waits for its new deadline.
    let mut s = time::sleep_async(Duration::from_secs(3600));
    s.reset(Instant::now() + Duration::from_millis(3));
    futures::executor::block_on(s);
}

fn timeout_runs_on_a_thread() {
    assert_eq!(time::timeout(BOUND, || 6 * 7), Ok(42));
    let (tx, rx) = chan::bounded::<()>(0);
    // The call waits for a release that comes only after the timeout: it times out.
    let r = time::timeout(Duration::from_millis(5), move || rx.recv().is_ok());
    assert!(r.is_err());
    drop(tx);
    let caught = std::panic::catch_unwind(|| time::timeout(BOUND, || panic!("inside timeout")));
    let payload = caught.expect_err("the panic continues in the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inside timeout"));
}

fn everything() {
    after_fires();
    select_with_after();
    ticker_ticks();
    timer_stop_and_reset();
    sleep_async_completes();
    timeout_runs_on_a_thread();
}

#[test]
fn after_on_a_plain_thread() {
    let _w = common::watchdog("after_on_a_plain_thread", 60);
    after_fires();
}

#[test]
fn select_with_after_on_a_plain_thread() {
    let _w = common::watchdog("select_with_after_on_a_plain_thread", 60);
    select_with_after();
}

#[test]
fn ticker_and_tick_on_a_plain_thread() {
    let _w = common::watchdog("ticker_and_tick_on_a_plain_thread", 60);
    ticker_ticks();
}

#[test]
fn timer_stop_and_reset_on_a_plain_thread() {
    let _w = common::watchdog("timer_stop_and_reset_on_a_plain_thread", 60);
    timer_stop_and_reset();
}

#[test]
fn sleep_async_on_a_plain_thread() {
    let _w = common::watchdog("sleep_async_on_a_plain_thread", 60);
    sleep_async_completes();
}

#[test]
fn timeout_on_a_plain_thread() {
    let _w = common::watchdog("timeout_on_a_plain_thread", 60);
    timeout_runs_on_a_thread();
}

/// A `Sleep` armed in a goroutine (polled once) and returned from `run` completes when an
/// executor on a plain thread polls it after the runtime has gone, and in a later runtime: its
/// timer was dropped with the runtime, and the next poll arms it again where it runs.
#[test]
fn a_sleep_armed_in_a_runtime_completes_after_run_returned() {
    use std::future::Future;
    let _w = common::watchdog(
        "a_sleep_armed_in_a_runtime_completes_after_run_returned",
        60,
    );
    let armed = |d: Duration| {
        goexec::Runtime::builder()
            .procs(1)
            .build()
            .unwrap()
            .run(move || {
                let mut s = Box::pin(time::sleep_async(d));
                let waker = futures::task::noop_waker();
                assert!(s
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(&waker))
                    .is_pending());
                s
            })
    };
    // Polled again before its deadline, so that the wake must come from a timer: the
    // duration doubles until the run (a first teardown is slow under valgrind) takes less.
    let pending = || {
        let mut d = Duration::from_millis(100);
        loop {
            let s = armed(d);
            if !s.is_elapsed() {
                return s;
            }
            d *= 2;
            assert!(
                d < Duration::from_secs(30),
                "every run took longer than its sleep"
            );
        }
    };
    futures::executor::block_on(pending());
    let s = pending();
    let later = goexec::Runtime::builder().procs(1).build().unwrap();
    later.run(move || goexec::block_on(s));
}

/// A `Sleep` armed in a goroutine, then handed to a plain thread's executor that polls it
/// while the runtime still runs (the timer stays in the runtime's heap): when the runtime
/// shuts down with it pending, the executor is woken and the Sleep arms itself again.
#[test]
fn a_sleep_handed_to_a_thread_survives_its_runtimes_end() {
    use std::future::Future;
    let _w = common::watchdog("a_sleep_handed_to_a_thread_survives_its_runtimes_end", 60);
    let (polled_tx, polled_rx) = std::sync::mpsc::channel::<()>();
    let (fut_tx, fut_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut s: std::pin::Pin<Box<time::Sleep>> = fut_rx.recv().unwrap();
        let mut told = Some(polled_tx);
        futures::executor::block_on(std::future::poll_fn(|cx| {
            let r = s.as_mut().poll(cx);
            if let Some(tx) = told.take() {
                tx.send(()).unwrap(); // polled once here, while the runtime runs
            }
            r
        }));
    });
    goexec::Runtime::builder()
        .procs(1)
        .build()
        .unwrap()
        .run(move || {
            let mut s = Box::pin(time::sleep_async(Duration::from_millis(300)));
            let waker = futures::task::noop_waker();
            assert!(s
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker))
                .is_pending());
            fut_tx.send(s).unwrap();
            polled_rx.recv_timeout(BOUND).expect("the thread polled");
        });
    thread.join().unwrap();
}

/// Everything again on a thread after a runtime's `run` returned; a timer made in that
/// runtime's goroutine and pending when it returned still fires (it moved to the process-wide
/// heap).
#[test]
fn everything_works_after_run_returned() {
    let _w = common::watchdog("everything_works_after_run_returned", 120);
    let rt = goexec::Runtime::builder().procs(1).build().unwrap();
    let from_the_runtime = rt.run(|| time::after(Duration::from_millis(20)));
    everything();
    assert!(
        from_the_runtime.recv_timeout(BOUND).is_ok(),
        "a pending after of a runtime that shut down never fired"
    );
}

/// A `Timer` and a `Ticker` made in a goroutine keep working once their runtime's `run` has
/// returned: a reset from a plain thread (or a later runtime's goroutine) goes to the
/// process-wide heap, and they fire.
#[test]
fn a_runtimes_timer_and_ticker_reset_after_run_returned_fire() {
    let _w = common::watchdog(
        "a_runtimes_timer_and_ticker_reset_after_run_returned_fire",
        60,
    );
    let (t, ticker) = goexec::Runtime::builder()
        .procs(1)
        .build()
        .unwrap()
        .run(|| (Timer::new(HOUR), Ticker::new(HOUR)));
    let start = Instant::now();
    assert!(t.reset(Duration::from_millis(5)), "it was pending");
    ticker.reset(Duration::from_millis(2));
    let at = t.receiver().recv_timeout(BOUND).expect("the timer fired");
    assert!(at >= start + Duration::from_millis(5));
    let a = ticker.receiver().recv_timeout(BOUND).expect("a tick");
    let b = ticker.receiver().recv_timeout(BOUND).expect("another tick");
    assert!(b > a);
    ticker.stop();
    // From a later runtime's goroutine too.
    let t = goexec::Runtime::builder()
        .procs(1)
        .build()
        .unwrap()
        .run(move || {
            assert!(!t.reset(Duration::from_millis(1)), "it had been received");
            t.recv();
            t
        });
    assert!(!t.stop());
}

/// A timer made on a plain thread fires into a goroutine that receives it, and a goroutine's
/// timers still live on its runtime beside it.
#[test]
fn a_plain_threads_timer_wakes_a_goroutine() {
    let _w = common::watchdog("a_plain_threads_timer_wakes_a_goroutine", 60);
    let t = Timer::new(Duration::from_millis(5));
    let tick = time::tick(Duration::from_millis(1));
    let got = goexec::Runtime::builder()
        .procs(2)
        .build()
        .unwrap()
        .run(move || {
            let a = t.recv();
            let b = tick.recv().unwrap();
            let c = time::after(Duration::from_millis(1)).recv().unwrap();
            (a, b, c)
        });
    assert!(got.2 >= got.0);
}

/// Everything in a fresh process, before any runtime was built there.
#[test]
fn everything_works_before_any_runtime_exists() {
    if std::env::var_os(CHILD).is_some() {
        let _w = common::watchdog("child", 120);
        everything();
        println!("child done");
        return;
    }
    let out = common::run_test_child(
        "everything_works_before_any_runtime_exists",
        &[(CHILD, "1")],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child done"),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
