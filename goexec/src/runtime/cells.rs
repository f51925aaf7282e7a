//! A per-P cache of task cells: Go's `mcache` idea applied to the one allocation a spawn makes.
//!
//! Every `spawn` allocates a task cell (`task/join.rs`: the function, then the result), and
//! the system allocator is the largest single cost of a spawn once the scheduler's own work
//! is cheap: glibc's `malloc`/`free` took ~450 instructions per spawn+join with 100,000
//! goroutines alive, and its consolidation passes walk every free chunk. Cells of up to
//! [`CELL_LAYOUT`] therefore come from the spawning P's cache, and go back to the cache of
//! whichever P frees them; a full cache moves half to the scheduler's shared list, an empty one
//! refills from it. Larger cells go to the allocator as usual.
//!
//! Every cell, cached or not, is a separate system allocation of [`CELL_LAYOUT`]: any thread
//! may free one to the allocator at any time (a handle dropped on a plain thread, or after its
//! runtime is gone), so a cell never depends on the runtime that made it. A `Runtime` keeps its
//! cached cells between runs, as it keeps its goroutine records, and frees them when dropped:
//! at most its peak number of live goroutines' worth, [`CELL_LAYOUT`] bytes each.
#![allow(unsafe_code)] // raw allocation of fixed-layout cells

use super::m::with_m;
use std::alloc::Layout;
use std::ptr::NonNull;

/// The layout of a cached cell: task cells that fit in it are cached.
pub(crate) const CELL_LAYOUT: Layout = match Layout::from_size_align(128, 16) {
    Ok(l) => l,
    Err(_) => panic!("CELL_LAYOUT"),
};

/// Cells a P keeps before moving half to the shared list.
pub(crate) const CELL_CACHE_MAX: usize = 256;

/// Whether a cell of `layout` is served by the caches.
pub(crate) const fn fits(layout: Layout) -> bool {
    layout.size() <= CELL_LAYOUT.size() && layout.align() <= CELL_LAYOUT.align()
}

/// Free cells, each a system allocation of [`CELL_LAYOUT`]; freed to the allocator on drop.
#[derive(Default)]
pub(crate) struct Cells(Vec<NonNull<u8>>);

// SAFETY: the cells are free memory owned by the list alone; moving the list moves that.
unsafe impl Send for Cells {}

impl Cells {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn pop(&mut self) -> Option<NonNull<u8>> {
        self.0.pop()
    }

    pub(crate) fn push(&mut self, cell: NonNull<u8>) {
        self.0.push(cell);
    }

    /// Moves up to `n` cells from the end of `self` to `to`.
    pub(crate) fn move_to(&mut self, to: &mut Cells, n: usize) {
        let at = self.0.len() - n.min(self.0.len());
        to.0.extend(self.0.drain(at..));
    }

    /// Moves every cell of `other` into `self`.
    pub(crate) fn append(&mut self, other: &mut Cells) {
        self.0.append(&mut other.0);
    }
}

impl Drop for Cells {
    fn drop(&mut self) {
        for cell in self.0.drain(..) {
            // SAFETY: every cell in a list was allocated with CELL_LAYOUT and is free.
            unsafe { std::alloc::dealloc(cell.as_ptr(), CELL_LAYOUT) };
        }
    }
}

/// A cell of [`CELL_LAYOUT`]: from the calling M's P when there is one, else the allocator.
pub(crate) fn alloc() -> NonNull<u8> {
    let cached = with_m(|m| m.with_p(|p| m.sched.cell_get(p)).flatten()).flatten();
    cached.unwrap_or_else(|| {
        // SAFETY: CELL_LAYOUT has a non-zero size.
        let p = unsafe { std::alloc::alloc(CELL_LAYOUT) };
        NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(CELL_LAYOUT))
    })
}

/// Frees a cell from [`alloc`]: to the calling M's P when there is one, else the allocator.
///
/// # Safety
///
/// `cell` came from [`alloc`] and nothing uses it any more.
pub(crate) unsafe fn free(cell: NonNull<u8>) {
    let mut cell = Some(cell);
    with_m(|m| {
        m.with_p(|p| {
            if let Some(c) = cell.take() {
                m.sched.cell_put(p, c);
            }
        })
    });
    if let Some(c) = cell {
        // SAFETY: the caller's promise; every cell is a CELL_LAYOUT allocation.
        unsafe { std::alloc::dealloc(c.as_ptr(), CELL_LAYOUT) };
    }
}
