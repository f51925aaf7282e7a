//! Go's channel semantics tests, ported: the concurrent prime sieve, FIFO order, doubleselect,
//! select fairness, non-blocking operations, close, zero-size values, many senders and
//! receivers, and channels between goroutines and plain threads.

mod common;

use common::watchdog;
use goexec::chan::{self, RecvError, SendError, TryRecvError, TrySendError};
use goexec::{select, Runtime};
use std::collections::HashSet;
use std::time::Duration;

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

#[test]
fn concurrent_prime_sieve() {
    let _w = watchdog("concurrent_prime_sieve", 120);
    // Go's sieve: a goroutine per prime, each filtering its multiples out of the stream.
    fn generate(tx: chan::Sender<u32>) {
        for i in 2.. {
            if tx.send(i).is_err() {
                return;
            }
        }
    }
    fn filter(rx: chan::Receiver<u32>, tx: chan::Sender<u32>, prime: u32) {
        for i in rx {
            if i % prime != 0 && tx.send(i).is_err() {
                return;
            }
        }
    }
    for procs in [1, 2] {
        let primes = rt(procs).run(|| {
            let (tx, mut rx) = chan::bounded::<u32>(0);
            goexec::spawn(move || generate(tx));
            let mut primes = Vec::new();
            for _ in 0..200 {
                let prime = rx.recv().unwrap();
                primes.push(prime);
                let (tx1, rx1) = chan::bounded(0);
                goexec::spawn(move || filter(rx, tx1, prime));
                rx = rx1;
            }
            primes
        });
        let expect: Vec<u32> = (2u32..)
            .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
            .take(200)
            .collect();
        assert_eq!(primes, expect, "procs {procs}");
    }
}

#[test]
fn fifo_order_buffered_and_unbuffered() {
    let _w = watchdog("fifo_order_buffered_and_unbuffered", 120);
    const N: u32 = 10;
    for procs in [1, 2] {
        rt(procs).run(|| {
            // Go's AsynchFifo: values come out of a buffer in the order they went in.
            let (tx, rx) = chan::bounded::<u32>(N as usize);
            for i in 0..N {
                tx.send(i).unwrap();
            }
            for i in 0..N {
                assert_eq!(rx.recv(), Ok(i));
            }

            // Go's SynchFifo: a chain of goroutines, each sending on an unbuffered channel in
            // turn (a token says whose turn it is); the receiver sees them in chain order.
            let (tx, rx) = chan::bounded::<u32>(0);
            let (first, mut token) = chan::bounded::<()>(0);
            for i in 0..N {
                let (next_tx, next_rx) = chan::bounded::<()>(0);
                let (tx, my_turn) = (tx.clone(), token);
                goexec::spawn(move || {
                    my_turn.recv().unwrap();
                    tx.send(i).unwrap();
                    next_tx.send(()).unwrap();
                });
                token = next_rx;
            }
            first.send(()).unwrap();
            for i in 0..N {
                assert_eq!(rx.recv(), Ok(i));
            }
            token.recv().unwrap();

            // Many values through an unbuffered channel from one sender: in order.
            let (tx, rx) = chan::bounded::<u32>(0);
            goexec::spawn(move || (0..10_000).for_each(|i| tx.send(i).unwrap()));
            assert!(rx.iter().eq(0..10_000));
        });
    }
}

