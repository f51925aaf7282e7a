//! Arena stacks: fixed-size slots carved out of large anonymous mappings, each slot's guard
//! page installed with `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13).
//!
//! ```text
//!  arena (one kernel mapping)
//!  +-------+-------------------+-------+-------------------+-- ... --+
//!  | guard | stack of slot 0   | guard | stack of slot 1   |         |
//!  +-------+-------------------+-------+-------------------+-- ... --+
//!  ^ start                      ^ start + slot_size
//! ```
//!
//! A guard is a page-table marker inside the arena's one mapping, so slots add no kernel
//! mappings however many there are. It is installed once, when a slot is first handed out
//! (~0.8 µs), and survives `MADV_DONTNEED`, so a freed slot keeps it for the next stack.
//!
//! Arenas are process-wide and never unmapped (Go never returns stack address space either):
//! every runtime in the process shares them, grouped by stack size. Freed slots go on their
//! arena's free list with their pages released; the per-owner [`super::StackPool`] in front of
//! this allocator is what keeps hot stacks resident.
//!
//! All state is under one mutex, [`ALLOCATOR`]. It is taken only when a pool misses or spills,
//! which the pool's cache keeps rare.

use super::{checked_size, classify, page_size, Origin, Stack, StackError};
use std::io;
use std::ptr::{self, NonNull};
use std::sync::{Mutex, MutexGuard};

/// Linux's `MADV_GUARD_INSTALL` (include/uapi/asm-generic/mman-common.h); not yet in libc.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Address space reserved per arena: 8 GiB holds 31,000 stacks of the default size, so a
/// million default stacks take 33 mappings. Reserving is free until pages are touched
/// (`MAP_NORESERVE`); on a kernel that refuses that much, [`reserve`] halves it.
const ARENA_BYTES: usize = 8 << 30;

/// One arena; every field under [`ALLOCATOR`].
struct Arena {
    /// Address of slot 0 (its guard page).
    start: usize,
    /// Usable bytes of each slot's stack.
    stack_size: usize,
    /// Guard plus stack.
    slot_size: usize,
    /// Slots that fit in the reservation.
    slots: u32,
    /// Slots below this index have been handed out at least once (and have their guard).
    next: u32,
    /// Freed slots, all guarded, pages released.
    free: Vec<u32>,
}

/// The process-wide arena list.
struct Synced {
    arenas: Vec<Arena>,
}

static ALLOCATOR: Mutex<Synced> = Mutex::new(Synced { arenas: Vec::new() });

fn lock() -> MutexGuard<'static, Synced> {
    // A panic while holding this lock can only come from an allocation failure in Vec::push;
    // the arena list is still consistent then, so poisoning is ignored.
    ALLOCATOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Identifies a slot for [`free`].
#[derive(Debug)]
pub(super) struct Slot {
    arena: u32,
    index: u32,
}

/// Hands out a guarded slot of exactly `size` usable bytes (already page-rounded and checked).
pub(super) fn allocate(size: usize) -> Result<Stack, StackError> {
    debug_assert_eq!(checked_size(size).ok(), Some(size));
    let mut synced = lock();
    let (arena_idx, index) = find_slot(&mut synced, size)?;
    let arena = &synced.arenas[arena_idx];
    let slot_start = arena.start + index as usize * arena.slot_size;
    let bottom = slot_start + page_size();
    drop(synced);
    // bottom is inside a live mapping, so it is not null.
    let bottom = NonNull::new(bottom as *mut u8)
        .ok_or_else(|| StackError::Os(io::Error::other("arena slot at address zero")))?;
    let slot = Slot {
        arena: arena_idx as u32,
        index,
    };
    Ok(Stack::from_parts(bottom, size, Origin::Arena(slot)))
}

