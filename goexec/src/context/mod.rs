//! Go's `context` package: cancellation, deadlines and request-scoped values, passed down a
//! call tree and across goroutines.
//!
//! A [`Context`] starts from [`Context::background`] and is narrowed by
//! [`with_cancel`](Context::with_cancel), [`with_deadline`](Context::with_deadline),
//! [`with_timeout`](Context::with_timeout) and [`with_value`](Context::with_value), each
//! giving a child. Cancelling a context cancels all its descendants, never its parent.
//! The [`Cancel`] handle that comes with a cancellable child cancels it when called or when
//! dropped, which is Go's `defer cancel()`.
//!
//! Work that should stop when its context is cancelled watches [`done`](Context::done), a
//! channel receiver that is closed then, in a [`select!`](crate::select!) with its other
//! channels; [`err`](Context::err) says why. A context is cheap to clone, and `Send + Sync`.
//!
//! Deadlines fire through the runtime's timers: a deadline set in a goroutine is in its P's
//! timer heap, one set on a plain thread in the process-wide heap (see [`time`](crate::time));
//! cancelling the context first stops it. A deadline still pending when its runtime's `run`
//! returns moves to the process-wide heap, so it closes `done()` on time wherever the
//! context went (a plain thread, a later runtime's goroutine), as do its children's.
//!
//! Cancelled children leave their parent: a long-lived parent that makes and cancels millions
//! of children holds only the ones still live. A [`Cancel`] that is forgotten
//! (`mem::forget`) keeps its context registered with its parent until the parent is
//! cancelled, as in Go, where a never-called cancel leaks the child until then.
//!
//! # Examples
//!
//! A worker goroutine that stops when its context is cancelled:
//!
//! ```
//! use goexec::{chan, context::Context, select};
//!
//! goexec::run(|| {
//!     let (ctx, cancel) = Context::background().with_cancel();
//!     let (tx, jobs) = chan::bounded::<u32>(0);
//!     let worker = goexec::spawn(move || {
//!         let mut done = 0;
//!         loop {
//!             select! {
//!                 recv(jobs) -> job => { job.unwrap(); done += 1; },
//!                 recv(ctx.done()) -> _ => return (done, ctx.err()),
//!             }
//!         }
//!     });
//!     tx.send(1).unwrap();
//!     tx.send(2).unwrap();
//!     cancel.cancel();
//!     let (done, err) = worker.join().unwrap();
//!     assert_eq!(done, 2);
//!     assert_eq!(err, Some(goexec::context::Error::Canceled));
//! });
//! ```

mod cancel;

use crate::chan::{self, Receiver};
use cancel::CancelCtx;
use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Why a context was cancelled (Go: `context.Canceled`, `context.DeadlineExceeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Cancelled through its [`Cancel`] (called or dropped), or an ancestor's.
    Canceled,
    /// Its deadline, or an ancestor's, passed.
    DeadlineExceeded,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for Error {}

/// `Canceled` is [`Other`](std::io::ErrorKind::Other) ("context canceled"; not `Interrupted`,
/// which std's `read_exact`, `write_all` and `copy` retry), `DeadlineExceeded` is
/// [`TimedOut`](std::io::ErrorKind::TimedOut); the context error is the I/O error's source
/// (`get_ref`, `downcast`).
impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        let kind = match e {
            Error::Canceled => std::io::ErrorKind::Other,
            Error::DeadlineExceeded => std::io::ErrorKind::TimedOut,
        };
        std::io::Error::new(kind, e)
    }
}

/// A cancellation signal, an optional deadline and values, shared down a tree of work (Go:
/// `context.Context`). See the [module docs](self).
///
/// Clones are the same context. `Send + Sync`: hand a clone to each goroutine.
///
/// # Examples
///
/// ```
/// use goexec::context::{Context, Error};
/// use std::time::Duration;
///
/// goexec::run(|| {
///     let (parent, cancel) = Context::background().with_cancel();
///     let (child, _child_cancel) = parent.with_timeout(Duration::from_secs(60));
///     assert_eq!(child.err(), None);
///     cancel.cancel(); // reaches the child
///     assert_eq!(child.done().recv(), Err(goexec::chan::RecvError)); // closed
///     assert_eq!(child.err(), Some(Error::Canceled));
/// });
/// ```
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

struct Node {
    kind: Kind,
    parent: Option<Context>,
    /// The nearest cancellable node: this one's own, or an ancestor's. None: never cancelled.
    cancel: Option<Arc<CancelCtx>>,
}

impl Drop for Node {
    /// Unlinks the chain above iteratively: dropping the last reference to a leaf 100,000
    /// levels deep must not recurse once per level (a goroutine's stack is small).
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(ctx) = next {
            // Some only for the last reference: its node is ours to take apart, its parent
            // next; a node others still hold ends the walk.
            next = Arc::into_inner(ctx.node).and_then(|mut n| n.parent.take());
        }
    }
}

