//! The runtime: goroutines on Go's G-M-P scheduler.
//!
//! [`Runtime`] is a value: build one with [`Runtime::builder`], then [`Runtime::run`] a main
//! goroutine on it; `run` returns when the main goroutine returns, and the runtime's threads
//! exit. The free functions ([`crate::spawn`], [`crate::yield_now`], the introspection
//! functions here) act on the runtime of the goroutine that calls them.
//!
//! The mechanism lives in one file each: `g.rs` (goroutines), `m.rs` (threads), `p.rs`
//! (processors), `runq.rs` (local run queues), `sched.rs` (finding and running work, with the
//! design notes), `idle.rs` (idle Ps and Ms: parking and waking Ms, the timer sleeper),
//! `spinning.rs` (the count of spinning Ms),
//! `alloc.rs` (goroutine creation, and the caches of Gs, stacks and task cells it draws from),
//! `cells.rs` (the per-P cache of task cells), `park.rs` (blocking and waking), `waitq.rs`
//! (the wait queues of channels and `sync`), `lockcell.rs` (the values behind `sync`'s
//! locks), `timers.rs` (per-P timer heaps), `netpoll.rs` (the network poller), `poll.rs`
//! (where the scheduler polls the network), `sysmon.rs` (the monitor thread and blocking sections), `preempt.rs`
//! (taking the P of a goroutine that runs too long), `shutdown.rs` (stopping when main
//! returns), `dump.rs` (goroutine dumps and the schedtrace line), `debug.rs` (the registry of
//! goroutines and threads a debugger reads), `deadlock.rs` (deadlock
//! detection), `callback.rs` (user code called from the scheduler's stack), `local.rs`
//! (goroutine-local values), `tls.rs` (thread-local storage), `switch.rs` (the stackful
//! [`Coroutine`] primitive). `lockrank.rs` lists every lock and the order they are taken in.

/// A scheduler event for `tracing`, at trace level under target `goexec::sched` (spawn,
/// park with its wait reason, ready, exit). With no subscriber interested, one load of
/// tracing's global level filter and a branch; `--cfg goexec_no_tracing` compiles them out
/// (the A/B build for BENCHMARKS.md).
macro_rules! sched_event {
    ($($t:tt)*) => {
        // The subscriber is user code, often called on the scheduler's own stack: see
        // callback.rs.
        // The same cheap check `trace!` opens with (the static and the global level filter),
        // so that without a subscriber interested nothing else runs.
        #[cfg(not(goexec_no_tracing))]
        if ::tracing::Level::TRACE <= ::tracing::level_filters::STATIC_MAX_LEVEL
            && ::tracing::Level::TRACE <= ::tracing::level_filters::LevelFilter::current()
        {
            $crate::runtime::callback::user_code("a tracing subscriber", || {
                ::tracing::trace!(target: "goexec::sched", $($t)*)
            });
        }
    };
}

mod alloc;
pub(crate) mod callback;
mod cells;
mod deadlock;
mod debug;
mod dump;
pub(crate) mod g;
mod gopanic;
mod idle;
mod local;
pub(crate) mod lockcell;
mod lockrank;
mod m;
pub(crate) mod netpoll;
mod p;
pub(crate) mod park;
mod poll;
mod preempt;
pub(crate) mod runq;
mod sched;
mod shutdown;
mod sigquit;
mod spinning;
mod switch;
pub(crate) mod sysmon;
pub(crate) mod timers;
pub(crate) mod tls;
mod traceback;
pub(crate) mod waitq;

#[cfg(test)]
mod tests;

pub use dump::dump;
pub(crate) use gopanic::goroutine_panicked;
pub use gopanic::UnhandledPanic;
pub use local::LocalKey;
pub use switch::{Coroutine, CoroutineResult, Yielder};
pub use traceback::{dump_stacks, stack};

use crate::stack::{self, StackError};
use crate::task::{task, JoinHandle};
use std::fmt;
use std::panic::{self, Location};
use std::sync::{Arc, Mutex};

