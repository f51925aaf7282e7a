//! Context switch for x86_64, System V ABI (Linux). See `arch/mod.rs` for the operations and
//! why resume is a `call` and suspend a `ret`.
//!
//! ```text
//!   suspended coroutine stack               parent stack while the coroutine runs
//!
//!   |  coroutine frames  |                  |  parent frames      |
//!   +--------------------+                  +---------------------+
//!   | rbp                |                  | rbp                 |  pushed by resume
//!   | rbx                |                  | rbx                 |
//!   | resume address     | <- saved sp      | return into resume  | <- *link
//!   +--------------------+                  +---------------------+
//!   (the address is the                     (pushed by resume's call; suspend's
//!    label after suspend's ret)              ret pops it)
//! ```
//!
//! A fresh stack from `init_stack` holds `goexec_trampoline` as its resume address and the
//! entry function above it (see the diagram in `arch/mod.rs`).
//!
//! Register contract shared by the three pieces below:
//! - rdi: the value handed over, in both directions (it is the first argument register, so
//!   the trampoline passes it straight to the entry function).
//! - rsi: going in, the address of the parent-link slot; coming out of resume, the
//!   coroutine's new saved stack pointer.
//! - rdx: going in to resume, the coroutine's saved stack pointer; in suspend, the address of
//!   the parent-link slot.

use core::arch::{asm, global_asm};

/// The asm text of resume; a macro so that the register tests run exactly these instructions.
macro_rules! resume_asm {
    () => {
        concat!(
            // rbx and rbp cannot be declared clobbered (LLVM reserves them), so save them here.
            "push rbp\n",
            "push rbx\n",
            // Call the coroutine's resume address, at the top of its saved stack. The return
            // address pushed here is what the coroutine's suspend will `ret` to.
            "call qword ptr [rdx]\n",
            // Back: rdi holds the value handed over, rsi the coroutine's new stack pointer.
            "pop rbx\n",
            "pop rbp\n",
        )
    };
}

/// The asm text of suspend and of the resume point that follows it.
macro_rules! suspend_asm {
    () => {
        concat!(
            // Save rbx and rbp, then our resume address (label 2 below), on our own stack.
            "push rbp\n",
            "push rbx\n",
            "lea rax, [rip + 2f]\n",
            "push rax\n",
            // Hand our stack pointer to the resumer (its rsi output) and adopt the parent's
            // stack, whose top is the return address pushed by resume's call.
            "mov rsi, rsp\n",
            "mov rsp, [rdx]\n",
            // Return into resume: the return-stack buffer predicts this.
            "ret\n",
            // Resumed: a resume called us here with rsp on its stack (at its return address),
            // rsi = the parent-link slot, rdx = our saved stack pointer, rdi = the value.
            "2:\n",
            // Record the new parent, then come back to our own stack past the resume address.
            "mov [rsi], rsp\n",
            "lea rsp, [rdx + 8]\n",
            "pop rbx\n",
            "pop rbp\n",
        )
    };
}
#[cfg(test)] // the register tests run exactly this text
pub(super) use {resume_asm, suspend_asm};

