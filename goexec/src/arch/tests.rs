//! Tests of the bare switch, on stacks that are plain heap buffers (no guard, no pool), so that
//! a failure here points at the assembly and nothing else.

use super::{init_stack, switch};
use core::arch::global_asm;
use core::ptr;

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

/// Where the test's two contexts keep each other's stack pointers.
struct Pair {
    main_sp: *mut u8,
    coro_sp: *mut u8,
}

// Register-pattern helpers, one per target, each following the switch's own calling convention
// (save, to, arg) so they can stand in for `switch`:
// - goexec_test_switch_checked loads a distinct pattern into every callee-saved register, calls
//   goexec_switch, and on its return XORs each register with its pattern; the OR of the XORs is
//   its result, so 0 means every register came back intact.
// - goexec_test_switch_garbage loads different values into the same registers, then calls
//   goexec_switch, so the other side's switch must restore what it saved.
// Both save and restore the real callee-saved registers of their Rust caller around all this.
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".text",
    ".balign 16",
    "goexec_test_switch_checked:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    // Six pushes on an 8-mod-16 entry rsp leave it 8 mod 16; realign for the call.
    "sub rsp, 8",
    "movabs rbp, 0x0505050505050505",
    "movabs rbx, 0x0303030303030303",
    "movabs r12, 0x0c0c0c0c0c0c0c0c",
    "movabs r13, 0x0d0d0d0d0d0d0d0d",
    "movabs r14, 0x0e0e0e0e0e0e0e0e",
    "movabs r15, 0x0f0f0f0f0f0f0f0f",
    "call goexec_switch",
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
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    "",
    ".balign 16",
    "goexec_test_switch_garbage:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "movabs rbp, 0xa5a5a5a5a5a5a5a5",
    "movabs rbx, 0xa3a3a3a3a3a3a3a3",
    "movabs r12, 0xacacacacacacacac",
    "movabs r13, 0xadadadadadadadad",
    "movabs r14, 0xaeaeaeaeaeaeaeae",
    "movabs r15, 0xafafafafafafafaf",
    "call goexec_switch",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

/// `movz`/`movk` sequence loading 0xHHHH_HHHH_HHHH_HHHH into a 64-bit register.
#[cfg(target_arch = "aarch64")]
macro_rules! mov64 {
    ($reg:literal, $h:literal) => {
        concat!(
            "movz ", $reg, ", #", $h, ", lsl #48\n",
            "movk ", $reg, ", #", $h, ", lsl #32\n",
            "movk ", $reg, ", #", $h, ", lsl #16\n",
            "movk ", $reg, ", #", $h, "\n",
        )
    };
}

