//! Wait queues (Go: the `sudog` and its queues in `sema.go` and `chan.go`): every goroutine or
//! thread that waits in a channel or a `sync` primitive waits here.
//!
//! A [`WaitQueue`] lives in its primitive's state, under that primitive's own std mutex, and
//! holds records, each on its waiter's stack (on the heap for an async operation). A record
//! carries a payload that the waiter and its waker share (a channel's value, a `Mutex`
//! waiter's start time) and, once woken, a token saying what the waker decided (the lock is
//! yours, the channel closed, ...).
//!
//! The invariant behind the raw pointers, kept by the structure of the API: **a record is on
//! a queue only while its owner waits for it to come off**.
//! - [`WaitQueue::park`] (and [`park_until`](WaitQueue::park_until)) queues a record of its
//!   own frame and does not return until the record is off the queue and marked idle (with
//!   its token), so a queued record is alive.
//! - Only the queue takes records off: [`WaitQueue::pop`] and [`WaitQueue::take`] hand out a
//!   [`Taken`], whose [`wake`](Taken::wake) stores the token and marks the record idle as its
//!   last touch. A record is taken off once, under the lock, so it is woken exactly once.
//! - A select's records ([`Select`]) may be queued on several queues: whoever takes one off
//!   first claims the select ([`SelState`]); [`Select::scope`] does not return until each of
//!   them is off its queue and the winner has finished with it.
//! - An async operation's record ([`Pending`]) is on the heap: it is freed only once off its
//!   queue and idle, and leaked otherwise.
//!
//! Whoever takes a record off wakes it after releasing the lock if it likes (its `Taken` is
//! independent of the lock), which keeps the lock held for a few instructions.
#![allow(unsafe_code)] // queued pointers to waiters' records; see the module docs.

use super::g::{GRef, WaitReason};
use super::m::current_g;
use super::park::{block_as, gopark, Waiter};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::cell::Cell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// `Record::state`: its owner's alone (not queued, or finished with).
const IDLE: u8 = 0;
/// On a queue (a plain record: or taken off, until woken).
const QUEUED: u8 = 1;
/// A select's record taken off by a waker that has not woken it yet.
const TAKEN: u8 = 2;

/// A waiting goroutine or thread (Go: `sudog`).
struct Record<P, K> {
    /// Who to wake; taken by the waker. None for a select's record (its waiter is in the
    /// select's [`SelState`]).
    waiter: Cell<Option<Waiter>>,
    /// The select this record is a case of, and which case (Go: `sudog.isSelect`, `c`).
    sel: Cell<Option<NonNull<SelState>>>,
    case: Cell<usize>,
    /// IDLE, QUEUED or TAKEN (a select's record only: its owner tells it from QUEUED without
    /// the queue). Written under the queue's lock while queued; the waker's IDLE (Release)
    /// publishes the payload and the token to the owner.
    state: AtomicU8,
    /// The owner's while IDLE, the waker's while TAKEN (the queue's lock holder's while
    /// QUEUED).
    payload: UnsafeCell<P>,
    token: UnsafeCell<Option<K>>,
}

impl<P, K> Record<P, K> {
    fn new(waiter: Option<Waiter>, payload: P, state: u8) -> Record<P, K> {
        Record {
            waiter: Cell::new(waiter),
            sel: Cell::new(None),
            case: Cell::new(0),
            state: AtomicU8::new(state),
            payload: UnsafeCell::new(payload),
            token: UnsafeCell::new(None),
        }
    }

    /// Waits until the record's waker marked it idle: at once on a goroutine (readied only
    /// then); a thread may wake spuriously before.
    #[inline]
    fn wait_idle(&self) {
        while self.state.load(Ordering::Acquire) != IDLE {
            crate::loom::thread::park();
        }
    }

    /// The payload and the token, once idle and woken.
    fn into_parts(self) -> (P, K) {
        let Record { payload, token, .. } = self;
        let token = token
            .into_inner()
            .unwrap_or_else(|| super::fatal("waitq", "a waiter woke without its token"));
        (payload.into_inner(), token)
    }
}

