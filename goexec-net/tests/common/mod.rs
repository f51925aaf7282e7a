//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

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

pub fn rt(procs: usize) -> goexec::Runtime {
    goexec::Runtime::builder().procs(procs).build().unwrap()
}

/// A command running this test binary again; under a cross runner (qemu-aarch64 in CI) the
/// child goes through the same runner.
pub fn this_binary() -> std::process::Command {
    let exe = std::env::current_exe().expect("current_exe");
    let runner = std::env::var("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER")
        .ok()
        .filter(|_| cfg!(target_arch = "aarch64"));
    match runner {
        Some(r) => {
            let mut parts = r.split_whitespace();
            let mut c = std::process::Command::new(parts.next().expect("empty runner"));
            c.args(parts).arg(exe);
            c
        }
        None => std::process::Command::new(exe),
    }
}
/// The calling thread's id (Linux).
pub fn tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// Waits (at most 10 s) until thread `tid` of this process sleeps in the kernel: a thread
/// blocked in a read that waits for the poller.
pub fn wait_until_sleeping(tid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // "tid (name) S ...": the state follows the name, which may hold spaces.
        let state = stat.rsplit_once(')').unwrap().1.split_whitespace().next();
        if state == Some("S") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "thread {tid} never slept"
        );
        std::thread::yield_now();
    }
}

/// The names of this process's threads.
pub fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|n| n.trim_end().to_string())
        .collect()
}

/// Waits (at most 10 s) until `n` goroutines of this runtime wait on the network poller.
pub fn until_io_waiting(n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while goexec::runtime::dump().matches("[IO wait").count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            goexec::runtime::dump()
        );
        goexec::yield_now();
    }
}

/// The process's open-file limit.
pub fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r
}

/// Sets the process's open-file limit (its hard limit at most the one `nofile` read).
pub fn set_nofile(r: &libc::rlimit) {
    // SAFETY: setrlimit with a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, r) }, 0);
}
