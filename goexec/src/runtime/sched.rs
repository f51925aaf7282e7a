//! The scheduler: Go's G-M-P design (`proc.go`), in goexec's words.
//!
//! # G, M, P
//!
//! A **G** is a goroutine (`g.rs`). An **M** is an OS thread (`m.rs`). A **P** (`p.rs`) is the
//! right to run Go code: there are exactly `procs` of them, and an M must hold one to run
//! goroutines. Each P has a local run queue (`runq.rs`) and a `runnext` slot; there is one
//! global run queue besides. Ms without a P sleep; Ps without an M sit in the idle list.
//!
//! # Finding work (`find_runnable`, in Go's order)
//!
//! 0. The P's own due timers.
//! 1. Every 61st schedule tick, the global queue first, so a P busy with local work cannot
//!    starve it ([`GLOBAL_CHECK_TICKS`]).
//! 2. `runnext`, then the local queue.
//! 3. The global queue, taking a batch into the local queue.
//! 4. The network, without blocking, if anyone waits on it (poll.rs).
//! 5. Stealing half of another P's queue, [`STEAL_ROUNDS`] passes over all Ps in random order;
//!    the last pass may take a victim's `runnext` too, and runs its due timers. Only a
//!    *spinning* M steals.
//! 6. Nothing: put the P in the idle list and park the M until `startm` hands it a P (one
//!    idle M sleeps until the earliest timer, or in the network poll: idle.rs).
//!
//! Beside this file: idle Ps and Ms, and waking them (idle.rs); the count of spinning Ms and
//! the steps on it (spinning.rs, with its loom model); goroutine creation and the caches it
//! draws from (alloc.rs); where the network is polled (poll.rs); stopping when main returns
//! (shutdown.rs). The lock order is in lockrank.rs.
//!
//! # Spinning, and the Delicate dance
//!
//! An M is spinning while it has a P but no work and is looking for some (stealing). Spinning
//! Ms cost CPU, so at most half of the busy Ps' worth spin (`2 * nmspinning < procs - npidle`).
//! Waking an M is slow (25–30 µs on the target VM), so when work appears the runtime wakes a
//! new M only if none is spinning (`wakep`): a spinning M will find the work. When a spinning M
//! finds work it stops spinning and, if it was the last spinner and Ps are idle, wakes another
//! (`reset_spinning`), so there is always someone looking while there is work to find.
//!
//! The race to get right (Go calls it the Delicate dance): a spinning M gives up (decrements
//! `nmspinning`) at the same moment another thread submits work and checks `nmspinning`. The
//! submitter writes the queue, then reads `nmspinning`; the spinner writes `nmspinning`, then
//! re-reads every queue. Each side's write and read are SeqCst (the submitter publishes with
//! the SeqCst `runnext` swap or `runqsize` store, and `wakep` loads with SeqCst; the spinner
//! decrements, fences and re-reads `runnext` and `runqsize` with SeqCst), so they fall in one
//! total order and at least one side sees the other's write: either the submitter sees no
//! spinner and wakes an M, or the spinner sees the work and goes back for it. With weaker
//! orderings both could miss (a StoreLoad reordering), and the work would sit until the next
//! spawn. Go gets the same from its `runnext` CAS. Only pushes that call `wakep` need this:
//! `runqput` with `next` (spawn, goready) and the global queue; a yield's push to the local
//! tail wakes nobody. The conditions in `find_runnable`'s recheck and in `wakep` must agree.
//!
//! # What goexec does differently
//!
//! - `yield_now` puts the G at the tail of its P's local queue; Go's `Gosched` goes through the
//!   locked global queue (measured at ~100 ns per yield against ~25 for tokio). And when the P
//!   has another G ready, the yielder switches straight to it (`gosched`, `arch::transfer`)
//!   instead of crossing g0 twice; the G taking over queues the yielder once its context is
//!   saved (`resumed`). A parking G does the same when its P has a G ready (`park_next`): the
//!   G taking over runs the park's unlock once the parker's context is saved, as g0 would.
//!   An exiting G still crosses g0, as in Go.
//! - A goroutine of the default stack size gets its stack when it first runs, not at `newproc`
//!   (`gstart`, alloc.rs), and gives it back when it exits (`gfput`): queued goroutines hold a
//!   record and a task cell, no stack page, and each new goroutine starts on the P's most
//!   recently freed stack, still in the CPU cache. With 100,000 goroutines queued this took a
//!   spawn+join from ~1,200 to ~700 ns (BENCHMARKS.md).
//! - A G taken from `runnext` inherits the time slice (no `schedtick` bump), as in Go.
//! - The thread that calls `Runtime::run` is not an M: it waits for the main goroutine and
//!   joins the Ms. Go's main thread is M0; here every M is an ordinary runtime thread, and a
//!   program's main thread can run anything it likes meanwhile (or block, as `run` does).
//! - No preemption by signal: a goroutine that runs 10 ms without a scheduling point keeps
//!   its M, and sysmon hands its P to another M (`preempt.rs`), as for a blocking section.

