//! The select core (Go: `select.go` `selectgo`): waits on any mix of send and receive cases
//! and completes exactly one.
//!
//! The steps are Go's:
//! 1. a poll order, a uniformly random permutation of the cases, and a lock order, the cases
//!    sorted by channel address (a channel in several cases is locked once);
//! 2. with every channel locked, the first case in poll order that can proceed does, and the
//!    select returns it; with none and a `default`, the select returns None;
//! 3. else a record for every case goes on its channel's queue (all locks still held, so
//!    nothing changed since step 2), and the selector parks once, releasing the locks;
//! 4. whoever takes one of its records off a queue first wins the select and completes that
//!    case; the others find it won and drop their record (the claim, and the park handshake,
//!    are `runtime::waitq`'s [`Select`]);
//! 5. the selector, woken, locks every channel again and takes its other records off.
#![allow(unsafe_code)] // a channel's state, shared by the cases on that channel while locked.

use super::hchan::{self, Chan, State, TryRecv, TrySend};
use super::{Receiver, RecvError, SendError, Sender};
use crate::runtime::g::WaitReason;
use crate::runtime::park::gopark;
use crate::runtime::waitq::{SelRecord, Select};
use crate::runtime::{current_g, fastrand};
use std::cell::Cell;
use std::sync::MutexGuard;

/// The select core's view of a case: the methods behind [`SelectCase`], crate-private so
/// that nothing outside can call them or name the select's shared state. The methods used
/// while the case's record may be queued take `&self`: the [`Select`] borrows the record.
pub(crate) trait Case {
    /// The channel's address: the lock order, and which cases share a channel.
    fn chan_id(&self) -> usize;
    /// Locks the channel and returns its state, type-erased, for cases on the same channel.
    fn lock(&self) -> *mut ();
    /// Uses the state of a channel another case locked (same channel, so same type).
    fn share(&self, st: *mut ());
    /// Releases the lock (if this case took it) and forgets the state.
    fn unlock(&self);
    /// Under the lock: completes the operation if it can proceed now.
    fn poll(&mut self) -> bool;
    /// Under the lock: queues this case's record on `sel`, as case `case`.
    fn enqueue<'s>(&'s self, sel: &Select<'s>, case: usize);
    /// Under the lock: takes the record off its queue if it is still there.
    fn dequeue<'s>(&'s self, sel: &Select<'s>);
    /// This case won while the select waited: collects its outcome from the record.
    fn finish(&mut self);
}

/// One case of a [`select`]: a [`RecvCase`] or a [`SendCase`]. Sealed: its methods are the
/// select core's own, so only this crate's case types take part in a select.
// The bound is crate-private on purpose: it seals the trait and keeps the select's shared
// state out of the public API.
#[allow(private_bounds)]
pub trait SelectCase: Case {}

/// A case's channel and, while the select holds the channel's lock, its state: the lock
/// half of [`SelectCase`], the same for receive and send cases.
struct CaseLock<'a, T> {
    chan: &'a Chan<T>,
    /// Held by the first case of the channel in lock order; the others only `share`.
    guard: Cell<Option<MutexGuard<'a, State<T>>>>,
    st: Cell<*mut State<T>>,
}

impl<'a, T> CaseLock<'a, T> {
    fn new(chan: &'a Chan<T>) -> CaseLock<'a, T> {
        CaseLock {
            chan,
            guard: Cell::new(None),
            st: Cell::new(std::ptr::null_mut()),
        }
    }

    fn chan_id(&self) -> usize {
        self.chan as *const Chan<T> as usize
    }

    fn lock(&self) -> *mut () {
        let mut g = self.chan.lock();
        let st: *mut State<T> = &mut *g;
        self.st.set(st);
        self.guard.set(Some(g));
        st.cast()
    }

    fn share(&self, st: *mut ()) {
        self.st.set(st.cast());
    }

    fn unlock(&self) {
        self.st.set(std::ptr::null_mut());
        self.guard.set(None);
    }

    /// Runs `f` on the locked state.
    fn with_state<R>(&self, f: impl FnOnce(&mut State<T>) -> R) -> R {
        let st = self.st.get();
        if st.is_null() {
            crate::runtime::fatal("select", "a case's channel used unlocked");
        }
        // SAFETY: set by lock/share while the channel's lock is held (by this case or one
        // on the same channel), cleared by unlock; only the selecting thread uses it, one
        // case at a time, and no reference to it outlives `f`.
        f(unsafe { &mut *st })
    }
}

/// A receive case: `recv(rx) -> v` in [`select!`](crate::select!).
pub struct RecvCase<'a, T> {
    lock: CaseLock<'a, T>,
    rec: SelRecord<Option<T>, u8>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvCase<'a, T> {
    /// A case receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> RecvCase<'a, T> {
        RecvCase {
            lock: CaseLock::new(&rx.chan),
            rec: SelRecord::new(None),
            result: None,
        }
    }

    /// The received value, or `Err(RecvError)` if the channel was closed and drained.
    ///
    /// # Panics
    ///
    /// If [`select`] did not choose this case.
    pub fn result(self) -> Result<T, RecvError> {
        let mut me = self;
        me.result
            .take()
            .expect("RecvCase::result: select did not choose this case")
    }
}

