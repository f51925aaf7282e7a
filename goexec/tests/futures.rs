//! Futures and goroutines together: block_on parks only its goroutine, JoinHandle is a
//! future, spawn_future, a thousand futures joined, and the wakeups checked with tokio-test.

use futures::channel::oneshot;
use goexec::Runtime;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;
use tokio_test::{assert_pending, assert_ready};

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

#[test]
fn a_oneshot_completed_by_another_goroutine_wakes_block_on() {
    for procs in [1, 2] {
        let v = rt(procs).run(|| {
            let (tx, rx) = oneshot::channel::<u32>();
            let (ready_tx, ready_rx) = goexec::chan::bounded::<()>(0);
            goexec::spawn(move || {
                // Wait until the receiver is parked in block_on ("future" in the dump), so
                // that the send really has to wake it.
                ready_rx.recv().unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !goexec::runtime::dump().contains("[future") {
                    assert!(std::time::Instant::now() < deadline);
                    goexec::yield_now();
                }
                tx.send(7).unwrap();
            });
            ready_tx.send(()).unwrap();
            goexec::block_on(rx).unwrap()
        });
        assert_eq!(v, 7, "procs {procs}");
    }
}

#[test]
fn block_on_parks_only_the_goroutine() {
    // At procs 1, a goroutine waiting in block_on must leave the only M to the goroutine that
    // will complete its future.
    let v = rt(1).run(|| {
        let (tx, rx) = oneshot::channel::<&str>();
        let waiter = goexec::spawn(move || goexec::block_on(rx).unwrap());
        goexec::spawn(move || {
            goexec::time::sleep(Duration::from_millis(5));
            tx.send("done").unwrap();
        });
        waiter.join().unwrap()
    });
    assert_eq!(v, "done");
}

#[test]
fn a_join_handle_awaited_in_async_code() {
    for procs in [1, 2] {
        let v = rt(procs).run(|| {
            let h = goexec::spawn(|| {
                goexec::time::sleep(Duration::from_millis(2));
                40
            });
            goexec::block_on(async move {
                let a = h.await.unwrap();
                let b = goexec::spawn(|| 2).await.unwrap();
                a + b
            })
        });
        assert_eq!(v, 42, "procs {procs}");
    }
}

#[test]
fn spawn_future_and_a_thousand_joined() {
    for procs in [1, 2] {
        let total = rt(procs).run(|| {
            let hs: Vec<_> = (0..1_000u64)
                .map(|i| {
                    goexec::spawn_future(async move {
                        // Awaits another goroutine, so that some are really pending.
                        goexec::spawn(move || i).await.unwrap() * 2
                    })
                })
                .collect();
            let results = goexec::block_on(futures::future::join_all(hs));
            results.into_iter().map(|r| r.unwrap()).sum::<u64>()
        });
        assert_eq!(total, 999_000, "procs {procs}");
    }
}

#[test]
fn block_on_on_a_plain_thread() {
    let (tx, rx) = oneshot::channel::<u32>();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        tx.send(3).unwrap();
    });
    assert_eq!(goexec::block_on(rx), Ok(3));
    t.join().unwrap();
    // A JoinHandle awaited from a thread, its goroutine on a runtime.
    let (htx, hrx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        rt(1).run(move || {
            htx.send(goexec::spawn(|| {
                goexec::time::sleep(Duration::from_millis(5));
                "from a goroutine"
            }))
            .unwrap();
            goexec::time::sleep(Duration::from_millis(50));
        })
    });
    let h = hrx.recv().unwrap();
    assert_eq!(goexec::block_on(h).unwrap(), "from a goroutine");
    r.join().unwrap();
}

#[test]
fn join_handle_wakeups_with_tokio_test() {
    rt(2).run(|| {
        let (go_tx, go_rx) = goexec::chan::bounded::<()>(0);
        let h = goexec::spawn(move || {
            go_rx.recv().unwrap();
            5
        });
        let mut task = tokio_test::task::spawn(h);
        assert_pending!(task.poll());
        assert!(!task.is_woken());
        // Polled again: the waker is replaced, and only the newest one must fire.
        assert_pending!(task.poll());
        go_tx.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !task.is_woken() {
            assert!(std::time::Instant::now() < deadline, "never woken");
            goexec::yield_now();
        }
        assert_eq!(assert_ready!(task.poll()).unwrap(), 5);
    });
}

#[test]
fn a_panic_comes_through_the_future_as_a_join_error() {
    rt(1).run(|| {
        let h = goexec::spawn(|| -> u32 { panic!("inside") });
        let err = goexec::block_on(h).unwrap_err();
        assert!(err.is_panic());
    });
}