/// Finds a free slot of `size`, reserving a new arena if none has one. `&mut Synced` is proof
/// that the allocator lock is held.
fn find_slot(synced: &mut Synced, size: usize) -> Result<(usize, u32), StackError> {
    // Newest arenas first: they are the ones most likely to have room.
    for (i, arena) in synced.arenas.iter_mut().enumerate().rev() {
        if arena.stack_size != size {
            continue;
        }
        if let Some(index) = arena.free.pop() {
            return Ok((i, index));
        }
        if arena.next < arena.slots {
            let index = arena.next;
            install_guard(arena.start + index as usize * arena.slot_size)?;
            arena.next += 1;
            return Ok((i, index));
        }
    }
    let fresh = reserve(size)?;
    #[cfg(test)]
    if let Some(e) = tests::failing_first_guard(&fresh) {
        return Err(e);
    }
    // Slot 0's guard: a failure here drops `fresh`, which unmaps it.
    install_guard(fresh.start)?;
    synced.arenas.push(fresh.keep());
    Ok((synced.arenas.len() - 1, 0))
}

/// A new arena's reservation, not yet in the list. It owns the mapping from the mmap on and
/// unmaps it when dropped, so that a failure before the arena is listed (its first guard)
/// gives the address space back instead of leaking a reservation on every retry.
struct Reserved {
    start: usize,
    bytes: usize,
    stack_size: usize,
    slot_size: usize,
    slots: u32,
}

impl Reserved {
    /// The arena, with slot 0 handed out: the list owns the mapping from here on (arenas are
    /// never unmapped).
    fn keep(self) -> Arena {
        let arena = Arena {
            start: self.start,
            stack_size: self.stack_size,
            slot_size: self.slot_size,
            slots: self.slots,
            next: 1,
            free: Vec::new(),
        };
        std::mem::forget(self);
        arena
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        // SAFETY: [start, start + bytes) is the mapping `reserve` made; no slot of it was
        // handed out, so nothing uses it. Failure would only leak it.
        unsafe { libc::munmap(self.start as *mut libc::c_void, self.bytes) };
    }
}

/// Reserves a new arena for stacks of `size` bytes.
fn reserve(size: usize) -> Result<Reserved, StackError> {
    let slot_size = size + page_size();
    let mut slots = (ARENA_BYTES / slot_size).max(1);
    loop {
        let bytes = slots * slot_size;
        // SAFETY: a fresh anonymous private mapping at an address of the kernel's choosing
        // overlaps nothing; the result is checked below.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            let fresh = Reserved {
                start: p as usize,
                bytes,
                stack_size: size,
                slot_size,
                slots: u32::try_from(slots).unwrap_or(u32::MAX),
            };
            // Transparent huge pages would turn one touched stack page into 2 MiB of RSS.
            // SAFETY: [p, p + bytes) is the mapping just made. Failure only means THP stays as
            // the system configured it, which costs memory, not correctness.
            unsafe { libc::madvise(p, bytes, libc::MADV_NOHUGEPAGE) };
            return Ok(fresh);
        }
        let err = io::Error::last_os_error();
        if slots == 1 || err.raw_os_error() != Some(libc::ENOMEM) {
            return Err(classify(err, bytes));
        }
        slots /= 2;
    }
}

/// Makes the page at `guard` a guard region.
fn install_guard(guard: usize) -> Result<(), StackError> {
    // SAFETY: `guard` is the first page of a slot inside a live arena mapping, and no stack is
    // using that page (it is never part of a stack's usable range).
    let rc = unsafe { libc::madvise(guard as *mut libc::c_void, page_size(), MADV_GUARD_INSTALL) };
    if rc == 0 {
        Ok(())
    } else {
        Err(classify(io::Error::last_os_error(), page_size()))
    }
}

/// Returns a slot whose pages have been released to its arena's free list.
pub(super) fn free(slot: &Slot) {
    let mut synced = lock();
    match synced.arenas.get_mut(slot.arena as usize) {
        Some(arena) => arena.free.push(slot.index),
        None => crate::sys::fatal("arena::free", "slot names an arena that does not exist"),
    }
}

