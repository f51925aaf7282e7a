//! Helpers shared by the integration tests.
#![allow(dead_code)]

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
            eprintln!("{test}: still running after {secs} s (a lost wakeup?); aborting");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

pub fn rt(procs: usize) -> goexec::Runtime {
    goexec::Runtime::builder().procs(procs).build().unwrap()
}
