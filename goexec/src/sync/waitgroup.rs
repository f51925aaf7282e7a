//! [`WaitGroup`] (Go: `sync.WaitGroup`).

use crate::runtime::g::WaitReason;
use crate::runtime::waitq::WaitQueue;
use std::fmt;
use std::sync::Arc;

#[derive(Default)]
struct State {
    count: i64,
    waiters: WaitQueue<(), ()>,
}

/// Waits for a collection of goroutines to finish (Go: `sync.WaitGroup`). `add` the number to
/// wait for, each calls `done` when finished, and `wait` parks until the count is zero.
/// Clones share the count.
///
/// # Examples
///
/// ```
/// use goexec::sync::WaitGroup;
///
/// goexec::run(|| {
///     let wg = WaitGroup::new();
///     for _ in 0..10 {
///         wg.add(1);
///         let wg = wg.clone();
///         goexec::spawn(move || {
///             // ... work ...
///             wg.done();
///         });
///     }
///     wg.wait();
/// });
/// ```
#[derive(Clone, Default)]
pub struct WaitGroup {
    st: Arc<std::sync::Mutex<State>>,
}

impl WaitGroup {
    /// A group with a count of zero.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `delta` (which may be negative) to the count; at zero every `wait` returns.
    ///
    /// # Panics
    ///
    /// If the count goes negative (Go: "sync: negative WaitGroup counter").
    pub fn add(&self, delta: i64) {
        let mut st = self.state();
        st.count += delta;
        if st.count < 0 {
            st.count -= delta;
            drop(st);
            panic!("sync: negative WaitGroup counter");
        }
        if st.count == 0 && !st.waiters.is_empty() {
            let waiters = st.waiters.drain();
            drop(st);
            waiters.wake_all(());
        }
    }

    /// Subtracts one from the count.
    pub fn done(&self) {
        self.add(-1);
    }

    /// Parks until the count is zero.
    pub fn wait(&self) {
        let st = self.state();
        if st.count == 0 {
            return;
        }
        WaitQueue::park(st, |st| &mut st.waiters, (), WaitReason::SyncWaitGroupWait);
    }

    /// The current count.
    pub fn count(&self) -> i64 {
        self.state().count
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
