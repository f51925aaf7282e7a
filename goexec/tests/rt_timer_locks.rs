//! Timer operations that take two locks must not deadlock against each other: a receive with
//! a deadline on a `Timer`'s own channel (the channel's lock, then the timer heap, whose sweep
//! looks at the timer's stale entries) racing `Timer::reset` (the timer's state, then its
//! channel, which reset drains).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_deadline_on_a_timers_channel_races_its_reset_without_deadlock() {
    let _w = common::watchdog(
        "a_deadline_on_a_timers_channel_races_its_reset_without_deadlock",
        30,
    );
    let run_for = if common::under_valgrind() {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(3)
    };
    let rt = goexec::Runtime::builder().procs(1).build().unwrap();
    rt.run(move || {
        let t = Arc::new(goexec::time::Timer::new(Duration::from_secs(3600)));
        let stop = Arc::new(AtomicBool::new(false));
        let (t2, stop2) = (t.clone(), stop.clone());
        // Reset in a blocking section, so that it runs on a thread of its own beside the
        // receiving goroutine even at procs 1.
        let resetter = goexec::spawn(move || {
            goexec::blocking(|| {
                let mut n = 0u64;
                while !stop2.load(Ordering::Relaxed) {
                    t2.reset(Duration::from_secs(3600));
                    n += 1;
                }
                n
            })
        });
        let start = Instant::now();
        let mut received = 0u64;
        while start.elapsed() < run_for {
            // Each deadline is an entry in the heap, cancelled at once: the heap grows and
            // sweeps, looking at the timer's stale entries, while reset holds its state.
            if t.receiver().recv_timeout(Duration::from_micros(20)).is_ok() {
                received += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let resets = resetter.join().unwrap();
        assert!(resets > 0, "the resetting goroutine never ran");
        // A timer an hour away never fires within the test.
        assert_eq!(received, 0);
    });
}

/// A receive with a deadline holds its channel's lock while it arms the deadline; the push
/// may sweep the heap, and a swept entry may hold the last sender of that very channel (a
/// dropped Timer whose receiver was cloned): dropping it there closed the channel under its
/// own lock. Swept entries are dropped by the timers instead.
#[test]
fn a_sweep_that_drops_a_timers_last_sender_does_not_close_its_channel_under_its_lock() {
    let _w = common::watchdog(
        "a_sweep_that_drops_a_timers_last_sender_does_not_close_its_channel_under_its_lock",
        30,
    );
    let rt = goexec::Runtime::builder().procs(1).build().unwrap();
    rt.run(|| {
        let t = goexec::time::Timer::new(Duration::from_secs(3600));
        let rx = t.receiver().clone();
        // Its entry is now stale and holds the channel's only sender.
        drop(t);
        // Enough live timers that the next push sweeps.
        let _keep: Vec<_> = (0..63)
            .map(|_| goexec::time::Timer::new(Duration::from_secs(3600)))
            .collect();
        // The swept sender closes the channel once the timers drop it: the receive sees
        // either its deadline or the close, never a hang.
        let got = rx.recv_timeout(Duration::from_millis(5));
        assert!(got.is_err(), "a dropped timer sent {got:?}");
    });
}
