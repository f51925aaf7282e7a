//! M: an OS thread that runs the scheduler (Go: `runtime2.go` `m`; `proc.go` `mstart`,
//! `stopm`, `startm`).
//!
//! [`MShared`] is what other threads use to hand this M a P and wake it. [`MLocal`] is the M's
//! own state; it lives on the M thread's stack for the thread's whole life, and the thread's TLS
//! points at it ([`tls::current_m`]). Only code on that thread touches it: the scheduler loop
//! (g0) or the goroutine the M is running, never both at once (the other is suspended).
#![allow(unsafe_code)] // MLocal is reached through a TLS pointer; see with_m.

use super::g::GRef;
use super::p::P;
use super::preempt::{Handshake, Life};
use super::sched::Sched;
use super::tls;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;

/// The part of an M other threads use.
pub(crate) struct MShared {
    pub(crate) id: usize,
    /// A P handed over by `startm` (and whether to start spinning), waiting to be picked up.
    /// Under its own lock: written by the waker, taken by this M.
    next: Mutex<Option<(Box<P>, bool)>>,
    /// The M's thread, to unpark it; set when the thread starts.
    thread: OnceLock<Thread>,
    /// Its P while the M is in a blocking section, for sysmon to retake (`sysmon.rs`).
    pub(crate) syscall: Mutex<super::sysmon::SyscallSlot>,
    /// Orders sysmon's taking of a hog's P against the M (`preempt.rs`); the M also holds it
    /// to withdraw `hs` and `p_slot` when it exits.
    pub(crate) retake_mu: Mutex<()>,
    /// The M's handshake words and P slot, in its MLocal; null before the M runs and after.
    /// Written under `retake_mu`.
    hs: AtomicPtr<Handshake>,
    p_slot: AtomicPtr<Option<Box<P>>>,
    /// The M is blocked in the network poll: `unpark` must break it with the poller's waker.
    in_netpoll: AtomicBool,
    netpoll_waker: OnceLock<Arc<mio::Waker>>,
}

impl MShared {
    pub(crate) fn new(id: usize) -> Arc<MShared> {
        Arc::new(MShared {
            id,
            next: Mutex::new(None),
            thread: OnceLock::new(),
            syscall: Mutex::new(Default::default()),
            retake_mu: Mutex::new(()),
            hs: AtomicPtr::new(std::ptr::null_mut()),
            p_slot: AtomicPtr::new(std::ptr::null_mut()),
            in_netpoll: AtomicBool::new(false),
            netpoll_waker: OnceLock::new(),
        })
    }

    /// The M is about to block in the network poll (`Sched::netpoll_block`).
    pub(crate) fn enter_netpoll(&self, waker: &Arc<mio::Waker>) {
        let _ = self.netpoll_waker.set(waker.clone());
        self.in_netpoll.store(true, Ordering::SeqCst);
    }

    pub(crate) fn leave_netpoll(&self) {
        self.in_netpoll.store(false, Ordering::SeqCst);
    }

    /// Whether a P handed over by `hand_p` waits to be picked up.
    pub(crate) fn next_pending(&self) -> bool {
        self.next
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The M's handshake record and P slot, for sysmon, which must hold `retake_mu` while it
    /// uses them (`preempt.rs`). Null when the M is not running.
    pub(crate) fn published(&self) -> (*const Handshake, *mut Option<Box<P>>) {
        (
            self.hs.load(Ordering::Acquire),
            self.p_slot.load(Ordering::Acquire),
        )
    }

    /// Whether the M is inside a blocking section.
    pub(crate) fn in_section(&self) -> bool {
        self.syscall
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active
    }

    /// The M's tick count and whether it is in the runtime (`preempt.rs`); in the runtime
    /// when it is not running.
    pub(crate) fn life(&self) -> Life {
        let _held = self.retake_mu.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a non-null `hs` points into the M's MLocal, alive until the M withdraws it
        // under `retake_mu`, which we hold.
        match unsafe { self.hs.load(Ordering::Acquire).as_ref() } {
            Some(hs) => Life {
                ticks: hs.ticks.load(Ordering::Relaxed),
                in_rt: hs.in_rt.load(Ordering::Relaxed),
            },
            None => Life {
                ticks: 0,
                in_rt: true,
            },
        }
    }

    pub(crate) fn set_thread(&self, t: Thread) {
        let _ = self.thread.set(t);
    }

    /// Hands `p` to this M and wakes it. Go: the `notewakeup` half of `startm`.
    pub(crate) fn hand_p(&self, p: Box<P>, spinning: bool) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if next.is_some() {
            super::fatal("MShared::hand_p", "the M already has a P waiting");
        }
        *next = Some((p, spinning));
        drop(next);
        self.unpark();
    }

