//! The runtime timer behind a [`Timer`](super::Timer), a [`Ticker`](super::Ticker),
//! [`after`](super::after) and [`tick`](super::tick): firing sends the deadline on the timer's
//! channel (Go: `sendTime`); an [`after_func`](super::after_func)'s starts its function in a
//! goroutine instead (Go: `goFunc`).

use crate::chan::{Receiver, Sender, TrySendError};
use crate::runtime::timers::{nanos_to_instant, Home, TimerFunc};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Instant;

/// What a timer shares with its heap entries: its generation (the entries' seq), and the
/// sending end of its channel. Go: `timer` with `sendTime`.
pub(super) struct TimerShared {
    state: Mutex<TimerState>,
}

/// Under `TimerShared::state`. Stop, reset and fire all hold it, so a value is never sent for
/// a generation that has been stopped (Go 1.23's guarantee: no stale value after Stop/Reset).
pub(super) struct TimerState {
    /// Bumped by every stop and reset: entries of older generations are stale.
    gen: u64,
    /// Whether an entry of the current generation is in some heap.
    pub(super) pending: bool,
    /// For a ticker: the period in ns; the entry is re-armed this far after each deadline.
    period: Option<u64>,
    /// The timer's channel (capacity 1: a fired value waits there until received).
    tx: Sender<Instant>,
    /// An `after_func`'s function: firing starts it instead of sending.
    func: Option<AfterFunc>,
}

/// What an `after_func` timer runs, and where.
pub(super) struct AfterFunc {
    /// The function and where it starts, taken by the firing that starts it (it runs at most
    /// once) or by a stop, which drops it at once: a stale entry left in a heap holds neither
    /// what `f` captured nor, through the home, its runtime's scheduler.
    run: Option<(Box<dyn FnOnce() + Send>, Home)>,
    at: &'static std::panic::Location<'static>,
}

impl TimerShared {
    fn new(tx: Sender<Instant>) -> Arc<TimerShared> {
        Arc::new(TimerShared {
            state: Mutex::new(TimerState {
                gen: 0,
                pending: false,
                period: None,
                tx,
                func: None,
            }),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, TimerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TimerFunc for TimerShared {
    fn what(&self) -> &'static str {
        "a Timer firing"
    }

    /// Fires generation `gen` at deadline `when`: sends the deadline on the channel (dropped
    /// if the last one was not received, as Go drops ticks for a slow reader), and for a
    /// ticker returns the next deadline to re-arm at. A timer nobody can receive from any more
    /// stops.
    fn fire(&self, gen: u64, when: u64, now: u64) -> Option<u64> {
        let mut st = self.lock();
        if st.gen != gen || !st.pending {
            return None;
        }
        if let Some(func) = &mut st.func {
            // Taken under the lock, so that a stop that returns false comes after it; started
            // outside it.
            let (run, at) = (func.run.take(), func.at);
            st.pending = false;
            drop(st);
            if let Some((f, home)) = run {
                home.go(f, at);
            }
            return None;
        }
        if let Err(TrySendError::Closed(_)) = st.tx.try_send(nanos_to_instant(when)) {
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

    /// A stopped or reset timer's old entry, or the entry of a timer whose channel nobody can
    /// receive from any more (an `after` or `tick` whose receivers were all dropped: Go 1.23
    /// collects those too), so that heap sweeps drop it before its deadline. Asked under a
    /// timer heap's lock, while the caller may hold this timer's channel (a receive arming
    /// its deadline): a state held by someone else (a reset draining that channel) counts as
    /// live, so the heap never waits for it (runtime/lockrank.rs).
    fn is_stale(&self, gen: u64) -> bool {
        // An after_func's channel is never received from: its function runs whoever holds it.
        let stale = |st: &TimerState| {
            st.gen != gen || !st.pending || (st.func.is_none() && st.tx.receivers_gone())
        };
        match self.state.try_lock() {
            Ok(st) => stale(&st),
            Err(TryLockError::Poisoned(e)) => stale(&e.into_inner()),
            Err(TryLockError::WouldBlock) => false,
        }
    }

    /// A timer may be received from, reset or stopped anywhere once its runtime's `run` has
    /// returned (a plain thread, a later runtime): its entries move to the process-wide heap
    /// then, and an after_func's `f` starts on a thread of its own (`Home::go`).
    fn outlives_runtime(&self) -> bool {
        true
    }
}

/// A timer armed on the caller's runtime and P, or on the process-wide heap (Go: `timer`): its
/// shared half, and where its entries go.
pub(super) struct Armed {
    pub(super) shared: Arc<TimerShared>,
    home: Home,
}

impl Armed {
    /// A timer of the caller's runtime and P (the process-wide heap on a plain thread), not
    /// yet in any heap, sending on `tx`.
    pub(super) fn new(tx: Sender<Instant>) -> Armed {
        Armed {
            shared: TimerShared::new(tx),
            home: Home::here(),
        }
    }

    /// As `new`, for a timer that starts `f` when it fires (`after_func`), on the home's
    /// runtime (a goroutine) or on a thread of its own for the process-wide home.
    pub(super) fn with_func(
        tx: Sender<Instant>,
        f: Box<dyn FnOnce() + Send>,
        at: &'static std::panic::Location<'static>,
    ) -> Armed {
        let armed = Armed::new(tx);
        armed.shared.lock().func = Some(AfterFunc {
            run: Some((f, armed.home.clone())),
            at,
        });
        armed
    }

    /// Puts a new entry in the heap; any older one is now stale. `drain` (under the timer's
    /// lock, so that no fire slips in between) empties the channel of a value fired before.
    /// True if the timer was pending.
    pub(super) fn arm(
        &self,
        when: u64,
        period: Option<u64>,
        drain: Option<&Receiver<Instant>>,
    ) -> bool {
        let (gen, was_pending) = {
            let mut st = self.shared.lock();
            let was = st.pending;
            st.gen += 1;
            st.pending = true;
            st.period = period;
            let mut drained = false;
            if let Some(rx) = drain {
                while rx.try_recv().is_ok() {
                    drained = true;
                }
            }
            (st.gen, was || drained)
        };
        self.home.add(when, self.shared.clone(), gen);
        // No lock held here: the place to drop what sweeps took out (a loop making timers
        // without ever parking would keep them all).
        self.home.check_timers();
        was_pending
    }

    /// Stops the timer: bumps the generation (its heap entries are stale now) and empties the
    /// channel. True if it was pending, or had fired a value nobody received (Go 1.23's
    /// `timerchandrain` counts that as stopping it in time). An after_func's function is taken
    /// out and dropped (outside the lock: its drop is user code), so that what it captured
    /// goes now, not when the stale entry leaves the heap.
    pub(super) fn disarm(&self, rx: &Receiver<Instant>) -> bool {
        let mut st = self.shared.lock();
        let mut stopped = st.pending;
        st.gen += 1;
        st.pending = false;
        while rx.try_recv().is_ok() {
            stopped = true;
        }
        if st.func.is_some() {
            drop_func(st);
        }
        stopped
    }
}

/// Takes an after_func's function out (None unless pending: a firing takes it too) and drops
/// it once the timer's lock is released.
#[cold]
#[inline(never)]
fn drop_func(mut st: MutexGuard<'_, TimerState>) {
    let run = st.func.as_mut().and_then(|func| func.run.take());
    drop(st);
    drop(run);
}
