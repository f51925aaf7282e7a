//! Helpers shared by the integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Aborts the test binary if the test is still running after `secs` seconds: a lost wakeup
/// would hang the test instead of failing it. Dropping the value disarms it.
pub struct Watchdog(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

pub fn watchdog(test: &'static str, secs: u64) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(Duration::from_secs(secs))
        {
            // Straight to stderr: the test harness captures eprintln! in the threads a test starts.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: still running after {secs} s (a lost wakeup?); aborting"
            );
            std::process::abort();
        }
    });
    Watchdog(tx)
}

/// A [`watchdog`] for a long test that counts its progress: aborts when `progress` has not
/// moved for `secs` seconds, with `at(progress)` saying where (a seed and a round, say). The
/// message goes to stderr directly: what `eprintln!` prints in a test is captured, and lost
/// when the process aborts.
pub fn stall_watchdog(
    test: &'static str,
    secs: u64,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
    at: impl Fn(u64) -> String + Send + 'static,
) -> Watchdog {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut last, mut since) = (progress.load(Ordering::Relaxed), Instant::now());
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(Duration::from_secs(1))
        {
            let now = progress.load(Ordering::Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= Duration::from_secs(secs) {
                let _ = writeln!(
                    std::io::stderr(),
                    "{test}: no progress in {secs} s (a lost wakeup?): {}; aborting",
                    at(now)
                );
                std::process::abort();
            }
        }
    });
    Watchdog(tx)
}

/// Whether the tests run under valgrind, where threads run one at a time and tens of times
/// slower: stress loops meant for native runs shrink there. CI sets `GOEXEC_TEST_VALGRIND`
/// for its valgrind run.
pub fn under_valgrind() -> bool {
    std::env::var_os("GOEXEC_TEST_VALGRIND").is_some()
}

/// Whether the tests run under emulation (qemu-user: CI's aarch64 step sets
/// `GOEXEC_TEST_EMULATED`), where threads run many times slower.
pub fn under_emulation() -> bool {
    std::env::var_os("GOEXEC_TEST_EMULATED").is_some()
}

/// A command running this test binary again; under a cross runner (qemu-aarch64 in CI) the
/// child goes through the same runner.
pub fn this_binary() -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let runner = std::env::var("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER")
        .ok()
        .filter(|_| cfg!(target_arch = "aarch64"));
    match runner {
        Some(r) => {
            let mut parts = r.split_whitespace();
            let mut c = Command::new(parts.next().expect("empty runner"));
            c.args(parts).arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

/// Runs this binary again with `args` and `env` set, and returns what it printed and how it
/// ended. Bounded: a child still running after `limit` (five times that under emulation) is
/// killed, and its stderr ends with a line saying so, so that a hang in the child fails the
/// test that asserts on its status instead of stalling it. (Under valgrind the child runs
/// natively: valgrind does not follow it.) A test's own watchdog should allow the children it
/// runs their limits, or it ends the test first, less precisely.
pub fn run_child(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let limit = if under_emulation() { limit * 5 } else { limit };
    let mut child = this_binary()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run this test binary again");
    // Both pipes are read to their ends beside the wait, so a chatty child cannot fill one.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    // Polled rather than waited on, so that this thread keeps the child to kill (std never
    // signals a child it has already reaped).
    let start = Instant::now();
    let (status, killed) = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break (status, false);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            break (child.wait().expect("wait for the killed child"), true);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = Output {
        status,
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    };
    if killed {
        out.stderr.extend_from_slice(
            format!("\n[test child {args:?}: still running after {limit:?}; killed]\n").as_bytes(),
        );
    }
    out
}

/// Runs test `name` of this binary alone in a child process ([`run_child`]: bounded by
/// `limit`), its output not captured, with `env` set (the mode that tells the test it is the
/// child, typically).
pub fn run_test_child(name: &str, env: &[(&str, &str)], limit: Duration) -> Output {
    run_child(
        &[name, "--exact", "--nocapture", "--test-threads=1"],
        env,
        limit,
    )
}

/// The resident set of this process, in KiB (`VmRSS`).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    line.split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse().ok())
        .expect("VmRSS in kB")
}
