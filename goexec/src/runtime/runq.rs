//! A P's local run queue: Go's `runq` (proc.go `runqput`, `runqget`, `runqgrab`, `runqsteal`).
//!
//! A ring of [`RUNQ_SIZE`] slots with two counters, `head` and `tail`, that only ever grow
//! (wrapping); slot `i % RUNQ_SIZE` holds item `i` for `head <= i < tail`.
//!
//! - `tail` is written only by the owner (the M holding the P), with a Release store that
//!   publishes the slot written just before.
//! - `head` is advanced by whoever consumes: the owner popping, or a thief stealing half. Each
//!   consumer reads the slots it wants *first*, then commits with a CAS on `head`; a failed CAS
//!   means someone else consumed them, and the values read are discarded.
//!
//! The handles carry the rule (tokio's split): [`Local`] is the owner's and takes `&mut self`;
//! [`Steal`] may be used by any thread. Slots are atomics (Relaxed) because a thief may read a
//! slot that the owner is overwriting after the thief's snapshot went stale; its CAS then fails,
//! but the read itself must not be a data race.
//!
//! Under `cfg(loom)` the ring shrinks to 4 slots so that the model explores the overflow and
//! wrap-around paths; the model is in the tests at the end of this file.
#![allow(unsafe_code)] // items are raw pointers owned by the queue while they sit in it.

use crate::loom::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// Slots per local run queue: Go's 256, enough that a P rarely spills to the global queue, small
/// enough that stealing half of it is cheap. 4 under loom.
pub(crate) const RUNQ_SIZE: usize = if cfg!(loom) { 4 } else { 256 };

struct Queue<T> {
    /// Next item to consume. Any consumer, CAS (see the ordering notes at each use).
    head: AtomicU32,
    /// Next free slot. Written by the owner only.
    tail: AtomicU32,
    buf: Box<[AtomicPtr<T>]>,
}

/// The owner's handle: push, pop, and take stolen items into.
pub(crate) struct Local<T> {
    q: Arc<Queue<T>>,
}

/// Any thread's handle: steal half, or look at the length.
pub(crate) struct Steal<T> {
    q: Arc<Queue<T>>,
}

// SAFETY: the queue only moves raw pointers between threads; what they point to is the
// caller's business (a G, handed over with the ownership protocol of runtime::g). The counters
// and slots are atomics.
unsafe impl<T> Send for Local<T> {}
// SAFETY: as above; Steal's methods take &self and use only atomics.
unsafe impl<T> Send for Steal<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Steal<T> {}

/// A new empty queue: the owner's handle and a thieves' handle.
pub(crate) fn new<T>() -> (Local<T>, Steal<T>) {
    let buf = (0..RUNQ_SIZE)
        .map(|_| AtomicPtr::new(ptr::null_mut()))
        .collect();
    let q = Arc::new(Queue {
        head: AtomicU32::new(0),
        tail: AtomicU32::new(0),
        buf,
    });
    (Local { q: q.clone() }, Steal { q })
}

impl<T> Queue<T> {
    fn slot(&self, i: u32) -> &AtomicPtr<T> {
        &self.buf[i as usize % RUNQ_SIZE]
    }

    fn len(&self) -> usize {
        // Acquire on both, as in grab: a consistent-enough snapshot for a length hint.
        let h = self.head.load(Ordering::Acquire);
        let t = self.tail.load(Ordering::Acquire);
        (t.wrapping_sub(h) as usize).min(RUNQ_SIZE)
    }

    /// Copies up to half of this queue into `dst`'s free slots starting at `dst_tail` and
    /// commits by advancing our head; returns how many. Go: `runqgrab`.
    fn grab(&self, dst: &Queue<T>, dst_tail: u32) -> usize {
        loop {
            // Acquire: pairs with consumers' Release CAS, so we see the latest head...
            let h = self.head.load(Ordering::Acquire);
            // ...and with the owner's Release store of tail: the slots below t are written.
            let t = self.tail.load(Ordering::Acquire);
            let n = t.wrapping_sub(h) as usize;
            let n = n - n / 2;
            if n == 0 {
                return 0;
            }
            if n > RUNQ_SIZE / 2 {
                // h and t were read at different times and are inconsistent: retry.
                continue;
            }
            for i in 0..n as u32 {
                let item = self.slot(h.wrapping_add(i)).load(Ordering::Relaxed);
                dst.slot(dst_tail.wrapping_add(i))
                    .store(item, Ordering::Relaxed);
            }
            // Release: the reads above happen before anyone sees the slots as free and the
            // owner overwrites them (its head load is Acquire). Failure: someone else consumed
            // first; our copies are garbage and are overwritten on the next try.
            if self
                .head
                .compare_exchange(
                    h,
                    h.wrapping_add(n as u32),
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return n;
            }
        }
    }
}