    /// Takes a P handed over by `hand_p`, if any.
    pub(crate) fn take_p(&self) -> Option<(Box<P>, bool)> {
        self.next.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Ends this M's blocking section: takes the P left in its syscall slot (`sysmon.rs`), if
    /// sysmon has not. Called when the section's goroutine leaves it, and when it parked
    /// inside it (the M is then no longer in a section, wherever the goroutine resumes).
    pub(crate) fn take_syscall_p(&self) -> Option<Box<P>> {
        let mut slot = self.syscall.lock().unwrap_or_else(|e| e.into_inner());
        slot.active = false;
        slot.p.take()
    }

    /// Wakes the M: from a park, or from the network poll (Go: `notewakeup`, `netpollBreak`).
    pub(crate) fn unpark(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
        // SeqCst: pairs with `enter_netpoll` and the M's look at its state after it.
        if self.in_netpoll.load(Ordering::SeqCst) {
            if let Some(w) = self.netpoll_waker.get() {
                let _ = w.wake();
            }
        }
    }
}

/// An M's own state. Fields are touched only by code on the M's thread (see module docs).
///
/// Laid out by hand: what every yield and runtime entry touches (the P, `curg`, `handoff`,
/// the handshake) shares the first cache line, and the struct starts one. Left to the
/// compiler, the handshake could fall on a second line, one more line per yield.
#[repr(C, align(64))]
pub(crate) struct MLocal {
    /// The P this M holds. Borrowed only inside `with_p`, never across a switch.
    p: UnsafeCell<Option<Box<P>>>,
    /// The G this M is running, if any (Go: `m.curg`).
    pub(crate) curg: Cell<Option<GRef>>,
    /// A G that has just transferred directly to `curg` (the yield fast path) and must be
    /// queued by the G that now runs, once its context is saved: see `sched::resumed`.
    /// `gosched`'s runtime entry lasts until then (`resumed` leaves it).
    pub(crate) handoff: Cell<Option<GRef>>,
    /// A G that has just parked by switching directly to `curg` (the park fast path), with
    /// its unlock: run by the G that now runs, once the parked one's context is saved (see
    /// `sched::resumed`).
    pub(crate) park_handoff: Cell<Option<(GRef, super::g::ParkFn)>>,
    /// What this M shares with sysmon so that a hog's P can be taken (`preempt.rs`).
    hs: Handshake,
    pub(crate) sched: Arc<Sched>,
    pub(crate) shared: Arc<MShared>,
    /// The G locked to this M by `lock_os_thread` (Go: `m.lockedg`).
    pub(crate) locked_g: Cell<Option<GRef>>,
    /// xorshift state for choosing steal victims.
    rng: Cell<u64>,
    /// Whether this M is spinning: out of work and looking for some (Go: `m.spinning`).
    pub(crate) spinning: Cell<bool>,
    /// What the M is running on its own stack on a goroutine's behalf or for the runtime
    /// (user code, or a spawn: `callback.rs`): goexec blocking calls are fatal meanwhile.
    pub(crate) system: Cell<Option<&'static str>>,
}

impl MLocal {
    pub(crate) fn new(shared: Arc<MShared>, sched: Arc<Sched>, p: Option<Box<P>>) -> MLocal {
        let seed = 0x9E37_79B9_7F4A_7C15u64 ^ ((shared.id as u64 + 1) << 17);
        MLocal {
            shared,
            sched,
            p: UnsafeCell::new(p),
            curg: Cell::new(None),
            spinning: Cell::new(false),
            locked_g: Cell::new(None),
            handoff: Cell::new(None),
            park_handoff: Cell::new(None),
            rng: Cell::new(seed),
            hs: Handshake::new(),
            system: Cell::new(None),
        }
    }

