//! Goroutine stacks: reserved, guarded, pooled.
//!
//! A [`Stack`] is a fixed-size region with an inaccessible guard page below it (stacks grow
//! down), so running off the end faults instead of corrupting a neighbour. The fault is turned
//! into `goroutine N stack overflow (stack size S bytes)` by the signal handler in
//! `stack/overflow.rs`.
//!
//! Two ways to place the guard, chosen once per process (see [`guard_mode`]):
//!
//! - **Arena** (Linux >= 6.13): stacks are slots carved out of large anonymous mappings, each
//!   slot's guard installed with `madvise(MADV_GUARD_INSTALL)`. A guard is a page-table marker,
//!   not a separate mapping, so a million stacks need a few dozen kernel mappings and fit under
//!   the default `vm.max_map_count` (65530). See `arena.rs`.
//! - **Mapped**: one `mmap` per stack with its lowest page `PROT_NONE`. Each stack costs two
//!   kernel mappings, so about 32,000 stacks exhaust the default limit; that failure is reported
//!   as [`StackError::MapCountExhausted`], naming the sysctl to raise. See `mapped.rs`.
//!
//! Freed goroutine stacks go back to their P's pool (`pool.rs`), which keeps them whole (a reused
//! stack whose top pages are still resident spawns without page faults) and gives the pages
//! beyond a resident top back to the kernel when asked to (`scrub`), not on every free.
//!
//! Every stack is registered with valgrind (a no-op natively) so the suite runs under valgrind.
#![allow(unsafe_code)] // stacks are raw memory: mmap, madvise, mprotect and the signal handler.

mod arena;
mod mapped;
pub(crate) mod overflow;
mod pool;
mod valgrind;

// The runtime's per-P stack caches; public only to the benches package (an unstable feature).
#[cfg(not(feature = "bench-internals"))]
pub(crate) use pool::{StackPool, DEFAULT_POOL_CAPACITY};
#[cfg(feature = "bench-internals")]
pub use pool::{StackPool, DEFAULT_POOL_CAPACITY, KEEP_RESIDENT};

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// Stack size used when neither the runtime's nor the spawn's builder names one: 256 KiB.
///
/// Rust has no growable stacks, so the default must hold the deep call chains of ordinary
/// library code (formatting, parsers, HTTP stacks); 64 KiB overflows in practice. It costs
/// address space only: a stack's memory is the pages it touches.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The smallest stack size accepted: 16 KiB. Below this even catching a panic and formatting
/// its message can overflow.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// The largest stack size accepted: 1 GiB, Go's own maximum goroutine stack.
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// Why a stack could not be had. Its `Display` says what to do about it.
///
/// # Examples
///
/// ```
/// use goexec::stack::{Stack, StackError};
///
/// let err = Stack::new(0).unwrap_err();
/// assert!(matches!(err, StackError::TooSmall { requested: 0 }));
/// assert_eq!(
///     err.to_string(),
///     "stack size 0 bytes is below the minimum of 16384 bytes; \
///      ask for at least goexec::stack::MIN_STACK_SIZE"
/// );
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StackError {
    /// The requested size is below [`MIN_STACK_SIZE`].
    TooSmall {
        /// Bytes asked for.
        requested: usize,
    },
    /// The requested size is above [`MAX_STACK_SIZE`].
    TooLarge {
        /// Bytes asked for.
        requested: usize,
    },
    /// The process has as many memory mappings as `vm.max_map_count` allows.
    MapCountExhausted {
        /// The limit read from `/proc/sys/vm/max_map_count`, if readable.
        max_map_count: Option<u64>,
        /// Mappings the process had when the kernel refused.
        mappings: Option<u64>,
    },
    /// The kernel refused the memory itself (overcommit policy, `ulimit -v`).
    OutOfMemory {
        /// Bytes that were being reserved.
        bytes: usize,
        /// The kernel's error.
        source: io::Error,
    },
    /// Any other error from the kernel.
    Os(io::Error),
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::TooSmall { requested } => write!(
                f,
                "stack size {requested} bytes is below the minimum of {MIN_STACK_SIZE} bytes; \
                 ask for at least goexec::stack::MIN_STACK_SIZE"
            ),
            StackError::TooLarge { requested } => write!(
                f,
                "stack size {requested} bytes is above the maximum of {MAX_STACK_SIZE} bytes"
            ),
            StackError::MapCountExhausted {
                max_map_count,
                mappings,
            } => {
                write!(f, "cannot map another goroutine stack: the process has ")?;
                match mappings {
                    Some(n) => write!(f, "{n} memory mappings")?,
                    None => write!(f, "too many memory mappings")?,
                }
                match max_map_count {
                    Some(max) => write!(f, " and vm.max_map_count is {max}")?,
                    None => write!(f, ", the limit set by vm.max_map_count")?,
                }
                write!(
                    f,
                    "; raise it (sysctl -w vm.max_map_count=1048576), or run on Linux >= 6.13, \
                     where guard pages need no mappings of their own"
                )
            }
            StackError::OutOfMemory { bytes, source } => write!(
                f,
                "the kernel refused {bytes} bytes of address space for goroutine stacks ({source}); \
                 check `ulimit -v` and vm.overcommit_memory, or use smaller stacks"
            ),
            StackError::Os(e) => write!(f, "goroutine stack allocation failed: {e}"),
        }
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StackError::OutOfMemory { source, .. } | StackError::Os(source) => Some(source),
            _ => None,
        }
    }
}

