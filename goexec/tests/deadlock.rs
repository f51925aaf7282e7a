//! Deadlock detection: programs whose goroutines all wait forever exit with status 2 and
//! Go's message within a second; programs that only look stuck (a plain thread will wake
//! them, or a timer will) are left alone.
//!
//! Each program runs in a child process of this binary (`harness = false`: a test harness's
//! own threads would rightly turn the detector off).

mod common;

use std::time::{Duration, Instant};

const MODE: &str = "GOEXEC_DEADLOCK_CHILD";

fn rt(procs: usize) -> goexec::Runtime {
    goexec::Runtime::builder().procs(procs).build().unwrap()
}

/// The child programs.
fn child(mode: &str) {
    let procs = if mode.ends_with("/2") { 2 } else { 1 };
    match mode.split('/').next().unwrap() {
        // Go's classic: a send nobody will receive.
        "send" => rt(procs).run(|| {
            let (tx, _rx) = goexec::chan::bounded::<i32>(0);
            let _ = tx.send(1);
        }),
        // A lock cycle: main holds the mutex and waits for a goroutine that wants it.
        "mutex" => rt(procs).run(|| {
            let mu = std::sync::Arc::new(goexec::sync::Mutex::new(()));
            let _g = mu.lock();
            let mu2 = mu.clone();
            let h = goexec::spawn(move || drop(mu2.lock()));
            let _ = h.join();
        }),
        // A WaitGroup nobody will finish, with other goroutines blocked in a select.
        "waitgroup" => rt(procs).run(|| {
            let wg = goexec::sync::WaitGroup::new();
            wg.add(1);
            for _ in 0..3 {
                goexec::spawn(|| {
                    let (_tx, rx) = goexec::chan::bounded::<()>(0);
                    goexec::select! {
                        recv(rx) -> _ => {}
                        recv(goexec::chan::never::<()>()) -> _ => {}
                    }
                });
            }
            wg.wait();
        }),
        // Main waits on a plain thread, which sends after 300 ms: not a deadlock.
        "thread" => {
            let (tx, rx) = goexec::chan::bounded::<i32>(0);
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                tx.send(5).unwrap();
            });
            let v = rt(procs).run(move || rx.recv().unwrap());
            assert_eq!(v, 5);
            t.join().unwrap();
        }
        // Main sleeps while another goroutine waits forever: a timer is pending, and then
        // main returns.
        "sleep" => rt(procs).run(|| {
            let (tx, rx) = goexec::chan::bounded::<()>(0);
            goexec::spawn(move || {
                let _ = rx.recv();
            });
            goexec::time::sleep(Duration::from_millis(300));
            drop(tx);
        }),
        // Main waits for a signal, which the kernel sends a second later (`alarm`: no thread
        // of this process sends it): waiting for a signal is not a deadlock.
        "signal" => rt(procs).run(|| {
            let signals = goexec::signal::notify(&[libc::SIGALRM]).unwrap();
            // SAFETY: alarm(2) only arms the process's alarm timer.
            unsafe { libc::alarm(1) };
            assert_eq!(signals.recv(), Ok(libc::SIGALRM));
        }),
        // A context with an hour's deadline made on a plain thread and cancelled, then a
        // deadlock: its stale entry in the process-wide timer heap must not count as a timer
        // that could wake someone.
        "ctx-cancelled" => {
            let (_ctx, cancel) =
                goexec::context::Context::background().with_timeout(Duration::from_secs(3600));
            cancel.cancel();
            send_deadlock(procs);
        }
        // The same with a stopped Timer made on a plain thread.
        "timer-stopped" => {
            let t = goexec::time::Timer::new(Duration::from_secs(3600));
            assert!(t.stop());
            send_deadlock(procs);
            drop(t);
        }
        // The same with an `after` whose receiver was dropped at once (collected: nobody can
        // receive its value).
        "after-dropped" => {
            drop(goexec::time::after(Duration::from_secs(3600)));
            send_deadlock(procs);
        }
        // The same with a `Sleep` future polled once (its wake is armed) and dropped.
        "sleep-future-dropped" => {
            use std::future::Future;
            let mut s = Box::pin(goexec::time::sleep_async(Duration::from_secs(3600)));
            let waker = futures::task::noop_waker();
            let cx = &mut std::task::Context::from_waker(&waker);
            assert!(s.as_mut().poll(cx).is_pending());
            drop(s);
            send_deadlock(procs);
        }
        // A goroutine of an earlier run, abandoned in `block_on` of an hour's `Sleep`: its
        // timer died with that runtime and keeps nothing pending for this one.
        "sleep-future-abandoned" => {
            rt(procs).run(|| {
                goexec::spawn(|| {
                    goexec::block_on(goexec::time::sleep_async(Duration::from_secs(3600)))
                });
                goexec::time::sleep(Duration::from_millis(20));
            });
            send_deadlock(procs);
        }
        // The same with a Sleep armed in a first run, returned from it, and abandoned in
        // `block_on` in a second: it re-armed in the second runtime, and died with that one.
        "sleep-future-abandoned-twice" => {
            use std::future::Future;
            let s = rt(procs).run(|| {
                let mut s = Box::pin(goexec::time::sleep_async(Duration::from_secs(3600)));
                let waker = futures::task::noop_waker();
                let cx = &mut std::task::Context::from_waker(&waker);
                assert!(s.as_mut().poll(cx).is_pending());
                s
            });
            rt(procs).run(move || {
                goexec::spawn(move || goexec::block_on(s));
                goexec::time::sleep(Duration::from_millis(20));
            });
            send_deadlock(procs);
        }
        other => panic!("unknown child mode {other:?}"),
    }
}

