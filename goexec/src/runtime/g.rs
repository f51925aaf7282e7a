//! G: a goroutine (Go: `runtime2.go` `g`, `proc.go` `newproc`, `goexit`, `gfput`/`gfget`).
//!
//! A G is a heap record that lives as long as its runtime: when a goroutine finishes, its G goes
//! to a free list and its stack to the P's stack cache. A goroutine of the default stack size
//! is given a stack only when it first runs (Go gives one at `newproc`): a queued goroutine
//! costs its record and its task, not a stack page, and it starts on the stack most recently
//! freed on its P, whose top lines are still in the CPU cache. With 100,000 goroutines
//! spawned before any runs, this is the difference between touching one stack page and
//! 100,000 of them.
//!
//! # Who owns what (by status)
//!
//! | status     | the stack and `ctx` are owned by               | on a queue?             |
//! |------------|------------------------------------------------|-------------------------|
//! | `Idle`     | the free list holding it                       | a free list (`gfree`)   |
//! | `Runnable` | whoever dequeues it (one party: queues hand out each item once) | a run queue or `runnext` |
//! | `Running`  | the M executing it, on that M's thread         | no                      |
//! | `Waiting`  | nobody; `goready` makes it `Runnable`          | a waiter record elsewhere |
//! | `Dead`     | the M that ran it, until `gfput`               | no                      |
//!
//! The fields below say which of these rules protects them. Every status change goes through
//! [`GRef::cas_status`] (which checks the edge is legal) or [`GRef::set_status`] (by the owner).
//!
//! # The switch between g0 and a G
//!
//! An M's scheduler loop runs on the thread's own stack (Go's g0) and `resume`s a G; the G
//! `suspend`s back to it with an [`Action`] for g0 to carry out once the G's context is saved
//! (Go's `mcall`): yield, park (running the unlock closure on g0: Go's `park_m`), or exit. Since
//! g0 acts only after the switch, a `goready` from another M can never resume a G whose context
//! is not yet saved. The one exception to crossing g0 is a yield with another G ready on the P
//! ([`GRef::transfer_to`]): the same rule holds there, since the yielder is queued by the G that
//! takes over, after the switch.
#![allow(unsafe_code)] // G records are shared by raw pointer; access follows the status table.

use super::sched::Sched;
use super::tls;
use crate::arch;
use crate::stack::overflow::RunningStack;
use crate::stack::Stack;
use crate::task::{TaskPtr, TaskRef};
use std::any::Any;
use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe, Location};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// A G's status; see the ownership table in the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum GStatus {
    /// In a free list: no goroutine. Go: `_Gidle`/`_Gdead` in `gFree`.
    Idle = 0,
    /// On a run queue, not running. Go: `_Grunnable`.
    Runnable = 1,
    /// Executing on an M. Go: `_Grunning`.
    Running = 2,
    /// Parked in `gopark`. Go: `_Gwaiting`.
    Waiting = 3,
    /// Finished, not yet back in a free list. Go: `_Gdead`.
    Dead = 4,
}

impl GStatus {
    fn from_u8(v: u8) -> GStatus {
        match v {
            0 => GStatus::Idle,
            1 => GStatus::Runnable,
            2 => GStatus::Running,
            3 => GStatus::Waiting,
            _ => GStatus::Dead,
        }
    }

    /// Whether `self -> to` is a transition the scheduler makes.
    fn can_become(self, to: GStatus) -> bool {
        use GStatus::*;
        matches!(
            (self, to),
            (Idle, Runnable)
                | (Runnable, Running)
                | (Running, Runnable)
                | (Running, Waiting)
                | (Running, Dead)
                | (Waiting, Runnable)
                | (Waiting, Running)
                | (Dead, Idle)
        )
    }
}

/// Why a goroutine is waiting, for `runtime::dump()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WaitReason {
    /// Not waiting.
    None = 0,
    /// In `JoinHandle::join`.
    Join = 1,
    /// A test's own parking primitive.
    #[cfg(test)]
    Test = 2,
    /// In `time::sleep`.
    Sleep = 3,
    /// In `Timer::recv` / `Ticker::recv`.
    TimerRecv = 4,
    /// Running inside a `blocking` section (the G is Running; Go's `_Gsyscall`).
    Syscall = 5,
    /// In a channel send.
    ChanSend = 6,
    /// In a channel receive.
    ChanRecv = 7,
    /// Waiting for a socket to be ready (the netpoller).
    IoWait = 8,
    /// In a `select` with no case ready.
    Select = 9,
    /// In a `select` with no cases at all: blocked forever.
    SelectNoCases = 10,
    /// In `sync::Mutex::lock`.
    SyncMutexLock = 11,
    /// In `sync::RwLock::read`.
    SyncRwLockRead = 12,
    /// In `sync::RwLock::write`.
    SyncRwLockWrite = 13,
    /// In `sync::WaitGroup::wait`.
    SyncWaitGroupWait = 14,
    /// In `sync::Cond::wait`.
    SyncCondWait = 15,
    /// In `sync::Semaphore::acquire`.
    SyncSemacquire = 16,
    /// In `sync::Once::call_once`, while another goroutine runs the function.
    SyncOnce = 17,
    /// In `block_on`, waiting for a future's waker.
    Future = 18,
    /// In `scope`, waiting for the scope's goroutines to finish.
    Scope = 19,
}

