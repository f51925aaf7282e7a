//! Tests of the bare switch, on stacks that are plain heap buffers (no guard, no pool), so that
//! a failure here points at the assembly and nothing else.
//!
//! The register test: an asm harness fills *every* callee-saved register (x86_64 rbx rbp
//! r12–r15; aarch64 x19–x29 and d8–d15) with patterns and calls an ordinary `extern "C"` Rust
//! function that does one real `resume` into a context that fills all of them with garbage
//! before it suspends. The Rust function owes its caller those registers by the ABI: the asm
//! itself saves the ones the compiler may not name, and the compiler saves the rest only if
//! `resume` declares them clobbered. So the harness's check fails when a clobber declaration is
//! missing, in debug and release builds alike.
//!
//! The compiler may save a register for reasons of its own and so hide a missing save in the
//! asm text (seen: with rbx's push removed, this test still passed); a second test runs exactly
//! `resume_asm!` from an asm caller that keeps patterns in the registers that text must preserve
//! itself (x86_64 rbx/rbp, aarch64 x19/x29).
// Tests poke raw memory in short runs of operations on one buffer, each run under one
// SAFETY comment; the one-operation rule is for the runtime's own code.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use super::{init_stack, resume, suspend};
use core::arch::global_asm;
use core::ptr;

#[cfg(target_arch = "x86_64")]
use super::x86_64::{resume_asm, suspend_asm};

#[cfg(target_arch = "aarch64")]
use super::aarch64::{resume_asm, suspend_asm};

/// A 64 KiB, 16-aligned stack on the heap; enough for the test entry functions.
struct TestStack(Box<[u128; 4096]>);

impl TestStack {
    fn new() -> Self {
        TestStack(Box::new([0; 4096]))
    }
    fn top(&mut self) -> *mut u8 {
        // SAFETY: one past the end of the buffer is a valid pointer to compute.
        unsafe { self.0.as_mut_ptr().add(self.0.len()).cast() }
    }
}

/// The parent-link slot and the coroutine's saved stack pointer, shared by both sides.
#[derive(Clone, Copy)]
struct Ctx {
    link: *mut u8,
    sp: *mut u8,
}

impl Ctx {
    /// A context on `stack` that starts in `entry`; its first resume hands over the Ctx.
    fn new(stack: &mut TestStack, entry: super::EntryFn) -> Box<Ctx> {
        // SAFETY: the stack is ours and unused; entry functions here never return.
        let sp = unsafe { init_stack(stack.top(), entry) };
        Box::new(Ctx {
            link: ptr::null_mut(),
            sp,
        })
    }

    /// Resumes the context with `arg`; returns what it hands back.
    fn resume(&mut self, arg: usize) -> usize {
        // SAFETY: `sp` came from init_stack or the previous resume; the stack outlives the
        // test, and the link slot is ours.
        let (out, sp) = unsafe { resume(self.sp, ptr::addr_of_mut!(self.link), arg) };
        self.sp = sp;
        out
    }
}

/// Suspends the running test context, whose Ctx is `ctx`.
///
/// # Safety
///
/// Called on the context's own stack, resumed through `ctx`.
unsafe fn suspend_to(ctx: *mut Ctx, value: usize) -> usize {
    // SAFETY: guaranteed by the caller; the parent is suspended in Ctx::resume.
    unsafe { suspend(ptr::addr_of_mut!((*ctx).link), value) }
}

/// Saves the Rust caller's rbp, rbx and r12–r15 (the harnesses' prologue; leaves rsp 8 mod 16
/// when entered by a call).
#[cfg(target_arch = "x86_64")]
macro_rules! save_callee_saved {
    () => {
        "push rbp\npush rbx\npush r12\npush r13\npush r14\npush r15\n"
    };
}

/// Undoes `save_callee_saved!` (the harnesses' epilogue, before `ret`).
#[cfg(target_arch = "x86_64")]
macro_rules! restore_callee_saved {
    () => {
        "pop r15\npop r14\npop r13\npop r12\npop rbx\npop rbp\n"
    };
}

