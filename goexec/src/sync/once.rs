//! [`Once`] (Go: `sync.Once`).

use crate::runtime::g::WaitReason;
use crate::runtime::waitq::WaitQueue;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

struct State {
    running: bool,
    waiters: WaitQueue<(), ()>,
}

/// Runs a function exactly once (Go: `sync.Once`). Callers that arrive while it runs park
/// until it has finished. As in Go, a function that panics counts as done: later calls do
/// not run anything.
///
/// # Examples
///
/// ```
/// use goexec::sync::Once;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static INIT: Once = Once::new();
/// static RUNS: AtomicU32 = AtomicU32::new(0);
/// goexec::run(|| {
///     let hs: Vec<_> = (0..10)
///         .map(|_| goexec::spawn(|| INIT.call_once(|| { RUNS.fetch_add(1, Ordering::SeqCst); })))
///         .collect();
///     hs.into_iter().for_each(|h| h.join().unwrap());
/// });
/// assert_eq!(RUNS.load(Ordering::SeqCst), 1);
/// ```
pub struct Once {
    done: AtomicBool,
    st: std::sync::Mutex<State>,
}

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            st: std::sync::Mutex::new(State {
                running: false,
                waiters: WaitQueue::new(),
            }),
        }
    }

    /// Whether the function has run (or panicked).
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Runs `f` if no call has run a function yet; otherwise waits until that one finished.
    pub fn call_once(&self, f: impl FnOnce()) {
        if self.done.load(Ordering::Acquire) {
            return;
        }
        let mut st = self.st.lock().unwrap_or_else(|e| e.into_inner());
        if self.done.load(Ordering::Acquire) {
            return;
        }
        if st.running {
            WaitQueue::park(st, |st| &mut st.waiters, (), WaitReason::SyncOnce);
            return;
        }
        st.running = true;
        drop(st);
        // Done even if `f` panics (Go's semantics): the guard finishes on unwind too.
        struct Finish<'a>(&'a Once);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                let mut st = self.0.st.lock().unwrap_or_else(|e| e.into_inner());
                self.0.done.store(true, Ordering::Release);
                st.running = false;
                let waiters = st.waiters.drain();
                drop(st);
                waiters.wake_all(());
            }
        }
        let _finish = Finish(self);
        f();
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("done", &self.is_completed())
            .finish()
    }
}