    /// Enters the runtime from goroutine code (`preempt.rs`): from here until `leave` the P
    /// slot is this M's to use (or empty: sysmon took the P). True if it changed anything;
    /// g0, and code already inside, are in the runtime.
    #[inline(always)]
    pub(crate) fn enter(&self) -> bool {
        if cfg!(goexec_no_preempt) {
            return false;
        }
        if self.hs.in_rt.load(Ordering::Relaxed) {
            return false;
        }
        self.enter_fresh();
        true
    }

    /// `enter` without the nesting check: for code known not to be inside an entry (`gosched`,
    /// g0 getting control back). Entering twice is harmless; only `leave` must pair.
    #[inline(always)]
    pub(crate) fn enter_fresh(&self) {
        if cfg!(goexec_no_preempt) {
            return;
        }
        self.hs.in_rt.store(true, Ordering::Relaxed);
        // The M's half of the asymmetric barrier: the store above stays before the load below
        // in program order; sysmon's membarrier does the rest.
        compiler_fence(Ordering::SeqCst);
        if self.hs.retake_req.load(Ordering::Relaxed) != 0 {
            self.retaken();
        }
    }

    /// sysmon has asked for our P (`preempt.rs`). Once we hold `retake_mu` it has either
    /// taken it (the slot is empty) or left it to us: then, if the request is for the
    /// goroutine code running now (same tick count, and not g0), we hand the P on ourselves.
    /// We are at an outermost entry: nothing on this M is using the P.
    #[cold]
    #[inline(never)]
    fn retaken(&self) {
        let held = self
            .shared
            .retake_mu
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let req = self.hs.retake_req.swap(0, Ordering::Relaxed);
        let ticks = self.hs.ticks.load(Ordering::Relaxed);
        let current = req == super::preempt::req_for(ticks) && self.curg.get().is_some();
        let p = if current {
            // SAFETY: as in with_p: this M's own slot, and sysmon is locked out by
            // `retake_mu`.
            unsafe { (*self.p.get()).take() }
        } else {
            None
        };
        drop(held);
        if let Some(p) = p {
            self.sched.hog_retakes.fetch_add(1, Ordering::Relaxed);
            super::idle::handoffp(&self.sched, p);
        }
    }

    /// Undoes an `enter` that changed something.
    #[inline(always)]
    pub(crate) fn leave(&self, entered: bool) {
        if entered && !cfg!(goexec_no_preempt) {
            // Release: our uses of the P happen before sysmon can see us out.
            self.hs.in_rt.store(false, Ordering::Release);
        }
    }

    /// Leaves the runtime into a goroutine that starts or resumes: a scheduling point, which
    /// sysmon counts as a sign of life. From here the goroutine's code may run for long, and
    /// sysmon may take the P meanwhile.
    #[inline(always)]
    pub(crate) fn leave_scheduled(&self) {
        if cfg!(goexec_no_preempt) {
            return;
        }
        let t = self.hs.ticks.load(Ordering::Relaxed);
        self.hs.ticks.store(t.wrapping_add(1), Ordering::Relaxed);
        self.hs.in_rt.store(false, Ordering::Release);
    }

    /// Runs `f` on this M's P, if it holds one. `f` must not switch goroutines or re-enter
    /// `with_p` (nothing it calls does: queue operations, the global-queue lock, wakep).
    #[inline(always)]
    pub(crate) fn with_p<R>(&self, f: impl FnOnce(&mut P) -> R) -> Option<R> {
        let entered = self.enter();
        // SAFETY: only code on this M's thread reaches self, one piece at a time (g0 or the
        // running G), and f neither switches nor re-enters, so this &mut is unique; `enter`
        // settled the slot against sysmon (preempt.rs).
        let r = unsafe { (*self.p.get()).as_deref_mut().map(f) };
        self.leave(entered);
        r
    }

    /// `with_p` for code inside a runtime entry (after `enter`, or on g0), which need not
    /// check again.
    #[inline(always)]
    pub(crate) fn with_p_in<R>(&self, f: impl FnOnce(&mut P) -> R) -> Option<R> {
        debug_assert!(
            cfg!(goexec_no_preempt) || self.hs.in_rt.load(Ordering::Relaxed),
            "with_p_in outside a runtime entry"
        );
        // SAFETY: as in with_p; the caller's entry settled the slot against sysmon.
        unsafe { (*self.p.get()).as_deref_mut().map(f) }
    }