enum Kind {
    Background,
    Todo,
    WithCancel,
    /// Its own deadline (a deadline no earlier than the parent's makes a `WithCancel`).
    WithDeadline(Instant),
    WithValue(Box<dyn Any + Send + Sync>, &'static str),
    WithoutCancel,
}

/// Cancels its context (and the context's descendants) when [called](Cancel::cancel) or
/// dropped (Go: `context.CancelFunc`, with `defer cancel()` built in). `Send + Sync`; a
/// second cancel does nothing.
#[must_use = "dropping the Cancel cancels its context at once"]
pub struct Cancel {
    ctx: Arc<CancelCtx>,
}

// The promises of the module docs.
const _: () = {
    const fn shared<T: Clone + Send + Sync + 'static>() {}
    const fn send_sync<T: Send + Sync + 'static>() {}
    shared::<Context>();
    send_sync::<Cancel>();
    send_sync::<Error>();
};

impl Context {
    fn root(kind: Kind) -> Context {
        Context {
            node: Arc::new(Node {
                kind,
                parent: None,
                cancel: None,
            }),
        }
    }

    fn child(&self, kind: Kind, cancel: Option<Arc<CancelCtx>>) -> Context {
        Context {
            node: Arc::new(Node {
                kind,
                parent: Some(self.clone()),
                cancel,
            }),
        }
    }

    /// The root context: never cancelled, no deadline, no values (Go:
    /// `context.Background()`). The top of `main`, a server, a test.
    ///
    /// ```
    /// let ctx = goexec::context::Context::background();
    /// assert_eq!(ctx.err(), None);
    /// assert_eq!(ctx.deadline(), None);
    /// assert!(ctx.done().try_recv().is_err()); // never closes
    /// ```
    pub fn background() -> Context {
        static BACKGROUND: OnceLock<Context> = OnceLock::new();
        BACKGROUND
            .get_or_init(|| Context::root(Kind::Background))
            .clone()
    }

    /// A root context like [`background`](Context::background), for code where the right
    /// context is not yet clear (Go: `context.TODO()`): it marks the spot, and its `Debug`
    /// says `TODO`.
    ///
    /// ```
    /// let ctx = goexec::context::Context::todo();
    /// assert_eq!(ctx.err(), None);
    /// assert!(format!("{ctx:?}").contains("TODO"));
    /// ```
    pub fn todo() -> Context {
        static TODO: OnceLock<Context> = OnceLock::new();
        TODO.get_or_init(|| Context::root(Kind::Todo)).clone()
    }

    /// A child that is cancelled by the returned [`Cancel`] (called or dropped), or when this
    /// context is (Go: `context.WithCancel`). It keeps this context's deadline and values.
    /// A child of a context already cancelled is cancelled at once, with the parent's error.
    ///
    /// Keep the [`Cancel`] in a named binding (`_cancel`, not `_`): `let (ctx, _) = ...`
    /// drops it at once, and with it cancels `ctx` (where Go's `ctx, _ :=` would keep it).
    ///
    /// ```
    /// use goexec::context::{Context, Error};
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let (child, _c) = ctx.with_cancel();
    /// drop(cancel); // as cancel.cancel()
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// assert_eq!(child.err(), Some(Error::Canceled));
    /// ```
    #[must_use = "the Cancel cancels the context when dropped: keep it in a named binding"]
    pub fn with_cancel(&self) -> (Context, Cancel) {
        let c = CancelCtx::new(self.node.cancel.as_ref(), None);
        let ctx = self.child(Kind::WithCancel, Some(c.clone()));
        (ctx, Cancel { ctx: c })
    }

