//! A goroutine's function and result slot, and `JoinHandle`.
//!
//! One allocation per goroutine, a [`Cell`]: a header (state word, vtable, id, the joiner's
//! waiter slot) and the stage (the function until the goroutine runs it, then its result until
//! the handle takes it). The G holds a [`TaskRef`], the handle a [`JoinHandle`]; each owns one
//! reference. No locks: one atomic state word orders everything (as tokio's task state does).
//!
//! # The state word
//!
//! `COMPLETE` (bit 0): the result is in the stage. `JOIN_WAITER` (bit 1): the handle has put a
//! waiter in the slot. `ABANDONED` (bit 2): the goroutine started but will never finish, because
//! its runtime shut down while it was parked or queued (see [`TaskPtr::abandon`]). The rest
//! counts references (`REF_ONE` each).
//!
//! - The stage belongs to the goroutine side until it sets `COMPLETE` (Release), then to the
//!   handle, which reads it after seeing `COMPLETE` (Acquire). An abandoned goroutine never sets
//!   `COMPLETE`, and the handle never reads its stage.
//! - The waiter slot belongs to the handle until it sets `JOIN_WAITER` (Release), then to the
//!   side that *ends* the task, the first to set `COMPLETE` or `ABANDONED`, which takes it after
//!   seeing `JOIN_WAITER` (Acquire) and wakes it. Whoever sets their bit second sees the other's:
//!   if the handle finds the task ended already when it sets `JOIN_WAITER`, nobody has looked at
//!   the slot and nobody will, so the handle takes its waiter back.
//! - The last reference dropped frees the cell (and whatever the stage still holds). The
//!   goroutine side of an abandoned task keeps its reference forever (its frames are never
//!   resumed), so the cell outlives the handle, as the goroutine's stack does.
#![allow(unsafe_code)] // a hand-made task cell shared by raw pointer; see the state word above

use crate::runtime::current_g;
use crate::runtime::g::WaitReason;
use crate::runtime::park::{gopark, Waiter};
use crate::runtime::task_cell as cells;
use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

const COMPLETE: usize = 0b001;
const JOIN_WAITER: usize = 0b010;
const ABANDONED: usize = 0b100;
/// The task has ended, one way or the other: `join` returns without waiting.
const ENDED: usize = COMPLETE | ABANDONED;
const REF_ONE: usize = 0b1000;
const REF_MASK: usize = !(REF_ONE - 1);

/// The type-independent part of a task, first in every [`Cell`].
#[repr(C)]
struct Header {
    /// See the module docs.
    state: AtomicUsize,
    vtable: &'static Vtable,
    id: u64,
    /// The joiner, while it waits; owned as the module docs say.
    waiter: UnsafeCell<Option<Waiter>>,
}

/// The functions that know the cell's types.
struct Vtable {
    /// Runs the function (catching a panic) and stores the result; or, with `cancel`, drops
    /// the function and stores `Cancelled`. Called once, by the goroutine side, before
    /// `COMPLETE`.
    finish: unsafe fn(NonNull<Header>, cancel: bool),
    /// Moves the result out to `dst`, a `*mut Option<Result<T, JoinError>>`. Called by the
    /// handle after `COMPLETE`.
    take_output: unsafe fn(NonNull<Header>, dst: *mut ()),
    /// Frees the cell. Called once, by whoever drops the last reference.
    dealloc: unsafe fn(NonNull<Header>),
}

#[repr(C)]
struct Cell<F, T> {
    header: Header,
    stage: UnsafeCell<Stage<F, T>>,
}

enum Stage<F, T> {
    /// Not run yet.
    Pending(F),
    /// Run (or cancelled); the result waits for the handle.
    Done(Result<T, JoinError>),
    /// In transit, or taken by the handle.
    Empty,
}

