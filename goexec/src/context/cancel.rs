//! The cancellation tree behind [`Context`](super::Context) (Go: `cancelCtx`, `timerCtx`).
//!
//! Each context made by `with_cancel`, `with_deadline` or `with_timeout` owns a [`CancelCtx`]:
//! its error, its done channel (closed when it is cancelled) and its live children. A child
//! registers with its nearest cancellable ancestor; cancelling a node cancels its subtree
//! (iteratively: a deep or wide tree needs no stack) and unlinks the node from its parent, so a
//! long-lived parent's child list holds only children not yet cancelled. The parent holds its
//! children weakly, but a child's `Cancel` holds it strongly and cancels it when dropped: a
//! child whose `Cancel` was forgotten stays registered until the parent is cancelled (Go's
//! parent map holds such a child just as long).
//!
//! A deadline is a [`TimerFunc`] in the runtime's timer heap ([`DeadlineTimer`]); a cancel
//! empties it, so its heap entry is stale from then on and is swept out. A live one outlives
//! its runtime: teardown moves it to the process-wide heap.

use super::Error;
use crate::chan::{self, Receiver, Sender};
use crate::runtime::timers::{instant_to_nanos, Home, TimerFunc};
use slab::Slab;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::time::Instant;

/// [`CancelCtx::err`]'s encoding of "not cancelled".
const LIVE: u8 = 0;

fn encode(e: Error) -> u8 {
    match e {
        Error::Canceled => 1,
        Error::DeadlineExceeded => 2,
    }
}

fn decode(v: u8) -> Option<Error> {
    match v {
        1 => Some(Error::Canceled),
        2 => Some(Error::DeadlineExceeded),
        _ => None,
    }
}

/// A cancellable node of the tree (Go: `cancelCtx`, with `timerCtx`'s deadline).
pub(super) struct CancelCtx {
    /// The error once cancelled ([`encode`]), [`LIVE`] before; written under `state`'s lock,
    /// read without it.
    err: AtomicU8,
    /// The done channel's receiving end, cloned by `done()`. Its only sender is in `state`.
    done: Receiver<()>,
    /// The effective deadline: this node's own, or the nearest ancestor's.
    deadline: Option<Instant>,
    /// The ancestor whose deadline `deadline` is; None for a node's own (or none). A passed
    /// deadline found by `err` cancels that ancestor, as its timer would, so that the whole
    /// subtree gets one error.
    deadline_from: Option<Arc<CancelCtx>>,
    state: Mutex<State>,
}

/// Under [`CancelCtx::state`]. Nothing is dropped or woken while it is held (that may run
/// other nodes' code): a cancel takes what it must close or notify out first.
struct State {
    /// The done channel's only sender: closed (and dropped) by the cancel.
    done_tx: Option<Sender<()>>,
    /// The children not yet cancelled. Emptied by the cancel, which cancels them.
    children: Slab<Weak<CancelCtx>>,
    /// The nearest cancellable ancestor this node is registered with, and its key there.
    parent: Option<(Arc<CancelCtx>, usize)>,
    /// This node's deadline timer, stopped by the cancel.
    timer: Option<Arc<DeadlineTimer>>,
}

