//! A stackful coroutine on one OS thread: the primitive goroutines are built on.
//!
//! [`Coroutine::resume`] switches from the caller's stack onto the coroutine's and runs it until
//! it calls [`Yielder::suspend`] or its function returns; values travel both ways.
//!
//! # Protocol
//!
//! The resumer calls `arch::resume(sp, link, arg)`, the coroutine `arch::suspend(link, arg)`.
//! `arg` carries a pointer to a `ManuallyDrop<T>` on the *sender's* stack, which the receiver
//! moves out with one `ptr::read` before it switches again. The sender is suspended until then,
//! so the pointer stays valid for exactly as long as it is used, and the value is moved exactly
//! once:
//!
//! - resume sends a `ManuallyDrop<I>`, or null: the order to unwind;
//! - `suspend` sends a `ManuallyDrop<Y>`;
//! - the root frame, finishing, sets `Yielder::finished` and sends a `ManuallyDrop<Finish<R>>`
//!   (returned, panicked or unwound). The flag tells the resumer which of the two it got.
//!
//! No `Option` or enum tag crosses the switch: the value is read back with the same widths it
//! was written with, which avoids store-forwarding stalls (see BENCHMARKS.md for what the
//! wrapper costs on top of the bare switch).
//!
//! The [`Yielder`] lives in the coroutine's root frame, on its own stack, and holds the parent
//! link (where the current resumer's stack pointer is stored on each resume). The `Coroutine`
//! value holds the coroutine's saved stack pointer and a pointer to the Yielder, so the value
//! can move freely between resumes.
//!
//! # Start-up
//!
//! [`Coroutine::new`] resumes the fresh stack once, handing over a `Boot` that carries the
//! closure (and serves as the parent link for that first resume). The root frame moves the
//! closure onto its own stack, builds the `Yielder`, and suspends straight back; the closure
//! first runs on the first `resume`. This keeps the closure off the heap and the `Coroutine` type free of the closure's type.
//!
//! # Panics and drop
//!
//! The root frame runs the closure under `catch_unwind`, so a panic ends the coroutine and
//! comes back from `resume` as [`CoroutineResult::Panic`]; no unwind crosses a switch.
//! Dropping a suspended coroutine resumes it with the order to unwind: `suspend` raises a
//! private payload that unwinds the coroutine's frames, running their destructors, up to the
//! root. Where unwinding is impossible (panic=abort, or the dropping thread is itself
//! panicking) or the coroutine refuses to finish, its stack is leaked instead: its frames may
//! hold pinned values whose memory must never be reused without their destructors having run.
#![allow(unsafe_code)] // switches stacks and passes values through raw pointers; see SAFETY notes.

