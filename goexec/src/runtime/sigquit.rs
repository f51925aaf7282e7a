//! SIGQUIT prints every goroutine and exits with status 2, as Go does, where the runtime was
//! built with `sigquit_traceback(true)` or `GOEXEC_TRACEBACK=all` (or `system`) is set.
//!
//! The handler (signal-hook's, installed once, the first time a runtime listens) only sets a
//! flag: nothing else is async-signal-safe. The runtime's sysmon looks at the flag on every
//! tick (at most 10 ms apart), walks the goroutines as `stack(true)` does, prints them and
//! exits. A SIGQUIT that comes after sysmon stopped, while `run` returns, ends the process
//! the same way, without goroutines to show.
//!
//! Where the program takes SIGQUIT itself with `goexec::signal::notify`, its channel gets the
//! signal and nothing is printed (Go: `signal.Notify(c, SIGQUIT)` turns the dump off). When no
//! runtime listens, the handler gives SIGQUIT the effect it had before the first runtime
//! listened: the default one (the process ends, with a core dump where those are on), or none
//! if it was ignored (as a shell ignores it for background jobs) or had a handler of its own
//! (which signal-hook still calls).
#![allow(unsafe_code)] // registering a signal handler

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// Runtimes listening now.
static LISTENERS: AtomicUsize = AtomicUsize::new(0);
/// A SIGQUIT came while someone listened, and no sysmon has taken it yet.
static PENDING: AtomicBool = AtomicBool::new(false);
/// Whether SIGQUIT had its default disposition when the handler was installed: only then does
/// the handler give it the default effect while nobody listens.
static WAS_DEFAULT: AtomicBool = AtomicBool::new(false);

/// A running runtime's interest in SIGQUIT, for as long as the value lives.
pub(crate) struct Listening(());

/// Starts listening (installing the handler the first time).
pub(crate) fn listen() -> Listening {
    static INSTALL: Once = Once::new();
    if LISTENERS.fetch_add(1, Ordering::SeqCst) == 0 {
        // A signal nobody took while no runtime listened is not this run's.
        PENDING.store(false, Ordering::SeqCst);
    }
    INSTALL.call_once(|| {
        WAS_DEFAULT.store(disposition_is_default(), Ordering::SeqCst);
        let action = || {
            if crate::signal::SIGQUIT_NOTIFIED.load(Ordering::SeqCst) {
                // The program takes SIGQUIT itself: its notify channel gets it.
            } else if LISTENERS.load(Ordering::SeqCst) > 0 {
                PENDING.store(true, Ordering::SeqCst);
            } else if WAS_DEFAULT.load(Ordering::SeqCst) {
                let _ = signal_hook::low_level::emulate_default_handler(libc::SIGQUIT);
            }
        };
        // SAFETY: the action is async-signal-safe: atomic loads and stores, and
        // emulate_default_handler, which signal-hook documents as such.
        if let Err(e) = unsafe { signal_hook::low_level::register(libc::SIGQUIT, action) } {
            eprintln!("goexec: cannot catch SIGQUIT for tracebacks: {e}");
        }
    });
    Listening(())
}

impl Drop for Listening {
    fn drop(&mut self) {
        // Dropped once the runtime's sysmon has stopped: a SIGQUIT it did not see is
        // answered here, as it would have been (there are no goroutines left to show).
        if LISTENERS.fetch_sub(1, Ordering::SeqCst) == 1 && take_pending() {
            super::traceback::write_stderr(
                "SIGQUIT: quit\n\n(the runtime had stopped: no goroutines to show)\n",
            );
            std::process::exit(2);
        }
    }
}

/// Whether SIGQUIT has its default disposition now (not ignored, no handler).
fn disposition_is_default() -> bool {
    // SAFETY: sigaction is a plain C struct, valid all zeroes.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a query only (no new action); `old` is a valid out-pointer.
    let ok = unsafe { libc::sigaction(libc::SIGQUIT, std::ptr::null(), &mut old) } == 0;
    ok && old.sa_sigaction == libc::SIG_DFL
}

/// Takes a pending SIGQUIT, for the sysmon of a runtime that listens.
pub(crate) fn take_pending() -> bool {
    PENDING.load(Ordering::Relaxed) && PENDING.swap(false, Ordering::SeqCst)
}
