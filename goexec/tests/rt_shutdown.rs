//! What happens to goroutines that are still parked, queued or running when a runtime's main
//! goroutine returns: they are abandoned (as Go abandons them), their handles say so at once,
//! and anything that still names them (a channel's queue, a sync primitive, a future's waker, a
//! join slot) can be used afterwards without touching freed memory.
//!
//! Each scenario runs in a child process of this binary whose allocator quarantines freed
//! blocks: they are filled with 0xAB and never reused, so a use after free reads garbage
//! deterministically (and the runtime's own debug checks, or a wild pointer, stop the child)
//! instead of passing by luck.

mod common;

use goexec::chan;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Quarantining allocator, on in the child processes only.
struct Quarantine;

static QUARANTINE: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator; a block is either given back to it or, under
// quarantine, overwritten within its own layout and never handed out again.
unsafe impl GlobalAlloc for Quarantine {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's layout contract, passed on.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if QUARANTINE.load(Ordering::Relaxed) {
            // SAFETY: `p` is a live block of `l.size()` bytes that the caller gives up.
            unsafe { std::ptr::write_bytes(p, 0xAB, l.size()) };
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(p, l) }
        }
    }
}

#[global_allocator]
static ALLOC: Quarantine = Quarantine;

const CHILD: &str = "GOEXEC_SHUTDOWN_CHILD";

/// Runs the test `name` (this very function's body, `body`) in a child process with the
/// quarantine on, and checks that it exits cleanly.
///
/// Under valgrind (CI's memcheck run) the body runs in this process instead, without the
/// quarantine: memcheck itself reports any read of a freed block.
fn isolated(name: &str, body: fn()) {
    if common::under_valgrind() {
        let _w = common::watchdog("shutdown, under valgrind", 300);
        body();
        return;
    }
    if std::env::var_os(CHILD).is_some() {
        QUARANTINE.store(true, Ordering::Relaxed);
        let _w = common::watchdog("shutdown child", 20);
        body();
        return;
    }
    let out = common::run_test_child(name, &[(CHILD, "1")], Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} failed in its child process ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

fn rt(procs: usize) -> goexec::Runtime {
    goexec::Runtime::builder()
        .procs(procs)
        .build()
        .expect("runtime")
}

/// Something parked on by a goroutine that `run` abandons, and what wakes it afterwards.
fn abandon_then_wake<W: Send + 'static>(park: impl FnOnce() -> W + Send + 'static) -> W {
    rt(1).run(move || {
        let w = park();
        // The goroutine that parks runs next (runnext) and parks before we return.
        goexec::time::sleep(Duration::from_millis(20));
        w
    })
}

#[test]
fn channel_send_after_run_to_a_parked_receiver() {
    isolated("channel_send_after_run_to_a_parked_receiver", || {
        let tx = abandon_then_wake(|| {
            let (tx, rx) = chan::bounded::<u64>(0);
            goexec::spawn(move || rx.recv());
            tx
        });
        // The receiver was parked when run returned: the value goes to it, and waking it is a
        // no-op on the stopped runtime.
        assert!(tx.send(7).is_ok());
    });
}

#[test]
fn channel_recv_after_run_from_a_parked_sender() {
    isolated("channel_recv_after_run_from_a_parked_sender", || {
        let rx = abandon_then_wake(|| {
            let (tx, rx) = chan::bounded::<u64>(0);
            goexec::spawn(move || tx.send(9));
            rx
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(9));
    });
}

#[test]
fn sync_wakes_after_run() {
    isolated("sync_wakes_after_run", || {
        // A goexec Mutex and Semaphore held by plain threads, waited for by goroutines that
        // run abandons; released afterwards.
        let mutex = Arc::new(goexec::sync::Mutex::new(0u32));
        let sem = Arc::new(goexec::sync::Semaphore::new(1));
        let wg = goexec::sync::WaitGroup::new();
        wg.add(1);
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let (mutex, sem) = (mutex.clone(), sem.clone());
            std::thread::spawn(move || {
                let g = mutex.lock();
                let p = sem.acquire();
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                drop((g, p));
            })
        };
        held_rx.recv().unwrap();
        let (m2, s2, w2) = (mutex.clone(), sem.clone(), wg.clone());
        abandon_then_wake(move || {
            goexec::spawn(move || *m2.lock() += 1);
            goexec::spawn(move || drop(s2.acquire()));
            goexec::spawn(move || w2.wait());
        });
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        wg.done();
        // The waiters were woken on a stopped runtime: nothing ran, nothing broke. (The
        // semaphore's permit went to its abandoned waiter, as a handoff does.)
        assert_eq!(*mutex.lock(), 0);
    });
}

#[test]
fn future_waker_after_run() {
    isolated("future_waker_after_run", || {
        let tx = abandon_then_wake(|| {
            let (tx, rx) = futures::channel::oneshot::channel::<u8>();
            goexec::spawn(move || goexec::block_on(rx));
            tx
        });
        // Wakes the block_on's waker, which names the abandoned goroutine.
        assert!(tx.send(1).is_ok());
    });
}

