//! Idle Ps and Ms (Go: `proc.go` `wakep`, `startm`, `newm`, `stopm`, `handoffp`, `pidleput`,
//! `pidleget`): an M without work puts its P in the idle list and parks; when work appears,
//! `wakep` hands an idle P to an idle M, or a new one. Who may spin, and the race between a
//! spinner giving up and a submitter waking nobody, are in the scheduler's notes (sched.rs,
//! "Spinning, and the Delicate dance"); the count of spinning Ms and its steps, in
//! spinning.rs.
//!
//! One idle M is the timer sleeper (`timers.rs`): it parks until the earliest timer of any
//! P, or blocks in the network poll when someone waits on the network (`poll.rs`), then takes
//! an idle P itself to run what it found. An M locked to a goroutine (`lock_os_thread`) parks
//! outside the idle list, until `startlockedm` hands it a P with its goroutine.

use super::g::GRef;
use super::m::{MLocal, MShared};
use super::p::P;
use super::park::Waiter;
use super::sched::{injectglist, mstart, Sched, Synced};
use super::spinning::Spinning;
use super::timers;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most threads a runtime may start (Go: `maxmcount`); running past it is fatal, as in Go.
const MAX_THREADS: usize = 10_000;

/// Counts of idle Ps and spinning Ms, and the timer sleeper (`Sched::idle`).
pub(super) struct Idle {
    /// Idle Ps (length of `pidle`). Written under the lock; read anywhere as a hint.
    pub(super) npidle: AtomicUsize,
    /// Spinning Ms (spinning.rs).
    pub(super) nmspinning: Spinning,
    /// Threads started. Relaxed: a limit check.
    mcount: AtomicUsize,
    /// The timer sleeper (`timers.rs`): the idle M parked until the earliest timer.
    pub(super) sleeper: Mutex<Option<Arc<MShared>>>,
    /// The sleeper's deadline (`timers::nanotime` units), 0 when there is no sleeper. A timer
    /// added earlier than this wakes the sleeper. Written under `sleeper`'s lock.
    pub(super) sleep_until: AtomicU64,
}

impl Idle {
    /// `procs` Ps, all idle; no M yet.
    pub(super) fn new(procs: usize) -> Idle {
        Idle {
            npidle: AtomicUsize::new(procs),
            nmspinning: Spinning::new(),
            mcount: AtomicUsize::new(0),
            sleeper: Mutex::new(None),
            sleep_until: AtomicU64::new(0),
        }
    }
}

/// The idle lists, under `Sched::synced`.
pub(super) struct IdleLists {
    /// Ps without an M (Go: `sched.idle.pidle`). Boxed: a P moves between Ms and this list as one
    /// owned allocation, never copied.
    #[allow(clippy::vec_box)] // see above: the Box is the unit of ownership handed around
    pub(super) pidle: Vec<Box<P>>,
    /// Ms without a P, parked in `stopm` (Go: `sched.idle.midle`).
    pub(super) midle: Vec<Arc<MShared>>,
}

impl IdleLists {
    /// Lists holding the Ps of `pidle` (the last one is taken first) and no M.
    #[allow(clippy::vec_box)] // as `pidle`
    pub(super) fn new(pidle: Vec<Box<P>>) -> IdleLists {
        IdleLists {
            pidle,
            midle: Vec::new(),
        }
    }
}

impl Sched {
    /// Every M started so far.
    pub(crate) fn all_ms(&self) -> Vec<Arc<MShared>> {
        self.lock().allm.clone()
    }

    /// An idle P, if there is one.
    pub(crate) fn pidleget_locked(&self) -> Option<Box<P>> {
        self.pidleget(&mut self.lock())
    }

    /// An idle M takes itself off the idle list and takes an idle P, to run work it found
    /// itself (a due timer, the network). None if there is no idle P, or if someone took
    /// the M off the list first: a P is then on its way to it (`hand_p`).
    pub(super) fn acquire_idle_p(&self, m: &MLocal) -> Option<Box<P>> {
        let mut s = self.lock();
        let pos = s
            .idle
            .midle
            .iter()
            .position(|x| Arc::ptr_eq(x, &m.shared))?;
        let p = self.pidleget(&mut s)?;
        s.idle.midle.swap_remove(pos);
        Some(p)
    }

