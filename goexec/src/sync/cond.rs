//! [`Cond`] (Go: `sync.Cond`), with goexec's [`Mutex`].

#![allow(unsafe_code)] // waking queued records (sema.rs).
use super::mutex::{Mutex, MutexGuard};
use super::sema::{wake, wake_all, Node, SendQueue};
use crate::runtime::g::WaitReason;
use std::fmt;
use std::ptr::NonNull;

/// A condition variable (Go: `sync.Cond`): goroutines wait, with a [`Mutex`] held, for a
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
    q: std::sync::Mutex<SendQueue>,
}

impl Cond {
    /// A condition variable with no waiters.
    pub fn new() -> Cond {
        Cond {
            q: std::sync::Mutex::new(SendQueue(Default::default())),
        }
    }

    /// Unlocks `guard`'s mutex, parks until signalled, and locks the mutex again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex: &'a Mutex<T> = guard.lock;
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        let node = Node::new(0);
        q.0.push_back(NonNull::from(&node));
        // Queued before the mutex is released: a signal sent after that finds us.
        drop(guard);
        node.park(q, WaitReason::SyncCondWait);
        mutex.lock()
    }

    /// Wakes one waiter, if any (Go: `Signal`).
    pub fn signal(&self) {
        let n = self
            .q
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .pop_front();
        if let Some(n) = n {
            // SAFETY: taken off the queue under its lock.
            unsafe { wake(n, 1) };
        }
    }

    /// Wakes every waiter (Go: `Broadcast`).
    pub fn broadcast(&self) {
        let all = std::mem::take(&mut self.q.lock().unwrap_or_else(|e| e.into_inner()).0);
        // SAFETY: taken off the queue under its lock.
        unsafe { wake_all(all, 1) };
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
