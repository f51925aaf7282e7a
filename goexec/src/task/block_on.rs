//! Futures on goroutines: [`block_on`] and [`spawn_future`].
//!
//! A goroutine runs a future by polling it and, when it is pending, parking until the future's
//! `Waker` is woken; waking readies the goroutine (`goready`). Only that goroutine waits: its
//! M runs others meanwhile. On a plain thread, `block_on` parks the thread instead.

use crate::runtime::current_g;
use crate::runtime::g::{GRef, WaitReason};
use crate::runtime::park::goready;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// Polling; a wake now makes the poller poll again instead of parking.
const POLLING: u8 = 0;
/// Woken while polling (or after parking): poll again.
const NOTIFIED: u8 = 1;
/// Parked: a wake must ready the goroutine (or unpark the thread).
const PARKED: u8 = 2;
/// `block_on` returned: a late wake does nothing.
const DONE: u8 = 3;

enum Who {
    G(GRef),
    Thread(Thread),
}

/// The waker of one `block_on`: the waiting goroutine or thread and where it stands.
struct Signal {
    who: Who,
    state: AtomicU8,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let (to, ready) = match s {
                NOTIFIED | DONE => return,
                PARKED => (NOTIFIED, true),
                _ => (NOTIFIED, false),
            };
            match self
                .state
                .compare_exchange(s, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if ready {
                        match &self.who {
                            // Parked (Waiting) and only we may ready it: it left PARKED to us.
                            Who::G(g) => goready(*g),
                            Who::Thread(t) => t.unpark(),
                        }
                    }
                    return;
                }
                Err(now) => s = now,
            }
        }
    }
}

/// Runs `fut` to completion on the calling goroutine, parking it (not its thread) whenever
/// the future is pending, until the future's waker is woken. On a plain thread it parks the
/// thread. Any future works: goexec's ([`JoinHandle`](crate::JoinHandle), the channels'
/// async operations) or other crates' (a `futures` oneshot, an `async` block).
///
/// A future that needs a particular runtime's reactor (tokio's sockets and timers) will not
/// make progress here: use goexec's own sockets and timers.
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let h = goexec::spawn(|| 6 * 7);
///     let v = goexec::block_on(async move { h.await.unwrap() + 1 });
///     assert_eq!(v, 43);
/// });
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(Some(fut));
    let me = current_g();
    let signal = Arc::new(Signal {
        who: match me {
            Some(g) => Who::G(g),
            None => Who::Thread(std::thread::current()),
        },
        state: AtomicU8::new(POLLING),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        signal.state.store(POLLING, Ordering::Release);
        if let Poll::Ready(v) = poll_once(fut.as_mut(), &mut cx) {
            signal.state.store(DONE, Ordering::Release);
            return v;
        }
        let park = || {
            signal
                .state
                .compare_exchange(POLLING, PARKED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        };
        match me {
            // The CAS runs once our context is saved (the park's unlock): a wake from then on
            // finds us Waiting; one before it left NOTIFIED, and we poll again.
            Some(g) => g.park(WaitReason::Future, &mut { park }),
            None => {
                crate::runtime::callback::check_may_block();
                if park() {
                    while signal.state.load(Ordering::Acquire) == PARKED {
                        std::thread::park();
                    }
                }
            }
        }
    }
}

/// Polls the future in `slot` once, in a frame of its own, and drops it there when it is ready
/// or its poll panics. The future's code must not be inlined into `block_on`'s loop: the
/// compiler could compute a thread-local's address in one poll (the future's own, or one of a
/// library it uses) and reuse it after a park that resumed the goroutine on another thread.
#[inline(never)]
fn poll_once<F: Future>(slot: Pin<&mut Option<F>>, cx: &mut Context<'_>) -> Poll<F::Output> {
    struct DropFuture<'a, F>(Pin<&'a mut Option<F>>);
    impl<F> Drop for DropFuture<'_, F> {
        fn drop(&mut self) {
            self.0.set(None);
        }
    }
    let mut slot = DropFuture(slot);
    let poll = match slot.0.as_mut().as_pin_mut() {
        Some(fut) => fut.poll(cx),
        // block_on polls no more once the future is ready.
        None => return Poll::Pending,
    };
    if poll.is_pending() {
        // Keep the future: `slot` only borrows it.
        std::mem::forget(slot);
    }
    poll
}

/// Runs `fut` as a new goroutine (which drives it with [`block_on`]) and returns its
/// [`JoinHandle`](crate::JoinHandle), itself a future.
///
/// # Panics
///
/// Outside a goroutine, as [`spawn`](crate::spawn).
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let h = goexec::spawn_future(async { 1 + 2 });
///     assert_eq!(h.join().unwrap(), 3);
/// });
/// ```
#[track_caller]
pub fn spawn_future<F>(fut: F) -> crate::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    crate::spawn(move || block_on(fut))
}
