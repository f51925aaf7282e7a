//! Go channels (Go: `make(chan T, n)`, `chan.go`).
//!
//! [`bounded`] makes a channel with room for `n` values; `n == 0` is Go's unbuffered channel, a
//! rendezvous: a send completes only when a receiver takes the value. Both ends are `Clone`
//! (many senders, many receivers). A blocked operation parks only its goroutine; on a plain
//! thread it parks the thread, so channels connect goroutines of any runtime and threads.
//!
//! Closing: any [`Sender`] may [`close`](Sender::close) the channel, and dropping the last
//! Sender closes it too. Receivers then drain the values still buffered, after which
//! [`recv`](Receiver::recv) returns `Err(RecvError)`. A send on a closed channel returns the
//! value in `Err(SendError(v))` (Go panics instead). Dropping every Receiver makes sends fail
//! the same way.
//!
//! [`after`] and [`tick`] are `time::after` and `time::tick`: receivers of `Instant`s fired by
//! the runtime's timers (the process-wide timer thread's on a plain thread). [`never()`] never delivers.
//!
//! [`Sender::send_timeout`] and [`Receiver::recv_timeout`] give up after a while: a waiting
//! goroutine is woken by a runtime timer, a thread by its own timed park.
//!
//! [`select!`](crate::select!) waits on several operations at once (Go's `select`); its core
//! is [`select()`], over [`RecvCase`]s and [`SendCase`]s.
//!
//! # Examples
//!
//! ```
//! goexec::run(|| {
//!     let (tx, rx) = goexec::chan::bounded::<i32>(0);
//!     goexec::spawn(move || {
//!         for i in 0..3 {
//!             tx.send(i).unwrap();
//!         }
//!         // Dropping the last Sender closes the channel and ends the loop below.
//!     });
//!     let got: Vec<i32> = rx.iter().collect();
//!     assert_eq!(got, [0, 1, 2]);
//! });
//! ```

mod future;
mod hchan;
mod select;

pub use future::{RecvFuture, SendFuture};
pub use select::{select, RecvCase, SelectCase, SendCase};

use hchan::{Chan, RecvFail, SendFail, TryRecv, TrySend};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Makes a channel with room for `cap` values; `cap == 0` is unbuffered (a rendezvous).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (Sender::from_chan(chan.clone()), Receiver::from_chan(chan))
}

/// A receiver that never receives anything (Go: a nil channel's receive). Useful as a
/// disabled case.
pub fn never<T>() -> Receiver<T> {
    let chan = Arc::new(Chan::new(0));
    // A sender that no Sender value stands for: the channel never closes.
    chan.senders.store(1, Ordering::Relaxed);
    Receiver::from_chan(chan)
}

/// A receiver that gets one `Instant` once `d` has passed (Go: `time.After`). Same as
/// [`time::after`](crate::time::after): in a goroutine the timer is its runtime's, on a plain
/// thread the process-wide timer thread's.
pub fn after(d: Duration) -> Receiver<Instant> {
    crate::time::after(d)
}

/// A receiver that gets an `Instant` every `period` (Go: `time.Tick`), dropping ticks a slow
/// receiver misses. The ticks stop when every receiver is gone. Same as
/// [`time::tick`](crate::time::tick).
///
/// # Panics
///
/// If `period` is zero.
pub fn tick(period: Duration) -> Receiver<Instant> {
    crate::time::tick(period)
}

/// The sending end of a channel.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving end of a channel.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// A send failed because the channel is closed (or has no receivers): the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// A receive failed because the channel is closed and drained.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why [`Sender::try_send`] failed; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// No receiver is waiting and the buffer is full.
    Full(T),
    /// The channel is closed (or has no receivers).
    Closed(T),
}

/// Why [`Sender::send_timeout`] failed; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// Nobody took the value in time.
    Timeout(T),
    /// The channel is closed (or has no receivers).
    Closed(T),
}

/// Why [`Receiver::recv_timeout`] failed.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// The channel is closed and drained.
    Closed,
}

/// Why [`Receiver::try_recv`] failed.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing to receive right now.
    Empty,
    /// The channel is closed and drained.
    Closed,
}

impl<T> Sender<T> {
    fn from_chan(chan: Arc<Chan<T>>) -> Sender<T> {
        chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender { chan }
    }