/// How guard pages are made on this machine; decided once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardMode {
    /// `madvise(MADV_GUARD_INSTALL)` inside shared arenas (Linux >= 6.13).
    Arena,
    /// One mapping per stack with a `PROT_NONE` guard page.
    Mapped,
}

/// The guard mechanism this process uses, probed on first call: the kernel must accept
/// `MADV_GUARD_INSTALL` *and* the guard must really refuse access (under qemu-user, madvise
/// returns success for advice it ignores). `GOEXEC_STACK_GUARD=mapped` in the environment
/// forces [`GuardMode::Mapped`].
///
/// # Examples
///
/// ```
/// use goexec::stack::{guard_mode, GuardMode};
///
/// match guard_mode() {
///     GuardMode::Arena => println!("guards are page-table markers: a million stacks fit"),
///     GuardMode::Mapped => println!("two kernel mappings per stack: mind vm.max_map_count"),
/// }
/// ```
pub fn guard_mode() -> GuardMode {
    static MODE: OnceLock<GuardMode> = OnceLock::new();
    *MODE.get_or_init(|| {
        if std::env::var_os("GOEXEC_STACK_GUARD").is_some_and(|v| v == "mapped") {
            return GuardMode::Mapped;
        }
        if arena::guard_install_works() {
            GuardMode::Arena
        } else {
            GuardMode::Mapped
        }
    })
}

pub(crate) use crate::sys::page_size;

/// Rounds `size` up to whole pages after checking it is within the accepted bounds.
pub(crate) fn checked_size(size: usize) -> Result<usize, StackError> {
    if size < MIN_STACK_SIZE {
        return Err(StackError::TooSmall { requested: size });
    }
    if size > MAX_STACK_SIZE {
        return Err(StackError::TooLarge { requested: size });
    }
    let page = page_size();
    Ok(size.div_ceil(page) * page)
}

/// Where a stack's memory came from, and so how to give it back.
#[derive(Debug)]
enum Origin {
    Arena(arena::Slot),
    Mapped,
}

/// A goroutine stack: `size` usable bytes above an inaccessible guard page.
///
/// Dropping it returns the memory: an arena slot goes back to its arena's free list with its
/// pages released, a mapped stack is unmapped. To reuse a stack cheaply, keep it instead (a
/// finished coroutine gives its stack back: [`Coroutine::into_stack`]).
///
/// [`Coroutine::into_stack`]: crate::runtime::Coroutine::into_stack
///
/// # Examples
///
/// ```
/// let stack = goexec::stack::Stack::new(64 * 1024)?;
/// assert_eq!(stack.size(), 64 * 1024);
/// assert_eq!(stack.top() as usize - stack.bottom() as usize, 64 * 1024);
/// # Ok::<(), goexec::stack::StackError>(())
/// ```
#[derive(Debug)]
pub struct Stack {
    /// Lowest usable byte; the guard lies just below.
    bottom: NonNull<u8>,
    /// Usable bytes, a whole number of pages.
    size: usize,
    origin: Origin,
    /// valgrind's handle for this range (0 when not running under valgrind).
    valgrind_id: usize,
}

// SAFETY: a Stack owns its memory exclusively (no aliasing handles exist), and the arena slot
// bookkeeping it carries is an index into a process-wide, lock-protected allocator.
unsafe impl Send for Stack {}

impl Stack {
    /// Allocates a stack of `size` bytes (rounded up to whole pages) with a guard page below.
    ///
    /// # Errors
    ///
    /// [`StackError::TooSmall`] / [`StackError::TooLarge`] outside
    /// [`MIN_STACK_SIZE`]..=[`MAX_STACK_SIZE`]; [`StackError::MapCountExhausted`] when the
    /// process is out of kernel mappings; [`StackError::OutOfMemory`] when the kernel refuses the
    /// address space.
    pub fn new(size: usize) -> Result<Stack, StackError> {
        let size = checked_size(size)?;
        match guard_mode() {
            GuardMode::Arena => arena::allocate(size),
            GuardMode::Mapped => mapped::allocate(size),
        }
    }

    /// Builds the value once the memory is in hand; registers it with valgrind.
    fn from_parts(bottom: NonNull<u8>, size: usize, origin: Origin) -> Stack {
        let lo = bottom.as_ptr() as usize;
        let valgrind_id = valgrind::stack_register(lo, lo + size);
        Stack {
            bottom,
            size,
            origin,
            valgrind_id,
        }
    }

    /// Usable bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The lowest usable address; the guard page ends here.
    pub fn bottom(&self) -> *mut u8 {
        self.bottom.as_ptr()
    }

    /// One past the highest usable address: where a fresh context's stack pointer starts.
    pub fn top(&self) -> *mut u8 {
        // SAFETY: bottom + size is the end of the allocation we own (one past the end).
        unsafe { self.bottom.as_ptr().add(self.size) }
    }

