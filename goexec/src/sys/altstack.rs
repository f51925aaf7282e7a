//! The alternate signal stack a thread's SIGSEGV/SIGBUS handler runs on, where the faulting
//! stack has no room left (stack/overflow.rs installs that handler). Made only where a thread has
//! none: Rust's runtime gives one to the main thread and to the threads it spawns.

use super::page_size;
use std::io;
use std::mem::MaybeUninit;
use std::ptr;

/// Size of the alternate signal stack we install where a thread has none: room for our
/// handler and a chained one (Rust's uses a few KiB), on any page size.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// An alternate signal stack mapped by us: a guard page below `ALT_STACK_SIZE` bytes. Owned by
/// one thread's TLS and unmapped when that thread exits.
pub(crate) struct AltStack {
    /// Start of the mapping (the guard), or 0 while the thread has none of ours.
    map: usize,
}

impl AltStack {
    pub(crate) const fn empty() -> AltStack {
        AltStack { map: 0 }
    }

    /// Installs an alternate stack for this thread unless it already has one (Rust's runtime
    /// gives one to the main thread and to threads it spawns).
    pub(crate) fn ensure(&mut self) -> io::Result<()> {
        if self.map != 0 {
            return Ok(());
        }
        let mut cur = MaybeUninit::<libc::stack_t>::zeroed();
        // SAFETY: querying only; cur is a properly sized buffer.
        if unsafe { libc::sigaltstack(ptr::null(), cur.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigaltstack filled it in.
        let cur = unsafe { cur.assume_init() };
        if cur.ss_flags & libc::SS_DISABLE == 0 {
            return Ok(());
        }
        let page = page_size();
        let len = ALT_STACK_SIZE + page;
        // SAFETY: a fresh anonymous mapping, checked below.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page of our own mapping becomes the guard; failure leaves it
        // unguarded, which only loses protection of the signal stack itself.
        unsafe { libc::mprotect(p, page, libc::PROT_NONE) };
        let st = libc::stack_t {
            // SAFETY: p + page is inside the mapping.
            ss_sp: unsafe { p.cast::<u8>().add(page) }.cast(),
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        // SAFETY: st describes memory we own for as long as it is installed (until Drop).
        if unsafe { libc::sigaltstack(&st, ptr::null_mut()) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above, never installed.
            unsafe { libc::munmap(p, len) };
            return Err(err);
        }
        self.map = p as usize;
        Ok(())
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.map == 0 {
            return;
        }
        let off = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: the thread is exiting (TLS destructor): no signal handler of this thread can
        // be running on the stack. Disable it first, then unmap our own mapping.
        unsafe { libc::sigaltstack(&off, ptr::null_mut()) };
        // SAFETY: as above: the alternate stack is off, and the mapping is ours.
        unsafe { libc::munmap(self.map as *mut libc::c_void, ALT_STACK_SIZE + page_size()) };
    }
}
