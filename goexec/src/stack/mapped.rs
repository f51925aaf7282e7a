//! Mapped stacks: one `mmap` per stack, its lowest page made `PROT_NONE` as the guard.
//!
//! The fallback where `MADV_GUARD_INSTALL` is missing (Linux < 6.13, qemu-user). Each stack is
//! two kernel mappings (the guard and the stack), so the default `vm.max_map_count` of 65530
//! allows about 32,000 stacks per process; past that the error names the limit and the sysctl.

use super::{classify, page_size, Origin, Stack, StackError};
use std::io;
use std::ptr::{self, NonNull};

/// Maps a guard page plus `size` usable bytes (already page-rounded and checked).
pub(super) fn allocate(size: usize) -> Result<Stack, StackError> {
    let guard = page_size();
    let total = size + guard;
    // Reserve everything inaccessible first, then open up the stack part: if the second step
    // fails, the whole reservation is unmapped again.
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing; checked below.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            total,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(classify(io::Error::last_os_error(), total));
    }
    // SAFETY: p + guard is inside the mapping just made.
    let bottom = unsafe { p.cast::<u8>().add(guard) };
    // SAFETY: [bottom, bottom + size) is the upper part of our own fresh mapping.
    if unsafe { libc::mprotect(bottom.cast(), size, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: unmapping exactly the reservation made above; nothing refers to it.
        unsafe { libc::munmap(p, total) };
        return Err(classify(err, total));
    }
    let bottom = NonNull::new(bottom)
        .ok_or_else(|| StackError::Os(io::Error::other("mmap returned address zero")))?;
    Ok(Stack::from_parts(bottom, size, Origin::Mapped))
}

/// Unmaps a stack made by [`allocate`], guard included.
pub(super) fn free(bottom: NonNull<u8>, size: usize) {
    let guard = page_size();
    // SAFETY: bottom - guard is the start of the mapping allocate() made, size + guard its
    // length; the Stack owning it is being dropped, so nothing uses it any more.
    let start = unsafe { bottom.as_ptr().sub(guard) };
    // SAFETY: as above.
    let rc = unsafe { libc::munmap(start.cast(), size + guard) };
    debug_assert_eq!(rc, 0, "mapped::free: munmap failed");
}
