//! A P's timer heap: entries by deadline, stale ones swept out as it grows.

use super::{Action, TimerFunc};
use std::sync::{Arc, Mutex};

/// The deadline of an entry due at once (`when0` reads 0 as "no timer"): the entries a sweep
/// took out ([`Swept`]).
pub(crate) const DUE: u64 = 1;

/// Entries a sweep took out, dropped when this fires (see [`TimerHeap::push`]).
struct Swept(Mutex<Vec<Entry>>);

impl TimerFunc for Swept {
    fn what(&self) -> &'static str {
        "the drop of a stopped timer"
    }

    fn fire(&self, _: u64, _: u64, _: u64) -> Option<u64> {
        let dead = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        drop(dead);
        None
    }

    fn is_stale(&self, _: u64) -> bool {
        false
    }

    fn is_swept(&self) -> bool {
        true
    }
}

/// A heap entry.
pub(crate) struct Entry {
    pub(crate) when: u64,
    /// Insertion order, so that equal deadlines fire first-in first-out.
    order: u64,
    pub(crate) action: Action,
}

/// A 4-ary min-heap of entries by deadline (Go uses 4-ary heaps too: shallower than binary,
/// and a parent's four children share a cache line or two).
pub(crate) struct TimerHeap {
    heap: Vec<Entry>,
    order: u64,
    /// The size at which the next push sweeps dead entries out first: twice the size after
    /// the last sweep, or after the last pop if that is less (a heap that fired a peak of
    /// timers does not let that many dead ones gather after it). A server arming a 30 s
    /// timeout per request and dropping it a millisecond later keeps its heap at about the
    /// live timers (at most twice, or `SWEEP_MIN`), at O(1) amortised: a sweep of n entries
    /// comes at least n/2 pushes after the last.
    sweep_at: usize,
    /// Set by [`close`](TimerHeap::close) (its runtime's teardown): entries no longer go in.
    closed: bool,
}

/// The smallest heap worth sweeping.
const SWEEP_MIN: usize = 64;

impl Default for TimerHeap {
    fn default() -> TimerHeap {
        TimerHeap::new()
    }
}

impl TimerHeap {
    /// An empty heap (const: the process-wide heap is a static).
    pub(crate) const fn new() -> TimerHeap {
        TimerHeap {
            heap: Vec::new(),
            order: 0,
            sweep_at: 0,
            closed: false,
        }
    }

    /// The earliest deadline, or 0 when empty.
    pub(crate) fn when0(&self) -> u64 {
        self.heap.first().map_or(0, |e| e.when)
    }

    /// Adds an entry. A push that sweeps does not drop the dead entries it takes out: dropping
    /// one may drop a timer's last reference, and with it its channel's last sender, which
    /// closes that channel, and the caller may hold that very channel's lock (a receive arming
    /// its deadline) or another's. They go into an entry due at once, so that the P's next
    /// `runtimers` drops them, on its M, holding nothing (runtime/lockrank.rs); a thread that
    /// makes timers without ever parking drops them from the Timer API
    /// (`Home::check_timers`, through [`take_swept`](TimerHeap::take_swept)).
    pub(crate) fn push(&mut self, when: u64, action: Action) {
        if self.heap.len() >= self.sweep_at.max(SWEEP_MIN) {
            let dead = self.sweep();
            if !dead.is_empty() {
                let swept: Arc<dyn TimerFunc> = Arc::new(Swept(Mutex::new(dead)));
                self.insert(DUE, Action::Call(swept, 0));
            }
        }
        self.insert(when, action);
    }

