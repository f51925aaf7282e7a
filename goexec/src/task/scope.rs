//! Scoped goroutines: [`scope`], whose goroutines may borrow the caller's data (the shape of
//! `std::thread::scope`).
//!
//! Why lending `'env` borrows to goroutines is sound, and the panic rules, are in
//! [`scope`]'s docs. The mechanism: [`Scope::spawn`] erases the lifetime of the goroutine's
//! closure (as std does for a scoped thread) and wraps it in a `Body`, which counts itself in
//! the scope until it is dropped, after the closure's captures and its reference to the
//! result slot (`Packet`); `scope` waits, inside itself, for the count to reach zero.
#![allow(unsafe_code)] // the lifetime of a scoped goroutine's closure is erased: see above

use super::join::{JoinError, JoinHandle};
use crate::runtime::current_g;
use crate::runtime::g::WaitReason;
use crate::runtime::waitq::WaitQueue;
use crate::runtime::SpawnError;
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the scope and its goroutines share.
#[derive(Default)]
struct ScopeData {
    st: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Goroutines spawned and not yet finished (closure and result reference dropped).
    running: usize,
    /// Panics produced and not (yet) taken by a `join`.
    unjoined_panics: usize,
    /// The payload of the first panic found with nobody to join it, to re-raise.
    first_panic: Option<Box<dyn Any + Send + 'static>>,
    /// The scope's caller, waiting for `running` to reach zero.
    waiters: WaitQueue<(), ()>,
}

impl ScopeData {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics under this lock; a poisoned one is still consistent.
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A goroutine is finished with everything of `'scope`: the scope may return once the
    /// count is zero.
    fn finished(&self) {
        let mut st = self.state();
        st.running -= 1;
        if st.running == 0 && !st.waiters.is_empty() {
            let waiters = st.waiters.drain();
            drop(st);
            waiters.wake_all(());
        }
    }

    /// Parks the caller until every goroutine of the scope has finished.
    fn wait_all(&self) {
        let st = self.state();
        if st.running == 0 {
            return;
        }
        WaitQueue::park(st, |st| &mut st.waiters, (), WaitReason::Scope);
    }

    /// Keeps `payload`, a panic nobody will join, to re-raise if it is the first.
    fn unhandled(&self, payload: Box<dyn Any + Send + 'static>) {
        let mut st = self.state();
        if st.first_panic.is_none() {
            st.first_panic = Some(payload);
            return;
        }
        drop(st);
        // Dropped outside the lock: a payload's drop is user code, which may panic too; such
        // a payload is leaked (std aborts there), so that the scope's count is still given
        // back.
        if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

/// A scope to spawn goroutines in; see [`scope`].
///
/// `&Scope` is `Send` and `Sync`: scoped goroutines may spawn more goroutines into the same
/// scope.
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    /// Invariance over `'scope`, so that the scope cannot shrink to a shorter lifetime (as
    /// std's `Scope`).
    scope: PhantomData<&'scope mut &'scope ()>,
    /// Invariance over `'env`, so that the scope cannot grow to a longer lifetime.
    env: PhantomData<&'env mut &'env ()>,
}

/// An owned permission to join a scoped goroutine: [`JoinHandle`]'s counterpart for
/// [`Scope::spawn`]. Dropping it does not detach the goroutine from its scope: [`scope`]
/// still waits for it, and re-raises its panic.
///
/// `join` returns `Result<T, JoinError>`, as [`JoinHandle::join`] does, rather than std's
/// `thread::Result<T>`: the error names the goroutine, `?` turns it into a boxed error, and it
/// also says when the goroutine's runtime shut down before it ran (seen only by a scoped
/// goroutine that keeps running past its runtime's end, joining a sibling that never ran).
pub struct ScopedJoinHandle<'scope, T> {
    inner: JoinHandle<()>,
    packet: Arc<Packet<'scope, T>>,
}

/// Where a scoped goroutine's result waits for its handle.
struct Packet<'scope, T> {
    scope: Arc<ScopeData>,
    result: Mutex<Option<Result<T, JoinError>>>,
    _scope: PhantomData<&'scope ScopeData>,
}

impl<T> Packet<'_, T> {
    fn take(&self) -> Option<Result<T, JoinError>> {
        self.result.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        let result = self
            .result
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // A panic nobody joined goes to the scope, which re-raises it; a value is dropped.
        match result.map(|r| r.map_err(JoinError::try_into_panic)) {
            Some(Err(Ok(payload))) => self.scope.unhandled(payload),
            other => drop(other),
        }
    }
}

/// The goroutine's end of a scoped goroutine: runs the closure, stores the result, and only
/// when dropped (run or not) gives back its count in the scope, after the closure and the
/// packet reference.
struct Body<'scope, F, T> {
    f: Option<F>,
    packet: Option<Arc<Packet<'scope, T>>>,
    scope: Arc<ScopeData>,
}