impl<F, T> Cell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    const VTABLE: Vtable = Vtable {
        finish: Self::finish,
        take_output: Self::take_output,
        dealloc: Self::dealloc,
    };

    /// # Safety
    ///
    /// `h` is a live `Cell<F, T>`; the caller is the goroutine side, before `COMPLETE`.
    unsafe fn finish(h: NonNull<Header>, cancel: bool) {
        // SAFETY: the goroutine side owns the stage until COMPLETE (module docs); the cell is
        // alive while its TaskRef is.
        let stage = unsafe { h.cast::<Cell<F, T>>().as_ref().stage.get() };
        // SAFETY: as above.
        let Stage::Pending(f) = std::mem::replace(unsafe { &mut *stage }, Stage::Empty) else {
            return;
        };
        // SAFETY: as above; `id` is immutable.
        let id = unsafe { h.as_ref().id };
        let result = if cancel {
            // The function's captures go now, before the handle hears of it.
            drop(f);
            Err(JoinError {
                id,
                repr: Repr::Cancelled,
            })
        } else {
            panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| JoinError {
                id,
                repr: Repr::Panic(payload),
            })
        };
        // SAFETY: as above; the stage is Empty (replaced above), so nothing needs dropping.
        unsafe { stage.write(Stage::Done(result)) };
    }

    /// # Safety
    ///
    /// `h` is a live `Cell<F, T>` with `COMPLETE` seen (Acquire) by the caller, its handle;
    /// `dst` points to an `Option<Result<T, JoinError>>`.
    unsafe fn take_output(h: NonNull<Header>, dst: *mut ()) {
        // SAFETY: after COMPLETE the stage is the handle's (module docs).
        let stage = unsafe { &mut *h.cast::<Cell<F, T>>().as_ref().stage.get() };
        if let Stage::Done(r) = std::mem::replace(stage, Stage::Empty) {
            // SAFETY: the caller's promise on `dst`.
            unsafe { *dst.cast::<Option<Result<T, JoinError>>>() = Some(r) };
        }
    }

    /// # Safety
    ///
    /// `h` is a `Cell<F, T>` from `task`, and the last reference to it has been dropped.
    unsafe fn dealloc(h: NonNull<Header>) {
        let cell = h.cast::<Cell<F, T>>();
        let layout = Layout::new::<Cell<F, T>>();
        // SAFETY: made by `task` (a cached cell when it fits, else an allocation of its own
        // layout); nobody refers to it any more.
        unsafe {
            std::ptr::drop_in_place(cell.as_ptr());
            if cells::fits(layout) {
                cells::free(cell.cast());
            } else {
                std::alloc::dealloc(cell.as_ptr().cast(), layout);
            }
        }
    }
}

/// Drops one reference; frees the cell with the last one.
///
/// # Safety
///
/// `h` is live and the caller owns one reference, which it gives up.
unsafe fn drop_ref(h: NonNull<Header>) {
    // SAFETY: our reference keeps the cell alive until this decrement.
    let header = unsafe { h.as_ref() };
    // AcqRel: our writes happen before the free (Release), and the freeing side sees the
    // other side's writes (Acquire), as Arc does.
    let prev = header.state.fetch_sub(REF_ONE, Ordering::AcqRel);
    if prev & REF_MASK == REF_ONE {
        let dealloc = header.vtable.dealloc;
        // SAFETY: that was the last reference.
        unsafe { dealloc(h) };
    }
}

/// A new task for goroutine `id` running `f`: the goroutine's end and the handle.
pub(crate) fn task<F, T>(id: u64, f: F) -> (TaskRef, JoinHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Small cells (most goroutines) come from the P's cache: see `runtime/cells.rs`.
    let layout = Layout::new::<Cell<F, T>>();
    let mem = if cells::fits(layout) {
        cells::alloc()
    } else {
        // SAFETY: a Cell has a non-zero size (its header).
        let p = unsafe { std::alloc::alloc(layout) };
        NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
    };
    let cell = mem.cast::<Cell<F, T>>();
    // SAFETY: `mem` is fresh memory that fits and aligns a Cell<F, T>.
    unsafe {
        cell.as_ptr().write(Cell {
            header: Header {
                state: AtomicUsize::new(2 * REF_ONE),
                vtable: &Cell::<F, T>::VTABLE,
                id,
                waiter: UnsafeCell::new(None),
            },
            stage: UnsafeCell::new(Stage::<F, T>::Pending(f)),
        })
    };
    let h = cell.cast::<Header>();
    (
        TaskRef(h),
        JoinHandle {
            raw: h,
            _result: PhantomData,
        },
    )
}