    /// A child cancelled with [`Error::DeadlineExceeded`] at `deadline`, or earlier by the
    /// returned [`Cancel`] or this context (Go: `context.WithDeadline`). Its deadline is the
    /// earlier of `deadline` and this context's; one already past cancels it at once.
    ///
    /// The deadline is a timer of the calling goroutine's runtime (on a plain thread, of the
    /// process-wide timer thread), stopped if the context is cancelled first. It fires even
    /// after that runtime's `run` has returned (see the module docs).
    ///
    /// Keep the [`Cancel`] in a named binding (`_cancel`, not `_`): `let (ctx, _) = ...`
    /// drops it at once, and with it cancels `ctx` (where Go's `ctx, _ :=` would keep it).
    ///
    /// ```
    /// use goexec::context::{Context, Error};
    /// use std::time::{Duration, Instant};
    ///
    /// goexec::run(|| {
    ///     let at = Instant::now() + Duration::from_millis(5);
    ///     let (ctx, _cancel) = Context::background().with_deadline(at);
    ///     assert_eq!(ctx.deadline(), Some(at));
    ///     let _ = ctx.done().recv(); // closed at the deadline
    ///     assert!(Instant::now() >= at);
    ///     assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// });
    /// ```
    #[must_use = "the Cancel cancels the context when dropped: keep it in a named binding"]
    pub fn with_deadline(&self, deadline: Instant) -> (Context, Cancel) {
        if self.deadline().is_some_and(|d| d <= deadline) {
            // The parent's deadline comes first and cancels both: no timer of our own (Go).
            return self.with_cancel();
        }
        let c = CancelCtx::new(self.node.cancel.as_ref(), Some(deadline));
        if Instant::now() >= deadline {
            c.cancel(Error::DeadlineExceeded);
        } else {
            c.arm(deadline);
        }
        let ctx = self.child(Kind::WithDeadline(deadline), Some(c.clone()));
        (ctx, Cancel { ctx: c })
    }

    /// [`with_deadline`](Context::with_deadline) `timeout` from now (Go:
    /// `context.WithTimeout`). A timeout too large for an `Instant` is a deadline 30 years
    /// away.
    ///
    /// Keep the [`Cancel`] in a named binding (`_cancel`, not `_`): `let (ctx, _) = ...`
    /// drops it at once, and with it cancels `ctx` (where Go's `ctx, _ :=` would keep it).
    ///
    /// ```
    /// use goexec::context::{Context, Error};
    /// use std::time::Duration;
    ///
    /// goexec::run(|| {
    ///     let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(2));
    ///     goexec::select! {
    ///         recv(ctx.done()) -> _ => assert_eq!(ctx.err(), Some(Error::DeadlineExceeded)),
    ///         recv(goexec::chan::after(Duration::from_secs(10))) -> _ => panic!("no timeout"),
    ///     }
    /// });
    /// ```
    #[must_use = "the Cancel cancels the context when dropped: keep it in a named binding"]
    pub fn with_timeout(&self, timeout: Duration) -> (Context, Cancel) {
        self.with_deadline(crate::time::deadline_in(timeout))
    }

    /// A child that carries `value`, found by [`value::<T>`](Context::value) on it and its
    /// descendants (Go: `context.WithValue`). The value's type is its key: a child's value of
    /// type `T` shadows an ancestor's. Give distinct values distinct types (newtypes, as Go
    /// uses unexported key types), not bare `String`s or integers that other code may set too.
    ///
    /// Values are for request-scoped data that crosses APIs and goroutines (a request id, a
    /// user), not for passing a function's optional parameters.
    ///
    /// ```
    /// use goexec::context::Context;
    ///
    /// struct RequestId(u64);
    ///
    /// let ctx = Context::background().with_value(RequestId(7));
    /// let (child, _cancel) = ctx.with_cancel();
    /// assert_eq!(child.value::<RequestId>().map(|r| r.0), Some(7));
    /// assert!(child.value::<String>().is_none());
    /// ```
    pub fn with_value<T: Send + Sync + 'static>(&self, value: T) -> Context {
        let kind = Kind::WithValue(Box::new(value), std::any::type_name::<T>());
        self.child(kind, self.node.cancel.clone())
    }

