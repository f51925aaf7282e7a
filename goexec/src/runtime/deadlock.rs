//! Deadlock detection (Go: `checkdead`): when no goroutine can ever run again and the main
//! goroutine is blocked, the program stops with Go's message and a goroutine dump instead of
//! hanging:
//!
//! ```text
//! fatal error: all goroutines are asleep - deadlock!
//!
//! goroutine 1 [chan send, 21 ms]:
//! myapp::main::{{closure}}
//!         /src/myapp/src/main.rs:6
//! created at src/main.rs:4:5
//! ```
//!
//! Every goroutine is listed with its stack (`traceback.rs`): all are parked, so all can be
//! walked.
//!
//! and exit status 2, as Go's.
//!
//! "Can never run again" means, at two sysmon ticks in a row with no goroutine changing state
//! in between: every goroutine is waiting (none runnable or running), no timer is pending,
//! nobody waits on the network, nobody is in a `blocking` section, and this is the process's
//! only runtime. And one thing Go need not check: no thread outside the runtime exists that
//! could wake a goroutine (channels and `sync` work from plain threads). goexec counts the
//! threads it knows (each runtime's Ms, sysmon, the thread inside `run`, and the process-wide
//! timer thread, whose live timers count as timers: a stopped `Timer`'s stale entry, an
//! `after` nobody can receive from, a dropped `Sleep` or a cancelled context's deadline wake
//! nobody and do not count) and compares
//! with the threads the process has (`/proc/self/task`); any other thread turns detection
//! off while it lives. So a program whose goroutines wait on a plain thread is never
//! reported, and neither is a test running beside other tests.

use super::g::GStatus;
use super::sched::{work_anywhere, Sched, MAIN_GOID};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads the runtimes know (Ms, sysmon, and threads inside `Runtime::run`).
static KNOWN_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Runtimes running (inside `Runtime::run`).
static LIVE_RUNTIMES: AtomicUsize = AtomicUsize::new(0);

/// Counts a thread the runtime knows for as long as the value lives.
pub(crate) struct KnownThread(());

impl KnownThread {
    pub(crate) fn new() -> KnownThread {
        KNOWN_THREADS.fetch_add(1, Ordering::SeqCst);
        KnownThread(())
    }
}

impl Drop for KnownThread {
    fn drop(&mut self) {
        KNOWN_THREADS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a running runtime (and the thread inside `run`) while it lives.
pub(crate) struct LiveRuntime(#[allow(dead_code)] KnownThread);

impl LiveRuntime {
    pub(crate) fn new() -> LiveRuntime {
        LIVE_RUNTIMES.fetch_add(1, Ordering::SeqCst);
        LiveRuntime(KnownThread::new())
    }
}

impl Drop for LiveRuntime {
    fn drop(&mut self) {
        LIVE_RUNTIMES.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What sysmon keeps between ticks: the goroutines' states when it last found the runtime
/// looking dead.
#[derive(Default)]
pub(crate) struct Watch {
    last: Option<Vec<(u64, u8, u64)>>,
}

/// The threads this process has now, or None where that cannot be told.
fn process_threads() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// sysmon's check, each tick. Ends the process if the runtime is deadlocked.
pub(crate) fn check(sched: &Sched, watch: &mut Watch) {
    let Some(snapshot) = dead_snapshot(sched) else {
        watch.last = None;
        return;
    };
    // Twice in a row, with no goroutine parked or woken in between (wait_since changes on
    // every park): a state caught mid-change is not taken for a deadlock.
    if watch.last.as_ref() != Some(&snapshot) {
        watch.last = Some(snapshot);
        return;
    }
    let all = super::traceback::report_goroutines(sched, None);
    super::traceback::write_stderr(&format!(
        "fatal error: all goroutines are asleep - deadlock!\n\n{all}"
    ));
    std::process::exit(2);
}

/// The goroutines' states if the runtime looks dead now (cheap checks first).
fn dead_snapshot(sched: &Sched) -> Option<Vec<(u64, u8, u64)>> {
    if !sched.looks_idle()
        || LIVE_RUNTIMES.load(Ordering::SeqCst) != 1
        || super::timers::process_timers_pending()
    {
        return None;
    }
    let mut snap = Vec::new();
    let mut main_waiting = false;
    for g in sched.all_gs() {
        match g.status() {
            GStatus::Idle | GStatus::Dead => {}
            GStatus::Waiting => {
                main_waiting |= g.id() == MAIN_GOID;
                snap.push((g.id(), g.wait_reason() as u8, g.wait_since_ns()));
            }
            GStatus::Runnable | GStatus::Running => return None,
        }
    }
    if !main_waiting {
        return None;
    }
    // Last, as the dearest: a thread the runtimes do not know could wake someone.
    if process_threads()? != KNOWN_THREADS.load(Ordering::SeqCst) {
        return None;
    }
    snap.sort_unstable();
    Some(snap)
}

impl Sched {
    /// Whether nothing is going on: every P idle and no M spinning, no queued goroutine, no
    /// timer, nobody in a blocking section or waiting on the network. (The deadlock check's
    /// cheap half, `deadlock.rs`.)
    pub(crate) fn looks_idle(&self) -> bool {
        self.idle.npidle.load(Ordering::SeqCst) == self.procs
            && self.idle.nmspinning.count() == 0
            && self.sysmon.nsyscall.load(Ordering::SeqCst) == 0
            && !work_anywhere(self)
            && self.next_timer() == 0
            && self
                .netpoll
                .get()
                .is_none_or(|np| np.waiters.load(Ordering::SeqCst) == 0)
    }
}
