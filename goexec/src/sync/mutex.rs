//! [`Mutex`] (Go: `sync.Mutex`): a lock whose waiters park, with Go's two modes.
//!
//! - Normal mode: waiters queue in FIFO order, but a woken waiter competes with goroutines
//!   arriving just then, which usually win (they are already running). That keeps throughput
//!   high. A woken waiter that loses goes back to the front of the queue.
//! - Starvation mode: entered when a woken waiter that lost the lock again has waited more
//!   than 1 ms since it first queued. Unlock hands the lock straight to the waiter at the
//!   front; newcomers do not try to take it and queue at the back. It ends when the waiter
//!   that got the lock is the last one, or waited under 1 ms.

use crate::runtime::g::WaitReason;
use crate::runtime::lockcell::{Handoff, MutexCell, MutexHeld, Unlock, Unlocking, LOCKED};
use crate::runtime::timers::nanotime;
use crate::runtime::waitq::WaitQueue;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lock word's bit for starvation mode (LOCKED is the lock cell's).
const STARVING: u32 = 2;
/// How long a waiter may wait before the mutex turns to starvation mode (Go: 1 ms).
const STARVE_NS: u64 = 1_000_000;

/// The waiting half: each waiter's record carries when it started waiting; its token is the
/// lock itself in starvation mode, else None (woken to compete for it).
struct Waiters {
    /// Waiters queued, or about to be (counted under `q`'s lock).
    nwait: AtomicU32,
    q: std::sync::Mutex<WaitQueue<u64, Option<Handoff>>>,
}

impl Waiters {
    fn queue(&self) -> std::sync::MutexGuard<'_, WaitQueue<u64, Option<Handoff>>> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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
    /// The word (LOCKED | STARVING), the waiters and the value.
    cell: MutexCell<Waiters, T>,
}

/// Proof of holding a [`Mutex`]; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    held: MutexHeld<'a, Waiters, T>,
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            cell: MutexCell::new(
                Waiters {
                    nwait: AtomicU32::new(0),
                    q: std::sync::Mutex::new(WaitQueue::new()),
                },
                value,
            ),
        }
    }

    /// The value, taking the mutex apart.
    pub fn into_inner(self) -> T {
        self.cell.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking until it is free.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        lock(&self.cell)
    }

    /// Locks the mutex if it is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let s = self.cell.load(Ordering::Relaxed);
        if s & (LOCKED | STARVING) != 0 {
            return None;
        }
        self.cell
            .try_lock(s, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|held| MutexGuard { held })
    }

    /// The value, through `&mut` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.cell.get_mut()
    }
}

/// A mutex to lock again, from one of its guards (`Cond::wait`).
pub(super) struct Relock<'a, T: ?Sized>(&'a MutexCell<Waiters, T>);

impl<'a, T: ?Sized> Relock<'a, T> {
    pub(super) fn lock(self) -> MutexGuard<'a, T> {
        lock(self.0)
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Its mutex, to lock again once this guard is gone.
    pub(super) fn relock(&self) -> Relock<'a, T> {
        Relock(self.held.cell())
    }
}

fn lock<T: ?Sized>(cell: &MutexCell<Waiters, T>) -> MutexGuard<'_, T> {
    let held = match cell.try_lock(0, Ordering::Acquire, Ordering::Relaxed) {
        Ok(held) => held,
        Err(_) => lock_slow(cell),
    };
    MutexGuard { held }
}

