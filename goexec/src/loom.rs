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
