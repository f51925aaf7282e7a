//! The channels' async operations: [`Receiver::recv_async`] and [`Sender::send_async`].

use super::hchan::{AsyncRecord, Chan};
use super::{Receiver, RecvError, SendError, Sender};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future of [`Receiver::recv_async`].
///
/// Dropping it before it completes takes its place in the channel's queue back; if a value
/// had already been handed to it, that value is dropped with it.
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a, T> {
    chan: &'a Chan<T>,
    /// The queued record (on the heap: the future may move between polls).
    slot: Option<AsyncRecord<T>>,
}

/// The future of [`Sender::send_async`].
///
/// Dropping it before it completes takes the value back out of the channel's queue (and drops
/// it).
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a, T> {
    chan: &'a Chan<T>,
    slot: Option<AsyncRecord<T>>,
    value: Option<T>,
}

impl<T> Unpin for RecvFuture<'_, T> {}
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Receiver<T> {
    /// Receives a value without blocking the thread: a future that completes with the value,
    /// or `Err(RecvError)` once the channel is closed and drained. A waiting receive is
    /// queued like a blocking one (FIFO, direct handoff), with the task's waker.
    ///
    /// # Examples
    ///
    /// ```
    /// goexec::run(|| {
    ///     let (tx, rx) = goexec::chan::bounded::<u32>(0);
    ///     goexec::spawn(move || tx.send(9).unwrap());
    ///     assert_eq!(goexec::block_on(rx.recv_async()), Ok(9));
    /// });
    /// ```
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            chan: &self.chan,
            slot: None,
        }
    }
}

impl<T> Sender<T> {
    /// Sends `v` without blocking the thread: a future that completes once a receiver took
    /// the value (unbuffered) or it is buffered, or with `Err(SendError(v))` if the channel
    /// is closed.
    pub fn send_async(&self, v: T) -> SendFuture<'_, T> {
        SendFuture {
            chan: &self.chan,
            slot: None,
            value: Some(v),
        }
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.chan
            .poll_recv(&mut this.slot, cx)
            .map(|v| v.ok_or(RecvError))
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.chan
            .poll_send(&mut this.slot, &mut this.value, cx)
            .map(|r| r.map_err(SendError))
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel(&mut self.slot, false);
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel(&mut self.slot, true);
    }
}

impl<T> std::fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvFuture").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFuture").finish_non_exhaustive()
    }
}
