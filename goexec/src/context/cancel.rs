//! The cancellation tree behind [`Context`](super::Context) (Go: `cancelCtx`, `timerCtx`).
//!
//! Each context made by `with_cancel`, `with_deadline` or `with_timeout` owns a [`CancelCtx`]:
//! its error, its done channel (closed when it is cancelled) and its live children. A child
//! registers with its nearest cancellable ancestor; cancelling a node cancels its subtree
//! (iteratively: a deep or wide tree needs no stack) and unlinks the node from its parent, so a
//! long-lived parent's child list holds only children not yet cancelled. The parent holds its
//! children weakly: a child whose every handle is gone unlinks itself when dropped.
//!
//! A deadline is a [`TimerFunc`] in the runtime's timer heap ([`DeadlineTimer`]); a cancel
//! empties it, so its heap entry is stale from then on and is swept out.

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
    /// A node below `parent` (none: below a context that is never cancelled), with the
    /// effective deadline `deadline`. Cancelled at once if `parent` is.
    pub(super) fn new(parent: Option<&Arc<CancelCtx>>, deadline: Option<Instant>) -> Arc<Self> {
        let (tx, rx) = chan::bounded(0);
        let c = Arc::new(CancelCtx {
            err: AtomicU8::new(LIVE),
            done: rx,
            deadline,
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

    /// The error once cancelled. A deadline that has passed cancels the node here if its
    /// timer has not yet (it fires a little late, or its runtime has returned and never will).
    pub(super) fn err(&self) -> Option<Error> {
        let e = self.err_now();
        if e.is_none() && self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.cancel(Error::DeadlineExceeded);
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
        let Some(home) = Home::here() else {
            // No runtime runs timers for this thread: `err` and `done` check the deadline
            // when called.
            return;
        };
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
    /// A node dropped while still registered (its `Cancel` was forgotten, and every context
    /// of it dropped) leaves its parent's children.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some((p, key)) = st.parent.take() {
            p.lock().children.try_remove(key);
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
