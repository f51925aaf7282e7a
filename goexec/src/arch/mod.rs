//! The context switch: goexec's only assembly.
//!
//! Every target file exports the same items:
//!
//! - `resume(sp, link, arg) -> (arg', sp')` runs the suspended context whose stack pointer is
//!   `sp`: it `call`s that context's resume address, storing the running context's stack
//!   pointer in `*link` (the *parent link*) on the way in, and returns when the context next
//!   suspends, with the value it handed over and its new stack pointer.
//! - `suspend(link, arg) -> arg'` saves the running context on its own stack and `ret`urns into
//!   the parent recorded in `*link`, handing over `arg`; it returns when someone resumes this
//!   context again, with the value they handed over.
//! - `transfer(link, save, to, to_link)` saves the running context and continues another
//!   suspended one under the same parent, without a round trip through the parent (a direct
//!   goroutine-to-goroutine switch, where Go crosses g0 twice on every switch).
//! - `goexec_trampoline`, the resume address [`init_stack`] gives a fresh stack: the first
//!   `resume` (or transfer) of such a stack calls its entry function there.
//!
//! # Why resume is a call and suspend a return
//!
//! The CPU predicts `ret` from a return-stack buffer filled by `call`. `resume` enters the
//! coroutine with a `call`, and `suspend` leaves it with the `ret` that matches it, so both
//! directions are predicted; the one indirect branch, resume's `call`, is predicted by the
//! branch target buffer. A symmetric `switch(from, to)` (one function that both saves and
//! restores) pairs every `call` with a `ret` to a different place and mispredicts twice per
//! round trip: measured here at 19–21 ns per round trip, against the figure in BENCHMARKS.md.
//!
//! Both are inline asm. The compiler saves around them exactly the callee-saved registers that
//! are live there (declared clobbered); the asm itself saves only those the compiler may not
//! name (x86_64: rbx, rbp; aarch64: x19, x29, and x30 as the return address). MXCSR and FPCR
//! are not saved: Rust code never changes them, so every context holds the same values. x18
//! (the aarch64 platform register) is never touched.
//!
//! # The parent link
//!
//! A context may be resumed by a different parent each time (in the scheduler, a goroutine is
//! resumed by whichever M's g0 picked it up), so the parent's stack pointer is stored afresh on
//! every resume, into the `link` slot the resumer names, and `suspend` reads it from there.
//!
//! Panics never cross a switch: the entry function is `extern "C"` and must catch every unwind
//! itself (`runtime::switch` does so with `catch_unwind`).
//!
//! Other targets fail to build here with a clear message rather than at run time.
#![allow(unsafe_code)] // the context switch is assembly; see each target file's SAFETY notes.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use x86_64::{call_on_stack, resume, suspend, transfer};

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub(crate) use aarch64::{call_on_stack, resume, suspend, transfer};

#[cfg(not(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_os = "linux"
)))]
compile_error!(
    "goexec supports Linux on x86_64 and aarch64 only: its context switch (goexec/src/arch) \
     has no implementation for this target"
);

/// The function a fresh stack starts in. It receives the `arg` of the first [`resume`] and must
/// never return: it ends by suspending for the last time.
pub(crate) type EntryFn = unsafe extern "C" fn(arg: usize) -> !;

/// Stack pointers at a call (x86_64) or at all times (aarch64) are multiples of this.
const STACK_ALIGN: usize = 16;

extern "C" {
    /// Defined per target; never called from Rust, only by `resume`'s `call` on a fresh stack
    /// (its address is also published for debuggers: `runtime/debug.rs`).
    pub(crate) fn goexec_trampoline();
}

extern "C" {
    /// Defined per target: calls `f(arg)` below a frame whose unwind information continues
    /// into the suspended context saved at `sp`.
    fn goexec_unwind_pivot(sp: *mut u8, f: unsafe extern "C" fn(*mut u8), arg: *mut u8);
    /// The return address inside `goexec_unwind_pivot`: a walk that reaches it leaves the
    /// running stack for the suspended context's.
    static goexec_unwind_pivot_ret: u8;
}

/// The return address at which a backtrace taken inside [`with_frames_of`] leaves the running
/// stack and continues into the suspended context's frames.
fn unwind_pivot_return() -> usize {
    // Only the symbol's address is taken (a code label, never read).
    core::ptr::addr_of!(goexec_unwind_pivot_ret) as usize
}

/// Runs `f` on the running stack in such a way that a backtrace taken inside it (a DWARF
/// unwinder's: `_Unwind_Backtrace`, a debugger's) continues, past the frame at
/// [`unwind_pivot_return`], into the frames of the context suspended at `sp`, up to that
/// context's root (the trampoline, whose CFI ends every walk). The suspended context is only
/// read, by the unwinder. `f` must not unwind: a panic in it aborts the process.
///
/// # Safety
///
/// `sp` is a suspended context's saved stack pointer (from `suspend` or `transfer`; not a
/// fresh stack's from `init_stack`), and that context stays suspended, its stack mapped and
/// its frames unchanged, until this returns.
unsafe fn with_frames_of(sp: *mut u8, f: &mut dyn FnMut()) {
    unsafe extern "C" fn call(arg: *mut u8) {
        // SAFETY: `arg` is the `&mut &mut dyn FnMut()` below, alive for the whole call.
        let f = unsafe { &mut *arg.cast::<&mut dyn FnMut()>() };
        f();
    }
    let mut f = f;
    // SAFETY: the caller's contract for `sp`; `call` is given a pointer to `f`, which outlives
    // the call. A panic in `f` cannot unwind through the asm: `call` is `extern "C"`.
    unsafe { goexec_unwind_pivot(sp, call, (&mut f as *mut &mut dyn FnMut()).cast()) };
}

