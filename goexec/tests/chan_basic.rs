//! Channels without `select!` (select has tests of its own): Go's semantics for
//! unbuffered and buffered channels, close, non-blocking operations, threads, and the timer
//! channels (`time::after`, `time::tick`, `Timer::receiver`).

use goexec::chan::{self, RecvError, SendError, TryRecvError, TrySendError};
use goexec::Runtime;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn unbuffered_send_completes_only_when_received() {
    for procs in [1, 2] {
        rt(procs).run(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            let sent = Arc::new(AtomicUsize::new(0));
            let s = sent.clone();
            let h = goexec::spawn(move || {
                tx.send(7).unwrap();
                s.fetch_add(1, Ordering::SeqCst);
            });
            // The sender cannot finish before the receive: let it run as long as it likes.
            for _ in 0..100 {
                goexec::yield_now();
            }
            assert_eq!(
                sent.load(Ordering::SeqCst),
                0,
                "an unbuffered send did not wait"
            );
            assert_eq!(rx.try_recv(), Ok(7));
            h.join().unwrap();
            assert_eq!(sent.load(Ordering::SeqCst), 1);
            assert_eq!(rx.cap(), 0);
        });
    }
}

#[test]
fn fifo_order_buffered_and_unbuffered() {
    // Go's test/chan/fifo.go: one sender, values come out in order.
    for cap in [0, 1, 10] {
        for procs in [1, 2] {
            let got = rt(procs).run(move || {
                let (tx, rx) = chan::bounded::<u32>(cap);
                goexec::spawn(move || {
                    for i in 0..1000 {
                        tx.send(i).unwrap();
                    }
                });
                rx.iter().collect::<Vec<_>>()
            });
            assert_eq!(
                got,
                (0..1000).collect::<Vec<_>>(),
                "cap {cap} procs {procs}"
            );
        }
    }
}

#[test]
fn prime_sieve() {
    // Go's concurrent prime sieve: a chain of filter goroutines over unbuffered channels.
    fn filter(rx: chan::Receiver<u32>, tx: chan::Sender<u32>, p: u32) {
        for v in rx {
            if v % p != 0 && tx.send(v).is_err() {
                return;
            }
        }
    }
    for procs in [1, 2] {
        let primes = rt(procs).run(|| {
            let (tx, mut rx) = chan::bounded::<u32>(0);
            goexec::spawn(move || {
                let mut i = 2;
                while tx.send(i).is_ok() {
                    i += 1;
                }
            });
            let mut primes = Vec::new();
            for _ in 0..100 {
                let p = rx.recv().unwrap();
                primes.push(p);
                let (tx2, rx2) = chan::bounded(0);
                goexec::spawn(move || filter(rx, tx2, p));
                rx = rx2;
            }
            // Dropping the last receiver makes the chain's sends fail: it unwinds.
            primes
        });
        assert_eq!(primes.len(), 100);
        assert_eq!(&primes[..10], &[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert_eq!(primes[99], 541);
    }
}

#[test]
fn close_semantics() {
    rt(2).run(|| {
        let (tx, rx) = chan::bounded::<u32>(3);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert!(tx.close());
        assert!(!tx.close(), "a second close reports it was closed already");
        assert!(tx.is_closed() && rx.is_closed());
        assert_eq!(tx.send(3), Err(SendError(3)));
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
        // Buffered values drain before the close shows.
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));

        // Close wakes every blocked receiver and sender.
        let (tx, rx) = chan::bounded::<u32>(0);
        let receivers: Vec<_> = (0..5)
            .map(|_| {
                let rx = rx.clone();
                goexec::spawn(move || rx.recv())
            })
            .collect();
        let (tx2, rx2) = chan::bounded::<u32>(0);
        let senders: Vec<_> = (0..5)
            .map(|i| {
                let tx2 = tx2.clone();
                goexec::spawn(move || tx2.send(i))
            })
            .collect();
        // Let them all block, then close both.
        while goexec::runtime::dump().matches("[chan ").count() < 10 {
            goexec::yield_now();
        }
        tx.close();
        tx2.close();
        for r in receivers {
            assert_eq!(r.join().unwrap(), Err(RecvError));
        }
        let mut back: Vec<u32> = senders
            .into_iter()
            .map(|s| s.join().unwrap().unwrap_err().0)
            .collect();
        back.sort();
        assert_eq!(
            back,
            [0, 1, 2, 3, 4],
            "every blocked sender got its value back"
        );
        drop(rx2);
    });
}

#[test]
fn dropping_the_last_sender_closes_and_the_last_receiver_fails_sends() {
    rt(1).run(|| {
        let (tx, rx) = chan::bounded::<u32>(1);
        let tx2 = tx.clone();
        drop(tx);
        assert!(!rx.is_closed());
        drop(tx2);
        assert_eq!(rx.recv(), Err(RecvError));

        let (tx, rx) = chan::bounded::<u32>(0);
        let blocked = goexec::spawn(move || tx.send(5));
        while !goexec::runtime::dump().contains("[chan send") {
            goexec::yield_now();
        }
        drop(rx);
        assert_eq!(blocked.join().unwrap(), Err(SendError(5)));
    });
}

