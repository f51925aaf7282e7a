//! [`ErrGroup`] (Go: `golang.org/x/sync/errgroup`).

use super::WaitGroup;
use crate::chan::{self, Receiver, Sender};
use crate::context::{Cancel, Context};
use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Goroutines working on parts of one task, with the first error and cancellation (Go:
/// `errgroup.Group`). [`go`](ErrGroup::go) runs a fallible function in a new goroutine;
/// [`wait`](ErrGroup::wait) waits for all of them and returns the first error.
///
/// Made [`with_context`](ErrGroup::with_context), the group also cancels a context at the
/// first error (or panic), so that the others can stop early, and when `wait` returns.
/// [`set_limit`](ErrGroup::set_limit) bounds how many of its goroutines run at once.
///
/// A panic in a function is caught; `wait` resumes it in the caller (as `x/sync` does since
/// 2024) after every goroutine has ended, before any error. Clones share the group.
///
/// # Panics
///
/// `go` and `try_go` spawn goroutines: outside a goroutine (no runtime to spawn on) they
/// panic, as [`spawn`](crate::spawn) does.
///
/// # Examples
///
/// ```
/// use goexec::context::Context;
/// use goexec::sync::ErrGroup;
///
/// goexec::run(|| {
///     let (g, ctx) = ErrGroup::<String>::with_context(&Context::background());
///     for i in 0..4 {
///         let ctx = ctx.clone();
///         g.go(move || {
///             if i == 2 {
///                 return Err(format!("part {i} failed"));
///             }
///             // The others see the failure through the context.
///             let _ = ctx.done().recv();
///             Ok(())
///         });
///     }
///     assert_eq!(g.wait(), Err("part 2 failed".to_owned()));
///     assert!(ctx.err().is_some());
/// });
/// ```
pub struct ErrGroup<E> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    wg: WaitGroup,
    /// Goroutines started and not yet ended.
    active: AtomicUsize,
    /// The group's context's cancel ([`ErrGroup::with_context`]).
    cancel: Option<Cancel>,
    st: Mutex<State<E>>,
}

struct State<E> {
    /// The first error since the last `wait` that returned one.
    err: Option<E>,
    /// The first panic.
    panic: Option<Box<dyn Any + Send>>,
    /// The limit, as Go's `sem`: a slot of the buffered channel per running goroutine.
    sem: Option<(Sender<()>, Receiver<()>)>,
}

