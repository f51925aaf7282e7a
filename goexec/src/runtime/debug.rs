//! What a debugger needs to find every goroutine (Go: `runtime-gdb.py` reading `allgs`), read
//! by `goexec/gdb/goexec-gdb.py`.
//!
//! A debugger stopped in a goexec program must list goroutines without calling functions in
//! the inferior (it may be a core file, or stopped where a call would deadlock) and without
//! Rust type information (release builds keep only line tables). So the runtime keeps one
//! process-wide `#[no_mangle]` static, `goexec_gdb_info`, in a fixed `repr(C)` layout: byte
//! offsets into the G record (whose own layout is left to the compiler) and two registries it
//! keeps up to date: every running runtime's list of G records (its `allgs`, published as an
//! address and a length beside the list, under the lock that already guards it, whenever it
//! changes: a new G record, a new run, a shutdown), and every running M. Only cold paths touch
//! them: a G record's allocation (records are reused across goroutines), a runtime's start and
//! end, an M thread's start and exit.
//!
//! # Layout of `goexec_gdb_info` (version 2; all little-endian, pointers 8 bytes)
//!
//! | offset | type          | field                                                      |
//! |--------|---------------|------------------------------------------------------------|
//! | 0      | u32           | `version`: 2; a reader refuses others                      |
//! | 4      | u32           | `g_id`: offset of the goroutine id (u64) in a G            |
//! | 8      | u32           | `g_status`: offset of the status (u8; low 7 bits: 0 idle, 1 runnable, 2 running, 3 waiting, 4 dead; bit 7: a traceback holds it) |
//! | 12     | u32           | `g_wait_reason`: offset of the wait reason (u8, an index into `wait_reasons`) |
//! | 16     | u32           | `g_sp`: offset of the saved stack pointer (a G not running) |
//! | 20     | u32           | `g_wait_since`: offset of when the wait began (u64, ns since its runtime started) |
//! | 24     | u32           | `m_entry_size`: size of one M entry (24)                   |
//! | 28     | u32           | `n_wait_reasons`: entries in `wait_reasons`                |
//! | 32     | ptr           | `wait_reasons`: `{ ptr: *const u8, len: usize }` per reason, UTF-8 without NUL |
//! | 40     | ptr           | `trampoline`: resume address of a goroutine not yet started |
//! | 48     | ptr           | `runtimes`: array of addresses of running runtimes' G lists |
//! | 56     | usize         | `nruntimes`                                                |
//! | 64     | ptr           | `allms`: array of M entries                                |
//! | 72     | usize         | `allmlen`                                                  |
//!
//! A runtime's G list is `{ gs: *const *const G, len: usize }`: the addresses of its G records.
//! An M entry is `{ curg: *const *const G, id: u64, tid: u64 }`: the address of the M's
//! `curg` cell (null when it runs no goroutine), its id within its runtime, and its thread's
//! kernel id (`gettid`, the LWP a debugger shows). The saved context a G's `sp` points at is
//! described in `arch/x86_64.rs` and `arch/aarch64.rs`.
//!
//! Each registry lives in a `Vec` under a mutex; after every change the array's address and
//! length are published. A process stopped in the middle of a change may show the list from
//! just before it: a reader checks what it reads.
#![allow(unsafe_code)] // a static with raw pointers, read only by a debugger

use super::g::{self, GRef, WaitReason};
use super::sched::Sched;
use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Bumped whenever the layout above changes.
const VERSION: u32 = 2;

/// Wait reasons a G's byte may hold: every `WaitReason` value is below this.
const N_WAIT_REASONS: usize = 20;

/// A wait reason's name, as `(pointer, length)`.
#[repr(C)]
pub(crate) struct Name {
    ptr: *const u8,
    len: usize,
}

/// One registered M.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct MEntry {
    curg: *const c_void,
    id: u64,
    tid: u64,
}

/// The debugger's entry point; see the module docs for the layout.
#[repr(C)]
pub(crate) struct GdbInfo {
    version: u32,
    g_id: u32,
    g_status: u32,
    g_wait_reason: u32,
    g_sp: u32,
    g_wait_since: u32,
    m_entry_size: u32,
    n_wait_reasons: u32,
    wait_reasons: *const Name,
    trampoline: unsafe extern "C" fn(),
    runtimes: AtomicPtr<usize>,
    nruntimes: AtomicUsize,
    allms: AtomicPtr<MEntry>,
    allmlen: AtomicUsize,
}

// SAFETY: the raw pointers name immutable statics (the names and their table); the published
// lists are atomics.
unsafe impl Sync for GdbInfo {}
// SAFETY: as above: pointers to immutable static strings.
unsafe impl Sync for Name {}
// SAFETY: entries are plain data for the debugger; nothing in the process dereferences them.
unsafe impl Send for MEntry {}

/// Wait reason names by value, from `WaitReason::as_str`.
static WAIT_REASONS: [Name; N_WAIT_REASONS] = {
    let mut t = [const {
        Name {
            ptr: std::ptr::null(),
            len: 0,
        }
    }; N_WAIT_REASONS];
    let mut i = 0;
    while i < N_WAIT_REASONS {
        let s = WaitReason::from_u8(i as u8).as_str();
        t[i] = Name {
            ptr: s.as_ptr(),
            len: s.len(),
        };
        i += 1;
    }
    t
};