use super::alloc::{Alloc, FreeLists, Warm};
use super::callback::user_code;
use super::dump::coarse_now_ns;
use super::g::{Action, GRef, GStatus, ParkFn, G};
use super::idle::{handoffp, reset_spinning, startlockedm, stoplockedm, stopm, Idle, IdleLists};
use super::m::{with_m, MLocal, MShared};
use super::p::{PShared, P};
use super::park::Waiter;
use super::runq::RUNQ_SIZE;
use super::shutdown::{Teardown, Threads};
use super::sysmon::Sysmon;
use super::timers;
use crate::stack::{StackError, StackPool};
use std::collections::VecDeque;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Every this many schedule ticks the global queue is checked before the local one, so it
/// cannot starve (Go: `schedtick%61 == 0`; 61 is prime so it does not beat with other periods).
const GLOBAL_CHECK_TICKS: u32 = 61;

/// Passes over all Ps a spinning M makes before giving up (Go: `stealTries`).
const STEAL_ROUNDS: usize = 4;

/// Spin iterations before stealing a victim's `runnext` in the last pass: gives its owner,
/// which is likely just about to run it, the chance to (Go sleeps 3 µs there).
const RUNNEXT_GRACE_SPINS: u32 = 1000;

/// The main goroutine's id: the first goroutine of every runtime.
pub(crate) const MAIN_GOID: u64 = 1;

/// State under `Sched::synced`. Functions that need the lock take `&mut Synced` as proof.
pub(super) struct Synced {
    /// Idle Ps and Ms (idle.rs).
    pub(super) idle: IdleLists,
    /// The global run queue (Go: `sched.runq`).
    pub(super) runq: VecDeque<GRef>,
    /// Free Gs, stacks and task cells shared by all Ps (alloc.rs).
    pub(super) free: FreeLists,
    /// Every thread started, to join at teardown (shutdown.rs).
    pub(super) threads: Threads,
    /// Every M (Go: `allm`): to find the M a goroutine is locked to, for sysmon, and to wake
    /// them all at teardown.
    pub(super) allm: Vec<Arc<MShared>>,
}

/// One runtime's scheduler state (Go: `schedt`, plus `allp` and `allgs`).
pub(crate) struct Sched {
    /// What a goroutine's panic does (`RuntimeBuilder::unhandled_panic`).
    pub(crate) unhandled_panic: super::UnhandledPanic,
    /// Whether SIGQUIT prints this runtime's goroutines and exits (sigquit.rs); set before
    /// sysmon starts.
    pub(crate) sigquit: std::sync::atomic::AtomicBool,
    /// Number of Ps (GOMAXPROCS). Immutable.
    pub(crate) procs: usize,
    /// Default goroutine stack size. Immutable.
    pub(crate) stack_size: usize,
    /// The shared part of every P, indexed by P id. Immutable array of atomics.
    pub(super) allp: Box<[PShared]>,
    /// The state behind the scheduler's lock (`lock`; its place in the lock order:
    /// lockrank.rs).
    synced: Mutex<Synced>,
    /// Length of the global queue, so that emptiness is checked without the lock. Written under
    /// the lock; SeqCst so it takes part in the Delicate dance (see module docs).
    pub(super) runqsize: AtomicUsize,
    /// Idle Ps and spinning Ms, and the timer sleeper (idle.rs).
    pub(super) idle: Idle,
    /// Goroutine ids, counts, names and records (alloc.rs).
    pub(super) alloc: Alloc,
    /// Whether the runtime is stopping (shutdown.rs).
    pub(super) teardown: Teardown,
    /// When the runtime started (coarse clock, ns), for wait durations (dump.rs).
    pub(super) started_ns: u64,
    /// The sysmon thread, and the Ms in a blocking section (sysmon.rs).
    pub(super) sysmon: Sysmon,
    /// How long a goroutine may run without a scheduling point before sysmon takes its P
    /// (`preempt::HOG_NS`; tests shorten it to race the handshake often).
    pub(crate) hog_ns: AtomicU64,
    /// Ps sysmon took from hogs, and requests left to an M that was in the runtime.
    pub(crate) hog_retakes: AtomicU64,
    pub(crate) hog_asked: AtomicU64,
    /// The network poller (`netpoll.rs`), made when the first source registers (poll.rs).
    pub(crate) netpoll: OnceLock<Arc<super::netpoll::Netpoll>>,
}

