//! mem_parked: resident memory per parked task. `n` tasks each wait on one shared signal that
//! is never given while the figure is taken; the figure is the growth of the process's
//! resident set (VmRSS in /proc/self/status) from before the first spawn to when all are
//! parked, divided by `n`. Each sample runs in a fresh process (the compare binary starts
//! itself with `--child`), so neither side inherits memory the other freed.
//!
//! Neither side keeps JoinHandles: a server's connection tasks are not joined either.

use crate::rt;

/// The process's resident set in bytes, from /proc/self/status (0 where it cannot be read).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// `n` goroutines, each blocked receiving from one unbuffered channel (Go's idiom for "wait
/// until told": the channel is closed to release them). Bytes of RSS per parked goroutine.
pub fn parked_goexec(procs: usize, n: usize) -> f64 {
    rt::goexec(procs).run(move || {
        let (release_tx, release_rx) = goexec::chan::bounded::<()>(0);
        let started = goexec::sync::WaitGroup::new();
        started.add(n as i64);
        let before = rss_bytes();
        for _ in 0..n {
            let rx = release_rx.clone();
            let started = started.clone();
            goexec::spawn(move || {
                started.done();
                let _ = rx.recv();
            });
        }
        started.wait();
        let grown = rss_bytes().saturating_sub(before);
        release_tx.close();
        grown as f64 / n as f64
    })
}

/// The same on tokio: `n` tasks each awaiting a permit from one semaphore with none (closed
/// to release them), the nearest tokio has to many receivers of one channel.
pub fn parked_tokio(workers: usize, n: usize) -> f64 {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    rt::tokio(workers).block_on(async move {
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let all_started = Arc::new(tokio::sync::Notify::new());
        let before = rss_bytes();
        for _ in 0..n {
            let release = release.clone();
            let started = started.clone();
            let all_started = all_started.clone();
            tokio::spawn(async move {
                if started.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    all_started.notify_one();
                }
                let _ = release.acquire().await;
            });
        }
        all_started.notified().await;
        // The last task to start is past its increment but may not have reached its await:
        // one task in 100,000 does not move the figure.
        let grown = rss_bytes().saturating_sub(before);
        release.close();
        grown as f64 / n as f64
    })
}