/// Accumulates (`reg` XOR pattern) into x0, using x9/x10 as scratch.
#[cfg(target_arch = "aarch64")]
macro_rules! check64 {
    ($reg:literal, $h:literal) => {
        concat!(mov64!("x10", $h), "eor x9, ", $reg, ", x10\n", "orr x0, x0, x9\n")
    };
    (fp $reg:literal, $h:literal) => {
        concat!(
            mov64!("x10", $h),
            "fmov x9, ", $reg, "\n",
            "eor x9, x9, x10\n",
            "orr x0, x0, x9\n",
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

/// Saves x19–x30 and d8–d15 of the Rust caller in a 160-byte block.
#[cfg(target_arch = "aarch64")]
macro_rules! save_all {
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

#[cfg(target_arch = "aarch64")]
macro_rules! restore_all {
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
    "goexec_test_switch_checked:",
    save_all!(),
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
    "bl goexec_switch",
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
    restore_all!(),
    "ret",
    "",
    ".balign 16",
    "goexec_test_switch_garbage:",
    save_all!(),
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
    "bl goexec_switch",
    restore_all!(),
    "ret",
);

extern "C" {
    fn goexec_test_switch_checked(save: *mut *mut u8, to: *mut u8, arg: usize) -> usize;
    fn goexec_test_switch_garbage(save: *mut *mut u8, to: *mut u8, arg: usize) -> usize;
}

/// Entry of the "garbage" side: switches back with clobbered registers, forever.
unsafe extern "C" fn garbage_entry(arg: usize) -> ! {
    let pair = arg as *mut Pair;
    loop {
        // SAFETY: `pair` outlives both contexts (it is on the test's stack and the test only
        // returns after its last switch); main_sp was stored by the main side's switch.
        unsafe {
            goexec_test_switch_garbage(
                ptr::addr_of_mut!((*pair).coro_sp),
                (*pair).main_sp,
                0,
            );
        }
    }
}

#[test]
fn callee_saved_registers_survive_switches() {
    let mut stack = TestStack::new();
    let mut pair = Pair {
        main_sp: ptr::null_mut(),
        coro_sp: ptr::null_mut(),
    };
    let pair_ptr = ptr::addr_of_mut!(pair);
    // SAFETY: the stack is ours and unused; garbage_entry never returns.
    unsafe { (*pair_ptr).coro_sp = init_stack(stack.top(), garbage_entry) };
    for round in 0..1000 {
        // SAFETY: coro_sp came from init_stack or from the other side's last switch; the stack
        // lives until the end of this function.
        let diff = unsafe {
            goexec_test_switch_checked(
                ptr::addr_of_mut!((*pair_ptr).main_sp),
                (*pair_ptr).coro_sp,
                pair_ptr as usize,
            )
        };
        assert_eq!(diff, 0, "a callee-saved register changed across switch {round}");
    }
}

/// Entry that doubles every value it receives and hands it back.
unsafe extern "C" fn doubling_entry(arg: usize) -> ! {
    // The first switch hands over the Pair; later ones hand over values.
    let pair = arg as *mut Pair;
    // SAFETY: as in garbage_entry.
    let mut value = unsafe { switch(ptr::addr_of_mut!((*pair).coro_sp), (*pair).main_sp, 0) };
    loop {
        // SAFETY: as above.
        value = unsafe {
            switch(
                ptr::addr_of_mut!((*pair).coro_sp),
                (*pair).main_sp,
                value * 2,
            )
        };
    }
}

#[test]
fn values_cross_the_switch_both_ways() {
    let mut stack = TestStack::new();
    let mut pair = Pair {
        main_sp: ptr::null_mut(),
        coro_sp: ptr::null_mut(),
    };
    let p = ptr::addr_of_mut!(pair);
    // SAFETY: as in callee_saved_registers_survive_switches.
    unsafe {
        (*p).coro_sp = init_stack(stack.top(), doubling_entry);
        switch(ptr::addr_of_mut!((*p).main_sp), (*p).coro_sp, p as usize);
        for v in [1usize, 21, usize::MAX / 2, 0] {
            let got = switch(ptr::addr_of_mut!((*p).main_sp), (*p).coro_sp, v);
            assert_eq!(got, v * 2);
        }
    }
}

/// Entry that reports the alignment of its own frame, then parks for good.
unsafe extern "C" fn alignment_entry(arg: usize) -> ! {
    let pair = arg as *mut Pair;
    let local = 0u128; // u128 has 16-byte alignment on both targets
    let addr = core::hint::black_box(ptr::addr_of!(local)) as usize;
    let misalign = addr % 16;
    loop {
        // SAFETY: as in garbage_entry.
        unsafe {
            switch(
                ptr::addr_of_mut!((*pair).coro_sp),
                (*pair).main_sp,
                misalign,
            )
        };
    }
}

#[test]
fn fresh_stack_starts_aligned() {
    let mut stack = TestStack::new();
    let mut pair = Pair {
        main_sp: ptr::null_mut(),
        coro_sp: ptr::null_mut(),
    };
    let p = ptr::addr_of_mut!(pair);
    // SAFETY: as in callee_saved_registers_survive_switches.
    let misalign = unsafe {
        (*p).coro_sp = init_stack(stack.top(), alignment_entry);
        switch(ptr::addr_of_mut!((*p).main_sp), (*p).coro_sp, p as usize)
    };
    assert_eq!(misalign, 0);
}
