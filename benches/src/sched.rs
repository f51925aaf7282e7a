//! Scheduler and channel workloads, goexec beside tokio. Each function takes the worker count
//! (goexec `procs`; tokio `current_thread` for 1, `multi_thread` otherwise) and the size of the
//! run, and returns the time measured inside the runtime, start-up excluded. The compare binary
//! divides by the operation count; the criterion benches run smaller sizes.

use crate::rt;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `n` goroutines each increment a counter, all spawned first, then all joined.
pub fn spawn_join_goexec(procs: usize, n: usize) -> Duration {
    rt::goexec(procs).run(move || {
        let count = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let c = count.clone();
                goexec::spawn(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().expect("join");
        }
        let d = start.elapsed();
        assert_eq!(count.load(Ordering::Relaxed), n);
        d
    })
}

/// The same on tokio: spawn `n` tasks, await every handle.
pub fn spawn_join_tokio(workers: usize, n: usize) -> Duration {
    rt::tokio(workers).block_on(async move {
        let count = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let c = count.clone();
                tokio::spawn(async move {
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.await.expect("join");
        }
        let d = start.elapsed();
        assert_eq!(count.load(Ordering::Relaxed), n);
        d
    })
}

/// Tasks alive at once in spawn_batch.
pub const BATCH: usize = 1_000;

/// spawn_join in batches of [`BATCH`]: at most 1,000 tasks alive, so their memory stays in
/// cache (spawn_join has all `n` alive at once).
pub fn spawn_batch_goexec(procs: usize, n: usize) -> Duration {
    rt::goexec(procs).run(move || {
        let start = Instant::now();
        for _ in 0..n / BATCH {
            let hs: Vec<_> = (0..BATCH).map(|i| goexec::spawn(move || i)).collect();
            for h in hs {
                black_box(h.join().expect("join"));
            }
        }
        start.elapsed()
    })
}

/// The same on tokio.
pub fn spawn_batch_tokio(workers: usize, n: usize) -> Duration {
    rt::tokio(workers).block_on(async move {
        let start = Instant::now();
        for _ in 0..n / BATCH {
            let hs: Vec<_> = (0..BATCH).map(|i| tokio::spawn(async move { i })).collect();
            for h in hs {
                black_box(h.await.expect("join"));
            }
        }
        start.elapsed()
    })
}

fn chain_goexec(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    goexec::spawn(move || chain_goexec(n - 1))
        .join()
        .expect("join")
        + 1
}

/// chained_spawn: each goroutine spawns the next and waits for it, `n` deep.
pub fn chained_spawn_goexec(procs: usize, n: usize) -> Duration {
    rt::goexec(procs).run(move || {
        let start = Instant::now();
        assert_eq!(black_box(chain_goexec(n)), n);
        start.elapsed()
    })
}

fn chain_tokio(n: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>> {
    Box::pin(async move {
        if n == 0 {
            return 0;
        }
        tokio::spawn(chain_tokio(n - 1)).await.expect("join") + 1
    })
}

/// The same on tokio: each task spawns the next and awaits it.
pub fn chained_spawn_tokio(workers: usize, n: usize) -> Duration {
    rt::tokio(workers).block_on(async move {
        let start = Instant::now();
        // The chain runs as a spawned task, as it does on goexec (not on block_on's thread).
        let got = tokio::spawn(chain_tokio(n)).await.expect("join");
        assert_eq!(black_box(got), n);
        start.elapsed()
    })
}

/// Tasks in yield_many; each yields `n / YIELD_TASKS` times.
pub const YIELD_TASKS: usize = 200;

/// yield_many: 200 goroutines each yield `n / 200` times.
pub fn yield_many_goexec(procs: usize, n: usize) -> Duration {
    let per_task = n / YIELD_TASKS;
    rt::goexec(procs).run(move || {
        let start = Instant::now();
        let hs: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                goexec::spawn(move || {
                    for _ in 0..per_task {
                        goexec::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("join");
        }
        start.elapsed()
    })
}

/// The same on tokio with `tokio::task::yield_now`.
pub fn yield_many_tokio(workers: usize, n: usize) -> Duration {
    let per_task = n / YIELD_TASKS;
    rt::tokio(workers).block_on(async move {
        let start = Instant::now();
        let hs: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.expect("join");
        }
        start.elapsed()
    })
}

/// One goroutine sleeps 100 µs, `n` times, on an otherwise idle runtime (1 P).
pub fn sleep_100us_goexec(n: usize) -> Duration {
    rt::goexec(1).run(move || {
        let start = Instant::now();
        for _ in 0..n {
            goexec::time::sleep(Duration::from_micros(100));
        }
        start.elapsed()
    })
}

/// The same on tokio (`current_thread` with its timer).
pub fn sleep_100us_tokio(n: usize) -> Duration {
    rt::tokio(1).block_on(async move {
        let start = Instant::now();
        for _ in 0..n {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        start.elapsed()
    })
}

/// ping_pong: two goroutines bounce a value over two unbuffered channels, `n` round trips
/// (two sends, two receives, two parks and readies each).
pub fn ping_pong_goexec(procs: usize, n: usize) -> Duration {
    rt::goexec(procs).run(move || {
        let (ping_tx, ping_rx) = goexec::chan::bounded::<u64>(0);
        let (pong_tx, pong_rx) = goexec::chan::bounded::<u64>(0);
        let echo = goexec::spawn(move || {
            for v in &ping_rx {
                if pong_tx.send(v + 1).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..n {
            ping_tx.send(v).expect("ping");
            v = pong_rx.recv().expect("pong");
        }
        let d = start.elapsed();
        assert_eq!(v, n as u64);
        drop(ping_tx);
        echo.join().expect("echo");
        d
    })
}

/// The same on tokio: two tasks over two `mpsc` channels of capacity 1 (tokio has no
/// rendezvous channel; capacity 1 is the closest).
pub fn ping_pong_tokio(workers: usize, n: usize) -> Duration {
    rt::tokio(workers).block_on(async move {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v + 1).await.is_err() {
                    break;
                }
            }
        });
        // The pinger runs as a task too, as goexec's main goroutine does.
        let pinger = tokio::spawn(async move {
            let start = Instant::now();
            let mut v = 0;
            for _ in 0..n {
                ping_tx.send(v).await.expect("ping");
                v = pong_rx.recv().await.expect("pong");
            }
            let d = start.elapsed();
            assert_eq!(v, n as u64);
            d
        });
        let d = pinger.await.expect("pinger");
        echo.await.expect("echo");
        d
    })
}

/// Tasks in the ring.
pub const RING_N: usize = 503;

/// Go's threadring: 503 goroutines in a ring of unbuffered channels pass a counter along,
/// each hop taking one off, `n` hops in all.
pub fn ring_goexec(procs: usize, n: usize) -> Duration {
    rt::goexec(procs).run(move || {
        let chans: Vec<_> = (0..RING_N)
            .map(|_| goexec::chan::bounded::<usize>(0))
            .collect();
        let (done_tx, done_rx) = goexec::chan::bounded::<()>(1);
        for i in 0..RING_N {
            let rx = chans[i].1.clone();
            let tx = chans[(i + 1) % RING_N].0.clone();
            let done = done_tx.clone();
            goexec::spawn(move || {
                for v in &rx {
                    if v == 0 {
                        let _ = done.send(());
                        return;
                    }
                    if tx.send(v - 1).is_err() {
                        return;
                    }
                }
            });
        }
        let start = Instant::now();
        chans[0].0.send(n).expect("start the ring");
        done_rx.recv().expect("ring done");
        let d = start.elapsed();
        // Dropping every Sender closes the ring, one channel after another.
        drop(chans);
        d
    })
}

/// The same on tokio: 503 tasks, `mpsc` channels of capacity 1.
pub fn ring_tokio(workers: usize, n: usize) -> Duration {
    rt::tokio(workers).block_on(async move {
        let mut txs = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..RING_N {
            let (tx, rx) = tokio::sync::mpsc::channel::<usize>(1);
            txs.push(tx);
            rxs.push(Some(rx));
        }
        let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
        for i in 0..RING_N {
            let mut rx = rxs[i].take().expect("receiver");
            let tx = txs[(i + 1) % RING_N].clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                while let Some(v) = rx.recv().await {
                    if v == 0 {
                        let _ = done.send(()).await;
                        return;
                    }
                    if tx.send(v - 1).await.is_err() {
                        return;
                    }
                }
            });
        }
        let start = Instant::now();
        txs[0].send(n).await.expect("start the ring");
        done_rx.recv().await.expect("ring done");
        let d = start.elapsed();
        drop(txs);
        d
    })
}