// The surface the layers above (chan, sync, time, task, netpoll) use; the scheduler's own
// modules (m, p, sched, cells) are private to the runtime.
pub(crate) use m::current_g;

/// Task cells for `task/join.rs`, from the calling P's cache (cells.rs).
pub(crate) mod task_cell {
    pub(crate) use super::cells::{alloc, fits, free};
}

/// A pseudo-random number: the calling M's generator, or a per-thread one on a plain thread
/// (select's case order).
pub(crate) fn fastrand() -> u64 {
    m::with_m(|m| m.fastrand()).unwrap_or_else(crate::sys::tls::thread_rand)
}

/// Reports a broken runtime invariant and aborts (the bottom layer's; here so that the
/// runtime's modules reach it as `super::fatal`).
pub(crate) use crate::sys::fatal;

/// The most Ps a runtime may have (Go's `_MaxGomaxprocs` is 1024 as well).
pub const MAX_PROCS: usize = 1024;

/// Why a runtime could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `procs(0)`: a runtime needs at least one P to run anything.
    ZeroProcs,
    /// More Ps than [`MAX_PROCS`].
    TooManyProcs {
        /// What was asked for.
        requested: usize,
    },
    /// The default stack size is out of bounds, or the first stacks could not be had.
    Stack(StackError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroProcs => {
                write!(
                    f,
                    "procs(0): a runtime needs at least one P; use procs(1) or more"
                )
            }
            BuildError::TooManyProcs { requested } => {
                write!(f, "procs({requested}) is above the maximum of {MAX_PROCS}")
            }
            BuildError::Stack(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Stack(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StackError> for BuildError {
    fn from(e: StackError) -> Self {
        BuildError::Stack(e)
    }
}

/// Configures a [`Runtime`].
///
/// # Examples
///
/// ```
/// let rt = goexec::Runtime::builder().procs(2).stack_size(128 * 1024).build()?;
/// let n = rt.run(|| goexec::runtime::gomaxprocs());
/// assert_eq!(n, 2);
/// # Ok::<(), goexec::runtime::BuildError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    procs: Option<usize>,
    stack_size: usize,
    unhandled_panic: UnhandledPanic,
    sigquit_traceback: bool,
}

impl RuntimeBuilder {
    /// The number of Ps: goroutines running at once (GOMAXPROCS). Default: the `GOMAXPROCS`
    /// environment variable if it holds a positive number, else the available parallelism.
    pub fn procs(mut self, n: usize) -> Self {
        self.procs = Some(n);
        self
    }

    /// The default goroutine stack size, in bytes. Default
    /// [`DEFAULT_STACK_SIZE`](crate::stack::DEFAULT_STACK_SIZE).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// What a goroutine's panic does: [`UnhandledPanic::Ignore`] (the default: it ends only
    /// its goroutine, and `join` returns it) or [`UnhandledPanic::Abort`] (Go's behaviour:
    /// the process exits with status 2 after the report and a dump of every goroutine).
    pub fn unhandled_panic(mut self, policy: UnhandledPanic) -> Self {
        self.unhandled_panic = policy;
        self
    }

    /// Whether SIGQUIT (`Ctrl-\` in a terminal, `kill -QUIT`) prints every goroutine of the
    /// runtime with its stack ([`stack(true)`](fn@stack)) to stderr and ends the process with
    /// status 2, as Go does. Default: off (SIGQUIT keeps its usual effect).
    ///
    /// For a program that cannot be rebuilt, the environment variable `GOEXEC_TRACEBACK`
    /// (in the spirit of Go's `GOTRACEBACK`) decides instead: `all` turns this on for every
    /// runtime, `system` does too and shows the runtime's own frames (with addresses) in
    /// every traceback, `none` turns it off even where the builder asked for it.
    ///
    /// The report is printed by the runtime's sysmon thread within a tick (10 ms at most)
    /// of the signal; goroutines running at that moment are listed without their frames
    /// (see [`stack`](fn@stack)). Where several runtimes run at once, the first to notice prints its
    /// own goroutines. A program that takes SIGQUIT itself with
    /// [`signal::notify`](crate::signal::notify) gets it on its channel instead, and nothing
    /// is printed (as with Go's `signal.Notify`). While no runtime listens, SIGQUIT has the
    /// effect it had before: its default one, or none where it was ignored.
    ///
    /// ```
    /// let rt = goexec::Runtime::builder().sigquit_traceback(true).build()?;
    /// rt.run(|| { /* a SIGQUIT now prints every goroutine and exits with status 2 */ });
    /// # Ok::<(), goexec::runtime::BuildError>(())
    /// ```
    pub fn sigquit_traceback(mut self, on: bool) -> Self {
        self.sigquit_traceback = on;
        self
    }

    /// Checks the configuration and makes the runtime. No thread starts until `run`.
    /// The first build in a process installs the panic hook that names the goroutine in a
    /// panic's report (see [`UnhandledPanic`]).
    ///
    /// # Errors
    ///
    /// [`BuildError`] for `procs(0)`, more than [`MAX_PROCS`], or a stack size out of bounds.
    pub fn build(self) -> Result<Runtime, BuildError> {
        let procs = match self.procs {
            Some(0) => return Err(BuildError::ZeroProcs),
            Some(n) if n > MAX_PROCS => return Err(BuildError::TooManyProcs { requested: n }),
            Some(n) => n,
            None => default_procs(),
        };
        let stack_size = stack::checked_size(self.stack_size)?;
        gopanic::install_hook();
        Ok(Runtime {
            procs,
            stack_size,
            unhandled_panic: self.unhandled_panic,
            sigquit_traceback: self.sigquit_traceback,
            warm: Arc::new(Mutex::new(alloc::Warm::default())),
        })
    }
}

/// GOMAXPROCS if set to a positive number (capped at MAX_PROCS), else the available
/// parallelism. An unparsable value is ignored, as Go ignores it.
fn default_procs() -> usize {
    std::env::var("GOMAXPROCS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .map(|n| n.min(MAX_PROCS))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A goexec runtime: a configuration from which [`run`](Runtime::run) starts a scheduler.
///
/// Goroutines' memory outlives a run: when `run` returns, the records, stacks and task cells of
/// finished goroutines stay with the `Runtime`, the stacks' touched pages still resident, and the next `run`
/// starts with them instead of allocating and faulting in fresh memory (a first touch costs
/// microseconds; see BENCHMARKS.md). They are released when the last clone of the `Runtime`
/// is dropped; `goexec::run` builds a `Runtime` per call and so keeps nothing.
#[derive(Clone)]
pub struct Runtime {
    procs: usize,
    stack_size: usize,
    unhandled_panic: UnhandledPanic,
    sigquit_traceback: bool,
    /// What earlier runs left (shared by clones; each run takes it all).
    warm: Arc<Mutex<alloc::Warm>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Runtime");
        d.field("procs", &self.procs)
            .field("stack_size", &self.stack_size)
            .field("unhandled_panic", &self.unhandled_panic)
            .field("sigquit_traceback", &self.sigquit_traceback);
        // try_lock: formatting never waits for a run that is taking or giving back its memory.
        let kept = match self.warm.try_lock() {
            Ok(w) => Some(w.len()),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner().len()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        match kept {
            Some(n) => d.field("kept_goroutines_and_stacks", &n),
            None => d.field("kept_goroutines_and_stacks", &format_args!("<busy>")),
        };
        d.finish()
    }
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            procs: None,
            stack_size: stack::DEFAULT_STACK_SIZE,
            unhandled_panic: UnhandledPanic::Ignore,
            sigquit_traceback: false,
        }
    }

    /// A runtime with the defaults.
    ///
    /// # Errors
    ///
    /// As [`RuntimeBuilder::build`].
    pub fn new() -> Result<Runtime, BuildError> {
        Runtime::builder().build()
    }

    /// Its number of Ps.
    pub fn procs(&self) -> usize {
        self.procs
    }

    /// Runs `f` as the main goroutine (id 1) and returns its result once it returns; the
    /// runtime's threads then exit. Goroutines still parked or queued at that point are
    /// abandoned, as Go abandons them when `main` returns: their handles' `join` returns at
    /// once with [`JoinError::is_cancelled`](crate::JoinError::is_cancelled) (and
    /// [`is_abandoned`](crate::JoinError::is_abandoned) for those that had started). An
    /// abandoned goroutine's frames are never resumed nor unwound: its locals are not dropped,
    /// and its stack and record are never freed, so anything that still names it (a channel
    /// it waits on, a lock, a future's waker) stays safe to use; waking it does nothing. What
    /// was handed to it is lost with it: a value sent to it as a parked receiver, a lock or a
    /// semaphore permit handed to it as a waiter (a `sync::Mutex` in starvation mode hands
    /// itself over). Each abandoned goroutine keeps its record and the stack pages it touched
    /// (a few KiB) for the life of the process, so a program that calls `run` again and again
    /// should not leave goroutines parked each time. A goroutine inside a
    /// [`blocking`] section is waited for; one running without a scheduling
    /// point keeps its thread (see the crate docs, "Threads").
    ///
    /// Each call starts a fresh scheduler; a `Runtime` can run any number of times, from any
    /// number of threads.
    ///
    /// # Panics
    ///
    /// If `f` panics, with its payload, after the runtime has stopped; if called from inside a
    /// goroutine (it would block an M: spawn a goroutine instead); if the first stacks cannot be
    /// allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = goexec::Runtime::builder().procs(1).build()?;
    /// let sum = rt.run(|| {
    ///     let hs: Vec<_> = (1..=10).map(|i| goexec::spawn(move || i)).collect();
    ///     hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>() // each join parks main
    /// });
    /// assert_eq!(sum, 55);
    /// # Ok::<(), goexec::runtime::BuildError>(())
    /// ```
    #[track_caller]
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if m::current_g().is_some() {
            panic!(
                "goexec: Runtime::run called from inside a goroutine; it would block the \
                 goroutine's thread: spawn a goroutine instead"
            );
        }
        // This thread, waiting in `run`, and the runtime: known to the deadlock detector.
        let _live = deadlock::LiveRuntime::new();
        let warm = std::mem::take(&mut *self.warm.lock().unwrap_or_else(|e| e.into_inner()));
        let sched = match sched::Sched::new(self.procs, self.stack_size, self.unhandled_panic, warm)
        {
            Ok(s) => s,
            Err(e) => panic!("goexec: cannot start the runtime: {e}"),
        };
        // Its goroutines are listed for a debugger while it runs (debug.rs), until this
        // guard goes, at the end of the run or in an unwind out of it.
        let _listed = debug::Listed::new(sched.clone());
        let sigquit = match traceback::level() {
            traceback::Level::None => false,
            traceback::Level::Default => self.sigquit_traceback,
            traceback::Level::All | traceback::Level::System => true,
        };
        let _quit = sigquit.then(sigquit::listen);
        sched
            .sigquit
            .store(sigquit, std::sync::atomic::Ordering::Relaxed);
        sched.start_sysmon();
        let handle = match spawn_on(&sched, f, Location::caller(), 0, None, self.stack_size) {
            Ok(h) => h,
            Err(e) => panic!("goexec: cannot start the main goroutine: {e}"),
        };
        // Blocks this (plain) thread until main finishes.
        let result = handle.join();
        let warm = sched.shutdown();
        self.warm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(warm);
        match result {
            Ok(v) => v,
            Err(e) if e.is_panic() => panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("goexec: {e}"),
        }
    }
}

/// Runs `f` as the main goroutine of a runtime with the default configuration; see
/// [`Runtime::run`].
///
/// # Panics
///
/// As [`Runtime::run`]; also if the default configuration is invalid (a `GOMAXPROCS` above
/// the maximum is capped, not rejected, so in practice this does not happen).
///
/// # Examples
///
/// ```
/// let v = goexec::run(|| goexec::spawn(|| "hello").join().unwrap());
/// assert_eq!(v, "hello");
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Runtime::new() {
        Ok(rt) => rt.run(f),
        Err(e) => panic!("goexec: cannot build the default runtime: {e}"),
    }
}

