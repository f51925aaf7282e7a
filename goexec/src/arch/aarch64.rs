//! Context switch for aarch64, AAPCS64 (Linux). See `arch/mod.rs` for the operations and why
//! resume is a call (`blr`) and suspend a return (`ret`).
//!
//! ```text
//!   suspended coroutine stack               parent stack while the coroutine runs
//!
//!   |  coroutine frames  |                  |  parent frames      |
//!   +--------------------+                  +---------------------+
//!   | x29   | x19        |                  | x29     | x19       |  saved by resume
//!   | resume address | - | <- saved sp      | x30: return | -     | <- *link
//!   +--------------------+                  +---------------------+
//!   (16-byte slots keep sp                  (x30 as left by resume's blr, saved by the
//!    16-aligned at all times)                resume point so suspend can `ret` to it)
//! ```
//!
//! Register contract shared by the three pieces below:
//! - x0: the value handed over, in both directions (the first argument register).
//! - x1: going in to resume, the address of the parent-link slot; coming out of resume, the
//!   coroutine's new saved stack pointer.
//! - x2: going in to resume, the coroutine's saved stack pointer; in suspend, the address of
//!   the parent-link slot.
//! - x3: scratch.

use core::arch::{asm, global_asm};

/// The asm text of resume; a macro so that the register tests run exactly these instructions.
macro_rules! resume_asm {
    () => {
        concat!(
            // x19 and x29 cannot be declared clobbered (LLVM reserves them), so save them here.
            "stp x29, x19, [sp, #-16]!\n",
            // Branch-and-link to the coroutine's resume address, at the top of its saved stack.
            // The link (x30) is what the coroutine's suspend will `ret` to.
            "ldr x3, [x2]\n",
            "blr x3\n",
            // Back: x0 holds the value handed over, x1 the coroutine's new stack pointer.
            "ldp x29, x19, [sp], #16\n",
        )
    };
}

/// The asm text of suspend and of the resume point that follows it.
macro_rules! suspend_asm {
    () => {
        concat!(
            // Save x19 and x29, then our resume address (label 2 below), on our own stack.
            "stp x29, x19, [sp, #-16]!\n",
            "adr x3, 2f\n",
            "str x3, [sp, #-16]!\n",
            // Hand our stack pointer to the resumer (its x1 output); fetch the parent's stack
            // and the return address its resume point saved there; pop it and return into
            // resume. The return predictor expects exactly this address.
            "mov x1, sp\n",
            "ldr x3, [x2]\n",
            "ldr x30, [x3]\n",
            "add sp, x3, #16\n",
            "ret\n",
            // Resumed: a resume branched here with sp on its stack, x30 = the return into it,
            // x1 = the parent-link slot, x2 = our saved stack pointer, x0 = the value.
            "2:\n",
            // Keep the return address on the parent's stack and record the parent.
            "str x30, [sp, #-16]!\n",
            "mov x3, sp\n",
            "str x3, [x1]\n",
            // Back to our own stack, past the resume-address slot.
            "add sp, x2, #16\n",
            "ldp x29, x19, [sp], #16\n",
        )
    };
}
#[cfg(test)] // the register tests run exactly this text
pub(super) use {resume_asm, suspend_asm};

// goexec_trampoline: the resume address of a fresh stack, reached by resume's `blr`.
//
// Register contract at entry: sp = the parent's stack; x30 = the return into resume; x1 = the
// parent-link slot; x2 = the fresh stack pointer (top - 16: [x2] is this trampoline, [x2 + 8]
// the entry function); x0 = the value handed over, already the first argument.
//
// `.cfi_undefined x30` says this frame has no caller, so DWARF unwinders stop here; x29 = 0
// ends frame-pointer walks. The entry function is entered by `br` with a fake link (label 2,
// inside this function so the unwinder finds this CFI), not `blr`: a `blr` would push a
// return-predictor entry that the coroutine's first suspend `ret` does not pop.
global_asm!(
    ".text",
    ".balign 16",
    ".globl goexec_trampoline",
    ".hidden goexec_trampoline",
    ".type goexec_trampoline, %function",
    "goexec_trampoline:",
    ".cfi_startproc",
    ".cfi_undefined x30",
    // Record the parent, as every resume point does.
    "str x30, [sp, #-16]!",
    "mov x3, sp",
    "str x3, [x1]",
    // Onto the fresh stack: sp = top, 16-aligned.
    "ldr x3, [x2, #8]",
    "add sp, x2, #16",
    "mov x29, #0",
    "adr x30, 2f",
    // entry(x0); it never returns.
    "br x3",
    "2:",
    "brk #0x1",
    ".cfi_endproc",
    ".size goexec_trampoline, . - goexec_trampoline",
);

