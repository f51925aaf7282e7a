//! Goroutine tracebacks (`runtime::stack`): goroutines parked in a channel receive, a mutex, a
//! `WaitGroup`, a sleep and a `select` are each listed with the user's function that parked
//! as the first of their frames, at procs 1 and 2; the caller's own stack; goroutines that
//! cannot be walked say why; a walk never races a wakeup. (The socket read is in
//! goexec-net's tests.)
//!
//! Each parking function does something after its call (`black_box`): optimised code turns a
//! call in tail position into a jump, and the caller's frame is then gone from every stack.

mod common;

use common::{under_emulation, under_valgrind, watchdog};
use goexec::chan;
use goexec::sync::{Mutex, WaitGroup};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The block of `stack(true)` for the goroutine named `name`, once its header shows `reason`
/// (polled, with a deadline: the goroutine parks when it gets there).
fn block_of(name: &str, reason: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = goexec::runtime::stack(true);
        let head = format!("\"{name}\" [{reason}");
        if let Some(block) = all.split("\n\n").find(|b| b.contains(&head)) {
            return block.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "goroutine {name:?} never showed [{reason}]:\n{all}"
        );
        goexec::yield_now();
    }
}

/// The first frame (function name) of a goroutine's block.
fn first_frame(block: &str) -> &str {
    block.lines().nth(1).unwrap_or("")
}

#[inline(never)]
fn parked_in_chan_recv(rx: chan::Receiver<u32>) -> Option<u32> {
    black_box(rx.recv().ok())
}

#[inline(never)]
fn parked_in_mutex(m: &Mutex<u32>) -> u32 {
    black_box(*m.lock())
}

#[inline(never)]
fn parked_in_waitgroup(wg: &WaitGroup) {
    wg.wait();
    black_box(());
}

#[inline(never)]
fn parked_in_sleep() {
    goexec::time::sleep(Duration::from_secs(3600));
    black_box(());
}

#[inline(never)]
fn parked_in_select(a: chan::Receiver<u32>, b: chan::Receiver<u32>) -> u32 {
    black_box(goexec::select! {
        recv(a) -> v => v.unwrap_or(0),
        recv(b) -> v => v.unwrap_or(1),
    })
}

fn named(name: &str) -> goexec::Builder {
    goexec::Builder::new().name(name)
}

/// Parks one goroutine of each kind, checks each one's block, then lets them all go.
fn every_kind(procs: usize) {
    let _w = watchdog("every_kind", 60);
    let rt = goexec::Runtime::builder().procs(procs).build().unwrap();
    rt.run(move || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let recv = named("recv")
            .spawn(move || parked_in_chan_recv(rx))
            .unwrap();

        let m = Arc::new(Mutex::new(7));
        let guard = m.lock();
        let m2 = m.clone();
        let mutex = named("mutex").spawn(move || parked_in_mutex(&m2)).unwrap();

        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let wg2 = wg.clone();
        let wait = named("wg")
            .spawn(move || parked_in_waitgroup(&wg2))
            .unwrap();

        let sleeper = named("sleep")
            .spawn(|| {
                parked_in_sleep();
            })
            .unwrap();

        let (atx, arx) = chan::bounded::<u32>(0);
        let (_btx, brx) = chan::bounded::<u32>(0);
        let sel = named("select")
            .spawn(move || parked_in_select(arx, brx))
            .unwrap();

        for (name, reason, func) in [
            ("recv", "chan receive", "parked_in_chan_recv"),
            ("mutex", "sync.Mutex.Lock", "parked_in_mutex"),
            ("wg", "sync.WaitGroup.Wait", "parked_in_waitgroup"),
            ("sleep", "sleep", "parked_in_sleep"),
            ("select", "select", "parked_in_select"),
        ] {
            let block = block_of(name, reason);
            // `traceback::func`; only `func` in a build with line tables alone.
            let first = first_frame(&block);
            assert!(
                first == format!("traceback::{func}") || first == func,
                "procs {procs}: {name}'s first frame:\n{block}"
            );
            // The frame's file and line, then the caller (the goroutine's closure), then where
            // it was spawned: by the main goroutine, here.
            let lines: Vec<&str> = block.lines().collect();
            assert!(
                lines[2].starts_with('\t') && lines[2].contains("traceback.rs:"),
                "{block}"
            );
            assert!(lines[3].contains("{{closure}}"), "{block}");
            let last = lines.last().unwrap();
            assert!(
                last.starts_with("created by goroutine 1 at ") && last.contains("traceback.rs:"),
                "{block}"
            );
            // No runtime frame is shown by default.
            assert!(!block.contains("goexec::"), "{block}");
        }

        tx.send(1).unwrap();
        assert_eq!(recv.join().unwrap(), Some(1));
        drop(guard);
        assert_eq!(mutex.join().unwrap(), 7);
        wg.done();
        wait.join().unwrap();
        atx.send(5).unwrap();
        assert_eq!(sel.join().unwrap(), 5);
        // The sleeper is left parked: the runtime abandons it at the end of run.
        drop(sleeper);
    });
}