/// Why a goroutine could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// Not called from a goroutine: there is no runtime to spawn on.
    NoRuntime,
    /// The goroutine's stack could not be had.
    Stack(StackError),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NoRuntime => write!(
                f,
                "spawn called outside a goexec runtime: start one with goexec::run(|| ...) or \
                 #[goexec::main], and spawn from its goroutines"
            ),
            SpawnError::Stack(e) => write!(f, "cannot allocate the goroutine's stack: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Stack(e) => Some(e),
            SpawnError::NoRuntime => None,
        }
    }
}

/// Starts `f` as a goroutine of `sched`; its result goes to the returned handle.
fn spawn_on<F, T>(
    sched: &Arc<sched::Sched>,
    f: F,
    at: &'static Location<'static>,
    parent: u64,
    name: Option<String>,
    stack_size: usize,
) -> Result<JoinHandle<T>, StackError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // The id goes to both ends before the goroutine can run (and finish, on another P).
    let id = sched.new_goid();
    let (run, handle) = task(id, f);
    sched.newproc(id, run, at, parent, name, stack_size)?;
    Ok(handle)
}

/// Starts a goroutine on the current goroutine's runtime, with `builder`'s settings.
pub(crate) fn spawn_with<F, T>(
    f: F,
    at: &'static Location<'static>,
    name: Option<String>,
    stack_size: Option<usize>,
) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // On g0's stack (Go's newproc runs on the system stack too): the new goroutine's record,
    // task cell and queueing write their frames there, not on this goroutine's stack, which
    // may be cold (see GRef::systemstack).
    let g = m::current_g().ok_or(SpawnError::NoRuntime)?;
    g.systemstack(move || {
        // The M's scheduler is the running goroutine's; borrowed, not cloned (an Arc clone
        // per spawn is two contended atomic operations on the scheduler's count).
        m::with_m(|m| {
            let size = match stack_size {
                Some(b) => stack::checked_size(b),
                None => Ok(m.sched.stack_size),
            };
            // One runtime entry (preempt.rs) for the whole spawn and its several uses of the P.
            let entered = m.enter();
            // On g0's stack, as g0: nothing in here may block or yield (callback.rs).
            let outer = (
                m.system.replace(Some("goexec::spawn")),
                m.curg.replace(None),
            );
            let parent = outer.1.map_or(0, |g| g.id());
            let r = size.and_then(|size| spawn_on(&m.sched, f, at, parent, name, size));
            m.system.set(outer.0);
            m.curg.set(outer.1);
            m.leave(entered);
            r
        })
    })
    .ok_or(SpawnError::NoRuntime)?
    .map_err(SpawnError::Stack)
}

