//! [`Sleep`]: a timer as a future, for async code running on goroutines (`block_on`,
//! `spawn_future`) and for libraries that take a timer (hyper's `rt::Timer`).

use crate::runtime::timers::{instant_to_nanos, nanotime, WakeTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A future that completes at its deadline; see [`sleep_async`].
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    /// The armed runtime timer (None until first polled pending, or after a reset). Dropping
    /// or resetting the Sleep cancels it, and the heap sweeps the entry out.
    armed: Option<Arc<WakeTimer>>,
}

/// A future completing after `d` (tokio's `time::sleep`): a runtime timer wakes the task.
/// Poll it from a goroutine (inside [`block_on`](crate::block_on) or
/// [`spawn_future`](crate::spawn_future)), where the runtime's timers are.
///
/// # Panics
///
/// When polled pending outside a goroutine (there is no runtime to run the timer).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// goexec::run(|| {
///     let start = Instant::now();
///     goexec::block_on(goexec::time::sleep_async(Duration::from_millis(5)));
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
pub fn sleep_async(d: Duration) -> Sleep {
    sleep_until_async(super::deadline_in(d))
}

/// A future completing at `deadline`.
pub fn sleep_until_async(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        armed: None,
    }
}

impl Sleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (the timer armed for the old one is cancelled).
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.disarm();
    }

    fn disarm(&mut self) {
        if let Some(w) = self.armed.take() {
            w.cancel();
        }
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let when = instant_to_nanos(this.deadline);
        if nanotime() >= when {
            this.disarm();
            return Poll::Ready(());
        }
        if let Some(w) = &this.armed {
            if w.register(cx.waker()) {
                this.armed = None;
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
        let w = Arc::new(WakeTimer::default());
        w.register(cx.waker());
        if !super::wake_at(when, w.clone()) {
            panic!(
                "goexec: a Sleep was polled outside a goroutine: timers are run by a runtime; \
                 poll it inside goexec::block_on or spawn_future on a goroutine"
            );
        }
        this.armed = Some(w);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