/// The goroutine's end of a task: runs it once. Dropping it unrun cancels the task (the
/// handle gets `JoinError::is_cancelled`).
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: the cell's function and result are Send (task's bounds), and the shared parts are
// an atomic and a slot whose owner the state word decides.
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// The task's address, for [`TaskPtr::abandon`]: valid while this TaskRef (or the run it
    /// was consumed by) lasts.
    pub(crate) fn as_ptr(&self) -> TaskPtr {
        TaskPtr(self.0)
    }

    /// Runs the goroutine's function and delivers its result (or panic) to the handle. `ended`
    /// runs once the handle has been told, just before this side lets go of the cell: from
    /// then on, a [`TaskPtr`] to it must not be used.
    pub(crate) fn run(self, ended: impl FnOnce()) {
        self.finish(false, ended);
    }

    /// The goroutine will never run (its runtime shut down first): tells the handle.
    pub(crate) fn cancel(self) {
        self.finish(true, || ());
    }

    fn finish(self, cancel: bool, ended: impl FnOnce()) {
        let h = ManuallyDrop::new(self).0;
        // SAFETY: our reference keeps the cell alive; we are the goroutine side, before
        // COMPLETE (a TaskRef is consumed by its one finish).
        unsafe {
            let header = h.as_ref();
            (header.vtable.finish)(h, cancel);
            // AcqRel: publishes the stage (Release) and takes over the waiter slot if the
            // handle has filled it (Acquire).
            let prev = header.state.fetch_or(COMPLETE, Ordering::AcqRel);
            if prev & (JOIN_WAITER | ABANDONED) == JOIN_WAITER {
                // The handle gave up the slot when it set JOIN_WAITER and waits for this
                // wake; our reference keeps the cell alive meanwhile.
                if let Some(w) = (*header.waiter.get()).take() {
                    w.wake();
                }
            }
            ended();
            drop_ref(h);
        }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        TaskRef(self.0).cancel();
    }
}

/// The address of a running goroutine's task, kept in its G so that teardown can tell the
/// handle when the goroutine is abandoned. Owns nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskPtr(NonNull<Header>);

// SAFETY: only the state word and, under its protocol, the waiter slot are touched through it
// (see `abandon`), both made for cross-thread use.
unsafe impl Send for TaskPtr {}

impl TaskPtr {
    /// Tells the handle that the goroutine started but will never finish (its runtime shut
    /// down while it was parked or queued): a waiting `join` wakes and every `join` returns
    /// [`JoinError::is_cancelled`]. Idempotent.
    ///
    /// # Safety
    ///
    /// The task's goroutine side is still alive (the [`TaskRef`] this came from is running
    /// and its `ended` has not run) and will never run again.
    pub(crate) unsafe fn abandon(self) {
        // SAFETY: the goroutine side's reference keeps the cell alive (the caller's promise).
        let header = unsafe { self.0.as_ref() };
        // AcqRel: takes over the waiter slot if the handle filled it (Acquire), and publishes
        // the end to the handle (Release).
        let prev = header.state.fetch_or(ABANDONED, Ordering::AcqRel);
        if prev & (JOIN_WAITER | ENDED) == JOIN_WAITER {
            // SAFETY: we ended the task first and the handle had given up the slot (module
            // docs); nobody else touches it now.
            if let Some(w) = unsafe { (*header.waiter.get()).take() } {
                w.wake();
            }
        }
    }
}