    /// Makes `m` the timer sleeper with deadline `until` unless there is one already; a
    /// sleeper with a later deadline is woken to take the earlier one. True: `m` is it.
    pub(super) fn become_sleeper(&self, m: &Arc<MShared>, until: u64) -> bool {
        let mut slot = self.idle.sleeper.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(other) if Arc::ptr_eq(other, m) => {
                self.idle.sleep_until.store(until, Ordering::SeqCst);
                true
            }
            Some(other) => {
                if until < self.idle.sleep_until.load(Ordering::Acquire) {
                    other.unpark();
                }
                false
            }
            None => {
                *slot = Some(m.clone());
                self.idle.sleep_until.store(until, Ordering::SeqCst);
                true
            }
        }
    }

    /// `m` stops being the timer sleeper, if it was.
    pub(super) fn leave_sleeper(&self, m: &Arc<MShared>) {
        let mut slot = self.idle.sleeper.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, m)) {
            *slot = None;
            self.idle.sleep_until.store(0, Ordering::Release);
        }
    }

    /// Puts a P in the idle list. Its local queue must be empty. Go: `pidleput`.
    pub(super) fn pidleput(&self, s: &mut Synced, p: Box<P>) {
        debug_assert_eq!(p.runq.len(), 0, "pidleput: P has a non-empty run queue");
        s.idle.pidle.push(p);
        self.idle.npidle.store(s.idle.pidle.len(), Ordering::SeqCst);
    }

    /// Takes an idle P. Go: `pidleget`.
    pub(super) fn pidleget(&self, s: &mut Synced) -> Option<Box<P>> {
        let p = s.idle.pidle.pop();
        self.idle.npidle.store(s.idle.pidle.len(), Ordering::SeqCst);
        p
    }

    /// Starts an M to run goroutines if a P is idle and no M is spinning: called when work
    /// appears. Go: `wakep`.
    pub(crate) fn wakep(self: &Arc<Self>) {
        // The submitter's half of the Delicate dance: the caller published its work with a
        // SeqCst write (the `runnext` swap in runqput, or `runqsize` in the global-queue
        // functions), and these loads are SeqCst, so they cannot pass it (module docs).
        if self.idle.npidle.load(Ordering::SeqCst) == 0 {
            return;
        }
        // Be conservative: only one M is woken to spin at a time.
        if !self.idle.nmspinning.claim_wake() {
            return;
        }
        let p = self.pidleget(&mut self.lock());
        match p {
            Some(p) => self.startm(p, true),
            None => {
                // Lost the race for the idle P: undo our claim.
                self.idle.nmspinning.stop_spinning();
            }
        }
    }

    /// Runs `p` on an idle M, or a new one. `spinning`: the M starts out spinning (the caller
    /// counted it in nmspinning). Go: `startm`. Not after shutdown (a `goready` from another
    /// thread racing it): the P goes back, and no thread starts that nobody would join.
    pub(super) fn startm(self: &Arc<Self>, p: Box<P>, spinning: bool) {
        if self.is_shut_down() {
            // Not pidleput: its queue may hold goroutines that will never run (shutdown
            // drains it).
            let mut s = self.lock();
            s.idle.pidle.push(p);
            self.idle.npidle.store(s.idle.pidle.len(), Ordering::SeqCst);
            if spinning {
                self.idle.nmspinning.stop_spinning();
            }
            return;
        }
        let idle = self.lock().idle.midle.pop();
        match idle {
            Some(m) => m.hand_p(p, spinning),
            None => self.newm(p, spinning),
        }
    }

    /// Starts a new M thread holding `p`. Go: `newm`.
    fn newm(self: &Arc<Self>, p: Box<P>, spinning: bool) {
        let id = self.idle.mcount.fetch_add(1, Ordering::Relaxed);
        if id >= MAX_THREADS {
            super::fatal("newm", "thread limit exceeded (10000 Ms)");
        }
        let shared = MShared::new(id);
        // Listed before it runs, so that a shutdown starting meanwhile wakes it too.
        self.lock().allm.push(shared.clone());
        let sched = self.clone();
        let m_shared = shared.clone();
        let spawned = super::m::spawn_thread(format!("goexec-m{id}"), move || {
            // Before this M can park: a `hand_p` must find the thread to unpark (the creator
            // records it too, but may not have yet when the M is already idle).
            m_shared.set_thread(std::thread::current());
            let m = MLocal::new(m_shared, sched, Some(p));
            m.spinning.set(spinning);
            m.run_as_m(|| mstart(&m));
        });
        match spawned {
            Ok(handle) => {
                shared.set_thread(handle.thread().clone());
                self.lock().threads.push((handle, Some(shared)));
            }
            Err(e) => super::fatal("newm", &format!("cannot start an M thread: {e}")),
        }
    }
}

/// A spinning M found work: it stops spinning and, if it was the last spinner, wakes another
/// to keep looking. Go: `resetspinning`.
pub(super) fn reset_spinning(m: &MLocal) {
    m.spinning.set(false);
    if m.sched.idle.nmspinning.stop_spinning() {
        m.sched.wakep();
    }
}

