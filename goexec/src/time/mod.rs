//! Time: `sleep`, Go's `Timer` and `Ticker` (`time.Sleep`, `time.NewTimer`,
//! `time.NewTicker`), `after`, `tick`, `after_func` (`time.AfterFunc`) and `timeout`, on the
//! runtime's per-P timer heaps, or the process-wide one on a plain thread
//! (`runtime/timers.rs`).
//!
//! Only the goroutine waits: a sleeping goroutine is parked with its deadline in its P's heap
//! and costs no thread, so 10,000 sleepers are 10,000 heap entries. Deadlines are honoured to
//! the microsecond where the machine allows: an idle runtime's timer thread parks with 1 µs of
//! timer slack instead of rounding up to a millisecond as `epoll_wait`-based runtimes do.
//!
//! Everything here works on plain threads too (threads not running a goroutine: before any
//! runtime exists, beside one, after `run` returned). There `sleep` sleeps the thread, and
//! the timers ([`Timer`], [`Ticker`], [`after`], [`tick`], [`after_func`], [`Sleep`]) go to a
//! process-wide heap run by one thread of its own, `goexec-timers`, started by the first
//! such timer. A timer made in a goroutine lives on that goroutine's runtime instead (its P's
//! heap, no thread of its own) and may be received from, stopped or reset from any goroutine
//! or thread. It outlives that runtime: once its `run` has returned, a pending timer moves to
//! the process-wide heap and fires there, a reset puts it there, and an [`after_func`]'s
//! function then starts on a thread of its own. A [`Sleep`] polled in a goroutine of a runtime
//! that has since returned completes too: the task that last polled it is woken, and its next
//! poll, wherever it runs, arms it on the process-wide heap.
//!
//! [`after`], [`tick`] and the `receiver()` of a [`Timer`] or [`Ticker`] are channel
//! receivers (`goexec::chan`): a timer sends on its channel when it fires, as in Go, so they
//! can be received from anywhere and, with `select!`, combined with other channels.

mod chan_timer;
mod sleep_future;

pub use sleep_future::{sleep_async, sleep_until_async, Sleep};

use crate::chan::Receiver;
use crate::runtime::timers;
use chan_timer::Armed;
use std::time::{Duration, Instant};

/// Pauses the calling goroutine for at least `d` (Go: `time.Sleep`). Only the goroutine
/// waits; its thread runs other goroutines meanwhile. A zero duration returns at once. On a
/// plain thread, sleeps the thread.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// goexec::run(|| {
///     let start = Instant::now();
///     goexec::time::sleep(Duration::from_millis(5));
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    sleep_until_ns(timers::deadline_after(d), d);
}

/// Pauses the calling goroutine until `deadline` (at once if it has passed). On a plain
/// thread, sleeps the thread.
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    sleep_until_ns(timers::instant_to_nanos(deadline), deadline - now);
}

fn sleep_until_ns(when: u64, d: Duration) {
    if !timers::sleep(when) {
        crate::runtime::callback::check_may_block();
        std::thread::sleep(d);
    }
}

/// The instant `d` from now; a `d` too large for an `Instant` (`Duration::MAX`, as a "never")
/// gives one 30 years away, as tokio's `far_future` does, instead of std's overflow panic.
pub(crate) fn deadline_in(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

/// A single event at a deadline (Go: `time.Timer`). [`recv`](Timer::recv) waits for it;
/// [`receiver`](Timer::receiver) is its channel (Go's `t.C`), for `select!`.
///
/// As in Go since 1.23, `stop` and `reset` discard a value that fired but was not received:
/// no stale value is received after they return.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// goexec::run(|| {
///     let t = goexec::time::Timer::new(Duration::from_millis(1));
///     let fired_at = t.recv();
///     assert!(t.try_recv().is_none());
///
///     let t = goexec::time::Timer::new(Duration::from_secs(60));
///     assert!(t.stop()); // it was pending
///     assert!(!t.stop());
///     let _ = fired_at;
/// });
/// ```
pub struct Timer {
    armed: Armed,
    rx: Receiver<Instant>,
    /// An `after_func`'s: dropping it does not stop it.
    func: bool,
}

impl Timer {
    /// A timer that fires once, `d` from now. Made in a goroutine, it lives on that goroutine's
    /// runtime (and on the process-wide timer thread once that runtime's `run` has returned);
    /// on a plain thread, on the process-wide timer thread (see the module docs).
    pub fn new(d: Duration) -> Timer {
        let t = Timer::unarmed();
        t.armed.arm(timers::deadline_after(d), None, None);
        t
    }

    fn unarmed() -> Timer {
        let (tx, rx) = crate::chan::bounded(1);
        Timer {
            armed: Armed::new(tx),
            rx,
            func: false,
        }
    }

    /// Stops the timer. True if it stopped it in time: it was pending, or it had fired a
    /// value nobody received yet, which is discarded (as Go 1.23 does: after `stop`, a
    /// receive never sees a stale value, and `if !t.stop() { t.recv() }` never waits for a
    /// value that was discarded). False if it had already fired and been received, or been
    /// stopped.
    pub fn stop(&self) -> bool {
        self.armed.disarm(&self.rx)
    }

    /// Makes the timer fire `d` from now, whatever it was doing. True if it was pending or had
    /// fired a value nobody received yet, which is discarded (as [`Timer::stop`]).
    pub fn reset(&self, d: Duration) -> bool {
        self.armed
            .arm(timers::deadline_after(d), None, Some(&self.rx))
    }

    /// Waits until the timer fires and returns when it was due. Inside a goroutine this parks
    /// only the goroutine. A stopped timer never fires: this would wait forever.
    pub fn recv(&self) -> Instant {
        recv(&self.rx)
    }

    /// The fired value, if the timer has fired and it was not received yet.
    pub fn try_recv(&self) -> Option<Instant> {
        self.rx.try_recv().ok()
    }

    /// The timer's channel (Go: `t.C`): it receives the deadline when the timer fires.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // An after_func runs its function whether or not anyone keeps the Timer (as in Go,
        // where dropping the reference does not cancel it).
        if !self.func {
            self.armed.disarm(&self.rx);
        }
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("pending", &self.armed.shared.lock().pending)
            .finish()
    }
}