/// What `goexec/gdb/goexec-gdb.py` reads.
#[allow(non_upper_case_globals)] // the symbol a debugger looks up
#[no_mangle]
#[used]
pub(crate) static goexec_gdb_info: GdbInfo = GdbInfo {
    version: VERSION,
    g_id: g::DEBUG_OFFSETS.id,
    g_status: g::DEBUG_OFFSETS.status,
    g_wait_reason: g::DEBUG_OFFSETS.wait_reason,
    g_sp: g::DEBUG_OFFSETS.sp,
    g_wait_since: g::DEBUG_OFFSETS.wait_since,
    m_entry_size: size_of::<MEntry>() as u32,
    n_wait_reasons: N_WAIT_REASONS as u32,
    wait_reasons: WAIT_REASONS.as_ptr(),
    trampoline: crate::arch::goexec_trampoline,
    runtimes: AtomicPtr::new(std::ptr::null_mut()),
    nruntimes: AtomicUsize::new(0),
    allms: AtomicPtr::new(std::ptr::null_mut()),
    allmlen: AtomicUsize::new(0),
};

/// Byte offsets of the G fields the debugger reads (`g::DEBUG_OFFSETS`).
pub(crate) struct GOffsets {
    pub(crate) id: u32,
    pub(crate) status: u32,
    pub(crate) wait_reason: u32,
    pub(crate) sp: u32,
    pub(crate) wait_since: u32,
}

// An M entry's `curg` names a `Cell<Option<GRef>>`, which the debugger reads as one pointer
// (null: no goroutine).
const _: () = assert!(size_of::<std::cell::Cell<Option<GRef>>>() == size_of::<usize>());

/// The G lists of the running runtimes: addresses of their [`GsView`]s.
static RUNTIMES: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Every running M.
static ALLMS: Mutex<Vec<MEntry>> = Mutex::new(Vec::new());

/// Publishes `v` as the list at `ptr`/`len`: the length drops to zero first, so that a stop
/// between the two stores sees an empty list rather than a stale buffer with a new length.
fn publish<T>(v: &mut [T], ptr: &AtomicPtr<T>, len: &AtomicUsize) {
    len.store(0, Ordering::Release);
    ptr.store(v.as_mut_ptr(), Ordering::Release);
    len.store(v.len(), Ordering::Release);
}

/// A runtime's G list as the debugger reads it: the buffer and length of its `allgs`,
/// republished by the runtime under the `allgs` lock after every change.
#[repr(C)]
pub(crate) struct GsView {
    gs: AtomicPtr<GRef>,
    len: AtomicUsize,
}

impl GsView {
    pub(crate) const fn new() -> GsView {
        GsView {
            gs: AtomicPtr::new(std::ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    /// Publishes `allgs` (the caller holds its lock). Two stores and a third: no lock.
    pub(crate) fn publish(&self, allgs: &mut [GRef]) {
        publish(allgs, &self.gs, &self.len);
    }
}

// A `GRef` is one pointer to a G (`repr(transparent)`), so `allgs` is an array of them.
const _: () = assert!(size_of::<GRef>() == size_of::<usize>());

/// A running runtime's G list in the registry, for as long as the value lives (it keeps the
/// scheduler, and so the list, alive meanwhile).
pub(crate) struct Listed(Arc<Sched>);

impl Listed {
    pub(crate) fn new(sched: Arc<Sched>) -> Listed {
        let mut rs = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
        rs.push(&sched.alloc.gdb_view as *const GsView as usize);
        publish(
            &mut rs,
            &goexec_gdb_info.runtimes,
            &goexec_gdb_info.nruntimes,
        );
        drop(rs);
        Listed(sched)
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        let addr = &self.0.alloc.gdb_view as *const GsView as usize;
        let mut rs = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = rs.iter().position(|&a| a == addr) {
            rs.swap_remove(i);
        }
        publish(
            &mut rs,
            &goexec_gdb_info.runtimes,
            &goexec_gdb_info.nruntimes,
        );
    }
}

/// An M thread starts running with its `curg` cell at `curg`.
pub(crate) fn add_m(curg: *const c_void, id: usize) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let mut ms = ALLMS.lock().unwrap_or_else(|e| e.into_inner());
    ms.push(MEntry {
        curg,
        id: id as u64,
        tid: tid as u64,
    });
    publish(&mut ms, &goexec_gdb_info.allms, &goexec_gdb_info.allmlen);
}

/// The M whose `curg` cell is at `curg` stops running.
pub(crate) fn remove_m(curg: *const c_void) {
    let mut ms = ALLMS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = ms.iter().position(|m| m.curg == curg) {
        ms.swap_remove(i);
    }
    publish(&mut ms, &goexec_gdb_info.allms, &goexec_gdb_info.allmlen);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_reason_names_match_as_str() {
        for (i, n) in WAIT_REASONS.iter().enumerate() {
            // SAFETY: built from a &'static str in the table's initialiser.
            let s = unsafe { std::slice::from_raw_parts(n.ptr, n.len) };
            assert_eq!(s, WaitReason::from_u8(i as u8).as_str().as_bytes());
        }
        assert_eq!(WaitReason::from_u8(N_WAIT_REASONS as u8), WaitReason::None);
        assert_eq!(goexec_gdb_info.m_entry_size, 24);
    }
}