/// Go's classic deadlock, a send nobody will receive, in a run of `procs` Ps.
fn send_deadlock(procs: usize) {
    rt(procs).run(|| {
        let (tx, _rx) = goexec::chan::bounded::<i32>(0);
        let _ = tx.send(1);
    });
}

/// Runs child `mode`; returns its exit code, stderr, and how long it ran.
fn run_child(mode: &str) -> (Option<i32>, String, Duration) {
    let start = Instant::now();
    // Bounded: a child that hangs (the detector failed) is killed after 20 s.
    let out = common::run_child(&[], &[(MODE, mode)], Duration::from_secs(20));
    let took = start.elapsed();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    )
}

fn main() {
    if let Ok(mode) = std::env::var(MODE) {
        child(&mode);
        return;
    }
    let mut failed = 0;
    let mut check = |mode: &str, ok: bool, what: String| {
        println!(
            "test deadlock {mode} ... {}",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            println!("  {what}");
            failed += 1;
        }
    };
    // qemu-user runs threads of its own inside the process, which the detector rightly
    // counts as threads it does not know: it stays off there.
    let emulated = common::under_emulation();
    if emulated {
        println!("deadlock reports: skipped under emulation (qemu-user's own threads turn the detector off)");
    }
    for mode in [
        "send/1",
        "send/2",
        "mutex/1",
        "mutex/2",
        "waitgroup/1",
        "waitgroup/2",
        "ctx-cancelled/1",
        "ctx-cancelled/2",
        "timer-stopped/1",
        "timer-stopped/2",
        "after-dropped/1",
        "after-dropped/2",
        "sleep-future-dropped/1",
        "sleep-future-dropped/2",
        "sleep-future-abandoned/1",
        "sleep-future-abandoned/2",
        "sleep-future-abandoned-twice/1",
        "sleep-future-abandoned-twice/2",
    ]
    .into_iter()
    .filter(|_| !emulated)
    {
        let (code, err, took) = run_child(mode);
        let ok = code == Some(2)
            && err.starts_with("fatal error: all goroutines are asleep - deadlock!")
            && err.contains("goroutine 1 [")
            // With stacks: the blocked goroutines' own frames, file and line.
            && err.contains("\ndeadlock::")
            && err.contains("::{{closure}}\n")
            && err.contains("tests/deadlock.rs:")
            // Promptly: not at a timer's deadline (an hour), nor at the kill (20 s).
            && took < Duration::from_secs(3);
        check(
            mode,
            ok,
            format!("exit {code:?} after {took:?}, stderr:\n{err}"),
        );
    }
    for mode in [
        "thread/1", "thread/2", "sleep/1", "sleep/2", "signal/1", "signal/2",
    ] {
        let (code, err, took) = run_child(mode);
        check(
            mode,
            code == Some(0) && !err.contains("deadlock"),
            format!("exit {code:?} after {took:?}, stderr:\n{err}"),
        );
    }
    if failed > 0 {
        println!("\ntest result: FAILED. {failed} failed");
        std::process::exit(1);
    }
    println!("\ntest result: ok");
}