impl<F, T> Body<'_, F, T>
where
    F: FnOnce() -> T,
{
    fn run(mut self) {
        let Some(f) = self.f.take() else { return };
        let result = panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
            // Under UnhandledPanic::Abort the process ends here, as for any goroutine.
            crate::runtime::goroutine_panicked();
            self.scope.state().unjoined_panics += 1;
            JoinError::panicked(crate::runtime::goid(), payload)
        });
        if let Some(packet) = &self.packet {
            *packet.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
        // Dropping self finishes: see Drop.
    }
}

impl<F, T> Drop for Body<'_, F, T> {
    fn drop(&mut self) {
        // The closure (if it never ran) and our packet reference (the result, if the handle is
        // gone) are user values whose drop may panic: that must not skip the count below (the
        // scope would wait forever). Such a panic is one nobody joins.
        let (f, packet) = (self.f.take(), self.packet.take());
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || {
            drop(f);
            drop(packet);
        })) {
            // A goroutine's panic like any other: under UnhandledPanic::Abort it ends the
            // process here.
            crate::runtime::goroutine_panicked();
            let mut st = self.scope.state();
            st.unjoined_panics += 1;
            drop(st);
            self.scope.unhandled(payload);
        }
        // Nothing of 'scope is left in this goroutine: the scope may return.
        self.scope.finished();
    }
}

/// Runs `f` with a [`Scope`] in which goroutines may borrow non-`'static` data, and returns
/// `f`'s value once every goroutine spawned in the scope has finished. The shape of
/// [`std::thread::scope`], for goroutines.
///
/// The calling goroutine parks (only it, not its thread) until then, whether the goroutines
/// were joined or not, and even if `f` panicked. The scope's goroutines run on the caller's
/// runtime.
///
/// # Why borrowing is sound here
///
/// A goroutine spawned by [`Scope::spawn`] runs a closure that may hold `'env` borrows, which
/// the runtime's goroutine machinery only takes as `'static`: the closure's lifetime is erased
/// (as std erases a scoped thread's). That is sound because `scope` itself, not a guard
/// object, waits: it does not return (nor unwind) until every goroutine spawned in it has
/// finished and dropped its closure and its end of the result slot, and nothing the user holds
/// can skip that wait: there is no value to `mem::forget`, unlike a future, which can be
/// forgotten half-way through and whose borrows would then dangle. This is why goexec offers
/// no scope for async tasks ([`spawn_future`](crate::spawn_future)).
///
/// A goroutine's stack never moves and is never freed while it runs, so the caller's frame
/// (where `'env` data often lives) stays put while the scope waits. If the runtime shuts down
/// while a scope waits (in a goroutine other than the main one, when `main` returns), that
/// goroutine is abandoned, as Go abandons every goroutine: its stack is never freed and
/// `scope` never returns, so the borrows stay valid; the scope's goroutines are abandoned
/// too, or, if they never ran, their closures are dropped.
///
/// # Panics
///
/// - If called outside a goroutine, as [`spawn`](crate::spawn) does (the message says how to
///   start a runtime); `f` does not run.
/// - If `f` panicked: its panic, re-raised after the wait.
/// - Otherwise, if a goroutine of the scope panicked and nobody took the panic through
///   [`ScopedJoinHandle::join`]: the first such panic's payload, re-raised after the wait
///   (with `resume_unwind`; the panic was reported when it happened, and under
///   [`UnhandledPanic::Abort`](crate::runtime::UnhandledPanic::Abort) it ended the process
///   then, as any goroutine's panic does, including one in the drop of a result nobody
///   joined).
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let mut data = vec![1, 2, 3];
///     let mut total = 0;
///     goexec::scope(|s| {
///         s.spawn(|| println!("data is {data:?}")); // borrows `data`
///         let sum = s.spawn(|| data.iter().sum::<i32>());
///         total = sum.join().unwrap();
///     });
///     // Every goroutine has finished: `data` may be mutated again.
///     data.push(4);
///     assert_eq!((total, data.len()), (6, 4));
/// });
/// ```
///
/// Disjoint mutable chunks, one goroutine each:
///
/// ```
/// goexec::run(|| {
///     let mut v: Vec<u64> = (0..1000).collect();
///     goexec::scope(|s| {
///         for chunk in v.chunks_mut(100) {
///             s.spawn(move || chunk.iter_mut().for_each(|x| *x *= 2));
///         }
///     });
///     assert_eq!(v.iter().sum::<u64>(), 999_000);
/// });
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    if current_g().is_none() {
        panic!(
            "goexec: scope called outside a goexec runtime: its goroutines need one; start \
             one with goexec::run(|| ...) or #[goexec::main], and call scope from its goroutines"
        );
    }
    let scope = Scope {
        data: Arc::new(ScopeData::default()),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // The wait that makes the borrows sound: no goroutine of the scope holds anything of
    // 'scope once it returns.
    scope.data.wait_all();
    let v = match result {
        Ok(v) => v,
        Err(payload) => panic::resume_unwind(payload),
    };
    let mut st = scope.data.state();
    if st.unjoined_panics > 0 {
        // A panic whose handle was leaked (`mem::forget`) has no payload here.
        let payload = st.first_panic.take();
        drop(st);
        match payload {
            Some(p) => panic::resume_unwind(p),
            None => panic!("goexec::scope: a scoped goroutine panicked and nobody joined it"),
        }
    }
    v
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Starts `f` in a new goroutine of the scope; `f` may borrow anything that outlives the
    /// scope (`'env`), and the scope itself, to spawn more. [`scope`] waits for it whether
    /// or not it is joined.
    ///
    /// # Panics
    ///
    /// If called outside a goroutine (from a plain thread that borrowed the scope), as
    /// [`spawn`](crate::spawn) does; [`Builder::spawn_scoped`](crate::Builder::spawn_scoped)
    /// returns this as an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// goexec::run(|| {
    ///     let hits = AtomicUsize::new(0);
    ///     goexec::scope(|s| {
    ///         for _ in 0..10 {
    ///             // A scoped goroutine spawning another into the same scope.
    ///             s.spawn(|| {
    ///                 s.spawn(|| hits.fetch_add(1, Ordering::Relaxed));
    ///             });
    ///         }
    ///     });
    ///     assert_eq!(hits.load(Ordering::Relaxed), 10);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        match spawn_scoped(self, f, Location::caller(), None, None) {
            Ok(h) => h,
            Err(e) => panic!("goexec: {e}"),
        }
    }
}

