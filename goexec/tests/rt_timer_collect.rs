//! Timers nobody can receive from are collected (Go 1.23): the `after` of a `select!` that
//! another case won, dropped at once, leaves neither its heap entry nor its channel behind
//! until its deadline, even in a loop that never parks. RSS is measured in a fresh child
//! process per case, after a warm-up round.

mod common;

use goexec::chan;
use goexec::select;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// Iterations measured (after as many to warm up). Before collection, each left its timer
/// (entry, shared state, channel) behind until the deadline: ~270 B, 77 MiB in all.
const SELECTS: usize = 300_000;

/// Timers made and stopped, measured after a warm-up as long.
const STOPS: usize = 1_000_000;

/// The bound on RSS growth, in KiB.
const BOUND_KIB: u64 = 16 * 1024;

/// Set in the child: which case to measure.
const CHILD: &str = "GOEXEC_TIMER_COLLECT_CASE";

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

/// `n` selects of a value that is always ready against a fresh one-hour `after`: the value
/// wins every time and the `after` is dropped unreceived. Never parks.
fn selects(n: usize) {
    let (tx, rx) = chan::bounded::<usize>(1);
    for i in 0..n {
        tx.send(i).unwrap();
        select! {
            recv(rx) -> v => assert_eq!(v, Ok(i)),
            recv(chan::after(HOUR)) -> _ => unreachable!("an hour passed"),
        }
    }
}

/// `n` one-hour timers, each stopped at once.
fn stops(n: usize) {
    for _ in 0..n {
        let t = goexec::time::Timer::new(HOUR);
        assert!(t.stop());
    }
}

/// A warm-up round, then the growth over the measured one.
fn grown(round: impl Fn()) -> u64 {
    round();
    let before = rss_kib();
    round();
    rss_kib().saturating_sub(before)
}

/// The child's part: prints the growth of the measured round.
fn child(case: &str) {
    let on_one_p = |f: fn() -> u64| goexec::Runtime::builder().procs(1).build().unwrap().run(f);
    let grew = match case {
        "select_procs_1" => on_one_p(|| grown(|| selects(SELECTS))),
        "select_plain_thread" => grown(|| selects(SELECTS)),
        "stop_procs_1" => on_one_p(|| grown(|| stops(STOPS))),
        "stop_plain_thread" => grown(|| stops(STOPS)),
        _ => panic!("no case {case}"),
    };
    println!("grew {grew} KiB");
}

/// Runs `test` again in a child that measures `case`; returns the RSS growth it saw, in KiB.
fn measure(test: &str, case: &str) -> u64 {
    let out = common::this_binary()
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, case)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints the test's name on the same line.
    let grew = stdout
        .split("grew ")
        .nth(1)
        .and_then(|rest| rest.split(" KiB").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no measurement in the child's output: {stdout}"));
    eprintln!("{case}: grew {grew} KiB");
    grew
}

#[test]
fn unreceived_afters_in_a_select_loop_are_collected_at_procs_1() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog(
        "unreceived_afters_in_a_select_loop_are_collected_at_procs_1",
        300,
    );
    let grew = measure(
        "unreceived_afters_in_a_select_loop_are_collected_at_procs_1",
        "select_procs_1",
    );
    assert!(grew < BOUND_KIB, "{SELECTS} selects grew RSS by {grew} KiB");
}

#[test]
fn unreceived_afters_in_a_select_loop_are_collected_on_a_plain_thread() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog(
        "unreceived_afters_in_a_select_loop_are_collected_on_a_plain_thread",
        300,
    );
    let grew = measure(
        "unreceived_afters_in_a_select_loop_are_collected_on_a_plain_thread",
        "select_plain_thread",
    );
    assert!(grew < BOUND_KIB, "{SELECTS} selects grew RSS by {grew} KiB");
}

#[test]
fn stopped_timers_stay_bounded_at_procs_1() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog("stopped_timers_stay_bounded_at_procs_1", 300);
    let grew = measure("stopped_timers_stay_bounded_at_procs_1", "stop_procs_1");
    assert!(
        grew < BOUND_KIB,
        "{STOPS} stopped timers grew RSS by {grew} KiB"
    );
}

#[test]
fn stopped_timers_stay_bounded_on_a_plain_thread() {
    if let Ok(case) = std::env::var(CHILD) {
        return child(&case);
    }
    let _w = common::watchdog("stopped_timers_stay_bounded_on_a_plain_thread", 300);
    let grew = measure(
        "stopped_timers_stay_bounded_on_a_plain_thread",
        "stop_plain_thread",
    );
    assert!(
        grew < BOUND_KIB,
        "{STOPS} stopped timers grew RSS by {grew} KiB"
    );
}
