//! SIGQUIT tracebacks: with `sigquit_traceback(true)` or `GOEXEC_TRACEBACK=all`, SIGQUIT prints
//! every goroutine with its stack and the process exits with status 2; without either (or
//! with `GOEXEC_TRACEBACK=none`) SIGQUIT keeps its default effect. Each program runs in a child
//! process of this test binary, which tells the parent when its goroutines are parked.

mod common;

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::Duration;

const CHILD: &str = "GOEXEC_TEST_SIGQUIT_CHILD";

#[inline(never)]
fn waits_for_a_message(rx: goexec::chan::Receiver<u32>) -> Option<u32> {
    black_box(rx.recv().ok())
}

/// The child: a parked goroutine, then "ready" on stdout, then main waits (20 s at most, so
/// that a child nobody signals ends anyway).
fn child(builder_on: bool) {
    goexec::Runtime::builder()
        .procs(2)
        .sigquit_traceback(builder_on)
        .build()
        .unwrap()
        .run(|| {
            let (_tx, rx) = goexec::chan::bounded::<u32>(0);
            goexec::Builder::new()
                .name("waiter")
                .spawn(move || waits_for_a_message(rx))
                .unwrap();
            while !goexec::runtime::dump().contains("[chan receive") {
                goexec::yield_now();
            }
            println!("ready");
            let (_tx2, rx2) = goexec::chan::bounded::<()>(0);
            let _ = rx2.recv_timeout(Duration::from_secs(20));
        });
    eprintln!("child: run returned");
}

/// Runs the child with `builder_on` and the environment `env`, sends it SIGQUIT once it is
/// ready, and returns its exit status and stderr.
fn quit_child(builder_on: bool, env: Option<&str>) -> (std::process::ExitStatus, String) {
    let mut cmd = common::this_binary();
    cmd.args(["--exact", "sigquit", "--nocapture"])
        .env(CHILD, if builder_on { "on" } else { "off" })
        .env_remove("GOEXEC_TRACEBACK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(v) = env {
        cmd.env("GOEXEC_TRACEBACK", v);
    }
    // SAFETY: setrlimit is async-signal-safe; no core file from the default-effect cases.
    unsafe {
        cmd.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended early"
        );
        if line.trim() == "ready" {
            break;
        }
    }
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) }, 0);
    // Bounded by the test's watchdog.
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

fn assert_traceback(status: std::process::ExitStatus, err: &str) {
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.starts_with("SIGQUIT: quit\n\n"), "{err}");
    let waiter = err.find("\"waiter\" [chan receive").expect(err);
    assert!(
        err[waiter..].contains("\nrt_sigquit::waits_for_a_message\n"),
        "{err}"
    );
    assert!(err.contains("goroutine 1 ["), "{err}");
    assert!(!err.contains("child: run returned"), "{err}");
}

/// Children that end on their own, each printing how it ended.
fn other_child(mode: &str) {
    let rt = || {
        goexec::Runtime::builder()
            .sigquit_traceback(true)
            .build()
            .unwrap()
    };
    match mode {
        // The program takes SIGQUIT itself: its channel gets it, nothing is printed.
        "notify" => {
            let got = rt().run(|| {
                let sigs = goexec::signal::notify(&[libc::SIGQUIT]).unwrap();
                signal_hook::low_level::raise(libc::SIGQUIT).unwrap();
                sigs.recv_timeout(Duration::from_secs(20))
            });
            println!("child: notify got {got:?}");
        }
        // SIGQUIT once main has returned: the run ends the process all the same.
        "late" => {
            rt().run(|| {});
            rt().run(|| {
                signal_hook::low_level::raise(libc::SIGQUIT).unwrap();
            });
            println!("child: second run returned");
            rt().run(|| {});
            println!("child: third run returned");
        }
        // Ignored before the runtime: it stays ignored once no runtime listens.
        "ignored" => {
            // SAFETY: setting a disposition, before any other thread exists.
            unsafe { libc::signal(libc::SIGQUIT, libc::SIG_IGN) };
            rt().run(|| {});
            signal_hook::low_level::raise(libc::SIGQUIT).unwrap();
            println!("child: survived");
        }
        other => panic!("unknown child mode {other:?}"),
    }
}

fn run_other(mode: &str) -> (std::process::ExitStatus, String, String) {
    let out = common::this_binary()
        .args(["--exact", "sigquit", "--nocapture"])
        .env(CHILD, mode)
        .env_remove("GOEXEC_TRACEBACK")
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sigquit() {
    if let Ok(mode) = std::env::var(CHILD) {
        match mode.as_str() {
            "on" | "off" => child(mode == "on"),
            other => other_child(other),
        }
        return;
    }
    let _w = common::watchdog("sigquit", 120);
    // Asked for by the builder.
    let (status, err) = quit_child(true, None);
    assert_traceback(status, &err);
    // Asked for by the environment.
    let (status, err) = quit_child(false, Some("all"));
    assert_traceback(status, &err);
    // `system` shows the runtime's frames too.
    let (status, err) = quit_child(false, Some("system"));
    assert_traceback(status, &err);
    assert!(err.contains("goexec::runtime::"), "{err}");
    // Taken by notify: the channel gets it, no report, no exit.
    let (status, out, err) = run_other("notify");
    assert_eq!(status.code(), Some(0), "{out}{err}");
    assert!(out.contains("child: notify got Ok(3)"), "{out}{err}");
    assert!(!err.contains("SIGQUIT: quit"), "{err}");
    // Late (main returned, sysmon may have stopped): still status 2, and no later run.
    let (status, out, err) = run_other("late");
    assert_eq!(status.code(), Some(2), "{out}{err}");
    assert!(err.starts_with("SIGQUIT: quit\n"), "{err}");
    assert!(!out.contains("child: third run returned"), "{out}{err}");
    // Ignored before: still ignored after the run.
    let (status, out, err) = run_other("ignored");
    assert_eq!(status.code(), Some(0), "{out}{err}");
    assert!(out.contains("child: survived"), "{out}{err}");
    // Not asked for, or refused by the environment: SIGQUIT's default effect.
    for (on, env) in [(false, None), (true, Some("none"))] {
        let (status, err) = quit_child(on, env);
        assert_eq!(status.signal(), Some(libc::SIGQUIT), "{on} {env:?}: {err}");
        assert!(!err.contains("SIGQUIT: quit"), "{err}");
    }
}