    /// Tells valgrind that a new context is about to start on this stack: every byte of it is
    /// addressable again, and none is initialised. memcheck remembers the bytes below the last
    /// stack pointer of the stack's previous context as inaccessible; a goroutine's first frame
    /// may lie lower than that (its colour offset, see `STACK_COLORS` in runtime/g.rs), and
    /// would be reported as an invalid write. Natively nothing is asked: the stack's valgrind id
    /// is 0 there, and valgrind numbers the stacks it is told of from 1 (0 is the main stack).
    pub(crate) fn renew_for_valgrind(&self) {
        if self.valgrind_id != 0 {
            valgrind::make_mem_undefined(self.bottom.as_ptr() as usize, self.size);
        }
    }

    /// The guard range `[lo, hi)` below this stack, for the overflow handler.
    #[cfg(test)]
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let lo = self.bottom.as_ptr() as usize;
        (lo - page_size(), lo)
    }

    /// Gives the pages of `[bottom, top - keep)` back to the kernel; they read as zero next time.
    pub(crate) fn release_below(&self, keep: usize) {
        let len = self.size.saturating_sub(keep);
        if len == 0 {
            return;
        }
        // SAFETY: the range lies inside memory this Stack owns, and no context is running on
        // it (a pooled or dropped stack is idle by construction). MADV_DONTNEED on private
        // anonymous memory only discards contents, and guard markers survive it.
        let rc = unsafe { libc::madvise(self.bottom.as_ptr().cast(), len, libc::MADV_DONTNEED) };
        // madvise(DONTNEED) on our own mapping can only fail on a bug in our arithmetic; the
        // stack stays usable either way, so there is nothing to report to the caller.
        debug_assert_eq!(rc, 0, "release_below: madvise failed");
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        valgrind::stack_deregister(self.valgrind_id);
        match &self.origin {
            Origin::Arena(slot) => {
                self.release_below(0);
                arena::free(slot);
            }
            Origin::Mapped => mapped::free(self.bottom, self.size),
        }
    }
}

/// Reads how many mappings the process has and the system limit, for error messages.
fn map_count_status() -> (Option<u64>, Option<u64>) {
    let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let count = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .map(|s| s.lines().count() as u64);
    (max, count)
}

/// Whether the kernel has room for the mappings a new thread makes: its stack and guard, and
/// std's alternate signal stack and guard. With a full mapping table (`vm.max_map_count`),
/// std's thread start aborts the process ("failed to allocate an alternative stack") before
/// any code of ours runs in the thread, so the runtime asks first, by mapping as many single
/// pages (alternately readable and not, so that neighbours cannot merge into one mapping) and
/// unmapping them. The error then names the limit and how to raise it.
pub(crate) fn room_for_a_thread() -> io::Result<()> {
    const MAPPINGS: usize = 4;
    let page = crate::sys::page_size();
    let mut made = [std::ptr::null_mut::<libc::c_void>(); MAPPINGS];
    let mut failure = None;
    for (i, slot) in made.iter_mut().enumerate() {
        let prot = if i % 2 == 0 {
            libc::PROT_READ
        } else {
            libc::PROT_NONE
        };
        // SAFETY: an anonymous private mapping of one page where the kernel chooses: it
        // aliases nothing, and is unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            failure = Some(io::Error::last_os_error());
            break;
        }
        *slot = p;
    }
    for &p in made.iter().filter(|p| !p.is_null()) {
        // SAFETY: `p` is a page mapped above, used by nothing.
        unsafe { libc::munmap(p, page) };
    }
    let Some(err) = failure else {
        return Ok(());
    };
    match classify(err, page) {
        StackError::MapCountExhausted {
            max_map_count,
            mappings,
        } => {
            let count = mappings.map_or("too many".to_owned(), |n| n.to_string());
            let max = max_map_count.map_or("its limit".to_owned(), |n| n.to_string());
            Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "no room for a thread's memory mappings: the process has {count} mappings \
                     and vm.max_map_count is {max}; raise it (sysctl -w \
                     vm.max_map_count=1048576), or run on Linux >= 6.13, where goroutine \
                     stacks' guard pages need no mappings of their own"
                ),
            ))
        }
        StackError::OutOfMemory { source, .. } | StackError::Os(source) => Err(source),
        other => Err(io::Error::other(other.to_string())),
    }
}

/// Turns an mmap/mprotect/madvise failure into the error a user can act on.
fn classify(err: io::Error, bytes: usize) -> StackError {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return StackError::Os(err);
    }
    let (max, count) = map_count_status();
    // ENOMEM means either no memory or no mapping slot; near the limit it is the latter. The
    // margin (1/16 of the limit) covers mappings made or dropped by other threads since the
    // failure, and mappings an emulator (qemu-user) hides from /proc/self/maps.
    match (max, count) {
        (Some(max), Some(count)) if count + max / 16 >= max => StackError::MapCountExhausted {
            max_map_count: Some(max),
            mappings: Some(count),
        },
        _ => StackError::OutOfMemory { bytes, source: err },
    }
}

#[cfg(test)]
mod tests;
