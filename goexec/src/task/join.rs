//! `JoinHandle`: waits for a goroutine and takes its result.

use crate::runtime::g::WaitReason;
use crate::runtime::park::{block_on_guard, Waiter};
use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A goroutine's result slot, shared by the goroutine (which fills it) and its handle.
struct State<T> {
    /// The goroutine's id.
    id: u64,
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    result: Option<Result<T, JoinError>>,
    /// Set once the result has been delivered (or the goroutine was dropped unrun).
    done: bool,
    /// Who waits in `join`.
    waiter: Option<Waiter>,
}

/// The goroutine's end of the slot: completes it, or reports cancellation if dropped unused
/// (a goroutine that never ran before its runtime shut down).
pub(crate) struct Completer<T> {
    state: Arc<State<T>>,
    /// Set by `complete`, so that Drop need not lock the slot again to find it done.
    completed: bool,
}

/// A new result slot for goroutine `id`: the goroutine's end and the handle.
pub(crate) fn join_state<T>(id: u64) -> (Completer<T>, JoinHandle<T>) {
    let state = Arc::new(State {
        id,
        inner: Mutex::new(Inner {
            result: None,
            done: false,
            waiter: None,
        }),
    });
    (
        Completer {
            state: state.clone(),
            completed: false,
        },
        JoinHandle { state },
    )
}

impl<T> Completer<T> {
    /// Delivers the goroutine's result (a value, or its panic payload).
    pub(crate) fn complete(mut self, result: Result<T, Box<dyn Any + Send + 'static>>) {
        let id = self.state.id;
        let result = result.map_err(|payload| JoinError {
            id,
            repr: Repr::Panic(payload),
        });
        self.finish(Some(result));
        self.completed = true;
    }

    fn finish(&self, result: Option<Result<T, JoinError>>) {
        let mut inner = self.state.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.done {
            return;
        }
        inner.done = true;
        inner.result = result;
        let waiter = inner.waiter.take();
        drop(inner);
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        // Dropped without completing: the goroutine never ran.
        let id = self.state.id;
        self.finish(Some(Err(JoinError {
            id,
            repr: Repr::Cancelled,
        })));
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
    state: Arc<State<T>>,
}

impl<T> JoinHandle<T> {
    /// The goroutine's id.
    pub fn id(&self) -> u64 {
        self.state.id
    }

    /// Whether the goroutine has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.state
            .inner
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
        let mut inner = self.state.inner.lock().unwrap_or_else(|e| e.into_inner());
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
            inner = self.state.inner.lock().unwrap_or_else(|e| e.into_inner());
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