    /// Sends `v`, waiting (parking the goroutine, or the thread) until a receiver takes it
    /// (unbuffered) or there is room in the buffer. `Err(SendError(v))` if the channel is
    /// closed, or is closed while this waits.
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.chan.send(v).map_err(SendError)
    }

    /// Sends `v` if that can be done without waiting.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(v).map_err(|e| match e {
            TrySend::Full(v) => TrySendError::Full(v),
            TrySend::Closed(v) => TrySendError::Closed(v),
        })
    }

    /// Sends `v`, waiting at most `timeout` for a receiver or room (Go: a `select` with a
    /// `time.After` case). A zero timeout is `try_send`.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>>
    where
        T: Send + 'static,
    {
        self.send_deadline(v, crate::time::deadline_in(timeout))
    }

    /// Sends `v`, waiting until `deadline` at the latest.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>>
    where
        T: Send + 'static,
    {
        let when = crate::runtime::timers::instant_to_nanos(deadline);
        self.chan.send_deadline(v, when).map_err(|e| match e {
            SendFail::Timeout(v) => SendTimeoutError::Timeout(v),
            SendFail::Closed(v) => SendTimeoutError::Closed(v),
        })
    }

    /// Closes the channel (see the module docs). True if this call closed it, false if it
    /// was closed already (Go panics on a second close).
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Values buffered now.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is buffered now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (0: unbuffered).
    pub fn cap(&self) -> usize {
        self.chan.cap()
    }

    /// Whether the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }
}

impl<T> Receiver<T> {
    fn from_chan(chan: Arc<Chan<T>>) -> Receiver<T> {
        chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver { chan }
    }

    /// Receives a value, waiting (parking the goroutine, or the thread) until there is one.
    /// `Err(RecvError)` once the channel is closed and every buffered value received.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv().ok_or(RecvError)
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use goexec::chan::{self, RecvTimeoutError};
    /// use std::time::Duration;
    ///
    /// goexec::run(|| {
    ///     let (_tx, rx) = chan::bounded::<u32>(0);
    ///     let r = rx.recv_timeout(Duration::from_millis(1));
    ///     assert_eq!(r, Err(RecvTimeoutError::Timeout));
    /// });
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError>
    where
        T: Send + 'static,
    {
        self.recv_deadline(crate::time::deadline_in(timeout))
    }

    /// Receives a value, waiting until `deadline` at the latest.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError>
    where
        T: Send + 'static,
    {
        let when = crate::runtime::timers::instant_to_nanos(deadline);
        self.chan.recv_deadline(when).map_err(|e| match e {
            RecvFail::Timeout => RecvTimeoutError::Timeout,
            RecvFail::Closed => RecvTimeoutError::Closed,
        })
    }

    /// Receives a value if one is there without waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv().map_err(|e| match e {
            TryRecv::Empty => TryRecvError::Empty,
            TryRecv::Closed => TryRecvError::Closed,
        })
    }

    /// Values buffered now.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is buffered now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (0: unbuffered).
    pub fn cap(&self) -> usize {
        self.chan.cap()
    }

    /// Whether the channel is closed (values may still be buffered).
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Receives until the channel is closed and drained (Go: `for v := range ch`).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender::from_chan(self.chan.clone())
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        Receiver::from_chan(self.chan.clone())
    }
}

impl<T> Sender<T> {
    /// Whether every receiver is gone: nothing sent can ever be received (a timer's channel
    /// nobody holds any more, `time/chan_timer.rs`). Final: receivers are made only from
    /// receivers.
    pub(crate) fn receivers_gone(&self) -> bool {
        self.chan.receivers.load(Ordering::Acquire) == 0
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Nobody can receive any more: blocked and later sends fail.
            self.chan.close();
        }
    }
}

/// Iterator over received values; see [`Receiver::iter`].
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Owning iterator over received values.
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("cap", &self.cap())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("cap", &self.cap())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("rx", self.rx).finish()
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").field("rx", &self.rx).finish()
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("send on a closed channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receive from a closed, drained channel")
    }
}

impl std::error::Error for RecvError {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("send on a full channel"),
            TrySendError::Closed(_) => f.write_str("send on a closed channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out sending on a channel"),
            SendTimeoutError::Closed(_) => f.write_str("send on a closed channel"),
        }
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out receiving on a channel"),
            RecvTimeoutError::Closed => f.write_str("receive from a closed, drained channel"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receive on an empty channel"),
            TryRecvError::Closed => f.write_str("receive from a closed, drained channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}