// The garbage side, an entry function in asm: rdi/x0 is the Ctx (its first field is the link
// slot). Keeps that pointer on its own stack, then forever: fill every callee-saved register
// with garbage and suspend with the exact suspend text.
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".text",
    ".balign 16",
    "goexec_test_garbage_entry:",
    "push rdi",
    "3:",
    "movabs rbp, 0xa5a5a5a5a5a5a5a5",
    "movabs rbx, 0xa3a3a3a3a3a3a3a3",
    "movabs r12, 0xacacacacacacacac",
    "movabs r13, 0xadadadadadadadad",
    "movabs r14, 0xaeaeaeaeaeaeaeae",
    "movabs r15, 0xafafafafafafafaf",
    "mov rdx, [rsp]",
    suspend_asm!(),
    "jmp 3b",
);

// The harness: (f, arg) in rdi, rsi. Saves its Rust caller's callee-saved registers, loads
// patterns into all of them, calls f(arg), and returns the OR of (register XOR pattern).
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".text",
    ".balign 16",
    "goexec_test_call_with_patterns:",
    save_callee_saved!(),
    // Six pushes on an 8-mod-16 entry rsp leave it 8 mod 16; realign for the call.
    "sub rsp, 8",
    "mov rax, rdi",
    "mov rdi, rsi",
    "movabs rbp, 0x0505050505050505",
    "movabs rbx, 0x0303030303030303",
    "movabs r12, 0x0c0c0c0c0c0c0c0c",
    "movabs r13, 0x0d0d0d0d0d0d0d0d",
    "movabs r14, 0x0e0e0e0e0e0e0e0e",
    "movabs r15, 0x0f0f0f0f0f0f0f0f",
    "call rax",
    "xor eax, eax",
    "movabs rcx, 0x0505050505050505",
    "xor rcx, rbp",
    "or rax, rcx",
    "movabs rcx, 0x0303030303030303",
    "xor rcx, rbx",
    "or rax, rcx",
    "movabs rcx, 0x0c0c0c0c0c0c0c0c",
    "xor rcx, r12",
    "or rax, rcx",
    "movabs rcx, 0x0d0d0d0d0d0d0d0d",
    "xor rcx, r13",
    "or rax, rcx",
    "movabs rcx, 0x0e0e0e0e0e0e0e0e",
    "xor rcx, r14",
    "or rax, rcx",
    "movabs rcx, 0x0f0f0f0f0f0f0f0f",
    "xor rcx, r15",
    "or rax, rcx",
    "add rsp, 8",
    restore_callee_saved!(),
    "ret",
);

// The asm-level caller: (arg, link, sp, new_sp_out) so that the arguments already sit where
// resume's text wants them (rdi, rsi, rdx; rcx is kept on the stack meanwhile). Saves its Rust
// caller's callee-saved registers, loads patterns into rbx and rbp, runs the resume text,
// stores the coroutine's new stack pointer, and returns the OR of (register XOR pattern).
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".text",
    ".balign 16",
    "goexec_test_resume_checked:",
    save_callee_saved!(),
    "movabs rbp, 0x0505050505050505",
    "movabs rbx, 0x0303030303030303",
    "push rcx",
    resume_asm!(),
    "pop rcx",
    "mov [rcx], rsi",
    "movabs rax, 0x0505050505050505",
    "xor rax, rbp",
    "movabs rcx, 0x0303030303030303",
    "xor rcx, rbx",
    "or rax, rcx",
    restore_callee_saved!(),
    "ret",
);
/// `movz`/`movk` sequence loading 0xHHHH_HHHH_HHHH_HHHH into a 64-bit register.
#[cfg(target_arch = "aarch64")]
macro_rules! mov64 {
    ($reg:literal, $h:literal) => {
        concat!(
            "movz ",
            $reg,
            ", #",
            $h,
            ", lsl #48\n",
            "movk ",
            $reg,
            ", #",
            $h,
            ", lsl #32\n",
            "movk ",
            $reg,
            ", #",
            $h,
            ", lsl #16\n",
            "movk ",
            $reg,
            ", #",
            $h,
            "\n",
        )
    };
}