impl Sched {
    /// A scheduler with `procs` idle Ps and no Ms yet, starting with the free Gs and stacks
    /// (of `stack_size` bytes) that an earlier run of the same `Runtime` left.
    pub(crate) fn new(
        procs: usize,
        stack_size: usize,
        unhandled_panic: super::UnhandledPanic,
        warm: Warm,
    ) -> Result<Arc<Sched>, StackError> {
        super::preempt::init();
        let mut pidle = Vec::with_capacity(procs);
        let mut allp = Vec::with_capacity(procs);
        for id in 0..procs {
            let (p, shared) = P::new(id, StackPool::new(stack_size)?);
            pidle.push(p);
            allp.push(shared);
        }
        // Pop order: P0 first.
        pidle.reverse();
        let sched = Arc::new(Sched {
            procs,
            stack_size,
            unhandled_panic,
            sigquit: std::sync::atomic::AtomicBool::new(false),
            allp: allp.into_boxed_slice(),
            synced: Mutex::new(Synced {
                idle: IdleLists::new(pidle),
                runq: VecDeque::new(),
                free: FreeLists::new(warm.stacks, warm.cells),
                threads: Vec::new(),
                allm: Vec::new(),
            }),
            runqsize: AtomicUsize::new(0),
            idle: Idle::new(procs),
            alloc: Alloc::new(),
            teardown: Teardown::default(),
            started_ns: coarse_now_ns(),
            sysmon: Sysmon::default(),
            hog_ns: AtomicU64::new(super::preempt::HOG_NS),
            netpoll: OnceLock::new(),
            hog_retakes: AtomicU64::new(0),
            hog_asked: AtomicU64::new(0),
        });
        let gs = warm.gs.adopt_into(&sched);
        {
            let mut allgs = sched.alloc.allgs.lock().unwrap_or_else(|e| e.into_inner());
            allgs.extend(gs.iter().copied());
            sched.alloc.gdb_view.publish(&mut allgs);
        }
        sched.lock().free.gfree = gs;
        Ok(sched)
    }

    /// Takes the scheduler's lock.
    pub(super) fn lock(&self) -> MutexGuard<'_, Synced> {
        // Nothing panics while holding this lock except allocation failure, after which the
        // state is still consistent; so poisoning is ignored.
        self.synced.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- the global run queue ----

    /// Puts `g` on the global queue. Any thread. Go: `globrunqput`.
    pub(crate) fn globrunqput(&self, g: GRef) {
        let mut s = self.lock();
        s.runq.push_back(g);
        // SeqCst: the Delicate dance (a spinner's recheck reads it).
        self.runqsize.store(s.runq.len(), Ordering::SeqCst);
    }

    /// Puts a batch spilled from a local queue on the global queue. Go: `globrunqputbatch`.
    fn globrunqputbatch(&self, batch: &mut Vec<NonNull<G>>) {
        if batch.is_empty() {
            return;
        }
        let mut s = self.lock();
        s.runq.extend(batch.drain(..).map(GRef::from_queue));
        // SeqCst: as in globrunqput.
        self.runqsize.store(s.runq.len(), Ordering::SeqCst);
    }

