//! A goroutine's panic: the report names the goroutine (and its `Builder::name`), and
//! `UnhandledPanic::Abort` ends the process with status 2 after a dump of every goroutine, as
//! Go does; the default, `Ignore`, hands the panic to `join`.

mod common;

use goexec::runtime::UnhandledPanic;

const CHILD: &str = "GOEXEC_TEST_PANIC_CHILD";
const CONCURRENT_PANICS: usize = 300;

fn child(mode: &str) {
    match mode {
        "named" => {
            let r = goexec::Runtime::builder()
                .procs(2)
                .build()
                .unwrap()
                .run(|| {
                    let named = goexec::Builder::new()
                        .name("worker")
                        .spawn(|| panic!("boom in the worker"))
                        .unwrap();
                    let plain = goexec::spawn(|| panic!("boom in a plain one"));
                    (named.join().is_err(), plain.join().is_err())
                });
            assert_eq!(r, (true, true));
            eprintln!("child: both joined with their panics");
        }
        "abort" => {
            goexec::Runtime::builder()
                .procs(2)
                .unhandled_panic(UnhandledPanic::Abort)
                .build()
                .unwrap()
                .run(|| {
                    // Nobody joins it: main waits on a channel that never receives (for
                    // 20 s at most, so that a child that did not exit ends anyway).
                    // It panics once main waits, so that the report shows main parked
                    // (on a slow machine, qemu's, main could still be running).
                    goexec::Builder::new()
                        .name("doomed")
                        .spawn(|| {
                            while !goexec::runtime::dump().contains("goroutine 1 [chan receive") {
                                goexec::yield_now();
                            }
                            panic!("kaboom")
                        })
                        .unwrap();
                    let (_tx, rx) = goexec::chan::bounded::<()>(0);
                    let _ = rx.recv_timeout(std::time::Duration::from_secs(20));
                });
            eprintln!("child: run returned");
        }
        "concurrent" => {
            // Goroutines on both Ms panic at once: each report must stay in one piece.
            goexec::Runtime::builder()
                .procs(2)
                .build()
                .unwrap()
                .run(|| {
                    let (start_tx, start_rx) = goexec::chan::bounded::<()>(0);
                    let hs: Vec<_> = (0..CONCURRENT_PANICS)
                        .map(|_| {
                            let start_rx = start_rx.clone();
                            goexec::spawn(move || {
                                let _ = start_rx.recv();
                                panic!("boom from {}", goexec::runtime::goid());
                            })
                        })
                        .collect();
                    drop(start_tx);
                    for h in hs {
                        assert!(h.join().is_err());
                    }
                });
        }
        "result_drop" | "result_drop_abort" => {
            // A result nobody will take panics in its drop, on the goroutine: a goroutine's
            // panic like any other.
            struct Bomb;
            impl Drop for Bomb {
                fn drop(&mut self) {
                    panic!("result drop bomb");
                }
            }
            let policy = if mode == "result_drop" {
                UnhandledPanic::Ignore
            } else {
                UnhandledPanic::Abort
            };
            goexec::Runtime::builder()
                .procs(1)
                .unhandled_panic(policy)
                .build()
                .unwrap()
                .run(|| {
                    let h = goexec::spawn(|| Bomb);
                    let id = h.id();
                    drop(h);
                    // Once the goroutine has ended (and dropped its result).
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                    while goexec::runtime::num_goroutine() > 1 {
                        assert!(
                            std::time::Instant::now() < deadline,
                            "goroutine {id} lingers"
                        );
                        goexec::yield_now();
                    }
                    // The runtime goes on: goroutines still run.
                    assert_eq!(goexec::spawn(|| 6 * 7).join().unwrap(), 42);
                });
            eprintln!("child: run returned");
        }
        "abort_in_timeout" | "abort_in_errgroup" => {
            // Panics that the library catches to hand over (time::timeout's, ErrGroup's) are
            // goroutines' panics all the same.
            let in_timeout = mode == "abort_in_timeout";
            goexec::Runtime::builder()
                .procs(2)
                .unhandled_panic(UnhandledPanic::Abort)
                .build()
                .unwrap()
                .run(move || {
                    if in_timeout {
                        let _ = goexec::time::timeout(std::time::Duration::from_millis(1), || {
                            goexec::time::sleep(std::time::Duration::from_millis(20));
                            panic!("late boom");
                        });
                    } else {
                        let g = goexec::sync::ErrGroup::<()>::new();
                        g.go(|| panic!("group boom"));
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.wait()));
                    }
                    goexec::time::sleep(std::time::Duration::from_secs(5));
                });
            eprintln!("child: run returned");
        }
        "abort_small_stack" | "abort_hook_replaced" => {
            let small = mode == "abort_small_stack";
            let rt = goexec::Runtime::builder()
                .procs(1)
                .stack_size(if small {
                    goexec::stack::MIN_STACK_SIZE
                } else {
                    goexec::stack::DEFAULT_STACK_SIZE
                })
                .unhandled_panic(UnhandledPanic::Abort)
                .build()
                .unwrap();
            if !small {
                // A program's own hook, set after the build, replaces goexec's.
                std::panic::set_hook(Box::new(|info| eprintln!("my hook: {info}")));
            }
            rt.run(|| {
                goexec::Builder::new()
                    .name("doomed")
                    .spawn(|| panic!("small boom"))
                    .unwrap();
                let (_tx, rx) = goexec::chan::bounded::<()>(0);
                let _ = rx.recv_timeout(std::time::Duration::from_secs(20));
            });
            eprintln!("child: run returned");
        }
        other => panic!("unknown child mode {other:?}"),
    }
}

