//! The waiting half shared by every primitive in `sync` (Go: the runtime's `sema.go`): a FIFO
//! of waiter records, each on its waiting goroutine's (or thread's) stack, kept under the
//! primitive's own std mutex (held only for a few instructions, never while anyone waits).
//!
//! A waiter queues its [`Node`] under that lock and parks with [`Node::park`], which releases
//! the lock only once the goroutine's context is saved. Whoever takes the node off the queue
//! (under the same lock) wakes it with [`wake`], passing a token (what the waker decided: for
//! example that the lock is now the waiter's). The record stays alive until its owner sees the
//! token, so the waker may call `wake` after releasing the lock.
#![allow(unsafe_code)] // queued pointers to waiters' stack records, as in chan.

use crate::runtime::g::WaitReason;
use crate::runtime::park::{block_on_guard, Waiter};
use std::cell::Cell;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::MutexGuard;

/// A waiting goroutine or thread.
pub(crate) struct Node {
    waiter: Cell<Option<Waiter>>,
    /// 0 while queued; the waker's token once woken.
    token: AtomicU8,
    /// When the waiter started waiting (`nanotime`), for the Mutex's starvation mode.
    pub(crate) since: u64,
}

/// A queue of waiters; only touched under the owning primitive's lock.
pub(crate) type Queue = VecDeque<NonNull<Node>>;

// SAFETY: a Queue only holds pointers to Nodes whose owners wait on them, and is only touched
// under its primitive's lock (module docs); it moves between threads with the primitive.
pub(crate) struct SendQueue(pub(crate) Queue);
// SAFETY: as above.
unsafe impl Send for SendQueue {}

impl Node {
    pub(crate) fn new(since: u64) -> Node {
        Node {
            waiter: Cell::new(Some(Waiter::current())),
            token: AtomicU8::new(0),
            since,
        }
    }

    /// Parks until woken, releasing `guard` (under which this node was queued). Returns the
    /// waker's token.
    pub(crate) fn park<S>(&self, guard: MutexGuard<'_, S>, reason: WaitReason) -> u8 {
        block_on_guard(guard, reason);
        loop {
            let t = self.token.load(Ordering::Acquire);
            if t != 0 {
                return t;
            }
            // Only a thread gets here: it may wake spuriously; its unpark is still to come.
            std::thread::park();
        }
    }
}

/// Wakes a node taken off its queue, with `token` (non-zero).
///
/// # Safety
///
/// `node` was removed from its queue under the primitive's lock, so its owner still waits on
/// it, and nobody else will wake it.
pub(crate) unsafe fn wake(node: NonNull<Node>, token: u8) {
    debug_assert_ne!(token, 0);
    // SAFETY: the caller's promise: alive until the token is stored.
    let node = unsafe { node.as_ref() };
    let waiter = node.waiter.take();
    node.token.store(token, Ordering::Release);
    // The node may be gone from here on: only the moved-out Waiter is used.
    if let Some(w) = waiter {
        w.wake();
    }
}

/// Wakes every node of `q` with `token`.
///
/// # Safety
///
/// As [`wake`], for each node: `q` was taken from the primitive under its lock.
pub(crate) unsafe fn wake_all(q: Queue, token: u8) {
    for n in q {
        // SAFETY: the caller's promise.
        unsafe { wake(n, token) };
    }
}
