//! Thread-local storage: the only place goexec declares `thread_local!`.
//!
//! A goroutine can be suspended on one OS thread and resumed on another, but LLVM assumes a
//! function never changes threads: it may compute a thread-local's address once and reuse it
//! after a call that switched stacks, silently reading another thread's data (this crashed
//! another Rust coroutine runtime in release builds). So:
//!
//! - every accessor here is `#[inline(never)]`, so each call computes the address afresh inside
//!   its own frame, on whatever thread runs it now;
//! - each accessor is bracketed by compiler fences, so no load or store of TLS data moves across
//!   the call boundary into the caller, where it could be hoisted over a switch;
//! - no accessor returns a reference: values are copied out, or a closure runs inside.
//!
//! Nothing in goexec holds a TLS-derived pointer across a switch.
//!
//! The cells hold plain values and pointers whose meaning belongs to the layers above (the
//! stack-overflow handler, the runtime's M, `goexec::local!`); this module only keeps them.

use super::altstack::AltStack;
use std::cell::{Cell, RefCell};
use std::io;
use std::ptr;
use std::sync::atomic::{compiler_fence, Ordering};

/// What a thread is running on, for the stack-overflow handler (stack/overflow.rs): the guard
/// range and what to print. Lives beside the stack's owner (a coroutine's Yielder, a G) at a
/// stable address; the thread's TLS points at it while the stack runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunningStack {
    /// The stack's lowest usable address: the guard page ends here (it starts one page below).
    pub(crate) bottom: usize,
    /// Usable bytes of the stack, for the message.
    pub(crate) size: usize,
    /// The goroutine (or coroutine) id, for the message.
    pub(crate) id: u64,
}

thread_local! {
    /// The stack this thread is running on, if it is a goroutine or coroutine stack: a pointer
    /// to a record that lives as long as that stack runs (in its Yielder or G), or null. Read by
    /// the SIGSEGV handler: const-initialised and without a destructor, so reading it from a
    /// signal handler is a plain load. One word, so setting it on every switch costs one store.
    static RUNNING_STACK: Cell<*const RunningStack> = const { Cell::new(ptr::null()) };

    /// The M this thread is, if it is one: a pointer to the runtime's `MLocal` on this thread's
    /// stack (see runtime::m), or null.
    static CURRENT_M: Cell<*const ()> = const { Cell::new(ptr::null()) };

    /// `goexec::local!` values of a plain thread (goroutines keep theirs in their G).
    static THREAD_LOCALS: RefCell<Vec<(usize, Box<dyn std::any::Any>)>> =
        const { RefCell::new(Vec::new()) };

    /// What user code the runtime is running on this (non-M) thread's own stack, if any
    /// (runtime/callback.rs): goexec blocking calls are fatal meanwhile.
    static SYSTEM_CODE: Cell<Option<&'static str>> = const { Cell::new(None) };

    /// This thread's alternate signal stack, if goexec had to make one.
    static ALT_STACK: RefCell<AltStack> = const { RefCell::new(AltStack::empty()) };

    /// The random source of a thread that is not an M (an M has its own): xorshift state,
    /// seeded differently per thread.
    static RNG: Cell<u64> =
        Cell::new(RNG_SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) | 1);
}

/// Seeds the random sources of threads that are not Ms, each differently.
static RNG_SEED: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0x2545_F491_4F6C_DD1D);

/// Runs `f` between compiler fences, so that no TLS access in it moves out into the caller,
/// where it could be hoisted over a switch (module docs). Only the `#[inline(never)]`
/// accessors below call it.
#[inline(always)]
fn fenced<R>(f: impl FnOnce() -> R) -> R {
    compiler_fence(Ordering::SeqCst);
    let r = f();
    compiler_fence(Ordering::SeqCst);
    r
}

/// The record of the stack the calling thread runs on, or null (see [`set_running_stack`]).
#[inline(never)]
pub(crate) fn running_stack() -> *const RunningStack {
    fenced(|| RUNNING_STACK.get())
}

/// Records the stack the calling thread is about to run on; returns the previous record so the
/// caller can restore it when control comes back. The record must stay valid while it is
/// installed.
#[inline(never)]
pub(crate) fn set_running_stack(r: *const RunningStack) -> *const RunningStack {
    fenced(|| RUNNING_STACK.replace(r))
}

/// Gives the calling thread an alternate signal stack if it has none.
#[inline(never)]
pub(crate) fn ensure_alt_stack() -> io::Result<()> {
    fenced(|| ALT_STACK.with(|a| a.borrow_mut().ensure()))
}

/// The calling thread's M (an `*const MLocal`), or null on a thread that is not an M.
#[inline(never)]
pub(crate) fn current_m() -> *const () {
    fenced(|| CURRENT_M.get())
}

/// Makes `m` the calling thread's M; returns the previous value.
#[inline(never)]
pub(crate) fn set_current_m(m: *const ()) -> *const () {
    fenced(|| CURRENT_M.replace(m))
}

/// Runs `f` on the calling plain thread's `goexec::local!` values. While the thread exits,
/// after its values were dropped (a value's destructor using a local), on a scratch vector
/// that is dropped on return with what `f` put in it.
#[inline(never)]
pub(crate) fn with_thread_locals<R>(
    f: impl FnOnce(&mut Vec<(usize, Box<dyn std::any::Any>)>) -> R,
) -> R {
    fenced(|| {
        if THREAD_LOCALS.try_with(|_| ()).is_ok() {
            THREAD_LOCALS.with(|l| f(&mut l.borrow_mut()))
        } else {
            f(&mut Vec::new())
        }
    })
}

/// What user code the runtime runs on this thread's own stack, if any (runtime/callback.rs).
#[inline(never)]
pub(crate) fn system_code() -> Option<&'static str> {
    fenced(|| SYSTEM_CODE.get())
}

/// Sets [`system_code`]; returns the previous value.
#[inline(never)]
pub(crate) fn set_system_code(what: Option<&'static str>) -> Option<&'static str> {
    fenced(|| SYSTEM_CODE.replace(what))
}

/// The next number of the calling thread's random source (xorshift64).
#[inline(never)]
pub(crate) fn thread_rand() -> u64 {
    fenced(|| {
        let mut x = RNG.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        RNG.set(x);
        x
    })
}