/// Runs the context suspended at `sp` until it suspends again; stores our stack pointer in
/// `*link` on the way in. Returns the value it hands over and its new stack pointer.
///
/// # Safety
///
/// - `sp` was returned by `init_stack` or by the previous `resume` of the same context, which
///   has not been resumed since, and its stack is still allocated.
/// - `link` is the parent-link slot that context's `suspend` reads, valid for writes.
#[inline(always)] // the call/ret pairing relies on no extra frame around the asm
pub(crate) unsafe fn resume(sp: *mut u8, link: *mut *mut u8, arg: usize) -> (usize, *mut u8) {
    let (out, new_sp): (usize, *mut u8);
    // SAFETY: the caller guarantees `sp` is a suspended context (so [sp] is its resume address)
    // and `link` is writable. Every register the other side may change is an output or
    // clobbered: x0–x3 are operands, x20–x28 are declared, the rest is clobber_abi, which
    // includes x30 and all of v0–v31 (only the low halves of v8–v15 are callee-saved, and asm
    // cannot clobber half a register, so the compiler saves d8–d15 where they are live);
    // x19/x29 are saved by the asm itself. The other side returns to us with sp
    // where we left it.
    unsafe {
        asm!(
            resume_asm!(),
            inlateout("x0") arg => out,
            inlateout("x1") link => new_sp,
            inlateout("x2") sp => _,
            lateout("x3") _,
            lateout("x20") _, lateout("x21") _, lateout("x22") _, lateout("x23") _,
            lateout("x24") _, lateout("x25") _, lateout("x26") _, lateout("x27") _,
            lateout("x28") _,
            clobber_abi("C"),
        );
    }
    (out, new_sp)
}

/// Saves the running context (its stack pointer into `*save`) and continues the suspended
/// context `to` under the same parent, without returning to the parent first: a direct
/// goroutine-to-goroutine switch. See the x86_64 version for the contract.
///
/// # Safety
///
/// As for the x86_64 version.
#[inline(always)] // the call/ret pairing relies on no extra frame around the asm
pub(crate) unsafe fn transfer(
    link: *mut *mut u8,
    save: *mut *mut u8,
    to: *mut u8,
    to_link: *mut *mut u8,
) -> usize {
    let out: usize;
    // SAFETY: as for x86_64. The parent's stack holds, at *link, the return address into its
    // resume (saved there by our resume point); we reload it into x30 and pop it, leaving the
    // parent's stack as right after its blr, which is what `to`'s resume point expects.
    unsafe {
        asm!(
            "stp x29, x19, [sp, #-16]!",
            "adr x3, 2f",
            "str x3, [sp, #-16]!",
            "mov x9, sp",
            "str x9, [x4]",
            "ldr x9, [x5]",
            "ldr x30, [x9]",
            "add sp, x9, #16",
            "mov x0, #0",
            "ldr x3, [x2]",
            "br x3",
            "2:",
            "str x30, [sp, #-16]!",
            "mov x3, sp",
            "str x3, [x1]",
            "add sp, x2, #16",
            "ldp x29, x19, [sp], #16",
            lateout("x0") out,
            inlateout("x1") to_link => _,
            inlateout("x2") to => _,
            lateout("x3") _,
            inlateout("x4") save => _,
            inlateout("x5") link => _,
            lateout("x9") _,
            lateout("x20") _, lateout("x21") _, lateout("x22") _, lateout("x23") _,
            lateout("x24") _, lateout("x25") _, lateout("x26") _, lateout("x27") _,
            lateout("x28") _,
            clobber_abi("C"),
        );
    }
    out
}

