//! The channel itself (Go: `hchan` in `chan.go`): a lock, a ring of buffered values, and two
//! queues of waiters, `recvq` and `sendq`, each a sudog-like record on the waiting goroutine's
//! (or thread's) own stack.
//!
//! Go's rules, kept:
//! - a send that finds a waiting receiver hands the value straight into the receiver's record
//!   and readies it (no trip through the buffer);
//! - a receive that finds a waiting sender takes its value directly (unbuffered), or takes the
//!   buffer's head and moves the sender's value to the tail (buffered and full), so FIFO order
//!   holds;
//! - a blocked operation parks once, with the lock released on g0 after the goroutine's context
//!   is saved (`block_on_guard`), and wakes with its outcome already decided by whoever
//!   dequeued it: it never re-examines the channel.
//!
//! A `Sudog` is only ever reached through a queue under the lock; the one that dequeues it sets
//! `done` (Release) and wakes its owner, and the owner reads `done` (Acquire) before touching
//! the value. So a record leaves its queue before its owner can return and free it.
#![allow(unsafe_code)] // queued pointers to waiters' stack records; see the module docs.

use crate::runtime::current_g;
use crate::runtime::g::GRef;
use crate::runtime::g::WaitReason;
use crate::runtime::park::{block_as, Waiter};
use crate::runtime::timers::nanotime;
use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// `Sudog::done`: still queued.
const WAITING: u8 = 0;
/// The operation completed (a receiver has its value in `elem`; a sender's value was taken).
pub(crate) const OK: u8 = 1;
/// The channel was closed (or, for a sender, lost its last receiver) while it waited.
pub(crate) const CLOSED: u8 = 2;
/// The deadline passed first (`*_deadline`): the record was taken off its queue by the timer.
const TIMEOUT: u8 = 3;

/// A waiting goroutine or thread (Go: `sudog`). Lives on the waiter's stack while queued.
pub(crate) struct Sudog<T> {
    /// The owner's goroutine (None on a thread, and for a select's record), read once.
    me: Option<GRef>,
    /// Who to wake; taken by the one that dequeues it (under the channel lock). None for a
    /// select's record: its waiter is in the select's [`SelState`].
    waiter: Cell<Option<Waiter>>,
    /// A sender's value (taken by the receiver), or a receiver's slot (filled by the sender).
    /// Touched under the channel lock while queued, then by the owner once `done` is set.
    pub(crate) elem: UnsafeCell<Option<T>>,
    pub(crate) done: AtomicU8,
    /// The select this record is a case of (null: a plain send or receive), and which case.
    sel: Cell<*const SelState>,
    case: Cell<usize>,
}

impl<T> Sudog<T> {
    fn new(elem: Option<T>) -> Sudog<T> {
        let me = current_g();
        Sudog {
            me,
            waiter: Cell::new(Some(match me {
                Some(g) => Waiter::G(g),
                None => Waiter::current(),
            })),
            elem: UnsafeCell::new(elem),
            done: AtomicU8::new(WAITING),
            sel: Cell::new(std::ptr::null()),
            case: Cell::new(0),
        }
    }

    /// A record for an async operation: its waiter is the task's waker.
    fn for_task(elem: Option<T>, waker: &std::task::Waker) -> Sudog<T> {
        Sudog {
            me: None,
            waiter: Cell::new(Some(Waiter::Task(waker.clone()))),
            elem: UnsafeCell::new(elem),
            done: AtomicU8::new(WAITING),
            sel: Cell::new(std::ptr::null()),
            case: Cell::new(0),
        }
    }

    /// A record for case `case` of a select, queued later under the channel's lock.
    pub(crate) fn for_select(elem: Option<T>) -> Sudog<T> {
        Sudog {
            me: None,
            waiter: Cell::new(None),
            elem: UnsafeCell::new(elem),
            done: AtomicU8::new(WAITING),
            sel: Cell::new(std::ptr::null()),
            case: Cell::new(0),
        }
    }

    /// Parks the owner until someone dequeued the record; returns how it ended.
    fn wait<S>(&self, guard: MutexGuard<'_, S>, reason: WaitReason) -> u8 {
        block_as(self.me, guard, reason);
        loop {
            let d = self.done.load(Ordering::Acquire);
            if d != WAITING {
                return d;
            }
            // Only a thread gets here: it may wake spuriously; its unpark is still to come.
            std::thread::park();
        }
    }
}

