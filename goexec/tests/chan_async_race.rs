//! Stress: channel futures polled, re-polled and dropped while plain threads send,
//! receive and close concurrently (the Pending record's refresh, cancel and finish racing a
//! waker's claim). Checked: no value lost or dropped twice, every sent value received or
//! dropped exactly once; run it under valgrind for the memory side.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

static LIVE: AtomicI64 = AtomicI64::new(0);
/// The tests share LIVE: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A counted value; its number only tells values apart in a failure's debug output.
#[derive(Debug)]
struct Val(#[allow(dead_code)] u64);
impl Val {
    fn new(v: u64) -> Val {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Val(v)
    }
}
impl Drop for Val {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Count(AtomicU64);
impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn spin(n: u64) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

fn rounds() -> u64 {
    if std::env::var_os("GOEXEC_TEST_VALGRIND").is_some() {
        3000
    } else {
        20_000
    }
}

#[test]
fn recv_futures_dropped_or_repolled_while_senders_race() {
    let _w = common::watchdog("recv_futures_dropped_or_repolled_while_senders_race", 300);
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..rounds() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (cap, pre, post, mode) = (
            (rng % 2) as usize,
            (rng >> 8) % 200,
            (rng >> 16) % 200,
            (rng >> 24) % 3,
        );
        let (tx, rx) = goexec::chan::bounded::<Val>(cap);
        let sender = std::thread::spawn(move || {
            spin(pre);
            tx.send(Val::new(i)).is_ok()
        });
        let wakes = Arc::new(Count(AtomicU64::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut got = None;
        {
            let mut f = rx.recv_async();
            if let Poll::Ready(r) = Pin::new(&mut f).poll(&mut cx) {
                got = Some(r);
            }
            spin(post);
            if got.is_none() {
                match mode {
                    0 => drop(f), // cancel: off the queue, or the claimed value dropped
                    1 => {
                        // poll until ready
                        loop {
                            if let Poll::Ready(r) = Pin::new(&mut f).poll(&mut cx) {
                                got = Some(r);
                                break;
                            }
                            std::thread::yield_now();
                        }
                    }
                    _ => {
                        // one more poll, then drop
                        if let Poll::Ready(r) = Pin::new(&mut f).poll(&mut cx) {
                            got = Some(r);
                        }
                        drop(f);
                    }
                }
            } else {
                drop(f);
            }
        }
        let got_val = matches!(got, Some(Ok(_)));
        drop(got);
        drop(rx); // closes: a sender still waiting gets its value back
        let sent = sender.join().unwrap();
        if got_val {
            assert!(sent, "round {i}: received a value nobody sent");
        }
    }
    assert_eq!(
        LIVE.load(Ordering::SeqCst),
        0,
        "values leaked or dropped twice"
    );
}

#[test]
fn send_futures_dropped_or_repolled_while_receivers_race() {
    let _w = common::watchdog("send_futures_dropped_or_repolled_while_receivers_race", 300);
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let received = Arc::new(AtomicU64::new(0));
    for i in 0..rounds() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (pre, post, mode) = ((rng >> 8) % 200, (rng >> 16) % 200, (rng >> 24) % 3);
        let (tx, rx) = goexec::chan::bounded::<Val>(0);
        let recvd = received.clone();
        let receiver = std::thread::spawn(move || {
            spin(pre);
            if let Ok(v) = rx.recv() {
                recvd.fetch_add(1, Ordering::SeqCst);
                drop(v);
                true
            } else {
                false
            }
        });
        let wakes = Arc::new(Count(AtomicU64::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut done = None;
        {
            let mut f = tx.send_async(Val::new(i));
            if let Poll::Ready(r) = Pin::new(&mut f).poll(&mut cx) {
                done = Some(r.is_ok());
            }
            spin(post);
            if done.is_none() {
                match mode {
                    0 => drop(f),
                    1 => loop {
                        if let Poll::Ready(r) = Pin::new(&mut f).poll(&mut cx) {
                            done = Some(r.is_ok());
                            break;
                        }
                        std::thread::yield_now();
                    },
                    _ => {
                        if let Poll::Ready(r) = Pin::new(&mut f).poll(&mut cx) {
                            done = Some(r.is_ok());
                        }
                        drop(f);
                    }
                }
            } else {
                drop(f);
            }
        }
        drop(tx); // closes: a receiver still waiting gets RecvError
        let got = receiver.join().unwrap();
        if done == Some(true) {
            assert!(got, "round {i}: a send completed but nothing was received");
        }
    }
    assert_eq!(
        LIVE.load(Ordering::SeqCst),
        0,
        "values leaked or dropped twice"
    );
}
