//! A task's state word and the joiner's waiter slot: who owns what, when, with no locks (as
//! tokio's task state does). The task cell (`join.rs`) keeps one [`State`] in its header.
//!
//! `COMPLETE` (bit 0): the result is in the stage. `JOIN_WAITER` (bit 1): the handle has put a
//! waiter in the slot. `ABANDONED` (bit 2): the goroutine started but will never finish, because
//! its runtime shut down while it was parked or queued. The rest counts references (`REF_ONE`
//! each).
//!
//! - The stage belongs to the goroutine side until it sets `COMPLETE` (Release), then to the
//!   handle, which reads it after seeing `COMPLETE` (Acquire). An abandoned goroutine never sets
//!   `COMPLETE`, and the handle never reads its stage.
//! - The waiter slot belongs to the handle until it sets `JOIN_WAITER` (Release), then to the
//!   side that *ends* the task, the first to set `COMPLETE` or `ABANDONED`, which takes it after
//!   seeing `JOIN_WAITER` (Acquire) and wakes it. Whoever sets their bit second sees the other's:
//!   if the handle finds the task ended already when it sets `JOIN_WAITER`, nobody has looked at
//!   the slot and nobody will, so the handle takes its waiter back.
//! - The last reference dropped frees the cell (and whatever the stage still holds).
//!
//! Under `cfg(loom)` the word and the slot are loom's, and the model below drives them through
//! the steps `join.rs` takes.
#![allow(unsafe_code)] // the waiter slot is shared; the state word decides its owner (above)

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};

const COMPLETE: usize = 0b001;
const JOIN_WAITER: usize = 0b010;
const ABANDONED: usize = 0b100;
/// The task has ended, one way or the other: `join` returns without waiting.
const ENDED: usize = COMPLETE | ABANDONED;
const REF_ONE: usize = 0b1000;
const REF_MASK: usize = !(REF_ONE - 1);

/// The state word and the waiter slot of one task; `W` is whoever waits to join it.
pub(super) struct State<W> {
    /// See the module docs.
    word: AtomicUsize,
    /// The joiner, while it waits; owned as the module docs say.
    waiter: UnsafeCell<Option<W>>,
}

impl<W> State<W> {
    /// A task that has not ended, with no waiter and two references: the goroutine side's and
    /// the handle's.
    pub(super) fn new() -> Self {
        State {
            word: AtomicUsize::new(2 * REF_ONE),
            waiter: UnsafeCell::new(None),
        }
    }

    /// The goroutine side's end, with its result in the stage (or its cancellation): the
    /// handle's waiter to wake, if this ended the task and the handle had registered one.
    ///
    /// # Safety
    ///
    /// The caller is the goroutine side, once: the stage is written and from here on the
    /// handle's, which reads it as soon as it sees `COMPLETE`.
    #[inline]
    pub(super) unsafe fn complete(&self) -> Option<W> {
        self.end(COMPLETE)
    }

    /// Shutdown's end for a goroutine that started but will never finish: the handle's waiter
    /// to wake, as [`complete`](State::complete). Idempotent.
    #[inline]
    pub(super) fn abandon(&self) -> Option<W> {
        self.end(ABANDONED)
    }

    #[inline]
    fn end(&self, bit: usize) -> Option<W> {
        // AcqRel: publishes the stage or the end (Release), and takes over the waiter slot if
        // the handle has filled it (Acquire).
        let prev = self.word.fetch_or(bit, Ordering::AcqRel);
        if prev & (JOIN_WAITER | ENDED) != JOIN_WAITER {
            return None;
        }
        // SAFETY: we ended the task first and the handle had given up the slot (module docs):
        // nobody else touches it now.
        self.waiter.with_ptr(|w| unsafe { (*w).take() })
    }

    /// Whether the task has ended (completed or abandoned), seen with Acquire.
    #[inline]
    pub(super) fn is_ended(&self) -> bool {
        self.word.load(Ordering::Acquire) & ENDED != 0
    }