/// Aborts the process if dropped: a record is queued in the frame it guards, which must not
/// unwind before the record is off its queue (nothing in between can panic; this says so).
struct NoUnwind;

impl Drop for NoUnwind {
    fn drop(&mut self) {
        super::fatal("waitq", "unwinding with a queued waiter");
    }
}

/// The waiter for the caller (`me`, as [`current_g`] gave it).
#[inline]
fn waiter_for(me: Option<GRef>) -> Waiter {
    match me {
        Some(g) => Waiter::G(g),
        None => Waiter::current(),
    }
}

/// A FIFO of waiters, kept in a primitive's state under its lock. `P` is the payload that a
/// waiter and its waker share, `K` the token the waker hands over.
pub(crate) struct WaitQueue<P, K> {
    q: VecDeque<NonNull<Record<P, K>>>,
}

// SAFETY: the queue holds records whose owners wait on them (module docs); whoever has the
// queue (under its primitive's lock) may take one off, on any thread, and move its payload
// and token across, hence P: Send and K: Send. The Waiters in them are Send.
unsafe impl<P: Send, K: Send> Send for WaitQueue<P, K> {}

impl<P, K> Default for WaitQueue<P, K> {
    fn default() -> WaitQueue<P, K> {
        WaitQueue::new()
    }
}

impl<P, K> Drop for WaitQueue<P, K> {
    fn drop(&mut self) {
        // Unreachable: every parked waiter (an abandoned goroutine's too) keeps its primitive
        // alive, and closing a channel, which dropping its last Sender or Receiver does,
        // empties both its queues (a forgotten async operation's record included).
        debug_assert!(
            self.q.is_empty() || std::thread::panicking(),
            "a wait queue dropped with {} waiters",
            self.q.len()
        );
    }
}

impl<P, K> WaitQueue<P, K> {
    pub(crate) const fn new() -> WaitQueue<P, K> {
        WaitQueue { q: VecDeque::new() }
    }

    /// Whether nobody waits (a select's record that lost counts until taken off).
    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Queues the caller at the back of the queue that `queue` finds under `guard`, releases
    /// `guard` (on a goroutine only once its context is saved, so a waker can ready it at
    /// once) and parks until a waker takes it off. Returns the payload, as the waker left
    /// it, and the waker's token.
    #[inline]
    pub(crate) fn park<G>(
        guard: G,
        queue: impl FnOnce(&mut G) -> &mut Self,
        payload: P,
        reason: WaitReason,
    ) -> (P, K) {
        Self::park_at(guard, queue, false, payload, reason)
    }

    /// [`park`](Self::park) at the front of the queue (Go: `semacquire` with `lifo`, a woken
    /// `Mutex` waiter that lost the lock again).
    pub(crate) fn park_front<G>(
        guard: G,
        queue: impl FnOnce(&mut G) -> &mut Self,
        payload: P,
        reason: WaitReason,
    ) -> (P, K) {
        Self::park_at(guard, queue, true, payload, reason)
    }

    #[inline]
    fn park_at<G>(
        mut guard: G,
        queue: impl FnOnce(&mut G) -> &mut Self,
        front: bool,
        payload: P,
        reason: WaitReason,
    ) -> (P, K) {
        let me = current_g();
        let rec = Record::new(Some(waiter_for(me)), payload, QUEUED);
        let q = &mut queue(&mut guard).q;
        if front {
            q.push_front(NonNull::from(&rec));
        } else {
            q.push_back(NonNull::from(&rec));
        }
        let queued = NoUnwind;
        block_as(me, guard, reason);
        rec.wait_idle();
        std::mem::forget(queued);
        rec.into_parts()
    }