impl WaitReason {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            WaitReason::None => "",
            WaitReason::Join => "goroutine join",
            #[cfg(test)]
            WaitReason::Test => "test wait",
            WaitReason::Sleep => "sleep",
            WaitReason::TimerRecv => "timer receive",
            WaitReason::Syscall => "syscall",
            WaitReason::ChanSend => "chan send",
            WaitReason::ChanRecv => "chan receive",
            WaitReason::IoWait => "IO wait",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::SyncMutexLock => "sync.Mutex.Lock",
            WaitReason::SyncRwLockRead => "sync.RWMutex.RLock",
            WaitReason::SyncRwLockWrite => "sync.RWMutex.Lock",
            WaitReason::SyncWaitGroupWait => "sync.WaitGroup.Wait",
            WaitReason::SyncCondWait => "sync.Cond.Wait",
            WaitReason::SyncSemacquire => "semacquire",
            WaitReason::SyncOnce => "sync.Once.Do",
            WaitReason::Future => "future",
            WaitReason::Scope => "scope wait",
        }
    }

    pub(crate) const fn from_u8(v: u8) -> WaitReason {
        match v {
            1 => WaitReason::Join,
            #[cfg(test)]
            2 => WaitReason::Test,
            3 => WaitReason::Sleep,
            4 => WaitReason::TimerRecv,
            5 => WaitReason::Syscall,
            6 => WaitReason::ChanSend,
            7 => WaitReason::ChanRecv,
            8 => WaitReason::IoWait,
            9 => WaitReason::Select,
            10 => WaitReason::SelectNoCases,
            11 => WaitReason::SyncMutexLock,
            12 => WaitReason::SyncRwLockRead,
            13 => WaitReason::SyncRwLockWrite,
            14 => WaitReason::SyncWaitGroupWait,
            15 => WaitReason::SyncCondWait,
            16 => WaitReason::SyncSemacquire,
            17 => WaitReason::SyncOnce,
            18 => WaitReason::Future,
            19 => WaitReason::Scope,
            _ => WaitReason::None,
        }
    }
}

/// What a G asks its M's g0 to do after switching out (Go's `mcall` continuations).
pub(crate) enum Action {
    /// Put me back on the run queue. Go: `gosched_m`.
    Yield,
    /// Mark me waiting, then run this on g0; if it returns false, resume me at once. Go:
    /// `park_m`.
    Park(ParkFn),
    /// I have finished. Go: `goexit0`.
    Exit,
    /// I left a blocking section and found no P: queue me; the M waits for a P. Go:
    /// `exitsyscall0`.
    NoP,
}