    /// Takes a fair share of the global queue (at most `max` when non-zero): returns one G and
    /// moves the rest into `p`'s local queue. Go: `globrunqget`.
    fn globrunqget(&self, s: &mut Synced, p: &mut P, max: usize) -> Option<GRef> {
        let len = s.runq.len();
        if len == 0 {
            return None;
        }
        let mut n = (len / self.procs + 1).min(len).min(RUNQ_SIZE / 2);
        if max > 0 {
            n = n.min(max);
        }
        let first = s.runq.pop_front();
        let mut overflow = Vec::new();
        for _ in 1..n {
            if let Some(g) = s.runq.pop_front() {
                p.runq.push_back(g.as_queue(), &mut overflow);
            }
        }
        // The local queue had room for n <= RUNQ_SIZE / 2 only if it was at most half full;
        // anything that did not fit goes back to the global queue.
        s.runq.extend(overflow.into_iter().map(GRef::from_queue));
        // SeqCst: as in globrunqput.
        self.runqsize.store(s.runq.len(), Ordering::SeqCst);
        first
    }
}

/// The body of an M thread: find work, run it, repeat, until the runtime shuts down; then
/// hand back the P it holds, so that teardown finds (and drains) every P. Go: `mstart` and
/// `schedule`.
pub(super) fn mstart(m: &MLocal) {
    // Nothing may unwind out of the scheduler loop (callback.rs): user code it calls is
    // caught where it runs; anything else is a runtime bug, reported as such.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| schedule(m))).is_err() {
        super::fatal(
            "schedule",
            "a panic on the scheduler's own stack (the message is above)",
        );
    }
    if let Some(p) = m.take_p() {
        // Not pidleput: its queue may hold goroutines that will never run (shutdown drains it).
        m.sched.lock().idle.pidle.push(p);
    }
    m.sched.abandon_late();
}

/// The scheduling loop; returns when the M must exit.
fn schedule(m: &MLocal) {
    loop {
        if let Some(g) = m.locked_g.get() {
            // This M runs nothing but its locked G: wait until it is runnable and handed back.
            if !stoplockedm(m) {
                return;
            }
            if !execute(m, g, false) {
                return;
            }
            continue;
        }
        if !m.has_p_in() {
            // The goroutine parked inside a blocking section, leaving our P in our syscall
            // slot: take it back (the goroutine, wherever it resumes, leaves the section
            // without it). Else (Action::NoP, or sysmon took it) wait for a P.
            match m.shared.take_syscall_p() {
                Some(p) => m.set_p(p),
                None => {
                    if !stopm(m, true, true) {
                        return;
                    }
                }
            }
            continue;
        }
        let Some((g, inherit)) = find_runnable(m) else {
            return;
        };
        if m.spinning.get() {
            reset_spinning(m);
        }
        let lm = g.locked_m();
        if !lm.is_null() && lm != Arc::as_ptr(&m.shared).cast() {
            // Locked to another M: give that M our P and this G, and stop. Go: `startlockedm`.
            startlockedm(m, g);
            if !stopm(m, true, true) {
                return;
            }
            continue;
        }
        if !execute(m, g, inherit) {
            return;
        }
    }
}