    /// [`park`](Self::park) that gives up at `deadline` ([`nanotime`] units): the record
    /// then comes off with the token `timeout`.
    ///
    /// `arm` is called under the lock with the record's id; a goroutine arms a timer there
    /// (returned, and dropped, which cancels it, once woken) whose callback takes the record
    /// off with [`take`](Self::take) if it is still queued. A caller for whom `arm` arms
    /// nothing (a plain thread) parks with a timeout and, once it passes, takes its own
    /// record off under `relock`.
    ///
    /// [`nanotime`]: super::timers::nanotime
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn park_until<G, T>(
        mut guard: G,
        queue: impl Fn(&mut G) -> &mut Self,
        relock: impl FnOnce() -> G,
        payload: P,
        reason: WaitReason,
        deadline: u64,
        timeout: K,
        arm: impl FnOnce(RecordId) -> Option<T>,
    ) -> (P, K) {
        let me = current_g();
        let rec = Record::new(Some(waiter_for(me)), payload, QUEUED);
        let ptr = NonNull::from(&rec);
        queue(&mut guard).q.push_back(ptr);
        let queued = NoUnwind;
        if let Some(timer) = arm(RecordId(ptr.as_ptr() as usize)) {
            block_as(me, guard, reason);
            rec.wait_idle();
            drop(timer);
        } else {
            drop(guard);
            loop {
                if rec.state.load(Ordering::Acquire) == IDLE {
                    break;
                }
                let now = super::timers::nanotime();
                if now < deadline {
                    std::thread::park_timeout(std::time::Duration::from_nanos(deadline - now));
                    continue;
                }
                let mut guard = relock();
                if queue(&mut guard).remove(ptr) {
                    rec.token.with_ptr(|t| {
                        // SAFETY: off the queue (under its lock) before anyone took it: ours.
                        unsafe { *t = Some(timeout) }
                    });
                    rec.state.store(IDLE, Ordering::Relaxed);
                    break;
                }
                // Taken off by a waker, which wakes it right after.
                drop(guard);
                rec.wait_idle();
                break;
            }
        }
        std::mem::forget(queued);
        rec.into_parts()
    }

    /// Takes the first waiter off (skipping, and dropping, the records of selects that
    /// another case won), to be woken with [`Taken::wake`].
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Taken<P, K>> {
        while let Some(rec) = self.q.pop_front() {
            if let Some(t) = Taken::claim(rec) {
                return Some(t);
            }
        }
        None
    }

    /// Takes the waiter `id` off if it is still queued (a deadline's timer: `park_until`).
    pub(crate) fn take(&mut self, id: RecordId) -> Option<Taken<P, K>> {
        let i = self.q.iter().position(|p| p.as_ptr() as usize == id.0)?;
        Taken::claim(self.q.remove(i)?)
    }

    /// Takes every waiter off and wakes each with `token`.
    pub(crate) fn wake_all(&mut self, token: K)
    where
        K: Clone,
    {
        while let Some(t) = self.pop() {
            t.wake(token.clone());
        }
    }

    /// Takes every waiter off, to be woken with [`Batch::wake_all`] (after releasing the
    /// lock, if the caller likes).
    pub(crate) fn drain(&mut self) -> Batch<P, K> {
        self.q.retain(|&rec| claim(rec));
        Batch {
            q: std::mem::take(&mut self.q),
        }
    }

    /// Queues an async operation's record, with `waker` to wake: see [`Pending`].
    pub(crate) fn push_pending(&mut self, payload: P, waker: &std::task::Waker) -> Pending<P, K> {
        let rec = Box::new(Record::new(
            Some(Waiter::Task(waker.clone())),
            payload,
            QUEUED,
        ));
        let rec = NonNull::from(Box::leak(rec));
        self.q.push_back(rec);
        Pending { rec }
    }

    /// Takes `rec` off if it is queued here; true if it was.
    fn remove(&mut self, rec: NonNull<Record<P, K>>) -> bool {
        match self.q.iter().position(|&p| p == rec) {
            Some(i) => {
                self.q.remove(i);
                true
            }
            None => false,
        }
    }
}

