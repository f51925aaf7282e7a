//! The values behind `sync`'s locks, and the proofs of holding them: the one place that turns
//! a held lock into a reference to its value, so that the locks' own algorithms (`sync`'s
//! `Mutex` and `RwLock`: spinning, queueing, Go's starvation mode and writer preference) are
//! safe code.
//!
//! Who may reach a value is decided here, by what is counted where:
//! - a [`MutexCell`]'s LOCKED bit is set by [`MutexCell::try_lock`] (one CAS, which returns
//!   the only [`MutexHeld`]) and cleared only by the holder giving it up ([`Unlocking`]),
//!   or passed on, still set, to a waiter (Go's starvation mode): the holder sets HANDOFF
//!   instead and sends a [`Handoff`] to the waiter, whose [`adopt`](MutexCell::adopt) clears
//!   it. So there is one holder or one hold in transit, never two;
//! - an [`RwCell`]'s readers count and writer flag (under its std mutex) count every holder,
//!   and every hold in transit to a woken waiter ([`ReadPermit`], [`WritePermit`]), which
//!   its [`read`](RwCell::read) or [`write`](RwCell::write) turns into a holder.
//!
//! A permit is only a claim on a hold in transit: a cell honours it only if it has one in
//! transit, so a stray permit can block a lock, never open it twice. The lock's algorithm
//! decides who gets the lock, and when, through the [`Unlock`] and [`RwUnlock`] hooks that a
//! holder's drop calls.
#![allow(unsafe_code)] // the protected values, reached through UnsafeCells as in std's locks.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};

/// The bit of a [`MutexCell`]'s word that says it is held (or in transit). The lock's own
/// bits are the others but HANDOFF.
pub(crate) const LOCKED: u32 = 1;
/// With LOCKED: the hold is in transit to a waiter (a [`Handoff`]).
const HANDOFF: u32 = 1 << 31;

/// A mutex's word, its waiters (`S`, the lock's own state) and its value.
pub(crate) struct MutexCell<S, T: ?Sized> {
    word: AtomicU32,
    waiters: S,
    data: UnsafeCell<T>,
}

// SAFETY: one holder at a time reaches the value (the LOCKED bit), as with std's Mutex: the
// value moves between threads with the lock, so T: Send; the waiters are shared.
unsafe impl<S: Sync, T: ?Sized + Send> Sync for MutexCell<S, T> {}

/// How a mutex is given up, by its holder's drop: the lock's algorithm (whether to wake a
/// waiter, or hand it the lock).
pub(crate) trait Unlock<T: ?Sized>: Sized {
    /// Gives the lock up: [`Unlocking::release`] or [`Unlocking::handoff`].
    fn unlock(u: Unlocking<'_, Self, T>);
}

/// Holding a [`MutexCell`]: its value, for as long as it lives; unlocks (through the lock's
/// [`Unlock`]) when dropped.
pub(crate) struct MutexHeld<'a, S: Unlock<T>, T: ?Sized> {
    cell: &'a MutexCell<S, T>,
}

// SAFETY: sharing the holder shares `&T` only.
unsafe impl<S: Unlock<T> + Sync, T: ?Sized + Sync> Sync for MutexHeld<'_, S, T> {}

/// A holder giving a [`MutexCell`] up: LOCKED is still set. Dropped without either method,
/// it releases the lock.
pub(crate) struct Unlocking<'a, S, T: ?Sized> {
    cell: &'a MutexCell<S, T>,
}

/// A held mutex in transit to a waiter, who adopts it with [`MutexCell::adopt`].
#[derive(Debug)]
pub(crate) struct Handoff(());

impl<S, T> MutexCell<S, T> {
    pub(crate) const fn new(waiters: S, value: T) -> MutexCell<S, T> {
        MutexCell {
            word: AtomicU32::new(0),
            waiters,
            data: UnsafeCell::new(value),
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<S, T: ?Sized> MutexCell<S, T> {
    pub(crate) fn waiters(&self) -> &S {
        &self.waiters
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    #[inline]
    pub(crate) fn load(&self, order: Ordering) -> u32 {
        self.word.load(order)
    }

    /// Sets the lock's own `bits` (not LOCKED, HANDOFF).
    pub(crate) fn set(&self, bits: u32, order: Ordering) {
        assert_eq!(bits & (LOCKED | HANDOFF), 0);
        self.word.fetch_or(bits, order);
    }

    /// Clears the lock's own `bits` (not LOCKED, HANDOFF).
    pub(crate) fn clear(&self, bits: u32, order: Ordering) {
        assert_eq!(bits & (LOCKED | HANDOFF), 0);
        self.word.fetch_and(!bits, order);
    }
}

impl<S: Unlock<T>, T: ?Sized> MutexCell<S, T> {
    /// Takes the lock if the word is `from` (without LOCKED): the word becomes
    /// `from | LOCKED`. Err with the word as found.
    #[inline]
    pub(crate) fn try_lock(
        &self,
        from: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<MutexHeld<'_, S, T>, u32> {
        if from & LOCKED != 0 {
            return Err(from);
        }
        self.word
            .compare_exchange(from, from | LOCKED, success, failure)
            .map(|_| MutexHeld { cell: self })
    }

    /// Takes over the lock handed to us by its last holder.
    pub(crate) fn adopt(&self, h: Handoff) -> MutexHeld<'_, S, T> {
        let Handoff(()) = h;
        // Acquire: the last holder's writes, before its handoff.
        if self.word.fetch_and(!HANDOFF, Ordering::Acquire) & HANDOFF == 0 {
            crate::runtime::fatal("sync", "a mutex adopted with no handoff in transit");
        }
        MutexHeld { cell: self }
    }
}

impl<'a, S: Unlock<T>, T: ?Sized> MutexHeld<'a, S, T> {
    pub(crate) fn cell(&self) -> &'a MutexCell<S, T> {
        self.cell
    }
}

impl<S: Unlock<T>, T: ?Sized> Deref for MutexHeld<'_, S, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock (LOCKED, set by our CAS or handed to us), so nobody else
        // reaches the value until we give it up.
        unsafe { &*self.cell.data.get() }
    }
}