type Queue<T> = VecDeque<NonNull<Sudog<T>>>;

/// The outcome of a record that has left its queue: whoever took it off records it without
/// blocking, right after (outside the lock), so waiting for it is a short spin.
fn finished<T>(sg: &Sudog<T>) -> u8 {
    let mut spins = 0u32;
    loop {
        let d = sg.done.load(Ordering::Acquire);
        if d != WAITING {
            return d;
        }
        spins += 1;
        if spins < 100 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// A waiter taken off a queue whose operation the caller has done and must now complete.
pub(crate) type Peer<T> = Option<NonNull<Sudog<T>>>;

/// `SelState::phase`: the selecting goroutine or thread has not parked yet.
pub(crate) const ACTIVE: u8 = 0;
/// It parked (or is about to, on a thread): whoever completes it must wake it.
pub(crate) const PARKED: u8 = 1;
/// A case completed: the select may return; nobody touches its records again.
pub(crate) const DONE: u8 = 2;

/// A blocked select's shared word (Go: `g.selectDone` plus the park handshake). Lives on the
/// selecting goroutine's stack; its case records point at it.
pub(crate) struct SelState {
    /// 0 while undecided, else the winning case + 1. Set by one CAS, under the lock of the
    /// winning case's channel, by whoever dequeues one of the select's records first.
    pub(crate) won: AtomicUsize,
    /// ACTIVE, PARKED or DONE. The winner swaps in DONE as its last touch of this record and
    /// wakes the owner only if it had parked; an owner that has not parked yet sees DONE and
    /// does not park. So the owner may return (freeing this) as soon as it sees DONE.
    pub(crate) phase: AtomicU8,
    /// Who to wake; taken by the winner.
    pub(crate) waiter: Cell<Option<Waiter>>,
}

impl std::fmt::Debug for SelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelState")
            .field("won", &self.won)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl SelState {
    pub(crate) fn new() -> SelState {
        SelState {
            won: AtomicUsize::new(0),
            phase: AtomicU8::new(ACTIVE),
            waiter: Cell::new(Some(Waiter::current())),
        }
    }
}

/// Decides whether a record just taken off a queue (under its channel's lock) may complete:
/// always for a plain one; for a select's, only if no other case of that select won first,
/// in which case this one wins it now. A record that loses is dropped from the queue; its
/// owner finds it gone when it cleans up. Go: the `selectDone` CAS in `dequeue`.
///
/// # Safety
///
/// `sg` was just removed from a queue under the lock, so it and its select are alive.
unsafe fn claim<T>(sg: NonNull<Sudog<T>>) -> bool {
    // SAFETY: the caller's promise.
    let sg = unsafe { sg.as_ref() };
    let sel = sg.sel.get();
    // SAFETY: a select's state outlives its queued records (the owner takes each off under
    // the lock before it returns).
    sel.is_null()
        || unsafe { &*sel }
            .won
            .compare_exchange(0, sg.case.get() + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
}

/// Takes the first record of `q` that may complete (see [`claim`]), dropping the lost ones.
fn pop_claimed<T>(q: &mut Queue<T>) -> Option<NonNull<Sudog<T>>> {
    while let Some(sg) = q.pop_front() {
        // SAFETY: just removed from the queue, under the lock the caller holds.
        if unsafe { claim(sg) } {
            return Some(sg);
        }
    }
    None
}

/// Completes a dequeued (and claimed) waiter: records the outcome and wakes it.
///
/// # Safety
///
/// `sg` was just removed from a queue and claimed, so its owner is still waiting on it.
pub(crate) unsafe fn complete<T>(sg: NonNull<Sudog<T>>, outcome: u8) {
    // SAFETY: the caller's promise: the record is alive until `done` (or its select's phase)
    // says otherwise.
    let sg = unsafe { sg.as_ref() };
    let sel = sg.sel.get();
    if sel.is_null() {
        let waiter = sg.waiter.take();
        sg.done.store(outcome, Ordering::Release);
        // `sg` may be gone from here on (the owner returned): only the Waiter, moved out, is
        // used.
        if let Some(w) = waiter {
            w.wake();
        }
        return;
    }
    // SAFETY: as above; the select's state lives as long as its records.
    let sel = unsafe { &*sel };
    sg.done.store(outcome, Ordering::Relaxed);
    let waiter = sel.waiter.take();
    // The last touch of the owner's memory (Release: publishes `done` and the value).
    if sel.phase.swap(DONE, Ordering::AcqRel) == PARKED {
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

pub(crate) struct State<T> {
    buf: VecDeque<T>,
    closed: bool,
    recvq: Queue<T>,
    sendq: Queue<T>,
}

impl<T> State<T> {
    /// A send under the lock: straight to a waiting receiver (returned, to be completed by
    /// the caller, after unlocking if it likes), else into the buffer.
    pub(crate) fn send_locked(&mut self, cap: usize, v: T) -> Result<Peer<T>, TrySend<T>> {
        if self.closed {
            return Err(TrySend::Closed(v));
        }
        if let Some(sg) = pop_claimed(&mut self.recvq) {
            // Go: send() with a waiting receiver: straight into its slot.
            // SAFETY: dequeued and claimed under the lock: its owner waits on it.
            unsafe { *(*sg.as_ptr()).elem.get() = Some(v) };
            return Ok(Some(sg));
        }
        if self.buf.len() < cap {
            self.buf.push_back(v);
            return Ok(None);
        }
        Err(TrySend::Full(v))
    }

    /// A receive under the lock: a waiting sender's value (the sender is returned, to be
    /// completed by the caller), or the buffer's head.
    pub(crate) fn recv_locked(&mut self) -> Result<(T, Peer<T>), TryRecv> {
        if let Some(sg) = pop_claimed(&mut self.sendq) {
            // SAFETY: dequeued and claimed under the lock: its owner waits on it.
            let theirs = unsafe { (*(*sg.as_ptr()).elem.get()).take() };
            let Some(theirs) = theirs else {
                crate::runtime::fatal("chan recv", "a waiting sender had no value");
            };
            // Unbuffered: take it directly. Buffered (and full): the head, and the sender's
            // value goes to the tail (Go: recv()).
            let v = match self.buf.pop_front() {
                Some(head) => {
                    self.buf.push_back(theirs);
                    head
                }
                None => theirs,
            };
            return Ok((v, Some(sg)));
        }
        if let Some(v) = self.buf.pop_front() {
            return Ok((v, None));
        }
        if self.closed {
            return Err(TryRecv::Closed);
        }
        Err(TryRecv::Empty)
    }

    /// Queues a select's record `sg` for case `case` of `sel`.
    pub(crate) fn enqueue_select(
        &mut self,
        send: bool,
        sg: &Sudog<T>,
        sel: *const SelState,
        case: usize,
    ) {
        sg.sel.set(sel);
        sg.case.set(case);
        let q = if send {
            &mut self.sendq
        } else {
            &mut self.recvq
        };
        q.push_back(NonNull::from(sg));
    }

    /// Takes the record at `addr` off the send or receive queue, if it is still there (the
    /// deadline paths of `wait_until`, which know their record only by address, and a
    /// select cleaning up its cases).
    pub(crate) fn unqueue(&mut self, send: bool, addr: usize) -> Option<NonNull<Sudog<T>>> {
        let q = if send {
            &mut self.sendq
        } else {
            &mut self.recvq
        };
        let i = q.iter().position(|p| p.as_ptr() as usize == addr)?;
        q.remove(i)
    }
}

/// A channel's shared core, behind an `Arc` held by every Sender and Receiver.
pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
    pub(crate) cap: usize,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
}

// SAFETY: the queued raw pointers are only dereferenced under the lock (module docs); values
// of T move between threads, so T: Send is required, as for std's channels.
unsafe impl<T: Send> Send for Chan<T> {}
// SAFETY: as above; every access to the state goes through the Mutex.
unsafe impl<T: Send> Sync for Chan<T> {}

/// Why a non-blocking send failed.
pub(crate) enum TrySend<T> {
    Full(T),
    Closed(T),
}

/// Why a non-blocking receive failed.
pub(crate) enum TryRecv {
    Empty,
    Closed,
}

/// How a send with a deadline ended, when it did not succeed.
pub(crate) enum SendFail<T> {
    Timeout(T),
    Closed(T),
}

/// How a receive with a deadline ended, when it did not succeed.
pub(crate) enum RecvFail {
    Timeout,
    Closed,
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: usize) -> Chan<T> {
        Chan {
            state: Mutex::new(State {
                // A bounded ring: allocated up to `cap` as it fills (a huge cap costs nothing
                // until used).
                buf: VecDeque::new(),
                closed: false,
                recvq: VecDeque::new(),
                sendq: VecDeque::new(),
            }),
            cap,
            senders: AtomicUsize::new(0),
            receivers: AtomicUsize::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic never leaves the state half-updated (no user code runs under the lock).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().buf.len()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The fast half of a send: hands `v` to a waiting receiver or buffers it; else gives it
    /// back with the lock still held.
    fn send_fast<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        v: T,
    ) -> Result<(), (MutexGuard<'a, State<T>>, TrySend<T>)> {
        match st.send_locked(self.cap, v) {
            Ok(None) => Ok(()),
            Ok(Some(sg)) => {
                drop(st);
                // SAFETY: dequeued and claimed under the lock (module docs).
                unsafe { complete(sg, OK) };
                Ok(())
            }
            Err(e) => Err((st, e)),
        }
    }

    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySend<T>> {
        self.send_fast(self.lock(), v).map_err(|(_, e)| e)
    }

    /// Sends `v`, waiting for room or a receiver. Err(v) if the channel is closed (or has no
    /// receivers left).
    pub(crate) fn send(&self, v: T) -> Result<(), T> {
        let st = match self.send_fast(self.lock(), v) {
            Ok(()) => return Ok(()),
            Err((_, TrySend::Closed(v))) => return Err(v),
            Err((st, TrySend::Full(v))) => (st, v),
        };
        let (mut st, v) = st;
        let sg = Sudog::new(Some(v));
        st.sendq.push_back(NonNull::from(&sg));
        match sg.wait(st, WaitReason::ChanSend) {
            OK => Ok(()),
            // SAFETY: dequeued (done is set), so only we touch the record now.
            _ => Err(unsafe { (*sg.elem.get()).take() }.unwrap_or_else(|| {
                crate::runtime::fatal("chan send", "a failed send lost its value")
            })),
        }
    }

    /// The fast half of a receive: a waiting sender's value, or the buffer's head.
    fn recv_fast<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
    ) -> Result<T, (MutexGuard<'a, State<T>>, TryRecv)> {
        match st.recv_locked() {
            Ok((v, None)) => Ok(v),
            Ok((v, Some(sg))) => {
                drop(st);
                // SAFETY: dequeued and claimed under the lock (module docs).
                unsafe { complete(sg, OK) };
                Ok(v)
            }
            Err(e) => Err((st, e)),
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecv> {
        self.recv_fast(self.lock()).map_err(|(_, e)| e)
    }

    /// Receives a value, waiting for one. None once the channel is closed and drained.
    pub(crate) fn recv(&self) -> Option<T> {
        let st = match self.recv_fast(self.lock()) {
            Ok(v) => return Some(v),
            Err((_, TryRecv::Closed)) => return None,
            Err((st, TryRecv::Empty)) => st,
        };
        let mut st = st;
        let sg = Sudog::new(None);
        st.recvq.push_back(NonNull::from(&sg));
        match sg.wait(st, WaitReason::ChanRecv) {
            // SAFETY: dequeued (done is set): only we touch the record now.
            OK => unsafe { (*sg.elem.get()).take() },
            _ => None,
        }
    }

    /// `send` that gives up at `deadline` ([`nanotime`] units), returning the value.
    pub(crate) fn send_deadline(self: &Arc<Self>, v: T, deadline: u64) -> Result<(), SendFail<T>>
    where
        T: Send + 'static,
    {
        let (mut st, v) = match self.send_fast(self.lock(), v) {
            Ok(()) => return Ok(()),
            Err((_, TrySend::Closed(v))) => return Err(SendFail::Closed(v)),
            Err((st, TrySend::Full(v))) => (st, v),
        };
        if nanotime() >= deadline {
            return Err(SendFail::Timeout(v));
        }
        let sg = Sudog::new(Some(v));
        st.sendq.push_back(NonNull::from(&sg));
        let done = self.wait_until(st, &sg, true, deadline, WaitReason::ChanSend);
        if done == OK {
            return Ok(());
        }
        // SAFETY: off every queue (done is set): only we touch the record now.
        let v = unsafe { (*sg.elem.get()).take() }
            .unwrap_or_else(|| crate::runtime::fatal("chan send", "a failed send lost its value"));
        Err(if done == TIMEOUT {
            SendFail::Timeout(v)
        } else {
            SendFail::Closed(v)
        })
    }

    /// `recv` that gives up at `deadline` ([`nanotime`] units).
    pub(crate) fn recv_deadline(self: &Arc<Self>, deadline: u64) -> Result<T, RecvFail>
    where
        T: Send + 'static,
    {
        let mut st = match self.recv_fast(self.lock()) {
            Ok(v) => return Ok(v),
            Err((_, TryRecv::Closed)) => return Err(RecvFail::Closed),
            Err((st, TryRecv::Empty)) => st,
        };
        if nanotime() >= deadline {
            return Err(RecvFail::Timeout);
        }
        let sg = Sudog::new(None);
        st.recvq.push_back(NonNull::from(&sg));
        match self.wait_until(st, &sg, false, deadline, WaitReason::ChanRecv) {
            // SAFETY: off every queue (done is set): only we touch the record now.
            OK => unsafe { (*sg.elem.get()).take() }.ok_or(RecvFail::Closed),
            TIMEOUT => Err(RecvFail::Timeout),
            _ => Err(RecvFail::Closed),
        }
    }

    /// Parks the owner of `sg`, queued (under `st`) on the send or receive queue, until it is
    /// completed or `deadline` passes; returns how it ended.
    ///
    /// A goroutine gets a timer whose callback, if the record is still queued, takes it off
    /// under the lock and completes it with TIMEOUT: exactly one of the timer and the
    /// channel's other side dequeues it. The callback finds the record by address; the owner
    /// cancels the timer before its frame can go, and the cancel waits for a callback that is
    /// running (it runs under the timer's lock, `timers::CallTimer`), so a stale callback
    /// never matches a later record at the same address. Cancelling also drops the
    /// callback's `Arc` to the channel now instead of at the deadline.
    /// A thread waits with a timeout and takes its own record off on expiry.
    fn wait_until(
        self: &Arc<Self>,
        st: MutexGuard<'_, State<T>>,
        sg: &Sudog<T>,
        send: bool,
        deadline: u64,
        reason: WaitReason,
    ) -> u8
    where
        T: Send + 'static,
    {
        let addr = sg as *const Sudog<T> as usize;
        let chan = self.clone();
        let fire = move || {
            let mut st = chan.lock();
            if let Some(sg) = st.unqueue(send, addr) {
                drop(st);
                // SAFETY: dequeued under the lock while its owner is parked on it (it cannot
                // cancel us and leave before `done` is set).
                unsafe { complete(sg, TIMEOUT) };
            }
        };
        if let Some(timer) = crate::runtime::timers::call_at(deadline, fire) {
            let done = sg.wait(st, reason);
            drop(timer);
            return done;
        }
        // A plain thread.
        drop(st);
        loop {
            let done = sg.done.load(Ordering::Acquire);
            if done != WAITING {
                return done;
            }
            let now = nanotime();
            if now < deadline {
                std::thread::park_timeout(std::time::Duration::from_nanos(deadline - now));
                continue;
            }
            if self.lock().unqueue(send, addr).is_some() {
                return TIMEOUT;
            }
            // Dequeued by the other side, which is completing it: wait for `done`.
            loop {
                let done = sg.done.load(Ordering::Acquire);
                if done != WAITING {
                    return done;
                }
                std::thread::park();
            }
        }
    }

    /// The async receive (`Receiver::recv_async`): completes at once if it can, else queues
    /// a heap record in `slot` with the task's waker; later polls refresh the waker while the
    /// record is queued, and collect the outcome once a sender (or close) took it off.
    pub(crate) fn poll_recv(
        &self,
        slot: &mut Option<Box<Sudog<T>>>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        use std::task::Poll;
        if let Some(sg) = slot {
            if self.refresh(sg, false, cx.waker()) {
                return Poll::Pending;
            }
            let sg = slot.take().unwrap_or_else(|| unreachable!());
            let done = finished(&sg);
            // SAFETY: off the queue with `done` set: only we touch the record.
            return Poll::Ready(
                (done == OK)
                    .then(|| unsafe { (*sg.elem.get()).take() })
                    .flatten(),
            );
        }
        let mut st = self.lock();
        match st.recv_locked() {
            Ok((v, peer)) => {
                drop(st);
                if let Some(sg) = peer {
                    // SAFETY: dequeued and claimed under the lock.
                    unsafe { complete(sg, OK) };
                }
                Poll::Ready(Some(v))
            }
            Err(TryRecv::Closed) => Poll::Ready(None),
            Err(TryRecv::Empty) => {
                let sg = Box::new(Sudog::for_task(None, cx.waker()));
                st.recvq.push_back(NonNull::from(&*sg));
                *slot = Some(sg);
                Poll::Pending
            }
        }
    }

    /// The async send (`Sender::send_async`); `value` is taken when the send is attempted and
    /// comes back in Err if the channel is closed.
    pub(crate) fn poll_send(
        &self,
        slot: &mut Option<Box<Sudog<T>>>,
        value: &mut Option<T>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), T>> {
        use std::task::Poll;
        if let Some(sg) = slot {
            if self.refresh(sg, true, cx.waker()) {
                return Poll::Pending;
            }
            let sg = slot.take().unwrap_or_else(|| unreachable!());
            if finished(&sg) == OK {
                return Poll::Ready(Ok(()));
            }
            // SAFETY: off the queue with `done` set: only we touch the record.
            let v = unsafe { (*sg.elem.get()).take() }.unwrap_or_else(|| {
                crate::runtime::fatal("chan send_async", "a failed send lost its value")
            });
            return Poll::Ready(Err(v));
        }
        let Some(v) = value.take() else {
            panic!("SendFuture polled after it completed");
        };
        let mut st = self.lock();
        match st.send_locked(self.cap, v) {
            Ok(peer) => {
                drop(st);
                if let Some(sg) = peer {
                    // SAFETY: dequeued and claimed under the lock.
                    unsafe { complete(sg, OK) };
                }
                Poll::Ready(Ok(()))
            }
            Err(TrySend::Closed(v)) => Poll::Ready(Err(v)),
            Err(TrySend::Full(v)) => {
                let sg = Box::new(Sudog::for_task(Some(v), cx.waker()));
                st.sendq.push_back(NonNull::from(&*sg));
                *slot = Some(sg);
                Poll::Pending
            }
        }
    }

    /// While `sg` is still queued (checked under the lock, which whoever takes it off holds),
    /// swaps in the newest waker and returns true. False: it was taken off and its outcome
    /// is being (or has been) recorded.
    fn refresh(&self, sg: &Sudog<T>, send: bool, waker: &std::task::Waker) -> bool {
        let st = self.lock();
        let q = if send { &st.sendq } else { &st.recvq };
        let addr = sg as *const Sudog<T>;
        if q.iter().any(|p| std::ptr::eq(p.as_ptr(), addr)) {
            sg.waiter.set(Some(Waiter::Task(waker.clone())));
            return true;
        }
        false
    }

    /// An async operation's future is dropped: its record leaves the queue if it is still
    /// there; else its outcome is awaited (a value received then is dropped with it).
    pub(crate) fn cancel(&self, slot: &mut Option<Box<Sudog<T>>>, send: bool) {
        let Some(sg) = slot.take() else { return };
        let addr = &*sg as *const Sudog<T> as usize;
        if self.lock().unqueue(send, addr).is_some() {
            return;
        }
        finished(&sg);
    }

    /// Closes the channel: every waiting receiver and sender is woken (receivers get nothing,
    /// senders their value back); buffered values can still be received. False if it was
    /// closed already.
    pub(crate) fn close(&self) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.closed = true;
        let st = &mut *st;
        let waiters: Vec<_> = st.recvq.drain(..).chain(st.sendq.drain(..)).collect();
        // Completed under the lock: a record may be freed as soon as its `done` is set, and
        // nobody else can dequeue it now. A select that another case already won is skipped.
        for sg in waiters {
            // SAFETY: just dequeued under the lock.
            unsafe {
                if claim(sg) {
                    complete(sg, CLOSED);
                }
            }
        }
        true
    }
}
