//! goexec: Go's concurrency model for Rust.
//!
//! Goroutines are stackful coroutines switched by goexec's own assembly, scheduled by Go's
//! G-M-P scheduler (per-P work-stealing run queues, spinning Ms, `runnext`), with a netpoller
//! that the scheduler polls where Go's does. Code in a goroutine is ordinary blocking-style
//! Rust: when it waits, only the goroutine parks, never its thread. The design, layer by
//! layer, is in the repository's `docs/ARCHITECTURE.md`.
//!
//! ```
//! let rt = goexec::Runtime::builder().procs(2).build()?;
//! let total = rt.run(|| {
//!     let handles: Vec<_> = (1..=100u64)
//!         .map(|i| goexec::spawn(move || i * i)) // a goroutine each
//!         .collect();
//!     // join parks only this goroutine, never its thread
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 338_350);
//! # Ok::<(), goexec::runtime::BuildError>(())
//! ```
//!
//! What is here, bottom up:
//!
//! - [`stack`]: guarded goroutine stacks from large arenas (`MADV_GUARD_INSTALL` on Linux >=
//!   6.13, so a million stacks need no extra kernel mappings) or per-stack mappings elsewhere,
//!   pools, and a stack-overflow handler that names the goroutine and its stack size;
//! - [`runtime`]: the scheduler ([`Runtime`], [`run`], [`spawn`], [`Builder`], [`yield_now`],
//!   [`lock_os_thread`], [`local!`], introspection and [`runtime::dump`]) and the stackful
//!   [`runtime::Coroutine`] goroutines are built on;
//! - [`task`]: [`JoinHandle`], which also works from plain threads and is a `Future`;
//!   [`block_on`] runs a future on a goroutine (parking only it) and [`spawn_future`] runs
//!   one as a goroutine, so async Rust and goroutines mix; the goroutine [`task::Builder`]
//!   (also [`Builder`]); [`scope()`], whose goroutines may borrow the caller's data (the
//!   shape of `std::thread::scope`);
//! - [`time`]: [`time::sleep`], [`time::Timer`], [`time::Ticker`], [`time::after`],
//!   [`time::tick`], [`time::after_func`], [`time::timeout`] on per-P timer heaps, with
//!   microsecond precision on an idle runtime, and on a process-wide heap for plain threads
//!   and for the timers that outlive their runtime's `run`;
//! - [`chan`]: Go's channels, buffered or unbuffered, with timeouts, between goroutines and
//!   threads, and [`select!`] over any mix of sends and receives; `recv_async` /
//!   `send_async` for async code;
//! - [`blocking`] sections, and fairness without signals: a goroutine that runs 10 ms
//!   without a scheduling point keeps its thread but loses its P, so the goroutines queued
//!   behind it run on another thread (see below).
//!
//! - [`netpoll`]: readiness waits on the runtime's network poller (mio), which
//!   `goexec-net`'s sockets are built on; [`signal::notify`]: signals as channel values.
//!
//! - [`sync`]: Go's `Mutex` (with its starvation mode), `RwLock`, `WaitGroup`, `Once`, `Cond`
//!   and a `Semaphore`, parking goroutines (and threads); [`sync::ErrGroup`]
//!   (`golang.org/x/sync/errgroup`);
//! - [`context`]: Go's `context`: cancellation trees, deadlines on the runtime's timers and
//!   request-scoped values, watched through a `done()` channel in `select!`;
//! - deadlock detection: when every goroutine waits forever, the program ends with Go's
//!   `fatal error: all goroutines are asleep - deadlock!` and a goroutine dump.
//!
//! - the macros: [`go!`], [`select!`], [`#[goexec::main]`](macro@main) and
//!   [`#[goexec::test]`](macro@test);
//! - observability: [`runtime::dump`], `tracing` events for the scheduler (target
//!   `goexec::sched`, trace level: spawn, park with its wait reason, ready, exit), and
//!   `GOEXEC_SCHEDTRACE=<ms>` for Go's `schedtrace` lines on stderr.
//!
//! # Threads
//!
//! A runtime runs goroutines on one thread (an M) per P (`procs`), and starts more only
//! for goroutines inside a long [`blocking`] section, or running 10 ms without a scheduling
//! point, whose P was handed on; plus one monitor thread (sysmon). A runtime that would need
//! more than 10,000 threads stops with a fatal error, as Go does. When the main goroutine
//! returns, `run` does not wait for a goroutine that is still spinning without scheduling
//! points: its thread is left to it (Go would end the process) and exits at its next
//! scheduling point, if any. A goroutine inside a `blocking` section is waited for.
//!
//! A scheduling point is a yield, a park (join, sleep, a timer or channel wait) or the end of
//! a goroutine; a spawn is not. Taking the P needs `membarrier(2)` (Linux 4.14 or later):
//! where it is missing, a goroutine that never reaches a scheduling point keeps its P, as in
//! Go before 1.14.
//!
//! # Soundness
//!
//! A goroutine can stop at a switch point on one OS thread and go on from it on another.
//! Rust compilers assume a function runs on one thread from start to end, so they may compute
//! a thread-local's address once and use it on both sides of a call that, in goexec, changed
//! threads underneath: the code after the switch then works on the old thread's value, while
//! that thread runs other code. In a goroutine, then:
//!
//! - a function that crosses a switch point must not touch a thread-local, before the switch
//!   or after it: not in the closures written in it, nor in the code the compiler inlines into
//!   it (a `RefCell` in a `thread_local!`, `rand::thread_rng()`, the thread-locals of std, of
//!   `tracing`, of an allocator, ...);
//! - no thread-affine value may be held across a switch point: an `Rc` obtained from a
//!   thread-local, a `std::sync::MutexGuard` (released on the thread that took it), a value
//!   of a C library with per-thread state.
//!
//! Breaking either rule is undefined behaviour, and the compiler cannot catch it: a goroutine
//! starts from a `Send` closure, but nothing tells the compiler that the goroutine's own stack,
//! and what it holds, moves between threads.
//!
//! The switch points are the operations that can park or yield the goroutine: a channel send
//! or receive that waits (with or without a timeout; not the `try_` ones), a `select!`
//! without `default`, the waits of [`sync`] (`Mutex::lock`, `RwLock`, `WaitGroup::wait`,
//! `Once`, `Cond::wait`, `Semaphore::acquire`), [`time::sleep`] and the receives of timers
//! and tickers, [`JoinHandle::join`], [`block_on`] and [`spawn_future`] between two polls,
//! `goexec-net`'s socket operations, [`yield_now`], and the end of a [`blocking`] section: the
//! code inside one stays on one thread (unless it reaches a switch point itself), but if its
//! P was handed on meanwhile, the goroutine may wait on the run queue and continue on another
//! thread. Spawning, waking another goroutine (a send to a waiting receiver, an
//! unlock) and running long without a switch point (the goroutine keeps its thread, losing only
//! its P) are not switch points.
//!
//! goexec guarantees that its own code keeps no thread-local address across a switch (a
//! goroutine reaches goexec's thread-local state only through `#[inline(never)]` accessors,
//! and each poll of a future runs in a frame of its own); that std's panic state stays with
//! the goroutine (a goroutine that parks while unwinding stays on its thread until the
//! unwinding ends); and that [`local!`] values belong to the goroutine, safe to use across
//! switch points. What to do instead of a thread-local:
//!
//! - state that belongs to the goroutine: [`local!`];
//! - code that relies on thread-affine libraries: call [`lock_os_thread`] first; the goroutine
//!   then runs only on that thread, and the thread only it, until [`unlock_os_thread`];
//! - any other thread-local: reach it only from `#[inline(never)]` functions that do not
//!   switch themselves, and return no reference into it or thread-affine value from them.
//!
//! Some user code runs on the scheduler's own stack, outside any goroutine: a `Waker::wake`
//! called by the timers or the network poller (a future polled with that waker was waiting on
//! a goexec timer or socket), and a `tracing` subscriber seeing the scheduler's events. It
//! must neither block on goexec (a channel operation, lock, join, sleep or I/O wait) nor
//! panic: either ends the process with a fatal error that names the callback, since the
//! scheduler cannot go on. Hand such work to a goroutine (a `try_send` on a buffered
//! channel never blocks).
//!
//! The low-level [`runtime::Coroutine`] is not `Send`. Used from plain threads it always
//! resumes on the thread that created it, so none of this applies to it; one owned by a
//! goroutine moves with that goroutine, and code running inside it follows the rules above,
//! the coroutine's own yields counting as switch points.
//!
//! Stacks are fixed-size (Rust cannot move a stack, so goexec cannot grow it as Go does).
//! Running off the end hits a guard page, and the process aborts with
//! `goroutine N stack overflow (stack size S bytes)`.
//!
//! # Features
//!
//! - `bench-internals`: unstable, for goexec's benches package only. Makes the runtime's stack
//!   cache (`stack::StackPool`, `stack::DEFAULT_POOL_CAPACITY`, `stack::KEEP_RESIDENT`) and a
//!   hook for timing the bare context switch public; they are not part of the API and may
//!   change or go in any release.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks)]
// One unsafe operation per block, so that each SAFETY comment covers exactly one promise.
#![warn(clippy::multiple_unsafe_ops_per_block)]
// What is `pub` is the public API; everything else says how far it reaches.
#![warn(unreachable_pub)]