#[test]
fn non_blocking_operations() {
    rt(1).run(|| {
        let (tx, rx) = chan::bounded::<u32>(1);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
        assert_eq!(rx.try_recv(), Ok(1));
        let (tx0, rx0) = chan::bounded::<u32>(0);
        // Unbuffered with nobody waiting: neither side can proceed.
        assert_eq!(tx0.try_send(1), Err(TrySendError::Full(1)));
        assert_eq!(rx0.try_recv(), Err(TryRecvError::Empty));
        let never = chan::never::<u32>();
        assert_eq!(never.try_recv(), Err(TryRecvError::Empty));
        assert!(!never.is_closed());
    });
}

#[test]
fn zero_size_values() {
    rt(2).run(|| {
        let (tx, rx) = chan::bounded::<()>(0);
        let h = goexec::spawn(move || {
            for _ in 0..10_000 {
                tx.send(()).unwrap();
            }
        });
        assert_eq!(rx.iter().count(), 10_000);
        h.join().unwrap();
    });
}

#[test]
fn many_senders_and_receivers_every_value_exactly_once() {
    for procs in [1, 2] {
        for cap in [0, 16] {
            let (sum, count) = rt(procs).run(move || {
                let (tx, rx) = chan::bounded::<u64>(cap);
                let senders: Vec<_> = (0..8u64)
                    .map(|s| {
                        let tx = tx.clone();
                        goexec::spawn(move || {
                            for i in 0..5000 {
                                tx.send(s * 100_000 + i).unwrap();
                            }
                        })
                    })
                    .collect();
                drop(tx);
                let receivers: Vec<_> = (0..8)
                    .map(|_| {
                        let rx = rx.clone();
                        goexec::spawn(move || {
                            let mut seen = Vec::new();
                            for v in &rx {
                                seen.push(v);
                            }
                            seen
                        })
                    })
                    .collect();
                drop(rx);
                for s in senders {
                    s.join().unwrap();
                }
                let mut all: Vec<u64> = receivers
                    .into_iter()
                    .flat_map(|r| r.join().unwrap())
                    .collect();
                all.sort_unstable();
                all.dedup();
                (all.iter().sum::<u64>(), all.len())
            });
            let expect: u64 = (0..8u64)
                .map(|s| (0..5000).map(|i| s * 100_000 + i).sum::<u64>())
                .sum();
            assert_eq!(count, 40_000, "procs {procs} cap {cap}");
            assert_eq!(sum, expect, "procs {procs} cap {cap}");
        }
    }
}

#[test]
fn threads_and_goroutines_share_channels() {
    let (tx, rx) = chan::bounded::<u32>(0);
    let (back_tx, back_rx) = chan::bounded::<u32>(0);
    // A plain thread on one end, goroutines of a runtime on the other.
    let t = std::thread::spawn(move || {
        for i in 0..1000 {
            tx.send(i).unwrap();
            assert_eq!(back_rx.recv(), Ok(i * 2));
        }
    });
    rt(2).run(move || {
        for v in rx.iter().take(1000) {
            back_tx.send(v * 2).unwrap();
        }
    });
    t.join().unwrap();
}

#[test]
fn timer_channels_after_tick_and_receiver() {
    rt(1).run(|| {
        let start = Instant::now();
        let at = goexec::time::after(2 * MS).recv().unwrap();
        assert!(at >= start + 2 * MS && start.elapsed() >= 2 * MS);
        let at = chan::after(MS).recv().unwrap();
        assert!(at <= Instant::now());

        let ticks = goexec::time::tick(MS);
        let a = ticks.recv().unwrap();
        let b = ticks.recv().unwrap();
        assert!(b > a);
        drop(ticks); // the ticks stop

        let t = goexec::time::Timer::new(MS);
        let fired = t.receiver().recv().unwrap();
        assert!(fired >= start);
        assert!(t.receiver().try_recv().is_err());
        // Go 1.23: reset discards a fired value not yet received.
        let t = goexec::time::Timer::new(Duration::from_micros(1));
        while t.receiver().is_empty() {
            goexec::yield_now();
        }
        t.reset(Duration::from_secs(60));
        assert_eq!(t.receiver().try_recv(), Err(TryRecvError::Empty));
        assert!(t.stop());

        let ticker = goexec::time::Ticker::new(MS);
        let x = ticker.receiver().recv().unwrap();
        let y = ticker.recv();
        assert!(y > x);
    });
}

