//! Taking the P away from a goroutine that hogs its M, without signals.
//!
//! Go preempts a goroutine that runs for 10 ms without a scheduling point by signalling its
//! thread. goexec does not interrupt the goroutine at all: sysmon takes its M's P, as if the
//! goroutine were in a blocking section, and hands the P (with the goroutines queued on it) to
//! another M. The hog keeps its OS thread, which the kernel time-slices like any other. When
//! the hog next enters the runtime it finds its P gone and goes on without one (runtime calls
//! fall back to the global queues, as in a blocking section) until it switches out; then its
//! M waits for a P, as `exitsyscall` does.
//!
//! # The protocol
//!
//! The P sits in the M's `MLocal` and is used without locks, so sysmon must take it only while
//! the M is sure not to be using it, and the M must notice before its next use. Go's
//! `_Psyscall` CAS would put a locked instruction on every runtime entry (a yield is ~35 ns;
//! the budget for this check is 5% of that), so each M instead publishes `Handshake::in_rt`:
//! "this M is in runtime code that may touch its P" (g0, or a goroutine inside
//! `MLocal::enter`). Beside it, `ticks` counts scheduling points, sysmon's sign of life.
//!
//! - **Entering the runtime** (`MLocal::enter`, the M's own thread): store `in_rt = true`, a
//!   compiler-only barrier, then load `retake_req`. If it is set, take `retake_mu` before
//!   touching the P (`MLocal::retaken`): under it, the P slot is settled.
//! - **Leaving** (back to a goroutine's own code): store `in_rt = false` (Release), and count
//!   a tick when it is a scheduling point.
//! - **sysmon** (`try_retake`), holding `retake_mu`: store `retake_req` (the tick count it saw,
//!   plus one), a *heavy* barrier, load `in_rt`. If it is clear, sysmon takes the P out of the
//!   M's slot and hands it on. Either way it leaves the request set for the M to see.
//!
//! When the M was in the runtime, sysmon does not wait for it: the M answers the request
//! itself at its next entry from goroutine code, by handing its own P on (the entry is the
//! outermost one, so nothing on the M is using the P). A goroutine that keeps calling into the
//! runtime without reaching a scheduling point (spawning in a loop, say) would otherwise be in
//! the runtime whenever sysmon looks, a barrier taking long enough on a VM for the M to come
//! back in meanwhile. A request made for an earlier run of goroutine code (the tick count has
//! moved on), or found by g0 (the goroutine has reached a scheduling point), is dropped.
//!
//! This is Dekker's handshake with asymmetric barriers. The heavy one is
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: every thread of the process that is running
//! executes a full memory barrier before it returns (and one that is not running passes
//! through the kernel's barrier when it is scheduled). The M's store of `IN_RT` and its load
//! of `retake_req` are in program order (the compiler barrier keeps them so), and the barrier
//! sysmon imposes falls somewhere in that order: either before the store, and then the load
//! after it sees the request, or after it, and then sysmon sees `IN_RT`. Both cannot miss, so
//! the M's side costs two plain stores, a load and a branch per entry (and a nested entry, a
//! load and a branch).
//!
//! Where `membarrier` is missing (Linux before 4.14, some sandboxes) nothing is retaken: a
//! full fence per entry would cost more than the budget, and a hog then keeps its P, as it did
//! before Go 1.14. `init` finds out once per process.
//!
//! # Finding hogs
//!
//! sysmon remembers each M's `ticks`. An M seen with the same count, out of the runtime, for
//! `HOG_NS` has run one goroutine that long without a scheduling point: its P is taken. An M
//! found without a P (in a blocking section, or retaken before) is left alone until its count
//! moves.
#![allow(unsafe_code)] // the membarrier syscall, and taking the P out of another M's slot

use super::m::MShared;
use super::p::P;
use super::sched::Sched;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

/// How long a goroutine may run without a scheduling point before sysmon takes its M's P
/// (Go's `forcePreemptNS`).
pub(crate) const HOG_NS: u64 = 10_000_000;

/// The words an M shares with sysmon for the handshake. It lives in the M's `MLocal` (on the
/// M thread's stack, next to the P slot the M uses on every entry); `MShared::hs` points at it
/// while the M runs.
#[repr(C)]
pub(crate) struct Handshake {
    /// The M runs runtime code that may use its P. Written only by the M.
    pub(crate) in_rt: AtomicBool,
    /// Set by sysmon when it wants this M's P: the tick count it saw, plus one (0: none).
    pub(crate) retake_req: AtomicU32,
    /// Scheduling points so far (wrapping). Written only by the M.
    pub(crate) ticks: AtomicU32,
}

impl Handshake {
    pub(crate) fn new() -> Handshake {
        Handshake {
            // An M starts on g0: in the runtime.
            in_rt: AtomicBool::new(true),
            retake_req: AtomicU32::new(0),
            ticks: AtomicU32::new(0),
        }
    }
}