use crate::arch;
use crate::stack::overflow::{self, RunningStack};
use crate::stack::{Stack, StackError, DEFAULT_STACK_SIZE};
use std::any::Any;
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Coroutine ids share one sequence with goroutine ids, so an overflow message names a unique
/// id. Relaxed: only uniqueness matters, and a fetch_add is atomic whatever its ordering.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What [`Coroutine::resume`] returns.
#[derive(Debug)]
pub enum CoroutineResult<Y, R> {
    /// The coroutine called [`Yielder::suspend`] with this value and can be resumed again.
    Yield(Y),
    /// The coroutine's function returned this value; the coroutine is finished.
    Return(R),
    /// The coroutine's function panicked with this payload; the coroutine is finished.
    Panic(Box<dyn Any + Send + 'static>),
}

/// What the coroutine hands back when it finishes.
enum Finish<R> {
    Return(R),
    Panic(Box<dyn Any + Send + 'static>),
    /// Finished by the forced unwind of Drop.
    Unwound,
}

/// What `switch_in` reports: a yield, or how the coroutine finished.
enum Event<Y, R> {
    Yield(Y),
    Finished(Finish<R>),
}

/// The panic payload of a forced unwind.
struct ForcedUnwind;

/// Handed over by the first resume in `with_stack`; lives on `with_stack`'s stack.
struct Boot<F, I, Y> {
    f: Option<F>,
    /// The stack's record for the overflow handler, copied into the Yielder.
    running: RunningStack,
    /// The parent link of that first resume: `with_stack`'s stack pointer.
    link: *mut u8,
    /// Written by the root frame: where the Yielder lives.
    yielder: *const Yielder<I, Y>,
}

/// The coroutine's side of the switch: passed to its function, used to suspend.
///
/// It cannot leave the coroutine: the function only borrows it, and it is neither `Send` nor
/// `Sync`.
pub struct Yielder<I, Y> {
    /// The parent link: the current resumer's stack pointer, stored by each resume; where
    /// suspend returns to.
    link: Cell<*mut u8>,
    /// Set by the root frame just before its last switch: the message is a `Finish<R>`.
    finished: Cell<bool>,
    /// This stack's record for the overflow handler; here because the Yielder does not move
    /// while the coroutine runs, so the thread's TLS can point at it.
    running: RunningStack,
    _marker: PhantomData<fn(Y) -> I>,
}

impl<I, Y> Yielder<I, Y> {
    /// Suspends the coroutine, making the pending [`Coroutine::resume`] return
    /// `CoroutineResult::Yield(value)`; returns the input of the next `resume`.
    ///
    /// # Examples
    ///
    /// ```
    /// use goexec::runtime::{Coroutine, CoroutineResult};
    ///
    /// // Echoes each input back, doubled.
    /// let mut doubler = Coroutine::<u32, u32, ()>::new(|y, mut n| loop {
    ///     n = y.suspend(n * 2); // back to the resumer until the next resume
    /// })?;
    /// assert!(matches!(doubler.resume(4), CoroutineResult::Yield(8)));
    /// assert!(matches!(doubler.resume(5), CoroutineResult::Yield(10)));
    /// # Ok::<(), goexec::stack::StackError>(())
    /// ```
    pub fn suspend(&self, value: Y) -> I {
        let value = ManuallyDrop::new(value);
        // SAFETY: we are running on the coroutine's stack (only its function can reach this
        // Yielder), entered by a resume that stored its stack pointer in `link` and is
        // suspended inside it. `value` stays alive until the resumer moved it out: we are
        // suspended until the next resume.
        let msg = unsafe { arch::suspend(self.link.as_ptr(), ptr::addr_of!(value) as usize) };
        if msg == 0 {
            panic::resume_unwind(Box::new(ForcedUnwind));
        }
        // SAFETY: whoever resumed us passed a pointer to its ManuallyDrop<I>, alive until it
        // regains control, and moved out only here.
        unsafe { receive::<I>(msg) }
    }
}

/// Moves the value out of the `ManuallyDrop<T>` at `ptr`.
///
/// # Safety
///
/// `ptr` points to a live `ManuallyDrop<T>` whose value nothing else moves out or drops.
#[inline(always)]
unsafe fn receive<T>(ptr: usize) -> T {
    // SAFETY: guaranteed by the caller; ManuallyDrop<T> has T's layout.
    unsafe { ptr::read(ptr as *const T) }
}

/// A stackful coroutine: a function running on its own guarded stack, which can suspend
/// itself and be resumed, passing values both ways.
///
/// `I` is what each [`resume`](Coroutine::resume) passes in, `Y` what each
/// [`suspend`](Yielder::suspend) passes out, `R` the function's result. A coroutine is bound to
/// the thread that created it (it is neither `Send` nor `Sync`): see the crate's Soundness
/// section for why moving a running stack between threads needs the scheduler's care.
///
/// # Examples
///
/// ```
/// use goexec::runtime::{Coroutine, CoroutineResult};
///
/// // Sums what it is given until it is given 0.
/// let mut adder = Coroutine::new(|y, mut n: u32| {
///     let mut sum = 0;
///     while n != 0 {
///         sum += n;
///         n = y.suspend(sum); // switches back to the resumer
///     }
///     sum
/// })?;
/// assert!(matches!(adder.resume(2), CoroutineResult::Yield(2)));
/// assert!(matches!(adder.resume(3), CoroutineResult::Yield(5)));
/// assert!(matches!(adder.resume(0), CoroutineResult::Return(5)));
/// assert!(adder.is_finished());
/// # Ok::<(), goexec::stack::StackError>(())
/// ```
pub struct Coroutine<I, Y, R> {
    /// Its stack; `ManuallyDrop` because Drop decides between freeing and leaking it.
    stack: ManuallyDrop<Stack>,
    /// The coroutine's saved stack pointer, as its last suspend left it.
    sp: *mut u8,
    /// The Yielder in the root frame on `stack`; valid until the coroutine finishes.
    yielder: *const Yielder<I, Y>,
    finished: bool,
    id: u64,
    /// Not Send or Sync: the raw pointer above already ensures it; this records the types.
    _marker: PhantomData<fn(I) -> (Y, R)>,
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// A coroutine running `f` on a fresh stack of [`DEFAULT_STACK_SIZE`] bytes. `f` first
    /// runs on the first [`resume`](Coroutine::resume), which passes its second argument.
    ///
    /// # Errors
    ///
    /// As [`Stack::new`], when no stack can be had.
    pub fn new<F>(f: F) -> Result<Self, StackError>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Ok(Coroutine::with_stack(Stack::new(DEFAULT_STACK_SIZE)?, f))
    }

