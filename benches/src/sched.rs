//! Scheduler workloads, goexec beside tokio: each returns nanoseconds per operation, timed
//! inside the runtime (start-up excluded). `P` is the worker count: goexec `procs(P)`, tokio
//! `current_thread` for 1 and `multi_thread` with P workers otherwise. Each side builds its
//! runtime once and runs every sample on it.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The goexec runtime for `procs` workers, built once and reused by every sample (a
/// `Runtime` keeps its goroutine stacks warm between runs, as tokio keeps its allocator warm).
fn goexec_rt(procs: usize) -> &'static goexec::Runtime {
    static RTS: [OnceLock<goexec::Runtime>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    RTS[procs.min(2)].get_or_init(|| {
        goexec::Runtime::builder()
            .procs(procs)
            .build()
            .expect("goexec runtime")
    })
}

/// The tokio runtime for `workers` workers (`current_thread` for 1), built once and reused, as
/// tokio's own benches do.
fn tokio_rt(workers: usize) -> &'static tokio::runtime::Runtime {
    static RTS: [OnceLock<tokio::runtime::Runtime>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    RTS[workers.min(2)].get_or_init(|| {
        if workers == 1 {
            tokio::runtime::Builder::new_current_thread().build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .build()
        }
        .expect("tokio runtime")
    })
}

fn per_op(d: Duration, ops: usize) -> f64 {
    d.as_nanos() as f64 / ops as f64
}

/// Tasks per spawn_join sample.
const SPAWN_N: usize = 100_000;

/// 100,000 goroutines each increment a counter; all are joined. ns per spawn + join.
pub fn spawn_join_goexec<const P: usize>() -> f64 {
    let d = goexec_rt(P).run(|| {
        let count = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hs: Vec<_> = (0..SPAWN_N)
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
        assert_eq!(count.load(Ordering::Relaxed), SPAWN_N);
        d
    });
    per_op(d, SPAWN_N)
}

/// The same on tokio: spawn 100,000 tasks, await every handle.
pub fn spawn_join_tokio<const P: usize>() -> f64 {
    let d = tokio_rt(P).block_on(async {
        let count = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hs: Vec<_> = (0..SPAWN_N)
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
        assert_eq!(count.load(Ordering::Relaxed), SPAWN_N);
        d
    });
    per_op(d, SPAWN_N)
}

/// spawn_join in batches: 100 rounds of 1,000 spawned then joined, so at most 1,000 tasks are
/// alive at a time (their memory stays in cache), against spawn_join's 100,000 at once.
const BATCH: usize = 1_000;

/// ns per spawn + join, 1,000 live at a time.
pub fn spawn_join_batched_goexec<const P: usize>() -> f64 {
    let d = goexec_rt(P).run(|| {
        let start = Instant::now();
        for _ in 0..SPAWN_N / BATCH {
            let hs: Vec<_> = (0..BATCH).map(|i| goexec::spawn(move || i)).collect();
            for h in hs {
                black_box(h.join().expect("join"));
            }
        }
        start.elapsed()
    });
    per_op(d, SPAWN_N)
}

/// The same on tokio.
pub fn spawn_join_batched_tokio<const P: usize>() -> f64 {
    let d = tokio_rt(P).block_on(async {
        let start = Instant::now();
        for _ in 0..SPAWN_N / BATCH {
            let hs: Vec<_> = (0..BATCH).map(|i| tokio::spawn(async move { i })).collect();
            for h in hs {
                black_box(h.await.expect("join"));
            }
        }
        start.elapsed()
    });
    per_op(d, SPAWN_N)
}

/// Depth of a chained_spawn sample.
const CHAIN_N: usize = 10_000;

fn chain_goexec(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    goexec::spawn(move || chain_goexec(n - 1))
        .join()
        .expect("join")
        + 1
}

