//! Blocking and waking: `gopark`/`goready`, and [`Waiter`], which lets every blocking
//! primitive (join, channels, sync) serve goroutines and plain threads alike.
//!
//! Go: `proc.go` `gopark`, `goready`, `ready`.

use super::g::{GRef, GStatus, WaitReason};
use super::m::{current_g, with_m};
use super::sched::runqput_in;
use std::thread::Thread;

/// Parks the running goroutine: see [`GRef::park`]. Must be called on a goroutine.
pub(crate) fn gopark(reason: WaitReason, unlock: &mut dyn FnMut() -> bool) {
    match current_g() {
        Some(g) => g.park(reason, unlock),
        None => super::fatal("gopark", "not on a goroutine"),
    }
}

/// `goready` whose CAS failed: a traceback is walking the G (it waits for the walk to end and
/// readies it then), or it is a double wake (fatal).
#[cold]
#[inline(never)]
fn goready_after_scan(g: GRef) {
    loop {
        if !g.is_still(GStatus::Waiting) {
            super::fatal("goready", "the G is not waiting");
        }
        super::g::wait_for_scan();
        if g.sched().is_shut_down() {
            return;
        }
        if g.cas_status(GStatus::Waiting, GStatus::Runnable) {
            return ready_runnable(g);
        }
    }
}

/// Makes a parked G runnable (Go: `goready`): into the calling M's `runnext` when called from
/// one of the same runtime's Ms, else onto the global queue; then wakes an M if none spins.
/// A G of a runtime that has shut down is left alone (it will never run again).
pub(crate) fn goready(g: GRef) {
    // Borrowed, not cloned: the G (and its reference to the scheduler) outlives this call.
    let sched = g.sched();
    if sched.is_shut_down() {
        return;
    }
    if !g.cas_status(GStatus::Waiting, GStatus::Runnable) {
        // In tail position, so that the hot path keeps nothing live across it.
        return goready_after_scan(g);
    }
    ready_runnable(g)
}

/// `goready`'s second half, once the G is Runnable and ours to queue.
#[inline(always)]
fn ready_runnable(g: GRef) {
    let sched = g.sched();
    sched_event!(goid = g.id(), "ready");
    let local = with_m(|m| {
        if !std::sync::Arc::ptr_eq(&m.sched, sched) {
            return false;
        }
        // One runtime entry for the check and the put (preempt.rs).
        let entered = m.enter();
        let has_p = m.has_p_in();
        if has_p {
            runqput_in(m, g, true);
        }
        m.leave(entered);
        has_p
    })
    .unwrap_or(false);
    if !local {
        sched.globrunqput(g);
    }
    sched.wakep();
}

/// Whoever is blocked: a goroutine (woken with `goready`), a plain thread (unparked), or an
/// async task (its `Waker`).
pub(crate) enum Waiter {
    G(GRef),
    Thread(Thread),
    Task(std::task::Waker),
}

impl Waiter {
    /// The caller: its goroutine, or its thread when not on one.
    pub(crate) fn current() -> Waiter {
        match current_g() {
            Some(g) => Waiter::G(g),
            None => {
                super::callback::check_may_block();
                Waiter::Thread(std::thread::current())
            }
        }
    }

    /// Wakes it. The caller must have removed it from wherever it was registered, under the
    /// same lock that the waiter held while registering, so that it is woken exactly once.
    pub(crate) fn wake(self) {
        match self {
            Waiter::G(g) => goready(g),
            Waiter::Thread(t) => t.unpark(),
            Waiter::Task(w) => w.wake(),
        }
    }
}

/// Releases `guard` (a lock's guard: dropping it unlocks) and blocks the caller until its
/// registered [`Waiter`] is woken: a goroutine parks (the guard is released on g0, after its
/// context is saved), a thread parks itself. A thread may wake spuriously, so callers re-check
/// their condition in a loop.
pub(crate) fn block_on_guard<G>(guard: G, reason: WaitReason) {
    block_as(current_g(), guard, reason);
}

/// [`block_on_guard`] for a caller that knows already whether it is a goroutine (`me`, as
/// [`current_g`] gave it): one thread-local read less on every park.
pub(crate) fn block_as<G>(me: Option<GRef>, guard: G, reason: WaitReason) {
    match me {
        Some(g) => {
            let mut guard = Some(guard);
            // Dropping the guard is the last thing the closure does: after it, a waker may
            // ready this G.
            g.park(reason, &mut || {
                drop(guard.take());
                true
            });
        }
        None => {
            super::callback::check_may_block();
            drop(guard);
            std::thread::park();
        }
    }
}