/// The return addresses of the frames of the context suspended at `sp`, innermost first, at
/// most `max` (a walk that returns `max` of them was cut short): a DWARF backtrace taken
/// through [`with_frames_of`], from the frame past the pivot to the context's root.
///
/// # Safety
///
/// As for [`with_frames_of`].
pub(crate) unsafe fn suspended_return_addresses(sp: *mut u8, max: usize) -> Vec<usize> {
    let pivot = unwind_pivot_return();
    // Allocated before the walk: nothing in it may panic (see with_frames_of).
    let mut ips = Vec::with_capacity(max);
    let mut past = false;
    let mut walk = || {
        backtrace::trace(|f| {
            let ip = f.ip() as usize;
            if ip == 0 {
                // Past the root's trampoline, whose return address is undefined.
                return false;
            }
            if past {
                ips.push(ip);
            } else {
                past = ip == pivot;
            }
            ips.len() < max
        })
    };
    // SAFETY: the caller's contract, passed on.
    unsafe { with_frames_of(sp, &mut walk) };
    ips
}

/// Whether `sp` is a fresh stack's, from [`init_stack`], never resumed: it has no frames.
///
/// # Safety
///
/// `sp` is a suspended or fresh context's saved stack pointer, its stack mapped.
pub(crate) unsafe fn is_fresh(sp: *mut u8) -> bool {
    // SAFETY: the caller's contract: [sp] is the context's resume address.
    unsafe { sp.cast::<usize>().read() == goexec_trampoline as *const () as usize }
}

/// Prepares a fresh stack so that the first [`resume`] of the returned stack pointer calls
/// `entry(arg)` on it. The layout, the same on both targets:
///
/// ```text
///   +-------------------+ <- top (rounded down to 16)
///   | entry             |    read by the trampoline
///   | goexec_trampoline |    the "resume address" that resume's call jumps to
///   +-------------------+ <- returned stack pointer (top - 16)
/// ```
///
/// # Safety
///
/// `top` is the upper end of a writable stack with room for the entry function's frames below
/// it, and nothing else uses that stack.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: EntryFn) -> *mut u8 {
    let top = (top as usize) & !(STACK_ALIGN - 1);
    let sp = (top - 2 * core::mem::size_of::<usize>()) as *mut usize;
    let words = [
        goexec_trampoline as *const () as usize,
        entry as *const () as usize,
    ];
    // SAFETY: the caller guarantees the 16 bytes below `top` are ours and writable; `sp` is
    // 16-aligned because `top` is.
    unsafe { sp.cast::<[usize; 2]>().write(words) };
    sp.cast()
}

/// Times `iters` bare resume/suspend round trips (a value each way) on a fresh heap stack, for
/// the benches package's `switch` row; see `goexec::bench_support`.
#[cfg(feature = "bench-internals")]
pub(crate) fn raw_round_trips(iters: u64) -> std::time::Duration {
    /// The coroutine side: hands back every value plus one, forever.
    unsafe extern "C" fn echo_entry(arg: usize) -> ! {
        let link = arg as *mut *mut u8;
        // SAFETY: running on the fresh stack, resumed through `link` by raw_round_trips.
        let mut v = unsafe { suspend(link, 0) };
        loop {
            // SAFETY: as above.
            v = unsafe { suspend(link, v + 1) };
        }
    }
    let mut stack = vec![0u128; 4096].into_boxed_slice(); // 64 KiB, 16-aligned
    let mut link: *mut u8 = core::ptr::null_mut();
    let link_ptr: *mut *mut u8 = &mut link;
    let top = stack.as_mut_ptr_range().end.cast::<u8>();
    // SAFETY: the stack is ours, unused, and outlives every switch below (the coroutine is
    // abandoned suspended; it owns nothing that needs dropping).
    let sp = unsafe { init_stack(top, echo_entry) };
    // SAFETY: as above; `link` outlives the switches too.
    let (_, mut sp) = unsafe { resume(sp, link_ptr, link_ptr as usize) };
    let start = std::time::Instant::now();
    let mut acc = 0usize;
    for i in 0..iters as usize {
        // SAFETY: as above: `sp` is where the coroutine last suspended.
        let (v, next) = unsafe { resume(sp, link_ptr, core::hint::black_box(i)) };
        sp = next;
        acc = acc.wrapping_add(v);
    }
    let elapsed = start.elapsed();
    core::hint::black_box(acc);
    elapsed
}

#[cfg(test)]
mod tests;
