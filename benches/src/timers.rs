//! Timers at scale, goexec beside tokio (and Go: `benches/go/timers.go` runs the same two
//! workloads): many goroutines on periodic tickers, and a burst of sleepers all due at one
//! instant. These measure what a server with a timeout per connection needs: that no ticker
//! starves while thousands are due every few milliseconds, and how late the last of a
//! thundering herd of timers runs.

use crate::rt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Goroutines each on a ticker of their own.
pub const TICKERS: usize = 10_000;
/// The tickers' period.
pub const TICK_PERIOD: Duration = Duration::from_millis(10);
/// How long the tickers run: at most 50 ticks each, 500,000 in all.
pub const TICK_RUN: Duration = Duration::from_millis(500);
/// Sleepers in the burst.
pub const SLEEPERS: usize = 50_000;
/// How far after the start the burst is due: time to spawn every sleeper first.
pub const BURST_AFTER: Duration = Duration::from_millis(300);

/// Ticks counted by a ticker run: in all, and by the goroutine that got fewest.
#[derive(Clone, Copy, Debug)]
pub struct Ticks {
    /// Ticks received in all.
    pub total: u64,
    /// Ticks received by the task that got fewest.
    pub fewest: u64,
}

fn ticks(counts: &[AtomicU64]) -> Ticks {
    let counts = counts.iter().map(|c| c.load(Ordering::Relaxed));
    Ticks {
        total: counts.clone().sum(),
        fewest: counts.min().unwrap_or(0),
    }
}

/// [`TICKERS`] goroutines each receive from a `Ticker` of [`TICK_PERIOD`] for [`TICK_RUN`],
/// counting the ticks that arrive before the end. A slow receiver's missed ticks are dropped
/// (one waits in the channel), as in Go.
pub fn ticker_goexec(procs: usize) -> Ticks {
    rt::goexec(procs).run(|| {
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..TICKERS).map(|_| 0.into()).collect());
        let end = Instant::now() + TICK_RUN;
        let hs: Vec<_> = (0..TICKERS)
            .map(|i| {
                let counts = counts.clone();
                goexec::spawn(move || {
                    let t = goexec::time::Ticker::new(TICK_PERIOD);
                    loop {
                        t.recv();
                        if Instant::now() >= end {
                            break;
                        }
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("ticker goroutine");
        }
        ticks(&counts)
    })
}

/// [`ticker_goexec`] on tokio: `interval_at` with `MissedTickBehavior::Skip`, the nearest to
/// Go's dropped ticks (tokio's default, `Burst`, would fire every missed tick at once).
pub fn ticker_tokio(workers: usize) -> Ticks {
    rt::tokio(workers).block_on(async {
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..TICKERS).map(|_| 0.into()).collect());
        let end = Instant::now() + TICK_RUN;
        let hs: Vec<_> = (0..TICKERS)
            .map(|i| {
                let counts = counts.clone();
                tokio::spawn(async move {
                    let start = tokio::time::Instant::now() + TICK_PERIOD;
                    let mut t = tokio::time::interval_at(start, TICK_PERIOD);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    loop {
                        t.tick().await;
                        if Instant::now() >= end {
                            break;
                        }
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.expect("ticker task");
        }
        ticks(&counts)
    })
}

/// The 99th percentile of lateness, in ms.
fn p99_ms(late_ns: &[AtomicU64]) -> f64 {
    let mut v: Vec<u64> = late_ns.iter().map(|l| l.load(Ordering::Relaxed)).collect();
    v.sort_unstable();
    let i = (v.len() * 99).div_ceil(100).saturating_sub(1);
    v.get(i).copied().unwrap_or(0) as f64 / 1e6
}

/// [`SLEEPERS`] goroutines sleep until one instant, [`BURST_AFTER`] after the start; each
/// records how late it woke. Returns the p99 lateness in ms.
pub fn burst_goexec(procs: usize) -> f64 {
    rt::goexec(procs).run(|| {
        let late: Arc<Vec<AtomicU64>> = Arc::new((0..SLEEPERS).map(|_| 0.into()).collect());
        let due = Instant::now() + BURST_AFTER;
        let hs: Vec<_> = (0..SLEEPERS)
            .map(|i| {
                let late = late.clone();
                goexec::spawn(move || {
                    goexec::time::sleep_until(due);
                    late[i].store(due.elapsed().as_nanos() as u64, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().expect("sleeper");
        }
        p99_ms(&late)
    })
}

/// [`burst_goexec`] on tokio (`sleep_until`).
pub fn burst_tokio(workers: usize) -> f64 {
    rt::tokio(workers).block_on(async {
        let late: Arc<Vec<AtomicU64>> = Arc::new((0..SLEEPERS).map(|_| 0.into()).collect());
        let due = Instant::now() + BURST_AFTER;
        let hs: Vec<_> = (0..SLEEPERS)
            .map(|i| {
                let late = late.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(due.into()).await;
                    late[i].store(due.elapsed().as_nanos() as u64, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.await.expect("sleeper");
        }
        p99_ms(&late)
    })
}
