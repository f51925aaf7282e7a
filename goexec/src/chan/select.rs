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
//! 4. whoever takes one of its records off a queue first wins the select with one CAS on its
//!    shared word ([`SelState::won`]) and completes that case; the others find the CAS taken
//!    and drop their record (hchan's `claim`);
//! 5. the selector, woken, locks every channel again and takes its other records off.
//!
//! Go parks with the locks held and releases them on g0 (`selparkcommit`). Here too, but a
//! winner may complete the select while g0 is still releasing the other locks, so the wake
//! goes through a handshake ([`SelState::phase`]): the winner wakes the selector only if it
//! has parked; one that has not yet sees the case done and does not park.
#![allow(unsafe_code)] // the cases' records are queued by address, as in hchan.

use super::hchan::{self, Chan, SelState, State, Sudog, TryRecv, TrySend};
use super::{Receiver, RecvError, SendError, Sender};
use crate::runtime::g::WaitReason;
use crate::runtime::park::gopark;
use crate::runtime::{current_g, fastrand};
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

/// The select core's view of a case: the methods behind [`SelectCase`], crate-private so
/// that nothing outside can call them or name the select's shared state.
pub(crate) trait Case {
    /// The channel's address: the lock order, and which cases share a channel.
    fn chan_id(&self) -> usize;
    /// Locks the channel and returns its state, type-erased, for cases on the same channel.
    fn lock(&mut self) -> *mut ();
    /// Uses the state of a channel another case locked (same channel, so same type).
    fn share(&mut self, st: *mut ());
    /// Releases the lock (if this case took it) and forgets the state.
    fn unlock(&mut self);
    /// Under the lock: completes the operation if it can proceed now.
    fn poll(&mut self) -> bool;
    /// Under the lock: queues this case's record, as case `case` of `sel`.
    fn enqueue(&mut self, sel: &SelState, case: usize);
    /// Under the lock: takes the record off its queue if it is still there.
    fn dequeue(&mut self);
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
    guard: Option<MutexGuard<'a, State<T>>>,
    st: *mut State<T>,
}