    /// `has_p` inside a runtime entry.
    #[inline(always)]
    pub(crate) fn has_p_in(&self) -> bool {
        self.with_p_in(|_| ()).is_some()
    }

    pub(crate) fn has_p(&self) -> bool {
        let entered = self.enter();
        // SAFETY: as in with_p; a read of the Option's discriminant.
        let r = unsafe { (*self.p.get()).is_some() };
        self.leave(entered);
        r
    }

    /// Takes the P away from this M (to put it idle or hand it on).
    pub(crate) fn take_p(&self) -> Option<Box<P>> {
        let entered = self.enter();
        // SAFETY: as in with_p.
        let r = unsafe { (*self.p.get()).take() };
        self.leave(entered);
        r
    }

    /// Gives this M a P; it must have none.
    pub(crate) fn set_p(&self, p: Box<P>) {
        let entered = self.enter();
        // SAFETY: as in with_p.
        let slot = unsafe { &mut *self.p.get() };
        if slot.is_some() {
            super::fatal("MLocal::set_p", "the M already holds a P");
        }
        *slot = Some(p);
        self.leave(entered);
    }

    /// A pseudo-random number, for victim order.
    pub(crate) fn fastrand(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// Makes this M the calling thread's current M for the duration of `f`, and shows sysmon
    /// its handshake and P slot meanwhile (`preempt.rs`).
    pub(crate) fn run_as_m<R>(&self, f: impl FnOnce() -> R) -> R {
        let prev = tls::set_current_m((self as *const MLocal).cast());
        self.publish(&self.hs, self.p.get());
        let curg = (&self.curg as *const Cell<Option<GRef>>).cast();
        super::debug::add_m(curg, self.shared.id);
        let r = f();
        super::debug::remove_m(curg);
        self.publish(std::ptr::null(), std::ptr::null_mut());
        tls::set_current_m(prev);
        r
    }

    fn publish(&self, hs: *const Handshake, slot: *mut Option<Box<P>>) {
        let _held = self
            .shared
            .retake_mu
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.shared.hs.store(hs.cast_mut(), Ordering::Release);
        self.shared.p_slot.store(slot, Ordering::Release);
    }
}

/// Runs `f` on the calling thread's current M, if it is an M. `f` must not switch goroutines:
/// the reference is to this thread's M, and a goroutine may be on another thread afterwards.
pub(crate) fn with_m<R>(f: impl FnOnce(&MLocal) -> R) -> Option<R> {
    let m = tls::current_m().cast::<MLocal>();
    // SAFETY: a non-null current M points at the MLocal on this thread's stack, alive while
    // `enter` runs (the whole life of the M's scheduler loop), touched only from this thread.
    unsafe { m.as_ref() }.map(f)
}

/// The goroutine running on the calling thread, if any (Go: `getg().m.curg`).
pub(crate) fn current_g() -> Option<GRef> {
    with_m(|m| m.curg.get()).flatten()
}

/// Starts an M thread named `name` running `f`, with every signal blocked while it starts (Go:
/// `newosproc`): a signal must not land on the new thread before it has an alternate signal
/// stack. The thread restores the creator's mask once set up (`mstart` installs the stack).
pub(crate) fn spawn_thread(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    crate::stack::room_for_a_thread()?;
    // SAFETY: sigset_t is plain data; all-zero is a valid (empty) set.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigfillset/pthread_sigmask on local, properly sized sigset_t values.
    unsafe { libc::sigfillset(&mut all) };
    // SAFETY: as above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) };
    let known = super::deadlock::KnownThread::new();
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let _known = known;
        if let Err(e) = crate::stack::overflow::init_thread() {
            super::fatal(
                "mstart",
                &format!("cannot set up stack-overflow detection: {e}"),
            );
        }
        // SAFETY: restoring the creator's mask, a valid sigset_t copied into this closure.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        // Timed parks (the timer sleeper) wake within 1 µs of their deadline instead of the
        // default 50 µs slack: microsecond timers (timers.rs). Failure only costs precision.
        // SAFETY: PR_SET_TIMERSLACK takes one integer argument and affects this thread only.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0) };
        f();
    });
    // SAFETY: as above, on the creating thread.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    spawned
}
