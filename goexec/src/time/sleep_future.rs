//! [`Sleep`]: a timer as a future, for async code running on goroutines (`block_on`,
//! `spawn_future`) or on plain threads (any executor), and for libraries that take a timer
//! (hyper's `rt::Timer`).

use crate::runtime::timers::{call_at_live, instant_to_nanos, nanotime, Call, CallTimer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A future that completes at its deadline; see [`sleep_async`].
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    /// The armed runtime timer (None until first polled pending, or after a reset). Dropping
    /// or resetting the Sleep cancels it, and the heap sweeps the entry out.
    armed: Option<CallTimer<WakeCall>>,
}

/// What a Sleep's timer calls: wakes the waker of the task's latest poll (woken after the
/// timer's lock is released, `Call::call`).
struct WakeCall(Waker);

impl Call for WakeCall {
    const WHAT: &'static str = "a Waker::wake called by the timers";

    fn call(self) -> Option<Waker> {
        Some(self.0)
    }

    /// Its runtime shut down: the task is woken to poll again, and the poll arms the Sleep
    /// where it runs now (a plain thread's executor, a later runtime).
    fn orphaned(&mut self) -> Option<Waker> {
        Some(self.0.clone())
    }
}

/// A future completing after `d` (tokio's `time::sleep`): a timer wakes the task. Polled
/// from a goroutine (inside [`block_on`](crate::block_on) or
/// [`spawn_future`](crate::spawn_future)), the timer is that runtime's; polled on a plain
/// thread (any executor: `goexec::block_on` or `futures::executor::block_on` on a thread),
/// it is the process-wide timer thread's (see the module docs).
///
/// A Sleep may outlive the runtime it was first polled in: when that runtime's `run` returns
/// with the timer pending, the task that last polled the Sleep is woken (on the thread
/// returning from `run`), and its next poll arms the timer where that poll runs. As with
/// every wake the timers make, a waker that panics there ends the process with a fatal error
/// that names it.
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
        self.armed = None;
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
            this.armed = None;
            return Poll::Ready(());
        }
        if let Some(t) = &this.armed {
            // The timer has fired if its call is gone.
            if !t.update(|w| w.0.clone_from(cx.waker())) {
                this.armed = None;
                return Poll::Ready(());
            }
            // Still armed. An orphaned one (armed in a goroutine of a runtime that has since
            // shut down and dropped the timer) is armed again, below, where it is polled now.
            if !t.is_orphaned() {
                return Poll::Pending;
            }
        }
        this.armed = Some(call_at_live(when, WakeCall(cx.waker().clone())));
        Poll::Pending
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
