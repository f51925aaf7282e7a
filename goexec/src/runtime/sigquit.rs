//! SIGQUIT prints every goroutine and exits with status 2, as Go does, where the runtime was
//! built with `sigquit_traceback(true)` or `GOEXEC_TRACEBACK=all` (or `system`) is set.
//!
//! The handler (signal-hook's, installed once, the first time a runtime listens) only sets a
//! flag: nothing else is async-signal-safe. The runtime's sysmon looks at the flag on every
//! tick (at most 10 ms apart), walks the goroutines as `stack(true)` does, prints them and
//! exits. When no runtime listens, the handler gives SIGQUIT its default effect (the process
//! ends, with a core dump where those are on), unless the program has asked for SIGQUIT with
//! `goexec::signal::notify`, whose channel then gets it.

#![allow(unsafe_code)] // registering a signal handler

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// Runtimes listening now.
static LISTENERS: AtomicUsize = AtomicUsize::new(0);
/// A SIGQUIT came while someone listened, and no sysmon has taken it yet.
static PENDING: AtomicBool = AtomicBool::new(false);

/// A running runtime's interest in SIGQUIT, for as long as the value lives.
pub(crate) struct Listening(());

/// Starts listening (installing the handler the first time).
pub(crate) fn listen() -> Listening {
    static INSTALL: Once = Once::new();
    LISTENERS.fetch_add(1, Ordering::SeqCst);
    INSTALL.call_once(|| {
        let action = || {
            if LISTENERS.load(Ordering::SeqCst) > 0 {
                PENDING.store(true, Ordering::SeqCst);
            } else if !crate::signal::SIGQUIT_NOTIFIED.load(Ordering::SeqCst) {
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
        LISTENERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Takes a pending SIGQUIT, for the sysmon of a runtime that listens.
pub(crate) fn take_pending() -> bool {
    PENDING.load(Ordering::Relaxed) && PENDING.swap(false, Ordering::SeqCst)
}
