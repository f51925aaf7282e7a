//! `lock_os_thread`: a locked goroutine stays on its OS thread through every kind of switch
//! while other goroutines churn the Ps between threads, where an unlocked one in the same
//! setup moves; after `unlock_os_thread` it moves again; locks nest.

mod common;

use common::watchdog;
use goexec::chan::{self, Receiver, Sender};
use goexec::Runtime;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Switches per check; an unlocked goroutine in this setup changes threads at about 40% of
/// them.
const SWITCHES: usize = 1_000;

/// The calling OS thread's id. A system call each time, so it cannot be read once and reused
/// after a switch, as a thread-local such as `std::thread::current()`'s could be.
fn tid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// The subject's end of a goroutine that answers each request.
struct Feed {
    ask: Sender<()>,
    answer: Receiver<()>,
}

impl Feed {
    /// One switch point of each kind in turn: a receive, a sleep, a yield.
    fn switch(&self, i: usize) {
        match i % 3 {
            0 => {
                self.ask.send(()).unwrap();
                self.answer.recv().unwrap();
            }
            1 => goexec::time::sleep(Duration::from_micros(20)),
            _ => goexec::yield_now(),
        }
    }

    /// Goes through `n` switch points; the thread it ran on after each.
    fn switches(&self, n: usize) -> Vec<i64> {
        (0..n)
            .map(|i| {
                self.switch(i);
                tid()
            })
            .collect()
    }

    /// Goes through switch points until the goroutine runs on a thread other than `from`, at
    /// most `SWITCHES` of them; whether it moved.
    fn moves_from(&self, from: i64) -> bool {
        (0..SWITCHES).any(|i| {
            self.switch(i);
            tid() != from
        })
    }
}

/// Runs `subject` in a goroutine at procs 2, beside four goroutines that keep the Ps busy and
/// moving between threads, as programs making blocking calls do.
fn busy_run<R: Send + 'static>(subject: impl FnOnce(&Feed) -> R + Send + 'static) -> R {
    Runtime::builder().procs(2).build().unwrap().run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                goexec::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // Long enough for sysmon to hand the P, and the goroutines queued
                        // on it, to another thread.
                        goexec::blocking(|| std::thread::sleep(Duration::from_micros(100)));
                        for _ in 0..200 {
                            std::hint::spin_loop();
                        }
                        goexec::yield_now();
                    }
                })
            })
            .collect();
        let (ask, asked) = chan::bounded::<()>(1);
        let (answer, answered) = chan::bounded::<()>(0);
        // Ends when the subject drops its end.
        let feeder = goexec::spawn(move || {
            for () in asked.iter() {
                if answer.send(()).is_err() {
                    break;
                }
            }
        });
        let feed = Feed {
            ask,
            answer: answered,
        };
        let r = goexec::spawn(move || subject(&feed)).join().unwrap();
        stop.store(true, Ordering::Relaxed);
        for h in busy {
            h.join().unwrap();
        }
        feeder.join().unwrap();
        r
    })
}

#[test]
fn an_unlocked_goroutine_moves_between_threads() {
    // The control for the tests below: this setup does move goroutines.
    let _w = watchdog("an_unlocked_goroutine_moves_between_threads", 120);
    let (start, seen) = busy_run(|feed| (tid(), feed.switches(SWITCHES)));
    assert!(
        seen.iter().any(|&t| t != start),
        "an unlocked goroutine stayed on thread {start} through {SWITCHES} switch points"
    );
}

#[test]
fn a_locked_goroutine_stays_on_its_thread_until_unlocked() {
    let _w = watchdog("a_locked_goroutine_stays_on_its_thread_until_unlocked", 120);
    let (locked, seen, moved) = busy_run(|feed| {
        goexec::lock_os_thread();
        let locked = tid();
        let seen = feed.switches(SWITCHES);
        goexec::unlock_os_thread();
        (locked, seen, feed.moves_from(locked))
    });
    let elsewhere = seen.iter().filter(|&&t| t != locked).count();
    assert_eq!(
        elsewhere, 0,
        "locked to thread {locked}, it ran elsewhere after {elsewhere} of {SWITCHES} switches"
    );
    assert!(
        moved,
        "unlocked, the goroutine stayed on thread {locked} through {SWITCHES} switch points"
    );
}

#[test]
fn lock_os_thread_nests() {
    let _w = watchdog("lock_os_thread_nests", 120);
    let (locked, twice, once, moved) = busy_run(|feed| {
        goexec::lock_os_thread();
        goexec::lock_os_thread();
        let locked = tid();
        let twice = feed.switches(SWITCHES / 2);
        // One lock is left: still pinned.
        goexec::unlock_os_thread();
        let once = feed.switches(SWITCHES / 2);
        goexec::unlock_os_thread();
        (locked, twice, once, feed.moves_from(locked))
    });
    let elsewhere = |seen: &[i64]| seen.iter().filter(|&&t| t != locked).count();
    assert_eq!(
        elsewhere(&twice),
        0,
        "locked twice to thread {locked}, it ran elsewhere"
    );
    assert_eq!(
        elsewhere(&once),
        0,
        "locked twice and unlocked once, it left thread {locked}"
    );
    assert!(
        moved,
        "unlocked as often as locked, the goroutine stayed on thread {locked} through \
         {SWITCHES} switch points"
    );
}
