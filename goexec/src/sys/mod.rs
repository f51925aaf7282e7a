//! The bottom layer: what goexec needs from the OS and the thread it runs on. It knows nothing
//! of goroutines, the scheduler or stacks, and imports nothing else from the crate; `stack`,
//! the runtime and the layers above build on it.
//!
//! - `fatal.rs`: aborting on a broken invariant;
//! - `tls.rs`: the crate's thread-local storage, behind accessors that stay correct when a
//!   goroutine changes threads;
//! - `altstack.rs`: the per-thread alternate signal stack the stack-overflow handler runs on;
//! - [`page_size`].
#![allow(unsafe_code)] // sysconf, and the alternate signal stack's mmap and sigaltstack

mod altstack;
mod fatal;
pub(crate) mod tls;

pub(crate) use fatal::fatal;

use std::sync::OnceLock;

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            n as usize
        } else {
            4096
        }
    })
}