/// Accumulates (`reg` XOR pattern) into x0, using x9/x10 as scratch.
#[cfg(target_arch = "aarch64")]
macro_rules! check64 {
    ($reg:literal, $h:literal) => {
        concat!(
            mov64!("x10", $h),
            "eor x9, ",
            $reg,
            ", x10\n",
            "orr x0, x0, x9\n"
        )
    };
    (fp $reg:literal, $h:literal) => {
        concat!(
            mov64!("x10", $h),
            "fmov x9, ",
            $reg,
            "\n",
            "eor x9, x9, x10\n",
            "orr x0, x0, x9\n"
        )
    };
}

/// Loads the pattern into a d register through x9.
#[cfg(target_arch = "aarch64")]
macro_rules! load_fp {
    ($reg:literal, $h:literal) => {
        concat!(mov64!("x9", $h), "fmov ", $reg, ", x9\n")
    };
}

/// Saves the Rust caller's x19–x30 and d8–d15 in a 160-byte block (the harnesses' prologue).
#[cfg(target_arch = "aarch64")]
macro_rules! save_callee_saved {
    () => {
        concat!(
            "sub sp, sp, #160\n",
            "stp x19, x20, [sp, #0]\n",
            "stp x21, x22, [sp, #16]\n",
            "stp x23, x24, [sp, #32]\n",
            "stp x25, x26, [sp, #48]\n",
            "stp x27, x28, [sp, #64]\n",
            "stp x29, x30, [sp, #80]\n",
            "stp d8, d9, [sp, #96]\n",
            "stp d10, d11, [sp, #112]\n",
            "stp d12, d13, [sp, #128]\n",
            "stp d14, d15, [sp, #144]\n",
        )
    };
}

/// Undoes `save_callee_saved!` (the harnesses' epilogue, before `ret`).
#[cfg(target_arch = "aarch64")]
macro_rules! restore_callee_saved {
    () => {
        concat!(
            "ldp x19, x20, [sp, #0]\n",
            "ldp x21, x22, [sp, #16]\n",
            "ldp x23, x24, [sp, #32]\n",
            "ldp x25, x26, [sp, #48]\n",
            "ldp x27, x28, [sp, #64]\n",
            "ldp x29, x30, [sp, #80]\n",
            "ldp d8, d9, [sp, #96]\n",
            "ldp d10, d11, [sp, #112]\n",
            "ldp d12, d13, [sp, #128]\n",
            "ldp d14, d15, [sp, #144]\n",
            "add sp, sp, #160\n",
        )
    };
}

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".text",
    ".balign 16",
    "goexec_test_garbage_entry:",
    "str x0, [sp, #-16]!",
    "3:",
    mov64!("x19", "0xa3a3"),
    mov64!("x20", "0xa4a4"),
    mov64!("x21", "0xa5a5"),
    mov64!("x22", "0xa6a6"),
    mov64!("x23", "0xa7a7"),
    mov64!("x24", "0xa8a8"),
    mov64!("x25", "0xa9a9"),
    mov64!("x26", "0xaaaa"),
    mov64!("x27", "0xabab"),
    mov64!("x28", "0xacac"),
    mov64!("x29", "0xadad"),
    load_fp!("d8", "0xb8b8"),
    load_fp!("d9", "0xb9b9"),
    load_fp!("d10", "0xbaba"),
    load_fp!("d11", "0xbbbb"),
    load_fp!("d12", "0xbcbc"),
    load_fp!("d13", "0xbdbd"),
    load_fp!("d14", "0xbebe"),
    load_fp!("d15", "0xbfbf"),
    "ldr x2, [sp]",
    suspend_asm!(),
    "b 3b",
);