#[test]
fn every_kind_procs_1() {
    every_kind(1);
}

#[test]
fn every_kind_procs_2() {
    every_kind(2);
}

#[inline(never)]
fn my_own_frame() -> String {
    black_box(goexec::runtime::stack(false))
}

/// `stack(false)`: only the caller, running, with its own function first.
#[test]
fn own_stack() {
    goexec::run(|| {
        let (_tx, rx) = chan::bounded::<u32>(0);
        let other = goexec::spawn(move || rx.recv());
        let s = my_own_frame();
        assert!(s.starts_with("goroutine 1 [running]:\n"), "{s}");
        assert_eq!(first_frame(&s), "traceback::my_own_frame", "{s}");
        assert_eq!(s.matches("goroutine ").count(), 1, "{s}");
        assert!(s
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("created at "));
        drop(_tx);
        let _ = other.join();
    });
}

/// On a plain thread there is no goroutine: empty, as `dump` is.
#[test]
fn plain_thread_is_empty() {
    assert_eq!(goexec::runtime::stack(true), "");
    assert_eq!(goexec::runtime::stack(false), "");
    assert_eq!(goexec::runtime::dump_stacks(), "");
}

/// A goroutine running on another M and one inside `blocking` are listed without frames,
/// saying why; a runnable one too.
#[test]
fn unwalkable_goroutines_say_why() {
    let _w = watchdog("unwalkable_goroutines_say_why", 60);
    let rt = goexec::Runtime::builder().procs(2).build().unwrap();
    rt.run(|| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let spinner = named("spinner")
            .spawn(move || {
                while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
            .unwrap();
        let (btx, brx) = std::sync::mpsc::channel::<()>();
        let blocker = named("blocker")
            .spawn(move || goexec::blocking(|| brx.recv().unwrap()))
            .unwrap();
        let spin = block_of("spinner", "running");
        assert!(
            spin.contains("\tgoroutine running on other thread; stack unavailable"),
            "{spin}"
        );
        let block = block_of("blocker", "syscall");
        assert!(
            block.contains("\tgoroutine in a blocking section on another thread"),
            "{block}"
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        btx.send(()).unwrap();
        spinner.join().unwrap();
        blocker.join().unwrap();
    });
}

/// Walks race wakeups: goroutines ping-pong on channels while another goroutine takes
/// tracebacks of everyone as fast as it can. A walk of a goroutine that wakes meanwhile must
/// neither crash nor lose the wakeup (the scan bit holds the wakeup until the walk is done).
fn walks_race_wakeups(procs: usize) {
    let _w = watchdog("walks_race_wakeups", 120);
    let rt = goexec::Runtime::builder().procs(procs).build().unwrap();
    rt.run(|| {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut pairs = Vec::new();
        for _ in 0..4 {
            let (atx, arx) = chan::bounded::<u32>(0);
            let (btx, brx) = chan::bounded::<u32>(0);
            pairs.push(goexec::spawn(move || {
                for i in 0..2000 {
                    atx.send(i).unwrap();
                    assert_eq!(brx.recv().unwrap(), i);
                }
            }));
            pairs.push(goexec::spawn(move || {
                while let Ok(i) = arx.recv() {
                    btx.send(i).unwrap();
                }
            }));
        }
        let d2 = done.clone();
        let tracer = goexec::spawn(move || {
            let mut n = 0u64;
            while !d2.load(std::sync::atomic::Ordering::Relaxed) {
                let s = goexec::runtime::stack(true);
                assert!(s.starts_with("goroutine "), "{s}");
                n += 1;
                goexec::yield_now();
            }
            n
        });
        for p in pairs {
            p.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(tracer.join().unwrap() > 0);
    });
}

#[test]
fn walks_race_wakeups_procs_1() {
    walks_race_wakeups(1);
}

#[test]
fn walks_race_wakeups_procs_2() {
    walks_race_wakeups(2);
}

/// Ten thousand parked goroutines are walked in well under a second (each address is
/// symbolized once). Bounded generously: under valgrind only that it completes.
#[test]
fn ten_thousand_parked() {
    let _w = watchdog("ten_thousand_parked", 300);
    let n = if under_valgrind() { 500 } else { 10_000 };
    goexec::run(move || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let rx = rx.clone();
                goexec::spawn(move || parked_in_chan_recv(rx))
            })
            .collect();
        while goexec::runtime::dump().matches("[chan receive").count() < n {
            goexec::yield_now();
        }
        let t = Instant::now();
        let s = goexec::runtime::stack(true);
        let took = t.elapsed();
        assert_eq!(s.matches("traceback::parked_in_chan_recv\n").count(), n);
        eprintln!("stack(true) over {n} parked goroutines: {took:?}");
        drop(tx);
        for h in hs {
            assert_eq!(h.join().unwrap(), None);
        }
    });
}