/// Whether `MADV_GUARD_INSTALL` is accepted *and* effective here. qemu-user and some
/// sandboxes answer success to advice they ignore, so the probe checks that the kernel
/// refuses to read the guarded page (a syscall reading it gets EFAULT) and that the guard
/// survives `MADV_DONTNEED`.
pub(super) fn guard_install_works() -> bool {
    let page = page_size();
    // SAFETY: a fresh two-page anonymous mapping, checked before use and unmapped below.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: [p, p + page) is part of the mapping just made and used by nothing else.
    let installed = unsafe { libc::madvise(p, page, MADV_GUARD_INSTALL) } == 0;
    let works = installed && {
        let before = guard_refuses_reads(p.cast());
        // SAFETY: as above; DONTNEED over our own private mapping only drops contents.
        unsafe { libc::madvise(p, 2 * page, libc::MADV_DONTNEED) };
        // SAFETY: p + page is the second page of the mapping.
        let second = unsafe { p.cast::<u8>().add(page) };
        before && guard_refuses_reads(p.cast()) && !guard_refuses_reads(second)
    };
    // SAFETY: unmapping exactly the mapping made above, which nothing references any more.
    unsafe { libc::munmap(p, 2 * page) };
    works
}

/// Whether the kernel refuses to read one byte at `addr` (write(2) to a pipe gets EFAULT),
/// which is how the probe tells a real guard from ignored advice without faulting.
pub(super) fn guard_refuses_reads(addr: *const u8) -> bool {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid two-int buffer.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    // SAFETY: write(2) validates the buffer itself and reports EFAULT instead of faulting.
    let n = unsafe { libc::write(fds[1], addr.cast(), 1) };
    let refused = n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT);
    // SAFETY: closing the two descriptors pipe2 just gave us.
    unsafe { libc::close(fds[0]) };
    // SAFETY: as above.
    unsafe { libc::close(fds[1]) };
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{guard_mode, GuardMode};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The stack size whose new arenas fail to get their first guard (0: none), and the
    /// ranges reserved for them.
    static FAIL_SIZE: AtomicUsize = AtomicUsize::new(0);
    static FAILED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

    /// `find_slot`'s hook for a new arena: an error instead of its first guard when it is
    /// for the size under test.
    pub(super) fn failing_first_guard(fresh: &Reserved) -> Option<StackError> {
        if fresh.stack_size != FAIL_SIZE.load(Ordering::SeqCst) {
            return None;
        }
        FAILED.lock().unwrap().push((fresh.start, fresh.bytes));
        Some(StackError::Os(io::Error::from_raw_os_error(libc::EINVAL)))
    }

    /// Whether all of `[start, start + bytes)` is mapped: msync reports ENOMEM for a range
    /// with a hole.
    fn mapped(start: usize, bytes: usize) -> bool {
        // SAFETY: MS_ASYNC on any range only checks that it is mapped (there is nothing to
        // write back for anonymous memory); it touches no memory.
        unsafe { libc::msync(start as *mut libc::c_void, bytes, libc::MS_ASYNC) == 0 }
    }

    #[test]
    fn a_new_arena_whose_first_guard_fails_is_unmapped() {
        if guard_mode() != GuardMode::Arena {
            return;
        }
        // A size no other test uses: its arenas are this test's alone.
        let size = 88 * 1024;
        FAIL_SIZE.store(size, Ordering::SeqCst);
        let errors = (0..8).filter(|_| allocate(size).is_err()).count();
        FAIL_SIZE.store(0, Ordering::SeqCst);
        let failed = std::mem::take(&mut *FAILED.lock().unwrap());
        assert_eq!((errors, failed.len()), (8, 8));
        let leaked = failed
            .iter()
            .filter(|&&(start, bytes)| mapped(start, bytes))
            .count();
        assert_eq!(
            leaked, 0,
            "{leaked} of 8 failed arena reservations are still mapped"
        );
        // With the guard working again, the size gets its arena.
        let s = allocate(size).unwrap();
        assert!(guard_refuses_reads(s.guard_range().0 as *const u8));
    }
}
