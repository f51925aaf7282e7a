//! The context switch: goexec's only assembly.
//!
//! Every target file exports the same items:
//!
//! - [`switch`]`(save, to, arg) -> usize` saves the callee-saved registers of the running context
//!   on its own stack, stores the resulting stack pointer in `*save`, loads `to` and restores the
//!   registers saved there, and returns `arg` in the context it switched to (from that context's
//!   own earlier call to `switch`, or as the entry argument of a fresh stack).
//! - [`init_stack`]`(top, entry)` writes a frame below `top` that looks like a suspended
//!   `switch`, so that the first `switch` to the returned stack pointer calls
//!   `entry(arg)` on that stack.
//! - `STACK_ALIGN`, the alignment the ABI requires of a stack pointer at a call.
//!
//! Only the callee-saved set is saved (x86_64 SysV: rbx rbp r12–r15 and rsp; aarch64: x19–x30,
//! sp and d8–d15). The caller of `switch` already treats everything else as clobbered, because
//! `switch` is an ordinary `extern "C"` call to the compiler. MXCSR and FPCR are not saved: Rust
//! code never changes them, so every context holds the same values. x18 (the aarch64 platform
//! register) is never touched.
//!
//! Panics never cross a switch: the `entry` given to [`init_stack`] is `extern "C"` and must
//! catch every unwind itself (`runtime::switch` does so with `catch_unwind`); an unwind that
//! escaped anyway would hit the `extern "C"` boundary and abort rather than run off the stack.
//!
//! Other targets fail to build here with a clear message rather than at run time.
#![allow(unsafe_code)] // the context switch is assembly; see each target file's SAFETY notes.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use x86_64::{init_stack, switch};

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub(crate) use aarch64::{init_stack, switch};

#[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), target_os = "linux")))]
compile_error!(
    "goexec supports Linux on x86_64 and aarch64 only: its context switch (goexec/src/arch) \
     has no implementation for this target"
);

/// The function a fresh stack starts in. It receives the `arg` of the first [`switch`] to the
/// stack and must never return: it ends by switching away for the last time.
pub(crate) type EntryFn = unsafe extern "C" fn(arg: usize) -> !;

#[cfg(test)]
mod tests;
