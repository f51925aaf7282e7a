//! Chooses `std` or `loom` primitives for the lock-free code: under `--cfg loom` the model
//! checker's atomics replace std's, so `cargo test` with that cfg explores every interleaving of
//! the code that imports from here (see the README for the command). Only the mechanisms with a
//! loom model import from here.

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::atomic;
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) use loom::sync::atomic;
}

/// `UnsafeCell` with a closure API (`with_ptr`), so that under loom the model checks every
/// access to the cell against the others; the std one compiles to `get`.
#[cfg(not(loom))]
pub(crate) mod cell {
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        #[inline]
        pub(crate) const fn new(data: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(data))
        }

        /// Runs `f` with a pointer for reading or writing the contents.
        #[inline]
        pub(crate) fn with_ptr<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }

        /// The contents, taking the cell apart.
        #[inline]
        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }
}

#[cfg(loom)]
pub(crate) mod cell {
    /// loom's cell, which records each access (as a write) for the model.
    pub(crate) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(data: T) -> UnsafeCell<T> {
            UnsafeCell(loom::cell::UnsafeCell::new(data))
        }

        pub(crate) fn with_ptr<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            self.0.with_mut(f)
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }
}

/// Parking a plain thread in the lock-free code's wait loops (each re-checks its condition, as
/// std's `park` may return spuriously).
#[cfg(not(loom))]
pub(crate) mod thread {
    pub(crate) use std::thread::{park, yield_now};
}

/// Under loom, `park` returns at once (spuriously), yielding to the model's other threads: a
/// waiting side spins until its condition holds, so that the model checks the ordering of
/// that condition itself. Not loom's park and unpark: its `unpark` hands the waker's whole
/// history to the target thread whether or not that thread parks, which would hide races that
/// std's does not. A model counts the wakes instead.
#[cfg(loom)]
pub(crate) mod thread {
    pub(crate) use loom::thread::yield_now;

    pub(crate) fn park() {
        yield_now();
    }
}