// The harness: (f, arg) in x0, x1. Saves its Rust caller's x19–x30 and d8–d15, loads
// patterns into x19–x29 and d8–d15, calls f(arg) (through x17, a scratch register), and returns
// the OR of (register XOR pattern).
#[cfg(target_arch = "aarch64")]
global_asm!(
    ".text",
    ".balign 16",
    "goexec_test_call_with_patterns:",
    save_callee_saved!(),
    "mov x17, x0",
    "mov x0, x1",
    mov64!("x19", "0x1313"),
    mov64!("x20", "0x1414"),
    mov64!("x21", "0x1515"),
    mov64!("x22", "0x1616"),
    mov64!("x23", "0x1717"),
    mov64!("x24", "0x1818"),
    mov64!("x25", "0x1919"),
    mov64!("x26", "0x1a1a"),
    mov64!("x27", "0x1b1b"),
    mov64!("x28", "0x1c1c"),
    mov64!("x29", "0x1d1d"),
    load_fp!("d8", "0x0808"),
    load_fp!("d9", "0x0909"),
    load_fp!("d10", "0x0a0a"),
    load_fp!("d11", "0x0b0b"),
    load_fp!("d12", "0x0c0c"),
    load_fp!("d13", "0x0d0d"),
    load_fp!("d14", "0x0e0e"),
    load_fp!("d15", "0x0f0f"),
    "blr x17",
    "mov x0, #0",
    check64!("x19", "0x1313"),
    check64!("x20", "0x1414"),
    check64!("x21", "0x1515"),
    check64!("x22", "0x1616"),
    check64!("x23", "0x1717"),
    check64!("x24", "0x1818"),
    check64!("x25", "0x1919"),
    check64!("x26", "0x1a1a"),
    check64!("x27", "0x1b1b"),
    check64!("x28", "0x1c1c"),
    check64!("x29", "0x1d1d"),
    check64!(fp "d8", "0x0808"),
    check64!(fp "d9", "0x0909"),
    check64!(fp "d10", "0x0a0a"),
    check64!(fp "d11", "0x0b0b"),
    check64!(fp "d12", "0x0c0c"),
    check64!(fp "d13", "0x0d0d"),
    check64!(fp "d14", "0x0e0e"),
    check64!(fp "d15", "0x0f0f"),
    restore_callee_saved!(),
    "ret",
);

// (arg, link, sp, new_sp_out) arrive in x0–x3; the first three are where resume's text wants
// them, x3 is kept on the stack meanwhile. Saves the Rust caller's registers, loads patterns into
// x19 and x29, runs the resume text, stores the coroutine's new stack pointer, returns the OR
// of (register XOR pattern).
#[cfg(target_arch = "aarch64")]
global_asm!(
    ".text",
    ".balign 16",
    "goexec_test_resume_checked:",
    save_callee_saved!(),
    mov64!("x19", "0x1313"),
    mov64!("x29", "0x1d1d"),
    "str x3, [sp, #-16]!",
    resume_asm!(),
    "ldr x3, [sp], #16",
    "str x1, [x3]",
    "mov x0, #0",
    check64!("x19", "0x1313"),
    check64!("x29", "0x1d1d"),
    restore_callee_saved!(),
    "ret",
);

extern "C" {
    fn goexec_test_garbage_entry(arg: usize) -> !;
    fn goexec_test_call_with_patterns(f: extern "C" fn(usize), arg: usize) -> usize;
    fn goexec_test_resume_checked(
        arg: usize,
        link: *mut *mut u8,
        sp: *mut u8,
        new_sp: *mut *mut u8,
    ) -> usize;
}

/// One real resume, as an ordinary function the harness calls with patterns in every
/// callee-saved register.
extern "C" fn resume_once(ctx: usize) {
    let ctx = ctx as *mut Ctx;
    // SAFETY: the harness passes the live Ctx of the test below.
    unsafe { (*ctx).resume(ctx as usize) };
}

#[test]
fn callee_saved_registers_survive_switches() {
    let mut stack = TestStack::new();
    let mut ctx = Ctx::new(&mut stack, goexec_test_garbage_entry);
    let p: *mut Ctx = &mut *ctx;
    for round in 0..1000 {
        // SAFETY: resume_once follows the C ABI the harness calls it with; p is live.
        let diff = unsafe { goexec_test_call_with_patterns(resume_once, p as usize) };
        assert_eq!(
            diff, 0,
            "a callee-saved register changed across switch {round}"
        );
    }
}