impl<S: Unlock<T>, T: ?Sized> DerefMut for MutexHeld<'_, S, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes the borrow exclusive.
        unsafe { &mut *self.cell.data.get() }
    }
}

impl<S: Unlock<T>, T: ?Sized> Drop for MutexHeld<'_, S, T> {
    #[inline]
    fn drop(&mut self) {
        S::unlock(Unlocking { cell: self.cell });
    }
}

impl<'a, S, T: ?Sized> Unlocking<'a, S, T> {
    pub(crate) fn cell(&self) -> &'a MutexCell<S, T> {
        self.cell
    }

    /// Clears LOCKED and the lock's `also` bits; returns the word before.
    #[inline]
    pub(crate) fn release(self, also: u32, order: Ordering) -> u32 {
        let cell = self.cell;
        std::mem::forget(self);
        cell.word.fetch_and(!(LOCKED | also), order)
    }

    /// The lock, still held, for a waiter to adopt.
    pub(crate) fn handoff(self) -> Handoff {
        // Release: our writes, for the adopter.
        self.cell.word.fetch_or(HANDOFF, Ordering::Release);
        std::mem::forget(self);
        Handoff(())
    }
}

impl<S, T: ?Sized> Drop for Unlocking<'_, S, T> {
    fn drop(&mut self) {
        self.cell.word.fetch_and(!LOCKED, Ordering::Release);
    }
}

