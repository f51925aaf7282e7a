//! [`RwLock`] (Go: `sync.RWMutex`): many readers or one writer; waiters park.
//!
//! As in Go, a waiting writer keeps new readers out (so writers are not starved), and when a
//! writer unlocks, the readers that queued meanwhile all get in before the next writer.
//! Ownership is handed over directly to the woken waiters.

use crate::runtime::g::WaitReason;
use crate::runtime::lockcell::{
    ReadHeld, ReadPermit, RwCell, RwLocked, RwUnlock, WriteHeld, WritePermit,
};
use crate::runtime::waitq::WaitQueue;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// The waiting readers and writers, each woken with its share of the lock.
#[derive(Default)]
struct Waiters {
    rq: WaitQueue<(), ReadPermit>,
    wq: WaitQueue<(), WritePermit>,
}

/// A reader-writer lock that parks the goroutine (or thread) waiting for it. No poisoning.
///
/// # Examples
///
/// ```
/// use goexec::sync::RwLock;
///
/// goexec::run(|| {
///     let lock = RwLock::new(5);
///     {
///         let (a, b) = (lock.read(), lock.read()); // readers share
///         assert_eq!(*a + *b, 10);
///     }
///     *lock.write() += 1;
///     assert_eq!(*lock.read(), 6);
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    /// The readers count and writer flag, the waiters, and the value.
    cell: RwCell<Waiters, T>,
}

/// Shared access to an [`RwLock`]'s value; released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    held: ReadHeld<'a, Waiters, T>,
}

/// Exclusive access to an [`RwLock`]'s value; released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    held: WriteHeld<'a, Waiters, T>,
}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            cell: RwCell::new(Waiters::default(), value),
        }
    }

    /// The value, taking the lock apart.
    pub fn into_inner(self) -> T {
        self.cell.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, parking while a writer holds the lock or waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        let mut st = self.cell.lock();
        if st.wq.is_empty() {
            if let Some(held) = st.try_read() {
                drop(st);
                return RwLockReadGuard { held };
            }
        }
        // Granted: the unlocking writer counted us in the readers.
        let ((), p) = WaitQueue::park(st, |st| &mut st.rq, (), WaitReason::SyncRwLockRead);
        RwLockReadGuard {
            held: self.cell.read(p),
        }
    }

    /// Locks for reading if that needs no waiting.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut st = self.cell.lock();
        if !st.wq.is_empty() {
            return None;
        }
        let held = st.try_read()?;
        drop(st);
        Some(RwLockReadGuard { held })
    }

    /// Locks for writing, parking until no reader or writer holds the lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let mut st = self.cell.lock();
        if let Some(held) = st.try_write() {
            drop(st);
            return RwLockWriteGuard { held };
        }
        // Granted: the unlocker made us the writer.
        let ((), p) = WaitQueue::park(st, |st| &mut st.wq, (), WaitReason::SyncRwLockWrite);
        RwLockWriteGuard {
            held: self.cell.write(p),
        }
    }

    /// Locks for writing if that needs no waiting.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut st = self.cell.lock();
        let held = st.try_write()?;
        drop(st);
        Some(RwLockWriteGuard { held })
    }

    /// The value, through `&mut` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.cell.get_mut()
    }
}

impl<T: ?Sized> RwUnlock<T> for Waiters {
    fn read_unlocked(mut st: RwLocked<'_, Waiters, T>) {
        if st.readers() == 0 {
            if let Some(w) = st.wq.pop() {
                let Some(p) = st.grant_write() else {
                    crate::runtime::fatal("RwLock", "no readers, yet a writer");
                };
                drop(st);
                w.wake(p);
            }
        }
    }

    fn write_unlocked(mut st: RwLocked<'_, Waiters, T>) {
        if !st.rq.is_empty() {
            // Every reader that queued behind this writer gets in.
            let readers = st.rq.drain();
            let Some(mut grant) = st.grant_reads(readers.len()) else {
                crate::runtime::fatal("RwLock", "a writer left, yet a writer");
            };
            drop(st);
            readers.wake_each(|| grant.take());
        } else if let Some(w) = st.wq.pop() {
            let Some(p) = st.grant_write() else {
                crate::runtime::fatal("RwLock", "a writer left, yet a holder");
            };
            drop(st);
            w.wake(p);
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.held
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.held
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.held
    }
}