/// Runs `g` until it switches out, then carries out what it asked for. Returns false when the
/// M must exit (its locked G finished). Go: `execute` and the `mcall` continuations.
fn execute(m: &MLocal, g: GRef, inherit: bool) -> bool {
    if !inherit {
        m.with_p_in(|p| p.schedtick = p.schedtick.wrapping_add(1));
    }
    // A plain store, not a CAS: the queue handed this G to us alone (Go CASes here).
    if g.status() != GStatus::Runnable {
        super::fatal("execute", "the G to run is not runnable");
    }
    g.set_status(GStatus::Running);
    m.with_p_in(|p| m.sched.gstart(p, g));
    let mut g = g;
    loop {
        m.curg.set(Some(g));
        m.leave_scheduled();
        let (back, action) = g.execute();
        // Back on g0 (curg first: a hand-off request found now is stale), in the runtime:
        // the P, if sysmon left it to us, is ours again.
        m.curg.set(None);
        m.enter_fresh();
        // After direct transfers the G that switched back to g0 may be another one.
        g = back;
        match action {
            Action::Yield => {
                // Go: gosched_m, but onto the local queue (see module docs).
                g.follow_unwind(m);
                g.set_status(GStatus::Runnable);
                runqput(m, g, false);
                return true;
            }
            Action::Park(unlock) => {
                // Go: park_m. Locked first if it unwinds, Waiting next, so that a goready made
                // possible by unlock finds it so.
                g.follow_unwind(m);
                g.set_status(GStatus::Waiting);
                if unlock.call() {
                    return true;
                }
                // The unlock refused to park (the condition came true meanwhile): run it again,
                // unless the runtime has shut down meanwhile (this M was detached): its
                // teardown may be abandoning the G right now, so it stays parked for good.
                if m.sched.is_shut_down() {
                    return true;
                }
                if !g.cas_status_after_scan(GStatus::Waiting, GStatus::Running) {
                    super::fatal("execute", "a G that refused to park was readied");
                }
            }
            Action::NoP => {
                // Go: exitsyscall0. The M has no P now; schedule waits for one.
                super::sysmon::exitsyscall0(&m.sched, g);
                return true;
            }
            Action::Exit => {
                // Go: goexit0.
                sched_event!(goid = g.id(), "exit");
                g.set_status(GStatus::Dead);
                if g.id() == MAIN_GOID {
                    m.sched.begin_shutdown();
                }
                // Its unwind is over: a lock held for it ends here, so that the exit does not
                // take the thread down as a `lock_os_thread` one does.
                g.follow_unwind(m);
                let was_locked = m.locked_g.get() == Some(g);
                if was_locked {
                    // Go ends the thread of a goroutine that exits locked: the goroutine may
                    // have changed the thread's state. Hand the P on and exit.
                    g.adjust_lock(-i32::MAX, ptr::null());
                    m.locked_g.set(None);
                }
                let freed = m.with_p_in(|p| {
                    m.sched.gcount_add(p, -1);
                    m.sched.gfput(p, g);
                });
                if freed.is_none() {
                    // sysmon took our P while the goroutine ran (preempt.rs).
                    m.sched.gfput_global(g);
                }
                if was_locked {
                    if let Some(p) = m.take_p() {
                        handoffp(&m.sched, p);
                    }
                    return false;
                }
                return true;
            }
        }
    }
}

/// Yields the running G (Go: `Gosched`); false on a thread that is not running one. Fast
/// path: if this P has another G ready, switch to it directly (one switch instead of two
/// through g0) and let it queue the yielding G at the tail. Anything unusual goes the slow
/// way, through g0: a locked G, a locked next G, an empty local queue, shutdown, and every
/// 61st tick (g0 then checks the global queue, as usual).
pub(crate) fn gosched() -> bool {
    // One TLS read for the whole yield: the M, and the G from it.
    let found = with_m(|m| {
        let g = m.curg.get()?;
        let next = take_next(m);
        if next.is_some() {
            m.handoff.set(Some(g));
        }
        Some((g, next))
    })
    .flatten();
    match found {
        None => false,
        Some((g, Some(next))) => {
            g.transfer_to(next);
            true
        }
        Some((g, None)) => {
            g.switch_out(Action::Yield);
            true
        }
    }
}

