//! Timers: a 4-ary heap per P (Go: `time.go`, the `timers` of each `p`).
//!
//! A timer is an [`Entry`]: a deadline and what to do when it passes, either ready a parked
//! goroutine (`sleep`) or fire a [`TimerShared`] (`time::Timer`, `time::Ticker`). Each P's heap
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

mod heap;

pub(crate) use heap::TimerHeap;

use super::callback::user_code;
use super::g::GRef;
use super::park::goready;
use super::sched::Sched;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
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
    t.saturating_duration_since(epoch()).as_nanos() as u64 + 1
}

/// The `Instant` of a deadline in [`nanotime`] units.
pub(crate) fn nanos_to_instant(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns.saturating_sub(1))
}

/// The deadline `d` from now.
pub(crate) fn deadline_after(d: Duration) -> u64 {
    nanotime().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
}

/// What a timer does when its deadline passes.
pub(crate) enum Action {
    /// Make this parked goroutine runnable (`time::sleep`).
    Ready(GRef),
    /// Fire this timer if it is still at generation `gen` (a stopped or reset timer has moved
    /// on, and its old entries are dropped when they surface).
    Fire(Arc<TimerShared>, u64),
    /// Run this callback unless it was cancelled first (the deadline of a channel operation or
    /// a socket wait: `time::call_at`). It runs on whichever M runs the timers, outside the
    /// heap's lock.
    Call(Arc<dyn Callback>),
    /// Wake this task's waker (`time::Sleep`), unless the Sleep was dropped first.
    Wake(Arc<WakeTimer>),
}

impl Action {
    /// Whether firing would do nothing: a stopped or reset Timer's old entry, a dropped
    /// Sleep's, a cancelled callback's. Such entries are swept out of the heap lazily
    /// (`TimerHeap::push`).
    fn is_dead(&self) -> bool {
        match self {
            Action::Fire(t, gen) => {
                let st = t.lock();
                st.gen != *gen || !st.pending
            }
            Action::Wake(w) => w.is_cancelled(),
            Action::Call(c) => c.is_cancelled(),
            Action::Ready(_) => false,
        }
    }
}

/// A callback timer's shared half, in its heap entry and its owner's [`CallTimer`].
pub(crate) trait Callback: Send + Sync {
    /// Runs the callback, unless it ran or was cancelled already, holding the timer's lock
    /// while it runs.
    fn fire(&self);

    /// Whether the callback is gone (ran or was cancelled). One whose lock is held (a cancel
    /// under way) counts as live: a sweep, under the heap's lock, does not wait for it.
    fn is_cancelled(&self) -> bool;

    /// Takes the callback out, waiting for it if it is running, and drops it outside the
    /// lock (it may hold the last reference to user values).
    fn cancel(&self);
}

/// The callback and its lock, in one allocation.
struct CallSlot<F> {
    f: Mutex<Option<F>>,
}

impl<F: FnOnce() + Send> Callback for CallSlot<F> {
    fn fire(&self) {
        let mut f = self.f.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = f.take() {
            f();
        }
    }

    fn is_cancelled(&self) -> bool {
        match self.f.try_lock() {
            Ok(f) => f.is_none(),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().is_none(),
            Err(std::sync::TryLockError::WouldBlock) => false,
        }
    }

    fn cancel(&self) {
        let f = self.f.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(f);
    }
}

/// The owner's handle of a callback timer (`time::call_at`): dropping it cancels the call.
///
/// Once the drop returns, the callback has either run to its end or will never run: it runs
/// holding the lock that the cancel takes. So a callback may act on state that its owner
/// frees after the drop (a channel waiter's record on its stack). The cancelled entry stays
/// in the heap, dead, until a sweep or its deadline; the callback, with what it captured, is
/// dropped at once.
#[must_use = "dropping the handle cancels the call"]
pub(crate) struct CallTimer(Arc<dyn Callback>);

impl CallTimer {
    pub(crate) fn new(f: impl FnOnce() + Send + 'static) -> CallTimer {
        CallTimer(Arc::new(CallSlot {
            f: Mutex::new(Some(f)),
        }))
    }