impl CancelCtx {
    /// A node below `parent` (none: below a context that is never cancelled), with its own
    /// `deadline` (armed by [`CancelCtx::arm`]) or, without one, the parent's. Cancelled at
    /// once if `parent` is.
    pub(super) fn new(parent: Option<&Arc<CancelCtx>>, deadline: Option<Instant>) -> Arc<Self> {
        let (deadline, deadline_from) = match (deadline, parent) {
            (Some(d), _) => (Some(d), None),
            (None, Some(p)) if p.deadline.is_some() => (
                p.deadline,
                Some(p.deadline_from.clone().unwrap_or_else(|| p.clone())),
            ),
            (None, _) => (None, None),
        };
        let (tx, rx) = chan::bounded(0);
        let c = Arc::new(CancelCtx {
            err: AtomicU8::new(LIVE),
            done: rx,
            deadline,
            deadline_from,
            state: Mutex::new(State {
                done_tx: Some(tx),
                children: Slab::new(),
                parent: None,
                timer: None,
            }),
        });
        if let Some(p) = parent {
            let inherited = {
                let mut ps = p.lock();
                if ps.done_tx.is_some() {
                    let key = ps.children.insert(Arc::downgrade(&c));
                    // Parent then child: the only place two nodes' locks nest, and nobody else
                    // can reach `c` yet.
                    c.lock().parent = Some((p.clone(), key));
                    None
                } else {
                    p.err_now()
                }
            };
            if let Some(e) = inherited {
                c.cancel(e);
            }
        }
        c
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored error, without the deadline check of [`CancelCtx::err`].
    fn err_now(&self) -> Option<Error> {
        // Acquire: pairs with the Release store in `cancel_one`.
        decode(self.err.load(Ordering::Acquire))
    }

    /// The error once cancelled. A deadline that has passed cancels its node here (this one,
    /// or the ancestor it is inherited from, and with it this one) if its timer has not yet:
    /// a timer fires a little late, so that the answer does not depend on when it runs.
    pub(super) fn err(&self) -> Option<Error> {
        let e = self.err_now();
        if e.is_none() && self.deadline.is_some_and(|d| Instant::now() >= d) {
            match &self.deadline_from {
                Some(owner) => owner.cancel(Error::DeadlineExceeded),
                None => self.cancel(Error::DeadlineExceeded),
            }
            return self.err_now();
        }
        e
    }

    /// The done channel (closed once cancelled), after the deadline check of `err`.
    pub(super) fn done(&self) -> Receiver<()> {
        let _ = self.err();
        self.done.clone()
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How many children are registered (not yet cancelled, not dropped).
    pub(super) fn children(&self) -> usize {
        self.lock().children.len()
    }

    /// Cancels the node and its subtree with `err`; the first cancel wins. The subtree gets
    /// the same error (Go passes the parent's error down).
    pub(super) fn cancel(&self, err: Error) {
        let mut pending = Vec::new();
        self.cancel_one(err, true, &mut pending);
        while let Some(w) = pending.pop() {
            if let Some(c) = w.upgrade() {
                c.cancel_one(err, false, &mut pending);
            }
        }
    }

    /// Cancels this node alone, pushing its children on `pending`. `unlink`: remove it from
    /// its parent's children (not when the parent is the one cancelling, which emptied them).
    fn cancel_one(&self, err: Error, unlink: bool, pending: &mut Vec<Weak<CancelCtx>>) {
        let (tx, children, parent, timer) = {
            let mut st = self.lock();
            let Some(tx) = st.done_tx.take() else {
                return; // cancelled before
            };
            // Release: whoever sees the error (or the closed channel) sees the cancel done.
            self.err.store(encode(err), Ordering::Release);
            (
                tx,
                std::mem::take(&mut st.children),
                st.parent.take(),
                st.timer.take(),
            )
        };
        // After the error is stored: a receiver woken by the close sees it.
        tx.close();
        drop(tx);
        if let Some(t) = timer {
            t.stop();
        }
        pending.extend(children.into_iter().map(|(_, w)| w));
        if let Some((p, key)) = parent {
            if unlink {
                p.lock().children.try_remove(key);
            }
        }
    }

    /// Arms the node's own deadline: a timer that cancels it with `DeadlineExceeded`.
    pub(super) fn arm(self: &Arc<Self>, deadline: Instant) {
        // A goroutine's P heap, or on a plain thread the process-wide one.
        let home = Home::here();
        let t = Arc::new(DeadlineTimer {
            ctx: Mutex::new(Some(Arc::downgrade(self))),
        });
        {
            let mut st = self.lock();
            if st.done_tx.is_none() {
                return; // its parent cancelled it already
            }
            st.timer = Some(t.clone());
        }
        // A cancel between the store and here stopped `t`: its entry goes in stale.
        home.add(instant_to_nanos(deadline), t, 0);
    }
}

impl Drop for CancelCtx {
    /// A node still registered when dropped leaves its parent's children. The API never
    /// drops one so: a dropped `Cancel` cancels (and so unlinks) its node first, and a
    /// forgotten one holds its node, registered until the parent is cancelled (as in Go,
    /// whose parent's map holds it). Holding the last reference to the parent, the drop
    /// takes that one apart too, and so on up, in a loop: a deep chain needs no stack.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut next = st.parent.take();
        while let Some((p, key)) = next {
            p.lock().children.try_remove(key);
            next = Arc::into_inner(p).and_then(|mut p| {
                let st = p.state.get_mut().unwrap_or_else(|e| e.into_inner());
                st.parent.take()
            });
        }
    }
}

/// A node's deadline in the timer heap: cancels the node when it fires. Holds the node weakly,
/// and nothing once stopped, so that a cancelled node's entry keeps nothing alive and counts
/// as stale.
pub(super) struct DeadlineTimer {
    ctx: Mutex<Option<Weak<CancelCtx>>>,
}

impl DeadlineTimer {
    fn stop(&self) {
        let w = self.ctx.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(w);
    }
}

impl TimerFunc for DeadlineTimer {
    fn what(&self) -> &'static str {
        "a context's deadline"
    }