/// Tracebacks from several goroutines at once beside ping-pong pairs, at procs 4: every wakeup
/// that meets a walk's scan bit, or one that has just been cleared, waits and goes on (a
/// wakeup that took a just-cleared bit for a double wake used to end the process).
#[test]
fn many_tracers_beside_ping_pong() {
    let _w = watchdog("many_tracers_beside_ping_pong", 180);
    let secs = if under_valgrind() || under_emulation() {
        0.5
    } else {
        3.0
    };
    let rt = goexec::Runtime::builder().procs(4).build().unwrap();
    rt.run(move || {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut pairs = Vec::new();
        for _ in 0..8 {
            let (atx, arx) = chan::bounded::<u32>(0);
            let (btx, brx) = chan::bounded::<u32>(0);
            let d = done.clone();
            pairs.push(goexec::spawn(move || {
                let mut i = 0;
                while !d.load(std::sync::atomic::Ordering::Relaxed) {
                    atx.send(i).unwrap();
                    assert_eq!(brx.recv().unwrap(), i);
                    i += 1;
                }
            }));
            pairs.push(goexec::spawn(move || {
                while let Ok(i) = arx.recv() {
                    btx.send(i).unwrap();
                }
            }));
        }
        let tracers: Vec<_> = (0..4)
            .map(|_| {
                let d = done.clone();
                goexec::spawn(move || {
                    let mut n = 0u64;
                    while !d.load(std::sync::atomic::Ordering::Relaxed) {
                        n += goexec::runtime::stack(true).len() as u64;
                    }
                    n
                })
            })
            .collect();
        goexec::time::sleep(Duration::from_secs_f64(secs));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for p in pairs {
            p.join().unwrap();
        }
        // (Under valgrind a tracer may not have had a turn at all: only that none failed.)
        for t in tracers {
            t.join().unwrap();
        }
    });
}

