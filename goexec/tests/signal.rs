//! goexec::signal::notify: signals raised in this process arrive on the channel, in and out of
//! a runtime, also after the runtime stopped; bad signals are errors; a dropped receiver ends
//! the forwarding without the signal killing the process.
//!
//! Signals are process-wide and the tests of this binary run on parallel threads: each test
//! uses a signal of its own and holds `SERIAL` (so counting the forwarder threads sees only its
//! own), and raises only signals a registration catches.

mod common;

use goexec::chan::{self, RecvTimeoutError};
use goexec::signal;
use signal_hook::low_level::raise;
use std::io::ErrorKind;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn in_a_runtime_at_procs_1_and_2() {
    let _s = serial();
    let _w = common::watchdog("in_a_runtime_at_procs_1_and_2", 60);
    for procs in [1, 2] {
        let rt = goexec::Runtime::builder().procs(procs).build().unwrap();
        rt.run(move || {
            let signals = signal::notify(&[libc::SIGUSR1]).unwrap();
            // Raised by another goroutine while this one waits in a select.
            let raiser = goexec::spawn(|| raise(libc::SIGUSR1).unwrap());
            goexec::select! {
                recv(signals) -> sig => assert_eq!(sig, Ok(libc::SIGUSR1), "procs {procs}"),
                recv(chan::after(WAIT)) -> _ => panic!("procs {procs}: no SIGUSR1 in {WAIT:?}"),
            }
            raiser.join().unwrap();
            // And raised by this goroutine itself.
            raise(libc::SIGUSR1).unwrap();
            assert_eq!(
                signals.recv_timeout(WAIT),
                Ok(libc::SIGUSR1),
                "procs {procs}"
            );
        });
    }
}

#[test]
fn on_a_plain_thread() {
    let _s = serial();
    let signals = signal::notify(&[libc::SIGWINCH]).unwrap();
    raise(libc::SIGWINCH).unwrap();
    assert_eq!(signals.recv_timeout(WAIT), Ok(libc::SIGWINCH));
    // Sent from another thread, to the process: whichever thread the kernel picks.
    std::thread::spawn(|| {
        // SAFETY: kill(2) with this process's id and a signal notify catches.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGWINCH) }, 0);
    })
    .join()
    .unwrap();
    assert_eq!(signals.recv_timeout(WAIT), Ok(libc::SIGWINCH));
}

#[test]
fn two_notifies_for_one_signal_both_receive() {
    let _s = serial();
    let a = signal::notify(&[libc::SIGURG]).unwrap();
    let b = signal::notify(&[libc::SIGURG, libc::SIGCONT]).unwrap();
    raise(libc::SIGURG).unwrap();
    assert_eq!(a.recv_timeout(WAIT), Ok(libc::SIGURG));
    assert_eq!(b.recv_timeout(WAIT), Ok(libc::SIGURG));
    // SIGCONT only reaches b.
    raise(libc::SIGCONT).unwrap();
    assert_eq!(b.recv_timeout(WAIT), Ok(libc::SIGCONT));
    assert_eq!(
        a.recv_timeout(Duration::from_millis(100)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn bad_signals_are_invalid_input() {
    for (sigs, names) in [
        (&[1000][..], "1000"),
        (&[0][..], "0"),
        (&[-1][..], "-1"),
        (&[libc::SIGKILL][..], "SIGKILL"),
        (&[libc::SIGSTOP][..], "SIGSTOP"),
        (&[libc::SIGSEGV][..], "SIGSEGV"),
        // One bad signal in the list refuses the whole call.
        (&[libc::SIGUSR1, libc::SIGKILL][..], "SIGKILL"),
        (&[][..], "no signals"),
    ] {
        let err = signal::notify(sigs).expect_err(names);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{sigs:?}: {err}");
        assert!(err.to_string().contains(names), "{sigs:?}: {err}");
    }
}

/// The `goexec-signal` threads this process has.
fn forwarders() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| {
            let comm = t.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|c| c.trim_end() == "goexec-signal")
        })
        .count()
}