#[test]
fn doubleselect_every_value_exactly_once() {
    let _w = watchdog("doubleselect_every_value_exactly_once", 120);
    // Go's doubleselect: a sender selects over four channels; each is drained by its own
    // goroutine into one mux channel; the receiver must see every value exactly once.
    const N: u32 = 20_000;
    for procs in [1, 2] {
        let seen = rt(procs).run(|| {
            let chans: Vec<_> = (0..4).map(|_| chan::bounded::<u32>(0)).collect();
            let (mux_tx, mux_rx) = chan::bounded::<u32>(0);
            for (_, rx) in &chans {
                let (rx, out) = (rx.clone(), mux_tx.clone());
                goexec::spawn(move || {
                    for v in rx {
                        out.send(v).unwrap();
                    }
                });
            }
            drop(mux_tx);
            let txs: Vec<_> = chans.iter().map(|(tx, _)| tx.clone()).collect();
            drop(chans);
            goexec::spawn(move || {
                for i in 0..N {
                    select! {
                        send(txs[0], i) -> r => r.unwrap(),
                        send(txs[1], i) -> r => r.unwrap(),
                        send(txs[2], i) -> r => r.unwrap(),
                        send(txs[3], i) -> r => r.unwrap(),
                    }
                }
                // Dropping the senders closes the four channels, then the mux.
            });
            let mut seen = HashSet::new();
            for v in mux_rx {
                assert!(seen.insert(v), "value {v} received twice");
            }
            seen
        });
        assert_eq!(seen.len(), N as usize, "procs {procs}");
    }
}

#[test]
fn select_fairness_four_ready_arms() {
    let _w = watchdog("select_fairness_four_ready_arms", 120);
    // Four arms always ready: each is chosen 25% ± 3% of 40,000 selects.
    const ROUNDS: usize = 40_000;
    let counts = rt(1).run(|| {
        let chans: Vec<_> = (0..4).map(|_| chan::bounded::<usize>(1)).collect();
        for (i, (tx, _)) in chans.iter().enumerate() {
            tx.send(i).unwrap();
        }
        let mut counts = [0usize; 4];
        for _ in 0..ROUNDS {
            let i = select! {
                recv(chans[0].1) -> v => v.unwrap(),
                recv(chans[1].1) -> v => v.unwrap(),
                recv(chans[2].1) -> v => v.unwrap(),
                recv(chans[3].1) -> v => v.unwrap(),
            };
            counts[i] += 1;
            chans[i].0.send(i).unwrap();
        }
        counts
    });
    for (i, &c) in counts.iter().enumerate() {
        let share = c as f64 / ROUNDS as f64;
        assert!(
            (0.22..=0.28).contains(&share),
            "arm {i} chosen {share:.3} of the time: {counts:?}"
        );
    }
}

#[test]
fn non_blocking_operations() {
    let _w = watchdog("non_blocking_operations", 120);
    for procs in [1, 2] {
        rt(procs).run(|| {
            for cap in [0usize, 1, 8] {
                let (tx, rx) = chan::bounded::<i32>(cap);
                // Nothing to receive.
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
                let got = select! {
                    recv(rx) -> _ => true,
                    default => false,
                };
                assert!(!got, "cap {cap}: a receive from an empty channel was ready");
                // Fill the buffer; then nobody receives, so a send is not ready.
                for i in 0..cap {
                    tx.try_send(i as i32).unwrap();
                }
                assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)));
                let sent = select! {
                    send(tx, 99) -> _ => true,
                    default => false,
                };
                assert!(!sent, "cap {cap}: a send to a full channel was ready");
                for i in 0..cap {
                    assert_eq!(rx.try_recv(), Ok(i as i32));
                }

                // A receiver waiting: a non-blocking send gets through (retry until it is
                // parked, as Go's nonblock test does).
                let rx2 = rx.clone();
                let h = goexec::spawn(move || rx2.recv().unwrap());
                let mut tries = 0;
                loop {
                    let sent = select! {
                        send(tx, 7) -> r => { r.unwrap(); true }
                        default => false,
                    };
                    if sent {
                        break;
                    }
                    tries += 1;
                    assert!(
                        tries < 1_000_000,
                        "cap {cap}: the receiver never became ready"
                    );
                    goexec::yield_now();
                }
                assert_eq!(h.join().unwrap(), 7);

                // A sender waiting: a non-blocking receive gets its value.
                let tx2 = tx.clone();
                let h = goexec::spawn(move || tx2.send(8).unwrap());
                let mut tries = 0;
                let v = loop {
                    match rx.try_recv() {
                        Ok(v) => break v,
                        Err(TryRecvError::Empty) => {
                            tries += 1;
                            assert!(tries < 1_000_000, "cap {cap}: the sender never came");
                            goexec::yield_now();
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                };
                assert_eq!(v, 8);
                h.join().unwrap();
            }
        });
    }
}