impl<T> std::fmt::Debug for RecvCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvCase").finish_non_exhaustive()
    }
}

impl<T> SelectCase for RecvCase<'_, T> {}

impl<T> Case for RecvCase<'_, T> {
    fn chan_id(&self) -> usize {
        self.lock.chan_id()
    }

    fn lock(&self) -> *mut () {
        self.lock.lock()
    }

    fn share(&self, st: *mut ()) {
        self.lock.share(st);
    }

    fn unlock(&self) {
        self.lock.unlock();
    }

    fn poll(&mut self) -> bool {
        match self.lock.with_state(State::recv_locked) {
            Ok((v, peer)) => {
                if let Some(s) = peer {
                    s.wake(hchan::OK);
                }
                self.result = Some(Ok(v));
                true
            }
            Err(TryRecv::Closed) => {
                self.result = Some(Err(RecvError));
                true
            }
            Err(TryRecv::Empty) => false,
        }
    }

    fn enqueue<'s>(&'s self, sel: &Select<'s>, case: usize) {
        self.lock
            .with_state(|st| sel.push(&mut st.recvq, &self.rec, case));
    }

    fn dequeue<'s>(&'s self, sel: &Select<'s>) {
        self.lock
            .with_state(|st| sel.remove(&mut st.recvq, &self.rec));
    }

    fn finish(&mut self) {
        self.result = Some(if self.rec.take_token() == Some(hchan::OK) {
            self.rec.take_payload().ok_or(RecvError)
        } else {
            Err(RecvError)
        });
    }
}

/// A send case: `send(tx, v) -> r` in [`select!`](crate::select!).
pub struct SendCase<'a, T> {
    lock: CaseLock<'a, T>,
    /// The value, until it is sent or queued (in the record's payload).
    value: Cell<Option<T>>,
    rec: SelRecord<Option<T>, u8>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    /// A case sending `v` on `tx`.
    pub fn new(tx: &'a Sender<T>, v: T) -> SendCase<'a, T> {
        SendCase {
            lock: CaseLock::new(&tx.chan),
            value: Cell::new(Some(v)),
            rec: SelRecord::new(None),
            result: None,
        }
    }

    /// `Ok(())` if the value was sent, `Err(SendError(v))` if the channel was closed.
    ///
    /// # Panics
    ///
    /// If [`select`] did not choose this case.
    pub fn result(self) -> Result<(), SendError<T>> {
        let mut me = self;
        me.result
            .take()
            .expect("SendCase::result: select did not choose this case")
    }
}

impl<T> std::fmt::Debug for SendCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendCase").finish_non_exhaustive()
    }
}

impl<T> SelectCase for SendCase<'_, T> {}

impl<T> Case for SendCase<'_, T> {
    fn chan_id(&self) -> usize {
        self.lock.chan_id()
    }

    fn lock(&self) -> *mut () {
        self.lock.lock()
    }

    fn share(&self, st: *mut ()) {
        self.lock.share(st);
    }

    fn unlock(&self) {
        self.lock.unlock();
    }

    fn poll(&mut self) -> bool {
        let Some(v) = self.value.take() else {
            return false;
        };
        let cap = self.lock.chan.cap;
        match self.lock.with_state(|st| st.send_locked(cap, v)) {
            Ok(peer) => {
                if let Some(r) = peer {
                    r.wake(hchan::OK);
                }
                self.result = Some(Ok(()));
                true
            }
            Err(TrySend::Closed(v)) => {
                self.result = Some(Err(SendError(v)));
                true
            }
            Err(TrySend::Full(v)) => {
                self.value.set(Some(v));
                false
            }
        }
    }

    fn enqueue<'s>(&'s self, sel: &Select<'s>, case: usize) {
        self.rec.set_payload(self.value.take());
        self.lock
            .with_state(|st| sel.push(&mut st.sendq, &self.rec, case));
    }

    fn dequeue<'s>(&'s self, sel: &Select<'s>) {
        self.lock
            .with_state(|st| sel.remove(&mut st.sendq, &self.rec));
        // Never taken, or taken off by a receiver that found the select already won: either
        // way the value is still in the record, and comes back to the case (to be sent by a
        // later select, or dropped with it).
        self.value.set(self.rec.take_payload());
    }

    fn finish(&mut self) {
        self.result = Some(if self.rec.take_token() == Some(hchan::OK) {
            Ok(())
        } else {
            let v = self.rec.take_payload();
            Err(SendError(v.unwrap_or_else(|| {
                crate::runtime::fatal("select", "a failed send lost its value")
            })))
        });
    }
}

