//! A goroutine's function and result slot, and `JoinHandle`.
//!
//! One allocation per goroutine, a [`Cell`]: a header (the [`State`]: the state word and the
//! joiner's waiter slot; the vtable; the id) and the stage (the function until the goroutine
//! runs it, then its result until the handle takes it). The G holds a [`TaskRef`], the handle a
//! [`JoinHandle`]; each owns one reference. No locks: the state word orders everything, as
//! `state.rs` says. The goroutine side of an abandoned task (see [`TaskPtr::abandon`]) keeps its
//! reference forever (its frames are never resumed), so the cell outlives the handle, as the
//! goroutine's stack does.
#![allow(unsafe_code)] // a hand-made task cell shared by raw pointer; see `state.rs`

use super::state::State;
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

/// The type-independent part of a task, first in every [`Cell`].
#[repr(C)]
struct Header {
    /// Who owns the stage and the waiter slot, and the references.
    state: State<Waiter>,
    vtable: &'static Vtable,
    id: u64,
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
            panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
                // Under UnhandledPanic::Abort, this is where the process ends.
                crate::runtime::goroutine_panicked();
                JoinError {
                    id,
                    repr: Repr::Panic(Payload(payload)),
                }
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
        // SAFETY: the caller's promise: a live Cell<F, T>.
        let cell = unsafe { h.cast::<Cell<F, T>>().as_ref() };
        // SAFETY: after COMPLETE the stage is the handle's (module docs).
        let stage = unsafe { &mut *cell.stage.get() };
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
        // layout); nobody refers to it any more. (If the result's drop panics, the cell's
        // memory is leaked: see `TaskRef::finish`.)
        unsafe { std::ptr::drop_in_place(cell.as_ptr()) };
        if cells::fits(layout) {
            // SAFETY: as above: a cached cell's memory, given back once.
            unsafe { cells::free(cell.cast()) };
        } else {
            // SAFETY: as above: an allocation of `layout`, freed once.
            unsafe { std::alloc::dealloc(cell.as_ptr().cast(), layout) };
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
    // SAFETY: the caller's reference, given up here.
    if unsafe { header.state.drop_ref() } {
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
                state: State::new(),
                vtable: &Cell::<F, T>::VTABLE,
                id,
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
        let header = unsafe { h.as_ref() };
        // SAFETY: as above: the stage is ours until COMPLETE.
        unsafe { (header.vtable.finish)(h, cancel) };
        // The handle waits for this wake; our reference keeps the cell alive meanwhile.
        // SAFETY: the goroutine side, once (this TaskRef is consumed), the stage written.
        if let Some(w) = unsafe { header.state.complete() } {
            w.wake();
        }
        ended();
        // With the handle gone, the last reference is ours and the result is dropped here, on
        // the goroutine: a panic in that drop is the goroutine's (reported by the panic hook;
        // under UnhandledPanic::Abort it ends the process). std aborts a thread whose result
        // panics on drop; a goroutine's other panics do not end the process, so neither does
        // this one.
        let give_up = || {
            // SAFETY: our reference, given up here.
            unsafe { drop_ref(h) }
        };
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(give_up)) {
            crate::runtime::goroutine_panicked();
            // A payload whose own drop panics is leaked.
            if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
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
        if let Some(w) = header.state.abandon() {
            w.wake();
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
        self.header().state.is_ended()
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

    /// The result, once the task's end has been seen (Acquire).
    fn take_output(&self) -> Result<T, JoinError> {
        if !self.header().state.is_complete() {
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
        let state = &self.header().state;
        // SAFETY: we are the task's handle.
        if !unsafe { state.reclaim_slot() } {
            return;
        }
        // SAFETY: we are the handle, and reclaim_slot said the slot is ours.
        unsafe { state.set_waiter(Waiter::current()) };
        // If the task has ended already, nobody looks at the slot, and nobody will wake us:
        // do not sleep. The closure writes nothing after publishing: it runs on g0, and from
        // that instant the ending side may ready us, so our stack (its captures) may be in use
        // elsewhere.
        // SAFETY: we are the handle, and the slot is ours until this publishes it.
        let publish = || unsafe { state.publish_waiter() };
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
            // SAFETY: as above: the ending side does not touch the slot any more.
            drop(unsafe { state.take_waiter() });
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
        let state = &this.header().state;
        // SAFETY: we are the task's handle.
        if !unsafe { state.reclaim_slot() } {
            return std::task::Poll::Ready(this.take_output());
        }
        // SAFETY: we are the handle, and reclaim_slot said the slot is ours.
        unsafe { state.set_waiter(Waiter::Task(cx.waker().clone())) };
        // If the end came first, nobody will look at the slot: take the waker back and finish
        // now.
        // SAFETY: we are the handle, and the slot is ours until this publishes it.
        if !unsafe { state.publish_waiter() } {
            // SAFETY: publish_waiter said false: the slot is ours again.
            drop(unsafe { state.take_waiter() });
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
///
/// It is `Send` and `Sync`, so `?` turns it into a `Box<dyn Error + Send + Sync>`:
///
/// ```
/// use std::error::Error;
///
/// fn sum_of_squares() -> Result<u64, Box<dyn Error + Send + Sync>> {
///     goexec::run(|| {
///         let handles: Vec<_> = (1..=3u64).map(|i| goexec::spawn(move || i * i)).collect();
///         let mut sum = 0;
///         for h in handles {
///             sum += h.join()?;
///         }
///         Ok(sum)
///     })
/// }
///
/// assert_eq!(sum_of_squares().unwrap(), 14);
/// ```
pub struct JoinError {
    id: u64,
    repr: Repr,
}

enum Repr {
    Panic(Payload),
    /// Never ran: the runtime shut down first.
    Cancelled,
    /// Started, and was parked or queued when the runtime shut down: it will never finish.
    Abandoned,
}

impl JoinError {
    /// Goroutine `id` panicked with `payload` (for scoped goroutines, which catch their own
    /// panics).
    pub(crate) fn panicked(id: u64, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic(Payload(payload)),
        }
    }

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
        self.try_into_panic()
            .unwrap_or_else(|e| panic!("JoinError::into_panic: goroutine {} did not panic", e.id))
    }

    /// The panic payload if the goroutine panicked, or the error itself if it did not.
    ///
    /// # Examples
    ///
    /// ```
    /// goexec::run(|| {
    ///     let err = goexec::spawn(|| panic!("boom")).join().unwrap_err();
    ///     let payload = err.try_into_panic().expect("it panicked");
    ///     assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    /// });
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.0),
            Repr::Cancelled | Repr::Abandoned => Err(self),
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

/// A panic payload that a shared `&JoinError` may hold: `Box<dyn Any + Send>` is not `Sync`,
/// so through `&Payload` only its `Sync` types can be seen (the `&str` and `String` messages),
/// and the box itself leaves only by value.
struct Payload(Box<dyn Any + Send + 'static>);

// SAFETY: a shared `&Payload` reaches the boxed value only through `downcast_ref`, which gives a
// `&T` only for `T: Sync`, safe to share between threads; the `Any::type_id` call it makes is
// std's blanket impl, which does not read the value. Everything else takes the Payload by value.
unsafe impl Sync for Payload {}

impl Payload {
    /// The payload as a `T`, for the `Sync` types only (see the `Sync` impl).
    fn downcast_ref<T: Any + Sync>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}
