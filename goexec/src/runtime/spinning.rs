//! The count of spinning Ms (Go: `sched.nmspinning`) and the steps of the protocol on it.
//! Why Ms spin, the cap on how many, and the race between a spinner giving up and a submitter
//! waking nobody are in the scheduler's notes (sched.rs, "Spinning, and the Delicate dance");
//! the steps are used by `find_runnable` (sched.rs) and by `wakep`, `startm` and
//! `reset_spinning` (idle.rs).
//!
//! Every access that takes part in the Delicate dance is SeqCst. Under `cfg(loom)` the counter
//! is loom's, and the model below drives these methods against a submitter.

use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering};

/// The number of spinning Ms, plus the Ms woken to spin that have not started yet (`wakep`
/// counts the M it wakes before the M runs). Go: `sched.nmspinning`.
pub(super) struct Spinning {
    n: AtomicUsize,
}

impl Spinning {
    /// No M spinning.
    pub(super) fn new() -> Spinning {
        Spinning {
            n: AtomicUsize::new(0),
        }
    }

    /// How many Ms spin. SeqCst: the deadlock check reads it among other SeqCst counters.
    pub(super) fn count(&self) -> usize {
        self.n.load(Ordering::SeqCst)
    }

    /// How many Ms spin, as a hint for reports (schedtrace): no ordering.
    pub(super) fn count_hint(&self) -> usize {
        self.n.load(Ordering::Relaxed)
    }

    /// An M out of work, not spinning yet, asks to spin with `busy` Ps busy: it may while fewer
    /// than half of them have a spinner (`2 * nmspinning < busy`), and then counts itself.
    /// True: the M is now a spinner. Go: findRunnable's check, then `becomeSpinning`.
    ///
    /// A heuristic, as in Go: the check and the count are two steps, so Ms that check at the
    /// same moment may all pass it (the loom model shows by how much).
    pub(super) fn try_become_spinning(&self, busy: usize) -> bool {
        if 2 * self.n.load(Ordering::SeqCst) < busy {
            self.become_spinning();
            true
        } else {
            false
        }
    }

    /// The M spins again: it gave up, then found work in the re-check and took an idle P
    /// back. Go: `becomeSpinning`.
    pub(super) fn become_spinning(&self) {
        self.n.fetch_add(1, Ordering::SeqCst);
    }

    /// `wakep`'s claim: true if no M spins and we are the one to wake an M to spin (counted
    /// as spinning from now on, so that no other submitter wakes one too). Go: wakep's
    /// `nmspinning.Load() != 0 || !nmspinning.CompareAndSwap(0, 1)`; the load first keeps
    /// the common case (a spinner exists) free of a locked instruction.
    ///
    /// The submitter's half of the Delicate dance: it published its work with a SeqCst write
    /// before calling this.
    pub(super) fn claim_wake(&self) -> bool {
        self.n.load(Ordering::SeqCst) == 0
            && self
                .n
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// A spinner (or a claim from [`Spinning::claim_wake`] that found no P to use) stops
    /// counting. True: it was the last; with work around, someone must wake another
    /// (`reset_spinning`). Go: `nmspinning.Add(-1)`.
    pub(super) fn stop_spinning(&self) -> bool {
        let prev = self.n.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(prev > 0, "nmspinning would go negative");
        prev == 1
    }

    /// The spinner's half of the Delicate dance: a spinner that found nothing and put its P
    /// in the idle list stops counting, then (the caller) looks at every queue again. The
    /// fence keeps those re-reads after the decrement for the queues that are not read with
    /// SeqCst (a local queue's indices). Go: findRunnable's `nmspinning.Add(-1)` before its
    /// re-checks.
    pub(super) fn stop_spinning_before_recheck(&self) {
        self.stop_spinning();
        fence(Ordering::SeqCst);
    }
}
