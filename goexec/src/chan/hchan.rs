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
//!   is saved (`WaitQueue::park`), and wakes with its outcome already decided by whoever
//!   dequeued it: it never re-examines the channel.
//!
//! The waiters' records and their queues are `runtime::waitq`'s: a record's payload is the
//! sender's value or the receiver's slot, and its token the outcome.

use crate::runtime::g::WaitReason;
use crate::runtime::timers::nanotime;
use crate::runtime::waitq::{Pending, Taken, WaitQueue};
use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};

/// The operation completed (a receiver has its value in its slot; a sender's value was
/// taken).
pub(crate) const OK: u8 = 1;
/// The channel was closed (or, for a sender, lost its last receiver) while it waited.
pub(crate) const CLOSED: u8 = 2;
/// The deadline passed first (`*_deadline`): the record was taken off its queue by the timer.
const TIMEOUT: u8 = 3;

/// A queue of senders (each record's payload is its value) or receivers (a slot for one).
pub(crate) type Queue<T> = WaitQueue<Option<T>, u8>;

/// A waiter taken off a queue whose operation the caller has done and must now complete.
pub(crate) type Peer<T> = Option<Taken<Option<T>, u8>>;

/// An async operation's queued record (`future.rs`).
pub(crate) type AsyncRecord<T> = Pending<Option<T>, u8>;

pub(crate) struct State<T> {
    buf: VecDeque<T>,
    closed: bool,
    pub(crate) recvq: Queue<T>,
    pub(crate) sendq: Queue<T>,
}