impl<E: Send + 'static> ErrGroup<E> {
    /// A group without a context or a limit (Go: a zero `errgroup.Group`).
    pub fn new() -> ErrGroup<E> {
        ErrGroup::make(None)
    }

    fn make(cancel: Option<Cancel>) -> ErrGroup<E> {
        ErrGroup {
            inner: Arc::new(Inner {
                wg: WaitGroup::new(),
                active: AtomicUsize::new(0),
                cancel,
                st: Mutex::new(State {
                    err: None,
                    panic: None,
                    sem: None,
                }),
            }),
        }
    }

    /// A group and a child of `parent` that the group cancels at its first error or panic, or
    /// when [`wait`](ErrGroup::wait) returns, whichever comes first (Go:
    /// `errgroup.WithContext`); also when the group is dropped (its clones, and its
    /// goroutines, which hold it until they end).
    ///
    /// ```
    /// use goexec::context::{Context, Error};
    /// use goexec::sync::ErrGroup;
    ///
    /// goexec::run(|| {
    ///     let (g, ctx) = ErrGroup::<()>::with_context(&Context::background());
    ///     g.go(|| Ok(()));
    ///     assert_eq!(g.wait(), Ok(()));
    ///     assert_eq!(ctx.err(), Some(Error::Canceled)); // wait returned
    /// });
    /// ```
    pub fn with_context(parent: &Context) -> (ErrGroup<E>, Context) {
        let (ctx, cancel) = parent.with_cancel();
        (ErrGroup::make(Some(cancel)), ctx)
    }

    fn state(&self) -> MutexGuard<'_, State<E>> {
        self.inner.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in a new goroutine of the group (Go: `g.Go`). With a [limit](ErrGroup::set_limit)
    /// reached, first waits (parking the goroutine) until one of the group's goroutines ends.
    ///
    /// ```
    /// use goexec::sync::ErrGroup;
    ///
    /// goexec::run(|| {
    ///     let g = ErrGroup::<std::io::Error>::new();
    ///     g.go(|| Ok(()));
    ///     assert!(g.wait().is_ok());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a goroutine, or if the goroutine cannot be made (its stack), as
    /// [`spawn`](crate::spawn).
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        // Counted active under the lock set_limit checks: a limit set after this is refused,
        // one set before is the one obeyed.
        let (mut done, sem) = {
            let st = self.state();
            (self.enter(), st.sem.clone())
        };
        if let Some((tx, rx)) = sem {
            // Never fails: the group holds a receiver.
            let _ = tx.send(());
            done.sem = Some(rx);
        }
        self.start(f, done);
    }

    /// Runs `f` in a new goroutine of the group if the [limit](ErrGroup::set_limit) allows
    /// one more now; false (and `f` dropped) if not (Go: `g.TryGo`).
    ///
    /// ```
    /// use goexec::sync::ErrGroup;
    ///
    /// goexec::run(|| {
    ///     let g = ErrGroup::<()>::new();
    ///     g.set_limit(Some(1));
    ///     let (tx, rx) = goexec::chan::bounded::<()>(0);
    ///     assert!(g.try_go(move || { let _ = rx.recv(); Ok(()) }));
    ///     assert!(!g.try_go(|| Ok(()))); // the one slot is taken
    ///     drop(tx);
    ///     assert_eq!(g.wait(), Ok(()));
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// As [`go`](ErrGroup::go).
    #[track_caller]
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let done = {
            let st = self.state();
            // Under the lock set_limit checks, as in `go`. A try_send wakes nobody (the
            // channel's receivers only try_recv): nothing runs under the lock.
            if let Some((tx, rx)) = &st.sem {
                if tx.try_send(()).is_err() {
                    return false;
                }
                let mut done = self.enter();
                done.sem = Some(rx.clone());
                done
            } else {
                self.enter()
            }
        };
        self.start(f, done);
        true
    }

    /// Counts a goroutine in (active, and in the WaitGroup); the returned `Done` counts it out
    /// when dropped, giving back the slot it is given.
    fn enter(&self) -> Done<E> {
        self.inner.active.fetch_add(1, Ordering::SeqCst);
        self.inner.wg.add(1);
        Done {
            inner: self.inner.clone(),
            sem: None,
        }
    }

    /// Spawns `f`, which `done` counts in (holding a slot, if limited).
    #[track_caller]
    fn start<F>(&self, f: F, done: Done<E>)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let inner = self.inner.clone();
        let spawned = crate::Builder::new().spawn(move || {
            let _done = done; // ends the goroutine's part, whatever happens below
            match catch_unwind(AssertUnwindSafe(f)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => inner.fail(Err(e)),
                Err(panic) => {
                    // Under UnhandledPanic::Abort a goroutine's panic ends the process.
                    crate::runtime::goroutine_panicked();
                    inner.fail(Ok(panic))
                }
            }
        });
        if let Err(e) = spawned {
            // The closure, with its `Done`, was dropped: the slot and count are given back.
            panic!("goexec: ErrGroup::go: {e}");
        }
    }

    /// Sets how many of the group's goroutines may run at once: `go` waits, and `try_go`
    /// fails, while that many run (Go: `g.SetLimit`, where a negative `n` is `None` here).
    ///
    /// ```
    /// use goexec::sync::ErrGroup;
    ///
    /// goexec::run(|| {
    ///     let g = ErrGroup::<()>::new();
    ///     g.set_limit(Some(2));
    ///     for _ in 0..10 {
    ///         g.go(|| Ok(())); // at most 2 at a time
    ///     }
    ///     assert_eq!(g.wait(), Ok(()));
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// While any of the group's goroutines is still running (Go panics too: the limit may only
    /// change between rounds), and on `Some(0)`, with which every `go` would wait forever.
    pub fn set_limit(&self, limit: Option<usize>) {
        let mut st = self.state();
        let active = self.inner.active.load(Ordering::SeqCst);
        assert!(
            active == 0,
            "goexec: ErrGroup::set_limit: modify limit while {active} goroutines in the group \
             are still active"
        );
        assert!(
            limit != Some(0),
            "goexec: ErrGroup::set_limit: a limit of 0 would make every go wait forever (None \
             means no limit)"
        );
        st.sem = limit.map(chan::bounded);
    }

    /// Waits until every goroutine of the group has ended, then returns the first error one
    /// returned (Go: `g.Wait`), and cancels the group's context. If one panicked, the first
    /// panic is resumed here instead.
    ///
    /// The error is returned once: a later `wait` returns `Ok(())` unless a goroutine started
    /// since has failed.
    ///
    /// ```
    /// use goexec::sync::ErrGroup;
    ///
    /// goexec::run(|| {
    ///     let g = ErrGroup::<&str>::new();
    ///     assert_eq!(g.wait(), Ok(())); // nothing to wait for
    ///     g.go(|| Err("first"));
    ///     assert_eq!(g.wait(), Err("first"));
    /// });
    /// ```
    pub fn wait(&self) -> Result<(), E> {
        self.inner.wg.wait();
        if let Some(c) = &self.inner.cancel {
            c.cancel();
        }
        let mut st = self.state();
        if let Some(p) = st.panic.take() {
            drop(st);
            resume_unwind(p);
        }
        match st.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<E> Inner<E> {
    /// Records a goroutine's error (`Err`) or panic (`Ok`), the first of each kind, and
    /// cancels the context.
    fn fail(&self, what: Result<Box<dyn Any + Send>, E>) {
        {
            let mut st = self.st.lock().unwrap_or_else(|e| e.into_inner());
            match what {
                Ok(panic) => {
                    st.panic.get_or_insert(panic);
                }
                Err(e) => {
                    st.err.get_or_insert(e);
                }
            }
        }
        if let Some(c) = &self.cancel {
            c.cancel();
        }
    }
}

/// A goroutine's end in its group, dropped when it ends (or when its spawn fails): gives its
/// slot back and counts it out (Go: `g.done`).
struct Done<E> {
    inner: Arc<Inner<E>>,
    sem: Option<Receiver<()>>,
}

impl<E> Drop for Done<E> {
    fn drop(&mut self) {
        if let Some(rx) = &self.sem {
            let _ = rx.try_recv();
        }
        self.inner.active.fetch_sub(1, Ordering::SeqCst);
        self.inner.wg.done();
    }
}

impl<E: Send + 'static> Default for ErrGroup<E> {
    fn default() -> Self {
        ErrGroup::new()
    }
}

impl<E> Clone for ErrGroup<E> {
    fn clone(&self) -> Self {
        ErrGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E> fmt::Debug for ErrGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.st.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("ErrGroup")
            .field("active", &self.inner.active.load(Ordering::SeqCst))
            .field("limit", &st.sem.as_ref().map(|(tx, _)| tx.cap()))
            .field("failed", &(st.err.is_some() || st.panic.is_some()))
            .finish()
    }
}
