//! sysmon and blocking sections (Go: `sysmon`, `retake`, `entersyscall`, `exitsyscall` in
//! `proc.go`).
//!
//! # Blocking sections
//!
//! [`blocking`](crate::blocking) brackets code that may block its thread (a syscall, a lock, a
//! C call). On entry the goroutine's M puts its P in its `syscall` slot, where sysmon can see
//! it, and goes on running the goroutine without a P (runtime calls made meanwhile fall back to
//! the global queues). On exit it takes the P back from the slot (the fast path: the section
//! was short) or, if sysmon took it, gets an idle P; failing that, the goroutine goes to the
//! global run queue and the M sleeps until it is handed a P. The slot's lock decides every race
//! between the M and sysmon: whoever takes the P from the slot has it.
//!
//! # sysmon
//!
//! One thread per runtime, outside the Ps (it never runs goroutines). It wakes every 20 µs
//! while some M is in a blocking section, backing off to 10 ms (doubling after 1 ms without
//! any) while none is. Each tick it `retake`s the P of every M that has been in a blocking
//! section longer than 20 µs and hands it on (`handoffp`): the queued goroutines run on
//! another M. It also takes the P of an M whose goroutine has run 10 ms without a scheduling
//! point (`preempt.rs`), looking at every M at least every 10 ms. (With the netpoller, sysmon
//! also polls the network when nobody has for 10 ms.)
//!
//! Threads: an M exists per P, plus one per goroutine in a blocking section whose P was
//! retaken, plus one per goroutine that lost its P by running 10 ms without a scheduling
//! point, plus sysmon; the runtime stops with a fatal error beyond 10,000 threads, as Go
//! does.

use super::g::{Action, GStatus};
use super::m::with_m;
use super::sched::Sched;
use super::timers::nanotime;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long an M may sit in a blocking section before sysmon hands its P on (Go: one sysmon
/// tick, 20 µs).
const SYSCALL_RETAKE_NS: u64 = 20_000;
/// How long the network may go unpolled while someone waits on it before sysmon polls it.
const NETPOLL_STALE_NS: u64 = 10_000_000;
/// A timer this late with no M sleeping until it gets an M woken for it.
const TIMER_STRANDED_NS: u64 = 1_000_000;
/// sysmon's shortest and longest sleep.
const SYSMON_MIN: Duration = Duration::from_micros(20);
const SYSMON_MAX: Duration = Duration::from_millis(10);

/// What an M in a blocking section leaves for sysmon: its P, and since when.
#[derive(Default)]
pub(crate) struct SyscallSlot {
    pub(crate) p: Option<Box<super::p::P>>,
    pub(crate) since: u64,
    /// The M is inside a blocking section (its P may have been handed on meanwhile).
    pub(crate) active: bool,
}

/// sysmon's thread and what it watches (`Sched::sysmon`).
#[derive(Default)]
pub(super) struct Sysmon {
    /// The sysmon thread, to wake it.
    thread: OnceLock<std::thread::Thread>,
    /// Ms in a blocking section. AcqRel: sysmon watches closely while non-zero.
    pub(super) nsyscall: AtomicUsize,
}

impl Sched {
    /// Starts the sysmon thread (joined at shutdown with the Ms).
    pub(crate) fn start_sysmon(self: &Arc<Self>) {
        let sched = self.clone();
        let spawned = super::m::spawn_thread("goexec-sysmon".to_owned(), move || sysmon(sched));
        match spawned {
            Ok(handle) => {
                let _ = self.sysmon.thread.set(handle.thread().clone());
                self.lock().threads.push((handle, None));
            }
            Err(e) => super::fatal("newm", &format!("cannot start the sysmon thread: {e}")),
        }
    }

    /// Wakes sysmon from a long sleep (a blocking section has begun).
    pub(crate) fn wake_sysmon(&self) {
        if let Some(t) = self.sysmon.thread.get() {
            t.unpark();
        }
    }
}

/// Runs `f` as a blocking section on the current goroutine's M; see the module docs.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    if !entersyscall() {
        // Not from g0's stack, though (callback.rs).
        super::callback::check_may_block();
        return f();
    }
    // Leaves the section however `f` ends (a panic unwinds through here too).
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            exitsyscall();
        }
    }
    let _exit = Exit;
    f()
}

/// Puts the M's P in its syscall slot. False on a plain thread or an M without a P (nothing
/// to hand on). Go: `entersyscall`.
fn entersyscall() -> bool {
    with_m(|m| {
        m.curg.get()?;
        let p = m.take_p()?;
        let mut slot = m.shared.syscall.lock().unwrap_or_else(|e| e.into_inner());
        if slot.p.replace(p).is_some() {
            // schedule takes a parked section's P back before the M does anything else.
            super::fatal("entersyscall", "the M's syscall slot already holds a P");
        }
        slot.since = nanotime();
        slot.active = true;
        let since = slot.since;
        drop(slot);
        if let Some(g) = m.curg.get() {
            g.set_in_syscall(true, since);
        }
        if m.sched.sysmon.nsyscall.fetch_add(1, Ordering::AcqRel) == 0 {
            m.sched.wake_sysmon();
        }
        Some(())
    })
    .flatten()
    .is_some()
}