/// Whether `rec`, just taken off its queue under the lock, is ours to wake: a plain one is;
/// a select's is if its select is still undecided, and then that case wins it (Go: the
/// `selectDone` CAS in `dequeue`). A select's record that lost is left idle: its owner finds
/// it off its queue when it cleans up.
#[inline]
fn claim<P, K>(rec: NonNull<Record<P, K>>) -> bool {
    // SAFETY: it was queued, so its owner waits on it (module docs): alive.
    let r = unsafe { rec.as_ref() };
    let Some(sel) = r.sel.get() else {
        return true;
    };
    r.state.store(TAKEN, Ordering::Relaxed);
    // SAFETY: a select's state outlives its queued records (`Select::scope`).
    if unsafe { sel.as_ref() }.claim(r.case.get()) {
        return true;
    }
    // Release: our CAS happened before the owner, seeing IDLE, may return.
    r.state.store(IDLE, Ordering::Release);
    false
}

/// Which record a deadline's timer is for ([`WaitQueue::park_until`]): its address, only
/// ever compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordId(usize);

/// A waiter taken off its queue: its owner waits until [`wake`](Taken::wake) hands it its
/// token. Dropping it without waking is a bug (its owner would wait for ever): fatal.
pub(crate) struct Taken<P, K> {
    rec: NonNull<Record<P, K>>,
}

impl<P, K> Taken<P, K> {
    /// `rec`, just taken off its queue under the lock, if [`claim`] gives it to us.
    #[inline]
    fn claim(rec: NonNull<Record<P, K>>) -> Option<Taken<P, K>> {
        claim(rec).then(|| Taken { rec })
    }

    /// The payload, which is the waker's until the wake: a receiver's slot to fill, a
    /// sender's value to take.
    #[inline]
    pub(crate) fn with_payload<R>(&mut self, f: impl FnOnce(&mut P) -> R) -> R {
        // SAFETY: taken and not yet woken: its owner waits, and only we touch it.
        let r = unsafe { self.rec.as_ref() };
        r.payload.with_ptr(|p| {
            // SAFETY: as above; `&mut self` makes the borrow exclusive.
            f(unsafe { &mut *p })
        })
    }

    /// Hands the waiter `token` and wakes it. The record may be gone as soon as it is marked
    /// idle: the last touch (for a select's, the select's DONE is).
    #[inline]
    pub(crate) fn wake(self, token: K) {
        let me = ManuallyDrop::new(self);
        // SAFETY: taken and not yet woken: its owner waits until we mark it idle.
        let r = unsafe { me.rec.as_ref() };
        r.token.with_ptr(|t| {
            // SAFETY: as above: only we touch the record now.
            unsafe { *t = Some(token) }
        });
        match r.sel.get() {
            None => {
                let waiter = r.waiter.take();
                r.state.store(IDLE, Ordering::Release);
                // `r` may be gone from here on: only the Waiter, moved out, is used.
                if let Some(w) = waiter {
                    w.wake();
                }
            }
            Some(sel) => {
                r.state.store(IDLE, Ordering::Release);
                // SAFETY: the select's state outlives its records until it sees DONE, which
                // `complete` stores as its last touch.
                unsafe { sel.as_ref() }.complete();
            }
        }
    }
}

impl<P, K> Drop for Taken<P, K> {
    fn drop(&mut self) {
        super::fatal("waitq", "a waiter taken off its queue was never woken");
    }
}

/// Waiters taken off together ([`WaitQueue::drain`]), each to be woken.
pub(crate) struct Batch<P, K> {
    q: VecDeque<NonNull<Record<P, K>>>,
}

impl<P, K> Batch<P, K> {
    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }

    /// Wakes each waiter with the token `next` gives.
    pub(crate) fn wake_each(mut self, mut next: impl FnMut() -> K) {
        while let Some(rec) = self.q.pop_front() {
            Taken { rec }.wake(next());
        }
    }

    /// Wakes each waiter with `token`.
    pub(crate) fn wake_all(self, token: K)
    where
        K: Clone,
    {
        self.wake_each(|| token.clone());
    }
}

impl<P, K> Drop for Batch<P, K> {
    fn drop(&mut self) {
        if !self.q.is_empty() {
            super::fatal("waitq", "waiters taken off their queue were never woken");
        }
    }
}