#[test]
fn join_waiter_of_an_abandoned_goroutine() {
    isolated("join_waiter_of_an_abandoned_goroutine", || {
        // A parked in join(B), B parked in a receive: abandoning B wakes A's join slot.
        let (a, tx) = abandon_then_wake(|| {
            let (tx, rx) = chan::bounded::<u8>(0);
            let b = goexec::spawn(move || rx.recv());
            let a = goexec::spawn(move || b.join().map_err(|e| e.is_abandoned()));
            (a, tx)
        });
        let e = a.join().expect_err("A never finishes");
        assert!(e.is_abandoned(), "{e}");
        drop(tx);
    });
}

/// How `join` of a goroutine that was in a given state when `run` returned ends, from a
/// plain thread, and how long it took.
fn join_after_run(which: &'static str) -> (Result<u32, (bool, bool, String)>, Duration) {
    let drops = Arc::new(AtomicUsize::new(0));
    let d2 = drops.clone();
    // At procs 1 a goroutine spawned just before main returns cannot start on another P.
    let procs = if which == "unstarted" { 1 } else { 2 };
    let h = rt(procs).run(move || {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let h = match which {
            "parked" => {
                let (tx, rx) = chan::bounded::<u8>(0);
                std::mem::forget(tx);
                goexec::spawn(move || {
                    let _c = Counted(d2);
                    let _ = rx.recv();
                    1
                })
            }
            "sleeping" => goexec::spawn(move || {
                let _c = Counted(d2);
                goexec::time::sleep(Duration::from_secs(3600));
                2
            }),
            "blocking" => goexec::spawn(|| {
                goexec::blocking(|| std::thread::sleep(Duration::from_millis(200)));
                3
            }),
            "unstarted" => goexec::spawn(|| 5),
            _ => unreachable!(),
        };
        if which != "unstarted" {
            goexec::time::sleep(Duration::from_millis(10));
        }
        h
    });
    assert!(
        which == "blocking" || h.is_finished(),
        "{which}: a goroutine that cannot finish counts as finished once run returns"
    );
    let t = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = h
            .join()
            .map_err(|e| (e.is_cancelled(), e.is_abandoned(), e.to_string()));
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{which}: join still blocked after 5 s"));
    // An abandoned goroutine's frames are never unwound: its locals are not dropped.
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    (r, t.elapsed())
}

#[test]
fn join_of_goroutines_abandoned_by_run() {
    isolated("join_of_goroutines_abandoned_by_run", || {
        for which in ["parked", "sleeping"] {
            let (r, took) = join_after_run(which);
            let (cancelled, abandoned, msg) = r.expect_err(which);
            assert!(cancelled && abandoned, "{which}: {msg}");
            assert!(msg.contains("runtime shut down"), "{which}: {msg}");
            assert!(took < Duration::from_secs(2), "{which}: join took {took:?}");
        }
        // A blocking section is waited for by run: its goroutine finishes.
        assert_eq!(join_after_run("blocking").0, Ok(3));
        let (cancelled, abandoned, msg) = join_after_run("unstarted").0.expect_err("unstarted");
        assert!(cancelled && !abandoned, "{msg}");
    });
}

#[test]
fn join_in_a_second_run_of_a_goroutine_abandoned_by_the_first() {
    isolated(
        "join_in_a_second_run_of_a_goroutine_abandoned_by_the_first",
        || {
            let rt = rt(1);
            let h = rt.run(|| {
                let (tx, rx) = chan::bounded::<u8>(0);
                std::mem::forget(tx);
                let h = goexec::spawn(move || rx.recv().is_ok());
                goexec::time::sleep(Duration::from_millis(10));
                h
            });
            // Not a deadlock report: the join returns at once.
            let r = rt.run(move || h.join().map_err(|e| e.is_abandoned()));
            assert_eq!(r, Err(true));
            // And as a future.
            let h = rt.run(|| {
                let h = goexec::spawn(|| goexec::time::sleep(Duration::from_secs(3600)));
                goexec::time::sleep(Duration::from_millis(10));
                h
            });
            let r = goexec::block_on(h);
            assert!(r.expect_err("abandoned").is_abandoned());
        },
    );
}

/// Runs a runtime at procs 2 whose main goroutine first runs `finished` goroutines of `body`
/// to completion (their records fill the Ps' free lists), then starts `hog`, which must reach
/// no scheduling point until the `released` check it gets says true. `run` returns with the
/// hog's thread detached, the `Runtime` is dropped (freeing what it kept), and only then is
/// the hog released.
fn hog_outliving_its_runtime(
    finished: usize,
    body: fn(),
    hog: impl FnOnce(&dyn Fn() -> bool) + Send + 'static,
) {
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let rt = rt(2);
    rt.run(move || {
        let hs: Vec<_> = (0..finished).map(|_| goexec::spawn(body)).collect();
        for h in hs {
            h.join().unwrap();
        }
        let (started_tx, started_rx) = chan::bounded::<()>(1);
        goexec::spawn(move || {
            started_tx.send(()).unwrap();
            let go_rx = go_rx.lock().unwrap();
            hog(&|| match go_rx.try_recv() {
                Ok(()) => true,
                Err(std::sync::mpsc::TryRecvError::Empty) => false,
                Err(e) => panic!("{e}"),
            });
        });
        started_rx.recv().unwrap();
    });
    drop(rt);
    go_tx.send(()).unwrap();
}