/// An owned permission to wait for a goroutine and take its result.
///
/// Dropping the handle detaches the goroutine: it runs on, and its result is dropped.
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let h = goexec::spawn(|| 6 * 7);
///     assert_eq!(h.join().unwrap(), 42); // parks this goroutine until the other finishes
/// });
/// ```
pub struct JoinHandle<T> {
    raw: NonNull<Header>,
    _result: PhantomData<T>,
}

// SAFETY: the handle moves a `T: Send` out of the cell; its shared parts are an atomic and a
// slot whose owner the state word decides.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the id and the state word.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    fn header(&self) -> &Header {
        // SAFETY: our reference keeps the cell alive.
        unsafe { self.raw.as_ref() }
    }

    /// The goroutine's id.
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// Whether the goroutine has finished (its result is ready), or will never finish because
    /// its runtime shut down first: either way, [`join`](JoinHandle::join) returns at once.
    pub fn is_finished(&self) -> bool {
        self.header().state.load(Ordering::Acquire) & ENDED != 0
    }

    /// Waits for the goroutine to finish and returns its result. Inside a goroutine this parks
    /// only the goroutine; on a plain thread it blocks the thread.
    ///
    /// # Errors
    ///
    /// [`JoinError`] if the goroutine panicked (the payload is inside), or will never finish
    /// because its runtime shut down first: it never ran, or it was parked or queued when the
    /// runtime's main goroutine returned ([`JoinError::is_cancelled`]).
    pub fn join(self) -> Result<T, JoinError> {
        if !self.is_finished() {
            self.wait();
        }
        self.take_output()
    }

    /// Makes the waiter slot ours again if a poll left a waker in it: clears JOIN_WAITER
    /// unless COMPLETE is set first (then the goroutine side owns the slot, and we must not
    /// touch it). False if the goroutine has completed.
    fn reclaim_slot(&self) -> bool {
        let header = self.header();
        let mut s = header.state.load(Ordering::Acquire);
        loop {
            if s & ENDED != 0 {
                return false;
            }
            if s & JOIN_WAITER == 0 {
                return true;
            }
            match header.state.compare_exchange(
                s,
                s & !JOIN_WAITER,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: JOIN_WAITER is clear and the task had not ended: the ending side
                    // will not look at the slot (it reads JOIN_WAITER as it ends the task).
                    drop(unsafe { (*header.waiter.get()).take() });
                    return true;
                }
                Err(now) => s = now,
            }
        }
    }

    /// The result, once the task's end has been seen (Acquire).
    fn take_output(&self) -> Result<T, JoinError> {
        if self.header().state.load(Ordering::Acquire) & COMPLETE == 0 {
            // Abandoned: the stage is the frozen goroutine's; leave it alone.
            return Err(JoinError {
                id: self.id(),
                repr: Repr::Abandoned,
            });
        }
        let mut out: Option<Result<T, JoinError>> = None;
        // SAFETY: COMPLETE is set and was seen with Acquire by the caller; the cell was made
        // by `task` for this T.
        unsafe {
            let take = self.header().vtable.take_output;
            take(
                self.raw,
                (&mut out as *mut Option<Result<T, JoinError>>).cast(),
            );
        }
        out.unwrap_or_else(|| {
            Err(JoinError {
                id: self.id(),
                repr: Repr::Cancelled,
            })
        })
    }

    /// Blocks until the task ends, with the caller as the registered waiter.
    fn wait(&self) {
        if !self.reclaim_slot() {
            return;
        }
        let header = self.header();
        // SAFETY: JOIN_WAITER is clear (reclaim_slot), so the slot is ours.
        unsafe { *header.waiter.get() = Some(Waiter::current()) };
        // Publishes the waiter (Release); if the task has ended already (Acquire), nobody
        // looks at the slot, and nobody will wake us: do not sleep. The closure writes nothing
        // after the fetch_or: it runs on g0, and from that instant the ending side may ready
        // us, so our stack (its captures) may be in use elsewhere.
        let publish = || header.state.fetch_or(JOIN_WAITER, Ordering::AcqRel) & ENDED == 0;
        let slot_is_ours = if current_g().is_some() {
            // Runs on g0 after our context is saved: a wake can only find us Waiting. We are
            // running again either because the goroutine side had completed (it never looks
            // at the slot) or because it woke us (it took the waiter out first).
            gopark(WaitReason::Join, &mut { publish });
            true
        } else if publish() {
            // A thread may wake spuriously: sleep until the state says so. The end may show
            // before the ending side has taken the waiter: the slot is not ours to touch.
            while !self.is_finished() {
                std::thread::park();
            }
            false
        } else {
            true
        };
        if slot_is_ours {
            // SAFETY: as above: the goroutine side does not touch the slot any more.
            drop(unsafe { (*header.waiter.get()).take() });
        }
        debug_assert!(self.is_finished());
    }
}

