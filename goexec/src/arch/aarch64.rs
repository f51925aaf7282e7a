//! Context switch for aarch64, AAPCS64 (Linux).
//!
//! Operations: [`switch`] (save the running context, resume another) and [`init_stack`] (make a
//! fresh stack look like a suspended `switch`).
//!
//! A suspended context is its stack pointer; the callee-saved set sits in a 160-byte block at
//! that address:
//!
//! ```text
//!   suspended context                       fresh stack from init_stack
//!
//!   |  caller's frames  |                   +-------------------+ <- top (16-aligned)
//!   +-------------------+ <- sp before      | d8..d15 = 0       |    [sp+96 .. sp+160)
//!   | d14 d15           | [sp+144]          | x29 = 0, x30 =    |    [sp+80]: fp ends walks,
//!   | ...               |                   |   goexec_trampoline    lr is where `ret` goes
//!   | d8  d9            | [sp+96]           | x21..x28 = 0      |
//!   | x29 x30           | [sp+80]  x30 =    | x19 = entry,      |    [sp+0]: the trampoline
//!   | ...               |   resume address  |   x20 = 0         |    calls x19
//!   | x19 x20           | [sp+0] <- saved sp+-------------------+ <- sp returned (top - 160)
//!   +-------------------+
//! ```
//!
//! `switch` is entered by `bl` and leaves by `ret` to the other context's saved x30, so the
//! return predictor misses once per switch but stays balanced (every `bl` has its `ret`).
//! x18 is the platform register and is never touched. FPCR is not saved: Rust never changes it.

use core::arch::global_asm;

/// A stack pointer must be a multiple of this at all times (AAPCS64 §6.4.5.1).
pub(crate) const STACK_ALIGN: usize = 16;

/// Bytes of the saved-register block: x19–x30 (12 × 8) and d8–d15 (8 × 8).
const FRAME: usize = 160;

// goexec_switch(save: *mut *mut u8 [x0], to: *mut u8 [x1], arg: usize [x2]) -> usize [x0]
//
// Register contract:
// - entry: sp is 16-aligned (it always is on aarch64); x30 holds our resume address (set by
//   `bl`); x0 is where to store our stack pointer; x1 is the stack pointer of the context to
//   resume, pointing at its saved-register block; x2 is the value to hand over.
// - exit, in the resumed context: callee-saved registers as that context saved them, sp just
//   above its block, x0 = the handed-over value, execution at its saved x30.
global_asm!(
    ".text",
    ".balign 16",
    ".globl goexec_switch",
    ".hidden goexec_switch",
    ".type goexec_switch, %function",
    "goexec_switch:",
    ".cfi_startproc",
    // Save the callee-saved set of the running context on its own stack.
    "sub sp, sp, #160",
    ".cfi_adjust_cfa_offset 160",
    "stp x19, x20, [sp, #0]",
    "stp x21, x22, [sp, #16]",
    "stp x23, x24, [sp, #32]",
    "stp x25, x26, [sp, #48]",
    "stp x27, x28, [sp, #64]",
    "stp x29, x30, [sp, #80]",
    "stp d8, d9, [sp, #96]",
    "stp d10, d11, [sp, #112]",
    "stp d12, d13, [sp, #128]",
    "stp d14, d15, [sp, #144]",
    // Publish where they are, then adopt the other context's stack (sp cannot be stored or
    // loaded directly, hence x9, a caller-saved scratch register).
    "mov x9, sp",
    "str x9, [x0]",
    "mov sp, x1",
    // Restore the other context's registers, including x30, its resume address.
    "ldp x19, x20, [sp, #0]",
    "ldp x21, x22, [sp, #16]",
    "ldp x23, x24, [sp, #32]",
    "ldp x25, x26, [sp, #48]",
    "ldp x27, x28, [sp, #64]",
    "ldp x29, x30, [sp, #80]",
    "ldp d8, d9, [sp, #96]",
    "ldp d10, d11, [sp, #112]",
    "ldp d12, d13, [sp, #128]",
    "ldp d14, d15, [sp, #144]",
    "add sp, sp, #160",
    ".cfi_adjust_cfa_offset -160",
    // Hand over the value and return into the other context.
    "mov x0, x2",
    "ret",
    ".cfi_endproc",
    ".size goexec_switch, . - goexec_switch",
);

// goexec_trampoline: the first code a fresh stack runs, entered by the `ret` of goexec_switch.
//
// Register contract at entry: sp = top (16-aligned); x19 = the entry function (init_stack put
// it in the saved-x19 slot); x29 = 0; x0 = the handed-over value, already the first argument.
//
// `.cfi_undefined x30` says this frame has no caller, so DWARF unwinders stop here cleanly;
// x29 = 0 ends frame-pointer walks the same way.
global_asm!(
    ".text",
    ".balign 16",
    ".globl goexec_trampoline",
    ".hidden goexec_trampoline",
    ".type goexec_trampoline, %function",
    "goexec_trampoline:",
    ".cfi_startproc",
    ".cfi_undefined x30",
    "blr x19",
    // The entry function never returns (it is `-> !`); trap if it ever did.
    "brk #0x1",
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
    // SAFETY: goexec_switch preserves x19–x30, sp and d8–d15 exactly as the extern "C" ABI
    // promises our caller; the caller upholds the contract on `save` and `to` above.
    unsafe { goexec_switch(save, to, arg) }
}

/// Writes the saved-register block in the module diagram below `top` and returns the stack
/// pointer to pass to [`switch`], whose `arg` then becomes `entry`'s argument.
///
/// # Safety
///
/// `top` is the upper end of a writable stack with at least 160 bytes (plus alignment) below
/// it, and nothing else uses that stack.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: super::EntryFn) -> *mut u8 {
    let top = (top as usize) & !(STACK_ALIGN - 1);
    let mut block = [0usize; FRAME / 8];
    block[0] = entry as *const () as usize; // x19: called by the trampoline
    block[10] = 0; // x29: no previous frame
    block[11] = goexec_trampoline as *const () as usize; // x30: where the first switch's `ret` goes
    let sp = (top - FRAME) as *mut usize;
    // SAFETY: the caller guarantees the 160 bytes below `top` are ours and writable; `sp` is
    // 16-aligned because `top` is and FRAME is a multiple of 16.
    unsafe { sp.cast::<[usize; FRAME / 8]>().write(block) };
    sp.cast()
}