    /// Like [`Coroutine::new`], on a stack of `size` bytes.
    ///
    /// # Errors
    ///
    /// As [`Stack::new`].
    pub fn with_stack_size<F>(size: usize, f: F) -> Result<Self, StackError>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Ok(Coroutine::with_stack(Stack::new(size)?, f))
    }

    /// Like [`Coroutine::new`], on a stack the caller provides (one kept from an earlier
    /// coroutine, say). [`into_stack`](Coroutine::into_stack) gives it back once the coroutine
    /// has finished.
    ///
    /// # Panics
    ///
    /// If the calling thread cannot get an alternate signal stack for the overflow handler
    /// (the kernel refused a 64 KiB mapping).
    pub fn with_stack<F>(stack: Stack, f: F) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        if let Err(e) = overflow::init_thread() {
            panic!("goexec: cannot set up stack-overflow detection on this thread: {e}");
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut boot = Boot::<F, I, Y> {
            f: Some(f),
            running: RunningStack {
                bottom: stack.bottom() as usize,
                size: stack.size(),
                id,
            },
            link: ptr::null_mut(),
            yielder: ptr::null(),
        };
        // SAFETY: the stack is ours and unused, and root::<F, I, Y, R> never returns.
        let sp = unsafe { arch::init_stack(stack.top(), root::<F, I, Y, R>) };
        // SAFETY: `sp` was just made by init_stack. The root frame takes the closure out of
        // `boot`, records the Yielder's address in it and suspends straight back here (through
        // boot.link), so `boot` outlives every use.
        let (_, sp) = unsafe {
            arch::resume(
                sp,
                ptr::addr_of_mut!(boot.link),
                ptr::addr_of_mut!(boot) as usize,
            )
        };
        Coroutine {
            stack: ManuallyDrop::new(stack),
            sp,
            yielder: boot.yielder,
            finished: false,
            id,
            _marker: PhantomData,
        }
    }

    /// Runs the coroutine until it suspends or finishes, passing `input` in (as the function's
    /// second argument the first time, as `suspend`'s result after that).
    ///
    /// # Panics
    ///
    /// If the coroutine has already finished. A panic *inside* the coroutine does not
    /// propagate: it comes back as [`CoroutineResult::Panic`].
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        assert!(
            !self.finished,
            "Coroutine::resume: the coroutine has already finished"
        );
        match self.switch_in(Some(input)) {
            Event::Yield(y) => CoroutineResult::Yield(y),
            Event::Finished(Finish::Return(r)) => CoroutineResult::Return(r),
            Event::Finished(Finish::Panic(p)) => CoroutineResult::Panic(p),
            Event::Finished(Finish::Unwound) => {
                super::fatal("Coroutine::resume", "unwound without being told to")
            }
        }
    }

    /// Whether the function has returned or panicked.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// This coroutine's id, unique in the process and shared with goroutine ids; the stack
    /// overflow message names it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The stack back, for reuse, once the coroutine has finished; `None` while it has not
    /// (the coroutine is then dropped as usual).
    pub fn into_stack(self) -> Option<Stack> {
        if !self.finished {
            return None;
        }
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the stack is moved out exactly once.
        Some(unsafe { ManuallyDrop::take(&mut this.stack) })
    }

    /// Switches onto the coroutine with `input` (`None`: the order to unwind) and returns what
    /// it hands back.
    #[inline(always)]
    fn switch_in(&mut self, input: Option<I>) -> Event<Y, R> {
        let input = input.map(ManuallyDrop::new);
        let msg = match &input {
            Some(v) => ptr::addr_of!(*v) as usize,
            None => 0,
        };
        // SAFETY: not finished, so the Yielder (and its record) is alive on the coroutine's
        // stack; the record stays installed only until the resume below returns.
        let prev = crate::runtime::tls::set_running_stack(unsafe { &(*self.yielder).running });
        // SAFETY: not finished, so the Yielder is alive on the coroutine's stack (its root
        // frame never returns) and `sp` is the stack pointer its last suspend left (the
        // coroutine is bound to this thread, which is the one that suspended it). `msg` lives
        // until the coroutine takes it, before it suspends again.
        let y = unsafe { &*self.yielder };
        // SAFETY: as above.
        let (reply, sp) = unsafe { arch::resume(self.sp, y.link.as_ptr(), msg) };
        self.sp = sp;
        let finished = y.finished.get();
        crate::runtime::tls::set_running_stack(prev);
        if finished {
            self.finished = true;
            // SAFETY: a finishing root frame sent a pointer to its ManuallyDrop<Finish<R>>,
            // alive because that frame is never resumed.
            Event::Finished(unsafe { receive::<Finish<R>>(reply) })
        } else {
            // SAFETY: suspend sent a pointer to its ManuallyDrop<Y>, alive until it is resumed.
            Event::Yield(unsafe { receive::<Y>(reply) })
        }
    }
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    fn drop(&mut self) {
        if !self.finished {
            let can_unwind = cfg!(panic = "unwind") && !std::thread::panicking();
            let unwound = can_unwind
                && match self.switch_in(None) {
                    Event::Finished(_) => true,
                    // It caught the unwind and suspended again: its frames are still live.
                    Event::Yield(_) => false,
                };
            if !unwound {
                // Leak: live frames (possibly pinned values) remain on the stack.
                return;
            }
        }
        // SAFETY: the coroutine has finished; nothing runs on or points into the stack, and
        // this is the only place the stack is dropped.
        unsafe { ManuallyDrop::drop(&mut self.stack) };
    }
}