#[test]
fn close_semantics() {
    let _w = watchdog("close_semantics", 120);
    for procs in [1, 2] {
        rt(procs).run(|| {
            for cap in [0usize, 3] {
                let (tx, rx) = chan::bounded::<i32>(cap);
                for i in 0..cap {
                    tx.send(i as i32).unwrap();
                }
                assert!(tx.close());
                assert!(!tx.close(), "a second close reports false");
                assert!(rx.is_closed());
                // Buffered values drain first, then every receive fails at once.
                for i in 0..cap {
                    assert_eq!(rx.recv(), Ok(i as i32));
                }
                for _ in 0..3 {
                    assert_eq!(rx.recv(), Err(RecvError));
                    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
                }
                assert_eq!(tx.send(5), Err(SendError(5)));
                assert_eq!(tx.try_send(6), Err(TrySendError::Closed(6)));
                // In a select, a closed channel is ready: receive with Err, send with the
                // value back.
                let r = select! {
                    recv(rx) -> v => v,
                    recv(chan::never::<i32>()) -> _ => unreachable!(),
                };
                assert_eq!(r, Err(RecvError));
                let r = select! {
                    send(tx, 9) -> r => r,
                    default => unreachable!("a send on a closed channel is ready"),
                };
                assert_eq!(r, Err(SendError(9)));
            }

            // Close wakes every blocked receiver, sender, and select.
            let (tx, rx) = chan::bounded::<i32>(0);
            let (done_tx, done_rx) = chan::bounded::<&str>(0);
            for _ in 0..5 {
                let (rx1, done) = (rx.clone(), done_tx.clone());
                goexec::spawn(move || {
                    assert_eq!(rx1.recv(), Err(RecvError));
                    done.send("receiver").unwrap();
                });
                let (rx2, done) = (rx.clone(), done_tx.clone());
                goexec::spawn(move || {
                    let r = select! {
                        recv(rx2) -> v => v,
                        recv(chan::never::<i32>()) -> _ => unreachable!(),
                    };
                    assert_eq!(r, Err(RecvError));
                    done.send("select").unwrap();
                });
            }
            let (stx, srx) = chan::bounded::<i32>(0);
            for i in 0..5 {
                let (stx, done) = (stx.clone(), done_tx.clone());
                goexec::spawn(move || {
                    assert_eq!(stx.send(i), Err(SendError(i)));
                    done.send("sender").unwrap();
                });
            }
            // Let them all block, then close both channels.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while goexec::runtime::num_goroutine() > 1 + 15
                || !goexec::runtime::dump().contains("[select")
                || goexec::runtime::dump().matches("[chan send").count() < 5
                || goexec::runtime::dump().matches("[chan receive").count() < 5
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}",
                    goexec::runtime::dump()
                );
                goexec::yield_now();
            }
            tx.close();
            stx.close();
            let mut woken: Vec<&str> = (0..15).map(|_| done_rx.recv().unwrap()).collect();
            woken.sort_unstable();
            woken.dedup();
            assert_eq!(woken, ["receiver", "select", "sender"]);
            drop(srx);
        });
    }
}

#[test]
fn zero_size_values() {
    let _w = watchdog("zero_size_values", 120);
    rt(2).run(|| {
        let (tx, rx) = chan::bounded::<()>(1000);
        for _ in 0..1000 {
            tx.send(()).unwrap();
        }
        assert_eq!(tx.len(), 1000);
        assert_eq!(tx.try_send(()), Err(TrySendError::Full(())));
        for _ in 0..1000 {
            rx.recv().unwrap();
        }
        assert!(rx.is_empty());
        // Unbuffered units rendezvous like any value.
        let (tx, rx) = chan::bounded::<()>(0);
        let h = goexec::spawn(move || (0..10_000).filter(|_| rx.recv().is_ok()).count());
        for _ in 0..10_000 {
            tx.send(()).unwrap();
        }
        drop(tx);
        assert_eq!(h.join().unwrap(), 10_000);
    });
}