/// Waits (bounded) until the process has `n` forwarder threads: a thread takes its name once
/// it runs, and ends a moment after deciding to.
fn wait_for_forwarders(n: usize) {
    let deadline = Instant::now() + WAIT;
    while forwarders() != n {
        assert!(
            Instant::now() < deadline,
            "{} goexec-signal threads, not {n}",
            forwarders()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_dropped_receiver_ends_the_forwarder_and_the_signal_is_then_ignored() {
    let _s = serial();
    let _w = common::watchdog("a_dropped_receiver_ends_the_forwarder", 60);
    let before = forwarders();
    let signals = signal::notify(&[libc::SIGUSR2]).unwrap();
    wait_for_forwarders(before + 1);
    drop(signals);
    raise(libc::SIGUSR2).unwrap();
    // The delivery finds no receiver: the forwarder ends.
    wait_for_forwarders(before);
    // With nobody registered, SIGUSR2 is ignored, not fatal (its default).
    raise(libc::SIGUSR2).unwrap();
    // And it can be notified again.
    let again = signal::notify(&[libc::SIGUSR2]).unwrap();
    raise(libc::SIGUSR2).unwrap();
    assert_eq!(again.recv_timeout(WAIT), Ok(libc::SIGUSR2));
}

#[test]
fn the_channel_outlives_the_runtime() {
    let _s = serial();
    let _w = common::watchdog("the_channel_outlives_the_runtime", 60);
    let signals = goexec::run(|| signal::notify(&[libc::SIGHUP]).unwrap());
    // run has returned: no goroutine runs any more.
    raise(libc::SIGHUP).unwrap();
    assert_eq!(signals.recv_timeout(WAIT), Ok(libc::SIGHUP));
    // Received in a later runtime too.
    goexec::run(move || {
        raise(libc::SIGHUP).unwrap();
        assert_eq!(signals.recv_timeout(WAIT), Ok(libc::SIGHUP));
    });
}

#[test]
fn a_goroutine_selects_on_signals_and_another_channel() {
    let _s = serial();
    let _w = common::watchdog("a_goroutine_selects_on_signals_and_another_channel", 60);
    let rt = goexec::Runtime::builder().procs(2).build().unwrap();
    rt.run(|| {
        let signals = signal::notify(&[libc::SIGALRM]).unwrap();
        let (work_tx, work) = chan::bounded::<u32>(0);
        let worker = goexec::spawn(move || {
            let mut done = Vec::new();
            loop {
                goexec::select! {
                    recv(work) -> w => done.push(w.unwrap()),
                    recv(signals) -> sig => return (done, sig.unwrap()),
                }
            }
        });
        for w in 0..3 {
            work_tx.send(w).unwrap(); // unbuffered: taken by the worker's select
        }
        raise(libc::SIGALRM).unwrap();
        assert_eq!(worker.join().unwrap(), (vec![0, 1, 2], libc::SIGALRM));
    });
}

#[test]
fn in_a_runtime_a_dropped_receiver_ends_the_forwarding_on_the_poller() {
    let _s = serial();
    let _w = common::watchdog("in_a_runtime_a_dropped_receiver_ends_the_forwarding", 60);
    // This process's open sockets, by inode. Other tests' forwarder threads may be ending
    // meanwhile, which only closes theirs; none opens any while this one holds `serial`.
    fn sockets() -> std::collections::HashSet<String> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .filter(|l| l.starts_with("socket:"))
            .collect()
    }
    goexec::run(move || {
        // The runtime's poller first (it stays): a registration made it.
        drop(signal::notify(&[libc::SIGUSR2]).unwrap());
        raise(libc::SIGUSR2).unwrap();
        let (before, threads) = (sockets(), forwarders());
        let signals = signal::notify(&[libc::SIGUSR2]).unwrap();
        // No thread forwards in a goroutine: the runtime's poller does.
        assert!(forwarders() <= threads);
        let pipe: Vec<String> = sockets().difference(&before).cloned().collect();
        assert!(!pipe.is_empty(), "the signal pipe");
        raise(libc::SIGUSR2).unwrap();
        assert_eq!(signals.recv_timeout(WAIT), Ok(libc::SIGUSR2));
        drop(signals);
        raise(libc::SIGUSR2).unwrap();
        // The delivery finds no receiver: the pipe is deregistered and closed.
        let deadline = std::time::Instant::now() + WAIT;
        while pipe.iter().any(|p| sockets().contains(p)) {
            assert!(std::time::Instant::now() < deadline, "the pipe stayed open");
            goexec::time::sleep(Duration::from_millis(5));
        }
    });
}

/// Sets the soft descriptor limit so that exactly `free` numbers below it stay free.
fn leave_free(free: usize) {
    let mut limit = 0u64;
    let mut left = free;
    loop {
        // SAFETY: fcntl(F_GETFD) only asks whether the number is open.
        let open = unsafe { libc::fcntl(limit as i32, libc::F_GETFD) } != -1;
        if !open {
            if left == 0 {
                break;
            }
            left -= 1;
        }
        limit += 1;
    }
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes to `rl`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    rl.rlim_cur = limit;
    // SAFETY: setrlimit reads `rl`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
}

const FAILED_NOTIFY_CHILD: &str = "GOEXEC_TEST_FAILED_NOTIFY_CHILD";

#[test]
fn a_notify_that_fails_leaves_the_signal_as_it_was() {
    // In a child: out of descriptors, notify fails (the runtime's poller cannot be made), and
    // SIGUSR2 must still have its default effect, ending the child.
    if let Some(mode) = std::env::var_os(FAILED_NOTIFY_CHILD) {
        let in_runtime = mode == "runtime";
        let attempt = || {
            leave_free(1);
            let r = signal::notify(&[libc::SIGUSR2]);
            let e = r.map(drop).unwrap_err();
            assert!(e.to_string().contains("goexec::signal::notify"), "{e}");
        };
        if in_runtime {
            goexec::Runtime::builder()
                .procs(1)
                .build()
                .unwrap()
                .run(attempt);
        } else {
            attempt();
        }
        raise(libc::SIGUSR2).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        std::process::exit(3);
    }
    let _w = common::watchdog("a_notify_that_fails_leaves_the_signal_as_it_was", 60);
    for mode in ["runtime", "thread"] {
        let out = common::run_test_child(
            "a_notify_that_fails_leaves_the_signal_as_it_was",
            &[(FAILED_NOTIFY_CHILD, mode)],
            Duration::from_secs(30),
        );
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(libc::SIGUSR2),
            "{mode}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