    /// The action of the timer's heap entry.
    pub(crate) fn action(&self) -> Action {
        Action::Call(self.0.clone())
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A `time::Sleep`'s timer: the waker to wake, whether it fired, and whether the Sleep was
/// dropped (cancelled) first.
#[derive(Default)]
pub(crate) struct WakeTimer {
    state: Mutex<WakeState>,
}

#[derive(Default)]
struct WakeState {
    waker: Option<std::task::Waker>,
    fired: bool,
    cancelled: bool,
}

impl WakeTimer {
    /// Records the waker to wake; true if the timer has fired already.
    pub(crate) fn register(&self, waker: &std::task::Waker) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.fired {
            st.waker = Some(waker.clone());
        }
        st.fired
    }

    /// The Sleep is gone: firing does nothing, and the entry may be swept.
    pub(crate) fn cancel(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.cancelled = true;
        st.waker = None;
    }

    fn is_cancelled(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancelled
    }

    /// The deadline passed: wakes the task (outside the lock).
    pub(crate) fn fire(&self) {
        let waker = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.fired = true;
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// What a `time::Timer` or `time::Ticker` shares with its heap entries: its generation, and
/// the sending end of its channel. Go: `timer` with `sendTime`.
pub(crate) struct TimerShared {
    pub(crate) state: Mutex<TimerState>,
}

/// Under `TimerShared::state`. Stop, reset and fire all hold it, so a value is never sent for
/// a generation that has been stopped (Go 1.23's guarantee: no stale value after Stop/Reset).
pub(crate) struct TimerState {
    /// Bumped by every stop and reset: entries of older generations are stale.
    pub(crate) gen: u64,
    /// Whether an entry of the current generation is in some heap.
    pub(crate) pending: bool,
    /// For a ticker: the period in ns; the entry is re-armed this far after each deadline.
    pub(crate) period: Option<u64>,
    /// The timer's channel (capacity 1: a fired value waits there until received).
    pub(crate) tx: crate::chan::Sender<Instant>,
}

impl TimerShared {
    pub(crate) fn new(tx: crate::chan::Sender<Instant>) -> Arc<TimerShared> {
        Arc::new(TimerShared {
            state: Mutex::new(TimerState {
                gen: 0,
                pending: false,
                period: None,
                tx,
            }),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, TimerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fires generation `gen` at deadline `when`: sends the deadline on the channel (dropped
    /// if the last one was not received, as Go drops ticks for a slow reader), and for a
    /// ticker returns the next deadline to re-arm at. A timer nobody can receive from any more
    /// stops.
    pub(crate) fn fire(&self, gen: u64, when: u64, now: u64) -> Option<u64> {
        let mut st = self.lock();
        if st.gen != gen || !st.pending {
            return None;
        }
        if let Err(crate::chan::TrySendError::Closed(_)) = st.tx.try_send(nanos_to_instant(when)) {
            st.pending = false;
            return None;
        }
        match st.period {
            Some(p) => {
                // The next tick after `now`, skipping ticks that are already past.
                let p = p.max(1);
                let missed = now.saturating_sub(when) / p;
                Some(when.saturating_add((missed + 1).saturating_mul(p)))
            }
            None => {
                st.pending = false;
                None
            }
        }
    }
}

// The timers' part of the scheduler.
impl Sched {
    /// Adds a timer to P `id`'s heap, then makes sure some M will run it in time: the timer
    /// sleeper is woken if it sleeps past `when`; with no sleeper, an idle M is started (it
    /// becomes the sleeper when it finds nothing to do). Any thread. Go: `addtimer` and
    /// `wakeNetPoller`.
    pub(crate) fn addtimer(self: &Arc<Self>, id: usize, when: u64, action: Action) {
        let shared = &self.allp[id];
        {
            let mut heap = shared.timers.lock().unwrap_or_else(|e| e.into_inner());
            heap.push(when, action);
            // SeqCst: the timer's half of the Delicate dance. An M about to park reads every
            // timer0 (SeqCst) after it stops spinning; we read nmspinning and npidle (in
            // wakep, SeqCst) after this store: one of us sees the other.
            shared.timer0.store(heap.when0(), Ordering::SeqCst);
        }
        // SeqCst: pairs with the sleeper's store of sleep_until and its re-read of the timers
        // (stopm_loop): it sees our timer, or we see it and wake it.
        let until = self.sleep_until.load(Ordering::SeqCst);
        if until == 0 {
            self.wakep();
        } else if when < until {
            if let Some(m) = self
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
                // The others may run user code (a waker, a channel's waiter, the drop of a
                // value the callback held): callback.rs.
                Action::Call(c) => user_code("a timer's callback", || c.fire()),
                Action::Wake(w) => user_code("a Waker::wake called by the timers", || w.fire()),
                Action::Fire(t, gen) => {
                    let next = user_code("a Timer firing", || t.fire(gen, e.when, now));
                    if let Some(next) = next {
                        self.addtimer(id, next, Action::Fire(t, gen));
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
            && self.sleep_until.load(Ordering::SeqCst) == 0
    }
}