impl<T> Local<T> {
    /// Items in the queue (a hint: thieves may be taking some right now).
    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }

    /// Appends `item`. When the ring is full, moves half of it plus `item` into `overflow` (for
    /// the global queue) instead. Go: `runqput` (without `runnext`) and `runqputslow`.
    /// Executed only by the owner.
    pub(crate) fn push_back(&mut self, item: NonNull<T>, overflow: &mut Vec<NonNull<T>>) {
        loop {
            // Acquire: pairs with consumers' Release CAS; slots below h are free to reuse.
            let h = self.q.head.load(Ordering::Acquire);
            // Relaxed: only we write tail.
            let t = self.q.tail.load(Ordering::Relaxed);
            if (t.wrapping_sub(h) as usize) < RUNQ_SIZE {
                self.q.slot(t).store(item.as_ptr(), Ordering::Relaxed);
                // Release: publishes the slot; pairs with the Acquire tail loads of consumers.
                self.q.tail.store(t.wrapping_add(1), Ordering::Release);
                return;
            }
            if self.push_slow(h, t, item, overflow) {
                return;
            }
            // A consumer took items meanwhile: there is room now.
        }
    }

    /// The ring is full: takes its older half out (committing with a CAS on head) and puts it,
    /// then `item`, in `overflow`. False if a consumer got in first. Go: `runqputslow`.
    fn push_slow(
        &mut self,
        h: u32,
        t: u32,
        item: NonNull<T>,
        overflow: &mut Vec<NonNull<T>>,
    ) -> bool {
        let n = (t.wrapping_sub(h) as usize) / 2;
        debug_assert_eq!(n, RUNQ_SIZE / 2, "runqputslow: queue is not full");
        let start = overflow.len();
        // One allocation for the batch and `item` (Go uses an array on the stack).
        overflow.reserve(n + 1);
        for i in 0..n as u32 {
            let p = self.q.slot(h.wrapping_add(i)).load(Ordering::Relaxed);
            overflow.extend(NonNull::new(p));
        }
        // Release: as in grab, our reads of the slots happen before they are reused.
        if self
            .q
            .head
            .compare_exchange(
                h,
                h.wrapping_add(n as u32),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            overflow.truncate(start);
            return false;
        }
        overflow.push(item);
        true
    }

    /// Takes the oldest item. Go: `runqget` (without `runnext`). Executed only by the owner.
    pub(crate) fn pop(&mut self) -> Option<NonNull<T>> {
        loop {
            // Acquire: pairs with thieves' Release CAS.
            let h = self.q.head.load(Ordering::Acquire);
            // Relaxed: only we write tail.
            let t = self.q.tail.load(Ordering::Relaxed);
            if t == h {
                return None;
            }
            let item = self.q.slot(h).load(Ordering::Relaxed);
            // Release: our read of the slot happens before it is reused. Failure: a thief took
            // it; retry with the new head.
            if self
                .q
                .head
                .compare_exchange(h, h.wrapping_add(1), Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return NonNull::new(item);
            }
        }
    }
}

impl<T> Steal<T> {
    /// Items in the queue (a hint).
    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether the queue looks empty (a hint, as `len`).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Steals half of this queue into `dst`, which must be empty (the caller found nothing
    /// there), and returns one of the stolen items to run now. Go: `runqsteal`.
    pub(crate) fn steal_into(&self, dst: &mut Local<T>) -> Option<NonNull<T>> {
        // Relaxed: dst's tail is written only by its owner, which is us.
        let dt = dst.q.tail.load(Ordering::Relaxed);
        let n = self.q.grab(&dst.q, dt);
        if n == 0 {
            return None;
        }
        let n = n as u32;
        let last = dst.q.slot(dt.wrapping_add(n - 1)).load(Ordering::Relaxed);
        if n > 1 {
            // Release: publishes the stolen items (all but the one we run) to dst's consumers.
            dst.q.tail.store(dt.wrapping_add(n - 1), Ordering::Release);
        }
        NonNull::new(last)
    }
}

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        // Items left in a dropped queue would be lost goroutines; the scheduler drains every
        // P's queue before dropping it (debug builds check).
        if !std::thread::panicking() {
            debug_assert_eq!(self.len(), 0, "runq::Local dropped with items in it");
        }
    }
}

/// Items for the tests and the loom model: boxed numbers, leaked in and reclaimed out.
#[cfg(test)]
mod test_items {
    use std::ptr::NonNull;

    pub(super) fn item(v: usize) -> NonNull<usize> {
        NonNull::from(Box::leak(Box::new(v)))
    }