/// Starts `f` in a new goroutine of the current runtime and returns its handle. Go's `go`
/// statement (see also `go!`). The new goroutine runs next on this P (`runnext`), as in Go.
///
/// # Panics
///
/// If called outside a goroutine (the message says how to start a runtime);
/// [`Builder::spawn`] returns this as an error instead. The goroutine gets its stack when it
/// first runs; a runtime that cannot map one then stops with a fatal error, as Go does.
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let h = goexec::spawn(|| 1 + 1);
///     assert_eq!(h.join().unwrap(), 2);
/// });
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn_with(f, Location::caller(), None, None) {
        Ok(h) => h,
        Err(e) => panic!("goexec: {e}"),
    }
}

/// Configures a goroutine before spawning it (like `std::thread::Builder`).
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let h = goexec::Builder::new()
///         .name("worker")
///         .stack_size(64 * 1024)
///         .spawn(|| 7)
///         .expect("spawn");
///     assert_eq!(h.join().unwrap(), 7);
/// });
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// A name, shown by [`dump()`].
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// This goroutine's stack size in bytes, instead of the runtime's default.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts `f` in a new goroutine of the current runtime.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoRuntime`] outside a goroutine; [`SpawnError::Stack`] for a stack size
    /// out of bounds or a stack the kernel refused.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_with(f, Location::caller(), self.name, self.stack_size)
    }

    /// Starts `f` in a new goroutine of scope `s` (see [`scope`](crate::scope)), like
    /// [`Scope::spawn`](crate::Scope::spawn) with this builder's settings (std:
    /// `thread::Builder::spawn_scoped`).
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoRuntime`] outside a goroutine; [`SpawnError::Stack`] for a stack size
    /// out of bounds or a stack the kernel refused. The scope does not wait for a goroutine
    /// that was not started.
    ///
    /// # Examples
    ///
    /// ```
    /// goexec::run(|| {
    ///     let greeting = String::from("hello");
    ///     goexec::scope(|s| {
    ///         let h = goexec::Builder::new()
    ///             .name("greeter")
    ///             .spawn_scoped(s, || greeting.len())
    ///             .expect("spawn");
    ///         assert_eq!(h.join().unwrap(), 5);
    ///     });
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        s: &'scope crate::Scope<'scope, 'env>,
        f: F,
    ) -> Result<crate::ScopedJoinHandle<'scope, T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        crate::task::spawn_scoped(s, f, Location::caller(), self.name, self.stack_size)
    }
}

