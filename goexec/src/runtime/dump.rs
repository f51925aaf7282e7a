//! `runtime::dump()`: Go-style text about every goroutine (Go prints this on a crash or
//! SIGQUIT); the scheduler's one-line trace (`GOEXEC_SCHEDTRACE`, Go's `schedtrace`); the
//! coarse clock that times goroutines' waits.

use super::g::{GRef, GStatus, WaitReason};
use super::m::current_g;
use super::sched::Sched;
use std::fmt::Write;
use std::sync::atomic::Ordering;
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
    let mut gs = super::traceback::sorted_gs(sched);
    // The caller first, as Go lists the current goroutine first.
    if let Some(i) = gs.iter().position(|g| Some(*g) == me) {
        let g = gs.remove(i);
        gs.insert(0, g);
    }
    let mut out = String::new();
    for g in gs {
        let Some(state) = state_of(g, g.status(), now) else {
            continue;
        };
        if !out.is_empty() {
            out.push('\n');
        }
        write_header(&mut out, g, &state);
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

/// The bracketed state of a goroutine whose status is `status`, as Go prints it ("chan
/// receive, 3 ms"); None for a free record.
pub(super) fn state_of(g: GRef, status: GStatus, now: u64) -> Option<String> {
    Some(match status {
        GStatus::Idle | GStatus::Dead => return None,
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
    })
}

/// `goroutine 7 "name" [state]:` and a newline.
pub(super) fn write_header(out: &mut String, g: GRef, state: &str) {
    let _ = write!(out, "goroutine {}", g.id());
    if let Some(name) = g.name() {
        let _ = write!(out, " {name:?}");
    }
    let _ = writeln!(out, " [{state}]:");
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

impl Sched {
    /// Nanoseconds since the runtime started, from the coarse monotonic clock (a few ms of
    /// resolution, a fraction of the cost of `Instant::now`): wait timestamps for dump() are
    /// taken on every park, and shown in milliseconds at best.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        coarse_now_ns().saturating_sub(self.started_ns)
    }

    /// One line of Go's `schedtrace` (`GODEBUG=schedtrace=X`), for `GOEXEC_SCHEDTRACE`:
    /// time since start, Ps and idle Ps, threads (Ms started, plus sysmon) and idle and
    /// spinning ones, the global queue's length, then each P's local queue (with runnext).
    pub(crate) fn schedtrace_line(&self) -> String {
        let (idle_threads, live_threads) = {
            let s = self.lock();
            (s.idle.midle.len(), s.allm.len())
        };
        let local: Vec<String> = self
            .allp
            .iter()
            .map(|p| {
                let next = usize::from(!p.runnext.load(Ordering::Relaxed).is_null());
                (p.runq.len() + next).to_string()
            })
            .collect();
        format!(
            "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} \
             idlethreads={} runqueue={} [{}]",
            self.now_ns() / 1_000_000,
            self.procs,
            self.idle.npidle.load(Ordering::Relaxed),
            live_threads + 1,
            self.idle.nmspinning.count_hint(),
            idle_threads,
            self.runqsize.load(Ordering::Relaxed),
            local.join(" ")
        )
    }

    /// The scheduler's state in a few lines, for a test's watchdog when it finds a hang.
    #[cfg(test)]
    pub(crate) fn debug_state(&self) -> String {
        let mut out = String::new();
        let s = self.lock();
        out += &format!(
            "npidle {} nmspinning {} runqsize {} globq {} pidle {:?} midle {:?} shutdown {}\n",
            self.idle.npidle.load(Ordering::SeqCst),
            self.idle.nmspinning.count(),
            self.runqsize.load(Ordering::SeqCst),
            s.runq.len(),
            s.idle.pidle.iter().map(|p| p.id).collect::<Vec<_>>(),
            s.idle.midle.iter().map(|m| m.id).collect::<Vec<_>>(),
            self.is_shut_down(),
        );
        for (i, p) in self.allp.iter().enumerate() {
            out += &format!(
                "P{i}: stealable {} runnext {} timer0 {}\n",
                p.runq.len(),
                !p.runnext.load(Ordering::SeqCst).is_null(),
                p.timer0.load(Ordering::SeqCst)
            );
        }
        for m in &s.allm {
            let l = m.life();
            out += &format!(
                "M{}: ticks {} in_rt {} next_p {}\n",
                m.id,
                l.ticks,
                l.in_rt,
                m.next_pending()
            );
        }
        drop(s);
        let mut counts = std::collections::BTreeMap::new();
        for g in self.all_gs() {
            *counts.entry(format!("{:?}", g.status())).or_insert(0) += 1;
            if g.status() == GStatus::Runnable || g.status() == GStatus::Running {
                out += &format!("G{} {:?}\n", g.id(), g.status());
            }
        }
        out += &format!("{counts:?}\n");
        out
    }
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds (0 if the clock is unavailable).
#[allow(unsafe_code)] // one libc call with a valid out-pointer
#[inline]
pub(super) fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; on failure it stays zero.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