    /// The nearest value of type `T` on this context or its ancestors (Go: `ctx.Value(key)`,
    /// the type being the key), or None.
    ///
    /// ```
    /// use goexec::context::Context;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct User(&'static str);
    ///
    /// let outer = Context::background().with_value(User("ann"));
    /// let inner = outer.with_value(User("bob"));
    /// assert_eq!(inner.value::<User>(), Some(&User("bob")));
    /// assert_eq!(outer.value::<User>(), Some(&User("ann")));
    /// ```
    pub fn value<T: 'static>(&self) -> Option<&T> {
        let mut n: &Node = &self.node;
        loop {
            if let Kind::WithValue(v, _) = &n.kind {
                if (**v).type_id() == TypeId::of::<T>() {
                    return v.downcast_ref::<T>();
                }
            }
            n = &n.parent.as_ref()?.node;
        }
    }

    /// A child with this context's values that is never cancelled and has no deadline (Go:
    /// `context.WithoutCancel`): for work that must outlive the request that started it.
    ///
    /// ```
    /// use goexec::context::Context;
    ///
    /// struct Trace(u32);
    ///
    /// let (ctx, cancel) = Context::background().with_value(Trace(1)).with_cancel();
    /// let detached = ctx.without_cancel();
    /// cancel.cancel();
    /// assert_eq!(detached.err(), None);
    /// assert_eq!(detached.value::<Trace>().map(|t| t.0), Some(1));
    /// ```
    pub fn without_cancel(&self) -> Context {
        self.child(Kind::WithoutCancel, None)
    }

    /// A receiver that is closed when the context is cancelled (Go: `ctx.Done()`): a
    /// `recv` on it returns `Err(RecvError)` then, and waits until then. For a context that
    /// is never cancelled ([`background`](Context::background)), a receiver that never
    /// receives. Use it in [`select!`](crate::select!), from goroutines or threads.
    ///
    /// ```
    /// use goexec::context::Context;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let done = ctx.done();
    /// assert!(done.try_recv().is_err() && !done.is_closed());
    /// cancel.cancel();
    /// assert!(done.is_closed());
    /// ```
    pub fn done(&self) -> Receiver<()> {
        match &self.node.cancel {
            Some(c) => c.done(),
            None => chan::never(),
        }
    }

    /// Why the context was cancelled, or None while it is not (Go: `ctx.Err()`). Once
    /// `done()` is closed, this is `Some`.
    ///
    /// ```
    /// use goexec::context::{Context, Error};
    /// use std::time::Instant;
    ///
    /// let (ctx, _cancel) = Context::background().with_deadline(Instant::now());
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// assert_eq!(ctx.err().unwrap().to_string(), "context deadline exceeded");
    /// ```
    pub fn err(&self) -> Option<Error> {
        self.node.cancel.as_ref().and_then(|c| c.err())
    }

    /// When the context will be cancelled with [`Error::DeadlineExceeded`], if it has a
    /// deadline (Go: `ctx.Deadline()`): its own or an ancestor's, the earliest.
    ///
    /// ```
    /// use goexec::context::Context;
    /// use std::time::{Duration, Instant};
    ///
    /// let at = Instant::now() + Duration::from_secs(60);
    /// let (parent, _c1) = Context::background().with_deadline(at);
    /// let (child, _c2) = parent.with_timeout(Duration::from_secs(3600));
    /// assert_eq!(child.deadline(), Some(at)); // the parent's comes first
    /// assert_eq!(Context::background().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.cancel.as_ref().and_then(|c| c.deadline())
    }
}

impl Cancel {
    /// Cancels the context with [`Error::Canceled`] (unless it was cancelled before), and with
    /// it every descendant; stops its deadline timer. Any thread; idempotent.
    ///
    /// ```
    /// let (ctx, cancel) = goexec::context::Context::background().with_cancel();
    /// cancel.cancel();
    /// cancel.cancel(); // nothing more
    /// assert!(ctx.err().is_some());
    /// ```
    pub fn cancel(&self) {
        self.ctx.cancel(Error::Canceled);
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        self.ctx.cancel(Error::Canceled);
    }
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel")
            .field("err", &self.ctx.err())
            .finish()
    }
}

impl fmt::Debug for Context {
    /// Go's `String` of the chain (`context.Background.WithCancel.WithValue(type)`), the
    /// deadline and error, and for a cancellable context the number of live children.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chain = Vec::new();
        let mut n: &Node = &self.node;
        loop {
            chain.push(match &n.kind {
                Kind::Background => "context.Background".to_owned(),
                Kind::Todo => "context.TODO".to_owned(),
                Kind::WithCancel => "WithCancel".to_owned(),
                // Go prints the time left too.
                Kind::WithDeadline(at) => match at.checked_duration_since(Instant::now()) {
                    Some(left) => format!("WithDeadline(in {left:?})"),
                    None => "WithDeadline(passed)".to_owned(),
                },
                Kind::WithValue(_, name) => format!("WithValue({name})"),
                Kind::WithoutCancel => "WithoutCancel".to_owned(),
            });
            match &n.parent {
                Some(p) => n = &p.node,
                None => break,
            }
        }
        chain.reverse();
        let mut d = f.debug_struct("Context");
        d.field("chain", &format_args!("{}", chain.join(".")))
            .field("deadline", &self.deadline())
            .field("err", &self.err());
        if let (Kind::WithCancel | Kind::WithDeadline(_), Some(c)) =
            (&self.node.kind, &self.node.cancel)
        {
            d.field("children", &c.children());
        }
        d.finish()
    }
}