/// The direct-switch fast paths' half (yield and park): the P's next G to switch to without
/// going through g0, marked Running and made `curg`, inside a runtime entry that the G taking
/// over leaves in `resumed`. None when g0 must choose: a locked M or G, shutdown, an
/// unwinding G, or the tick on which the global queue gets its turn (which also runs the P's
/// timers).
fn take_next(m: &MLocal) -> Option<GRef> {
    // g0 keeps std's panic state with an unwinding G (GRef::follow_unwind).
    if m.locked_g.get().is_some() || m.sched.is_shut_down() || std::thread::panicking() {
        return None;
    }
    // One runtime entry (preempt.rs) for the whole handoff: it lasts through the switch, and
    // the G taking over leaves it in `resumed` once it has dealt with us.
    m.enter_fresh();
    let next = m.with_p_in(|p| {
        if (p.schedtick.wrapping_add(1)) % GLOBAL_CHECK_TICKS == 0 {
            // The tick counts even though g0 picks: find_runnable then sees it and looks at
            // the global queue, and a G it takes from runnext (which inherits the slice and
            // leaves the tick alone) does not bring us back here next time.
            p.schedtick = p.schedtick.wrapping_add(1);
            return None;
        }
        let (next, _) = runqget(&m.sched, p)?;
        if !next.locked_m().is_null() {
            // Not ours to run: back where runqget found it, at the front.
            m.sched.allp[p.id]
                .runnext
                .store(next.as_queue().as_ptr(), Ordering::Release);
            return None;
        }
        p.schedtick = p.schedtick.wrapping_add(1);
        // Ours now (off the queue): a fresh one gets its stack.
        m.sched.gstart(p, next);
        Some(next)
    });
    let Some(Some(next)) = next else {
        m.leave(true);
        return None;
    };
    if next.status() != GStatus::Runnable {
        super::fatal("take_next", "the next G is not runnable");
    }
    next.set_status(GStatus::Running);
    m.curg.set(Some(next));
    Some(next)
}

/// The park fast path (Go always goes through g0 here): `g`, the running G, parks by
/// switching straight to the P's next G, which runs `unlock` in `resumed` once `g`'s context
/// is saved, exactly as g0 would have (`execute`'s `Action::Park`). Err(unlock) when g0 must
/// do it (see `take_next`).
pub(crate) fn park_next(g: GRef, unlock: ParkFn) -> Result<GRef, ParkFn> {
    with_m(move |m| {
        if m.curg.get() != Some(g) {
            return Err(unlock);
        }
        match take_next(m) {
            Some(next) => {
                m.park_handoff.set(Some((g, unlock)));
                Ok(next)
            }
            None => Err(unlock),
        }
    })
    .unwrap_or_else(|| super::fatal("park_next", "not on an M"))
}

/// Runs at every G resume point, on the G now running: finishes a direct handoff by queueing
/// the G that transferred to us (its context is saved now). See `gosched`.
pub(crate) fn resumed() {
    with_m(|m| {
        if let Some(prev) = m.handoff.take() {
            prev.set_status(GStatus::Runnable);
            runqput_in(m, prev, false);
            // The runtime entry `gosched` made ends here, at a scheduling point.
            m.leave_scheduled();
        } else if let Some((prev, unlock)) = m.park_handoff.take() {
            // As execute's Action::Park: Waiting first, so that a goready made possible by
            // unlock finds it.
            prev.set_status(GStatus::Waiting);
            if !unlock.call() {
                // It refused to park: runnable again, behind us.
                if !prev.cas_status_after_scan(GStatus::Waiting, GStatus::Runnable) {
                    super::fatal("resumed", "a G that refused to park was readied");
                }
                runqput_in(m, prev, false);
            }
            m.leave_scheduled();
        }
    });
}

/// Puts `g` on the calling M's P: in `runnext` (kicking the previous one to the queue) when
/// `next`, else at the queue's tail; a full queue spills half to the global queue. Go:
/// `runqput`. Executed only by the M owning the P.
pub(crate) fn runqput(m: &MLocal, g: GRef, next: bool) {
    let entered = m.enter();
    runqput_in(m, g, next);
    m.leave(entered);
}

/// `runqput` inside a runtime entry (`MLocal::enter`, or on g0).
#[inline(always)]
pub(crate) fn runqput_in(m: &MLocal, g: GRef, next: bool) {
    let mut overflow = Vec::new();
    let placed = m.with_p_in(|p| {
        let mut g = g;
        if next {
            let shared = &m.sched.allp[p.id];
            // Hands `g` to whoever takes runnext (Release) and takes over the old one
            // (Acquire), which a thief may be racing for: the swap decides. SeqCst: this is the
            // write that publishes new work before `wakep` (the Delicate dance).
            let old = shared.runnext.swap(g.as_queue().as_ptr(), Ordering::SeqCst);
            match NonNull::new(old) {
                Some(old) => g = GRef::from_queue(old),
                None => return,
            }
        }
        p.runq.push_back(g.as_queue(), &mut overflow);
    });
    if placed.is_none() {
        // No P: an M in a blocking section (sysmon.rs), or one whose P sysmon took
        // (preempt.rs). The global queue, and an M to look at it: this M may be about to wait
        // for a P itself.
        m.sched.globrunqput(g);
        m.sched.wakep();
    }
    if !overflow.is_empty() {
        m.sched.globrunqputbatch(&mut overflow);
    }
}

