//! Read deadlines of waits that end before them: the wait takes its timer with it, so a
//! connection's reads with a long timeout keep no memory (the timer held the socket's poll
//! descriptor) however many of them wait. RSS is measured in a fresh child process, after a
//! warm-up round.

mod common;

use goexec_net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::time::Duration;

/// Round trips per round: before timers were cancelled each read's wait left ~100 B behind.
const TRIPS: usize = 100_000;

/// Set in the child.
const CHILD: &str = "GOEXEC_NET_DEADLINE_RETENTION_CHILD";

/// The resident set of this process, in KiB (`VmRSS`).
fn rss_kib() -> u64 {
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

/// `TRIPS` one-byte round trips with an echo goroutine; each read has a one-hour timeout and
/// waits for the echo (arming its timer), which comes at once.
fn round(conn: &mut TcpStream) {
    for i in 0..TRIPS {
        let b = [i as u8];
        conn.write_all(&b).unwrap();
        let mut got = [0u8];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(got, b);
    }
}

/// The child's part: prints the growth of a second round over the first.
fn child() {
    let rt = common::rt(1);
    let grew = rt.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = goexec::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            loop {
                match conn.read(&mut buf).unwrap() {
                    0 => return,
                    n => conn.write_all(&buf[..n]).unwrap(),
                }
            }
        });
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(3600)))
            .unwrap();
        round(&mut conn);
        let before = rss_kib();
        round(&mut conn);
        let grew = rss_kib().saturating_sub(before);
        drop(conn);
        echo.join().unwrap();
        grew
    });
    println!("grew {grew} KiB");
}

#[test]
fn reads_with_a_timeout_that_complete_early_keep_no_memory() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let _w = common::watchdog(
        "reads_with_a_timeout_that_complete_early_keep_no_memory",
        120,
    );
    let out = common::this_binary()
        .args([
            "reads_with_a_timeout_that_complete_early_keep_no_memory",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints the test's name on the same line.
    let grew: u64 = stdout
        .split("grew ")
        .nth(1)
        .and_then(|rest| rest.split(" KiB").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no measurement in the child's output: {stdout}"));
    assert!(grew < 1536, "{TRIPS} reads grew RSS by {grew} KiB");
}
