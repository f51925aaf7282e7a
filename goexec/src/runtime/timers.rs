//! Timers: a 4-ary heap per P (Go: `time.go`, the `timers` of each `p`).
//!
//! A timer entry is a deadline and what to do when it passes: ready a parked goroutine (the
//! runtime's own `sleep`), or call a [`TimerFunc`] (Go: a timer's `f(arg, seq, delay)`). The
//! layers above supply the functions: a `Timer` or `Ticker` sends the instant on its channel
//! (Go's `sendTime`), a channel operation's or a socket wait's deadline wakes its waiter, a
//! `Sleep` future wakes its task ([`call_at`], the cancellable kind). Each P's heap
//! sits behind its own lock in the P's shared half, because any M may run the timers of a P
//! whose M is gone (Go's `stealWork` does the same); the P's earliest deadline is mirrored in an
//! atomic (`PShared::timer0`) so that "are any of my timers due?" costs one load.
//!
//! Who runs timers:
//! - an M running goroutines, at every `find_runnable` (its own P's), and while stealing (any
//!   P's that are due);
//! - the *timer sleeper*: the one idle M that parks with a deadline, the earliest timer of
//!   any P. It wakes then, takes an idle P and runs every due timer. Adding a timer earlier
//!   than the sleeper's deadline wakes it to sleep again with the new one.
//!
//! Deadlines are nanoseconds since a process-wide epoch (an `Instant`), so user `Instant`s and
//! deadlines convert exactly. Idle Ms sleep in futex waits with the thread's timer slack set to
//! 1 µs (`m.rs`), so a 100 µs sleep wakes after ~100 µs plus the wake-up latency, not a
//! rounded-up millisecond (Go and tokio time out `epoll_wait` in whole milliseconds). The
//! netpoller, when it lands, keeps this precision with `epoll_pwait2`.

mod call;
mod heap;
mod process;

pub(crate) use call::{call_at, call_at_live, Call, CallTimer};
pub(crate) use heap::TimerHeap;

use super::callback::user_code;
use super::g::{GRef, WaitReason};
use super::m::{current_g, with_m};
use super::park::{gopark, goready};
use super::sched::Sched;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The epoch of [`nanotime`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Monotonic nanoseconds since the process-wide timer epoch; never 0 (0 means "no timer").
pub(crate) fn nanotime() -> u64 {
    epoch().elapsed().as_nanos() as u64 + 1
}

/// The deadline, in [`nanotime`] units, for an `Instant`.
pub(crate) fn instant_to_nanos(t: Instant) -> u64 {
    // Saturating: an instant 584 years away must not wrap round to one in the past.
    let ns = t.saturating_duration_since(epoch()).as_nanos();
    ns.min(u128::from(u64::MAX - 1)) as u64 + 1
}

/// The `Instant` of a deadline in [`nanotime`] units.
pub(crate) fn nanos_to_instant(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns.saturating_sub(1))
}

/// The deadline `d` from now.
pub(crate) fn deadline_after(d: Duration) -> u64 {
    nanotime().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
}

/// What a timer entry calls when its deadline passes (Go: a timer's `f(arg, seq, delay)`,
/// the implementor being `arg`). An entry carries the `seq` it was added with: a function
/// whose timer was stopped or reset since has moved on, and its old entries are stale (Go's
/// `seq` check), to be dropped when they surface or swept out before.
pub(crate) trait TimerFunc: Send + Sync {
    /// Names it in the fatal error of a panic or a blocking call inside `fire`
    /// (`callback::user_code`).
    fn what(&self) -> &'static str;

    /// The entry added with `seq`, due at `when`, fires at `now`. Runs on whichever M runs the
    /// timers, outside the heap's lock, as user code. Returns the deadline to add the same
    /// entry again at (a ticker), or None.
    fn fire(&self, seq: u64, when: u64, now: u64) -> Option<u64>;

    /// Whether firing the entry added with `seq` would do nothing. Asked under the heap's
    /// lock (a sweep, `TimerHeap::push`): it must neither block nor run user code.
    fn is_stale(&self, seq: u64) -> bool;

