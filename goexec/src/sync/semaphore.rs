//! [`Semaphore`]: a counting semaphore (Go: `golang.org/x/sync/semaphore`, or a buffered
//! channel used as one).

use crate::runtime::g::WaitReason;
use crate::runtime::waitq::WaitQueue;
use std::fmt;

struct State {
    permits: usize,
    /// Each woken with a permit handed over by `release`.
    waiters: WaitQueue<(), ()>,
}

/// A counting semaphore: at most `n` holders at once. Waiters are served in FIFO order (a
/// released permit goes straight to the first waiter).
///
/// # Examples
///
/// ```
/// use goexec::sync::Semaphore;
///
/// goexec::run(|| {
///     let sem = Semaphore::new(2);
///     let a = sem.acquire();
///     let _b = sem.acquire();
///     assert!(sem.try_acquire().is_none()); // both permits taken
///     drop(a);
///     assert!(sem.try_acquire().is_some());
/// });
/// ```
pub struct Semaphore {
    st: std::sync::Mutex<State>,
}

/// A permit of a [`Semaphore`]; given back when dropped.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            st: std::sync::Mutex::new(State {
                permits,
                waiters: WaitQueue::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a permit, parking until one is free.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        let mut st = self.state();
        if st.permits > 0 && st.waiters.is_empty() {
            st.permits -= 1;
        } else {
            // Woken with a permit handed over by `release`.
            WaitQueue::park(st, |st| &mut st.waiters, (), WaitReason::SyncSemacquire);
        }
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is free now (and nobody waits for one).
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut st = self.state();
        if st.permits > 0 && st.waiters.is_empty() {
            st.permits -= 1;
            Some(SemaphorePermit { sem: self })
        } else {
            None
        }
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.state().permits
    }

    fn release(&self) {
        let mut st = self.state();
        match st.waiters.pop() {
            Some(t) => {
                drop(st);
                t.wake(());
            }
            None => st.permits += 1,
        }
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