/// Starts `f` in a goroutine of scope `s` (for [`Scope::spawn`] and
/// [`Builder::spawn_scoped`](crate::Builder::spawn_scoped)).
pub(crate) fn spawn_scoped<'scope, F, T>(
    s: &'scope Scope<'scope, '_>,
    f: F,
    at: &'static Location<'static>,
    name: Option<String>,
    stack_size: Option<usize>,
) -> Result<ScopedJoinHandle<'scope, T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    let packet = Arc::new(Packet {
        scope: Arc::clone(&s.data),
        result: Mutex::new(None),
        _scope: PhantomData,
    });
    // Counted before the goroutine exists; the Body gives it back when dropped, run or not
    // (a failed spawn drops it too).
    s.data.state().running += 1;
    let body = Body {
        f: Some(f),
        packet: Some(Arc::clone(&packet)),
        scope: Arc::clone(&s.data),
    };
    let main: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || body.run());
    // SAFETY: only the lifetime changes (same layout, same vtable). The closure's borrows
    // live for 'scope, and `scope` does not return until every Body has been dropped, after
    // the closure's captures and its packet reference (Body's Drop): nothing of 'scope is
    // used after the borrow ends, though the goroutine machinery takes the closure as
    // 'static.
    let main = unsafe {
        std::mem::transmute::<Box<dyn FnOnce() + Send + 'scope>, Box<dyn FnOnce() + Send + 'static>>(
            main,
        )
    };
    let inner = crate::runtime::spawn_with(main, at, name, stack_size)?;
    Ok(ScopedJoinHandle { inner, packet })
}

impl<T> ScopedJoinHandle<'_, T> {
    /// The goroutine's id.
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    /// Whether the goroutine has finished (its result is ready), or will never run (its
    /// runtime shut down first): either way, [`join`](ScopedJoinHandle::join) returns at
    /// once.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// Waits for the goroutine to finish and returns its result. Inside a goroutine this parks
    /// only the goroutine; on a plain thread it blocks the thread.
    ///
    /// # Errors
    ///
    /// [`JoinError`] if the goroutine panicked (the payload is inside: a panic taken here is
    /// not re-raised by [`scope`]), or will never finish because its runtime shut down first
    /// ([`JoinError::is_cancelled`]).
    ///
    /// # Examples
    ///
    /// ```
    /// goexec::run(|| {
    ///     let words = ["go", "exec"];
    ///     goexec::scope(|s| {
    ///         let len = s.spawn(|| words.iter().map(|w| w.len()).sum::<usize>());
    ///         let err = s.spawn(|| -> usize { panic!("boom") });
    ///         assert_eq!(len.join().unwrap(), 6);
    ///         assert!(err.join().unwrap_err().is_panic()); // joined: scope does not re-raise it
    ///     });
    /// });
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        // The goroutine stored its result before its task completed.
        self.inner.join()?;
        let result = self
            .packet
            .take()
            .unwrap_or_else(|| unreachable!("a scoped goroutine finished without a result"));
        if matches!(&result, Err(e) if e.is_panic()) {
            self.packet.scope.state().unjoined_panics -= 1;
        }
        result
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("id", &self.id())
            .finish()
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.data.state();
        f.debug_struct("Scope")
            .field("running", &st.running)
            .field("unjoined_panics", &st.unjoined_panics)
            .finish_non_exhaustive()
    }
}