// goexec_trampoline: the resume address of a fresh stack, reached by resume's `call`.
//
// Register contract at entry: rsp = the parent's stack, at the return address into resume;
// rsi = the parent-link slot; rdx = the fresh stack pointer (top - 16: [rdx] is this
// trampoline, [rdx + 8] the entry function); rdi = the value handed over.
//
// `.cfi_undefined rip` says this frame has no caller, so DWARF unwinders (backtraces) stop
// here; rbp = 0 ends frame-pointer walks the same way. The entry function is entered by `jmp`
// with a fake return address (label 2, inside this function so the unwinder finds this CFI),
// not by `call`: a `call` would push a return-stack entry that the coroutine's first suspend
// `ret` does not pop, mispredicting it.
global_asm!(
    ".text",
    ".balign 16",
    ".globl goexec_trampoline",
    ".hidden goexec_trampoline",
    ".type goexec_trampoline, @function",
    "goexec_trampoline:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    // Record the parent, as every resume point does.
    "mov [rsi], rsp",
    // Onto the fresh stack: rsp = top (16-aligned), then the fake return address makes it
    // 8 mod 16, as at any function entry.
    "mov rcx, [rdx + 8]",
    "lea rsp, [rdx + 16]",
    "xor ebp, ebp",
    "lea rax, [rip + 2f]",
    "push rax",
    // entry(rdi); it never returns.
    "jmp rcx",
    "2:",
    "ud2",
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
    // clobbered: rdi/rsi/rdx are operands, r12–r15 are declared, the rest is clobber_abi;
    // rbx/rbp are saved by the asm itself. The other side returns to us with rsp where our
    // call left it.
    unsafe {
        asm!(
            resume_asm!(),
            inlateout("rdi") arg => out,
            inlateout("rsi") link => new_sp,
            inlateout("rdx") sp => _,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    (out, new_sp)
}

/// Saves the running context (its stack pointer into `*save`) and continues the suspended
/// context `to` under the same parent, without returning to the parent first: a direct
/// goroutine-to-goroutine switch. `to`'s resume point records the parent (still `*link`) in
/// `*to_link`, so when `to` later suspends, it returns into the parent's pending `resume`,
/// whose return address is still the one the return predictor expects. Returns the value handed
/// over by whoever resumes this context next.
///
/// # Safety
///
/// - As for [`suspend`]: the running context was entered by [`resume`] (or a transfer) with
///   `link` as its parent link, and that parent is still suspended inside `resume`.
/// - `to` is a suspended context's saved stack pointer (from `init_stack`, `suspend` or
///   `transfer`), not resumed since; `to_link` is its parent-link slot.
/// - Whoever now owns `to` knows the parent's `resume` will return `to`'s (or a later
///   context's) stack pointer, not ours: ours is in `*save`.
#[inline(always)] // the call/ret pairing relies on no extra frame around the asm
pub(crate) unsafe fn transfer(
    link: *mut *mut u8,
    save: *mut *mut u8,
    to: *mut u8,
    to_link: *mut *mut u8,
) -> usize {
    let out: usize;
    // SAFETY: the caller's contract above. On the way out we store our stack pointer, adopt the
    // parent's stack exactly as suspend would (rsp at the return address into resume) and
    // enter `to`'s resume point with the register contract every resume point expects (rsi =
    // its link slot, rdx = its stack pointer, rdi = the value: 0). On the way back in we are a
    // resume point ourselves (label 2 of suspend_asm, shared text).
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [rcx], rsp",
            "mov rsp, [r8]",
            "xor edi, edi",
            "jmp qword ptr [rdx]",
            "2:",
            "mov [rsi], rsp",
            "lea rsp, [rdx + 8]",
            "pop rbx",
            "pop rbp",
            lateout("rdi") out,
            inlateout("rsi") to_link => _,
            inlateout("rdx") to => _,
            inlateout("rcx") save => _,
            inlateout("r8") link => _,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
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
    // resume's call, so the `ret` lands after that call with the register state resume
    // expects. On our way back in, resume has saved its own state; all registers we may find
    // changed are outputs or clobbered, and rbx/rbp are restored by the asm itself.
    unsafe {
        asm!(
            suspend_asm!(),
            inlateout("rdi") arg => out,
            inlateout("rdx") link => _,
            lateout("rsi") _,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
    out
}

/// Calls `f(arg)` with the stack pointer at `sp` and returns with ours restored: a plain call
/// on another stack, no context saved (Go: `systemstack`). `f` runs to completion there.
///
/// # Safety
///
/// - `sp` is 16-aligned, with room below it for `f`'s frames, in memory nothing else uses
///   until `f` returns.
/// - `f` returns normally: it must not unwind (an `extern "C"` function aborts instead) nor
///   switch contexts.
#[inline(always)]
pub(crate) unsafe fn call_on_stack(arg: *mut u8, sp: *mut u8, f: unsafe extern "C" fn(*mut u8)) {
    // SAFETY: the caller's contract. r12 is callee-saved, so it holds our stack pointer across
    // the call; it is declared an output, so the compiler keeps nothing of its own there, and
    // `sp` and `f` (inputs) are never given r12. At the `call`, rsp = sp is 16-aligned, as
    // the ABI requires before a call.
    unsafe {
        asm!(
            "mov r12, rsp",
            "mov rsp, {sp}",
            "call {f}",
            "mov rsp, r12",
            sp = in(reg) sp,
            f = in(reg) f,
            in("rdi") arg,
            out("r12") _,
            clobber_abi("sysv64"),
        );
    }
}

// goexec_unwind_pivot(sp = rdi, f = rsi, arg = rdx): calls `f(arg)` on the running stack with
// a frame whose unwind information says its caller is the suspended context saved at `sp`, so
// that a backtrace taken inside `f` walks on into that context's frames (tracebacks of parked
// goroutines, runtime/traceback.rs). Nothing of the suspended context is run or written.
//
// A suspended context's saved stack holds (see the diagram above) its resume address at
// [sp], rbx at [sp + 8] and rbp at [sp + 16], and its stack pointer before the switch is
// sp + 24: exactly a caller's frame with CFA = sp + 24. rbx holds `sp` across the call (it is
// callee-saved, so the unwinder recovers it through f's frames), and the CFI below is written
// in terms of it. `goexec_unwind_pivot_ret` labels the return address, where a walk leaves
// the running stack.
global_asm!(
    ".text",
    ".balign 16",
    ".globl goexec_unwind_pivot",
    ".hidden goexec_unwind_pivot",
    ".globl goexec_unwind_pivot_ret",
    ".hidden goexec_unwind_pivot_ret",
    ".type goexec_unwind_pivot, @function",
    "goexec_unwind_pivot:",
    ".cfi_startproc",
    "push rbx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset rbx, -16",
    "mov rbx, rdi",
    // From here the caller is the suspended context: CFA = rbx + 24, return address at
    // CFA - 24, rbx at CFA - 16, rbp at CFA - 8 (DWARF registers 16, 3, 6).
    ".cfi_def_cfa rbx, 24",
    ".cfi_offset 16, -24",
    ".cfi_offset 3, -16",
    ".cfi_offset 6, -8",
    // rsp is 16-aligned here (8 at entry, plus the push), as a call needs.
    "mov rdi, rdx",
    "call rsi",
    "goexec_unwind_pivot_ret:",
    "pop rbx",
    "ret",
    ".cfi_endproc",
    ".size goexec_unwind_pivot, . - goexec_unwind_pivot",
);