mod arch;
pub mod chan;
pub mod context;
mod loom;
pub mod netpoll;
pub mod runtime;
pub mod signal;
pub mod stack;
pub mod sync;
mod sys;
pub mod task;
pub mod time;

pub use runtime::{
    blocking, lock_os_thread, run, spawn, unlock_os_thread, yield_now, Builder, Runtime,
    RuntimeBuilder,
};
pub use task::{block_on, scope, spawn_future, JoinError, JoinHandle, Scope, ScopedJoinHandle};

// The macros name `::goexec`; this makes that path work inside this crate too.
extern crate self as goexec;

/// Go's `select`: waits on several channel operations and runs the arm of the one that
/// happens. An expression; its value is the chosen arm's.
///
/// ```text
/// select! {
///     recv(rx) -> v => ...,         // v: Result<T, RecvError>
///     send(tx, value) -> r => ...,  // r: Result<(), SendError<T>>
///     default => ...,               // none ready: don't wait
/// }
/// ```
///
/// - Any expression may name the channel (`recv(chans[i].1)`, `recv(chan::after(d))`, a
///   `Receiver` or a reference to one); the channels and the values to send are evaluated
///   once, in order, before the select starts. A value whose arm is not chosen is dropped.
/// - When several arms are ready, each is equally likely to run. Without a `default`, the
///   select waits (parking the goroutine, or the thread) until one is ready; with none, it
///   runs `default` at once.
/// - A receive from a closed, drained channel is ready and gives `Err(RecvError)`; a send on a
///   closed channel is ready and gives the value back in `Err(SendError(v))`.
/// - A timeout is a receive from [`chan::after`]; a disabled arm, from [`chan::never`].
/// - `select! {}` blocks forever.
///
/// Exactly one arm runs: a value is never both sent and dropped, or received twice. The core
/// is [`chan::select`].
///
/// # Examples
///
/// ```
/// use goexec::chan;
/// use std::time::Duration;
///
/// goexec::run(|| {
///     let (tx, rx) = chan::bounded::<u32>(0);
///     goexec::spawn(move || tx.send(42).unwrap());
///     let got = goexec::select! {
///         recv(rx) -> v => v.unwrap(),
///         recv(chan::after(Duration::from_secs(5))) -> _ => panic!("timed out"),
///     };
///     assert_eq!(got, 42);
///
///     let (tx, _rx) = chan::bounded::<u32>(0);
///     let sent = goexec::select! {
///         send(tx, 1) -> r => r.is_ok(),
///         default => false, // nobody receives
///     };
///     assert!(!sent);
/// });
/// ```
pub use goexec_macros::select;

