//! `runtime::dump()`: Go-style text about every goroutine (Go prints this on a crash or
//! SIGQUIT).

use super::g::{GRef, GStatus, WaitReason};
use super::m::current_g;
use super::sched::Sched;
use std::fmt::Write;
use std::time::Duration;

/// Describes every goroutine of the current runtime, one block each, as Go's traceback does:
/// id, name if any, state (with wait reason and how long it has waited), and where it was
/// spawned. Empty on a plain thread.
///
/// ```text
/// goroutine 1 [running]:
///         spawned at src/main.rs:4:5
///
/// goroutine 7 "worker" [goroutine join, 12 ms]:
///         spawned at src/main.rs:9:13
///
/// goroutine 9 [syscall, 3 ms]:
///         spawned at src/main.rs:12:13
/// ```
///
/// "syscall" is a goroutine inside [`blocking`](crate::blocking).
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let text = goexec::runtime::dump();
///     assert!(text.starts_with("goroutine 1 [running]:"));
/// });
/// ```
pub fn dump() -> String {
    let Some(me) = current_g() else {
        return String::new();
    };
    dump_sched(me.sched(), Some(me))
}

/// `dump` for `sched`, with `me` (the caller's goroutine, if any) first.
pub(crate) fn dump_sched(sched: &Sched, me: Option<GRef>) -> String {
    let now = sched.now_ns();
    let mut gs = sched.all_gs();
    gs.sort_by_key(|g| g.id());
    // The caller first, as Go lists the current goroutine first.
    if let Some(i) = gs.iter().position(|g| Some(*g) == me) {
        let g = gs.remove(i);
        gs.insert(0, g);
    }
    let mut out = String::new();
    for g in gs {
        let state = match g.status() {
            GStatus::Idle | GStatus::Dead => continue,
            GStatus::Runnable => "runnable".to_owned(),
            GStatus::Running if g.wait_reason() == WaitReason::Syscall => {
                let waited = Duration::from_nanos(now.saturating_sub(g.wait_since_ns()));
                format!("syscall, {}", human(waited))
            }
            GStatus::Running => "running".to_owned(),
            GStatus::Waiting => {
                let waited = Duration::from_nanos(now.saturating_sub(g.wait_since_ns()));
                format!("{}, {}", g.wait_reason().as_str(), human(waited))
            }
        };
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = write!(out, "goroutine {}", g.id());
        if let Some(name) = g.name() {
            let _ = write!(out, " {name:?}");
        }
        let _ = writeln!(out, " [{state}]:");
        match g.spawned_at() {
            Some(at) => {
                let _ = writeln!(
                    out,
                    "\tspawned at {}:{}:{}",
                    at.file(),
                    at.line(),
                    at.column()
                );
            }
            None => out.push_str("\tspawned at an unknown place\n"),
        }
    }
    out
}

/// A wait duration as Go-ish text: "850 µs", "12 ms", "3 s", "2 minutes".
fn human(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else if us < 60_000_000 {
        format!("{} s", us / 1_000_000)
    } else {
        format!("{} minutes", us / 60_000_000)
    }
}