#[test]
fn sleep_async_wakes_its_task_at_the_deadline() {
    rt(1).run(|| {
        let start = std::time::Instant::now();
        let mut sleep =
            tokio_test::task::spawn(goexec::time::sleep_async(Duration::from_millis(200)));
        assert_pending!(sleep.poll());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !sleep.is_woken() {
            assert!(std::time::Instant::now() < deadline, "never woken");
            goexec::yield_now();
        }
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert_ready!(sleep.poll());

        // Reset moves the deadline; block_on waits for the new one.
        let mut s = goexec::time::sleep_async(Duration::from_secs(3600));
        s.reset(std::time::Instant::now() + Duration::from_millis(2));
        let start = std::time::Instant::now();
        goexec::block_on(s);
        assert!(start.elapsed() < Duration::from_secs(60));
    });
}

#[test]
fn channel_async_operations_mix_with_blocking_ones() {
    for procs in [1, 2] {
        let sum = rt(procs).run(|| {
            for cap in [0usize, 4] {
                let (tx, rx) = goexec::chan::bounded::<u64>(cap);
                // Async senders, a blocking receiver.
                let senders: Vec<_> = (0..4u64)
                    .map(|s| {
                        let tx = tx.clone();
                        goexec::spawn_future(async move {
                            for i in 0..500 {
                                tx.send_async(s * 500 + i).await.unwrap();
                            }
                        })
                    })
                    .collect();
                drop(tx);
                let got: u64 = rx.iter().sum();
                assert_eq!(got, (0..2000).sum::<u64>(), "cap {cap}");
                senders.into_iter().for_each(|h| h.join().unwrap());
            }
            // Blocking senders, async receivers.
            let (tx, rx) = goexec::chan::bounded::<u64>(0);
            let receivers: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    goexec::spawn_future(async move {
                        let mut sum = 0;
                        while let Ok(v) = rx.recv_async().await {
                            sum += v;
                        }
                        sum
                    })
                })
                .collect();
            drop(rx);
            for i in 0..3000u64 {
                tx.send(i).unwrap();
            }
            drop(tx);
            receivers
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<u64>()
        });
        assert_eq!(sum, (0..3000).sum::<u64>(), "procs {procs}");
    }
}

#[test]
fn dropped_channel_futures_leave_the_queue() {
    rt(1).run(|| {
        let (tx, rx) = goexec::chan::bounded::<u32>(0);
        // A receive future polled once (queued), then dropped: a later send must not be
        // handed to it.
        let mut pending = tokio_test::task::spawn(rx.recv_async());
        assert_pending!(pending.poll());
        drop(pending);
        assert_eq!(tx.try_send(1), Err(goexec::chan::TrySendError::Full(1)));
        // A send future queued then dropped: the value never arrives.
        let mut send = tokio_test::task::spawn(tx.send_async(2));
        assert_pending!(send.poll());
        drop(send);
        assert_eq!(rx.try_recv(), Err(goexec::chan::TryRecvError::Empty));
        // A queued receive is woken by a send, and by close.
        let mut recv = tokio_test::task::spawn(rx.recv_async());
        assert_pending!(recv.poll());
        assert_pending!(recv.poll()); // the waker is replaced, still queued once
        let h = goexec::spawn(move || {
            tx.send(3).unwrap();
            tx.close();
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !recv.is_woken() {
            assert!(std::time::Instant::now() < deadline, "never woken");
            goexec::yield_now();
        }
        assert_eq!(assert_ready!(recv.poll()), Ok(3));
        h.join().unwrap();
        assert_eq!(
            goexec::block_on(rx.recv_async()),
            Err(goexec::chan::RecvError)
        );
    });
}

/// A waker that does nothing, for polling by hand.
struct NoopWake;
impl std::task::Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// A future leaked (mem::forget) while its record is queued, then the channel dropped: safe
/// code. The record is leaked (fine), but in a debug build WaitQueue's drop asserts that the
/// queue is empty and panics inside the Receiver's drop.
#[test]
fn forgotten_recv_future_then_channel_dropped() {
    let r = std::panic::catch_unwind(|| {
        let (tx, rx) = goexec::chan::bounded::<u32>(0);
        let waker = Waker::from(Arc::new(NoopWake));
        let mut cx = Context::from_waker(&waker);
        let mut f = rx.recv_async();
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        std::mem::forget(f);
        drop(tx);
        drop(rx); // last reference: the channel (and its queues) go here
    });
    assert!(
        r.is_ok(),
        "dropping a channel after mem::forget of a queued future panicked"
    );
}

/// Same with a SendFuture: its value stays in the leaked record (never dropped: a leak, as
/// mem::forget implies).
#[test]
fn forgotten_send_future_then_channel_dropped() {
    let r = std::panic::catch_unwind(|| {
        let (tx, rx) = goexec::chan::bounded::<u32>(0);
        let waker = Waker::from(Arc::new(NoopWake));
        let mut cx = Context::from_waker(&waker);
        let mut f = tx.send_async(7);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        std::mem::forget(f);
        drop(rx);
        drop(tx);
    });
    assert!(
        r.is_ok(),
        "dropping a channel after mem::forget of a queued future panicked"
    );
}