/// Go's `go` statement: runs a call in a new goroutine and returns its
/// [`JoinHandle`].
///
/// ```text
/// go!(f(a, b))          // f, a and b are evaluated here, in order; f(a, b) runs in the goroutine
/// go!(obj.method(x))    // obj and x are evaluated here; the method runs in the goroutine
/// go!({ ... })          // a block, moved into the goroutine
/// go!(move || ...)      // a closure (no arguments), run in the goroutine
/// ```
///
/// As in Go, the arguments are evaluated when `go!` runs, not when the goroutine does: they
/// are moved (or copied) into it then. Anything else is a compile error that names the forms.
///
/// # Panics
///
/// Outside a goroutine, as [`spawn`].
///
/// # Examples
///
/// ```
/// use goexec::go;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// goexec::run(|| {
///     let mut i = 3;
///     let h = go!(square(i)); // square sees 3
///     i = 4;
///     assert_eq!(h.join().unwrap(), 9);
///     assert_eq!(go!({ i + 1 }).join().unwrap(), 5);
/// });
/// ```
pub use goexec_macros::go;

/// Runs `fn main` as the main goroutine of a runtime: `#[goexec::main]`, or
/// `#[goexec::main(procs = N, stack_size = BYTES)]` (the [`RuntimeBuilder`]'s settings;
/// without `procs`, `GOMAXPROCS` or the CPUs available).
///
/// `main` may return `()` or anything `main` may return (`Result<(), E>`,
/// [`ExitCode`](std::process::ExitCode)): its value is reported as Rust reports `main`'s
/// (`Error: ...` and a failure status), from inside the goroutine, so a non-`Send` error such
/// as `Box<dyn Error>` is fine. An unknown argument is a compile error that names the
/// accepted ones.
///
/// ```
/// #[goexec::main(procs = 2)]
/// fn main() {
///     assert_eq!(goexec::runtime::gomaxprocs(), 2);
/// }
/// # // doctests wrap their code in a main of their own: call ours
/// # #[allow(clippy::main_recursion)]
/// # main();
/// ```
pub use goexec_macros::main;

/// A test whose body runs as the main goroutine of a runtime of its own: `#[goexec::test]`,
/// with the same arguments as [`main`](macro@main). Use it instead of `#[test]`; other
/// attributes (`#[should_panic]`, `#[ignore]`) go after it.
///
/// ```
/// #[goexec::test(procs = 2)]
/// fn sends_and_receives() {
///     let (tx, rx) = goexec::chan::bounded(0);
///     goexec::go!(move || tx.send(1).unwrap());
///     assert_eq!(rx.recv(), Ok(1));
/// }
/// ```
pub use goexec_macros::test;

/// mio, whose sources [`netpoll::Registration`] registers (re-exported so that its version
/// always matches goexec's).
pub use mio;

/// Hooks for the benches package, with the unstable `bench-internals` feature; not part of the
/// API.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_support {
    /// Times `iters` round trips of the bare context switch (resume + suspend, a value each
    /// way), without the `Coroutine` wrapper's bookkeeping.
    pub fn raw_switch_round_trips(iters: u64) -> std::time::Duration {
        crate::arch::raw_round_trips(iters)
    }
}