/// The unlock closure of a parking G, run on g0 (see [`GRef::park`]).
pub(crate) struct ParkFn(*mut (dyn FnMut() -> bool + 'static));

impl ParkFn {
    /// Runs the closure; true to stay parked.
    pub(crate) fn call(self) -> bool {
        // SAFETY: the closure lives on the parking G's stack, which stays put until the G is
        // resumed; the G is Waiting and nobody can resume it before the closure lets them
        // (the closure's contract, see GRef::park), and this is its only call (by g0, or by
        // the G the parking one switched to, on the same thread).
        unsafe { (*self.0)() }
    }
}

/// Saved context of a G while it is not running. Owned per the status table.
/// Two cells, so that the switch code takes each field's address without a raw deref.
struct Ctx {
    /// The G's saved stack pointer.
    sp: UnsafeCell<*mut u8>,
    /// The parent link: the stack pointer of the g0 that resumed it (written by the arch
    /// resume point on each resume).
    link: UnsafeCell<*mut u8>,
}

/// Where a debugger finds a G's fields (`debug.rs`).
pub(super) const DEBUG_OFFSETS: super::debug::GOffsets = super::debug::GOffsets {
    id: std::mem::offset_of!(G, id) as u32,
    status: std::mem::offset_of!(G, status) as u32,
    wait_reason: std::mem::offset_of!(G, wait_reason) as u32,
    sp: (std::mem::offset_of!(G, ctx) + std::mem::offset_of!(Ctx, sp)) as u32,
    wait_since: std::mem::offset_of!(G, wait_since) as u32,
};

/// A goroutine record. Kept small (`local!` storage and names live elsewhere until used): with
/// 100,000 goroutines queued the records do not fit in any cache, and every line a spawn, run
/// and exit touches is a miss. Field order is left to the compiler: a hand-ordered
/// `repr(C)` layout (hot fields in the first line) and a cache-line-aligned one both measured
/// slower (BENCHMARKS.md).
pub(crate) struct G {
    /// See [`GStatus`]. Acquire/Release: a status change hands the G's stack and context from
    /// one owner to the next (see cas_status).
    status: AtomicU8,
    /// A [`WaitReason`] while Waiting. Relaxed: display only.
    wait_reason: AtomicU8,
    /// Whether the scheduler's name table holds a name for this goroutine, so that unnamed
    /// ones never take its lock. Written by the G's owner; Relaxed: the table's lock orders
    /// the name itself.
    has_name: AtomicBool,
    /// `lock_os_thread` nesting depth; touched only by the G's own code.
    lock_depth: UnsafeCell<u32>,
    /// Locked to its M because it parked or yielded while unwinding (see
    /// [`GRef::follow_unwind`]), apart from the user's `lock_depth`; touched only by the G's
    /// own code.
    unwind_lock: UnsafeCell<bool>,
    /// Goroutine id, set when a goroutine is given this G. Relaxed: read for display only.
    id: AtomicU64,
    /// The next function to run; set by the spawner while the G is Idle (it owns it then),
    /// taken by the G's root frame once running. Owned per the status table.
    entry: UnsafeCell<Option<TaskRef>>,
    /// The task whose function this goroutine is running, while it runs it (set and cleared
    /// by the G's own code in `g_root`), so that teardown can tell its handle if the goroutine
    /// is abandoned. Read only when the G can never run again (see [`GRef::take_abandoned_task`]).
    task: UnsafeCell<Option<TaskPtr>>,
    /// Owned per the status table.
    ctx: Ctx,
    /// The M this G is locked to (`lock_os_thread`), or null. Written by the G's own code on its
    /// M; read by any M that dequeues the G (Acquire/Release).
    locked_m: AtomicPtr<()>,
    /// Where `spawn` was called. Relaxed: display only; always a valid `&'static Location`.
    spawned_at: AtomicPtr<Location<'static>>,
    /// The goroutine that spawned this one (0: none, a plain thread). Relaxed: display only.
    parent: AtomicU64,
    /// Goroutine-local storage (`goexec::local!`), made on first use: touched only by the G's
    /// own code.
    locals: UnsafeCell<Option<Box<Locals>>>,
    /// Owned per the status table.
    stack: UnsafeCell<Option<Stack>>,
    /// The record the overflow handler reads while this G runs; written when the stack is set.
    running_stack: UnsafeCell<RunningStack>,
    /// When the current wait began, in ns since the runtime started. Relaxed: display only.
    wait_since: AtomicU64,
    /// The scheduler this G belongs to. Written only by `alloc` and `adopt`, before any M of
    /// that scheduler runs; read-only while it runs.
    sched: UnsafeCell<Arc<Sched>>,
}

/// A goroutine's `local!` values, by key address.
pub(crate) type Locals = Vec<(usize, Box<dyn Any>)>;

/// Goroutine stacks start this many different 64-byte steps below their top, by goroutine id
/// (at most 1,984 bytes of each stack go unused). Stacks sit in arena slots a whole number of
/// pages apart, so without it every goroutine's hottest frames would land on the same few
/// cache sets, and which goroutines share sets would depend on which stack each one got:
/// measured, yield_many at 2 Ps ran 25-40% slower when stacks were handed out in run order
/// instead of spawn order, until the frames were spread this way.
const STACK_COLORS: usize = 32;

/// Set in a G's status byte beside `Waiting` while a traceback walks its stack (Go's
/// `_Gscan`); see [`GRef::scan_waiting`].
const SCAN: u8 = 0x80;

/// Waits a little, spinning then yielding the thread, while a traceback walks a G's frames
/// (tens of microseconds).
#[cold]
pub(crate) fn wait_for_scan() {
    for _ in 0..64 {
        std::hint::spin_loop();
    }
    std::thread::yield_now();
}

/// A Waiting G held Waiting for a traceback; see [`GRef::scan_waiting`].
pub(crate) struct ScanGuard(GRef);

impl ScanGuard {
    /// The held G's saved stack pointer.
    pub(crate) fn saved_sp(&self) -> *mut u8 {
        // SAFETY: the G is Waiting and held so: its context was saved before it became
        // Waiting (Acquire in scan_waiting), and nobody can resume it (or write ctx) until
        // the guard drops.
        unsafe { *self.0.g().ctx.sp.get() }
    }
}

impl Drop for ScanGuard {
    fn drop(&mut self) {
        // Only the scanner changes the status while the bit is set (every other change is a
        // CAS from a value without it). Release: our reads of the stack are done first.
        self.0
            .g()
            .status
            .store(GStatus::Waiting as u8, Ordering::Release);
    }
}

/// A shared reference to a G, as run queues and waiter records hold it. One pointer: a
/// debugger reads a runtime's `allgs` as an array of G addresses (debug.rs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
pub(crate) struct GRef(NonNull<G>);

// SAFETY: a G is built to be shared across threads: its fields are atomics, a mutex, or
// UnsafeCells whose access follows the status table (exactly one owner at a time, with the
// handover ordered by the status and queue atomics).
unsafe impl Send for GRef {}
// SAFETY: as above.
unsafe impl Sync for GRef {}

impl GRef {
    /// A fresh Idle G of `sched`, without a stack. Lives until the runtime frees it.
    pub(crate) fn alloc(sched: Arc<Sched>) -> GRef {
        let g = Box::new(G {
            status: AtomicU8::new(GStatus::Idle as u8),
            wait_reason: AtomicU8::new(0),
            has_name: AtomicBool::new(false),
            lock_depth: UnsafeCell::new(0),
            unwind_lock: UnsafeCell::new(false),
            id: AtomicU64::new(0),
            entry: UnsafeCell::new(None),
            task: UnsafeCell::new(None),
            ctx: Ctx {
                sp: UnsafeCell::new(ptr::null_mut()),
                link: UnsafeCell::new(ptr::null_mut()),
            },
            locked_m: AtomicPtr::new(ptr::null_mut()),
            spawned_at: AtomicPtr::new(ptr::null_mut()),
            parent: AtomicU64::new(0),
            locals: UnsafeCell::new(None),
            stack: UnsafeCell::new(None),
            running_stack: UnsafeCell::new(RunningStack {
                bottom: 0,
                size: 0,
                id: 0,
            }),
            wait_since: AtomicU64::new(0),
            sched: UnsafeCell::new(sched),
        });
        GRef(NonNull::from(Box::leak(g)))
    }

    fn g(&self) -> &G {
        // SAFETY: a G record is freed only when nothing can name it: a finished one kept by a
        // `Runtime` between runs, when the `Runtime` goes (GCache). The record of a goroutine
        // that never finished is never freed (`Sched::shutdown`), since waiter records and
        // wakers may still name it.
        unsafe { self.0.as_ref() }
    }

    /// The pointer a run queue holds for this G.
    pub(crate) fn as_queue(self) -> NonNull<G> {
        self.0
    }

    /// Back from a run-queue pointer. Run queues only ever hold pointers made by `as_queue`.
    pub(crate) fn from_queue(p: NonNull<G>) -> GRef {
        GRef(p)
    }

    pub(crate) fn sched(&self) -> &Arc<Sched> {
        // SAFETY: written only while no M of any scheduler can reach this G (alloc, adopt);
        // see the field's note.
        unsafe { &*self.g().sched.get() }
    }

    pub(crate) fn id(&self) -> u64 {
        self.g().id.load(Ordering::Relaxed)
    }

    pub(crate) fn status(&self) -> GStatus {
        // Acquire: pairs with the Release of the status change we observe. A traceback's
        // scan bit does not change the status.
        GStatus::from_u8(self.g().status.load(Ordering::Acquire) & !SCAN)
    }

    /// Changes the status from `from` to `to` if it is `from`; false otherwise.
    /// AcqRel: the winner takes over the stack from the previous owner (Acquire) and hands its
    /// own writes on to the next (Release).
    pub(crate) fn cas_status(&self, from: GStatus, to: GStatus) -> bool {
        debug_assert!(
            from.can_become(to),
            "cas_status: illegal {from:?} -> {to:?}"
        );
        self.g()
            .status
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// [`cas_status`](GRef::cas_status) that waits out a traceback's scan bit (Go's
    /// casgstatus waits out `_Gscan` the same way): while a walk holds the G at `from`, waits
    /// for it to end and tries again. Every CAS out of Waiting goes through this, or (on the
    /// `goready` hot path) calls [`is_still`](GRef::is_still) when it fails.
    /// Out of line: its callers are cold paths (a park the unlock refused, the network
    /// poller's batch), and inlined its loop weighs on the hot code around them.
    #[cold]
    #[inline(never)]
    pub(crate) fn cas_status_after_scan(&self, from: GStatus, to: GStatus) -> bool {
        loop {
            if self.cas_status(from, to) {
                return true;
            }
            if !self.is_still(from) {
                return false;
            }
            wait_for_scan();
        }
    }

    /// Whether the G is still at `from` after a CAS from it failed: a traceback holds it there
    /// (its scan bit is set), or held it and has just let go. Decided on the status byte as it
    /// is now, masked, so that a walk ending between the failed CAS and this look is not taken
    /// for another status. Cold: only ever asked after a failed CAS.
    #[cold]
    pub(crate) fn is_still(&self, from: GStatus) -> bool {
        self.g().status.load(Ordering::Relaxed) & !SCAN == from as u8
    }

    /// [`scan_waiting`](GRef::scan_waiting), waiting out another traceback's hold (two
    /// tracebacks at once); None if the G is not Waiting.
    pub(crate) fn scan_waiting_wait(&self) -> Option<ScanGuard> {
        loop {
            if let Some(guard) = self.scan_waiting() {
                return Some(guard);
            }
            // Decided on the byte as it is now: a hold that ended since the CAS means try
            // again at once, not that the G left Waiting.
            match self.g().status.load(Ordering::Relaxed) {
                v if v == GStatus::Waiting as u8 | SCAN => wait_for_scan(),
                v if v == GStatus::Waiting as u8 => {}
                _ => return None,
            }
        }
    }

    /// Holds a Waiting G Waiting (its stack unchanged) until the guard drops, for a traceback
    /// to walk its frames (Go: `suspendG`'s `_Gscan` bit); None if the G is not Waiting. While
    /// it is held, a CAS out of Waiting fails, and every one of them then waits for the walk
    /// to end ([`cas_status_after_scan`](GRef::cas_status_after_scan)): no plain store leaves
    /// Waiting, so nothing can slip past.
    pub(crate) fn scan_waiting(&self) -> Option<ScanGuard> {
        let waiting = GStatus::Waiting as u8;
        // Acquire: the context and frames the parking G saved before it became Waiting.
        self.g()
            .status
            .compare_exchange(
                waiting,
                waiting | SCAN,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()
            .map(|_| ScanGuard(*self))
    }

    /// Sets the status, by its current owner. Release: hands the stack to the next owner.
    pub(crate) fn set_status(&self, to: GStatus) {
        debug_assert!(
            self.status().can_become(to),
            "set_status: illegal {:?} -> {to:?}",
            self.status()
        );
        self.g().status.store(to as u8, Ordering::Release);
    }

    pub(crate) fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.g().wait_reason.load(Ordering::Relaxed))
    }

    /// Marks a Running G as inside a blocking section (or out of it), for `dump`, with since
    /// when.
    pub(crate) fn set_in_syscall(&self, on: bool, now: u64) {
        let r = if on {
            WaitReason::Syscall
        } else {
            WaitReason::None
        };
        self.g().wait_reason.store(r as u8, Ordering::Relaxed);
        self.g().wait_since.store(now, Ordering::Relaxed);
    }

    pub(crate) fn wait_since_ns(&self) -> u64 {
        self.g().wait_since.load(Ordering::Relaxed)
    }

    pub(crate) fn spawned_at(&self) -> Option<&'static Location<'static>> {
        let p = self.g().spawned_at.load(Ordering::Relaxed);
        // SAFETY: only ever set from a `&'static Location` (in prepare).
        unsafe { p.cast_const().as_ref() }
    }

    /// The goroutine that spawned this one, 0 if none did (spawned from a plain thread).
    pub(crate) fn parent(&self) -> u64 {
        self.g().parent.load(Ordering::Relaxed)
    }

    pub(crate) fn name(&self) -> Option<String> {
        if !self.g().has_name.load(Ordering::Relaxed) {
            return None;
        }
        self.sched().name_of(self.id())
    }

    /// Forgets the finished goroutine's name, if it had one. The caller owns the G (Dead).
    pub(crate) fn clear_name(&self) {
        if self.g().has_name.load(Ordering::Relaxed) {
            self.g().has_name.store(false, Ordering::Relaxed);
            self.sched().set_name(self.id(), None);
        }
    }

    pub(crate) fn locked_m(&self) -> *const () {
        // Acquire: pairs with the Release in set_locked_m, by the G's own code on its M.
        self.g().locked_m.load(Ordering::Acquire)
    }

    /// Makes this Idle G ready to run `f` as goroutine `id`. `stack` is a stack of a
    /// non-default size, allocated by the spawner; a goroutine of the default size gets its
    /// stack only when it first runs ([`GRef::bind_stack`]), so that queued goroutines hold no
    /// stack and each new one starts on the most recently freed (cache-warm) stack.
    /// The caller owns the G (it took it from a free list, or just allocated it).
    pub(crate) fn prepare(
        &self,
        id: u64,
        f: TaskRef,
        spawned_at: &'static Location<'static>,
        parent: u64,
        name: Option<String>,
        stack: Option<Stack>,
    ) {
        debug_assert_eq!(self.status(), GStatus::Idle);
        let g = self.g();
        g.id.store(id, Ordering::Relaxed);
        debug_assert!(
            // SAFETY: Idle, and the caller owns it: nobody else touches stack or entry.
            unsafe { (*g.stack.get()).is_none() },
            "prepare: a free G with a stack"
        );
        // SAFETY: as above.
        unsafe { *g.entry.get() = Some(f) };
        if let Some(s) = stack {
            self.bind_stack(s);
        }
        g.spawned_at.store(
            (spawned_at as *const Location<'static>).cast_mut(),
            Ordering::Relaxed,
        );
        g.parent.store(parent, Ordering::Relaxed);
        if name.is_some() {
            self.sched().set_name(id, name);
            g.has_name.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the G has a stack (it has run, or was given a non-default one at spawn).
    /// Only for the G's owner.
    #[inline]
    pub(crate) fn has_stack(&self) -> bool {
        // SAFETY: the caller owns the G (per the status table), so nobody writes `stack`.
        unsafe { (*self.g().stack.get()).is_some() }
    }

    /// Gives the G the stack it will run on, with a fresh root frame at its top. The caller
    /// owns the G (Idle while prepared, or Running before its first resume) and the G has no
    /// stack yet.
    pub(crate) fn bind_stack(&self, s: Stack) {
        let g = self.g();
        // SAFETY: the caller owns the G and it has never run on a stack: nobody reads ctx,
        // stack or running_stack until it is resumed by its owner (so for the writes below).
        unsafe {
            *g.running_stack.get() = RunningStack {
                bottom: s.bottom() as usize,
                size: s.size(),
                id: g.id.load(Ordering::Relaxed),
            }
        };
        s.renew_for_valgrind();
        // Cache colouring: see STACK_COLORS.
        let color = (g.id.load(Ordering::Relaxed) as usize % STACK_COLORS) * 64;
        // SAFETY: the offset stays inside the stack: STACK_COLORS * 64 is far below any
        // stack's size.
        let top = unsafe { s.top().sub(color) };
        // SAFETY: `top` is the fresh stack's, which nothing runs on yet.
        let sp = unsafe { arch::init_stack(top, g_root) };
        // SAFETY: as for running_stack above.
        unsafe { *g.ctx.sp.get() = sp };
        // SAFETY: as for running_stack above.
        let old = unsafe { (*g.stack.get()).replace(s) };
        debug_assert!(old.is_none(), "bind_stack: the G already has a stack");
    }

    /// Takes the G's stack away (a finished goroutine's, or one whose G is being freed): its
    /// root frame is abandoned where it stopped, and will never be resumed. The caller owns
    /// the G (Idle or Dead).
    pub(crate) fn take_stack(&self) -> Option<Stack> {
        // SAFETY: the caller owns the G; a Dead G's root frame holds nothing that needs a
        // destructor (it stopped after its goroutine's values were dropped; see g_root).
        unsafe { (*self.g().stack.get()).take() }
    }

    /// Runs the G on the calling M until a G switches back to g0; returns which G that is
    /// (after direct transfers, not necessarily this one: the M's `curg`) and what it asks for.
    ///
    /// The caller is the M that made it Running (it owns the stack now), on that M's thread,
    /// with `curg` set to it.
    pub(crate) fn execute(&self) -> (GRef, Action) {
        debug_assert_eq!(self.status(), GStatus::Running);
        let g = self.g();
        // Records stay valid while installed (Gs outlive the run).
        let prev = tls::set_running_stack(g.running_stack.get());
        // SAFETY: Running and ours: ctx holds the sp its last suspend (or prepare) left; the
        // stack is allocated.
        let saved = unsafe { *g.ctx.sp.get() };
        // SAFETY: as above; `link` is where the G finds this g0's sp to switch back.
        let (action, sp) = unsafe { arch::resume(saved, g.ctx.link.get(), 0) };
        tls::set_running_stack(prev);
        // Whoever suspended last is the M's curg (transfers keep it up to date); its sp
        // came back in `sp`, and it owns nothing else until g0 acts on its request.
        let back = tls::current_g().unwrap_or(*self);
        // SAFETY: `back` is suspended and owned by this g0 until it acts on the request.
        unsafe { *back.g().ctx.sp.get() = sp };
        // SAFETY: the G handed over a pointer to its ManuallyDrop<Action>, alive until resumed.
        (back, unsafe { ptr::read(action as *const Action) })
    }

    /// Switches the running G out to its g0 with `action`; returns when it is resumed (possibly
    /// on another M). Only the G's own code calls this, on its own stack.
    pub(crate) fn switch_out(&self, action: Action) {
        let action = ManuallyDrop::new(action);
        // SAFETY: we are this G, running: the link holds the stack pointer of the g0 that
        // resumed us (or of the G that transferred to us: the same g0), suspended in execute's
        // resume. `action` lives until g0 read it.
        unsafe { arch::suspend(self.g().ctx.link.get(), ptr::addr_of!(action) as usize) };
        super::sched::resumed();
    }

    /// Switches directly from this G, the running one, to `next` (Runnable, taken off a queue
    /// by the caller and marked Running, with the M's `curg` already set to it), under the
    /// same g0: the yield fast path. Returns when this G is resumed again. This G is not on
    /// any queue until `next` has taken over: `next`'s first act is `sched::resumed`, which
    /// queues this G (see `MLocal::handoff`). Only the G's own code calls this.
    // Inlined into the yield and park fast paths: out of line it cost a yield 10 instructions.
    #[inline]
    pub(crate) fn transfer_to(&self, next: GRef) {
        // SAFETY: we are this G, running under the g0 whose stack pointer is our link; `next`
        // is a suspended G owned by us (taken off a queue) whose ctx holds its saved sp, and
        // its record stays valid while installed. Our own sp goes to our ctx before anyone can
        // find us (we are queued only after the switch).
        let (me, to) = (&self.g().ctx, &next.g().ctx);
        tls::set_running_stack(next.g().running_stack.get());
        // SAFETY: as above: `next` is suspended and ours, so nobody writes its saved sp.
        let to_sp = unsafe { *to.sp.get() };
        // SAFETY: as above.
        unsafe { arch::transfer(me.link.get(), me.sp.get(), to_sp, to.link.get()) };
        super::sched::resumed();
    }

    /// Parks this G, the running one (Go: `gopark`): switches to g0, which marks it Waiting and
    /// then calls `unlock`; if that returns false the G resumes at once, else it sleeps until
    /// `goready`. Only the G's own code calls this.
    ///
    /// `unlock` runs on g0 after the G's context is saved, so whatever it releases (a lock a
    /// waker must take) cannot lead to a resume too early. It must not touch its captures (which
    /// live on this G's stack) after the step that lets another thread ready the G.
    pub(crate) fn park(&self, reason: WaitReason, unlock: &mut dyn FnMut() -> bool) {
        sched_event!(goid = self.id(), reason = reason.as_str(), "park");
        self.g().wait_reason.store(reason as u8, Ordering::Relaxed);
        self.g()
            .wait_since
            .store(self.sched().now_ns(), Ordering::Relaxed);
        let unlock: *mut (dyn FnMut() -> bool + '_) = unlock;
        // SAFETY: only the lifetime bound changes. The closure outlives its one use: g0, or the
        // G we switch to directly, calls it while this frame is suspended (in switch_out or
        // transfer_to), before anything can resume us.
        let unlock: *mut (dyn FnMut() -> bool + 'static) = unsafe { std::mem::transmute(unlock) };
        // Straight to the P's next G when there is one (it runs `unlock` for us), else g0.
        match super::sched::park_next(*self, ParkFn(unlock)) {
            Ok(next) => self.transfer_to(next),
            Err(unlock) => self.switch_out(Action::Park(unlock)),
        }
        self.g()
            .wait_reason
            .store(WaitReason::None as u8, Ordering::Relaxed);
    }

    /// Runs `f` on the stack of this G's g0, below where g0 is suspended (Go: `systemstack`),
    /// and returns its result. The runtime's work on a goroutine's behalf then writes its
    /// frames on the M's stack, which stays in cache, instead of below the goroutine's own
    /// frames, on lines of its stack that a freshly started goroutine has not touched yet.
    /// `spawn` uses it: with 10,000 goroutines alive (chained spawns) it cut the L1 write
    /// misses per spawn from 33 to 22 and the time per link by a tenth, for no measurable
    /// cost elsewhere. The park fast path does not: there it cost ping_pong 5% more
    /// instructions (BENCHMARKS.md, chained_spawn).
    ///
    /// Only the running G's own code calls this, on its own stack; `f` must not switch
    /// contexts (park, yield, exit) and must not panic (a panic aborts: it cannot unwind
    /// across the stack change).
    #[inline]
    pub(crate) fn systemstack<F: FnOnce() -> R, R>(&self, f: F) -> R {
        struct Frame<F, R> {
            f: ManuallyDrop<F>,
            r: std::mem::MaybeUninit<R>,
        }
        unsafe extern "C" fn call<F: FnOnce() -> R, R>(frame: *mut u8) {
            // SAFETY: `frame` is the Frame below, alive on the caller's stack for the call;
            // `f` is taken exactly once.
            let frame = unsafe { &mut *frame.cast::<Frame<F, R>>() };
            // SAFETY: as above.
            let f = unsafe { ManuallyDrop::take(&mut frame.f) };
            // An unwind cannot cross the stack change (nor this extern "C" frame): say what
            // happened instead of the bare abort it would be (callback.rs).
            match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(r) => {
                    frame.r.write(r);
                }
                Err(_) => super::fatal(
                    "systemstack",
                    "a panic on the scheduler's own stack (the message is above)",
                ),
            }
        }
        let mut frame = Frame {
            f: ManuallyDrop::new(f),
            r: std::mem::MaybeUninit::uninit(),
        };
        // SAFETY: we are this G, running: `link` holds the stack pointer at which our g0 is
        // suspended (in execute's resume), and everything below it on that M's stack is free
        // until g0 runs again, which only a switch from us can make happen; `f` makes none.
        // 64 bytes of margin, rounded down to the 16 the ABI wants at a call. `call` writes
        // the result before returning (it cannot unwind: extern "C").
        let g0_sp = unsafe { *self.g().ctx.link.get() } as usize;
        let sp = ((g0_sp - 64) & !15) as *mut u8;
        // SAFETY: as above.
        unsafe { arch::call_on_stack(ptr::addr_of_mut!(frame).cast(), sp, call::<F, R>) };
        // SAFETY: as above: `call` wrote it.
        unsafe { frame.r.assume_init() }
    }

    /// The address range of the stack this G runs on. Only the running G's own code calls this.
    #[cfg(test)]
    pub(crate) fn stack_range(&self) -> std::ops::Range<usize> {
        // SAFETY: the record is written when the stack is bound, before the G first runs,
        // and only read here by the G itself.
        let rs = unsafe { &*self.g().running_stack.get() };
        rs.bottom..rs.bottom + rs.size
    }

    /// Runs `f` on this G's goroutine-local storage. Only the G's own code calls this.
    pub(crate) fn with_locals<R>(&self, f: impl FnOnce(&mut Locals) -> R) -> R {
        // SAFETY: only the running G's own code reaches its locals (through current_g), and
        // never re-entrantly: `local!` takes the value out of the vector while the user's
        // closure runs.
        f(unsafe { &mut *self.g().locals.get() }.get_or_insert_with(Box::default))
    }

    /// Takes one of the goroutine's local values out (to drop it as the goroutine finishes),
    /// with the number still left; None when there is none. Only the G's own code calls this.
    pub(crate) fn pop_local(&self) -> Option<(Box<dyn Any>, usize)> {
        // SAFETY: as in with_locals.
        let locals = unsafe { (*self.g().locals.get()).as_mut()? };
        let (_, v) = locals.pop()?;
        Some((v, locals.len()))
    }

    /// Whether the goroutine has local storage (it used a `local!`). Only the G's own code
    /// calls this.
    #[inline]
    pub(crate) fn has_locals(&self) -> bool {
        // SAFETY: as in with_locals.
        unsafe { (*self.g().locals.get()).is_some() }
    }

    /// Takes the goroutine's local storage away, with whatever is left in it. Only the G's
    /// own code calls this.
    pub(crate) fn take_locals(&self) -> Option<Box<Locals>> {
        // SAFETY: as in with_locals.
        unsafe { (*self.g().locals.get()).take() }
    }

    /// `lock_os_thread` bookkeeping: adds `delta` to the nesting depth, records `m` as the locked
    /// M while the depth is positive (or an unwind holds the G there: `follow_unwind`), and
    /// returns the new depth. Only the G's own code calls it.
    pub(crate) fn adjust_lock(&self, delta: i32, m: *const ()) -> u32 {
        // SAFETY: only the running G's own code touches lock_depth and unwind_lock.
        let depth = unsafe { &mut *self.g().lock_depth.get() };
        // SAFETY: as above.
        let unwinding = unsafe { *self.g().unwind_lock.get() };
        *depth = depth.saturating_add_signed(delta);
        let locked = if *depth > 0 || unwinding {
            m.cast_mut()
        } else {
            ptr::null_mut()
        };
        // Release: pairs with the Acquire in locked_m by Ms dequeuing this G.
        self.g().locked_m.store(locked, Ordering::Release);
        *depth
    }

    /// Keeps std's panic state with the goroutine. std counts panics in progress per thread,
    /// so a goroutine that switches out while unwinding (a destructor that parks) must resume
    /// on the same thread, and no other goroutine may run there until the unwind is over: a
    /// switch with `panicking()` true locks the G to its M as `lock_os_thread` does (the M
    /// runs nothing else), and the first one with it false, or the G's exit, unlocks it. The
    /// user's own lock depth is left alone.
    ///
    /// Called on g0 by the M `m` the G has just switched out of (so `panicking()` reads that
    /// thread's count, which is the G's), before the G can be seen by anyone else: the yield
    /// and park fast paths, which do not cross g0, are not taken while the thread panics or
    /// the G is locked (`sched::take_next`), so every switch that matters comes here and the
    /// fast paths pay one load of std's global panic count.
    pub(crate) fn follow_unwind(&self, m: &super::m::MLocal) {
        let panicking = std::thread::panicking();
        // SAFETY: the G is switched out and owned by this M (per the status table).
        if panicking != unsafe { *self.g().unwind_lock.get() } {
            self.set_unwind_lock(panicking, m);
        }
    }

    #[cold]
    #[inline(never)]
    fn set_unwind_lock(&self, on: bool, m: &super::m::MLocal) {
        // SAFETY: as in follow_unwind.
        unsafe { *self.g().unwind_lock.get() = on };
        self.adjust_lock(0, Arc::as_ptr(&m.shared).cast());
        m.locked_g
            .set((!self.locked_m().is_null()).then_some(*self));
    }

    /// The task of a goroutine that started and will never run again (its runtime shut down
    /// while it was parked or queued), to tell its handle ([`TaskPtr::abandon`]); its record,
    /// stack and task stay allocated for good. None for a goroutine between tasks, or one
    /// already taken.
    ///
    /// # Safety
    ///
    /// The G is Waiting or Runnable, has started (its entry is taken), no M will ever run it
    /// again, and the caller is the only one looking at it this way (teardown, under the
    /// `allgs` lock).
    pub(crate) unsafe fn take_abandoned_task(&self) -> Option<TaskPtr> {
        // SAFETY: the G can never run again (the caller's promise), so `task` is stable: it is
        // its running task (alive: its frames, which hold it, are never resumed) or None.
        unsafe { (*self.g().task.get()).take() }
    }

    /// The function of a goroutine that never started (its runtime shut down first), taken
    /// out to be cancelled; None if the G is not such a goroutine.
    ///
    /// # Safety
    ///
    /// No M will ever run the G (its runtime has shut down), and the caller is the only one
    /// looking at it this way (teardown, under the `allgs` lock).
    pub(crate) unsafe fn take_unstarted(&self) -> Option<TaskRef> {
        if self.status() != GStatus::Runnable {
            return None;
        }
        // SAFETY: Runnable and never to be dequeued by a running M: the entry is ours.
        unsafe { (*self.g().entry.get()).take() }
    }

    /// Makes a G whose goroutine never started (see `take_unstarted`) a free G again, for a
    /// later run; its stack (a non-default size, allocated at spawn) is returned.
    ///
    /// # Safety
    ///
    /// As `take_unstarted`, which has taken its function; no queue names the G any more.
    pub(crate) unsafe fn reset_unstarted(&self) -> Option<Stack> {
        debug_assert_eq!(self.status(), GStatus::Runnable);
        self.clear_name();
        self.g()
            .status
            .store(GStatus::Idle as u8, Ordering::Release);
        self.take_stack()
    }

    /// Frees a finished G record (a `Runtime` dropping the ones it kept between runs).
    ///
    /// # Safety
    ///
    /// The G is Idle, no scheduler holds it, and no other GRef to it is used afterwards.
    unsafe fn free(self) {
        debug_assert_eq!(self.status(), GStatus::Idle);
        // SAFETY: guaranteed by the caller: we are the last user.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// Finished Gs (Idle, without stacks) kept by a `Runtime` between runs, so the next run
/// reuses their records. Frees them when dropped.
#[derive(Default)]
pub(crate) struct GCache(Vec<GRef>);

impl GCache {
    /// Keeps a G the caller owns: finished, and no longer reachable from any scheduler.
    pub(crate) fn push(&mut self, g: GRef) {
        debug_assert_eq!(g.status(), GStatus::Idle);
        debug_assert!(!g.has_stack(), "GCache::push: a G with a stack");
        self.0.push(g);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Hands every G to `sched`, which starts with them in its free list.
    pub(crate) fn adopt_into(mut self, sched: &Arc<Sched>) -> Vec<GRef> {
        let gs = std::mem::take(&mut self.0);
        for g in &gs {
            // SAFETY: the cache owned this G (unreachable from any other scheduler) and the new
            // scheduler has no M yet, so nothing reads `sched` concurrently.
            unsafe { *g.g().sched.get() = sched.clone() };
        }
        gs
    }

    /// Moves the cached Gs of `other` into this one.
    pub(crate) fn append(&mut self, mut other: GCache) {
        self.0.append(&mut other.0);
    }
}

impl Drop for GCache {
    fn drop(&mut self) {
        for g in self.0.drain(..) {
            // SAFETY: cached Gs are owned by the cache alone (see push) and Idle.
            unsafe { g.free() };
        }
    }
}

// SAFETY: the cache owns its Gs exclusively (see push); moving it moves that ownership.
unsafe impl Send for GCache {}

/// The root frame of every G's stack, entered through the arch trampoline (see `bind_stack`:
/// the first resume of a fresh stack passes 0 and the G is found through TLS). Runs the
/// goroutine's function, drops its goroutine-local values, and switches out with `Exit`; it
/// is never resumed after that (the stack goes back to a cache and gets a fresh root frame).
///
/// # Safety
///
/// Only the trampoline calls this, on a stack set up by `bind_stack`.
unsafe extern "C" fn g_root(_arg: usize) -> ! {
    // Every resume point finishes a handoff first; this one too, since a fresh G may have been
    // transferred to.
    super::sched::resumed();
    let Some(g) = tls::current_g() else {
        super::fatal("g_root", "a goroutine stack started outside an M");
    };
    // SAFETY: we are this G, Running: its entry is ours to take.
    let f = unsafe { (*g.g().entry.get()).take() };
    // Goroutine-local values die with the goroutine (their destructors may use TLS or park,
    // so they run here, on the goroutine, not on g0), all of them: the G record is reused.
    let mut in_locals = false;
    let ok = panic::catch_unwind(AssertUnwindSafe(|| {
        if let Some(f) = f {
            // SAFETY: we are this G, Running: `task` is ours to write; teardown reads it only
            // once the G can never run again. Cleared before the task lets go of its cell.
            unsafe { *g.g().task.get() = Some(f.as_ptr()) };
            // SAFETY: as above.
            f.run(|| unsafe { *g.g().task.get() = None });
        }
        in_locals = true;
        // Most goroutines never make one: a load and a branch here, whatever the compiler
        // decides to inline.
        if g.has_locals() {
            super::local::drop_locals(g);
        }
    }));
    if ok.is_err() {
        if in_locals {
            // As a std thread-local's destructor that panics, it ends the process.
            super::fatal(
                "local!",
                &format!(
                    "the destructor of a goroutine-local value of goroutine {} panicked (the \
                     message is above)",
                    g.id()
                ),
            );
        }
        // The task catches its own panics (it delivers them to the JoinHandle): this is the
        // backstop that keeps any unwind from reaching the switch.
        super::fatal("g_root", "a goroutine's panic escaped its own catch");
    }
    // Nothing on this frame needs dropping from here on: g0 may discard the stack as soon as
    // we are switched out. `g` is the heap record, valid on whichever M we ended up on.
    g.switch_out(Action::Exit);
    super::fatal("g_root", "a finished goroutine was resumed");
}