/// Two tracebacks at once both walk a parked goroutine: one waits for the other's hold
/// instead of listing it without frames.
#[test]
fn concurrent_tracers_both_walk_parked_goroutines() {
    let _w = watchdog("concurrent_tracers_both_walk_parked_goroutines", 120);
    let rt = goexec::Runtime::builder().procs(2).build().unwrap();
    rt.run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let parked: Vec<_> = (0..50)
            .map(|_| {
                let rx = rx.clone();
                goexec::spawn(move || parked_in_chan_recv(rx))
            })
            .collect();
        while goexec::runtime::dump().matches("[chan receive").count() < 50 {
            goexec::yield_now();
        }
        let tracers: Vec<_> = (0..3)
            .map(|_| {
                goexec::spawn(|| {
                    for _ in 0..30 {
                        let s = goexec::runtime::stack(true);
                        assert!(!s.contains("changing state"), "{s}");
                        assert_eq!(s.matches("parked_in_chan_recv\n").count(), 50, "{s}");
                    }
                })
            })
            .collect();
        for t in tracers {
            t.join().unwrap();
        }
        drop(tx);
        for p in parked {
            assert_eq!(p.join().unwrap(), None);
        }
    });
}

#[inline(never)]
fn deep(n: u32, rx: &chan::Receiver<u32>) -> Option<u32> {
    let r = if n == 0 {
        rx.recv().ok()
    } else {
        deep(n - 1, rx)
    };
    black_box(r)
}

/// A stack deeper than Go's 100 frames is cut at 100, and says so.
#[test]
fn deep_stacks_are_cut_and_say_so() {
    let _w = watchdog("deep_stacks_are_cut_and_say_so", 60);
    goexec::run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let h = named("deep").spawn(move || deep(300, &rx)).unwrap();
        let block = block_of("deep", "chan receive");
        let frames = block
            .lines()
            .filter(|l| l.ends_with("traceback::deep"))
            .count();
        assert!((90..=100).contains(&frames), "{frames} frames:\n{block}");
        assert!(
            block.contains("\n...additional frames elided...\n"),
            "{block}"
        );
        tx.send(1).unwrap();
        assert_eq!(h.join().unwrap(), Some(1));
    });
}

/// A goroutine on the smallest stack can take tracebacks: the walks and the symbolizing run
/// on the M's stack.
#[test]
fn small_stacks_can_take_tracebacks() {
    let _w = watchdog("small_stacks_can_take_tracebacks", 60);
    let rt = goexec::Runtime::builder()
        .procs(1)
        .stack_size(goexec::stack::MIN_STACK_SIZE)
        .build()
        .unwrap();
    rt.run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let h = named("small")
            .spawn(move || parked_in_chan_recv(rx))
            .unwrap();
        let block = block_of("small", "chan receive");
        assert!(block.contains("parked_in_chan_recv"), "{block}");
        let mine = my_own_frame();
        assert!(mine.contains("my_own_frame"), "{mine}");
        tx.send(1).unwrap();
        assert_eq!(h.join().unwrap(), Some(1));
    });
}

/// Tracebacks and dumps while goroutines are spawned and finish all the time, at procs 4: the
/// records they list are reused under them (ids read while sorting used to change mid-sort
/// and panic the sort).
#[test]
fn tracebacks_beside_spawn_churn() {
    let _w = watchdog("tracebacks_beside_spawn_churn", 180);
    let rounds = if under_valgrind() || under_emulation() {
        200
    } else {
        3000
    };
    let rt = goexec::Runtime::builder().procs(4).build().unwrap();
    rt.run(move || {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churners: Vec<_> = (0..3)
            .map(|_| {
                let d = done.clone();
                goexec::spawn(move || {
                    while !d.load(std::sync::atomic::Ordering::Relaxed) {
                        let hs: Vec<_> =
                            (0..20).map(|_| goexec::spawn(goexec::yield_now)).collect();
                        for h in hs {
                            h.join().unwrap();
                        }
                    }
                })
            })
            .collect();
        for i in 0..rounds {
            if i % 2 == 0 {
                black_box(goexec::runtime::stack(true));
            } else {
                black_box(goexec::runtime::dump());
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in churners {
            c.join().unwrap();
        }
    });
}