    /// Whether its live entries must still fire after their runtime's `run` has returned: at
    /// teardown they move to the process-wide heap instead of being dropped
    /// ([`rehome_at_teardown`]), and so do those added later (`Sched::addtimer`). A context's
    /// deadline does (Go code selects on `done()` wherever the context went), and so do a
    /// `Timer`'s, a `Ticker`'s and an after_func's (time/mod.rs); a goroutine's sleep and a
    /// cancellable call (a channel operation's deadline, a `Sleep`'s wake) do not: their
    /// goroutine is abandoned with the runtime (a `Sleep` re-arms when next polled:
    /// [`dropped_with_runtime`](TimerFunc::dropped_with_runtime)).
    fn outlives_runtime(&self) -> bool {
        false
    }

    /// Its live entry was dropped with its runtime (it does not outlive it): a `Sleep`
    /// future's wake marks itself and wakes the future's task, which arms it again where it
    /// is next polled (call.rs). Runs user code (a waker), holding no lock.
    fn dropped_with_runtime(&self) {}

    /// Whether it is the batch of entries a sweep took out (`heap.rs`): the one entry the
    /// Timer API takes out of a heap itself ([`Home::check_timers`]).
    fn is_swept(&self) -> bool {
        false
    }
}

/// What a heap entry does when its deadline passes.
pub(crate) enum Action {
    /// Make this parked goroutine runnable ([`sleep`]; Go: `goroutineReady`).
    Ready(GRef),
    /// Call this function with this seq.
    Call(Arc<dyn TimerFunc>, u64),
}

impl Action {
    /// Whether firing would do nothing: such entries are swept out of the heap lazily.
    fn is_dead(&self) -> bool {
        match self {
            Action::Ready(_) => false,
            Action::Call(f, seq) => f.is_stale(*seq),
        }
    }
}

/// Runs `f` with the scheduler of the calling M and the P to put a timer on: the M's own, or
/// P 0's without one (in a blocking section: any heap is run). None on a thread that is no M.
fn with_mp<R>(f: impl FnOnce(&Arc<Sched>, usize) -> R) -> Option<R> {
    with_m(|m| f(&m.sched, m.with_p(|p| p.id).unwrap_or(0)))
}

/// As [`with_mp`], for the calling goroutine: None on a thread not running one, where no
/// runtime runs timers for the caller.
fn with_here<R>(f: impl FnOnce(&Arc<Sched>, usize) -> R) -> Option<R> {
    with_mp(|sched, p| current_g().map(|_| f(sched, p))).flatten()
}

/// Where a timer's entries go (Go: a timer's `ts`): a P's heap, of one runtime, for a timer
/// made in a goroutine; the process-wide heap (`process.rs`) for one made on a plain thread.
/// A timer keeps the one it was made on, so that it is reset there from any thread; once
/// that runtime has shut down, its entries go to the process-wide heap if its function
/// [outlives the runtime](TimerFunc::outlives_runtime), and are dropped otherwise.
#[derive(Clone)]
pub(crate) struct Home(Where);

#[derive(Clone)]
enum Where {
    P(Arc<Sched>, usize),
    Process,
}

impl Home {
    /// The calling goroutine's P's heap (P 0's without a P); on a thread not running a
    /// goroutine, the process-wide heap, whose thread starts with its first timer.
    pub(crate) fn here() -> Home {
        Home(with_here(|sched, p| Where::P(sched.clone(), p)).unwrap_or(Where::Process))
    }

    /// Drops the batches of entries that sweeps took out (due at once, `heap.rs`) if they come
    /// first in the home's heap, and fires nothing: the caller may hold any lock of its own.
    /// The scheduler drops them whenever it runs the timers (Go: `checkTimers`); a thread that
    /// makes timers in a loop that never parks (a `select!` with a fresh `after` whose other
    /// case is always ready), or a goroutine doing so without a P (inside `blocking`, or after
    /// sysmon took its P) would otherwise keep every one it made. For callers holding no
    /// runtime lock (the Timer API, after `add`), on any thread: dropping them needs no P and
    /// runs no user code (`TimerHeap::take_swept`). One load when there is nothing to drop.
    #[inline]
    pub(crate) fn check_timers(&self) {
        match &self.0 {
            Where::P(sched, p) => {
                if sched.allp[*p].timer0.load(Ordering::Relaxed) == heap::DUE {
                    drop_swept(sched, *p);
                }
            }
            Where::Process => process::process().drop_swept(),
        }
    }