#[test]
fn switch_text_preserves_the_registers_it_must() {
    let mut stack = TestStack::new();
    let mut ctx = Ctx::new(&mut stack, goexec_test_garbage_entry);
    let p: *mut Ctx = &mut *ctx;
    for round in 0..1000 {
        // SAFETY: as in Ctx::resume; the helper stores the new stack pointer back into the Ctx.
        let diff = unsafe {
            goexec_test_resume_checked(
                p as usize,
                ptr::addr_of_mut!((*p).link),
                (*p).sp,
                ptr::addr_of_mut!((*p).sp),
            )
        };
        assert_eq!(diff, 0, "rbx/rbp (x19/x29) changed across switch {round}");
    }
}

/// Keeps twelve integers and eight floats live across 100 resumes into the register-trashing
/// context and returns them. `inline(never)` and the seeds coming from the caller make the
/// compiler hold them in registers (callee-saved ones, under this pressure: x86_64 r12–r15,
/// aarch64 x20–x28 and d8–d15) and read them back after the switches; were a callee-saved
/// register missing from resume's clobbers, the garbage side's values would come back instead.
/// Only optimised builds put locals in registers, which is why CI runs these tests in release
/// as well, on both targets.
#[inline(never)]
fn values_across_resumes(
    ctx: &mut Ctx,
    ints: [u64; 12],
    floats: [f64; 8],
) -> ([u64; 12], [f64; 8]) {
    let p: *mut Ctx = ctx;
    let [a, b, c, d, e, g, h, i, j, k, l, m] = ints;
    let [f0, f1, f2, f3, f4, f5, f6, f7] = floats;
    for _ in 0..100 {
        ctx.resume(p as usize);
    }
    (
        [a, b, c, d, e, g, h, i, j, k, l, m],
        [f0, f1, f2, f3, f4, f5, f6, f7],
    )
}

#[test]
fn live_values_survive_a_resume_into_a_register_trashing_context() {
    let mut stack = TestStack::new();
    let mut ctx = Ctx::new(&mut stack, goexec_test_garbage_entry);
    let ints: [u64; 12] = core::array::from_fn(|i| std::hint::black_box(0x1111 * (i as u64 + 1)));
    let floats: [f64; 8] = core::array::from_fn(|i| std::hint::black_box(i as f64 + 0.5));
    let (ints_back, floats_back) = values_across_resumes(&mut ctx, ints, floats);
    let expected: [u64; 12] = core::array::from_fn(|i| 0x1111 * (i as u64 + 1));
    assert_eq!(ints_back, expected);
    let expected: [f64; 8] = core::array::from_fn(|i| i as f64 + 0.5);
    assert_eq!(floats_back, expected);
}

/// Entry that doubles every value it receives and hands it back.
unsafe extern "C" fn doubling_entry(arg: usize) -> ! {
    let ctx = arg as *mut Ctx;
    // SAFETY: running on the context's own stack, resumed through ctx.
    let mut value = unsafe { suspend_to(ctx, 0) };
    loop {
        // SAFETY: as above.
        value = unsafe { suspend_to(ctx, value * 2) };
    }
}

#[test]
fn values_cross_the_switch_both_ways() {
    let mut stack = TestStack::new();
    let mut ctx = Ctx::new(&mut stack, doubling_entry);
    let p: *mut Ctx = &mut *ctx;
    ctx.resume(p as usize);
    for v in [1usize, 21, usize::MAX / 2, 0] {
        assert_eq!(ctx.resume(v), v * 2);
    }
}

/// Entry that reports the alignment of its own frame, then parks for good.
unsafe extern "C" fn alignment_entry(arg: usize) -> ! {
    let ctx = arg as *mut Ctx;
    let local = 0u128; // u128 has 16-byte alignment on both targets
    let addr = core::hint::black_box(ptr::addr_of!(local)) as usize;
    loop {
        // SAFETY: as in doubling_entry.
        unsafe { suspend_to(ctx, addr % 16) };
    }
}

