//! User code the runtime calls from its own stacks: a `Waker::wake` run by the timers or the
//! network poller, a timer's callback (and the drops it causes), a `tracing` subscriber
//! seeing a scheduler event.
//!
//! Such code runs on g0, or on g0's stack below a goroutine (`GRef::systemstack`), or on
//! sysmon's thread. It must neither unwind nor block there: an unwind would leave the M's
//! published pointers (`MLocal::run_as_m`) aimed at a dead frame, and a goexec blocking call
//! would park the M's thread while it holds its P, or switch away from the scheduler's own
//! stack. Go simply forbids this in runtime code (`systemstack` functions may not block or
//! grow the stack); goexec cannot forbid it in user code, so it catches it: [`user_code`]
//! turns a panic into a fatal error naming the callback, and runs it as g0 code: with no
//! current goroutine (`MLocal::curg` cleared meanwhile, also inside a spawn's `systemstack`),
//! so every goexec blocking call takes its plain-thread path, where [`check_may_block`] makes
//! it a fatal error on an M. A yield there yields the thread, which is harmless. The
//! goroutine park and yield fast paths need no check of their own.

use super::m::with_m;
use super::tls;
use std::panic::{self, AssertUnwindSafe};

/// Runs `f`, user code called by the runtime as `what` (say "a Waker::wake called by the
/// timers"), with blocking calls fatal meanwhile; a panic in it is fatal too.
pub(crate) fn user_code<R>(what: &'static str, f: impl FnOnce() -> R) -> R {
    // On an M the mark goes in the M, with `curg` cleared so that the M counts as g0;
    // elsewhere (sysmon, the fallback poller, a plain thread) in the thread's TLS.
    let prev_m = with_m(|m| (m.system.replace(Some(what)), m.curg.replace(None)));
    let prev_tls = match prev_m {
        Some(_) => None,
        None => Some(tls::set_system_code(Some(what))),
    };
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    match prev_m {
        Some((system, curg)) => {
            with_m(|m| {
                m.system.set(system);
                m.curg.set(curg);
            });
        }
        None => {
            tls::set_system_code(prev_tls.flatten());
        }
    }
    match r {
        Ok(v) => v,
        Err(_) => super::fatal(
            what,
            "panicked on the scheduler's own stack (the message is above); the runtime \
             cannot go on",
        ),
    }
}

/// Stops with a fatal error: a blocking call inside `what`.
#[cold]
fn blocked_in(what: &str) -> ! {
    super::fatal(
        "blocking call",
        &format!(
            "a goexec blocking call (a channel operation, lock, join, sleep or I/O wait) was \
             made inside {what}, which runs on the scheduler's own stack and must not block; \
             hand the work to a goroutine instead (a try_send on a buffered channel does not \
             block)"
        ),
    )
}

/// For the thread side of every blocking call (a caller that is not a goroutine, about to
/// park its thread): fatal on an M's g0, or inside [`user_code`].
pub(crate) fn check_may_block() {
    let on_m = with_m(|m| match (m.curg.get(), m.system.get()) {
        (None, what) => Some(what.unwrap_or("the scheduler loop (g0)")),
        (Some(_), _) => None,
    });
    let what = match on_m {
        Some(what) => what,
        None => tls::system_code(),
    };
    if let Some(what) = what {
        blocked_in(what);
    }
}