#[test]
fn recv_and_send_timeouts_on_goroutines_and_threads() {
    use chan::{RecvTimeoutError, SendTimeoutError};
    rt(2).run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let t = Instant::now();
        assert_eq!(rx.recv_timeout(5 * MS), Err(RecvTimeoutError::Timeout));
        assert!(t.elapsed() >= 5 * MS);
        let t = Instant::now();
        assert_eq!(
            tx.send_timeout(9, 5 * MS),
            Err(SendTimeoutError::Timeout(9))
        );
        assert!(t.elapsed() >= 5 * MS);
        // In time: a value arriving while we wait is received.
        let tx2 = tx.clone();
        let h = goexec::spawn(move || {
            goexec::time::sleep(MS);
            tx2.send(3).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(3));
        h.join().unwrap();
        let rx2 = rx.clone();
        let h = goexec::spawn(move || rx2.recv());
        assert_eq!(tx.send_timeout(4, Duration::from_secs(10)), Ok(()));
        assert_eq!(h.join().unwrap(), Ok(4));
        // A zero timeout is a try.
        assert_eq!(
            rx.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        tx.close();
        assert_eq!(rx.recv_timeout(MS), Err(RecvTimeoutError::Closed));
        assert_eq!(tx.send_timeout(1, MS), Err(SendTimeoutError::Closed(1)));
    });
    // The same on a plain thread.
    let (tx, rx) = chan::bounded::<u32>(0);
    let t = Instant::now();
    assert_eq!(rx.recv_timeout(5 * MS), Err(RecvTimeoutError::Timeout));
    assert!(t.elapsed() >= 5 * MS);
    assert_eq!(
        tx.send_timeout(1, 2 * MS),
        Err(SendTimeoutError::Timeout(1))
    );
    let h = std::thread::spawn(move || tx.send(8));
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(8));
    h.join().unwrap().unwrap();
}

#[test]
fn timeouts_racing_deliveries_lose_and_duplicate_nothing() {
    // Receivers with timeouts about as long as the senders' gaps: some time out, some get a
    // value, and some are completed by a sender just as their timer fires. Every value sent
    // successfully is received exactly once; every value whose send timed out came back.
    for procs in [1, 2] {
        let (sent, got, returned) = rt(procs).run(|| {
            let (tx, rx) = chan::bounded::<u64>(0);
            let senders: Vec<_> = (0..4u64)
                .map(|s| {
                    let tx = tx.clone();
                    goexec::spawn(move || {
                        let (mut ok, mut back) = (Vec::new(), Vec::new());
                        for i in 0..300 {
                            let v = s * 10_000 + i;
                            match tx.send_timeout(v, Duration::from_micros(50 + i % 7 * 20)) {
                                Ok(()) => ok.push(v),
                                Err(chan::SendTimeoutError::Timeout(v)) => back.push(v),
                                Err(e) => panic!("{e}"),
                            }
                        }
                        (ok, back)
                    })
                })
                .collect();
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let rx = rx.clone();
                    goexec::spawn(move || {
                        let mut got = Vec::new();
                        let mut misses = 0;
                        while misses < 200 {
                            match rx.recv_timeout(Duration::from_micros(60)) {
                                Ok(v) => {
                                    got.push(v);
                                    // Away for a while: senders time out meanwhile.
                                    goexec::time::sleep(Duration::from_micros(30 + v % 5 * 30));
                                }
                                Err(chan::RecvTimeoutError::Timeout) => misses += 1,
                                // Every sender is done and gone.
                                Err(chan::RecvTimeoutError::Closed) => break,
                            }
                        }
                        got
                    })
                })
                .collect();
            let (mut sent, mut returned) = (Vec::new(), Vec::new());
            for s in senders {
                let (ok, back) = s.join().unwrap();
                sent.extend(ok);
                returned.extend(back);
            }
            drop(tx);
            let mut got: Vec<u64> = receivers
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect();
            sent.sort_unstable();
            got.sort_unstable();
            (sent, got, returned.len())
        });
        eprintln!(
            "procs {procs}: {} delivered, {returned} sends timed out",
            sent.len()
        );
        assert_eq!(got, sent, "procs {procs}: received != sent successfully");
        assert_eq!(sent.len() + returned, 1200, "procs {procs}");
    }
}

#[test]
fn time_timeout_returns_the_result_or_elapsed_and_passes_panics_on() {
    rt(2).run(|| {
        assert_eq!(
            goexec::time::timeout(Duration::from_secs(10), || 42),
            Ok(42)
        );
        let t = Instant::now();
        let r = goexec::time::timeout(2 * MS, || goexec::time::sleep(Duration::from_secs(1)));
        assert!(r.is_err());
        assert!(t.elapsed() >= 2 * MS && t.elapsed() < Duration::from_millis(900));
        assert_eq!(r.unwrap_err().to_string(), "deadline has elapsed");
        let p = std::panic::catch_unwind(|| {
            goexec::time::timeout(Duration::from_secs(10), || panic!("inner boom"))
        });
        let msg = p.unwrap_err();
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"inner boom"));
    });
}
