//! [`RwLock`] (Go: `sync.RWMutex`): many readers or one writer; waiters park.
//!
//! As in Go, a waiting writer keeps new readers out (so writers are not starved), and when a
//! writer unlocks, the readers that queued meanwhile all get in before the next writer.
//! Ownership is handed over directly to the woken waiters.
#![allow(unsafe_code)] // the protected value is reached through an UnsafeCell, as in std.

use super::sema::{wake, wake_all, Node, Queue};
use crate::runtime::g::WaitReason;
use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Node token: the lock (read or write) is yours.
const GRANTED: u8 = 1;

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    rq: Queue,
    wq: Queue,
}

// SAFETY: the queues only hold records of waiters that wait on them, under the lock.
unsafe impl Send for State {}

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
    st: std::sync::Mutex<State>,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` (so T: Sync), a writer has it alone, as in std's RwLock.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s value; released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access to an [`RwLock`]'s value; released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

// SAFETY: a read guard gives `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: sharing a write guard gives `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            st: Default::default(),
            data: UnsafeCell::new(value),
        }
    }

    /// The value, taking the lock apart.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks for reading, parking while a writer holds the lock or waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        let mut st = self.state();
        if !st.writer && st.wq.is_empty() {
            st.readers += 1;
        } else {
            let node = Node::new(0);
            st.rq.push_back(NonNull::from(&node));
            // Granted: the unlocking writer counted us in `readers`.
            node.park(st, WaitReason::SyncRwLockRead);
        }
        RwLockReadGuard { lock: self }
    }

    /// Locks for reading if that needs no waiting.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut st = self.state();
        if st.writer || !st.wq.is_empty() {
            return None;
        }
        st.readers += 1;
        Some(RwLockReadGuard { lock: self })
    }

    /// Locks for writing, parking until no reader or writer holds the lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let mut st = self.state();
        if !st.writer && st.readers == 0 {
            st.writer = true;
        } else {
            let node = Node::new(0);
            st.wq.push_back(NonNull::from(&node));
            // Granted: the unlocker set `writer` for us.
            node.park(st, WaitReason::SyncRwLockWrite);
        }
        RwLockWriteGuard { lock: self }
    }

    /// Locks for writing if that needs no waiting.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut st = self.state();
        if st.writer || st.readers > 0 {
            return None;
        }
        st.writer = true;
        Some(RwLockWriteGuard { lock: self })
    }

    /// The value, through `&mut` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn read_unlock(&self) {
        let mut st = self.state();
        st.readers -= 1;
        if st.readers == 0 {
            if let Some(w) = st.wq.pop_front() {
                st.writer = true;
                drop(st);
                // SAFETY: taken off the queue under the lock.
                unsafe { wake(w, GRANTED) };
            }
        }
    }

    fn write_unlock(&self) {
        let mut st = self.state();
        st.writer = false;
        if !st.rq.is_empty() {
            // Every reader that queued behind this writer gets in.
            let readers = std::mem::take(&mut st.rq);
            st.readers += readers.len();
            drop(st);
            // SAFETY: taken off the queue under the lock.
            unsafe { wake_all(readers, GRANTED) };
        } else if let Some(w) = st.wq.pop_front() {
            st.writer = true;
            drop(st);
            // SAFETY: as above.
            unsafe { wake(w, GRANTED) };
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
        // SAFETY: a read guard means no writer holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard holds the lock alone.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}