/// Awaiting a handle waits for the goroutine without blocking the thread: the task's waker
/// goes in the handle's waiter slot (replacing the one from an earlier poll).
///
/// ```
/// goexec::run(|| {
///     let h = goexec::spawn(|| "done");
///     assert_eq!(goexec::block_on(h).unwrap(), "done");
/// });
/// ```
impl<T> std::future::Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        if !this.reclaim_slot() {
            return std::task::Poll::Ready(this.take_output());
        }
        let header = this.header();
        // SAFETY: JOIN_WAITER is clear (reclaim_slot): the slot is ours.
        unsafe { *header.waiter.get() = Some(Waiter::Task(cx.waker().clone())) };
        // Publishes the waker (Release); if the end came first (Acquire), nobody will look at
        // the slot: take the waker back and finish now.
        if header.state.fetch_or(JOIN_WAITER, Ordering::AcqRel) & ENDED != 0 {
            // SAFETY: as the comment says.
            drop(unsafe { (*header.waiter.get()).take() });
            return std::task::Poll::Ready(this.take_output());
        }
        std::task::Poll::Pending
    }
}

// The handle is a pointer: moving it while pinned is fine.
impl<T> Unpin for JoinHandle<T> {}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: we own one reference and give it up.
        unsafe { drop_ref(self.raw) };
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish()
    }
}

/// Why a goroutine produced no value.
pub struct JoinError {
    id: u64,
    repr: Repr,
}

enum Repr {
    Panic(Box<dyn Any + Send + 'static>),
    /// Never ran: the runtime shut down first.
    Cancelled,
    /// Started, and was parked or queued when the runtime shut down: it will never finish.
    Abandoned,
}

impl JoinError {
    /// Whether the goroutine panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// Whether the goroutine will never produce a value because its runtime stopped: its
    /// runtime's main goroutine returned before it ran, or while it was parked or queued (see
    /// [`is_abandoned`](JoinError::is_abandoned)).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled | Repr::Abandoned)
    }

    /// Whether the goroutine had started and was parked or queued when its runtime stopped:
    /// it was abandoned there, as Go abandons every goroutine when `main` returns. Its stack
    /// and whatever it holds are never freed (its frames may hold borrowed or pinned values).
    pub fn is_abandoned(&self) -> bool {
        matches!(self.repr, Repr::Abandoned)
    }

    /// The goroutine's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The panic payload, to re-raise with `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// If the error is not a panic ([`JoinError::is_panic`]).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.repr {
            Repr::Panic(p) => p,
            Repr::Cancelled | Repr::Abandoned => {
                panic!("JoinError::into_panic: goroutine {} did not panic", self.id)
            }
        }
    }

    /// The panic message, when the payload is a string.
    fn message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            Repr::Cancelled | Repr::Abandoned => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.message()) {
            (Repr::Panic(_), Some(msg)) => write!(f, "goroutine {} panicked: {msg}", self.id),
            (Repr::Panic(_), None) => write!(f, "goroutine {} panicked", self.id),
            (Repr::Cancelled, _) => write!(
                f,
                "goroutine {} never ran: its runtime shut down first",
                self.id
            ),
            (Repr::Abandoned, _) => write!(
                f,
                "goroutine {} will never finish: its runtime shut down while it was waiting",
                self.id
            ),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl std::error::Error for JoinError {}