/// Each goroutine spawns the next and waits for it, 10,000 deep. ns per link.
pub fn chained_spawn_goexec<const P: usize>() -> f64 {
    let d = goexec_rt(P).run(|| {
        let start = Instant::now();
        assert_eq!(black_box(chain_goexec(CHAIN_N)), CHAIN_N);
        start.elapsed()
    });
    per_op(d, CHAIN_N)
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
pub fn chained_spawn_tokio<const P: usize>() -> f64 {
    let d = tokio_rt(P).block_on(async {
        let start = Instant::now();
        // The chain runs as a spawned task, as it does on goexec (not on block_on's thread).
        let n = tokio::spawn(chain_tokio(CHAIN_N)).await.expect("join");
        assert_eq!(black_box(n), CHAIN_N);
        start.elapsed()
    });
    per_op(d, CHAIN_N)
}

/// Tasks and yields per task in yield_many.
const YIELD_TASKS: usize = 200;
const YIELDS: usize = 5_000;

/// 200 goroutines each yield 5,000 times. ns per yield.
pub fn yield_many_goexec<const P: usize>() -> f64 {
    let d = goexec_rt(P).run(|| {
        let start = Instant::now();
        let hs: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                goexec::spawn(|| {
                    for _ in 0..YIELDS {
                        goexec::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("join");
        }
        start.elapsed()
    });
    per_op(d, YIELD_TASKS * YIELDS)
}

/// The same on tokio with `tokio::task::yield_now`.
pub fn yield_many_tokio<const P: usize>() -> f64 {
    let d = tokio_rt(P).block_on(async {
        let start = Instant::now();
        let hs: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..YIELDS {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.expect("join");
        }
        start.elapsed()
    });
    per_op(d, YIELD_TASKS * YIELDS)
}

/// Sleeps per sleep_100us sample.
const SLEEPS: usize = 200;

/// One goroutine sleeps 100 µs, 200 times, on an otherwise idle runtime: µs per sleep.
pub fn sleep_100us_goexec() -> f64 {
    let d = goexec_rt(1).run(|| {
        let start = Instant::now();
        for _ in 0..SLEEPS {
            goexec::time::sleep(Duration::from_micros(100));
        }
        start.elapsed()
    });
    d.as_nanos() as f64 / 1000.0 / SLEEPS as f64
}

/// The same on tokio (`current_thread` with its timer): µs per sleep.
pub fn sleep_100us_tokio() -> f64 {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime")
    });
    let d = rt.block_on(async {
        let start = Instant::now();
        for _ in 0..SLEEPS {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        start.elapsed()
    });
    d.as_nanos() as f64 / 1000.0 / SLEEPS as f64
}

/// Round trips per ping_pong sample.
const PING_PONG_N: usize = 200_000;

/// Two goroutines bounce a value over two unbuffered channels, 200,000 round trips. ns per
/// round trip (two sends, two receives, two parks and readies).
pub fn ping_pong_goexec<const P: usize>() -> f64 {
    let d = goexec_rt(P).run(|| {
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
        for _ in 0..PING_PONG_N {
            ping_tx.send(v).expect("ping");
            v = pong_rx.recv().expect("pong");
        }
        let d = start.elapsed();
        assert_eq!(v, PING_PONG_N as u64);
        drop(ping_tx);
        echo.join().expect("echo");
        d
    });
    per_op(d, PING_PONG_N)
}

/// The same on tokio: two tasks over two `mpsc` channels of capacity 1 (tokio has no
/// rendezvous channel; capacity 1 is the closest).
pub fn ping_pong_tokio<const P: usize>() -> f64 {
    let d = tokio_rt(P).block_on(async {
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
            for _ in 0..PING_PONG_N {
                ping_tx.send(v).await.expect("ping");
                v = pong_rx.recv().await.expect("pong");
            }
            let d = start.elapsed();
            assert_eq!(v, PING_PONG_N as u64);
            d
        });
        let d = pinger.await.expect("pinger");
        echo.await.expect("echo");
        d
    });
    per_op(d, PING_PONG_N)
}

const RING_N: usize = 503;
const RING_HOPS: usize = 1_000_000;

/// Go's threadring: 503 goroutines in a ring of unbuffered channels pass a counter along,
/// each hop taking one off, until it reaches zero. ns per hop.
pub fn ring_goexec<const P: usize>() -> f64 {
    let d = goexec_rt(P).run(|| {
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
        chans[0].0.send(RING_HOPS).expect("start the ring");
        done_rx.recv().expect("ring done");
        let d = start.elapsed();
        // Dropping every Sender closes the ring, one channel after another.
        drop(chans);
        d
    });
    per_op(d, RING_HOPS)
}

/// The same on tokio: 503 tasks, `mpsc` channels of capacity 1.
pub fn ring_tokio<const P: usize>() -> f64 {
    let d = tokio_rt(P).block_on(async {
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
        txs[0].send(RING_HOPS).await.expect("start the ring");
        done_rx.recv().await.expect("ring done");
        let d = start.elapsed();
        drop(txs);
        d
    });
    per_op(d, RING_HOPS)
}