fn lock_slow<T: ?Sized>(cell: &MutexCell<Waiters, T>) -> MutexHeld<'_, Waiters, T> {
    // A short spin first: the holder is likely running and about to unlock (Go spins a few
    // rounds on a multicore machine too).
    for _ in 0..4 {
        for _ in 0..30 {
            std::hint::spin_loop();
        }
        if cell.load(Ordering::Relaxed) == 0 {
            if let Ok(held) = cell.try_lock(0, Ordering::Acquire, Ordering::Relaxed) {
                return held;
            }
        }
    }
    #[cfg(test)]
    tests::before_queue();
    let w = cell.waiters();
    // When we first queued (Go's waitStartTime): the wait that starvation mode measures.
    let mut start = 0;
    let mut front = false;
    loop {
        let q = w.queue();
        // SeqCst, with unlock's release of the lock word then load of nwait: either we see
        // the lock free here, or unlock sees us and wakes a waiter.
        w.nwait.fetch_add(1, Ordering::SeqCst);
        let s = cell.load(Ordering::SeqCst);
        // Newcomers leave the lock to the queue in starvation mode; a woken waiter (at the
        // front) may take it.
        if s & LOCKED == 0 && (front || s & STARVING == 0) {
            if let Ok(held) = cell.try_lock(s, Ordering::Acquire, Ordering::Relaxed) {
                w.nwait.fetch_sub(1, Ordering::Relaxed);
                return held;
            }
        }
        // Only a waiter that was woken and lost the lock turns the mutex to starvation mode,
        // as in Go: a newcomer's time spent before it first parks (spinning, preempted) is
        // not waiting in the queue, and must not make unlock hand the lock to a waiter that
        // may never run again (one a stopped runtime abandoned).
        if front && nanotime().saturating_sub(start) > STARVE_NS {
            cell.set(STARVING, Ordering::Relaxed);
        }
        if start == 0 {
            start = nanotime().max(1);
        }
        let (_, handoff) = if front {
            WaitQueue::park_front(q, |q| &mut **q, start, WaitReason::SyncMutexLock)
        } else {
            WaitQueue::park(q, |q| &mut **q, start, WaitReason::SyncMutexLock)
        };
        if let Some(h) = handoff {
            return cell.adopt(h); // the unlocker handed us the lock (still LOCKED)
        }
        front = true;
    }
}

impl<T: ?Sized> Unlock<T> for Waiters {
    fn unlock(u: Unlocking<'_, Waiters, T>) {
        let cell = u.cell();
        let w = cell.waiters();
        if cell.load(Ordering::Relaxed) & STARVING == 0 {
            let prev = u.release(0, Ordering::SeqCst);
            if prev & STARVING == 0 && w.nwait.load(Ordering::SeqCst) == 0 {
                return;
            }
            // Wake one waiter to compete for the lock.
            let mut q = w.queue();
            if let Some(t) = q.pop() {
                w.nwait.fetch_sub(1, Ordering::Relaxed);
                drop(q);
                t.wake(None);
            }
            return;
        }
        // Starvation mode: the lock goes to the waiter at the front, still LOCKED.
        let mut q = w.queue();
        match q.pop() {
            Some(mut t) => {
                w.nwait.fetch_sub(1, Ordering::Relaxed);
                let since = t.with_payload(|since| *since);
                if q.is_empty() || nanotime().saturating_sub(since) < STARVE_NS {
                    cell.clear(STARVING, Ordering::Relaxed);
                }
                drop(q);
                t.wake(Some(u.handoff()));
            }
            None => {
                u.release(STARVING, Ordering::Release);
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
        &self.held
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.held
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    thread_local! {
        /// How long this thread's next `lock_slow` stalls before it queues (as a preempted
        /// or emulated thread does).
        static STALL: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    }

    pub(super) fn before_queue() {
        let d = STALL.with(|s| s.replace(Duration::ZERO));
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }

    /// A newcomer slow to reach the queue has not waited in it: it must not turn the mutex to
    /// starvation mode, which would make the next unlock hand the lock to it rather than
    /// release it (and lose the lock with a waiter that never runs again).
    #[test]
    fn a_slow_newcomer_does_not_start_starvation_mode() {
        let m = std::sync::Arc::new(Mutex::new(0u32));
        let g = m.lock();
        let waiter = {
            let m = m.clone();
            std::thread::spawn(move || {
                STALL.with(|s| s.set(Duration::from_millis(5)));
                *m.lock() += 1;
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Queued under the queue's lock, after its check for starvation.
        while m.cell.waiters().queue().is_empty() {
            assert!(Instant::now() < deadline, "the waiter never queued");
            std::thread::yield_now();
        }
        assert_eq!(
            m.cell.load(Ordering::SeqCst) & STARVING,
            0,
            "a waiter that was never woken turned the mutex to starvation mode"
        );
        drop(g);
        waiter.join().unwrap();
        assert_eq!(*m.lock(), 1);
    }
}
