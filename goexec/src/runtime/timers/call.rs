//! Cancellable calls at a deadline ([`call_at`]): the deadline of a channel operation or a
//! socket wait, and the wake of a `Sleep` future. The operation drops its [`CallTimer`] when it
//! ends, which cancels the call.

use super::{process, with_here, Action, TimerFunc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::task::Waker;

/// What a [`CallTimer`] calls: a closure, or a type of its own when its owner changes it while
/// it waits (a `Sleep` future swaps in the latest waker: [`CallTimer::update`]).
pub(crate) trait Call: Send + 'static {
    /// Names it in the fatal error of a panic or a blocking call inside it.
    const WHAT: &'static str;

    /// Runs holding the timer's lock: a cancel returns only once this has returned. A waker
    /// it returns is woken after the lock is released, so that the woken task may poll (and
    /// so lock the timer again) or drop its owner from inside the wake.
    fn call(self) -> Option<Waker>;

    /// Its runtime shut down with the call pending in its heap, which dropped the entry (an
    /// operation's deadline dies with its goroutine). The call stays pending, marked
    /// ([`CallTimer::is_orphaned`]); a waker returned here is woken once the call's lock is
    /// released, so that an owner polled elsewhere (a `Sleep` future) arms itself again.
    fn orphaned(&mut self) -> Option<Waker> {
        None
    }
}

impl<F: FnOnce() + Send + 'static> Call for F {
    const WHAT: &'static str = "a timer's callback";

    fn call(self) -> Option<Waker> {
        self();
        None
    }
}

/// The call and its lock, in one allocation: the heap entry's function and the owner's
/// handle.
struct CallSlot<C> {
    c: Mutex<Option<C>>,
    /// Set under `c`'s lock when the runtime whose heap held the entry shut down.
    orphaned: AtomicBool,
}