impl<I, Y, R> std::fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.id)
            .field("stack_size", &self.stack.size())
            .field("finished", &self.finished)
            .finish()
    }
}

impl<I, Y> std::fmt::Debug for Yielder<I, Y> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Yielder")
            .field("coroutine", &self.running.id)
            .finish_non_exhaustive()
    }
}

/// The root frame of every coroutine, entered through the arch trampoline with a `Boot`.
///
/// # Safety
///
/// Only ever called by the trampoline, with `arg` pointing at the `Boot<F, I, Y>` of the
/// `with_stack` call that switched here.
unsafe extern "C" fn root<F, I, Y, R>(arg: usize) -> !
where
    F: FnOnce(&Yielder<I, Y>, I) -> R,
{
    // SAFETY: guaranteed by the caller; `with_stack` is suspended in its switch until we switch
    // back below, so `boot` is valid until then.
    let (f, yielder) = unsafe {
        let boot = &mut *(arg as *mut Boot<F, I, Y>);
        let f = boot.f.take();
        let yielder = Yielder::<I, Y> {
            link: Cell::new(boot.link),
            finished: Cell::new(false),
            running: boot.running,
            _marker: PhantomData,
        };
        (f, yielder)
    };
    let y = &yielder;
    // Tell `with_stack` where the Yielder lives (it does not move: this frame never returns),
    // then wait for the first resume.
    // SAFETY: as above, `boot` is still valid.
    unsafe { (*(arg as *mut Boot<F, I, Y>)).yielder = y };
    // SAFETY: the link holds with_stack's stack pointer, stored by the trampoline on its
    // resume; with_stack is suspended inside that resume.
    let msg = unsafe { arch::suspend(y.link.as_ptr(), 0) };
    let finish = if msg != 0 {
        // SAFETY: resumed by switch_in, which passed its live ManuallyDrop<I>.
        let input = unsafe { receive::<I>(msg) };
        match f {
            Some(f) => match panic::catch_unwind(AssertUnwindSafe(|| f(y, input))) {
                Ok(r) => Finish::Return(r),
                Err(p) if p.is::<ForcedUnwind>() => Finish::Unwound,
                Err(p) => Finish::Panic(p),
            },
            None => super::fatal("switch::root", "started without a function"),
        }
    } else {
        // Dropped before it ever ran: drop the closure (its destructor may panic; that panic
        // is as harmless to us as the forced unwind) and finish.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(f)));
        Finish::Unwound
    };
    let event = ManuallyDrop::new(finish);
    y.finished.set(true);
    // SAFETY: the link holds the stack pointer of the resume that is waiting for this event;
    // the event stays alive because this frame is never resumed.
    unsafe { arch::suspend(y.link.as_ptr(), ptr::addr_of!(event) as usize) };
    super::fatal("switch::root", "a finished coroutine was resumed")
}

#[cfg(test)]
mod tests;
