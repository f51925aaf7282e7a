//! Taking the P away from a goroutine that hogs its M, without signals.
//!
//! Go preempts a goroutine that runs for 10 ms without a scheduling point by signalling its
//! thread. goexec does not interrupt the goroutine at all: sysmon takes its M's P, as if the
//! goroutine were in a blocking section, and hands the P (with the goroutines queued on it) to
//! another M. The hog keeps its OS thread, which the kernel time-slices like any other. When
//! the hog next enters the runtime it finds its P gone and goes on without one (runtime calls
//! fall back to the global queues) until it switches out, when its M waits for a P.
//!
//! # The protocol
//!
//! The P lives in the M's `MLocal` and is used without locks, so the question is how sysmon
//! can take it while being sure the M is not using it, without making every runtime entry
//! pay for a locked instruction (a yield is ~35 ns; a CAS on each would cost more than the
//! 5% this may cost). Each M publishes `in_rt` ("I am in runtime code that may touch my P"):
//!
//! - **Entering the runtime** (the M's own code, `MLocal::enter`): store `in_rt = true`, a
//!   *light* barrier, then load `retake_req`. If it is set, take `retake_mu` before touching
//!   the P: under it, the P slot is settled (sysmon took the P, or backed off).
//! - **Leaving** (back to a goroutine's own code): store `in_rt = false` (Release).
//! - **sysmon** (`try_retake`), holding `retake_mu`: store `retake_req = true`, a *heavy*
//!   barrier, load `in_rt`. If the M is in the runtime, clear the request and back off;
//!   otherwise take the P out of the M's slot, leave the request set for the M to see, and
//!   hand the P on.
//!
//! This is Dekker's handshake with asymmetric barriers: the heavy one is
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every running thread of the
//! process execute a full barrier, so the light one need only stop the compiler from
//! reordering (no instruction at all). Either the M's `in_rt = true` comes before the barrier
//! the heavy one imposes on it, and sysmon sees it and backs off, or it comes after, and then
//! so does the M's load of `retake_req`, which sees the request. Both cannot miss. Where
//! `membarrier` is unavailable (old kernels, some emulators) both sides use a full fence,
//! which is correct and costs the M a fence per entry.
#![allow(unsafe_code)] // the membarrier syscall, and taking the P out of another M's slot

use super::m::MShared;
use super::p::P;
use std::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering};

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// 0: not probed yet; 1: membarrier works; 2: it does not (use fences).
static ASYM: AtomicU8 = AtomicU8::new(0);

/// Registers the process for expedited membarrier, once; before any M runs.
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

/// The M's side of the handshake: free where membarrier works.
#[inline(always)]
pub(crate) fn light_barrier() {
    if ASYM.load(Ordering::Relaxed) == 1 {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// sysmon's side: a full barrier on every running thread of the process.
fn heavy_barrier() {
    if ASYM.load(Ordering::Relaxed) == 1 {
        // SAFETY: as in init; the process is registered.
        let rc =
            unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
        if rc == 0 {
            return;
        }
    }
    fence(Ordering::SeqCst);
}

/// What `try_retake` found.
pub(crate) enum Retake {
    /// The P, taken.
    Took(Box<P>),
    /// The M is in the runtime at the moment: try again later.
    Busy,
    /// The M holds no P (taken before, or it is gone).
    NoP,
}

/// Takes the P of `m`, an M running goroutine code (a hog), if it is not in the runtime now.
pub(crate) fn try_retake(m: &MShared) -> Retake {
    if cfg!(goexec_no_preempt) {
        return Retake::NoP;
    }
    let _held = m.retake_mu.lock().unwrap_or_else(|e| e.into_inner());
    m.retake_req.store(true, Ordering::Relaxed);
    heavy_barrier();
    let slot = m.p_slot.load(Ordering::Acquire);
    if slot.is_null() {
        m.retake_req.store(false, Ordering::Relaxed);
        return Retake::NoP;
    }
    if m.in_rt.load(Ordering::Relaxed) {
        m.retake_req.store(false, Ordering::Relaxed);
        return Retake::Busy;
    }
    // SAFETY: the M is running goroutine code (in_rt is false after the barrier), so it is not
    // using its slot, and it will not before it takes `retake_mu`, which we hold (see the
    // module docs). The slot lives in the M's MLocal for the M's whole life; the M clears
    // `p_slot` under `retake_mu` before it goes away.
    match unsafe { (*slot).take() } {
        Some(p) => Retake::Took(p),
        None => {
            m.retake_req.store(false, Ordering::Relaxed);
            Retake::NoP
        }
    }
}