/// Runs the first test of this file as child `mode`; the panic reports stay short.
fn child_output(mode: &str) -> std::process::Output {
    common::run_test_child(
        "a_goroutine_panic_names_the_goroutine_and_abort_ends_the_process",
        &[(CHILD, mode), ("RUST_BACKTRACE", "0")],
        std::time::Duration::from_secs(60),
    )
}

/// Child `mode`'s exit code and stderr.
fn run_child(mode: &str) -> (Option<i32>, String) {
    let out = child_output(mode);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_goroutine_panic_names_the_goroutine_and_abort_ends_the_process() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode);
        return;
    }
    let _w = common::watchdog("a_goroutine_panic_names_the_goroutine", 120);

    let (code, err) = run_child("named");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("\"worker\" panicked (on goexec-m"), "{err}");
    assert!(err.contains("boom in the worker"), "{err}");
    // The unnamed one: "goroutine N panicked (on goexec-mK):".
    let plain = err.lines().find(|l| {
        l.starts_with("goroutine ") && l.contains(" panicked (on goexec-m") && !l.contains('"')
    });
    assert!(plain.is_some(), "{err}");
    assert!(err.contains("boom in a plain one"), "{err}");
    assert!(
        err.contains("child: both joined with their panics"),
        "{err}"
    );

    let (code, err) = run_child("abort");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"doomed\" panicked"), "{err}");
    assert!(err.contains("kaboom"), "{err}");
    assert!(
        err.contains("UnhandledPanic is Abort: exiting with status 2"),
        "{err}"
    );
    // Every goroutine with its stack: the panicking one first, with its frames where it
    // panicked, then the main goroutine, waiting, with its own.
    let doomed = err.find("goroutine 2 \"doomed\" [running]:\n").expect(&err);
    let main = err.find("goroutine 1 [chan receive").expect(&err);
    assert!(doomed < main, "{err}");
    assert!(
        err[doomed..main].contains("rt_panic::child::{{closure}}"),
        "{err}"
    );
    assert!(
        err[main..].contains("rt_panic::child::{{closure}}"),
        "{err}"
    );
    assert!(!err.contains("child: run returned"), "{err}");
}

/// Reports of goroutines panicking at the same time on different Ms are not interleaved: each
/// `goroutine N panicked` line is followed by that goroutine's own report.
#[test]
fn concurrent_panic_reports_stay_whole() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let _w = common::watchdog("concurrent_panic_reports_stay_whole", 120);
    let out = child_output("concurrent");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let mut headers = 0;
    let mut lines = err.lines();
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix("goroutine ") else {
            continue;
        };
        let id = rest.split(' ').next().unwrap();
        headers += 1;
        // std's report: the location line, then the message (blank lines aside).
        let mut next = || lines.by_ref().find(|l| !l.is_empty()).unwrap_or_default();
        let at = next();
        let msg = next();
        assert!(at.contains("panicked at"), "{l:?} then {at:?}:\n{err}");
        assert_eq!(msg, format!("boom from {id}"), "after {l:?}:\n{err}");
    }
    assert_eq!(headers, CONCURRENT_PANICS, "{err}");
}

/// A result nobody will join that panics in its drop is the goroutine's panic: reported, then
/// the runtime goes on (under Abort: status 2), instead of ending the process with an internal
/// error.
#[test]
fn a_panic_in_the_drop_of_a_detached_result_is_the_goroutines() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let _w = common::watchdog("a_panic_in_the_drop_of_a_detached_result", 120);
    let (code, err) = run_child("result_drop");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("goroutine 2 panicked"), "{err}");
    assert!(err.contains("result drop bomb"), "{err}");
    assert!(err.contains("child: run returned"), "{err}");
    let (code, err) = run_child("result_drop_abort");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("result drop bomb"), "{err}");
    assert!(err.contains("UnhandledPanic is Abort"), "{err}");
}

/// Under `UnhandledPanic::Abort`, a panic in `time::timeout`'s goroutine or an `ErrGroup`'s
/// ends the process too, though the library catches it to hand it over.
#[test]
fn abort_covers_timeout_errgroup_small_stacks_and_replaced_hooks() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let _w = common::watchdog("abort_covers_timeout_errgroup_small_stacks", 120);
    for (mode, msg) in [
        ("abort_in_timeout", "late boom"),
        ("abort_in_errgroup", "group boom"),
        // The report's walks run on the M's stack: the smallest goroutine stack is enough.
        ("abort_small_stack", "goroutine 2 \"doomed\" [running]:"),
        // Without goexec's hook, no panic-site frames: the report says so.
        (
            "abort_hook_replaced",
            "frames where it panicked are unknown",
        ),
    ] {
        let out = child_output(mode);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{mode}: {err}");
        assert!(err.contains(msg), "{mode}: {err}");
        assert!(!err.contains("child: run returned"), "{mode}: {err}");
    }
}