impl<C: Call> TimerFunc for CallSlot<C> {
    fn what(&self) -> &'static str {
        C::WHAT
    }

    fn dropped_with_runtime(&self) {
        let waker = {
            let mut c = self.c.lock().unwrap_or_else(|e| e.into_inner());
            // Relaxed: read under the same lock (`CallTimer::update`, then `is_orphaned`).
            self.orphaned.store(true, Ordering::Relaxed);
            c.as_mut().and_then(C::orphaned)
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn fire(&self, _: u64, _: u64, _: u64) -> Option<u64> {
        let waker = {
            let mut c = self.c.lock().unwrap_or_else(|e| e.into_inner());
            c.take().and_then(C::call)
        };
        if let Some(w) = waker {
            w.wake();
        }
        None
    }

    /// The call is gone (ran or was cancelled). One whose lock is held (a cancel or an update
    /// under way) counts as live: a sweep, under the heap's lock, does not wait for it.
    fn is_stale(&self, _: u64) -> bool {
        match self.c.try_lock() {
            Ok(c) => c.is_none(),
            Err(TryLockError::Poisoned(e)) => e.into_inner().is_none(),
            Err(TryLockError::WouldBlock) => false,
        }
    }
}

/// The owner's handle of a call at a deadline ([`call_at`]): dropping it cancels the call.
///
/// Once the drop returns, the call has either run to its end or will never run: it runs
/// holding the lock that the cancel takes. So a callback may act on state that its owner
/// frees after the drop (a channel waiter's record on its stack). The cancelled entry stays
/// in the heap, dead, until a sweep or its deadline; the call, with what it captured, is
/// dropped at once.
#[must_use = "dropping the handle cancels the call"]
pub(crate) struct CallTimer<C: Call>(Arc<CallSlot<C>>);

impl<C: Call> CallTimer<C> {
    /// A call not yet in any heap.
    pub(crate) fn new(c: C) -> CallTimer<C> {
        CallTimer(Arc::new(CallSlot {
            c: Mutex::new(Some(c)),
            orphaned: AtomicBool::new(false),
        }))
    }

    /// The action of the call's heap entry.
    pub(crate) fn action(&self) -> Action {
        Action::Call(self.0.clone(), 0)
    }

    /// Runs `f` on the call while it waits, under its lock. False if it has run. (A call
    /// whose runtime shut down before its deadline still waits: it never runs, and `update`
    /// stays true.)
    pub(crate) fn update(&self, f: impl FnOnce(&mut C)) -> bool {
        let mut c = self.0.c.lock().unwrap_or_else(|e| e.into_inner());
        c.as_mut().map(f).is_some()
    }

    /// Whether the runtime whose heap held the call shut down and dropped it: it will never
    /// run ([`Call::orphaned`]). Read after an `update` (which takes the lock the mark is
    /// written under), it sees a mark made before that update.
    pub(crate) fn is_orphaned(&self) -> bool {
        self.0.orphaned.load(Ordering::Relaxed)
    }
}

impl<C: Call> Drop for CallTimer<C> {
    fn drop(&mut self) {
        // Taken under the lock, dropped outside it (it may hold the last reference to user
        // values).
        let c = self.0.c.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(c);
    }
}

/// Adds a timer that calls `c` at `when` ([`nanotime`](super::nanotime) units) to the calling
/// goroutine's P (P 0's without one). The operation it times out drops the handle when it
/// ends: that cancels the call, and `c` with what it holds goes then, not at the deadline.
/// None on a thread not running a goroutine, where nothing is added.
pub(crate) fn call_at<C: Call>(when: u64, c: C) -> Option<CallTimer<C>> {
    with_here(|sched, p| {
        let timer = CallTimer::new(c);
        sched.addtimer(p, when, timer.action());
        timer
    })
}

/// As [`call_at`], from any thread: on a thread not running a goroutine, or in a goroutine of
/// a runtime that has shut down (a detached one still running after its `run` returned, whose
/// closed heap would drop the call at once), the call goes to the process-wide heap
/// (`process.rs`), whose thread runs it. For a `Sleep`, which re-arms where it is polled when
/// its call was dropped with its runtime: on a live runtime the call dies with that one too,
/// and so keeps no later runtime's deadlock detection off.
pub(crate) fn call_at_live<C: Call>(when: u64, c: C) -> CallTimer<C> {
    let timer = CallTimer::new(c);
    let added = with_here(|sched, p| {
        // A shutdown after this check closes the heap first: the add below meets the closed
        // heap and orphans the call (Sched::addtimer), and its owner re-arms once more, here.
        let live = !sched.is_shut_down();
        if live {
            sched.addtimer(p, when, timer.action());
        }
        live
    });
    if added != Some(true) {
        process::process().add(when, timer.0.clone(), 0);
    }
    timer
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::task::Wake;

    /// A call that wakes the waker it holds, as a `Sleep` future's does.
    struct WakeCall(Waker);

    impl Call for WakeCall {
        const WHAT: &'static str = "a test wake";
        fn call(self) -> Option<Waker> {
            Some(self.0)
        }
    }

    /// A waker that records whether the timer it is woken by counts as stale from inside the
    /// wake: 2 if so (its lock is free, the call gone), 1 if not (its lock still held).
    struct Probe {
        timer: Mutex<Option<Arc<dyn TimerFunc>>>,
        seen: AtomicU8,
    }

    impl Wake for Probe {
        fn wake(self: Arc<Self>) {
            let f = self.timer.lock().unwrap().take().expect("woken once");
            let stale = f.is_stale(0);
            self.seen.store(if stale { 2 } else { 1 }, Ordering::SeqCst);
        }
    }

    /// The waker a call returns is woken after the timer's lock is released: a task woken
    /// there may poll its timer again, or drop it, without deadlocking on that lock.
    #[test]
    fn a_returned_waker_is_woken_outside_the_lock() {
        let probe = Arc::new(Probe {
            timer: Mutex::new(None),
            seen: AtomicU8::new(0),
        });
        let t = CallTimer::new(WakeCall(Waker::from(probe.clone())));
        let Action::Call(f, seq) = t.action() else {
            panic!("not a call")
        };
        *probe.timer.lock().unwrap() = Some(f.clone());
        assert!(t.update(|w| w.0 = Waker::from(probe.clone())));
        assert_eq!(f.fire(seq, 1, 1), None);
        assert_eq!(probe.seen.load(Ordering::SeqCst), 2);
        assert!(!t.update(|_| unreachable!("the call ran")));
    }
}
