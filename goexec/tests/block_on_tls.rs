//! A future run by `block_on` sees the thread-locals of the thread each poll runs on, though
//! the goroutine may have moved between polls. Only an optimised build can get this wrong (the
//! compiler reuses a thread-local's address only when optimising): `cargo test --release`
//! checks it.

mod common;

use common::watchdog;
use goexec::chan::{self, Sender};
use goexec::Runtime;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

thread_local! {
    static X: Cell<u64> = const { Cell::new(0) };
}

/// Polls per round.
const POLLS: usize = 300;
/// Rounds at most, until the goroutine has moved this often.
const ROUNDS: usize = 10;
const MOVES: usize = 100;

/// The calling OS thread's id (a system call, never cached).
fn tid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// The address of this thread's `X`, computed in a frame of its own.
#[inline(never)]
fn x_here() -> usize {
    X.with(|x| x as *const Cell<u64> as usize)
}

/// Pending `POLLS - 1` times, each time handing its waker to a goroutine that wakes it. Counts
/// the polls that ran on another thread than the one before, and those of them that used the
/// old thread's `X`.
struct Polls {
    wake: Sender<Waker>,
    polls: usize,
    last: i64,
    moves: usize,
    stale: usize,
}

impl Future for Polls {
    type Output = (usize, usize);

    // Inlined into whoever polls, as the compiler may do with any small future's poll.
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(usize, usize)> {
        let used = X.with(|x| {
            x.set(x.get() + 1);
            x as *const Cell<u64> as usize
        });
        let now = tid();
        if self.polls > 0 && now != self.last {
            self.moves += 1;
            if used != x_here() {
                self.stale += 1;
            }
        }
        self.last = now;
        self.polls += 1;
        if self.polls == POLLS {
            return Poll::Ready((self.moves, self.stale));
        }
        self.wake.send(cx.waker().clone()).unwrap();
        Poll::Pending
    }
}

/// One round: `POLLS` polls of a future in `block_on` at procs 2; (moves, stale) as counted by
/// [`Polls`].
fn round(rt: &Runtime) -> (usize, usize) {
    rt.run(|| {
        let (wake, wakers) = chan::bounded::<Waker>(1);
        let waker = goexec::spawn(move || {
            for w in wakers.iter() {
                // Keeps this thread (and its P) busy without a blocking section, so that the
                // other P, idle, steals the goroutine woken here: it moves at most polls.
                std::thread::sleep(Duration::from_micros(200));
                w.wake();
            }
        });
        let polls = Polls {
            wake,
            polls: 0,
            last: 0,
            moves: 0,
            stale: 0,
        };
        let counts = goexec::spawn(move || goexec::block_on(polls))
            .join()
            .unwrap();
        waker.join().unwrap();
        counts
    })
}

#[test]
fn each_poll_sees_its_own_threads_thread_locals() {
    let _w = watchdog("each_poll_sees_its_own_threads_thread_locals", 120);
    let rt = Runtime::builder().procs(2).build().unwrap();
    let (mut moves, mut stale) = (0, 0);
    for _ in 0..ROUNDS {
        let (m, s) = round(&rt);
        moves += m;
        stale += s;
        if moves >= MOVES {
            break;
        }
    }
    assert!(
        moves > 0,
        "the goroutine never moved in {ROUNDS} rounds of {POLLS} polls"
    );
    assert_eq!(
        stale, 0,
        "{stale} of the {moves} polls that ran on another thread than the poll before used \
         the old thread's thread-local"
    );
}
