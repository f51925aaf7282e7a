//! [`Mutex`] (Go: `sync.Mutex`): a lock whose waiters park, with Go's two modes.
//!
//! - Normal mode: waiters queue in FIFO order, but a woken waiter competes with goroutines
//!   arriving just then, which usually win (they are already running). That keeps throughput
//!   high. A woken waiter that loses goes back to the front of the queue.
//! - Starvation mode: entered when a waiter has waited more than 1 ms. Unlock hands the lock
//!   straight to the waiter at the front; newcomers do not try to take it and queue at the
//!   back. It ends when the waiter that got the lock is the last one, or waited under 1 ms.
#![allow(unsafe_code)] // the protected value is reached through an UnsafeCell, as in std.

use super::sema::{wake, Node, SendQueue};
use crate::runtime::g::WaitReason;
use crate::runtime::timers::nanotime;
use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

const LOCKED: u32 = 1;
const STARVING: u32 = 2;
/// How long a waiter may wait before the mutex turns to starvation mode (Go: 1 ms).
const STARVE_NS: u64 = 1_000_000;
/// Node tokens: woken to compete for the lock, or handed the lock.
const WOKEN: u8 = 1;
const HANDOFF: u8 = 2;

/// A mutual exclusion lock that parks the goroutine (or thread) waiting for it.
///
/// Unlike `std::sync::Mutex`, waiting never blocks the thread of a goroutine, and there is no
/// poisoning (as in Go, a panic while holding the lock simply unlocks it when the guard
/// drops).
///
/// # Examples
///
/// ```
/// use goexec::sync::Mutex;
/// use std::sync::Arc;
///
/// goexec::run(|| {
///     let n = Arc::new(Mutex::new(0));
///     let hs: Vec<_> = (0..10)
///         .map(|_| {
///             let n = n.clone();
///             goexec::spawn(move || *n.lock() += 1)
///         })
///         .collect();
///     hs.into_iter().for_each(|h| h.join().unwrap());
///     assert_eq!(*n.lock(), 10);
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    /// LOCKED | STARVING.
    state: AtomicU32,
    /// Waiters queued, or about to be (counted under `q`'s lock).
    nwait: AtomicU32,
    q: std::sync::Mutex<SendQueue>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives one holder at a time access to `data`, as std's Mutex does.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Proof of holding a [`Mutex`]; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(crate) lock: &'a Mutex<T>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU32::new(0),
            nwait: AtomicU32::new(0),
            q: std::sync::Mutex::new(SendQueue(std::collections::VecDeque::new())),
            data: UnsafeCell::new(value),
        }
    }

    /// The value, taking the mutex apart.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking until it is free.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        MutexGuard { lock: self }
    }

    /// Locks the mutex if it is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let s = self.state.load(Ordering::Relaxed);
        if s & (LOCKED | STARVING) != 0 {
            return None;
        }
        self.state
            .compare_exchange(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| MutexGuard { lock: self })
    }

    /// The value, through `&mut` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn lock_slow(&self) {
        let start = nanotime();
        // A short spin first: the holder is likely running and about to unlock (Go spins a
        // few rounds on a multicore machine too).
        for _ in 0..4 {
            for _ in 0..30 {
                std::hint::spin_loop();
            }
            if self.state.load(Ordering::Relaxed) == 0
                && self
                    .state
                    .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        let mut front = false;
        loop {
            let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
            // SeqCst, with unlock's release of the lock word then load of nwait: either we
            // see the lock free here, or unlock sees us and wakes a waiter.
            self.nwait.fetch_add(1, Ordering::SeqCst);
            let s = self.state.load(Ordering::SeqCst);
            // Newcomers leave the lock to the queue in starvation mode; a woken waiter (at
            // the front) may take it.
            if s & LOCKED == 0
                && (front || s & STARVING == 0)
                && self
                    .state
                    .compare_exchange(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                self.nwait.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            if nanotime().saturating_sub(start) > STARVE_NS {
                self.state.fetch_or(STARVING, Ordering::Relaxed);
            }
            let node = Node::new(start);
            let n = NonNull::from(&node);
            if front {
                q.0.push_front(n);
            } else {
                q.0.push_back(n);
            }
            if node.park(q, WaitReason::SyncMutexLock) == HANDOFF {
                return; // the unlocker handed us the lock (still LOCKED)
            }
            front = true;
        }
    }

    fn unlock(&self) {
        if self.state.load(Ordering::Relaxed) & STARVING == 0 {
            let prev = self.state.fetch_and(!LOCKED, Ordering::SeqCst);
            if prev & STARVING == 0 && self.nwait.load(Ordering::SeqCst) == 0 {
                return;
            }
            // Wake one waiter to compete for the lock.
            let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = q.0.pop_front() {
                self.nwait.fetch_sub(1, Ordering::Relaxed);
                drop(q);
                // SAFETY: taken off the queue under its lock.
                unsafe { wake(n, WOKEN) };
            }
            return;
        }
        // Starvation mode: the lock goes to the waiter at the front, still LOCKED.
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        match q.0.pop_front() {
            Some(n) => {
                self.nwait.fetch_sub(1, Ordering::Relaxed);
                // SAFETY: just taken off the queue under its lock: its owner waits on it.
                let since = unsafe { n.as_ref() }.since;
                if q.0.is_empty() || nanotime().saturating_sub(since) < STARVE_NS {
                    self.state.fetch_and(!STARVING, Ordering::Relaxed);
                }
                drop(q);
                // SAFETY: as above.
                unsafe { wake(n, HANDOFF) };
            }
            None => {
                self.state
                    .fetch_and(!(LOCKED | STARVING), Ordering::Release);
            }
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