    /// Adds an entry calling `f` with `seq` at `when` ([`nanotime`] units). Any thread. On a
    /// runtime that has shut down, the entry goes to the process-wide heap if `f`
    /// [outlives the runtime](TimerFunc::outlives_runtime) (`Sched::addtimer`).
    pub(crate) fn add(&self, when: u64, f: Arc<dyn TimerFunc>, seq: u64) {
        match &self.0 {
            Where::P(sched, p) => sched.addtimer(*p, when, Action::Call(f, seq)),
            Where::Process => process::process().add(when, f, seq),
        }
    }

    /// Starts `f` as a goroutine of the home's runtime (detached: its panic is the runtime's
    /// unhandled panic), or, for the process-wide home or a runtime that has shut down, on a
    /// new thread of its own named `goexec-after-func`. Any thread, the timers' callbacks
    /// included (`time::after_func`). A runtime that begins to shut down just after the check
    /// abandons the goroutine before it starts, which drops `f`: it runs or is dropped, never
    /// kept.
    pub(crate) fn go(
        &self,
        f: Box<dyn FnOnce() + Send>,
        at: &'static std::panic::Location<'static>,
    ) {
        match &self.0 {
            // A P's entries fire on the runtime's Ms, which its teardown joins before it
            // abandons what was spawned; the process-wide heap fires them once it has shut down.
            Where::P(sched, _) if !sched.is_shut_down() => {
                if let Err(e) = super::spawn_on(sched, f, at, 0, None, sched.stack_size) {
                    super::fatal(
                        "time::after_func",
                        &format!("cannot start the goroutine: {e}"),
                    );
                }
            }
            Where::P(..) | Where::Process => {
                let spawned = crate::stack::room_for_a_thread().and_then(|()| {
                    std::thread::Builder::new()
                        .name("goexec-after-func".into())
                        .spawn(f)
                });
                if let Err(e) = spawned {
                    // Go too ends the program when it cannot make a thread.
                    super::fatal("time::after_func", &format!("cannot start a thread: {e}"));
                }
            }
        }
    }
}

/// A runtime's teardown, with the entries taken out of one of its P's heaps: the live ones
/// whose function [outlives the runtime](TimerFunc::outlives_runtime) go to the process-wide
/// heap, at their deadline (run by its thread from then on); the rest are dropped. Holding no
/// lock: a drop may close a channel (see `TimerHeap::push`).
pub(crate) fn rehome_at_teardown(entries: Vec<heap::Entry>) {
    for e in entries {
        rehome(e.when, e.action);
    }
}

/// An entry for a runtime that has shut down (teardown, or an add after it): to the
/// process-wide heap if its function outlives the runtime and it is live, else dropped.
/// Holding no lock.
fn rehome(when: u64, action: Action) {
    if let Action::Call(f, seq) = action {
        if f.is_stale(seq) {
            return;
        }
        if f.outlives_runtime() {
            process::process().add(when, f, seq);
        } else {
            user_code(f.what(), || f.dropped_with_runtime());
        }
    }
}

/// Whether the process-wide heap holds any live entry (the deadlock check: a timer made on a
/// plain thread may still send to a goroutine; a stopped one will not).
pub(crate) fn process_timers_pending() -> bool {
    process::process().pending()
}

/// The slow half of [`Home::check_timers`] for a P's heap: takes out the swept batches that
/// come first, and drops them once the lock is released.
#[cold]
#[inline(never)]
fn drop_swept(sched: &Sched, id: usize) {
    let shared = &sched.allp[id];
    let swept = {
        let mut heap = shared.timers.lock().unwrap_or_else(|e| e.into_inner());
        let swept = heap.take_swept();
        // Release: as runtimers' stores of timer0.
        shared.timer0.store(heap.when0(), Ordering::Release);
        swept
    };
    drop(swept);
}

