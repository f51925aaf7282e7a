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
use super::sched::Sched;
use super::tls;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
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
    /// True while the M runs runtime code that may use its P (g0, or a goroutine inside
    /// `with_p`); false while a goroutine runs its own code. Written by the M, read by sysmon:
    /// the handshake in `preempt.rs`.
    pub(crate) in_rt: AtomicBool,
    /// Set by sysmon when it takes (or is deciding whether to take) this M's P.
    pub(crate) retake_req: AtomicBool,
    /// Orders sysmon's retake against the M's slow path (`preempt.rs`).
    pub(crate) retake_mu: Mutex<()>,
    /// The M's P slot (in its MLocal), for sysmon to take the P from; null when the M is gone.
    /// Written under `retake_mu`.
    pub(crate) p_slot: AtomicPtr<Option<Box<P>>>,
    /// Bumped each time the M switches to a goroutine: sysmon's sign of life.
    pub(crate) ticks: AtomicU32,
    /// True while the M runs a goroutine (g0 has resumed one and not got control back).
    pub(crate) running: AtomicBool,
    /// Set by sysmon when the goroutine has run 10 ms without a scheduling point: it yields
    /// at its next runtime call that can (a spawn), before sysmon takes the P by force.
    pub(crate) preempt: AtomicBool,
}

impl MShared {
    pub(crate) fn new(id: usize) -> Arc<MShared> {
        Arc::new(MShared {
            id,
            next: Mutex::new(None),
            thread: OnceLock::new(),
            syscall: Mutex::new(Default::default()),
            in_rt: AtomicBool::new(true),
            retake_req: AtomicBool::new(false),
            retake_mu: Mutex::new(()),
            p_slot: AtomicPtr::new(std::ptr::null_mut()),
            ticks: AtomicU32::new(0),
            running: AtomicBool::new(false),
            preempt: AtomicBool::new(false),
        })
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

    pub(crate) fn unpark(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

/// An M's own state. Fields are touched only by code on the M's thread (see module docs).
pub(crate) struct MLocal {
    pub(crate) shared: Arc<MShared>,
    pub(crate) sched: Arc<Sched>,
    /// The P this M holds. Borrowed only inside `with_p`, never across a switch.
    p: UnsafeCell<Option<Box<P>>>,
    /// The G this M is running, if any (Go: `m.curg`).
    pub(crate) curg: Cell<Option<GRef>>,
    /// Whether this M is spinning: out of work and looking for some (Go: `m.spinning`).
    pub(crate) spinning: Cell<bool>,
    /// The G locked to this M by `lock_os_thread` (Go: `m.lockedg`).
    pub(crate) locked_g: Cell<Option<GRef>>,
    /// A G that has just transferred directly to `curg` (the yield fast path) and must be
    /// queued by the G that now runs, once its context is saved: see `sched::resumed`.
    /// With it, whether `gosched` entered the runtime for the handoff (`resumed` leaves it).
    pub(crate) handoff: Cell<Option<(GRef, bool)>>,
    /// xorshift state for choosing steal victims.
    rng: Cell<u64>,
    /// This thread's view of `shared.in_rt` (only this thread writes it).
    in_rt: Cell<bool>,
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
            rng: Cell::new(seed),
            in_rt: Cell::new(true),
        }
    }

    /// Enters the runtime from goroutine code (`preempt.rs`): afterwards the P slot is this
    /// M's to use (or empty: sysmon took the P) until `leave`. True if it changed anything
    /// (g0 is always in the runtime).
    #[inline]
    pub(crate) fn enter(&self) -> bool {
        // The benchmark build without the hog check (BENCHMARKS.md): nothing to do.
        if cfg!(goexec_no_preempt) || self.in_rt.get() {
            return false;
        }
        self.in_rt.set(true);
        self.shared.in_rt.store(true, Ordering::Relaxed);
        super::preempt::light_barrier();
        if self.shared.retake_req.load(Ordering::Relaxed) {
            self.retaken();
        }
        true
    }

    /// sysmon has asked for our P: once we hold `retake_mu` it has either taken it (the slot
    /// is empty) or backed off. Either way the request is answered.
    #[cold]
    fn retaken(&self) {
        let _held = self
            .shared
            .retake_mu
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.shared.retake_req.store(false, Ordering::Relaxed);
    }

    /// Undoes an `enter` that changed something.
    #[inline]
    pub(crate) fn leave(&self, entered: bool) {
        if entered {
            self.in_rt.set(false);
            // Release: our uses of the P happen before sysmon can see us out.
            self.shared.in_rt.store(false, Ordering::Release);
        }
    }

    /// g0 is about to resume a goroutine: its code may run for long, and sysmon may take the
    /// P meanwhile (`preempt.rs`). Nothing touches the P until `back_on_g0`.
    pub(crate) fn resume_g(&self) {
        let t = self.shared.ticks.load(Ordering::Relaxed);
        self.shared
            .ticks
            .store(t.wrapping_add(1), Ordering::Relaxed);
        self.shared.running.store(true, Ordering::Relaxed);
        self.leave(!cfg!(goexec_no_preempt));
    }

    /// g0 has control again (the goroutine switched out): back in the runtime.
    pub(crate) fn back_on_g0(&self) {
        self.shared.running.store(false, Ordering::Relaxed);
        self.enter();
    }

    /// Counts a direct switch between goroutines (the yield fast path) as a sign of life.
    pub(crate) fn tick(&self) {
        let t = self.shared.ticks.load(Ordering::Relaxed);
        self.shared
            .ticks
            .store(t.wrapping_add(1), Ordering::Relaxed);
    }

    /// Runs `f` on this M's P, if it holds one. `f` must not switch goroutines or re-enter
    /// `with_p` (nothing it calls does: queue operations, the global-queue lock, wakep).
    #[inline]
    pub(crate) fn with_p<R>(&self, f: impl FnOnce(&mut P) -> R) -> Option<R> {
        let entered = self.enter();
        // SAFETY: only code on this M's thread reaches self, one piece at a time (g0 or the
        // running G), and f neither switches nor re-enters, so this &mut is unique; `enter`
        // settled the slot against sysmon (preempt.rs).
        let r = unsafe { (*self.p.get()).as_deref_mut().map(f) };
        self.leave(entered);
        r
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

    /// Makes this M the calling thread's current M for the duration of `f`.
    pub(crate) fn run_as_m<R>(&self, f: impl FnOnce() -> R) -> R {
        let prev = tls::set_current_m((self as *const MLocal).cast());
        // sysmon may take the P from the slot from now on (preempt.rs).
        self.shared.p_slot.store(self.p.get(), Ordering::Release);
        let r = f();
        {
            let _held = self
                .shared
                .retake_mu
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.shared
                .p_slot
                .store(std::ptr::null_mut(), Ordering::Release);
        }
        tls::set_current_m(prev);
        r
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
    // SAFETY: sigfillset/pthread_sigmask on local, properly sized sigset_t values.
    let old = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
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