/// Saves the running context and returns into the parent recorded in `*link`, which receives
/// `arg`. Returns the value handed over by whoever resumes this context next.
///
/// # Safety
///
/// The running context was entered by [`resume`] (or the trampoline) with `link` as its
/// parent-link slot, and that parent is still suspended inside `resume`.
#[inline(always)] // the call/ret pairing relies on no extra frame around the asm
pub(crate) unsafe fn suspend(link: *mut *mut u8, arg: usize) -> usize {
    let out: usize;
    // SAFETY: the caller guarantees *link is the stack pointer of a parent suspended in
    // resume's blr, with its return address saved at [*link], so the `ret` lands after that
    // blr with the register state resume expects. On our way back in, all registers we may
    // find changed are outputs or clobbered, and x19/x29 are restored by the asm itself.
    unsafe {
        asm!(
            suspend_asm!(),
            inlateout("x0") arg => out,
            lateout("x1") _,
            inlateout("x2") link => _,
            lateout("x3") _,
            lateout("x20") _, lateout("x21") _, lateout("x22") _, lateout("x23") _,
            lateout("x24") _, lateout("x25") _, lateout("x26") _, lateout("x27") _,
            lateout("x28") _,
            clobber_abi("C"),
        );
    }
    out
}

/// Calls `f(arg)` with the stack pointer at `sp` and returns with ours restored: a plain call
/// on another stack, no context saved (Go: `systemstack`). `f` runs to completion there.
///
/// # Safety
///
/// As for the x86_64 version.
#[inline(always)]
pub(crate) unsafe fn call_on_stack(arg: *mut u8, sp: *mut u8, f: unsafe extern "C" fn(*mut u8)) {
    // SAFETY: the caller's contract. x20 is callee-saved, so it holds our stack pointer across
    // the call; it is declared an output, so the compiler keeps nothing of its own there and
    // gives it to no input. sp is 16-aligned, as AArch64 requires at all times. The link
    // register the blr sets is clobbered under clobber_abi("C").
    unsafe {
        asm!(
            "mov x20, sp",
            "mov sp, {sp}",
            "blr {f}",
            "mov sp, x20",
            sp = in(reg) sp,
            f = in(reg) f,
            in("x0") arg,
            out("x20") _,
            clobber_abi("C"),
        );
    }
}

// goexec_unwind_pivot(sp = x0, f = x1, arg = x2): calls `f(arg)` on the running stack with a
// frame whose unwind information says its caller is the suspended context saved at `sp`, so
// that a backtrace taken inside `f` walks on into that context's frames (tracebacks of parked
// goroutines, runtime/traceback.rs). Nothing of the suspended context is run or written.
//
// A suspended context's saved stack holds its resume address at [sp], x29 at [sp + 16] and
// x19 at [sp + 24], and its stack pointer before the switch is sp + 32: exactly a caller's
// frame with CFA = sp + 32. x19 holds `sp` across the call (callee-saved, so the unwinder
// recovers it through f's frames), and the CFI below is written in terms of it.
// `goexec_unwind_pivot_ret` labels the return address, where a walk leaves the running stack.
global_asm!(
    ".text",
    ".balign 16",
    ".globl goexec_unwind_pivot",
    ".hidden goexec_unwind_pivot",
    ".globl goexec_unwind_pivot_ret",
    ".hidden goexec_unwind_pivot_ret",
    ".type goexec_unwind_pivot, %function",
    "goexec_unwind_pivot:",
    ".cfi_startproc",
    "stp x29, x30, [sp, #-32]!",
    ".cfi_def_cfa_offset 32",
    ".cfi_offset x29, -32",
    ".cfi_offset x30, -24",
    "str x19, [sp, #16]",
    ".cfi_offset x19, -16",
    "mov x19, x0",
    // From here the caller is the suspended context: CFA = x19 + 32, return address (x30)
    // at CFA - 32, x29 at CFA - 16, x19 at CFA - 8.
    ".cfi_def_cfa x19, 32",
    ".cfi_offset x30, -32",
    ".cfi_offset x29, -16",
    ".cfi_offset x19, -8",
    "mov x0, x2",
    "blr x1",
    "goexec_unwind_pivot_ret:",
    "ldr x19, [sp, #16]",
    "ldp x29, x30, [sp], #32",
    "ret",
    ".cfi_endproc",
    ".size goexec_unwind_pivot, . - goexec_unwind_pivot",
);
