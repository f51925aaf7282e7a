//! P: a processor, the right to run goroutines (Go: `runtime2.go` `p`).
//!
//! Split as tokio splits a worker: [`P`] is the owner's core, a `Box` that moves between Ms
//! (an M holds at most one; an idle P sits in the scheduler's idle list) and is never aliased;
//! [`PShared`] is what other Ms may touch (stealing, `runnext`), in the scheduler's `allp`.

use super::cells::Cells;
use super::g::{GRef, G};
use super::runq;
use super::timers::TimerHeap;
use crate::stack::StackPool;
use std::sync::atomic::{AtomicIsize, AtomicPtr, AtomicU64};
use std::sync::Mutex;

/// The owner's part of a P. Owned by the M holding it (or the idle list).
pub(crate) struct P {
    /// Index in `Sched::allp`.
    pub(crate) id: usize,
    /// The local run queue's owner handle.
    pub(crate) runq: runq::Local<G>,
    /// Incremented on every schedule that does not inherit a time slice; every 61st checks the
    /// global queue first (Go: `schedtick`).
    pub(crate) schedtick: u32,
    /// Free Gs, without stacks (Go: `gFree`).
    pub(crate) gfree: Vec<GRef>,
    /// Free stacks of the runtime's default size, the most recently freed on top: a new
    /// goroutine starts on the warmest (Go: `mcache.stackcache`).
    pub(crate) stacks: StackPool,
    /// Free task cells (`cells.rs`), the most recently freed on top.
    pub(crate) cells: Cells,
}

/// The part of a P any M may touch.
pub(crate) struct PShared {
    /// Thieves' handle on the local run queue.
    pub(crate) runq: runq::Steal<G>,
    /// A G to run next, ahead of the queue, inheriting the time slice (Go: `runnext`). Set by
    /// the owner; taken by the owner or, as a last resort, a thief: every take is a swap or CAS
    /// to null (AcqRel), so exactly one party gets it.
    pub(crate) runnext: AtomicPtr<G>,
    /// Goroutines started on this P minus those that exited on it (either may be negative as
    /// goroutines move between Ps; the sum over all Ps is what counts). Written by the owner
    /// only, read by `num_goroutine`.
    pub(crate) gcount: AtomicIsize,
    /// This P's timers (`timers.rs`): locked by whoever adds or runs them, the P's own M or
    /// another running them on its behalf.
    pub(crate) timers: Mutex<TimerHeap>,
    /// The earliest deadline in `timers`, 0 when none: a lock-free "is anything due?".
    /// Written under the timers' lock; Acquire/Release.
    pub(crate) timer0: AtomicU64,
}

/// Free Gs a P keeps before moving half to the global list (Go keeps up to 64).
pub(crate) const GFREE_MAX: usize = 64;

impl P {
    /// A new P with an empty run queue, and its shared part.
    pub(crate) fn new(id: usize, stacks: StackPool) -> (Box<P>, PShared) {
        let (local, steal) = runq::new();
        let p = Box::new(P {
            id,
            runq: local,
            schedtick: 0,
            gfree: Vec::new(),
            stacks,
            cells: Cells::default(),
        });
        let shared = PShared {
            runq: steal,
            runnext: AtomicPtr::new(std::ptr::null_mut()),
            gcount: AtomicIsize::new(0),
            timers: Mutex::new(TimerHeap::default()),
            timer0: AtomicU64::new(0),
        };
        (p, shared)
    }
}
