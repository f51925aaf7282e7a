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

/// `UnsafeCell` with loom's closure API (`with_mut`), so that the model checks every access
/// to the cell against the others; std's is a transparent wrapper that compiles to `get`.
#[cfg(not(loom))]
pub(crate) mod cell {
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        #[inline]
        pub(crate) const fn new(data: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(data))
        }

        /// Runs `f` with a pointer for writing the contents.
        #[inline]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
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
    pub(crate) use loom::cell::UnsafeCell;
}

/// Parking a plain thread: the model's own threads under loom, whose `park` lets the other
/// threads run and whose `unpark` the model tracks.
#[cfg(not(loom))]
pub(crate) mod thread {
    pub(crate) use std::thread::{park, yield_now};
}

#[cfg(loom)]
pub(crate) mod thread {
    pub(crate) use loom::thread::{park, yield_now};
}