    fn fire(&self, _: u64, _: u64, _: u64) -> Option<u64> {
        // Taken out first: the cancel stops this timer, which takes the same lock.
        let w = self.ctx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(c) = w.and_then(|w| w.upgrade()) {
            c.cancel(Error::DeadlineExceeded);
        }
        None
    }

    /// A context may be waited on anywhere after its runtime returned (a later runtime's
    /// goroutine, a plain thread): its deadline moves to the process-wide heap then.
    fn outlives_runtime(&self) -> bool {
        true
    }

    /// Stopped, or its node gone. Asked under a heap's lock: a held lock (a stop or a fire
    /// under way) counts as live, so the heap never waits for it.
    fn is_stale(&self, _: u64) -> bool {
        let gone = |w: &Option<Weak<CancelCtx>>| w.as_ref().is_none_or(|w| w.strong_count() == 0);
        match self.ctx.try_lock() {
            Ok(w) => gone(&w),
            Err(TryLockError::Poisoned(e)) => gone(&e.into_inner()),
            Err(TryLockError::WouldBlock) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    /// A cancel stops the deadline timer: its heap entry is stale and holds nothing.
    #[test]
    fn a_cancel_stops_the_deadline_timer() {
        let c = CancelCtx::new(None, Some(far()));
        let t = Arc::new(DeadlineTimer {
            ctx: Mutex::new(Some(Arc::downgrade(&c))),
        });
        c.lock().timer = Some(t.clone());
        assert!(!t.is_stale(0));
        c.cancel(Error::Canceled);
        assert!(t.is_stale(0));
        assert!(t.ctx.lock().unwrap().is_none());
        // A late fire does nothing.
        assert_eq!(t.fire(0, 1, 1), None);
        assert_eq!(c.err(), Some(Error::Canceled));
    }

    /// A timer whose node is gone (never cancelled: its handle forgotten) is stale too.
    #[test]
    fn a_dropped_nodes_timer_is_stale() {
        let c = CancelCtx::new(None, Some(far()));
        let t = DeadlineTimer {
            ctx: Mutex::new(Some(Arc::downgrade(&c))),
        };
        assert!(!t.is_stale(0));
        drop(c);
        assert!(t.is_stale(0));
    }

    /// Children leave the parent's list when cancelled or dropped; the parent's cancel empties
    /// it; a child of a cancelled parent never joins it.
    #[test]
    fn the_child_list_holds_live_children_only() {
        let p = CancelCtx::new(None, None);
        let kept: Vec<_> = (0..3).map(|_| CancelCtx::new(Some(&p), None)).collect();
        for _ in 0..10_000 {
            let c = CancelCtx::new(Some(&p), None);
            c.cancel(Error::Canceled);
            let d = CancelCtx::new(Some(&p), None);
            drop(d); // never cancelled, every handle gone
        }
        assert_eq!(p.children(), 3);
        assert!(p.lock().children.capacity() < 64);
        p.cancel(Error::DeadlineExceeded);
        assert_eq!(p.children(), 0);
        for k in &kept {
            assert_eq!(k.err(), Some(Error::DeadlineExceeded));
        }
        let late = CancelCtx::new(Some(&p), None);
        assert_eq!(late.err(), Some(Error::DeadlineExceeded));
        assert_eq!(p.children(), 0);
    }

    /// A deep chain is cancelled without recursion.
    #[test]
    fn a_deep_chain_cancels_iteratively() {
        let root = CancelCtx::new(None, None);
        let mut chain = vec![root.clone()];
        for _ in 0..100_000 {
            let c = CancelCtx::new(chain.last(), None);
            chain.push(c);
        }
        root.cancel(Error::Canceled);
        assert_eq!(chain.last().unwrap().err(), Some(Error::Canceled));
        // Dropped leaf first, so no drop recursion either.
        while chain.pop().is_some() {}
    }

    /// A passed inherited deadline found by `err` cancels the ancestor it belongs to, so the
    /// subtree agrees.
    #[test]
    fn a_passed_inherited_deadline_cancels_its_owner() {
        let owner = CancelCtx::new(None, Some(Instant::now()));
        let child = CancelCtx::new(Some(&owner), None);
        let sibling = CancelCtx::new(Some(&owner), None);
        assert_eq!(child.err(), Some(Error::DeadlineExceeded));
        assert_eq!(owner.err_now(), Some(Error::DeadlineExceeded));
        assert_eq!(sibling.err_now(), Some(Error::DeadlineExceeded));
    }
}