#[test]
fn many_senders_and_receivers_stress() {
    let _w = watchdog("many_senders_and_receivers_stress", 300);
    const SENDERS: u64 = 16;
    const RECEIVERS: u64 = 16;
    const PER: u64 = 5_000;
    for procs in [1, 2] {
        for cap in [0usize, 1, 64] {
            let (sum, count) = rt(procs).run(move || {
                let (tx, rx) = chan::bounded::<u64>(cap);
                for s in 0..SENDERS {
                    let tx = tx.clone();
                    goexec::spawn(move || {
                        for i in 0..PER {
                            tx.send(s * PER + i).unwrap();
                        }
                    });
                }
                drop(tx);
                let receivers: Vec<_> = (0..RECEIVERS)
                    .map(|_| {
                        let rx = rx.clone();
                        goexec::spawn(move || {
                            rx.iter().fold((0u64, 0u64), |a, v| (a.0 + v, a.1 + 1))
                        })
                    })
                    .collect();
                receivers
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            });
            let n = SENDERS * PER;
            assert_eq!(count, n, "procs {procs} cap {cap}");
            assert_eq!(sum, n * (n - 1) / 2, "procs {procs} cap {cap}");
        }
    }
}

#[test]
fn selects_on_both_sides_stress() {
    let _w = watchdog("selects_on_both_sides_stress", 300);
    // Senders and receivers all select over the same two channels (one unbuffered, one
    // buffered), with a send and a receive on one channel in the same select now and then:
    // every value arrives exactly once.
    const SENDERS: u32 = 8;
    const PER: u32 = 4_000;
    for procs in [1, 2] {
        let seen = rt(procs).run(|| {
            let (a_tx, a_rx) = chan::bounded::<u32>(0);
            let (b_tx, b_rx) = chan::bounded::<u32>(4);
            let (out_tx, out_rx) = chan::bounded::<u32>(64);
            let (quit_tx, quit_rx) = chan::bounded::<()>(0);
            for s in 0..SENDERS {
                let (a, b) = (a_tx.clone(), b_tx.clone());
                goexec::spawn(move || {
                    for i in 0..PER {
                        let v = s * PER + i;
                        select! {
                            send(a, v) -> r => r.unwrap(),
                            send(b, v) -> r => r.unwrap(),
                        }
                    }
                });
            }
            for _ in 0..6 {
                let (a, b, out, quit) =
                    (a_rx.clone(), b_rx.clone(), out_tx.clone(), quit_rx.clone());
                goexec::spawn(move || loop {
                    select! {
                        recv(a) -> v => out.send(v.unwrap()).unwrap(),
                        recv(b) -> v => out.send(v.unwrap()).unwrap(),
                        recv(quit) -> _ => return,
                    }
                });
            }
            let mut seen = HashSet::new();
            for _ in 0..SENDERS * PER {
                let v = out_rx.recv().unwrap();
                assert!(seen.insert(v), "value {v} received twice");
            }
            drop(quit_tx); // closes quit: every receiver returns
            seen
        });
        assert_eq!(seen.len(), (SENDERS * PER) as usize, "procs {procs}");
    }
}

#[test]
fn one_select_sending_and_receiving_on_the_same_channel() {
    let _w = watchdog("one_select_sending_and_receiving_on_the_same_channel", 120);
    rt(2).run(|| {
        // Go's "select { case c <- v: case <-c: }": two goroutines doing it pair up.
        let (tx, rx) = chan::bounded::<u32>(0);
        let (res_tx, res_rx) = chan::bounded::<(&str, u32)>(2);
        for id in 0..2u32 {
            let (tx, rx, res) = (tx.clone(), rx.clone(), res_tx.clone());
            goexec::spawn(move || {
                let r = select! {
                    send(tx, id) -> r => { r.unwrap(); ("sent", id) }
                    recv(rx) -> v => ("received", v.unwrap()),
                };
                res.send(r).unwrap();
            });
        }
        let mut rs = [res_rx.recv().unwrap(), res_rx.recv().unwrap()];
        rs.sort_unstable();
        // One sent its id, the other received it.
        assert_eq!(rs[0].0, "received");
        assert_eq!(rs[1].0, "sent");
        assert_eq!(rs[0].1, rs[1].1);
    });
}

