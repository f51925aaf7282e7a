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

/// A heap entry.
pub(crate) struct Entry {
    pub(crate) when: u64,
    /// Insertion order, so that equal deadlines fire first-in first-out.
    seq: u64,
    pub(crate) action: Action,
}

/// A 4-ary min-heap of entries by deadline (Go uses 4-ary heaps too: shallower than binary,
/// and a parent's four children share a cache line or two).
#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: Vec<Entry>,
    seq: u64,
    /// The size at which the next push sweeps dead entries out first: twice the size after
    /// the last sweep, or after the last pop if that is less (a heap that fired a peak of
    /// timers does not let that many dead ones gather after it). A server arming a 30 s
    /// timeout per request and dropping it a millisecond later keeps its heap at about the
    /// live timers (at most twice, or `SWEEP_MIN`), at O(1) amortised: a sweep of n entries
    /// comes at least n/2 pushes after the last.
    sweep_at: usize,
}

/// The smallest heap worth sweeping.
const SWEEP_MIN: usize = 64;

impl TimerHeap {
    /// The earliest deadline, or 0 when empty.
    pub(crate) fn when0(&self) -> u64 {
        self.heap.first().map_or(0, |e| e.when)
    }

    pub(crate) fn push(&mut self, when: u64, action: Action) {
        if self.heap.len() >= self.sweep_at.max(SWEEP_MIN) {
            self.sweep();
        }
        self.seq += 1;
        self.heap.push(Entry {
            when,
            seq: self.seq,
            action,
        });
        self.sift_up(self.heap.len() - 1);
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<Entry> {
        if self.heap.first()?.when > now {
            return None;
        }
        let last = self.heap.len() - 1;
        self.heap.swap(0, last);
        let e = self.heap.pop();
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        self.sweep_at = self.sweep_at.min(2 * self.heap.len());
        e
    }

    /// Drops the dead entries (Go: `adjusttimers` / `cleantimers`) and restores the heap.
    fn sweep(&mut self) {
        self.heap.retain(|e| !e.action.is_dead());
        for i in (0..self.heap.len()).rev() {
            self.sift_down(i);
        }
        self.sweep_at = 2 * self.heap.len();
    }

    /// The number of entries (live or not yet swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Takes every entry out (teardown).
    pub(crate) fn drain(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.heap)
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.heap[a], &self.heap[b]);
        (x.when, x.seq) < (y.when, y.seq)
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 4;
            if !self.less(i, parent) {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let first = 4 * i + 1;
            if first >= n {
                return;
            }
            let mut min = first;
            for c in first + 1..(first + 4).min(n) {
                if self.less(c, min) {
                    min = c;
                }
            }
            if !self.less(min, i) {
                return;
            }
            self.heap.swap(i, min);
            i = min;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The heap pops in deadline order, equal deadlines first-in first-out, across random
    /// pushes and partial drains.
    #[test]
    fn heap_pops_in_order() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut h = TimerHeap::default();
        let mut model: Vec<(u64, u64)> = Vec::new();
        let mut seq = 0;
        for round in 0..200 {
            for _ in 0..(next() % 20) {
                let when = 1 + next() % 50;
                seq += 1;
                h.push(when, Action::Ready(dummy_g()));
                model.push((when, seq));
            }
            let now = (round % 50) + 1;
            model.sort();
            let due: Vec<_> = model
                .iter()
                .copied()
                .take_while(|&(w, _)| w <= now)
                .collect();
            model.retain(|&(w, _)| w > now);
            for (w, s) in due {
                let e = h.pop_due(now).expect("a due entry");
                assert_eq!((e.when, e.seq), (w, s));
            }
            assert!(h.pop_due(now).is_none());
            assert_eq!(h.when0(), model.first().map_or(0, |m| m.0));
        }
    }

    /// Dropped Sleeps' entries are swept as the heap grows: it stays near the live count.
    #[test]
    fn dead_entries_are_swept() {
        let mut h = TimerHeap::default();
        let live: Vec<Arc<WakeTimer>> = (0..10).map(|_| Arc::default()).collect();
        for (i, w) in live.iter().enumerate() {
            h.push(1_000 + i as u64, Action::Wake(w.clone()));
        }
        for i in 0..100_000u64 {
            let w = Arc::new(WakeTimer::default());
            h.push(10_000 + i, Action::Wake(w.clone()));
            w.cancel(); // dropped right away, as a request's timeout usually is
        }
        assert!(h.len() < 200, "{} entries left", h.len());
        // The live ones are all still there, in order.
        for i in 0..10 {
            let e = h.pop_due(u64::MAX).expect("a live entry");
            assert_eq!(e.when, 1_000 + i);
        }
    }

    /// Cancelled callbacks are dropped at once, their entries swept as the heap grows, even
    /// after a peak of live timers has fired; the live ones still run.
    #[test]
    fn cancelled_calls_are_dropped_and_swept() {
        let mut h = TimerHeap::default();
        for i in 0..10_000u64 {
            h.push(i, Action::Ready(dummy_g()));
        }
        while h.pop_due(u64::MAX).is_some() {}
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let live: Vec<CallTimer> = (0..10)
            .map(|i| {
                let ran = ran.clone();
                let t = CallTimer::new(move || {
                    ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                });
                h.push(1_000 + i, t.action());
                t
            })
            .collect();
        let captured = Arc::new(());
        for i in 0..100_000u64 {
            let held = captured.clone();
            let t = CallTimer::new(move || drop(held));
            h.push(10_000 + i, t.action());
            drop(t); // the operation ended at once, as most do
            assert_eq!(
                Arc::strong_count(&captured),
                1,
                "a cancelled callback was kept"
            );
            assert!(
                h.len() < 200,
                "{} entries after {i} cancelled calls",
                h.len()
            );
        }
        // The live ones are all still there, in order, and run.
        for i in 0..10 {
            let e = h.pop_due(u64::MAX).expect("a live entry");
            assert_eq!(e.when, 1_000 + i);
            let Action::Call(c) = e.action else {
                panic!("not a call")
            };
            c.fire();
        }
        assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 10);
        drop(live);
    }

    fn dummy_g() -> GRef {
        // Entries are only compared, never fired: any G pointer will do. One record, leaked.
        static G: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let p = *G.get_or_init(|| {
            let sched = super::super::sched::Sched::new(
                1,
                crate::stack::DEFAULT_STACK_SIZE,
                Default::default(),
            )
            .expect("sched");
            GRef::alloc(sched).as_queue().as_ptr() as usize
        });
        GRef::from_queue(std::ptr::NonNull::new(p as *mut _).expect("non-null"))
    }
}
