//! Timers nobody can receive from are collected (Go 1.23): the `after` of a `select!` that
//! another case won, dropped at once, leaves neither its heap entry nor its channel behind
//! until its deadline, even in a loop that never parks. RSS is measured in a fresh child
//! process per case, after a warm-up round.

mod common;

use goexec::chan;
use goexec::select;
use goexec::time::Timer;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// Iterations measured (after as many to warm up). Before collection, each left its timer
/// (entry, shared state, channel) behind until the deadline: ~270 B, 77 MiB in all.
const SELECTS: usize = 300_000;

/// Timers made and stopped, measured after a warm-up as long.
const STOPS: usize = 1_000_000;

/// The bound on RSS growth, in KiB.
const BOUND_KIB: u64 = 16 * 1024;

/// Set in the child: which case to measure.
const CHILD: &str = "GOEXEC_TIMER_COLLECT_CASE";

/// `n` selects of a value that is always ready against a fresh one-hour `after`: the value
/// wins every time and the `after` is dropped unreceived. Never parks.
fn selects(n: usize) {
    let (tx, rx) = chan::bounded::<usize>(1);
    for i in 0..n {
        tx.send(i).unwrap();
        select! {
            recv(rx) -> v => assert_eq!(v, Ok(i)),
            recv(chan::after(HOUR)) -> _ => unreachable!("an hour passed"),
        }
    }
}

/// `n` one-hour timers, each stopped at once.
fn stops(n: usize) {
    for _ in 0..n {
        let t = goexec::time::Timer::new(HOUR);
        assert!(t.stop());
    }
}

/// A warm-up round, then the growth over the measured one.
fn grown(round: impl Fn()) -> u64 {
    round();
    let before = common::rss_kib();
    round();
    common::rss_kib().saturating_sub(before)
}

/// The child's part: prints the growth of the measured round.
fn child(case: &str) {
    let on_one_p = |f: fn() -> u64| goexec::Runtime::builder().procs(1).build().unwrap().run(f);
    let grew = match case {
        "select_procs_1" => on_one_p(|| grown(|| selects(SELECTS))),
        "select_plain_thread" => grown(|| selects(SELECTS)),
        "stop_procs_1" => on_one_p(|| grown(|| stops(STOPS))),
        "stop_plain_thread" => grown(|| stops(STOPS)),
        // Without a P all along: nobody runs this P's timers while the loop holds the M.
        "stop_blocking_procs_1" => on_one_p(|| goexec::blocking(|| grown(|| stops(STOPS)))),
        _ => panic!("no case {case}"),
    };
    println!("grew {grew} KiB");
}

/// Runs `test` again in a child that measures `case`; returns the RSS growth it saw, in KiB.
fn measure(test: &str, case: &str) -> u64 {
    let out = common::run_test_child(test, &[(CHILD, case)], Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints the test's name on the same line.
    let grew = stdout
        .split("grew ")
        .nth(1)
        .and_then(|rest| rest.split(" KiB").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no measurement in the child's output: {stdout}"));
    eprintln!("{case}: grew {grew} KiB");
    grew
}

#[test]
fn unreceived_afters_in_a_select_loop_are_collected_at_procs_1() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog(
        "unreceived_afters_in_a_select_loop_are_collected_at_procs_1",
        300,
    );
    let grew = measure(
        "unreceived_afters_in_a_select_loop_are_collected_at_procs_1",
        "select_procs_1",
    );
    assert!(grew < BOUND_KIB, "{SELECTS} selects grew RSS by {grew} KiB");
}

#[test]
fn unreceived_afters_in_a_select_loop_are_collected_on_a_plain_thread() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog(
        "unreceived_afters_in_a_select_loop_are_collected_on_a_plain_thread",
        300,
    );
    let grew = measure(
        "unreceived_afters_in_a_select_loop_are_collected_on_a_plain_thread",
        "select_plain_thread",
    );
    assert!(grew < BOUND_KIB, "{SELECTS} selects grew RSS by {grew} KiB");
}

#[test]
fn stopped_timers_stay_bounded_at_procs_1() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog("stopped_timers_stay_bounded_at_procs_1", 300);
    let grew = measure("stopped_timers_stay_bounded_at_procs_1", "stop_procs_1");
    assert!(
        grew < BOUND_KIB,
        "{STOPS} stopped timers grew RSS by {grew} KiB"
    );
}

#[test]
fn stopped_timers_stay_bounded_on_a_plain_thread() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog("stopped_timers_stay_bounded_on_a_plain_thread", 300);
    let grew = measure(
        "stopped_timers_stay_bounded_on_a_plain_thread",
        "stop_plain_thread",
    );
    assert!(
        grew < BOUND_KIB,
        "{STOPS} stopped timers grew RSS by {grew} KiB"
    );
}

