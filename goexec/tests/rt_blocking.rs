//! Blocking sections (`goexec::blocking`) and sysmon's retake: a goroutine blocked in one does
//! not hold up the others, even at procs 1.

use goexec::time::{sleep, Ticker};
use goexec::Runtime;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn four_blocking_calls_overlap_at_procs_1_while_a_ticker_ticks() {
    let (took, ticks) = rt(1).run(|| {
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        let ticker = goexec::spawn(move || {
            let ticker = Ticker::new(10 * MS);
            for _ in 0..20 {
                ticker.recv();
                t.fetch_add(1, Ordering::Relaxed);
            }
        });
        let start = Instant::now();
        let hs: Vec<_> = (0..4)
            .map(|_| goexec::spawn(|| goexec::blocking(|| std::thread::sleep(300 * MS))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let took = start.elapsed();
        let during = ticks.load(Ordering::Relaxed);
        ticker.join().unwrap();
        (took, during)
    });
    // Serial would be 1.2 s; overlapped, about 300 ms.
    assert!(took >= 300 * MS && took < 900 * MS, "took {took:?}");
    // 300 ms of a 10 ms ticker: about 30 ticks, most of which must have come.
    assert!(ticks >= 10, "only {ticks} ticks while the calls blocked");
}

#[test]
fn blocking_returns_its_value_and_nests_and_works_on_plain_threads() {
    assert_eq!(goexec::blocking(|| 7), 7);
    for procs in [1, 2] {
        let v = rt(procs).run(|| {
            let outer = goexec::blocking(|| {
                // Runtime calls inside a section work without the P (global queues).
                let h = goexec::spawn(|| 1);
                goexec::blocking(|| 1) + h.join().unwrap()
            });
            let inner = goexec::spawn(|| goexec::blocking(|| 40)).join().unwrap();
            outer + inner
        });
        assert_eq!(v, 42, "procs {procs}");
    }
}

#[test]
fn a_panic_in_a_blocking_section_reaches_join_and_the_runtime_goes_on() {
    for procs in [1, 2] {
        let ok = rt(procs).run(|| {
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    goexec::spawn(move || {
                        goexec::blocking(|| {
                            std::thread::sleep(5 * MS);
                            if i % 2 == 0 {
                                panic!("boom {i}");
                            }
                            i
                        })
                    })
                })
                .collect();
            let results: Vec<_> = hs.into_iter().map(|h| h.join()).collect();
            sleep(MS);
            results.iter().filter(|r| r.is_err()).count() == 2
                && results.iter().filter(|r| r.is_ok()).count() == 2
        });
        assert!(ok, "procs {procs}");
    }
}

#[test]
fn many_short_blocking_sections_stress() {
    // Sections of every length around sysmon's 20 µs threshold, from many goroutines: the P
    // is sometimes taken back on the fast path, sometimes retaken and handed on.
    for procs in [1, 2] {
        let sum = rt(procs).run(|| {
            let hs: Vec<_> = (0..32u64)
                .map(|i| {
                    goexec::spawn(move || {
                        let mut acc = 0u64;
                        for k in 0..200u64 {
                            acc += goexec::blocking(|| {
                                let spin = Instant::now();
                                while spin.elapsed() < Duration::from_micros((i * k) % 40) {
                                    std::hint::spin_loop();
                                }
                                1
                            });
                            if k % 16 == 0 {
                                goexec::yield_now();
                            }
                        }
                        acc
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(sum, 32 * 200, "procs {procs}");
    }
}

#[test]
fn the_runtime_works_inside_a_blocking_section() {
    // Inside a section the goroutine has no P: spawning, yielding, sleeping, timers and joins
    // all fall back to the global queues and heaps, and it leaves the section on some P.
    for procs in [1, 2] {
        let v = rt(procs).run(|| {
            goexec::blocking(|| {
                let h = goexec::spawn(|| 5);
                goexec::yield_now();
                sleep(2 * MS);
                let t = goexec::time::Timer::new(MS);
                t.recv();
                h.join().unwrap()
            })
        });
        assert_eq!(v, 5, "procs {procs}");
    }
}

#[test]
fn goroutines_that_park_inside_blocking_sections_stress() {
    // A goroutine that parks inside a section leaves its M without a P, and the P in the
    // M's syscall slot; the M must take it back before it runs anything else, and the
    // goroutine leaves the section on whatever M resumes it. A watchdog turns a lost P
    // (which hangs) into a failure.
    for procs in [1, 2] {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let sum = rt(procs).run(|| {
                let hs: Vec<_> = (0..8u64)
                    .map(|i| {
                        goexec::spawn(move || {
                            let mut acc = 0;
                            for k in 0..100u64 {
                                acc += goexec::blocking(|| {
                                    let h = goexec::spawn(move || i + k);
                                    h.join().unwrap()
                                });
                                if k % 10 == 0 {
                                    sleep(Duration::from_micros(50));
                                }
                            }
                            acc
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            });
            let _ = tx.send(sum);
        });
        let sum = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("procs {procs}: hung (a P was lost)"));
        let want: u64 = (0..8u64)
            .map(|i| (0..100u64).map(|k| i + k).sum::<u64>())
            .sum();
        assert_eq!(sum, want, "procs {procs}");
    }
}

#[test]
fn dump_shows_a_goroutine_in_a_blocking_section_as_syscall() {
    let text = rt(2).run(|| {
        // The section holds until main has looked: a std channel, since the goroutine is
        // blocking its thread on purpose.
        let (in_tx, in_rx) = std::sync::mpsc::channel::<()>();
        let (out_tx, out_rx) = std::sync::mpsc::channel::<()>();
        let h = goexec::Builder::new()
            .name("reader")
            .spawn(move || {
                goexec::blocking(|| {
                    in_tx.send(()).unwrap();
                    out_rx.recv().unwrap();
                })
            })
            .unwrap();
        goexec::blocking(|| in_rx.recv().unwrap());
        let text = goexec::runtime::dump();
        out_tx.send(()).unwrap();
        h.join().unwrap();
        // Out of the section: running or gone, no longer "syscall".
        (text, goexec::runtime::dump())
    });
    let (during, after) = text;
    assert!(
        during.contains("\"reader\" [syscall, "),
        "dump during the section:\n{during}"
    );
    assert!(
        !after.contains("syscall"),
        "dump after the section:\n{after}"
    );
}
