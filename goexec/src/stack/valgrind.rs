//! valgrind client requests for stacks, so that switching onto a goroutine stack is not
//! reported as a wild stack-pointer change. Natively each request is a few no-op rotates: the
//! "special instruction" sequence only means something to valgrind's JIT, which answers in the
//! result register; run natively, the default result (0) comes back unchanged.
//!
//! The request numbers and instruction sequences are valgrind's published ABI
//! (`valgrind.h`: `VG_USERREQ__STACK_REGISTER` = 0x1501, `..._DEREGISTER` = 0x1502;
//! `memcheck.h`: `VG_USERREQ__MAKE_MEM_UNDEFINED` = `VG_USERREQ_TOOL_BASE('M','C') + 1`).

const STACK_REGISTER: usize = 0x1501;
const STACK_DEREGISTER: usize = 0x1502;
const MAKE_MEM_UNDEFINED: usize = 0x4d43_0001;

/// Tells valgrind that `[lo, hi)` is a stack; returns its id (0 natively).
pub(super) fn stack_register(lo: usize, hi: usize) -> usize {
    client_request(0, [STACK_REGISTER, lo, hi, 0, 0, 0])
}

/// Forgets a stack registered by [`stack_register`].
pub(super) fn stack_deregister(id: usize) {
    client_request(0, [STACK_DEREGISTER, id, 0, 0, 0, 0]);
}

/// Tells memcheck that `[lo, lo + len)` is addressable and holds nothing initialised. Other
/// tools ignore the request.
pub(super) fn make_mem_undefined(lo: usize, len: usize) {
    client_request(0, [MAKE_MEM_UNDEFINED, lo, len, 0, 0, 0]);
}

#[cfg(target_arch = "x86_64")]
fn client_request(default: usize, args: [usize; 6]) -> usize {
    let mut result = default;
    // SAFETY: the rotates of rdi total 128 bits, leaving it unchanged; `xchg rbx, rbx` is a
    // no-op. Natively nothing else happens; under valgrind it reads `args` (through rax) and
    // writes its answer to rdx. rdi is declared clobbered all the same, to be safe.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            inout("rdi") 0usize => _,
            options(nostack),
        );
    }
    result
}

#[cfg(target_arch = "aarch64")]
fn client_request(default: usize, args: [usize; 6]) -> usize {
    let mut result = default;
    // SAFETY: the rotates of x12 total 128 bits, leaving it unchanged; `orr x10, x10, x10` is a
    // no-op. Under valgrind the request reads `args` (through x4) and answers in x3.
    unsafe {
        core::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            inout("x3") result,
            in("x4") args.as_ptr(),
            inout("x12") 0usize => _,
            options(nostack),
        );
    }
    result
}