#[test]
fn goroutine_running_at_shutdown_spawns_after_the_runtime_is_dropped() {
    isolated(
        "goroutine_running_at_shutdown_spawns_after_the_runtime_is_dropped",
        || {
            let (hs_tx, hs_rx) = std::sync::mpsc::channel();
            // Sleeping goroutines spread over both Ps' free lists.
            let body = || goexec::time::sleep(Duration::from_millis(1));
            hog_outliving_its_runtime(64, body, move |released| {
                while !released() {
                    std::hint::spin_loop();
                }
                let hs: Vec<_> = (0..8).map(|i| goexec::spawn(move || i)).collect();
                hs_tx.send(hs).unwrap();
            });
            let hs = hs_rx.recv().expect("the hog spawned");
            for h in hs {
                let e = h.join().expect_err("spawned after shutdown: never runs");
                assert!(e.is_cancelled() && !e.is_abandoned(), "{e}");
            }
        },
    );
}

/// Runs in this process, not in a quarantined child: a dump reads records without crashing
/// even when they are freed, so only memcheck (CI runs this file under valgrind) sees the
/// reads of freed records that this checks for.
#[test]
fn dump_from_a_goroutine_left_running_after_the_runtime_is_dropped() {
    let _w = common::watchdog("dump_from_a_goroutine_left_running", 120);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
    // Many finished goroutines: records a dump lists, enough that one dump lasts through
    // shutdown and the Runtime's drop. A dump is no scheduling point.
    hog_outliving_its_runtime(
        20_000,
        || (),
        move |released| {
            let mut n = 0;
            loop {
                n += goexec::runtime::dump().len();
                if released() {
                    break;
                }
            }
            // Once more after the Runtime is gone.
            n += goexec::runtime::dump().len();
            done_tx.send(n).unwrap();
        },
    );
    assert!(done_rx.recv().unwrap() > 0);
}

#[test]
fn a_panicking_drop_at_shutdown_does_not_leave_other_joins_hanging() {
    isolated(
        "a_panicking_drop_at_shutdown_does_not_leave_other_joins_hanging",
        || {
            struct PanicOnDrop;
            impl Drop for PanicOnDrop {
                fn drop(&mut self) {
                    panic!("a capture's drop panics");
                }
            }
            let (htx, hrx) = std::sync::mpsc::channel();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt(1).run(move || {
                    // Two finished goroutines leave their records in the free list, X then Y;
                    // the next two spawns reuse Y, then X, so the goroutine whose drop panics
                    // comes first in teardown's list.
                    let (ytx, yrx) = chan::bounded::<()>(0);
                    let x = goexec::spawn(|| ());
                    let y = goexec::spawn(move || yrx.recv().unwrap());
                    x.join().unwrap();
                    ytx.send(()).unwrap();
                    y.join().unwrap();
                    // Parked for good (Y's record).
                    let (tx, rx) = chan::bounded::<()>(0);
                    std::mem::forget(tx);
                    let (rtx, rrx) = chan::bounded::<()>(0);
                    let parked = goexec::spawn(move || {
                        rtx.send(()).unwrap();
                        let _ = rx.recv();
                    });
                    rrx.recv().unwrap();
                    htx.send(parked).unwrap();
                    let p = PanicOnDrop;
                    // Never runs (X's record): its function, with `p`, is dropped at shutdown.
                    drop(goexec::spawn(move || drop(p)));
                })
            }));
            let msg = r.expect_err("run re-raises the drop's panic");
            assert_eq!(msg.downcast_ref::<&str>(), Some(&"a capture's drop panics"));
            let parked = hrx.recv().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || tx.send(parked.join().map_err(|e| e.is_abandoned())));
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(5)).expect("join hangs"),
                Err(true)
            );
        },
    );
}

#[test]
fn socket_waits_after_run() {
    isolated("socket_waits_after_run", || {
        use std::io::Write;
        // A goroutine parked on a socket's readiness when run returns; then the socket
        // becomes readable and a plain thread waits on it: the poller, on its own now, must
        // not touch the abandoned goroutine.
        let (sock, mut peer) = abandon_then_wake(|| {
            let (mut ours, peer) = goexec::mio::net::UnixStream::pair().unwrap();
            let reg = goexec::netpoll::Registration::new(&mut ours).unwrap();
            let sock = Arc::new((ours, reg));
            let s2 = sock.clone();
            goexec::spawn(move || s2.1.wait_readable(None));
            (sock, peer)
        });
        peer.write_all(b"x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        sock.1.wait_readable(Some(deadline)).expect("readable");
        // The abandoned goroutine keeps its clone of the socket for good.
        assert_eq!(Arc::strong_count(&sock), 2);
    });
}