/// Parks the M until it is handed a P: in the idle list for `startm` when `idle`, or outside
/// it for a locked M, which only `startlockedm` may wake. False: shutting down. Go: `stopm`.
///
/// With `timed`, the M may become the timer sleeper (`timers.rs`): it parks until the earliest
/// timer of any P, then takes an idle P itself and runs every due timer with it.
pub(super) fn stopm(m: &MLocal, idle: bool, timed: bool) -> bool {
    let sched = &m.sched;
    if idle {
        sched.lock().idle.midle.push(m.shared.clone());
    }
    let r = stopm_loop(m, idle && timed);
    sched.leave_sleeper(&m.shared);
    r
}

fn stopm_loop(m: &MLocal, timed: bool) -> bool {
    let sched = &m.sched;
    loop {
        if let Some((p, spinning)) = m.shared.take_p() {
            m.set_p(p);
            m.spinning.set(spinning);
            return true;
        }
        if sched.is_shut_down() {
            return false;
        }
        // Re-read each time: timers come and go while we sleep.
        let next = if timed { sched.next_timer() } else { 0 };
        if let Some(ready) = timed.then(|| sched.netpoll_block(m, next)).flatten() {
            if ready.is_empty() {
                continue;
            }
            // Run what the poll found on an idle P, taken here (Go's findRunnable does the
            // same): handing it to the global queue for wakep would wake a second M, or
            // this one again, for every batch.
            match sched.acquire_idle_p(m) {
                Some(p) => {
                    m.set_p(p);
                    m.spinning.set(false);
                    injectglist(m, ready);
                    return true;
                }
                None => {
                    for w in ready {
                        match w {
                            Waiter::Task(_) => {
                                // A task's waker is user code (callback.rs), as in
                                // injectglist.
                                super::callback::user_code(
                                    "a Waker::wake called by the network poller",
                                    || w.wake(),
                                )
                            }
                            w => w.wake(),
                        }
                    }
                    continue;
                }
            }
        }
        if next == 0 || !sched.become_sleeper(&m.shared, next) {
            sched.leave_sleeper(&m.shared);
            std::thread::park();
            continue;
        }
        // A timer added while we registered may be earlier: it saw no sleeper (and woke
        // nobody), or saw us; either way look again (the adder's SeqCst pairs with ours).
        let again = sched.next_timer();
        if again != 0 && again < next {
            continue;
        }
        let now = timers::nanotime();
        if now < next {
            std::thread::park_timeout(Duration::from_nanos(next - now));
            continue;
        }
        // A timer is due: get off the idle list and take an idle P to run it with. Without
        // one: every P is busy, and each runs its own timers at its next schedule; or someone
        // took us off the list first, and a P is on its way to us. Either way, wait.
        sched.leave_sleeper(&m.shared);
        match sched.acquire_idle_p(m) {
            Some(p) => {
                m.set_p(p);
                m.spinning.set(false);
                sched.runtimers_all(timers::nanotime());
                return true;
            }
            None => std::thread::park(),
        }
    }
}

/// Hands a P that its M no longer uses to another M if there is work for it, else to the
/// idle list. Go: `handoffp`.
pub(super) fn handoffp(sched: &Arc<Sched>, p: Box<P>) {
    let has_work = p.runq.len() > 0
        || !sched.allp[p.id].runnext.load(Ordering::SeqCst).is_null()
        || sched.runqsize.load(Ordering::SeqCst) > 0;
    if has_work {
        sched.startm(p, false);
        return;
    }
    let mut s = sched.lock();
    if s.runq.is_empty() {
        sched.pidleput(&mut s, p);
        drop(s);
        // Work may have arrived after our check; make sure someone looks.
        sched.wakep();
    } else {
        drop(s);
        sched.startm(p, false);
    }
}

/// The M's locked G is not running: give the P away and wait until the G is handed back
/// with a P. False: shutting down. Go: `stoplockedm`.
pub(super) fn stoplockedm(m: &MLocal) -> bool {
    if let Some(p) = m.take_p() {
        handoffp(&m.sched, p);
    }
    stopm(m, false, false)
}

/// `g` is locked to another M: give that M our P (it then runs `g`, which we took off the
/// queue). Go: `startlockedm`.
pub(super) fn startlockedm(m: &MLocal, g: GRef) {
    let target = g.locked_m().cast::<MShared>();
    let p = m
        .take_p()
        .unwrap_or_else(|| super::fatal("startlockedm", "M without a P"));
    let lm = m
        .sched
        .lock()
        .allm
        .iter()
        .find(|s| Arc::as_ptr(s) == target)
        .cloned();
    match lm {
        // The locked M waits in stoplockedm (not on the idle list): hand it the P.
        Some(lm) => lm.hand_p(p, false),
        None => super::fatal("startlockedm", "the locked M does not exist"),
    }
}