#[test]
fn stopped_timers_stay_bounded_in_a_blocking_section_at_procs_1() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog(
        "stopped_timers_stay_bounded_in_a_blocking_section_at_procs_1",
        300,
    );
    let grew = measure(
        "stopped_timers_stay_bounded_in_a_blocking_section_at_procs_1",
        "stop_blocking_procs_1",
    );
    assert!(
        grew < BOUND_KIB,
        "{STOPS} stopped timers grew RSS by {grew} KiB"
    );
}

/// A waker that counts the wakes that found `mu` held (a real one would lock it: deadlock).
struct LockingWaker {
    mu: Arc<Mutex<()>>,
    woken: AtomicUsize,
    under_lock: AtomicUsize,
}

impl Wake for LockingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
        if self.mu.try_lock().is_err() {
            self.under_lock.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The Timer API drops what a sweep took out and nothing else: another timer that is due (a
/// `Sleep`'s wake) is not fired on the caller's stack, under a lock the caller holds.
#[test]
fn the_timer_api_fires_no_other_timer_under_the_callers_lock() {
    let _w = common::watchdog(
        "the_timer_api_fires_no_other_timer_under_the_callers_lock",
        60,
    );
    let rt = goexec::Runtime::builder().procs(1).build().unwrap();
    let (woken, under) = rt.run(|| {
        let mu = Arc::new(Mutex::new(()));
        let lw = Arc::new(LockingWaker {
            mu: mu.clone(),
            woken: AtomicUsize::new(0),
            under_lock: AtomicUsize::new(0),
        });
        let waker = Waker::from(lw.clone());
        // Short (well under sysmon's 10 ms, after which another M would run the timers), but
        // long enough to be pending when polled on a slow machine (valgrind).
        let (_s, due) = [200, 1_000, 4_000]
            .into_iter()
            .find_map(|us| {
                let due = Instant::now() + Duration::from_micros(us);
                let mut s = Box::pin(goexec::time::sleep_until_async(due));
                let pending = s
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending();
                pending.then_some((s, due))
            })
            .expect("a Sleep still pending when first polled");
        // Until it is due, without a scheduling point (nobody runs the timers meanwhile).
        while Instant::now() <= due {}
        let g = mu.lock().unwrap();
        // Enough stopped timers for several sweeps, each leaving a batch due at once.
        let ts: Vec<_> = (0..200)
            .map(|_| {
                let t = Timer::new(HOUR);
                t.stop();
                t
            })
            .collect();
        drop(g);
        drop(ts);
        // The scheduler fires it at its next look at the timers.
        let t0 = Instant::now();
        while lw.woken.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(20) {
            goexec::yield_now();
        }
        (
            lw.woken.load(Ordering::SeqCst),
            lw.under_lock.load(Ordering::SeqCst),
        )
    });
    assert_eq!(
        under, 0,
        "a Sleep's waker ran inside Timer::new under the caller's lock"
    );
    assert_eq!(woken, 1, "the Sleep's timer never fired");
}

/// The Timer API inside a blocking section (the M has no P) leaves the goroutine on its
/// thread, locked to it or not, whatever sweeps happen meanwhile.
#[test]
fn the_timer_api_in_a_blocking_section_keeps_the_thread() {
    let _w = common::watchdog("the_timer_api_in_a_blocking_section_keeps_the_thread", 120);
    for procs in [1, 2] {
        for locked in [false, true] {
            let moved = goexec::Runtime::builder()
                .procs(procs)
                .build()
                .unwrap()
                .run(move || {
                    if locked {
                        goexec::lock_os_thread();
                    }
                    // Another goroutine keeps the Ps busy with timers.
                    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let s = stop.clone();
                    let h = goexec::spawn(move || {
                        while !s.load(Ordering::Relaxed) {
                            goexec::time::sleep(Duration::from_micros(50));
                        }
                    });
                    // SAFETY: gettid has no preconditions.
                    let tid = unsafe { libc::gettid() };
                    let moved = goexec::blocking(|| {
                        (0..20_000)
                            .filter(|_| {
                                Timer::new(HOUR).stop();
                                // SAFETY: as above.
                                let now = unsafe { libc::gettid() };
                                now != tid
                            })
                            .count()
                    });
                    stop.store(true, Ordering::Relaxed);
                    h.join().unwrap();
                    if locked {
                        goexec::unlock_os_thread();
                    }
                    moved
                });
            assert_eq!(moved, 0, "procs {procs}, locked {locked}: left its thread");
        }
    }
}
