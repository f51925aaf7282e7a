//! Deadlines of channel operations that finish before them: the operation takes its timer
//! with it, so neither memory nor the channel (with the values buffered in it) waits for the
//! deadline. RSS is measured in a fresh child process, after a warm-up round.

mod common;

use goexec::chan;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// Operations per round: before timers were cancelled each left ~60 B behind (~9 MiB).
const OPS: u64 = 150_000;

/// Set in the child: which operation to measure.
const CHILD: &str = "GOEXEC_TIMER_RETENTION_OP";

/// `OPS` timed receives (or sends) on an unbuffered channel whose other side is a goroutine
/// that keeps it busy: most of them wait, arming their one-hour timer, and complete at once.
fn round(send: bool) {
    let (tx, rx) = chan::bounded::<u64>(0);
    if send {
        let peer = goexec::spawn(move || {
            for i in 0..OPS {
                assert_eq!(rx.recv(), Ok(i));
            }
        });
        for i in 0..OPS {
            tx.send_timeout(i, HOUR).unwrap();
        }
        peer.join().unwrap();
    } else {
        let peer = goexec::spawn(move || (0..OPS).for_each(|i| tx.send(i).unwrap()));
        for i in 0..OPS {
            assert_eq!(rx.recv_timeout(HOUR), Ok(i));
        }
        peer.join().unwrap();
    }
}

/// The child's part: prints the growth of a second round over the first.
fn child(op: &str) {
    let send = op == "send";
    let rt = goexec::Runtime::builder().procs(1).build().unwrap();
    let grew = rt.run(move || {
        round(send);
        let before = common::rss_kib();
        round(send);
        common::rss_kib().saturating_sub(before)
    });
    println!("grew {grew} KiB");
}

/// The growth allowed, in KiB. The defect this guards against left ~9 MiB per round. Under
/// qemu-user the process's RSS includes the emulator's own memory, which grows in 2 MiB steps
/// at moments no goroutine controls: the same binary measured 40 KiB or 2,088 KiB depending on
/// whether GOEXEC_SCHEDTRACE printed meanwhile. So emulated runs allow one such step.
fn limit_kib() -> u64 {
    if common::under_emulation() {
        4096
    } else {
        1536
    }
}

/// Runs `test` again in a child that measures `op`; returns the RSS growth it saw, in KiB.
fn measure(test: &str, op: &str) -> u64 {
    let out = common::run_test_child(test, &[(CHILD, op)], Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints the test's name on the same line.
    stdout
        .split("grew ")
        .nth(1)
        .and_then(|rest| rest.split(" KiB").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no measurement in the child's output: {stdout}"))
}

#[test]
fn recv_timeouts_that_complete_early_keep_no_memory() {
    if let Ok(op) = std::env::var(CHILD) {
        return child(&op);
    }
    let _w = common::watchdog("recv_timeouts_that_complete_early_keep_no_memory", 120);
    let grew = measure("recv_timeouts_that_complete_early_keep_no_memory", "recv");
    assert!(
        grew < limit_kib(),
        "{OPS} recv_timeouts grew RSS by {grew} KiB"
    );
}

#[test]
fn send_timeouts_that_complete_early_keep_no_memory() {
    if let Ok(op) = std::env::var(CHILD) {
        return child(&op);
    }
    let _w = common::watchdog("send_timeouts_that_complete_early_keep_no_memory", 120);
    let grew = measure("send_timeouts_that_complete_early_keep_no_memory", "send");
    assert!(
        grew < limit_kib(),
        "{OPS} send_timeouts grew RSS by {grew} KiB"
    );
}

/// A value that counts its drops and records the goroutine that dropped it (0: none, as on
/// the scheduler's own stack).
struct Counted {
    drops: Arc<AtomicUsize>,
    dropped_on: Arc<AtomicU64>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.dropped_on
            .store(goexec::runtime::goid(), Ordering::SeqCst);
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_buffered_value_drops_with_the_last_end_after_a_recv_timeout() {
    let _w = common::watchdog(
        "a_buffered_value_drops_with_the_last_end_after_a_recv_timeout",
        60,
    );
    for procs in [1, 2] {
        goexec::Runtime::builder()
            .procs(procs)
            .build()
            .unwrap()
            .run(move || {
                let drops = Arc::new(AtomicUsize::new(0));
                let dropped_on = Arc::new(AtomicU64::new(u64::MAX));
                let value = || Counted {
                    drops: drops.clone(),
                    dropped_on: dropped_on.clone(),
                };
                let (first, second) = (value(), value());
                let (tx, rx) = chan::bounded::<Counted>(4);
                let tx2 = tx.clone();
                // Sends once the receive below waits: it has armed its timer then.
                let sender = goexec::spawn(move || {
                    while !goexec::runtime::dump().contains("[chan receive") {
                        goexec::yield_now();
                    }
                    tx2.send(first).unwrap();
                    tx2.send(second).unwrap();
                });
                let got = rx.recv_timeout(HOUR).unwrap();
                sender.join().unwrap();
                drop(got);
                assert_eq!(drops.load(Ordering::SeqCst), 1, "procs {procs}");
                drop((tx, rx));
                assert_eq!(
                    drops.load(Ordering::SeqCst),
                    2,
                    "procs {procs}: the buffered value outlived both ends of its channel"
                );
                assert_eq!(
                    dropped_on.load(Ordering::SeqCst),
                    goexec::runtime::goid(),
                    "procs {procs}: dropped by another goroutine or the scheduler"
                );
            });
    }
}