#[test]
fn fresh_stack_starts_aligned() {
    let mut stack = TestStack::new();
    let mut ctx = Ctx::new(&mut stack, alignment_entry);
    let p: *mut Ctx = &mut *ctx;
    assert_eq!(ctx.resume(p as usize), 0);
}

/// Two contexts under one parent, for the transfer test.
struct Two {
    a: Ctx,
    b: Ctx,
}

/// A: reports 1, then transfers to B (which reports to the parent); when resumed, reports 3.
unsafe extern "C" fn transfer_a(arg: usize) -> ! {
    let two = arg as *mut Two;
    // SAFETY: running on A's stack, resumed through two.a; B is suspended (fresh) and owned
    // by this test, its link slot is two.b.link.
    unsafe {
        suspend(ptr::addr_of_mut!((*two).a.link), 1);
        super::transfer(
            ptr::addr_of_mut!((*two).a.link),
            ptr::addr_of_mut!((*two).a.sp),
            (*two).b.sp,
            ptr::addr_of_mut!((*two).b.link),
        );
        loop {
            suspend(ptr::addr_of_mut!((*two).a.link), 3);
        }
    }
}

/// B, entered by A's transfer (its first argument is 0, as from any transfer): reports 2.
unsafe extern "C" fn transfer_b(arg: usize) -> ! {
    assert_eq!(arg, 0, "a transfer hands over 0");
    let two = TWO.with(|t| t.get());
    loop {
        // SAFETY: running on B's stack; its parent link was recorded by its resume point.
        unsafe { suspend(ptr::addr_of_mut!((*two).b.link), 2) };
    }
}

thread_local! {
    /// B cannot be handed the Two by a transfer (which passes 0); the test is single-threaded.
    static TWO: std::cell::Cell<*mut Two> = const { std::cell::Cell::new(ptr::null_mut()) };
}

#[test]
fn transfer_continues_another_context_under_the_same_parent() {
    let (mut sa, mut sb) = (TestStack::new(), TestStack::new());
    let a = Ctx::new(&mut sa, transfer_a);
    let b = Ctx::new(&mut sb, transfer_b);
    let mut two = Box::new(Two { a: *a, b: *b });
    let p: *mut Two = &mut *two;
    TWO.with(|t| t.set(p));
    // SAFETY: both stacks live to the end of the test; the parent is this frame.
    unsafe {
        let (v, sp) = resume((*p).a.sp, ptr::addr_of_mut!((*p).a.link), p as usize);
        assert_eq!(v, 1);
        (*p).a.sp = sp;
        // A transfers to B; B suspends back to us: we get B's stack pointer and value.
        let (v, sp) = resume((*p).a.sp, ptr::addr_of_mut!((*p).a.link), 0);
        assert_eq!(v, 2, "B reports to A's parent");
        (*p).b.sp = sp;
        // A saved its own stack pointer when it transferred; resuming it continues A.
        let (v, sp) = resume((*p).a.sp, ptr::addr_of_mut!((*p).a.link), 0);
        assert_eq!(v, 3);
        (*p).a.sp = sp;
        let (v, _) = resume((*p).b.sp, ptr::addr_of_mut!((*p).b.link), 0);
        assert_eq!(v, 2);
    }
}

/// What `on_other_stack` saw: where its frame was, and the stack pointer's alignment at entry.
struct CallProbe {
    input: u64,
    output: u64,
    local_at: usize,
}

extern "C" fn on_other_stack(arg: *mut u8) {
    // SAFETY: the test passes a valid, exclusive &mut CallProbe.
    let probe = unsafe { &mut *arg.cast::<CallProbe>() };
    let local = core::hint::black_box(probe.input);
    probe.local_at = ptr::addr_of!(local) as usize;
    // A 16-byte-aligned local: misaligned entry would fault on an aligned SSE store (x86_64).
    let wide = core::hint::black_box(0x1234_u128);
    assert_eq!(
        ptr::addr_of!(wide) as usize % 16,
        0,
        "stack misaligned in the callee"
    );
    probe.output = local * 3 + wide as u64;
}