    pub(super) fn take(p: NonNull<usize>) -> usize {
        // SAFETY: every item in the tests came from `item` and is taken out exactly once.
        *unsafe { Box::from_raw(p.as_ptr()) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::test_items::{item, take};
    use super::*;

    #[test]
    fn fifo_and_overflow_to_global() {
        let (mut local, steal) = new::<usize>();
        let mut overflow = Vec::new();
        for v in 0..RUNQ_SIZE {
            local.push_back(item(v), &mut overflow);
        }
        assert!(overflow.is_empty());
        assert_eq!(steal.len(), RUNQ_SIZE);
        // Full: half of the ring (the oldest) and the new item go to the overflow batch.
        local.push_back(item(RUNQ_SIZE), &mut overflow);
        let spilled: Vec<usize> = overflow.drain(..).map(take).collect();
        let expected: Vec<usize> = (0..RUNQ_SIZE / 2).chain([RUNQ_SIZE]).collect();
        assert_eq!(spilled, expected);
        let rest: Vec<usize> = std::iter::from_fn(|| local.pop()).map(take).collect();
        assert_eq!(rest, (RUNQ_SIZE / 2..RUNQ_SIZE).collect::<Vec<_>>());
    }

    #[test]
    fn steal_takes_half_and_returns_one() {
        let (mut victim, victim_steal) = new::<usize>();
        let (mut mine, _) = new::<usize>();
        let mut overflow = Vec::new();
        for v in 0..10 {
            victim.push_back(item(v), &mut overflow);
        }
        let got = victim_steal.steal_into(&mut mine).map(take);
        assert_eq!(
            got,
            Some(4),
            "steals the oldest five, runs the last of them"
        );
        let mine_items: Vec<usize> = std::iter::from_fn(|| mine.pop()).map(take).collect();
        assert_eq!(mine_items, [0, 1, 2, 3]);
        let left: Vec<usize> = std::iter::from_fn(|| victim.pop()).map(take).collect();
        assert_eq!(left, [5, 6, 7, 8, 9]);
    }

    /// One owner pushing and popping, two thieves stealing, across many wrap-arounds: every
    /// item comes out exactly once.
    #[test]
    fn concurrent_steal_stress() {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        const N: usize = 200_000;
        let (mut owner, steal) = new::<usize>();
        let steal = Arc::new(steal);
        let done = Arc::new(AtomicBool::new(false));
        let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let (steal, done, seen) = (steal.clone(), done.clone(), seen.clone());
                std::thread::spawn(move || {
                    let (mut mine, _) = new::<usize>();
                    loop {
                        let finished = done.load(std::sync::atomic::Ordering::Acquire);
                        if let Some(p) = steal.steal_into(&mut mine) {
                            seen[take(p)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            while let Some(p) = mine.pop() {
                                seen[take(p)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        } else if finished {
                            return;
                        }
                    }
                })
            })
            .collect();
        let mut overflow = Vec::new();
        for v in 0..N {
            owner.push_back(item(v), &mut overflow);
            if v % 3 == 0 {
                if let Some(p) = owner.pop() {
                    seen[take(p)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        while let Some(p) = owner.pop() {
            seen[take(p)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        for t in thieves {
            t.join().unwrap();
        }
        for p in overflow {
            seen[take(p)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for (v, count) in seen.iter().enumerate() {
            assert_eq!(
                count.load(std::sync::atomic::Ordering::Relaxed),
                1,
                "item {v}"
            );
        }
    }
}

/// The loom model: `RUSTFLAGS="--cfg loom" cargo test -p goexec --lib --release runq`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::test_items::{item, take};
    use super::*;

    /// The owner pushes past capacity (spilling) and pops while a thief steals: every item is
    /// accounted for exactly once, in every interleaving.
    #[test]
    fn push_pop_steal() {
        loom::model(|| {
            let (mut owner, steal) = new::<usize>();
            let thief = loom::thread::spawn(move || {
                let (mut mine, _) = new::<usize>();
                let mut got = Vec::new();
                if let Some(p) = steal.steal_into(&mut mine) {
                    got.push(take(p));
                    while let Some(p) = mine.pop() {
                        got.push(take(p));
                    }
                }
                got
            });
            let mut overflow = Vec::new();
            let mut got = Vec::new();
            for v in 0..RUNQ_SIZE + 1 {
                owner.push_back(item(v), &mut overflow);
            }
            if let Some(p) = owner.pop() {
                got.push(take(p));
            }
            got.extend(thief.join().unwrap());
            while let Some(p) = owner.pop() {
                got.push(take(p));
            }
            got.extend(overflow.into_iter().map(take));
            got.sort_unstable();
            assert_eq!(got, (0..RUNQ_SIZE + 1).collect::<Vec<_>>());
        });
    }
}