/// An async operation's record: on the heap (the future moves between polls), queued with
/// the task's waker. Its owner polls with [`refresh`](Pending::refresh) and collects the
/// outcome with [`finish`](Pending::finish) once it is off, or takes it back with
/// [`cancel`](Pending::cancel). Dropped while not idle (still queued, or being woken), the
/// record is leaked: the queue may still reach it.
pub(crate) struct Pending<P, K> {
    rec: NonNull<Record<P, K>>,
}

// SAFETY: the record is only touched under its queue's lock or once idle (module docs); the
// owner moving between threads moves the payload and the token with it.
unsafe impl<P: Send, K: Send> Send for Pending<P, K> {}

impl<P, K> Pending<P, K> {
    fn record(&self) -> &Record<P, K> {
        // SAFETY: the box is freed only by `free`, which consumes the Pending.
        unsafe { self.rec.as_ref() }
    }

    /// Under the lock of `q`, the queue it was pushed on: while the record is still queued
    /// there, makes `waker` the one to wake and returns true. False: a waker took it off;
    /// [`finish`](Pending::finish) collects the outcome.
    pub(crate) fn refresh(&self, q: &WaitQueue<P, K>, waker: &std::task::Waker) -> bool {
        let r = self.record();
        if !q.q.iter().any(|&p| p == self.rec) {
            return false;
        }
        // Queued here, under the lock that whoever takes it off holds: the waiter is ours.
        r.waiter.set(Some(Waiter::Task(waker.clone())));
        true
    }

    /// The payload and the token, once a waker took the record off: waits (a short spin)
    /// until that waker has woken it, which it does right after, without blocking.
    pub(crate) fn finish(self) -> (P, K) {
        let mut spins = 0u32;
        while self.record().state.load(Ordering::Acquire) != IDLE {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                crate::loom::thread::yield_now();
            }
        }
        self.free().into_parts()
    }

    /// Under the lock of `q`, the queue it was pushed on: takes the record off if it is
    /// still there and returns its payload; else it was taken off, and `Err` gives it back
    /// to [`finish`](Pending::finish) (after releasing the lock).
    pub(crate) fn cancel(self, q: &mut WaitQueue<P, K>) -> Result<P, Pending<P, K>> {
        if !q.remove(self.rec) {
            return Err(self);
        }
        self.record().state.store(IDLE, Ordering::Relaxed);
        let Record { payload, .. } = self.free();
        Ok(payload.into_inner())
    }

    /// The record back from the heap; it must be idle.
    fn free(self) -> Record<P, K> {
        let me = ManuallyDrop::new(self);
        debug_assert_eq!(me.record().state.load(Ordering::Relaxed), IDLE);
        // SAFETY: from Box::leak in push_pending; idle, so no queue holds it and no waker
        // touches it; `me` is not used again.
        *unsafe { Box::from_raw(me.rec.as_ptr()) }
    }
}

impl<P, K> Drop for Pending<P, K> {
    fn drop(&mut self) {
        if self.record().state.load(Ordering::Acquire) == IDLE {
            // SAFETY: as in `free`: idle, so nothing else reaches it; not used again.
            drop(unsafe { Box::from_raw(self.rec.as_ptr()) });
        }
        // Else leaked: a queue may still reach it.
    }
}

/// `SelState::phase`: the selecting goroutine or thread has not parked yet.
const ACTIVE: u8 = 0;
/// It parked (or is about to, on a thread): whoever completes it must wake it.
const PARKED: u8 = 1;
/// A case completed: the select may return; nobody touches its records again.
const DONE: u8 = 2;

/// A blocked select's shared word (Go: `g.selectDone` plus the park handshake), in its
/// [`Select`], which its case records point at.
///
/// Go parks with the channels' locks held and releases them on g0 (`selparkcommit`). Here
/// too, but a winner may complete the select while g0 is still releasing the other locks, so
/// the wake goes through `phase`: the winner wakes the selector only if it has parked; one
/// that has not yet sees the case done and does not park.
struct SelState {
    /// 0 while undecided, else the winning case + 1. Set by one CAS, under the lock of the
    /// winning case's queue, by whoever takes one of the select's records off first.
    won: AtomicUsize,
    /// ACTIVE, PARKED or DONE. The winner swaps in DONE as its last touch of the select and
    /// its records, and wakes the owner only if it had parked; an owner that has not parked
    /// yet sees DONE and does not park. So the owner may return as soon as it sees DONE.
    phase: AtomicU8,
    /// Who to wake; taken by the winner, before its DONE.
    waiter: UnsafeCell<Option<Waiter>>,
}