#[test]
fn call_on_stack_runs_on_the_given_stack_and_comes_back() {
    let mut stack = TestStack::new();
    let top = stack.top() as usize;
    let bottom = top - 4096 * 16;
    let mut live = core::hint::black_box(0xfeed_u64); // must survive the call
    for i in 0..1000u64 {
        let mut probe = CallProbe {
            input: i,
            output: 0,
            local_at: 0,
        };
        // SAFETY: the test stack is ours, unused and 16-aligned at its top; on_other_stack
        // neither unwinds (its asserts would abort: extern "C") nor switches.
        unsafe {
            super::call_on_stack(ptr::addr_of_mut!(probe).cast(), stack.top(), on_other_stack)
        };
        assert_eq!(probe.output, i * 3 + 0x1234);
        assert!(
            (bottom..top).contains(&probe.local_at),
            "the callee's frame was not on the given stack"
        );
        live = core::hint::black_box(live.wrapping_add(1));
    }
    assert_eq!(live, 0xfeed + 1000);
}

/// The innermost of the walk test's own frames: suspends, and hands back `depth` each time.
#[inline(never)]
fn walk_leaf(ctx: *mut Ctx, depth: usize) -> usize {
    // SAFETY: as in doubling_entry: on the context's own stack, resumed through ctx.
    let v = unsafe { suspend_to(ctx, depth) };
    core::hint::black_box(v + 1)
}

/// Recurses `n` times through itself before the leaf, so the walk has frames to count.
#[inline(never)]
fn walk_middle(ctx: *mut Ctx, n: usize) -> usize {
    let v = if n == 0 {
        walk_leaf(ctx, 3)
    } else {
        walk_middle(ctx, n - 1)
    };
    core::hint::black_box(v + 1)
}

unsafe extern "C" fn walk_entry(arg: usize) -> ! {
    let ctx = arg as *mut Ctx;
    loop {
        core::hint::black_box(walk_middle(ctx, 2));
    }
}

/// The function names of a suspended context's frames, walked through `with_frames_of` by
/// the DWARF unwinder (innermost first).
fn frames_of(sp: *mut u8) -> Vec<String> {
    // SAFETY: `sp` is a context suspended in walk_leaf, not resumed during the walk.
    let ips = unsafe { super::suspended_return_addresses(sp, 100) };
    let mut names = Vec::new();
    for ip in ips {
        let mut name = None;
        backtrace::resolve((ip - 1) as *mut core::ffi::c_void, |s| {
            // The outermost function at the address (the last one reported).
            name = s.name().map(|n| format!("{n:#}"));
        });
        names.push(name.unwrap_or_else(|| format!("{ip:#x}")));
    }
    names
}

/// A backtrace taken through `with_frames_of` walks a suspended context's own frames, from
/// where it suspended to its entry, and stops at the trampoline; the context is untouched.
#[test]
fn a_suspended_contexts_frames_can_be_walked_from_outside() {
    let mut stack = TestStack::new();
    let mut ctx = Ctx::new(&mut stack, walk_entry);
    let p: *mut Ctx = &mut *ctx;
    assert_eq!(ctx.resume(p as usize), 3);
    for round in 0..3 {
        let names = frames_of(ctx.sp);
        let leaf = names.iter().position(|n| n.ends_with("walk_leaf"));
        let middles = names.iter().filter(|n| n.ends_with("walk_middle")).count();
        let entry = names.iter().position(|n| n.ends_with("walk_entry"));
        assert!(leaf.is_some(), "round {round}: {names:?}");
        assert_eq!(middles, 3, "round {round}: {names:?}");
        // The entry, then the trampoline: the walk ends there.
        let entry = entry.unwrap_or_else(|| panic!("round {round}: {names:?}"));
        assert_eq!(names.len(), entry + 2, "round {round}: {names:?}");
        assert_eq!(
            names[entry + 1],
            "goexec_trampoline",
            "round {round}: {names:?}"
        );
        // Untouched: it resumes where it was and suspends at the leaf again.
        assert_eq!(ctx.resume(0), 3);
    }
}