/// Parks the calling goroutine until `when` ([`nanotime`] units) (Go: `timeSleep`). False on
/// a thread not running a goroutine, where nothing happens.
pub(crate) fn sleep(when: u64) -> bool {
    let Some(g) = current_g() else {
        return false;
    };
    // The timer goes in only once we are parked (on g0, or the next G, in the unlock step): it
    // may fire on another M at once, and must find us Waiting. Our P is the M's still.
    gopark(WaitReason::Sleep, &mut || {
        with_mp(|sched, p| sched.addtimer(p, when, Action::Ready(g)));
        true
    });
    true
}

// The timers' part of the scheduler.
impl Sched {
    /// Adds a timer to P `id`'s heap, then makes sure some M will run it in time: the timer
    /// sleeper is woken if it sleeps past `when`; with no sleeper, an idle M is started (it
    /// becomes the sleeper when it finds nothing to do). Any thread. Go: `addtimer` and
    /// `wakeNetPoller`.
    fn addtimer(self: &Arc<Self>, id: usize, when: u64, action: Action) {
        let shared = &self.allp[id];
        // The heap's earliest deadline after the push: `when`, or earlier when the push swept
        // (the batch it took out is due at once, heap.rs), which wakes the sleeper too.
        let when = {
            let mut heap = shared.timers.lock().unwrap_or_else(|e| e.into_inner());
            if heap.is_closed() {
                // The runtime has shut down (its teardown drained the heap): nobody would run
                // the entry here.
                drop(heap);
                rehome(when, action);
                return;
            }
            heap.push(when, action);
            // SeqCst: the timer's half of the Delicate dance. An M about to park reads every
            // timer0 (SeqCst) after it stops spinning; we read nmspinning and npidle (in
            // wakep, SeqCst) after this store: one of us sees the other.
            let when0 = heap.when0();
            shared.timer0.store(when0, Ordering::SeqCst);
            when0.min(when)
        };
        // SeqCst: pairs with the sleeper's store of sleep_until and its re-read of the timers
        // (stopm_loop): it sees our timer, or we see it and wake it.
        let until = self.idle.sleep_until.load(Ordering::SeqCst);
        if until == 0 {
            self.wakep();
        } else if when < until {
            if let Some(m) = self
                .idle
                .sleeper
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                m.unpark();
            }
        }
    }

    /// Runs the due timers of P `id` (on the calling M, which must hold a P: readied
    /// goroutines go to its queue). Returns how many fired.
    pub(crate) fn runtimers(self: &Arc<Self>, id: usize, now: u64) -> usize {
        let shared = &self.allp[id];
        // Acquire: pairs with the Release stores of timer0.
        let t0 = shared.timer0.load(Ordering::Acquire);
        if t0 == 0 || t0 > now {
            return 0;
        }
        let mut due = Vec::new();
        {
            let mut heap = shared.timers.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(e) = heap.pop_due(now) {
                due.push(e);
            }
            shared.timer0.store(heap.when0(), Ordering::Release);
        }
        let n = due.len();
        for e in due {
            match e.action {
                Action::Ready(g) => goready(g),
                // A function may run user code (a waker, a channel's waiter, a send, the drop
                // of a value it held): callback.rs.
                Action::Call(f, seq) => {
                    if let Some(next) = user_code(f.what(), || f.fire(seq, e.when, now)) {
                        self.addtimer(id, next, Action::Call(f, seq));
                    }
                }
            }
        }
        n
    }

    /// Runs every P's due timers. Returns how many fired.
    pub(super) fn runtimers_all(self: &Arc<Self>, now: u64) -> usize {
        (0..self.procs).map(|id| self.runtimers(id, now)).sum()
    }

    /// The earliest timer of any P, 0 when there is none.
    pub(super) fn next_timer(&self) -> u64 {
        self.allp
            .iter()
            // SeqCst: see addtimer.
            .map(|p| p.timer0.load(Ordering::SeqCst))
            .filter(|&t| t != 0)
            .min()
            .unwrap_or(0)
    }

    /// A timer is overdue by more than `slack` and no M sleeps until it: the sleeper left to
    /// run something else (a P taken for a due timer or the network) and no idle M took up
    /// the role. sysmon then wakes an M for it (Go's sysmon does the same).
    pub(crate) fn timers_stranded(&self, now: u64, slack: u64) -> bool {
        let next = self.next_timer();
        next != 0
            && next.saturating_add(slack) < now
            && self.idle.sleep_until.load(Ordering::SeqCst) == 0
    }
}
