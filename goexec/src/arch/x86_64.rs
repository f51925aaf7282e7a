//! Context switch for x86_64, System V ABI (Linux).
//!
//! Operations: [`switch`] (save the running context, resume another) and [`init_stack`] (make a
//! fresh stack look like a suspended `switch`).
//!
//! A suspended context is nothing but its stack pointer; everything else lives on its stack:
//!
//! ```text
//!   suspended context                      fresh stack from init_stack
//!   (inside its call to switch)
//!
//!   |  caller's frames  |                  +-------------------+ <- top (16-aligned)
//!   +-------------------+                  | 0                 |    never read: the pad that
//!   | return address    | <- resumes here  | 0                 |    16-aligns the trampoline
//!   +-------------------+                  +-------------------+
//!   | rbp               |                  | goexec_trampoline | <- "return address"
//!   | rbx               |                  | rbp = 0           |    ends frame-pointer walks
//!   | r12               |                  | rbx = entry       |    the trampoline calls it
//!   | r13               |                  | r12..r15 = 0      |
//!   | r14               |                  |                   |
//!   | r15               | <- saved sp      |                   | <- sp returned (top - 72)
//!   +-------------------+                  +-------------------+
//! ```
//!
//! A running context is just the CPU's registers; its stack holds its frames down to `rsp`.
//!
//! Return-address prediction: `switch` is entered by a `call` from one context and leaves by a
//! `ret` into another, so that `ret` is mispredicted once per switch. Keeping `ret` (rather than
//! `pop` + `jmp`) leaves the return-stack buffer balanced: every `call` has its `ret`, so
//! returns in the resumed context after the switch are predicted normally once the buffer
//! refills. BENCHMARKS.md has the measured cost of a round trip.

use core::arch::global_asm;

/// A stack pointer at a call site must be a multiple of this (SysV ABI §3.2.2).
pub(crate) const STACK_ALIGN: usize = 16;

// goexec_switch(save: *mut *mut u8 [rdi], to: *mut u8 [rsi], arg: usize [rdx]) -> usize [rax]
//
// Register contract:
// - entry: rsp points at our return address (it is 8 mod 16, as at any call); rdi is where to
//   store our stack pointer; rsi is the stack pointer of the context to resume, pointing at its
//   six saved registers (the layout above); rdx is the value to hand over.
// - exit, in the resumed context: callee-saved registers as that context saved them, rsp just
//   above its return address (as after any `ret`), rax = the handed-over value.
//
// The CFI lines describe the pushes so that a debugger can walk out of a context interrupted
// inside the switch; both stacks have the same shape, so one description serves for the whole
// function.
global_asm!(
    ".text",
    ".balign 16",
    ".globl goexec_switch",
    ".hidden goexec_switch",
    ".type goexec_switch, @function",
    "goexec_switch:",
    ".cfi_startproc",
    // Save the callee-saved registers of the running context on its own stack.
    "push rbp",
    ".cfi_adjust_cfa_offset 8",
    "push rbx",
    ".cfi_adjust_cfa_offset 8",
    "push r12",
    ".cfi_adjust_cfa_offset 8",
    "push r13",
    ".cfi_adjust_cfa_offset 8",
    "push r14",
    ".cfi_adjust_cfa_offset 8",
    "push r15",
    ".cfi_adjust_cfa_offset 8",
    // Publish where they are, then adopt the other context's stack.
    "mov [rdi], rsp",
    "mov rsp, rsi",
    // Restore its registers in the reverse order of the pushes above.
    "pop r15",
    ".cfi_adjust_cfa_offset -8",
    "pop r14",
    ".cfi_adjust_cfa_offset -8",
    "pop r13",
    ".cfi_adjust_cfa_offset -8",
    "pop r12",
    ".cfi_adjust_cfa_offset -8",
    "pop rbx",
    ".cfi_adjust_cfa_offset -8",
    "pop rbp",
    ".cfi_adjust_cfa_offset -8",
    // Hand over the value and return into the other context's call to switch (or, on a
    // fresh stack, into goexec_trampoline).
    "mov rax, rdx",
    "ret",
    ".cfi_endproc",
    ".size goexec_switch, . - goexec_switch",
);

// goexec_trampoline: the first code a fresh stack runs, entered by the `ret` of goexec_switch.
//
// Register contract at entry: rsp = top - 16 (16-aligned, so the `call` below leaves the entry
// function with rsp = 8 mod 16 as the ABI requires); rbx = the entry function (init_stack put it
// in the saved-rbx slot); rbp = 0; rax = the switch's handed-over value.
//
// `.cfi_undefined rip` says this frame has no caller, so DWARF unwinders (backtraces, panics
// walking the stack) stop here cleanly; rbp = 0 ends frame-pointer walks the same way.
global_asm!(
    ".text",
    ".balign 16",
    ".globl goexec_trampoline",
    ".hidden goexec_trampoline",
    ".type goexec_trampoline, @function",
    "goexec_trampoline:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    // The handed-over value becomes the entry function's first argument.
    "mov rdi, rax",
    "call rbx",
    // The entry function never returns (it is `-> !`); trap if it ever did.
    "ud2",
    ".cfi_endproc",
    ".size goexec_trampoline, . - goexec_trampoline",
);

extern "C" {
    fn goexec_switch(save: *mut *mut u8, to: *mut u8, arg: usize) -> usize;
    fn goexec_trampoline();
}

/// Saves the running context, storing its stack pointer in `*save`, and resumes the context
/// whose stack pointer is `to`, which receives `arg`. Returns the `arg` of whichever `switch`
/// later resumes this context.
///
/// # Safety
///
/// - `save` is valid for a pointer-sized write.
/// - `to` is a stack pointer produced by [`init_stack`] or stored by an earlier `switch`, not
///   resumed since, on a stack that is still allocated.
/// - Everything the running context holds stays valid until it is resumed: it is suspended
///   mid-call, not finished. Nothing may assume the resume happens on the same OS thread unless
///   the caller guarantees it (see the TLS rules in `runtime::tls`).
#[inline(always)] // one call into the asm, no wrapper frame on either stack
pub(crate) unsafe fn switch(save: *mut *mut u8, to: *mut u8, arg: usize) -> usize {
    // SAFETY: goexec_switch preserves the callee-saved set and rsp exactly as the extern "C"
    // ABI promises our caller; the caller upholds the contract on `save` and `to` above.
    unsafe { goexec_switch(save, to, arg) }
}

/// Writes the frame in the module diagram below `top` and returns the stack pointer to pass to
/// [`switch`], whose `arg` then becomes `entry`'s argument.
///
/// # Safety
///
/// `top` is the upper end of a writable stack with at least 72 bytes (plus alignment) below
/// it, and nothing else uses that stack.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: super::EntryFn) -> *mut u8 {
    let top = (top as usize) & !(STACK_ALIGN - 1);
    // r15 r14 r13 r12 rbx rbp ret pad pad, from the lowest address up (matches the pops).
    let frame: [usize; 9] = [
        0,
        0,
        0,
        0,
        entry as *const () as usize,
        0,
        goexec_trampoline as *const () as usize,
        0,
        0,
    ];
    let sp = (top - core::mem::size_of_val(&frame)) as *mut usize;
    // SAFETY: the caller guarantees the 72 bytes below `top` are ours and writable; `sp` is
    // 8-aligned because `top` is 16-aligned and the frame is 72 bytes.
    unsafe { sp.cast::<[usize; 9]>().write(frame) };
    sp.cast()
}