/// A reader-writer lock's counts, its waiters (`S`) under the same std mutex, and its value.
pub(crate) struct RwCell<S, T: ?Sized> {
    st: std::sync::Mutex<RwState<S>>,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` (so T: Sync), a writer has it alone (so T: Send), as with std's
// RwLock; the counts and waiters are under the mutex.
unsafe impl<S: Send, T: ?Sized + Send + Sync> Sync for RwCell<S, T> {}

struct RwState<S> {
    /// Readers holding the lock or in transit to it.
    readers: usize,
    /// A writer holds the lock or is in transit to it.
    writer: bool,
    /// Of those, in transit (granted to woken waiters, not yet theirs).
    reads_sent: usize,
    write_sent: bool,
    waiters: S,
}

/// How an [`RwCell`] is given up, by its holders' drops: the lock's algorithm (whom to let
/// in next). Called with the state locked, the leaving holder already counted out.
pub(crate) trait RwUnlock<T: ?Sized>: Sized {
    fn read_unlocked(st: RwLocked<'_, Self, T>);
    fn write_unlocked(st: RwLocked<'_, Self, T>);
}

/// An [`RwCell`]'s state, locked: the counts (changed only here) and the waiters.
pub(crate) struct RwLocked<'a, S, T: ?Sized> {
    cell: &'a RwCell<S, T>,
    st: std::sync::MutexGuard<'a, RwState<S>>,
}

/// A reader's share of an [`RwCell`], in transit to a woken waiter: [`RwCell::read`].
#[derive(Debug)]
pub(crate) struct ReadPermit(());

/// `n` readers' shares in transit, handed out one by one.
#[derive(Debug)]
pub(crate) struct ReadGrant {
    n: usize,
}

/// The writer's hold of an [`RwCell`], in transit to a woken waiter: [`RwCell::write`].
#[derive(Debug)]
pub(crate) struct WritePermit(());

/// Reading an [`RwCell`]'s value; counted out (through the lock's [`RwUnlock`]) when
/// dropped.
pub(crate) struct ReadHeld<'a, S: RwUnlock<T>, T: ?Sized> {
    cell: &'a RwCell<S, T>,
}

/// Writing an [`RwCell`]'s value; released (through the lock's [`RwUnlock`]) when dropped.
pub(crate) struct WriteHeld<'a, S: RwUnlock<T>, T: ?Sized> {
    cell: &'a RwCell<S, T>,
}

// SAFETY: sharing a holder shares `&T` only (not the waiters, which it does not reach).
unsafe impl<S: RwUnlock<T>, T: ?Sized + Sync> Sync for ReadHeld<'_, S, T> {}
// SAFETY: as above.
unsafe impl<S: RwUnlock<T>, T: ?Sized + Sync> Sync for WriteHeld<'_, S, T> {}

impl<S, T> RwCell<S, T> {
    pub(crate) fn new(waiters: S, value: T) -> RwCell<S, T> {
        RwCell {
            st: std::sync::Mutex::new(RwState {
                readers: 0,
                writer: false,
                reads_sent: 0,
                write_sent: false,
                waiters,
            }),
            data: UnsafeCell::new(value),
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<S, T: ?Sized> RwCell<S, T> {
    /// Locks the state (held only for a few instructions, never while anyone waits).
    pub(crate) fn lock(&self) -> RwLocked<'_, S, T> {
        RwLocked {
            cell: self,
            // A panic never leaves the state half-updated (no user code runs under it).
            st: self.st.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<S: RwUnlock<T>, T: ?Sized> RwCell<S, T> {
    /// Reads with a share in transit to us.
    pub(crate) fn read(&self, p: ReadPermit) -> ReadHeld<'_, S, T> {
        let ReadPermit(()) = p;
        let mut st = self.lock();
        if st.st.reads_sent == 0 {
            crate::runtime::fatal("sync", "an RwLock read with no share in transit");
        }
        st.st.reads_sent -= 1;
        ReadHeld { cell: self }
    }

    /// Writes with the hold in transit to us.
    pub(crate) fn write(&self, p: WritePermit) -> WriteHeld<'_, S, T> {
        let WritePermit(()) = p;
        let mut st = self.lock();
        if !st.st.write_sent {
            crate::runtime::fatal("sync", "an RwLock write with no hold in transit");
        }
        st.st.write_sent = false;
        WriteHeld { cell: self }
    }
}

impl<'a, S: RwUnlock<T>, T: ?Sized> RwLocked<'a, S, T> {
    pub(crate) fn readers(&self) -> usize {
        self.st.readers
    }

    /// Reads now, unless a writer holds the lock; the state stays locked until `self` goes.
    pub(crate) fn try_read(&mut self) -> Option<ReadHeld<'a, S, T>> {
        if self.st.writer {
            return None;
        }
        self.st.readers += 1;
        Some(ReadHeld { cell: self.cell })
    }

    /// Writes now, unless anyone holds the lock.
    pub(crate) fn try_write(&mut self) -> Option<WriteHeld<'a, S, T>> {
        if self.st.writer || self.st.readers > 0 {
            return None;
        }
        self.st.writer = true;
        Some(WriteHeld { cell: self.cell })
    }

    /// `n` readers' shares, for woken waiters, unless a writer holds the lock.
    pub(crate) fn grant_reads(&mut self, n: usize) -> Option<ReadGrant> {
        if self.st.writer {
            return None;
        }
        self.st.readers += n;
        self.st.reads_sent += n;
        Some(ReadGrant { n })
    }

    /// The writer's hold, for a woken waiter, unless anyone holds the lock.
    pub(crate) fn grant_write(&mut self) -> Option<WritePermit> {
        if self.st.writer || self.st.readers > 0 {
            return None;
        }
        self.st.writer = true;
        self.st.write_sent = true;
        Some(WritePermit(()))
    }
}

impl<S, T: ?Sized> Deref for RwLocked<'_, S, T> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.st.waiters
    }
}

impl<S, T: ?Sized> DerefMut for RwLocked<'_, S, T> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.st.waiters
    }
}

impl ReadGrant {
    /// One reader's share.
    pub(crate) fn take(&mut self) -> ReadPermit {
        if self.n == 0 {
            crate::runtime::fatal("sync", "more readers than granted");
        }
        self.n -= 1;
        ReadPermit(())
    }
}

impl<S: RwUnlock<T>, T: ?Sized> Deref for ReadHeld<'_, S, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we are counted in the readers, so no writer holds the lock.
        unsafe { &*self.cell.data.get() }
    }
}

impl<S: RwUnlock<T>, T: ?Sized> Drop for ReadHeld<'_, S, T> {
    fn drop(&mut self) {
        let mut st = self.cell.lock();
        st.st.readers -= 1;
        S::read_unlocked(st);
    }
}

impl<S: RwUnlock<T>, T: ?Sized> Deref for WriteHeld<'_, S, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we are the writer, alone: no reader is counted and no other writer.
        unsafe { &*self.cell.data.get() }
    }
}

impl<S: RwUnlock<T>, T: ?Sized> DerefMut for WriteHeld<'_, S, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes the borrow exclusive.
        unsafe { &mut *self.cell.data.get() }
    }
}

impl<S: RwUnlock<T>, T: ?Sized> Drop for WriteHeld<'_, S, T> {
    fn drop(&mut self) {
        let mut st = self.cell.lock();
        st.st.writer = false;
        S::write_unlocked(st);
    }
}
