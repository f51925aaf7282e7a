//! [`Cond`] (Go: `sync.Cond`), with goexec's [`Mutex`](super::Mutex).

use super::mutex::MutexGuard;
use crate::runtime::g::WaitReason;
use crate::runtime::waitq::WaitQueue;
use std::fmt;

/// A condition variable (Go: `sync.Cond`): goroutines wait, with a [`Mutex`](super::Mutex) held, for a
/// condition that others signal. As in Go (and std), check the condition in a loop around
/// `wait`.
///
/// # Examples
///
/// ```
/// use goexec::sync::{Cond, Mutex};
/// use std::sync::Arc;
///
/// goexec::run(|| {
///     let pair = Arc::new((Mutex::new(false), Cond::new()));
///     let p = pair.clone();
///     goexec::spawn(move || {
///         *p.0.lock() = true;
///         p.1.broadcast();
///     });
///     let mut ready = pair.0.lock();
///     while !*ready {
///         ready = pair.1.wait(ready);
///     }
/// });
/// ```
pub struct Cond {
    q: std::sync::Mutex<WaitQueue<(), ()>>,
}

impl Cond {
    /// A condition variable with no waiters.
    pub fn new() -> Cond {
        Cond {
            q: std::sync::Mutex::new(WaitQueue::new()),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, WaitQueue<(), ()>> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Unlocks `guard`'s mutex, parks until signalled, and locks the mutex again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.relock();
        let q = self.queue();
        // Our queue is locked before the mutex is released, and stays locked until we are
        // queued: a signal sent after the release waits for it, and finds us.
        drop(guard);
        WaitQueue::park(q, |q| &mut **q, (), WaitReason::SyncCondWait);
        mutex.lock()
    }

    /// Wakes one waiter, if any (Go: `Signal`).
    pub fn signal(&self) {
        let t = self.queue().pop();
        if let Some(t) = t {
            t.wake(());
        }
    }

    /// Wakes every waiter (Go: `Broadcast`).
    pub fn broadcast(&self) {
        let all = self.queue().drain();
        all.wake_all(());
    }

    /// std's name for [`signal`](Cond::signal).
    pub fn notify_one(&self) {
        self.signal();
    }

    /// std's name for [`broadcast`](Cond::broadcast).
    pub fn notify_all(&self) {
        self.broadcast();
    }
}

impl Default for Cond {
    fn default() -> Cond {
        Cond::new()
    }
}

impl fmt::Debug for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cond").finish_non_exhaustive()
    }
}