    /// Whether the goroutine side has completed, seen with Acquire: then the stage is the
    /// handle's.
    #[inline]
    pub(super) fn is_complete(&self) -> bool {
        self.word.load(Ordering::Acquire) & COMPLETE != 0
    }

    /// Makes the waiter slot the handle's again if a poll left a waker in it: clears
    /// `JOIN_WAITER` (dropping that waker) unless the task ends first (then the ending side
    /// owns the slot, and the handle must not touch it). False if the task has ended.
    ///
    /// # Safety
    ///
    /// The caller is the task's handle.
    #[inline]
    pub(super) unsafe fn reclaim_slot(&self) -> bool {
        let mut s = self.word.load(Ordering::Acquire);
        loop {
            if s & ENDED != 0 {
                return false;
            }
            if s & JOIN_WAITER == 0 {
                return true;
            }
            match self.word.compare_exchange(
                s,
                s & !JOIN_WAITER,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: JOIN_WAITER is clear and the task had not ended: the ending side
                    // will not look at the slot (it reads JOIN_WAITER as it ends the task).
                    drop(self.waiter.with_ptr(|w| unsafe { (*w).take() }));
                    return true;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Puts the handle's waiter in the slot, before [`publish_waiter`](State::publish_waiter).
    ///
    /// # Safety
    ///
    /// The caller is the task's handle, and the slot is its own: `reclaim_slot` returned true,
    /// and the handle has not published the slot since.
    #[inline]
    pub(super) unsafe fn set_waiter(&self, waiter: W) {
        // SAFETY: the caller's promise.
        self.waiter.with_ptr(|w| unsafe { *w = Some(waiter) });
    }

    /// Hands the slot to the side that will end the task (`JOIN_WAITER`, Release): true if
    /// that side will wake the waiter. False if the task had ended already (seen with
    /// Acquire): nobody has looked at the slot and nobody will, so it is the handle's again.
    ///
    /// # Safety
    ///
    /// The caller is the task's handle, and the slot is its own (as for `set_waiter`).
    #[inline]
    pub(super) unsafe fn publish_waiter(&self) -> bool {
        self.word.fetch_or(JOIN_WAITER, Ordering::AcqRel) & ENDED == 0
    }

    /// Takes the handle's waiter back out of the slot: `None` when the ending side took it to
    /// wake it.
    ///
    /// # Safety
    ///
    /// The caller is the task's handle, and the slot is its own again: `publish_waiter`
    /// returned false, or the waiter has been woken (the ending side takes it out first).
    #[inline]
    pub(super) unsafe fn take_waiter(&self) -> Option<W> {
        // SAFETY: the caller's promise.
        self.waiter.with_ptr(|w| unsafe { (*w).take() })
    }

    /// Drops one reference: true if it was the last, and the caller must free the cell.
    ///
    /// # Safety
    ///
    /// The caller owns one reference and gives it up: it touches the cell no more unless this
    /// returned true (then it alone frees it).
    #[inline]
    pub(super) unsafe fn drop_ref(&self) -> bool {
        // AcqRel: our writes happen before the free (Release), and the freeing side sees the
        // other side's writes (Acquire), as Arc does.
        self.word.fetch_sub(REF_ONE, Ordering::AcqRel) & REF_MASK == REF_ONE
    }
}

/// The loom model: `RUSTFLAGS="--cfg loom" cargo test -p goexec --lib --release loom_tests`.
///
/// A model task is a [`State`] and an output slot in a loom cell, so that loom checks every
/// read and free of the output against its write; each side takes the steps that `join.rs`
/// takes. A model waiter only counts its wakes, and a waiting side spins (yielding to loom)
/// until its condition holds: a lost wake leaves it spinning, which loom reports. Not loom's
/// park and unpark: its `unpark` hands the waker's whole history to the target thread whether
/// or not that thread parks, which would hide races that std's does not.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::State;
    use crate::loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;
    use std::ptr::NonNull;
    use std::task::Poll;

    /// What happened to a task's waiters and output, read after its threads are joined.
    struct Counts {
        waiters: AtomicUsize,
        wakes: AtomicUsize,
        waiters_gone: AtomicUsize,
        outputs_dropped: AtomicUsize,
    }

    impl Counts {
        fn new() -> Arc<Counts> {
            Arc::new(Counts {
                waiters: AtomicUsize::new(0),
                wakes: AtomicUsize::new(0),
                waiters_gone: AtomicUsize::new(0),
                outputs_dropped: AtomicUsize::new(0),
            })
        }

        fn get(c: &AtomicUsize) -> usize {
            c.load(Ordering::Relaxed)
        }
    }

    /// A joiner: its wake counts; woken or dropped, it counts as gone.
    struct Waiter {
        counts: Arc<Counts>,
    }

    impl Waiter {
        fn current(counts: &Arc<Counts>) -> Waiter {
            counts.waiters.fetch_add(1, Ordering::Relaxed);
            Waiter {
                counts: counts.clone(),
            }
        }

        /// Release, paired with the parked goroutine's Acquire: goready's handoff through the
        /// scheduler orders the waker's steps before the woken goroutine's.
        fn wake(self) {
            self.counts.wakes.fetch_add(1, Ordering::Release);
        }
    }

    impl Drop for Waiter {
        fn drop(&mut self) {
            self.counts.waiters_gone.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The goroutine's result; counts its drop.
    struct Output(Arc<Counts>);

    impl Drop for Output {
        fn drop(&mut self) {
            self.0.outputs_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A task cell: the state word, and the stage reduced to the output.
    struct Cell {
        state: State<Waiter>,
        output: UnsafeCell<Option<Output>>,
    }

    /// One reference to a cell, as a `TaskRef` or a `JoinHandle` owns it.
    struct Ref(NonNull<Cell>);

    // SAFETY: as for TaskRef and JoinHandle: the state word decides who touches the cell's
    // slots.
    unsafe impl Send for Ref {}

    /// A cell's address without a reference, as a `TaskPtr`.
    #[derive(Clone, Copy)]
    struct Ptr(NonNull<Cell>);

    // SAFETY: only the state word and, under its protocol, the waiter slot are touched
    // through it.
    unsafe impl Send for Ptr {}

    /// A new task: the goroutine side and the handle.
    fn task() -> (Ref, Ref) {
        let cell = NonNull::from(Box::leak(Box::new(Cell {
            state: State::new(),
            output: UnsafeCell::new(None),
        })));
        (Ref(cell), Ref(cell))
    }

    /// How a handle waits in `JoinHandle::wait`.
    #[derive(Clone, Copy, Debug)]
    enum Joiner {
        /// `gopark`: runs again once woken, then takes its waiter back.
        Goroutine,
        /// A thread's park loop: waits until the task has ended; never touches the slot again.
        Thread,
    }

    impl Ref {
        fn cell(&self) -> &Cell {
            // SAFETY: our reference keeps the cell alive.
            unsafe { self.0.as_ref() }
        }

        fn ptr(&self) -> Ptr {
            Ptr(self.0)
        }

        /// `drop_ref`: the last reference frees the cell, with whatever output is left.
        fn release(self) {
            // SAFETY: each model side owns one reference and drops it once, here.
            if unsafe { self.cell().state.drop_ref() } {
                // SAFETY: that was the last reference to a cell that `task` boxed.
                let cell = unsafe { Box::from_raw(self.0.as_ptr()) };
                // Through the loom cell, so that the free is checked against the write.
                // SAFETY: nobody else refers to the cell.
                drop(cell.output.with_ptr(|o| unsafe { (*o).take() }));
            }
        }

        /// `TaskRef::finish`: the output goes in the stage, `COMPLETE`, the waiter is woken.
        fn finish(self, counts: &Arc<Counts>) {
            let output = Output(counts.clone());
            // SAFETY: the stage is the goroutine side's until COMPLETE.
            self.cell()
                .output
                .with_ptr(|o| unsafe { *o = Some(output) });
            // SAFETY: the goroutine side, once, after writing the output.
            if let Some(w) = unsafe { self.cell().state.complete() } {
                w.wake();
            }
            self.release();
        }

        /// `JoinHandle::join`: the output (None if the task was abandoned), and whether the
        /// handle handed a waiter over to the ending side.
        fn join(self, how: Joiner, counts: &Arc<Counts>) -> (Option<Output>, bool) {
            let handed = !self.cell().state.is_ended() && self.wait(how, counts);
            let out = self.take_output();
            self.release();
            (out, handed)
        }

        /// `JoinHandle::wait`; true if it handed its waiter over to the ending side.
        fn wait(&self, how: Joiner, counts: &Arc<Counts>) -> bool {
            let state = &self.cell().state;
            // SAFETY: this is the task's handle.
            if !unsafe { state.reclaim_slot() } {
                return false;
            }
            // SAFETY: the handle, and reclaim_slot said the slot is ours.
            unsafe { state.set_waiter(Waiter::current(counts)) };
            // SAFETY: the handle, and the slot is ours until this publishes it.
            let handed = unsafe { state.publish_waiter() };
            match how {
                Joiner::Goroutine => {
                    if handed {
                        while counts.wakes.load(Ordering::Acquire) == 0 {
                            thread::yield_now();
                        }
                    }
                    // SAFETY: the handle; not handed over, or woken (after the waiter was
                    // taken out).
                    drop(unsafe { state.take_waiter() });
                }
                Joiner::Thread => {
                    if handed {
                        while !state.is_ended() {
                            thread::yield_now();
                        }
                    } else {
                        // SAFETY: the handle, and not handed over.
                        drop(unsafe { state.take_waiter() });
                    }
                }
            }
            handed
        }

        /// `JoinHandle::take_output`.
        fn take_output(&self) -> Option<Output> {
            if !self.cell().state.is_complete() {
                return None;
            }
            // SAFETY: after COMPLETE the stage is the handle's.
            self.cell().output.with_ptr(|o| unsafe { (*o).take() })
        }

        /// `JoinHandle::poll`.
        fn poll(&self, counts: &Arc<Counts>) -> Poll<Option<Output>> {
            let state = &self.cell().state;
            // SAFETY: this is the task's handle.
            if !unsafe { state.reclaim_slot() } {
                return Poll::Ready(self.take_output());
            }
            // SAFETY: the handle, and reclaim_slot said the slot is ours.
            unsafe { state.set_waiter(Waiter::current(counts)) };
            // SAFETY: the handle, and the slot is ours until this publishes it.
            if !unsafe { state.publish_waiter() } {
                // SAFETY: the handle, and not handed over.
                drop(unsafe { state.take_waiter() });
                return Poll::Ready(self.take_output());
            }
            Poll::Pending
        }
    }

    impl Ptr {
        /// `TaskPtr::abandon`.
        fn abandon(self) {
            // SAFETY: the model keeps the goroutine side's reference until the end.
            if let Some(w) = unsafe { self.0.as_ref() }.state.abandon() {
                w.wake();
            }
        }
    }

    /// Every waiter was woken or dropped, once; none was woken twice.
    fn assert_waiters_accounted(counts: &Counts) {
        let waiters = Counts::get(&counts.waiters);
        assert_eq!(Counts::get(&counts.waiters_gone), waiters, "waiters gone");
        assert!(Counts::get(&counts.wakes) <= 1, "woken twice");
    }

    /// (a) The handle joins while the goroutine completes: it takes the output, written
    /// before and read once; it was woken exactly once if it handed its waiter over.
    #[test]
    fn join_while_the_task_completes() {
        for how in [Joiner::Goroutine, Joiner::Thread] {
            loom::model(move || {
                let counts = Counts::new();
                let (g, h) = task();
                let c = counts.clone();
                let goroutine = thread::spawn(move || g.finish(&c));
                let (out, handed) = h.join(how, &counts);
                assert!(out.is_some(), "{how:?}: no output");
                drop(out);
                goroutine.join().unwrap();
                assert_eq!(Counts::get(&counts.outputs_dropped), 1, "{how:?}");
                assert_waiters_accounted(&counts);
                assert_eq!(
                    Counts::get(&counts.wakes),
                    usize::from(handed),
                    "{how:?}: woken once if handed over, else never"
                );
            });
        }
    }

    /// (b) The handle is dropped (after one poll, or none) while the goroutine completes: the
    /// output is dropped exactly once, by whichever side lets go last; a waker the poll left
    /// is woken or dropped once.
    #[test]
    fn drop_the_handle_while_the_task_completes() {
        for poll_first in [false, true] {
            loom::model(move || {
                let counts = Counts::new();
                let (g, h) = task();
                let c = counts.clone();
                let goroutine = thread::spawn(move || g.finish(&c));
                let pending = poll_first && h.poll(&counts).is_pending();
                h.release();
                goroutine.join().unwrap();
                assert_eq!(Counts::get(&counts.outputs_dropped), 1);
                assert_waiters_accounted(&counts);
                if pending {
                    assert_eq!(Counts::get(&counts.wakes), 1, "a pending poll's waker");
                }
            });
        }
    }

    /// (c) Shutdown abandons the task (twice: it is idempotent) while the handle joins: the
    /// handle sees the task abandoned, was woken exactly once if it handed its waiter over,
    /// and never touches the output.
    #[test]
    fn abandon_while_the_handle_joins() {
        for how in [Joiner::Goroutine, Joiner::Thread] {
            loom::model(move || {
                let counts = Counts::new();
                let (g, h) = task();
                let p = g.ptr();
                let shutdown = thread::spawn(move || {
                    p.abandon();
                    p.abandon();
                });
                let (out, handed) = h.join(how, &counts);
                assert!(out.is_none(), "{how:?}: an output");
                shutdown.join().unwrap();
                assert_waiters_accounted(&counts);
                assert_eq!(
                    Counts::get(&counts.wakes),
                    usize::from(handed),
                    "{how:?}: woken once if handed over, else never"
                );
                // The runtime leaves the goroutine side's reference behind; the model frees.
                g.release();
                assert_eq!(Counts::get(&counts.outputs_dropped), 0);
            });
        }
    }

    /// (d) A future polls its handle again (reclaiming the slot and registering afresh) while
    /// the goroutine completes: the last waiter handed over is woken, none twice, and the
    /// output is read once. (Cancelling an unstarted task is the same `complete`.)
    #[test]
    fn poll_again_while_the_task_completes() {
        loom::model(|| {
            let counts = Counts::new();
            let (g, h) = task();
            let c = counts.clone();
            let goroutine = thread::spawn(move || g.finish(&c));
            let mut polls = 0;
            let out = loop {
                match h.poll(&counts) {
                    Poll::Ready(out) => break out,
                    Poll::Pending if polls == 0 => polls += 1,
                    Poll::Pending => {
                        // As an executor does: poll again once woken.
                        while counts.wakes.load(Ordering::Acquire) == 0 {
                            thread::yield_now();
                        }
                        polls += 1;
                        assert!(polls < 3, "pending after the wake");
                    }
                }
            };
            assert!(out.is_some(), "no output");
            drop(out);
            h.release();
            goroutine.join().unwrap();
            assert_eq!(Counts::get(&counts.outputs_dropped), 1);
            assert_waiters_accounted(&counts);
        });
    }
}
