//! A goroutine's function and result slot, and `JoinHandle`.
//!
//! One allocation per goroutine: a [`Task`] holds the function until the goroutine runs it and
//! the result until the handle takes it. The G sees it as `Arc<dyn Run>`, the handle as
//! `Arc<dyn Slot<T>>`.

use crate::runtime::g::WaitReason;
use crate::runtime::park::{block_on_guard, Waiter};
use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// What a G runs: its goroutine's function, once.
pub(crate) trait Run: Send + Sync {
    /// Runs the function and delivers its result (or panic) to the handle.
    fn run(self: Arc<Self>);
    /// The goroutine will never run (its runtime shut down first): tell the handle.
    fn cancel(self: Arc<Self>);
}

/// What a handle waits on.
trait Slot<T>: Send + Sync {
    fn inner(&self) -> &Mutex<Inner<T>>;
    fn id(&self) -> u64;
}

/// A goroutine's function and result slot.
struct Task<F, T> {
    id: u64,
    /// The function, until the goroutine takes it (its own lock: taken once, uncontended).
    f: Mutex<Option<F>>,
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    result: Option<Result<T, JoinError>>,
    /// Set once the result has been delivered (or the goroutine was cancelled).
    done: bool,
    /// Who waits in `join`.
    waiter: Option<Waiter>,
}

/// A new task for goroutine `id` running `f`: the G's end and the handle.
pub(crate) fn task<F, T>(id: u64, f: F) -> (Arc<dyn Run>, JoinHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let task = Arc::new(Task {
        id,
        f: Mutex::new(Some(f)),
        inner: Mutex::new(Inner {
            result: None,
            done: false,
            waiter: None,
        }),
    });
    (task.clone(), JoinHandle { slot: task })
}

impl<F, T> Task<F, T> {
    fn finish(&self, result: Result<T, JoinError>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.done {
            return;
        }
        inner.done = true;
        inner.result = Some(result);
        let waiter = inner.waiter.take();
        drop(inner);
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

impl<F, T> Run for Task<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Arc<Self>) {
        let f = self.f.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(f) = f else { return };
        let result = panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| JoinError {
            id: self.id,
            repr: Repr::Panic(payload),
        });
        self.finish(result);
    }

    fn cancel(self: Arc<Self>) {
        // Drop the function first (outside the result lock): its captures go now.
        drop(self.f.lock().unwrap_or_else(|e| e.into_inner()).take());
        self.finish(Err(JoinError {
            id: self.id,
            repr: Repr::Cancelled,
        }));
    }
}

impl<F: Send, T: Send> Slot<T> for Task<F, T> {
    fn inner(&self) -> &Mutex<Inner<T>> {
        &self.inner
    }
    fn id(&self) -> u64 {
        self.id
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
    slot: Arc<dyn Slot<T>>,
}

impl<T> JoinHandle<T> {
    /// The goroutine's id.
    pub fn id(&self) -> u64 {
        self.slot.id()
    }

    /// Whether the goroutine has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.slot
            .inner()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .done
    }

    /// Waits for the goroutine to finish and returns its result. Inside a goroutine this parks
    /// only the goroutine; on a plain thread it blocks the thread.
    ///
    /// # Errors
    ///
    /// [`JoinError`] if the goroutine panicked (the payload is inside) or never ran because
    /// its runtime shut down first.
    pub fn join(self) -> Result<T, JoinError> {
        let mut inner = self.slot.inner().lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if inner.done {
                return inner.result.take().unwrap_or_else(|| {
                    Err(JoinError {
                        id: self.id(),
                        repr: Repr::Cancelled,
                    })
                });
            }
            inner.waiter = Some(Waiter::current());
            block_on_guard(inner, WaitReason::Join);
            inner = self.slot.inner().lock().unwrap_or_else(|e| e.into_inner());
        }
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
    Cancelled,
}

impl JoinError {
    /// Whether the goroutine panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// Whether the goroutine never ran: its runtime's main goroutine returned first.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
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
            Repr::Cancelled => panic!("JoinError::into_panic: goroutine {} did not panic", self.id),
        }
    }

    /// The panic message, when the payload is a string.
    fn message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            Repr::Cancelled => None,
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
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl std::error::Error for JoinError {}