/// Takes the next G of `p`: `runnext` (inheriting the time slice), else the queue's head.
/// Go: `runqget`. Executed only by the owner.
fn runqget(sched: &Sched, p: &mut P) -> Option<(GRef, bool)> {
    let shared = &sched.allp[p.id];
    // Relaxed peek first: an empty runnext (the common case after a yield) costs no locked
    // instruction. Only the owner sets it, so a null seen here stays null until we set it.
    if !shared.runnext.load(Ordering::Relaxed).is_null() {
        // AcqRel: takes over the G (Acquire) against thieves' CAS on the same slot.
        let next = shared.runnext.swap(ptr::null_mut(), Ordering::AcqRel);
        if let Some(g) = NonNull::new(next) {
            return Some((GRef::from_queue(g), true));
        }
    }
    p.runq.pop().map(|g| (GRef::from_queue(g), false))
}

/// Finds a G to run, parking the M while there is none. None: the runtime is shutting down.
/// Go: `findRunnable`; the steps are listed in the module docs.
fn find_runnable(m: &MLocal) -> Option<(GRef, bool)> {
    let sched = &m.sched;
    loop {
        if sched.is_shut_down() {
            return None;
        }
        // 0: this P's due timers (they may ready goroutines into its queue). Go: checkTimers.
        if let Some(id) = m.with_p_in(|p| p.id) {
            if sched.allp[id].timer0.load(Ordering::Relaxed) != 0 {
                sched.runtimers(id, timers::nanotime());
            }
        }
        // 1-3: global every 61 ticks, local, global.
        let found = m.with_p_in(|p| {
            if p.schedtick % GLOBAL_CHECK_TICKS == 0 && sched.runqsize.load(Ordering::Relaxed) > 0 {
                if let Some(g) = sched.globrunqget(&mut sched.lock(), p, 1) {
                    return Some((g, false));
                }
            }
            if let Some(found) = runqget(sched, p) {
                return Some(found);
            }
            if sched.runqsize.load(Ordering::Relaxed) > 0 {
                if let Some(g) = sched.globrunqget(&mut sched.lock(), p, 0) {
                    return Some((g, false));
                }
            }
            None
        });
        match found {
            Some(Some(found)) => return Some(found),
            Some(None) => {}
            None => super::fatal("find_runnable", "M without a P"),
        }

        // 4: the network, without blocking, if anyone waits on it (Go: netpoll(0)). The
        // goroutines it readies go to our P; look again.
        if let Some(ready) = sched.netpoll_nonblock() {
            injectglist(m, ready);
            continue;
        }

        // 5: steal, if we may spin.
        let busy = sched.procs - sched.idle.npidle.load(Ordering::SeqCst);
        if m.spinning.get() || sched.idle.nmspinning.try_become_spinning(busy) {
            m.spinning.set(true);
            if let Some(g) = steal_work(m) {
                return Some((g, false));
            }
        }

        // 6: nothing. Give up the P, re-checking the global queue under the lock.
        let mut p = m
            .take_p()
            .unwrap_or_else(|| super::fatal("find_runnable", "M lost its P"));
        let mut s = sched.lock();
        if sched.is_shut_down() {
            drop(s);
            m.set_p(p);
            return None;
        }
        if let Some(g) = sched.globrunqget(&mut s, &mut p, 0) {
            drop(s);
            m.set_p(p);
            return Some((g, false));
        }
        sched.pidleput(&mut s, p);
        drop(s);

        // The Delicate dance (module docs): stop spinning, then look again at every queue.
        if m.spinning.get() {
            m.spinning.set(false);
            sched.idle.nmspinning.stop_spinning_before_recheck();
            if work_anywhere(sched) {
                let pp = sched.pidleget(&mut sched.lock());
                if let Some(pp) = pp {
                    m.set_p(pp);
                    m.spinning.set(true);
                    sched.idle.nmspinning.become_spinning();
                    continue;
                }
            }
        }
        // One idle M sleeps until the earliest timer of any P (the timer sleeper), in the
        // network poll when someone waits on it; the others until they are handed a P.
        if !stopm(m, true, true) {
            return None;
        }
    }
}

