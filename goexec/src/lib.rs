//! goexec: Go's concurrency model for Rust.
//!
//! Goroutines are stackful coroutines switched by goexec's own assembly, scheduled by Go's
//! G-M-P scheduler, with a netpoller that the scheduler polls where Go's does. The design is in
//! DESIGN.md; this crate is being built bottom-up and today provides its first two layers:
//!
//! - [`runtime::Coroutine`]: a stackful coroutine on one thread, switched by `arch` (x86_64
//!   and aarch64 Linux), with panics caught at its root and values passed both ways;
//! - [`stack`]: guarded goroutine stacks from large arenas (`MADV_GUARD_INSTALL` on Linux >=
//!   6.13, so a million stacks need no extra kernel mappings) or per-stack mappings elsewhere,
//!   a reuse pool, and a stack-overflow handler that names the goroutine and its stack size.
//!
//! # Soundness
//!
//! A goroutine can be suspended on one OS thread and resumed on another. Rust compilers assume
//! a function never changes threads, so they may compute the address of a `thread_local!` once
//! and reuse it after a call that, in goexec, switched threads underneath. goexec's own code
//! never keeps a thread-local address across a switch (all of its thread-local state goes
//! through `#[inline(never)]` accessors). In your goroutines:
//!
//! - do not hold a reference obtained from a thread-local (`LOCAL.with(|x| ...)` borrowing
//!   across a blocking call) over anything that can switch goroutines: a channel operation, a
//!   lock, a sleep, I/O, `yield_now`;
//! - when a goroutine must see one thread's locals throughout (a C library with per-thread
//!   state, a `RefCell` in TLS that lives across calls), pin it with
//!   `goexec::lock_os_thread()` first;
//! - for state that belongs to the goroutine rather than the thread, use `goexec::local!`.
//!
//! The low-level [`runtime::Coroutine`] is not `Send`. Used from plain threads it always
//! resumes on the thread that created it, so none of this applies to it; one owned by a
//! goroutine moves with that goroutine, and code running inside it follows the rules above.
//!
//! Stacks are fixed-size (Rust cannot move a stack, so goexec cannot grow it as Go does).
//! Running off the end hits a guard page, and the process aborts with
//! `goroutine N stack overflow (stack size S bytes)`.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod arch;
mod loom;
pub mod runtime;
pub mod stack;
pub mod task;

pub use runtime::{
    lock_os_thread, run, spawn, unlock_os_thread, yield_now, Builder, Runtime, RuntimeBuilder,
};
pub use task::{JoinError, JoinHandle};

/// Hooks for the benches package; not part of the API.
#[doc(hidden)]
pub mod bench_support {
    /// Times `iters` round trips of the bare context switch (resume + suspend, a value each
    /// way), without the `Coroutine` wrapper's bookkeeping.
    pub fn raw_switch_round_trips(iters: u64) -> std::time::Duration {
        crate::arch::raw_round_trips(iters)
    }
}