    fn insert(&mut self, when: u64, action: Action) {
        self.order += 1;
        self.heap.push(Entry {
            when,
            order: self.order,
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

    /// Takes out the entries that sweeps took out (the batches due at once), if they come
    /// first, and nothing else: the caller drops them once the lock is released. Dropping them
    /// runs no user code: they were stale, so no function of theirs is left to drop (a stopped
    /// after_func's went at its stop) and no channel of theirs has a receiver left to wake.
    pub(crate) fn take_swept(&mut self) -> Vec<Entry> {
        let mut swept = Vec::new();
        while let Some(e) = self.heap.first() {
            match &e.action {
                Action::Call(f, _) if e.when == DUE && f.is_swept() => {}
                _ => break,
            }
            swept.extend(self.pop_due(DUE));
        }
        swept
    }

    /// Takes the dead entries out (Go: `adjusttimers` / `cleantimers`) and restores the heap.
    fn sweep(&mut self) -> Vec<Entry> {
        let (live, dead) = std::mem::take(&mut self.heap)
            .into_iter()
            .partition(|e| !e.action.is_dead());
        self.heap = live;
        for i in (0..self.heap.len()).rev() {
            self.sift_down(i);
        }
        self.sweep_at = 2 * self.heap.len();
        dead
    }

    /// Whether any entry would do something when it fires: stale entries (a stopped timer's,
    /// a cancelled context's) wait to be swept but wake nobody. Under the heap's lock, as a
    /// sweep: `is_stale` neither blocks nor runs user code.
    pub(crate) fn any_live(&self) -> bool {
        self.heap.iter().any(|e| !e.action.is_dead())
    }

    /// The number of entries (live or not yet swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Takes every entry out and lets none in from then on (its runtime's teardown: entries
    /// added later go elsewhere, `Sched::addtimer`).
    pub(crate) fn close(&mut self) -> Vec<Entry> {
        self.closed = true;
        std::mem::take(&mut self.heap)
    }

    /// Whether [`close`](TimerHeap::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.heap[a], &self.heap[b]);
        (x.when, x.order) < (y.when, y.order)
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

#[cfg(test)]
mod tests {
    use super::super::{CallTimer, TimerFunc};
    use super::*;
    use crate::runtime::g::GRef;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;

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
        let mut order = 0;
        for round in 0..200 {
            for _ in 0..(next() % 20) {
                let when = 1 + next() % 50;
                order += 1;
                h.push(when, Action::Ready(dummy_g()));
                model.push((when, order));
            }
            let now = (round % 50) + 1;
            model.sort();
            let due: Vec<_> = model
                .iter()
                .copied()
                .take_while(|&(w, _)| w <= now)
                .collect();
            model.retain(|&(w, _)| w > now);
            for (w, o) in due {
                let e = h.pop_due(now).expect("a due entry");
                assert_eq!((e.when, e.order), (w, o));
            }
            assert!(h.pop_due(now).is_none());
            assert_eq!(h.when0(), model.first().map_or(0, |m| m.0));
        }
    }

    /// A function whose entries of older seqs are stale, as a reset `Timer`'s.
    struct Seq(AtomicU64);

    impl TimerFunc for Seq {
        fn what(&self) -> &'static str {
            "a test timer"
        }
        fn fire(&self, _: u64, _: u64, _: u64) -> Option<u64> {
            None
        }
        fn is_stale(&self, seq: u64) -> bool {
            self.0.load(Ordering::Relaxed) != seq
        }
    }

    /// What the P's `runtimers` does with the entries a sweep took out: they are due at once,
    /// and firing them drops them.
    fn run_swept(h: &mut TimerHeap) {
        while let Some(e) = h.pop_due(DUE) {
            let Action::Call(f, seq) = e.action else {
                panic!("a goroutine's entry due at once")
            };
            assert_eq!(f.fire(seq, e.when, DUE), None);
        }
    }

    /// Entries whose seq has moved on (reset timers') are swept as the heap grows: it stays
    /// near the live count.
    #[test]
    fn stale_entries_are_swept() {
        let mut h = TimerHeap::default();
        let live: Arc<dyn TimerFunc> = Arc::new(Seq(AtomicU64::new(7)));
        for i in 0..10 {
            h.push(1_000 + i, Action::Call(live.clone(), 7));
        }
        let reset = Arc::new(Seq(AtomicU64::new(0)));
        for i in 0..100_000u64 {
            h.push(10_000 + i, Action::Call(reset.clone(), i));
            reset.0.store(i + 1, Ordering::Relaxed); // reset right away
            run_swept(&mut h);
        }
        assert_eq!(
            Arc::strong_count(&reset),
            1 + h.len() - 10,
            "swept entries were kept"
        );
        assert!(h.len() < 200, "{} entries left", h.len());
        // The live ones are all still there, in order.
        for i in 0..10 {
            let e = h.pop_due(u64::MAX).expect("a live entry");
            assert_eq!(e.when, 1_000 + i);
        }
    }

    /// Cancelled calls are dropped at once, their entries swept as the heap grows, even after
    /// a peak of live timers has fired; the live ones still run.
    #[test]
    fn cancelled_calls_are_dropped_and_swept() {
        let mut h = TimerHeap::default();
        for i in 0..10_000u64 {
            h.push(i, Action::Ready(dummy_g()));
        }
        while h.pop_due(u64::MAX).is_some() {}
        let ran = Arc::new(AtomicUsize::new(0));
        let live: Vec<_> = (0..10)
            .map(|i| {
                let ran = ran.clone();
                let t = CallTimer::new(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
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
            run_swept(&mut h);
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
            let Action::Call(f, seq) = e.action else {
                panic!("not a call")
            };
            assert_eq!(f.fire(seq, e.when, e.when), None);
        }
        assert_eq!(ran.load(Ordering::Relaxed), 10);
        drop(live);
    }

    fn dummy_g() -> GRef {
        // Entries are only compared, never fired: any G pointer will do. One record, leaked.
        static G: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let p = *G.get_or_init(|| {
            let sched = crate::runtime::sched::Sched::new(
                1,
                crate::stack::DEFAULT_STACK_SIZE,
                Default::default(),
                Default::default(),
            )
            .expect("sched");
            GRef::alloc(sched).as_queue().as_ptr() as usize
        });
        GRef::from_queue(std::ptr::NonNull::new(p as *mut _).expect("non-null"))
    }
}