/// Makes runnable, on g0, what the network poll readied (Go: `injectglist`): this runtime's
/// goroutines go to the tail of our P's queue in one go (not `runnext`, where each would
/// push out the one before), or to the global queue without a P; one `wakep` for the batch.
/// Anyone else (a thread, another runtime's goroutine) is woken the usual way.
pub(super) fn injectglist(m: &MLocal, ready: Vec<Waiter>) {
    let sched = &m.sched;
    let mut n = 0;
    for w in ready {
        match w {
            Waiter::G(g) if Arc::ptr_eq(g.sched(), sched) => {
                if sched.is_shut_down() {
                    continue;
                }
                if !g.cas_status_after_scan(GStatus::Waiting, GStatus::Runnable) {
                    super::fatal("injectglist", "the G is not waiting");
                }
                sched_event!(goid = g.id(), "ready");
                runqput_in(m, g, false);
                n += 1;
            }
            other => user_code("a Waker::wake called by the network poller", || {
                other.wake()
            }),
        }
    }
    // The caller runs the first; a second M may take the others.
    if n > 1 {
        sched.wakep();
    }
}

/// Whether any queue holds work: the global queue, any P's local queue or runnext. The
/// spinner's half of the Delicate dance; it must look wherever wakep's callers put work.
pub(super) fn work_anywhere(sched: &Sched) -> bool {
    sched.runqsize.load(Ordering::SeqCst) > 0
        || sched
            .allp
            .iter()
            .any(|p| !p.runq.is_empty() || !p.runnext.load(Ordering::SeqCst).is_null())
}

/// Steals half of some other P's queue into ours and returns a G from it. Go: `stealWork`.
fn steal_work(m: &MLocal) -> Option<GRef> {
    let sched = &m.sched;
    let n = sched.procs;
    if n < 2 {
        return None;
    }
    for round in 0..STEAL_ROUNDS {
        let last_round = round == STEAL_ROUNDS - 1;
        let start = (m.fastrand() % n as u64) as usize;
        for k in 0..n {
            let victim_id = (start + k) % n;
            let found = m.with_p_in(|p| {
                if victim_id == p.id {
                    return None;
                }
                let victim = &sched.allp[victim_id];
                if let Some(g) = victim.runq.steal_into(&mut p.runq) {
                    return Some(GRef::from_queue(g));
                }
                if last_round {
                    let next = victim.runnext.load(Ordering::Acquire);
                    if !next.is_null() {
                        // Let the owner, which is probably about to run it, have it first.
                        for _ in 0..RUNNEXT_GRACE_SPINS {
                            std::hint::spin_loop();
                        }
                        // AcqRel: as in runqget; the CAS decides between us and the owner.
                        if victim
                            .runnext
                            .compare_exchange(
                                next,
                                ptr::null_mut(),
                                Ordering::AcqRel,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                        {
                            return NonNull::new(next).map(GRef::from_queue);
                        }
                    }
                }
                None
            });
            if let Some(Some(g)) = found {
                return Some(g);
            }
            // The last round also runs the victim's due timers (its M may be parked or busy);
            // what they ready lands in our queue. Go: stealWork's checkTimers.
            if last_round
                && victim_id != m.with_p_in(|p| p.id).unwrap_or(victim_id)
                && sched.allp[victim_id].timer0.load(Ordering::Relaxed) != 0
                && sched.runtimers(victim_id, timers::nanotime()) > 0
            {
                if let Some(Some((g, _))) = m.with_p_in(|p| runqget(sched, p)) {
                    return Some(g);
                }
            }
            if sched.is_shut_down() {
                return None;
            }
        }
    }
    None
}