impl<T> State<T> {
    /// A send under the lock: straight to a waiting receiver (returned, to be completed by
    /// the caller, after unlocking if it likes), else into the buffer.
    pub(crate) fn send_locked(&mut self, cap: usize, v: T) -> Result<Peer<T>, TrySend<T>> {
        if self.closed {
            return Err(TrySend::Closed(v));
        }
        if let Some(mut r) = self.recvq.pop() {
            // Go: send() with a waiting receiver: straight into its slot.
            r.with_payload(|slot| *slot = Some(v));
            return Ok(Some(r));
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
        if let Some(mut s) = self.sendq.pop() {
            let Some(theirs) = s.with_payload(Option::take) else {
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
            return Ok((v, Some(s)));
        }
        if let Some(v) = self.buf.pop_front() {
            return Ok((v, None));
        }
        if self.closed {
            return Err(TryRecv::Closed);
        }
        Err(TryRecv::Empty)
    }
}

/// A channel's shared core, behind an `Arc` held by every Sender and Receiver.
pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
    pub(crate) cap: usize,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
}

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
                recvq: WaitQueue::new(),
                sendq: WaitQueue::new(),
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
            Ok(Some(r)) => {
                drop(st);
                r.wake(OK);
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
        let (st, v) = st;
        match WaitQueue::park(st, |st| &mut st.sendq, Some(v), WaitReason::ChanSend) {
            (_, OK) => Ok(()),
            (v, _) => Err(v.unwrap_or_else(|| {
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
            Ok((v, Some(s))) => {
                drop(st);
                s.wake(OK);
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
        match WaitQueue::park(st, |st| &mut st.recvq, None, WaitReason::ChanRecv) {
            (v, OK) => v,
            _ => None,
        }
    }

    /// `send` that gives up at `deadline` ([`nanotime`] units), returning the value.
    pub(crate) fn send_deadline(self: &Arc<Self>, v: T, deadline: u64) -> Result<(), SendFail<T>>
    where
        T: Send + 'static,
    {
        let (st, v) = match self.send_fast(self.lock(), v) {
            Ok(()) => return Ok(()),
            Err((_, TrySend::Closed(v))) => return Err(SendFail::Closed(v)),
            Err((st, TrySend::Full(v))) => (st, v),
        };
        if nanotime() >= deadline {
            return Err(SendFail::Timeout(v));
        }
        let (v, done) = WaitQueue::park_until(
            st,
            |st| &mut st.sendq,
            || self.lock(),
            Some(v),
            WaitReason::ChanSend,
            deadline,
            TIMEOUT,
            |id| self.arm(deadline, move |st| st.sendq.take(id)),
        );
        if done == OK {
            return Ok(());
        }
        let v =
            v.unwrap_or_else(|| crate::runtime::fatal("chan send", "a failed send lost its value"));
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
        let st = match self.recv_fast(self.lock()) {
            Ok(v) => return Ok(v),
            Err((_, TryRecv::Closed)) => return Err(RecvFail::Closed),
            Err((st, TryRecv::Empty)) => st,
        };
        if nanotime() >= deadline {
            return Err(RecvFail::Timeout);
        }
        let (v, done) = WaitQueue::park_until(
            st,
            |st| &mut st.recvq,
            || self.lock(),
            None,
            WaitReason::ChanRecv,
            deadline,
            TIMEOUT,
            |id| self.arm(deadline, move |st| st.recvq.take(id)),
        );
        match done {
            OK => v.ok_or(RecvFail::Closed),
            TIMEOUT => Err(RecvFail::Timeout),
            _ => Err(RecvFail::Closed),
        }
    }

    /// The deadline of a waiting goroutine's operation (`park_until`): a timer whose callback,
    /// if the record is still queued, takes it off (`take`, under the lock) and completes it
    /// with TIMEOUT: exactly one of the timer and the channel's other side takes it off. The
    /// owner cancels the timer (dropping it) before it returns, and the cancel waits for a
    /// callback that is running (it runs under the timer's lock, `timers::CallTimer`), so a
    /// stale callback never takes a later record off. Cancelling also drops the callback's
    /// `Arc` to the channel now instead of at the deadline. None on a plain thread, which
    /// waits with a timeout instead.
    fn arm(
        self: &Arc<Self>,
        deadline: u64,
        take: impl FnOnce(&mut State<T>) -> Peer<T> + Send + 'static,
    ) -> Option<crate::runtime::timers::CallTimer<impl crate::runtime::timers::Call>>
    where
        T: Send + 'static,
    {
        let chan = self.clone();
        crate::runtime::timers::call_at(deadline, move || {
            let mut st = chan.lock();
            let r = take(&mut st);
            drop(st);
            if let Some(r) = r {
                r.wake(TIMEOUT);
            }
        })
    }

    /// The async receive (`Receiver::recv_async`): completes at once if it can, else queues
    /// a heap record in `slot` with the task's waker; later polls refresh the waker while the
    /// record is queued, and collect the outcome once a sender (or close) took it off.
    pub(crate) fn poll_recv(
        &self,
        slot: &mut Option<AsyncRecord<T>>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        use std::task::Poll;
        if let Some(r) = slot {
            if r.refresh(&self.lock().recvq, cx.waker()) {
                return Poll::Pending;
            }
            let r = slot.take().unwrap_or_else(|| unreachable!());
            let (v, done) = r.finish();
            return Poll::Ready(if done == OK { v } else { None });
        }
        let mut st = self.lock();
        match st.recv_locked() {
            Ok((v, peer)) => {
                drop(st);
                if let Some(s) = peer {
                    s.wake(OK);
                }
                Poll::Ready(Some(v))
            }
            Err(TryRecv::Closed) => Poll::Ready(None),
            Err(TryRecv::Empty) => {
                *slot = Some(st.recvq.push_pending(None, cx.waker()));
                Poll::Pending
            }
        }
    }

    /// The async send (`Sender::send_async`); `value` is taken when the send is attempted and
    /// comes back in Err if the channel is closed.
    pub(crate) fn poll_send(
        &self,
        slot: &mut Option<AsyncRecord<T>>,
        value: &mut Option<T>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), T>> {
        use std::task::Poll;
        if let Some(r) = slot {
            if r.refresh(&self.lock().sendq, cx.waker()) {
                return Poll::Pending;
            }
            let r = slot.take().unwrap_or_else(|| unreachable!());
            return Poll::Ready(match r.finish() {
                (_, OK) => Ok(()),
                (v, _) => Err(v.unwrap_or_else(|| {
                    crate::runtime::fatal("chan send_async", "a failed send lost its value")
                })),
            });
        }
        let Some(v) = value.take() else {
            panic!("SendFuture polled after it completed");
        };
        let mut st = self.lock();
        match st.send_locked(self.cap, v) {
            Ok(peer) => {
                drop(st);
                if let Some(r) = peer {
                    r.wake(OK);
                }
                Poll::Ready(Ok(()))
            }
            Err(TrySend::Closed(v)) => Poll::Ready(Err(v)),
            Err(TrySend::Full(v)) => {
                *slot = Some(st.sendq.push_pending(Some(v), cx.waker()));
                Poll::Pending
            }
        }
    }

    /// An async operation's future is dropped: its record leaves the queue if it is still
    /// there; else its outcome is awaited (a value received then is dropped with it).
    pub(crate) fn cancel(&self, slot: &mut Option<AsyncRecord<T>>, send: bool) {
        let Some(r) = slot.take() else { return };
        let taken = {
            let mut st = self.lock();
            r.cancel(if send { &mut st.sendq } else { &mut st.recvq })
        };
        // A value taken back, or received, is dropped here, after the lock.
        match taken {
            Ok(v) => drop(v),
            Err(r) => drop(r.finish()),
        }
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
        // Woken under the lock, receivers first (a select that another case already won is
        // skipped).
        st.recvq.wake_all(CLOSED);
        st.sendq.wake_all(CLOSED);
        true
    }
}
