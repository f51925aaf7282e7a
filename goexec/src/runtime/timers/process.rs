//! The process-wide timer home: where the timers made outside any goroutine go (a plain
//! thread's `Timer`, `after`, `Sleep`, ..., before any runtime exists or after `run` returned).
//!
//! One heap for the process, behind a mutex, run by one thread of its own (`goexec-timers`),
//! started by the first timer added. The thread waits on a condvar until the heap's earliest
//! deadline (a futex wait with the 1 µs timer slack the Ms have, `m::spawn_thread`), fires what
//! is due outside the lock as user code (`callback::user_code`, as a P's `runtimers` does), and
//! waits again. An add whose entry comes before the deadline it waits for wakes it. The thread
//! lives as long as the process, as Go's timer machinery does; it costs nothing while no plain
//! thread makes timers.

use super::heap::{TimerHeap, DUE};
use super::{nanotime, user_code, Action, TimerFunc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::Duration;

/// The heap and the thread's deadline.
struct State {
    heap: TimerHeap,
    /// What the thread waits for: the deadline it sleeps until, `u64::MAX` when it waits for a
    /// first timer, 0 while it runs (it looks at the heap again before it waits).
    sleep_until: u64,
}

/// The process's timers (see the module docs).
pub(super) struct ProcessTimers {
    state: Mutex<State>,
    wake: Condvar,
    /// The heap's earliest deadline, mirrored (stored under the lock): `drop_swept` looks
    /// without locking.
    first: AtomicU64,
}

static TIMERS: ProcessTimers = ProcessTimers {
    state: Mutex::new(State {
        heap: TimerHeap::new(),
        sleep_until: 0,
    }),
    wake: Condvar::new(),
    first: AtomicU64::new(0),
};

/// Starts the thread once.
static START: Once = Once::new();

/// The process's timers.
pub(super) fn process() -> &'static ProcessTimers {
    &TIMERS
}

impl ProcessTimers {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an entry calling `f` with `seq` at `when`, starting the thread the first time.
    /// Any thread. The heap's sweep may take dead entries out into a batch due at once
    /// (`TimerHeap::push`), which this does not drop (the caller may hold a lock): the thread
    /// drops it as it runs what is due, or the Timer API first (`drop_swept`), holding
    /// nothing.
    pub(super) fn add(&'static self, when: u64, f: Arc<dyn TimerFunc>, seq: u64) {
        START.call_once(|| self.start());
        let mut st = self.lock();
        st.heap.push(when, Action::Call(f, seq));
        self.first.store(st.heap.when0(), Ordering::Relaxed);
        if st.heap.when0() < st.sleep_until {
            st.sleep_until = st.heap.when0();
            self.wake.notify_one();
        }
    }

    /// Drops the entries that sweeps took out (the batches due at once, `heap.rs`) on the
    /// calling thread, if they come first, and fires nothing: a plain thread making timers
    /// faster than the timer thread gets to run (a loaded machine) would otherwise pile them
    /// up. For callers holding no runtime lock (the Timer API); dropping them runs no user
    /// code (`TimerHeap::take_swept`). One load when there is nothing to drop.
    pub(super) fn drop_swept(&'static self) {
        if self.first.load(Ordering::Relaxed) != DUE {
            return;
        }
        let swept = {
            let mut st = self.lock();
            let swept = st.heap.take_swept();
            self.first.store(st.heap.when0(), Ordering::Relaxed);
            swept
        };
        drop(swept);
    }

    /// Fires entries taken out of the heap, holding nothing, as user code (as a P's
    /// `runtimers` does); a ticker's goes back in.
    fn fire(&'static self, due: Vec<super::heap::Entry>, now: u64) {
        for e in due {
            match e.action {
                Action::Call(f, seq) => {
                    if let Some(next) = user_code(f.what(), || f.fire(seq, e.when, now)) {
                        self.add(next, f, seq);
                    }
                }
                // Goroutines sleep on their runtime's heaps only.
                Action::Ready(_) => crate::runtime::fatal(
                    "timers",
                    "a goroutine's sleep in the process-wide timer heap",
                ),
            }
        }
    }

    /// Whether any live entry waits: the deadlock check's "a timer could still wake
    /// someone". Stale entries (a stopped `Timer`'s, a cancelled context's deadline) wait to
    /// be swept but wake nobody: counting them would turn the check off until their deadline.
    pub(crate) fn pending(&self) -> bool {
        START.is_completed() && self.lock().heap.any_live()
    }

    /// Starts the thread, through the M threads' start (`m::spawn_thread`): the same check for
    /// room for a thread's mappings (an error that names `vm.max_map_count`), signals blocked
    /// until it has its alternate signal stack, 1 µs of timer slack. Go too ends the program
    /// when it cannot make a thread.
    fn start(&'static self) {
        let spawned =
            crate::runtime::m::spawn_thread("goexec-timers".to_owned(), move || self.run());
        if let Err(e) = spawned {
            crate::runtime::fatal("timers", &format!("cannot start the timer thread: {e}"));
        }
    }

    /// The thread: fires due entries, waits for the next.
    fn run(&'static self) {
        let mut st = self.lock();
        loop {
            let now = nanotime();
            let mut due = Vec::new();
            while let Some(e) = st.heap.pop_due(now) {
                due.push(e);
            }
            if !due.is_empty() {
                self.first.store(st.heap.when0(), Ordering::Relaxed);
                st.sleep_until = 0;
                drop(st);
                self.fire(due, now);
                st = self.lock();
                continue;
            }
            st = match st.heap.when0() {
                0 => {
                    st.sleep_until = u64::MAX;
                    self.wake.wait(st).unwrap_or_else(|e| e.into_inner())
                }
                w => {
                    st.sleep_until = w;
                    let d = Duration::from_nanos(w - now);
                    self.wake
                        .wait_timeout(st, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}