/// Events every period (Go: `time.Ticker`). `recv` waits for the next;
/// [`receiver`](Ticker::receiver) is its channel, for [`select!`](crate::select!). Like Go's, a ticker whose receiver falls behind
/// drops ticks instead of queueing them: at most one waits.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// goexec::run(|| {
///     let ticker = goexec::time::Ticker::new(Duration::from_millis(1));
///     let a = ticker.recv();
///     let b = ticker.recv();
///     assert!(b > a);
///     ticker.stop();
/// });
/// ```
pub struct Ticker {
    timer: Timer,
}

impl Ticker {
    /// A ticker that fires every `period`, the first time `period` from now. Made in a
    /// goroutine, it lives on that goroutine's runtime, and ticks on from the process-wide
    /// timer thread once that runtime's `run` has returned (see the module docs).
    ///
    /// # Panics
    ///
    /// If `period` is zero (as Go's `NewTicker` does).
    pub fn new(period: Duration) -> Ticker {
        assert!(
            !period.is_zero(),
            "goexec: Ticker::new: the period must be positive"
        );
        let timer = Timer::unarmed();
        timer
            .armed
            .arm(timers::deadline_after(period), Some(nanos(period)), None);
        Ticker { timer }
    }

    /// Stops the ticker: no more ticks; one not yet received is discarded.
    pub fn stop(&self) {
        self.timer.stop();
    }

    /// Restarts the ticker with a new period, the next tick `period` from now.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn reset(&self, period: Duration) {
        assert!(
            !period.is_zero(),
            "goexec: Ticker::reset: the period must be positive"
        );
        self.timer.armed.arm(
            timers::deadline_after(period),
            Some(nanos(period)),
            Some(&self.timer.rx),
        );
    }

    /// Waits for the next tick and returns when it was due.
    pub fn recv(&self) -> Instant {
        self.timer.recv()
    }

    /// A tick not yet received, if there is one.
    pub fn try_recv(&self) -> Option<Instant> {
        self.timer.try_recv()
    }

    /// The ticker's channel (Go: `t.C`).
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.timer.rx
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker")
            .field("running", &self.timer.armed.shared.lock().pending)
            .finish()
    }
}

/// A receiver that gets one `Instant`, the deadline, once `d` has passed (Go: `time.After`).
/// Nothing stops it early; use a [`Timer`] for that. Once every receiver is dropped the timer
/// is dead, as in Go 1.23: it never fires, and its memory is freed before its deadline, at the
/// next sweep of its heap (when the heap has grown to twice its size after the last sweep),
/// not at once.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// goexec::run(|| {
///     let start = Instant::now();
///     let at = goexec::time::after(Duration::from_millis(2)).recv().unwrap();
///     assert!(at >= start + Duration::from_millis(2));
/// });
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    let (tx, rx) = crate::chan::bounded(1);
    Armed::new(tx).arm(timers::deadline_after(d), None, None);
    rx
}