/// What sysmon sees of an M: its tick count, and whether it is in the runtime.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Life {
    pub(crate) ticks: u32,
    pub(crate) in_rt: bool,
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// 0: not probed yet; 1: membarrier works; 2: it does not (hogs are not retaken).
static ASYM: AtomicU8 = AtomicU8::new(0);

/// Registers the process for expedited membarrier, once, before any M runs.
pub(crate) fn init() {
    if ASYM.load(Ordering::Acquire) != 0 {
        return;
    }
    // SAFETY: the membarrier syscall with a command and two zero arguments; it only affects
    // memory ordering.
    let ok = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
            0,
        )
    } == 0;
    ASYM.store(if ok { 1 } else { 2 }, Ordering::Release);
}

/// Whether sysmon takes hogs' Ps in this process (membarrier works, and this build has the
/// check: `--cfg goexec_no_preempt` removes it, for measuring its cost).
pub(crate) fn enabled() -> bool {
    !cfg!(goexec_no_preempt) && ASYM.load(Ordering::Acquire) == 1
}

/// sysmon's side: a full barrier on every running thread of the process.
fn heavy_barrier() -> bool {
    // SAFETY: as in init; the process is registered.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 }
}

/// What `try_retake` found.
enum Retake {
    /// The P, taken.
    Took(Box<P>),
    /// The M is in the runtime at the moment: it hands its P on itself at its next entry.
    Asked,
    /// The M holds no P (taken before, or in a blocking section), or it is gone.
    NoP,
}

/// Takes the P of `m`, an M that was running goroutine code for `ticks` (a hog), unless it is
/// in the runtime now; then it is asked to hand the P on itself.
fn try_retake(m: &MShared, ticks: u32) -> Retake {
    let _held = m.retake_mu.lock().unwrap_or_else(|e| e.into_inner());
    let (hs, slot) = m.published();
    // SAFETY: non-null pointers in `hs`/`p_slot` point into the M's MLocal, which lives until
    // the M clears them under `retake_mu` (MLocal::run_as_m), which we hold.
    let Some(hs) = (unsafe { hs.as_ref() }) else {
        return Retake::NoP;
    };
    hs.retake_req.store(req_for(ticks), Ordering::Relaxed);
    if !heavy_barrier() {
        hs.retake_req.store(0, Ordering::Relaxed);
        return Retake::NoP;
    }
    if hs.in_rt.load(Ordering::Acquire) {
        return Retake::Asked;
    }
    // SAFETY: the M is running goroutine code (in_rt clear after the barrier), so it is not
    // using its slot, and it will not before it takes `retake_mu`, which we hold (module
    // docs). The slot lives as long as `hs` (same MLocal).
    match unsafe { (*slot).take() } {
        Some(p) => Retake::Took(p),
        None => {
            hs.retake_req.store(0, Ordering::Relaxed);
            Retake::NoP
        }
    }
}

/// The `retake_req` value for a request about goroutine code at tick count `ticks`.
pub(crate) fn req_for(ticks: u32) -> u32 {
    ticks.wrapping_add(1).max(1)
}

/// What sysmon remembers of an M: its tick count, since when, and whether it is left alone
/// until the count moves.
pub(crate) struct Seen {
    ticks: u32,
    since: u64,
    idle: bool,
}

/// Takes the P of every M whose goroutine has run `HOG_NS` without a scheduling point, and
/// hands it on. `seen` is sysmon's memory of the Ms. Returns when sysmon should look again for
/// hogs (`u64::MAX`: when it likes), so that a goroutine running now is looked at as soon as
/// it could have run `HOG_NS`, and no sooner.
pub(crate) fn retake_hogs(sched: &Arc<Sched>, now: u64, seen: &mut HashMap<usize, Seen>) -> u64 {
    if !enabled() {
        return u64::MAX;
    }
    let mut next = u64::MAX;
    let hog_ns = sched.hog_ns.load(Ordering::Relaxed);
    for m in sched.all_ms() {
        let life = m.life();
        let e = seen.entry(m.id).or_insert(Seen {
            ticks: life.ticks,
            since: now,
            idle: false,
        });
        if e.ticks != life.ticks {
            *e = Seen {
                ticks: life.ticks,
                since: now,
                idle: false,
            };
        }
        // In the runtime (or parked there), or known to hold no P: nothing to take.
        if life.in_rt || e.idle {
            continue;
        }
        let due = e.since.saturating_add(hog_ns);
        if now < due {
            next = next.min(due);
            continue;
        }
        match try_retake(&m, life.ticks) {
            Retake::Took(p) => {
                // Its goroutine goes on without a P; the queued ones run elsewhere.
                sched.hog_retakes.fetch_add(1, Ordering::Relaxed);
                super::idle::handoffp(sched, p);
                e.idle = true;
            }
            // In the runtime this instant: it hands its P on at its next entry.
            Retake::Asked => {
                sched.hog_asked.fetch_add(1, Ordering::Relaxed);
                next = now;
            }
            Retake::NoP => e.idle = true,
        }
    }
    next
}
