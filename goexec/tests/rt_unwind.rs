//! A goroutine that parks or yields while it unwinds (a destructor that blocks) keeps std's
//! panic state, which std keeps per thread: it stays on its thread until the unwind is over,
//! and no other goroutine runs on that thread meanwhile.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Switches the unwinding goroutine makes: half sleeps (parks), half yields.
const SWITCHES: usize = 200;

fn tid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// What the destructor saw while its goroutine unwound.
#[derive(Debug, Default)]
struct Seen {
    tid: i64,
    /// Resumes on which `panicking()` was false.
    not_panicking: usize,
    /// Resumes on another thread than the unwind started on.
    moved: usize,
}

/// Parks and yields from its destructor, recording what it sees (it must not panic: a panic
/// while unwinding aborts).
struct SwitchOnDrop(Arc<Mutex<Option<Seen>>>);

impl Drop for SwitchOnDrop {
    fn drop(&mut self) {
        let mut seen = Seen {
            tid: tid(),
            ..Seen::default()
        };
        for i in 0..SWITCHES {
            if i % 2 == 0 {
                goexec::time::sleep(Duration::from_micros(200));
            } else {
                goexec::yield_now();
            }
            seen.not_panicking += usize::from(!std::thread::panicking());
            seen.moved += usize::from(tid() != seen.tid);
        }
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
    }
}

/// Observers keep running (and sleeping, so that they move between threads) until `done`,
/// counting the times they found `panicking()` true; returns what the destructor saw, how
/// often the observers saw a panic, and whether the unwinding goroutine's thread still
/// exists once it finished (its exit must not take the thread down).
fn unwind_while_switching(procs: usize, lock_first: bool) -> (Seen, usize, bool) {
    let rt = goexec::Runtime::builder().procs(procs).build().unwrap();
    rt.run(move || {
        let done = Arc::new(AtomicBool::new(false));
        let saw_panic = Arc::new(AtomicUsize::new(0));
        let observers: Vec<_> = (0..4)
            .map(|_| {
                let (done, saw_panic) = (done.clone(), saw_panic.clone());
                goexec::spawn(move || {
                    while !done.load(Ordering::SeqCst) {
                        if std::thread::panicking() {
                            saw_panic.fetch_add(1, Ordering::SeqCst);
                        }
                        goexec::time::sleep(Duration::from_micros(300));
                    }
                })
            })
            .collect();
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let h = goexec::spawn(move || {
            if lock_first {
                goexec::lock_os_thread();
            }
            let me = tid();
            let r = std::panic::catch_unwind(move || {
                let _guard = SwitchOnDrop(s);
                panic!("unwinding through a parking destructor");
            });
            assert!(r.is_err());
            if lock_first {
                // The user's own lock outlives the unwind's.
                for _ in 0..20 {
                    goexec::time::sleep(Duration::from_micros(100));
                    assert_eq!(tid(), me, "a locked goroutine moved after its unwind");
                }
                goexec::unlock_os_thread();
            }
        });
        h.join().unwrap();
        // More switches on every thread before looking at the unwinding one.
        for _ in 0..20 {
            goexec::time::sleep(Duration::from_micros(300));
        }
        done.store(true, Ordering::SeqCst);
        for o in observers {
            o.join().unwrap();
        }
        let seen = seen.lock().unwrap().take().expect("the destructor ran");
        let alive = std::path::Path::new(&format!("/proc/self/task/{}", seen.tid)).exists();
        (seen, saw_panic.load(Ordering::SeqCst), alive)
    })
}

fn check(procs: usize, lock_first: bool) {
    let _wd = common::watchdog("rt_unwind", 60);
    let (seen, saw_panic, alive) = unwind_while_switching(procs, lock_first);
    assert_eq!(
        seen.not_panicking, 0,
        "procs {procs}: the unwinding goroutine lost its panic state on {} of {SWITCHES} \
         resumes ({seen:?})",
        seen.not_panicking
    );
    assert_eq!(
        seen.moved, 0,
        "procs {procs}: the unwinding goroutine moved threads ({seen:?})"
    );
    assert_eq!(
        saw_panic, 0,
        "procs {procs}: other goroutines saw std::thread::panicking() == true"
    );
    assert!(
        alive,
        "procs {procs}: the thread of a goroutine that finished unwinding exited"
    );
}

#[test]
fn a_goroutine_parking_while_unwinding_keeps_its_thread_procs_2() {
    check(2, false);
}

#[test]
fn a_goroutine_parking_while_unwinding_keeps_its_thread_procs_1() {
    check(1, false);
}

#[test]
fn unwinding_inside_lock_os_thread_keeps_the_users_lock() {
    check(2, true);
}