#[test]
fn selects_between_goroutines_and_threads() {
    let _w = watchdog("selects_between_goroutines_and_threads", 120);
    let (tx, rx) = chan::bounded::<u32>(0);
    let (back_tx, back_rx) = chan::bounded::<u32>(0);
    // A plain thread selects (parking itself) against goroutines of a runtime.
    let thread = std::thread::spawn(move || {
        let mut got = 0u64;
        for _ in 0..2_000 {
            select! {
                recv(rx) -> v => { got += u64::from(v.unwrap()); }
                recv(chan::never::<u32>()) -> _ => unreachable!(),
            }
        }
        for i in 0..2_000 {
            select! {
                send(back_tx, i) -> r => r.unwrap(),
            }
        }
        got
    });
    let back_sum = rt(2).run(move || {
        let h = goexec::spawn(move || (0..2_000u32).for_each(|i| tx.send(i).unwrap()));
        let sum: u64 = (0..2_000).map(|_| u64::from(back_rx.recv().unwrap())).sum();
        h.join().unwrap();
        sum
    });
    assert_eq!(thread.join().unwrap(), 1_999_000);
    assert_eq!(back_sum, 1_999_000);
}

#[test]
fn select_timeouts_and_dump() {
    let _w = watchdog("select_timeouts_and_dump", 120);
    rt(2).run(|| {
        let (_tx, rx) = chan::bounded::<u32>(0);
        let start = std::time::Instant::now();
        let timed_out = select! {
            recv(rx) -> _ => false,
            recv(chan::after(Duration::from_millis(20))) -> _ => true,
        };
        assert!(timed_out);
        assert!(start.elapsed() >= Duration::from_millis(20));

        // A goroutine blocked in select shows as such in the dump.
        let (stop_tx, stop_rx) = chan::bounded::<()>(0);
        let h = goexec::spawn(move || {
            select! {
                recv(stop_rx) -> _ => {}
                recv(chan::never::<()>()) -> _ => {}
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !goexec::runtime::dump().contains("[select") {
            assert!(std::time::Instant::now() < deadline);
            goexec::yield_now();
        }
        stop_tx.send(()).unwrap();
        h.join().unwrap();
    });
}

/// A send case that a select did not choose, whose record a receiver took off and dropped
/// (the select was already won by another case), still holds its value: the case can be
/// selected again and sends it.
#[test]
fn a_send_case_that_lost_a_claim_keeps_its_value() {
    let _w = watchdog("a_send_case_that_lost_a_claim_keeps_its_value", 30);
    let rt = goexec::Runtime::builder().procs(1).build().unwrap();
    rt.run(|| {
        let (txa, rxa) = chan::bounded::<u32>(0);
        let (txb, rxb) = chan::bounded::<u32>(0);
        let rxa2 = rxa.clone();
        // procs 1: this goroutine runs only once main parks in its select.
        let g = goexec::spawn(move || {
            txb.send(1).unwrap(); // wins main's select (its recv case), readies main
                                  // Still running (procs 1): takes main's send record off rxa's queue; the select
                                  // was won, so the record is dropped from the queue and the try_recv is empty.
            assert!(rxa2.try_recv().is_err());
        });
        let mut send = chan::SendCase::new(&txa, 7);
        let mut recv = chan::RecvCase::new(&rxb);
        let won = chan::select(&mut [&mut send, &mut recv], false);
        assert_eq!(won, Some(1));
        assert_eq!(recv.result().unwrap(), 1);
        g.join().unwrap();
        // The send case was not chosen: its value should still be there to send.
        let h = goexec::spawn(move || rxa.recv());
        let won = chan::select(&mut [&mut send], false);
        assert_eq!(won, Some(0));
        assert!(send.result().is_ok());
        assert_eq!(h.join().unwrap(), Ok(7));
    });
}