impl<'a, T> CaseLock<'a, T> {
    fn new(chan: &'a Chan<T>) -> CaseLock<'a, T> {
        CaseLock {
            chan,
            guard: None,
            st: std::ptr::null_mut(),
        }
    }

    fn chan_id(&self) -> usize {
        self.chan as *const Chan<T> as usize
    }

    fn lock(&mut self) -> *mut () {
        let mut g = self.chan.lock();
        self.st = &mut *g;
        self.guard = Some(g);
        self.st.cast()
    }

    fn share(&mut self, st: *mut ()) {
        self.st = st.cast();
    }

    fn unlock(&mut self) {
        self.st = std::ptr::null_mut();
        self.guard = None;
    }

    fn state(&mut self) -> &mut State<T> {
        // SAFETY: set by lock/share while the channel's lock is held, cleared by unlock; the
        // select core calls the locked methods only in between.
        unsafe { &mut *self.st }
    }
}

/// A receive case: `recv(rx) -> v` in [`select!`](crate::select!).
pub struct RecvCase<'a, T> {
    lock: CaseLock<'a, T>,
    sg: Sudog<T>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvCase<'a, T> {
    /// A case receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> RecvCase<'a, T> {
        RecvCase {
            lock: CaseLock::new(&rx.chan),
            sg: Sudog::for_select(None),
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

    fn lock(&mut self) -> *mut () {
        self.lock.lock()
    }

    fn share(&mut self, st: *mut ()) {
        self.lock.share(st);
    }

    fn unlock(&mut self) {
        self.lock.unlock();
    }

    fn poll(&mut self) -> bool {
        match self.lock.state().recv_locked() {
            Ok((v, peer)) => {
                if let Some(sg) = peer {
                    // SAFETY: dequeued and claimed under the lock.
                    unsafe { hchan::complete(sg, hchan::OK) };
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

    fn enqueue(&mut self, sel: &SelState, case: usize) {
        let sg: *const Sudog<T> = &self.sg;
        // SAFETY: the record lives in this case, which the select core keeps in place (it
        // holds `&mut` to it) until the record is off the queue again.
        self.lock
            .state()
            .enqueue_select(false, unsafe { &*sg }, sel, case);
    }

    fn dequeue(&mut self) {
        let addr = &self.sg as *const Sudog<T> as usize;
        self.lock.state().unqueue(false, addr);
    }

    fn finish(&mut self) {
        self.result = Some(if self.sg.done.load(Ordering::Acquire) == hchan::OK {
            // SAFETY: completed: the sender filled the slot and nobody touches it now.
            unsafe { (*self.sg.elem.get()).take() }.ok_or(RecvError)
        } else {
            Err(RecvError)
        });
    }
}

/// A send case: `send(tx, v) -> r` in [`select!`](crate::select!).
pub struct SendCase<'a, T> {
    lock: CaseLock<'a, T>,
    value: Option<T>,
    sg: Sudog<T>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    /// A case sending `v` on `tx`.
    pub fn new(tx: &'a Sender<T>, v: T) -> SendCase<'a, T> {
        SendCase {
            lock: CaseLock::new(&tx.chan),
            value: Some(v),
            sg: Sudog::for_select(None),
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

    fn lock(&mut self) -> *mut () {
        self.lock.lock()
    }

    fn share(&mut self, st: *mut ()) {
        self.lock.share(st);
    }

    fn unlock(&mut self) {
        self.lock.unlock();
    }

    fn poll(&mut self) -> bool {
        let Some(v) = self.value.take() else {
            return false;
        };
        let cap = self.lock.chan.cap;
        match self.lock.state().send_locked(cap, v) {
            Ok(peer) => {
                if let Some(sg) = peer {
                    // SAFETY: dequeued and claimed under the lock.
                    unsafe { hchan::complete(sg, hchan::OK) };
                }
                self.result = Some(Ok(()));
                true
            }
            Err(TrySend::Closed(v)) => {
                self.result = Some(Err(SendError(v)));
                true
            }
            Err(TrySend::Full(v)) => {
                self.value = Some(v);
                false
            }
        }
    }

    fn enqueue(&mut self, sel: &SelState, case: usize) {
        // SAFETY: not queued yet: only we touch the record.
        unsafe { *self.sg.elem.get() = self.value.take() };
        let sg: *const Sudog<T> = &self.sg;
        // SAFETY: as in RecvCase::enqueue.
        self.lock
            .state()
            .enqueue_select(true, unsafe { &*sg }, sel, case);
    }

    fn dequeue(&mut self) {
        let addr = &self.sg as *const Sudog<T> as usize;
        if self.lock.state().unqueue(true, addr).is_some() {
            // Never taken: the value comes back to the case (dropped with it).
            // SAFETY: off the queue under the lock: only we touch the record.
            self.value = unsafe { (*self.sg.elem.get()).take() };
        }
    }

    fn finish(&mut self) {
        self.result = Some(if self.sg.done.load(Ordering::Acquire) == hchan::OK {
            Ok(())
        } else {
            // SAFETY: completed (closed): nobody touches the record now.
            let v = unsafe { (*self.sg.elem.get()).take() };
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
fn sellock(cases: &mut [&mut dyn SelectCase], lockorder: &[usize]) {
    let mut prev: Option<(usize, *mut ())> = None;
    for &i in lockorder {
        let id = cases[i].chan_id();
        match prev {
            Some((p, st)) if p == id => cases[i].share(st),
            _ => prev = Some((id, cases[i].lock())),
        }
    }
}

fn selunlock(cases: &mut [&mut dyn SelectCase], lockorder: &[usize]) {
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

    // 3: queue on every channel and park once.
    let sel = SelState::new();
    for &i in lockorder.iter() {
        cases[i].enqueue(&sel, i);
    }
    if current_g().is_some() {
        gopark(WaitReason::Select, &mut || {
            selunlock(cases, lockorder);
            // The last touch of this goroutine's memory before a winner may ready it.
            sel.phase
                .compare_exchange(
                    hchan::ACTIVE,
                    hchan::PARKED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        });
    } else {
        crate::runtime::callback::check_may_block();
        selunlock(cases, lockorder);
        if sel
            .phase
            .compare_exchange(
                hchan::ACTIVE,
                hchan::PARKED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            while sel.phase.load(Ordering::Acquire) != hchan::DONE {
                std::thread::park();
            }
        }
    }
    // Acquire: the winner's writes to its record (and the value) before its DONE.
    if sel.phase.load(Ordering::Acquire) != hchan::DONE {
        crate::runtime::fatal("select", "woken before a case completed");
    }
    let won = sel.won.load(Ordering::Acquire) - 1;

    // 5: take the other records off their queues.
    if n > 1 {
        sellock(cases, lockorder);
        for &i in lockorder.iter() {
            if i != won {
                cases[i].dequeue();
            }
        }
        selunlock(cases, lockorder);
    }
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