/// Takes the P back, or another; else parks the goroutine until one is free. Go: `exitsyscall`.
fn exitsyscall() {
    let g = with_m(|m| {
        m.sched.sysmon.nsyscall.fetch_sub(1, Ordering::AcqRel);
        if let Some(g) = m.curg.get() {
            g.set_in_syscall(false, 0);
        }
        if m.has_p() {
            // The goroutine parked inside the section and was resumed on an M with a P.
            return None;
        }
        // Fast path: sysmon left our P alone. Else an idle P (Go: exitsyscallfast_pidle).
        match m
            .shared
            .take_syscall_p()
            .or_else(|| m.sched.pidleget_locked())
        {
            Some(p) => {
                m.set_p(p);
                None
            }
            None => m.curg.get(),
        }
    })
    .flatten();
    let Some(g) = g else { return };
    if std::thread::panicking() {
        // Unwinding through a blocking section: std keeps the panic count in a thread-local,
        // so the goroutine must not move threads until the unwind is over. Wait here, on
        // this thread, for a P to come free.
        loop {
            std::thread::sleep(SYSMON_MIN);
            let got = with_m(|m| m.sched.pidleget_locked().map(|p| m.set_p(p))).flatten();
            if got.is_some() {
                return;
            }
        }
    }
    // No P to be had: queue the goroutine and let the M wait (Go: exitsyscall0), on g0.
    g.switch_out(Action::NoP);
}

/// g0's half of `exitsyscall`'s slow path: the goroutine `g` (switched out with
/// `Action::NoP`) goes to the global queue, and the M, without a P, will wait for one.
pub(crate) fn exitsyscall0(sched: &Arc<Sched>, g: super::g::GRef) {
    g.set_status(GStatus::Runnable);
    sched.globrunqput(g);
    sched.wakep();
}

/// The sysmon thread's body. Go: `sysmon`.
pub(crate) fn sysmon(sched: Arc<Sched>) {
    // Idle until a blocking section begins (entersyscall wakes us).
    let mut delay = SYSMON_MAX;
    let mut idle_since = nanotime();
    let mut seen = HashMap::new();
    let mut hogs_due = 0;
    let mut deadlock = super::deadlock::Watch::default();
    // GOEXEC_SCHEDTRACE=<ms>: a schedtrace line to stderr every <ms> (Go's schedtrace).
    let trace_every = std::env::var("GOEXEC_SCHEDTRACE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(|ms| ms * 1_000_000);
    let mut trace_due = trace_every.map(|every| nanotime() + every);
    while !sched.is_shut_down() {
        std::thread::park_timeout(delay);
        if sched.is_shut_down() {
            break;
        }
        let now = nanotime();
        // Goroutines running long (preempt.rs): a look every 10 ms at least, and when one
        // that was running could have reached its limit.
        if now >= hogs_due {
            let at = super::preempt::retake_hogs(&sched, now, &mut seen);
            hogs_due = at.min(now + SYSMON_MAX.as_nanos() as u64);
        }
        // The network, if someone waits on it and nobody has polled for 10 ms (Go does the
        // same): what it readies goes to the global queue, and wakep finds it an M.
        if let Some(np) = sched.netpoll.get() {
            if np.waiters.load(Ordering::Acquire) > 0
                && now.saturating_sub(np.last_poll.load(Ordering::Relaxed)) > NETPOLL_STALE_NS
            {
                if let Some(ready) = sched.netpoll_nonblock() {
                    for w in ready {
                        super::callback::user_code(
                            "a Waker::wake called by the network poller (sysmon)",
                            || w.wake(),
                        );
                    }
                    idle_since = now;
                }
            }
        }
        if let (Some(due), Some(every)) = (trace_due, trace_every) {
            if now >= due {
                eprintln!("{}", sched.schedtrace_line());
                trace_due = Some(now + every);
            }
        }
        super::deadlock::check(&sched, &mut deadlock);
        if sched.sigquit.load(Ordering::Relaxed) && super::sigquit::take_pending() {
            let all = super::traceback::traceback_sched(&sched, None);
            super::traceback::write_stderr(&format!("SIGQUIT: quit\n\n{all}"));
            std::process::exit(2);
        }
        if sched.timers_stranded(now, TIMER_STRANDED_NS) {
            sched.wakep();
        }
        let busy = sched.sysmon.nsyscall.load(Ordering::Acquire) > 0;
        if busy {
            retake(&sched, now);
            idle_since = now;
            delay = SYSMON_MIN;
        } else if now.saturating_sub(idle_since) > 1_000_000 {
            delay = (delay * 2).min(SYSMON_MAX);
        }
        let next = trace_due.map_or(hogs_due, |t| t.min(hogs_due));
        let until = Duration::from_nanos(next.saturating_sub(now)).max(SYSMON_MIN);
        delay = delay.min(until);
    }
}

/// Hands on the P of every M that has been in a blocking section too long. Go: `retake`.
fn retake(sched: &Arc<Sched>, now: u64) {
    for m in sched.all_ms() {
        let p = {
            let mut slot = m.syscall.lock().unwrap_or_else(|e| e.into_inner());
            if slot.p.is_none() || now.saturating_sub(slot.since) < SYSCALL_RETAKE_NS {
                continue;
            }
            slot.p.take()
        };
        if let Some(p) = p {
            super::idle::handoffp(sched, p);
        }
    }
}