impl SelState {
    fn new(waiter: Waiter) -> SelState {
        SelState {
            won: AtomicUsize::new(0),
            phase: AtomicU8::new(ACTIVE),
            waiter: UnsafeCell::new(Some(waiter)),
        }
    }

    /// Whether case `case` wins the select (under its queue's lock): only if none did.
    #[inline]
    fn claim(&self, case: usize) -> bool {
        self.won
            .compare_exchange(0, case + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The winner's last step: DONE, and a wake if the owner parked.
    fn complete(&self) {
        let waiter = self.waiter.with_ptr(|w| {
            // SAFETY: only the winner (one, by the CAS) touches the waiter after the owner
            // queued its records, and only before its DONE.
            unsafe { (*w).take() }
        });
        // The last touch of the owner's memory (Release: publishes the record's token and
        // payload, and the take above).
        if self.phase.swap(DONE, Ordering::AcqRel) == PARKED {
            if let Some(w) = waiter {
                w.wake();
            }
        }
    }
}

/// A select's record for one of its cases: kept in the case (borrowed by the [`Select`]
/// while queued), with its payload.
pub(crate) struct SelRecord<P, K>(Record<P, K>);

impl<P, K> SelRecord<P, K> {
    pub(crate) fn new(payload: P) -> SelRecord<P, K> {
        SelRecord(Record::new(None, payload, IDLE))
    }

    /// The record's own, or fatal: idle (neither queued nor being woken).
    fn idle(&self) -> &Record<P, K> {
        if self.0.state.load(Ordering::Acquire) != IDLE {
            super::fatal("select", "a case's record used while queued");
        }
        &self.0
    }

    /// Replaces the payload (a send case's value) while the record is not queued.
    pub(crate) fn set_payload(&self, p: P) {
        let old = self.idle().payload.with_ptr(|q| {
            // SAFETY: idle: only its owner touches it, on this thread (not Sync); no borrow
            // of the payload outlives these calls.
            unsafe { std::mem::replace(&mut *q, p) }
        });
        drop(old);
    }

    /// Takes the payload while the record is not queued (a send case's value back, a
    /// receive case's value).
    pub(crate) fn take_payload(&self) -> P
    where
        P: Default,
    {
        self.idle().payload.with_ptr(|q| {
            // SAFETY: as in set_payload.
            unsafe { std::mem::take(&mut *q) }
        })
    }

    /// Takes the token a waker left (the winning case's outcome).
    pub(crate) fn take_token(&self) -> Option<K> {
        self.idle().token.with_ptr(|t| {
            // SAFETY: as in set_payload.
            unsafe { (*t).take() }
        })
    }
}

/// A blocked select (Go: `selectgo` from its `sellock` on): its shared state, and the count
/// of its queued records, which [`Select::scope`] checks are all off their queues before it
/// returns. `'s` is the records' lifetime: they outlive the scope.
pub(crate) struct Select<'s> {
    st: SelState,
    /// Records queued, taken back by [`Select::remove`], and the winner's case.
    pushed: Cell<usize>,
    removed: Cell<usize>,
    winner: Cell<Option<usize>>,
    /// Whether the selector parked (then its winner wakes it), for the loom model.
    parked: Cell<bool>,
    /// Invariant: a record borrowed for less than `'s` cannot be queued.
    _records: PhantomData<Cell<&'s ()>>,
}

impl<'s> Select<'s> {
    /// Runs `f` with a select whose records (`'s`) it queues, parks once, and takes off
    /// again. Before returning, checks that no record is left queued (and the winner is
    /// done): fatal otherwise, since the records may go as soon as this returns.
    pub(crate) fn scope<R>(f: impl FnOnce(&Select<'s>) -> R) -> R {
        let sel = Select {
            st: SelState::new(Waiter::current()),
            pushed: Cell::new(0),
            removed: Cell::new(0),
            winner: Cell::new(None),
            parked: Cell::new(false),
            _records: PhantomData,
        };
        struct Check<'a, 's>(&'a Select<'s>);
        impl Drop for Check<'_, '_> {
            fn drop(&mut self) {
                self.0.check_done();
            }
        }
        let check = Check(&sel);
        let r = f(&sel);
        drop(check);
        r
    }

    fn check_done(&self) {
        if self.st.won.load(Ordering::Acquire) != 0 {
            // Normally seen already by `park`.
            while self.st.phase.load(Ordering::Acquire) != DONE {
                crate::loom::thread::yield_now();
            }
        }
        let off = self.removed.get() + usize::from(self.winner.get().is_some());
        if off != self.pushed.get() {
            super::fatal("select", "returning with a case still queued");
        }
    }

    /// Queues `rec` on `q` (under its lock) as case `case`.
    pub(crate) fn push<P, K>(
        &self,
        q: &mut WaitQueue<P, K>,
        rec: &'s SelRecord<P, K>,
        case: usize,
    ) {
        let r = rec.idle();
        r.sel.set(Some(NonNull::from(&self.st)));
        r.case.set(case);
        r.state.store(QUEUED, Ordering::Relaxed);
        q.q.push_back(NonNull::from(r));
        self.pushed.set(self.pushed.get() + 1);
    }

    /// Releases the channels' locks with `unlock` (on a goroutine only once its context is
    /// saved) and parks until a case wins; returns that case.
    pub(crate) fn park(&self, reason: WaitReason, unlock: &mut dyn FnMut()) -> usize {
        let st = &self.st;
        let parked = &self.parked;
        if current_g().is_some() {
            gopark(reason, &mut || {
                unlock();
                parked.set(true);
                // The last touch of this goroutine's memory before a winner may ready it.
                let park = st
                    .phase
                    .compare_exchange(ACTIVE, PARKED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if !park {
                    // DONE already: nobody readies us; we go on without parking.
                    parked.set(false);
                }
                park
            });
        } else {
            super::callback::check_may_block();
            unlock();
            if st
                .phase
                .compare_exchange(ACTIVE, PARKED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                parked.set(true);
                while st.phase.load(Ordering::Acquire) != DONE {
                    crate::loom::thread::park();
                }
            }
        }
        // Acquire: the winner's writes to its record (and the value) before its DONE.
        if st.phase.load(Ordering::Acquire) != DONE {
            super::fatal("select", "woken before a case completed");
        }
        let won = st.won.load(Ordering::Acquire) - 1;
        if self.winner.get().is_none() {
            self.winner.set(Some(won));
        }
        won
    }

    /// Under the lock of `q`, the queue it was pushed on: takes the select's record `rec`
    /// back off if it is still there (true) or finds it taken off by a waker whose select
    /// had been won (false). The winner's record needs no removal.
    pub(crate) fn remove<P, K>(&self, q: &mut WaitQueue<P, K>, rec: &'s SelRecord<P, K>) -> bool {
        let r = &rec.0;
        if r.sel.get() != Some(NonNull::from(&self.st)) {
            super::fatal("select", "removing another select's record");
        }
        if self.winner.get() == Some(r.case.get()) {
            return false;
        }
        let was_queued = match r.state.load(Ordering::Acquire) {
            QUEUED => {
                if !q.remove(NonNull::from(r)) {
                    super::fatal("select", "a case's record is on another queue");
                }
                r.state.store(IDLE, Ordering::Relaxed);
                true
            }
            IDLE => false,
            _ => super::fatal("select", "a case's record is being woken"),
        };
        // Handled: a second remove of it is fatal, so `removed` counts each record once and
        // the scope's check cannot pass with another record still queued.
        r.sel.set(None);
        self.removed.set(self.removed.get() + 1);
        was_queued
    }
}

/// The loom model of a select's claim and park handshake:
/// `RUSTFLAGS="--cfg loom" cargo test -p goexec --lib --release loom_tests`.
///
/// A selector (a plain thread) queues a record on each of two queues, each under its own
/// lock, and parks releasing both; two wakers race, each taking the record off one queue and
/// completing it as a channel's other side does. Checked: exactly one waker wins the select,
/// and the select returns that case with its token and payload; the selector is woken once
/// if it parked and never if not, and returns only after DONE (its park aborts otherwise);
/// every record is off its queue when the select returns (its scope aborts otherwise). The
/// records' payload and token, and the select's waiter, are loom cells, and the selector
/// writes both records once the select has returned (as a reused stack would): a waker
/// touching them after its DONE is a race loom reports. The selector's park is a spin (see
/// `crate::loom::thread`), so the wake is counted rather than relied on.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::{SelRecord, Select, WaitQueue, Waiter, DONE};
    use crate::runtime::g::WaitReason;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    /// The selector's waker: counts its wakes.
    struct Wakes(AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    type Queue = Arc<Mutex<WaitQueue<u32, u32>>>;

    /// A channel's other side: takes the first record off `q` and completes it; whether it
    /// won the select.
    fn other_side(q: Queue, case: u32) -> thread::JoinHandle<bool> {
        thread::spawn(move || {
            let taken = q.lock().unwrap().pop();
            match taken {
                Some(mut t) => {
                    t.with_payload(|p| *p = 10 + case);
                    t.wake(100 + case);
                    true
                }
                None => false,
            }
        })
    }

    #[test]
    fn one_of_two_wakers_wins_a_select_and_wakes_it_once() {
        loom::model(|| {
            let qs: [Queue; 2] = [
                Arc::new(Mutex::new(WaitQueue::new())),
                Arc::new(Mutex::new(WaitQueue::new())),
            ];
            let recs = [SelRecord::<u32, u32>::new(0), SelRecord::new(0)];
            let wakes = std::sync::Arc::new(Wakes(AtomicUsize::new(0)));
            let (won, parked, wakers) = Select::scope(|sel| {
                let waker = std::task::Waker::from(wakes.clone());
                sel.st.waiter.with_ptr(|w| {
                    // SAFETY: nothing is queued yet: the select's state is ours.
                    unsafe { *w = Some(Waiter::Task(waker)) }
                });
                let mut guards = [Some(qs[0].lock().unwrap()), Some(qs[1].lock().unwrap())];
                for (i, g) in guards.iter_mut().enumerate() {
                    let q = g.as_mut().unwrap_or_else(|| unreachable!());
                    sel.push(q, &recs[i], i);
                }
                let wakers = [other_side(qs[0].clone(), 0), other_side(qs[1].clone(), 1)];
                let won = sel.park(WaitReason::Test, &mut || {
                    guards[0].take();
                    guards[1].take();
                });
                assert_eq!(sel.st.phase.load(Ordering::Relaxed), DONE);
                sel.st.waiter.with_ptr(|w| {
                    // SAFETY: DONE: the winner is finished with the select's state.
                    assert!(unsafe { (*w).is_none() }, "the winner took the waiter")
                });
                for (q, rec) in qs.iter().zip(&recs) {
                    sel.remove(&mut q.lock().unwrap(), rec);
                }
                (won, sel.parked.get(), wakers)
            });
            // Before joining the wakers, which would order their every step before ours.
            let case = won as u32;
            assert_eq!(recs[won].take_token(), Some(100 + case));
            assert_eq!(recs[won].take_payload(), 10 + case);
            assert_eq!(recs[1 - won].take_token(), None);
            assert_eq!(recs[1 - won].take_payload(), 0);
            // The selector's frame is reused: the records are written again.
            for rec in &recs {
                rec.set_payload(7);
            }
            let winners: Vec<bool> = wakers.into_iter().map(|w| w.join().unwrap()).collect();
            assert_eq!(winners.iter().filter(|&&w| w).count(), 1, "one winner");
            assert!(winners[won], "the select returned the winner's case");
            assert_eq!(
                wakes.0.load(Ordering::Relaxed),
                usize::from(parked),
                "woken once if parked, else never"
            );
        });
    }
}