/// Runs `f` in its own goroutine once `d` has passed (Go: `time.AfterFunc`), and returns a
/// [`Timer`] that can stop or reset it.
///
/// Made in a goroutine, the timer lives on that goroutine's runtime and `f` runs in a new
/// goroutine of that runtime. Made on a plain thread, the timer is the process-wide timer
/// thread's and `f` runs on a new thread of its own, named `goexec-after-func` (there is no
/// runtime to give it a goroutine); so does a timer whose runtime's `run` returned before it
/// fired (it moved to the process-wide heap).
///
/// A panic in `f` is a goroutine's panic: the runtime's
/// [`UnhandledPanic`](crate::runtime::UnhandledPanic) policy applies (the default reports it
/// and the runtime goes on); on a plain thread, the thread's panic (reported, the thread
/// ends).
///
/// The returned Timer:
/// - [`stop`](Timer::stop) before `f` started prevents it, drops `f` (and what it captured)
///   at once, and returns true; once `f` has started it returns false.
/// - [`reset`](Timer::reset) before `f` started moves its start to `d` from now (true). `f`
///   runs at most once (it is `FnOnce`; Go's runs again after each reset): a reset after it
///   started, or after a stop, returns false and starts nothing.
/// - dropping it does **not** stop it (as in Go, where forgetting the timer does not cancel
///   it): `after_func(d, f);` alone runs `f`.
/// - its channel never receives (Go's AfterFunc timer has no `C`): [`recv`](Timer::recv)
///   waits forever, [`try_recv`](Timer::try_recv) is always `None`.
///
/// # Examples
///
/// ```
/// use goexec::chan;
/// use std::time::Duration;
///
/// goexec::run(|| {
///     let (tx, rx) = chan::bounded(1);
///     goexec::time::after_func(Duration::from_millis(1), move || {
///         tx.send(goexec::runtime::goid()).unwrap();
///     });
///     assert_ne!(rx.recv().unwrap(), goexec::runtime::goid()); // another goroutine
///
///     let t = goexec::time::after_func(Duration::from_secs(60), || unreachable!());
///     assert!(t.stop()); // stopped before it ran: it never will
/// });
/// ```
#[track_caller]
pub fn after_func<F>(d: Duration, f: F) -> Timer
where
    F: FnOnce() + Send + 'static,
{
    let (tx, rx) = crate::chan::bounded(1);
    let t = Timer {
        armed: Armed::with_func(tx, Box::new(f), std::panic::Location::caller()),
        rx,
        func: true,
    };
    t.armed.arm(timers::deadline_after(d), None, None);
    t
}

/// A receiver that gets an `Instant` every `period` (Go: `time.Tick`), dropping ticks a slow
/// receiver misses. The ticks stop, and the timer is deleted, once every receiver is dropped.
///
/// # Panics
///
/// If `period` is zero.
pub fn tick(period: Duration) -> Receiver<Instant> {
    assert!(
        !period.is_zero(),
        "goexec: time::tick: the period must be positive"
    );
    let (tx, rx) = crate::chan::bounded(1);
    Armed::new(tx).arm(timers::deadline_after(period), Some(nanos(period)), None);
    rx
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Receives from a timer's own channel. The timer holds the sending end, so while the timer
/// lives the channel never closes.
fn recv(rx: &Receiver<Instant>) -> Instant {
    match rx.recv() {
        Ok(v) => v,
        Err(_) => crate::runtime::fatal("Timer::recv", "a live timer's channel closed"),
    }
}

/// The error of [`timeout`]: the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `f` in a new goroutine and waits at most `d` for its result (Go: a `select` on a
/// result channel and `time.After(d)`). If `f` panics, the panic continues in the caller.
///
/// On timeout the goroutine is not stopped (goroutines cannot be killed, in Go either): it
/// runs to its end and its result is dropped. Give it a way to stop (a channel, a flag) if it
/// should.
///
/// On a plain thread, where there is no runtime to spawn on, `f` runs on a new thread of its
/// own (named `goexec-timeout`), with the same rules: on timeout that thread runs on to `f`'s
/// end, detached.
///
/// # Panics
///
/// With `f`'s panic, as above; on a plain thread, if the thread cannot be started (as
/// `std::thread::spawn`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// goexec::run(|| {
///     let quick = goexec::time::timeout(Duration::from_secs(5), || 6 * 7);
///     assert_eq!(quick, Ok(42));
///     let slow = goexec::time::timeout(Duration::from_millis(1), || {
///         goexec::time::sleep(Duration::from_millis(50));
///     });
///     assert!(slow.is_err());
/// });
/// // On a plain thread too.
/// assert_eq!(goexec::time::timeout(Duration::from_secs(5), || "done"), Ok("done"));
/// ```
#[track_caller]
pub fn timeout<F, T>(d: Duration, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = crate::chan::bounded(1);
    let body = move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        if r.is_err() {
            // A goroutine's panic all the same: under UnhandledPanic::Abort it ends the
            // process here, whether or not the caller still waits.
            crate::runtime::goroutine_panicked();
        }
        // Nobody waits any more after a timeout: the result is dropped.
        let _ = tx.try_send(r);
    };
    if crate::runtime::current_g().is_some() {
        crate::spawn(body);
    } else {
        let spawned = crate::stack::room_for_a_thread().and_then(|()| {
            std::thread::Builder::new()
                .name("goexec-timeout".into())
                .spawn(body)
        });
        if let Err(e) = spawned {
            panic!("goexec: time::timeout: cannot start a thread for the call: {e}");
        }
    }
    match rx.recv_timeout(d) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(crate::chan::RecvTimeoutError::Timeout) => Err(Elapsed(())),
        Err(crate::chan::RecvTimeoutError::Closed) => {
            crate::runtime::fatal("time::timeout", "the call's result channel closed")
        }
    }
}