/// Case indices, inline for the usual handful of cases.
struct Order {
    inline: [usize; 16],
    heap: Vec<usize>,
    n: usize,
}

impl Order {
    fn new(n: usize) -> Order {
        let mut o = Order {
            inline: [0; 16],
            heap: Vec::new(),
            n,
        };
        if n > o.inline.len() {
            o.heap = (0..n).collect();
        } else {
            for (i, x) in o.inline.iter_mut().enumerate().take(n) {
                *x = i;
            }
        }
        o
    }

    fn as_mut(&mut self) -> &mut [usize] {
        if self.n > self.inline.len() {
            &mut self.heap
        } else {
            &mut self.inline[..self.n]
        }
    }
}

/// Locks every case's channel in lock order, each channel once.
fn sellock(cases: &[&mut dyn SelectCase], lockorder: &[usize]) {
    let mut prev: Option<(usize, *mut ())> = None;
    for &i in lockorder {
        let id = cases[i].chan_id();
        match prev {
            Some((p, st)) if p == id => cases[i].share(st),
            _ => prev = Some((id, cases[i].lock())),
        }
    }
}

fn selunlock(cases: &[&mut dyn SelectCase], lockorder: &[usize]) {
    for &i in lockorder.iter().rev() {
        cases[i].unlock();
    }
}

/// Waits until one of `cases` can proceed, completes it, and returns its index; with
/// `default`, returns None at once if none can. Among cases ready at the same time, each is
/// equally likely to be chosen. No cases and no default: blocks forever (Go's `select {}`).
///
/// This is what [`select!`](crate::select!) expands to; the chosen case's outcome is then in
/// its [`RecvCase::result`] or [`SendCase::result`].
///
/// # Examples
///
/// ```
/// use goexec::chan::{self, select, RecvCase, SendCase};
///
/// goexec::run(|| {
///     let (tx, rx) = chan::bounded::<i32>(1);
///     let (_tx2, rx2) = chan::bounded::<&str>(0);
///     let mut send = SendCase::new(&tx, 7);
///     let mut never = RecvCase::new(&rx2);
///     assert_eq!(select(&mut [&mut send, &mut never], false), Some(0));
///     assert!(send.result().is_ok());
///     assert_eq!(rx.recv(), Ok(7));
/// });
/// ```
pub fn select(cases: &mut [&mut dyn SelectCase], default: bool) -> Option<usize> {
    let n = cases.len();
    if n == 0 {
        if default {
            return None;
        }
        block_forever();
    }
    // 1: the poll order (Fisher–Yates) and the lock order.
    let mut poll = Order::new(n);
    let pollorder = poll.as_mut();
    for i in (1..n).rev() {
        let j = (fastrand() % (i as u64 + 1)) as usize;
        pollorder.swap(i, j);
    }
    let mut lock = Order::new(n);
    let lockorder = lock.as_mut();
    lockorder.sort_unstable_by_key(|&i| cases[i].chan_id());

    // 2: a case that can proceed now.
    sellock(cases, lockorder);
    for &i in pollorder.iter() {
        if cases[i].poll() {
            selunlock(cases, lockorder);
            return Some(i);
        }
    }
    if default {
        selunlock(cases, lockorder);
        return None;
    }

    // 3: queue on every channel and park once; 5: take the other records off again.
    let won = {
        let cases: &[&mut dyn SelectCase] = cases;
        let lockorder: &[usize] = lockorder;
        Select::scope(|sel| {
            for &i in lockorder {
                cases[i].enqueue(sel, i);
            }
            let won = sel.park(WaitReason::Select, &mut || selunlock(cases, lockorder));
            if n > 1 {
                sellock(cases, lockorder);
                for &i in lockorder {
                    if i != won {
                        cases[i].dequeue(sel);
                    }
                }
                selunlock(cases, lockorder);
            }
            won
        })
    };
    cases[won].finish();
    Some(won)
}

/// `select {}`: parks for good (the deadlock detector reports it if nothing else can run).
fn block_forever() -> ! {
    loop {
        if current_g().is_some() {
            gopark(WaitReason::SelectNoCases, &mut || true);
        } else {
            crate::runtime::callback::check_may_block();
            std::thread::park();
        }
    }
}