/// Runs `f`, which may block its thread (a blocking syscall, a lock, a long computation, a
/// C call), without holding up the other goroutines: while `f` runs, the goroutine's P (its
/// right to run goroutines) is up for grabs, and if `f` takes longer than about 20 µs the
/// runtime's monitor thread hands the P, with the goroutines queued on it, to another thread.
/// Go does this for every syscall (`entersyscall`/`exitsyscall`); in goexec you mark the
/// section. On a plain thread, just runs `f`.
///
/// Each goroutine inside a long `blocking` section holds one OS thread; see the thread limit in
/// the crate docs.
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let bytes = goexec::blocking(|| std::fs::read("Cargo.toml").map(|b| b.len()));
///     assert!(bytes.unwrap() > 0);
/// });
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    sysmon::blocking(f)
}

/// Lets other goroutines run: puts this one at the back of its P's run queue, switching
/// straight to the next one when it can. On a plain thread, yields the thread. Go:
/// `runtime.Gosched` (which goes through the global queue and g0; see the scheduler notes).
pub fn yield_now() {
    if !sched::gosched() {
        std::thread::yield_now();
    }
}

/// Wires the calling goroutine to its current OS thread: until a matching
/// [`unlock_os_thread`], it runs only on this thread and the thread runs nothing else. Calls
/// nest. A goroutine that finishes while locked takes its thread with it (the thread exits), as
/// in Go, since it may have changed thread state. On a plain thread this does nothing. Go:
/// `runtime.LockOSThread`.
pub fn lock_os_thread() {
    m::with_m(|m| {
        if let Some(g) = m.curg.get() {
            g.adjust_lock(1, Arc::as_ptr(&m.shared).cast());
            m.locked_g.set(Some(g));
        }
    });
}

/// Undoes one [`lock_os_thread`]; when the count reaches zero the goroutine may move between
/// threads again. Go: `runtime.UnlockOSThread`.
pub fn unlock_os_thread() {
    m::with_m(|m| {
        if let Some(g) = m.curg.get() {
            g.adjust_lock(-1, Arc::as_ptr(&m.shared).cast());
            // Still locked while the goroutine unwinds (GRef::follow_unwind).
            if g.locked_m().is_null() {
                m.locked_g.set(None);
            }
        }
    });
}

/// The calling goroutine's id (the main goroutine is 1); 0 on a plain thread.
pub fn goid() -> u64 {
    m::current_g().map_or(0, |g| g.id())
}

/// Goroutines of the current runtime that have started and not finished (Go:
/// `runtime.NumGoroutine`); 0 on a plain thread.
pub fn num_goroutine() -> usize {
    m::current_g().map_or(0, |g| g.sched().num_goroutine())
}

/// The current runtime's number of Ps (Go: `runtime.GOMAXPROCS(0)`); 0 on a plain thread.
pub fn gomaxprocs() -> usize {
    m::current_g().map_or(0, |g| g.sched().procs)
}
