//! Go's `net` package shape for goexec: sockets on the runtime's netpoller, with
//! blocking-style calls that park only the calling goroutine.
//!
//! [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`], with std-style timeouts and Go-style deadlines (both give
//! `ErrorKind::TimedOut`); streams are `Read`/`Write` through `&Stream` too, and `try_clone`
//! gives a reader and a writer goroutine each a handle.
//!
//! Each type converts from and into its std counterpart (`from_std`, `into_std`, and
//! `FromRawFd` / `IntoRawFd`), and has std's socket options under std's names; `AsFd` lets
//! `socket2::SockRef` set any other.
//!
//! Deadlines are Go's: set from any goroutine or thread, they reach operations already
//! waiting, so `set_read_deadline(Some(Instant::now()))` cancels a read. A listener's
//! [`close`](TcpListener::close) fails the accepts waiting, with an error for which
//! [`is_closed`] is true: with `goexec::signal::notify`, that is a server's graceful
//! shutdown (the repository's README shows the pattern, and its `echo` example runs it).
//!
//! Sockets are made from a goroutine (they register with its runtime's poller) and can then
//! be used from any goroutine, thread or async task, of any runtime, also after the `run`
//! that made them returned: a poller whose runtime has stopped gets a thread of its own
//! (`goexec-netpoll`) once someone waits on one of its sockets, until its last socket is
//! dropped.
//!
//! A read that sees the peer's data and then its close (FIN, or RST: on Linux the data, then
//! `ConnectionReset`, then `Ok(0)`) returns the data, and the next read the end, at once.
#![warn(missing_debug_implementations)]

#[macro_use]
mod macros;
#[macro_use]
mod fd;
mod listen;
mod tcp;
mod udp;
mod unix;
mod unix_datagram;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;

pub use unix::{UnixListener, UnixStream};
pub use unix_datagram::UnixDatagram;

use goexec::mio;
use goexec::netpoll::Registration;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Resolves `addr` (DNS names through `goexec::blocking`, so a slow resolver blocks only this
/// goroutine's thread, with its P handed on).
fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = goexec::blocking(|| addr.to_socket_addrs())?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// The timeout of one direction (std's `set_read_timeout`). Go's deadlines
/// (`set_read_deadline`) are not here but in the socket's poll descriptor, where operations
/// already waiting see them change.
#[derive(Default, Clone, Copy)]
struct Limits {
    timeout: Option<Duration>,
}

impl Limits {
    /// The deadline of an operation starting now, from the timeout.
    fn deadline(&self) -> Option<Instant> {
        // A timeout too large for an Instant waits for ever, as std's does.
        self.timeout.and_then(|t| Instant::now().checked_add(t))
    }
}

/// The error of an operation on a listener after its `close` (Go: `net.ErrClosed`, "use of
/// closed network connection"). It comes as the inner error of an `io::Error` of kind
/// `ErrorKind::NotConnected`; [`is_closed`] tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClosedError;

impl std::fmt::Display for ClosedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("use of closed network connection")
    }
}

impl std::error::Error for ClosedError {}

/// Whether `err` says the listener was closed (Go: `errors.Is(err, net.ErrClosed)`): an
/// accept loop's signal to stop.
///
/// ```
/// use goexec_net::TcpListener;
///
/// goexec::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     listener.close().unwrap();
///     let err = listener.accept().unwrap_err();
///     assert!(goexec_net::is_closed(&err));
///     assert_eq!(err.to_string(), "use of closed network connection");
/// });
/// ```
pub fn is_closed(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<ClosedError>())
}

/// A read that says `WouldBlock` on a source the poller reported hung up: a datagram socket
/// shut down for reading through its descriptor (this crate's own `shutdown` makes such reads
/// return 0, as std's do). Nothing will come: waiting would never end.
fn read_shut_error() -> io::Error {
    io::Error::new(
        ErrorKind::NotConnected,
        "the socket is shut down for reading",
    )
}

fn closed_error() -> io::Error {
    io::Error::new(ErrorKind::NotConnected, ClosedError)
}

/// `r`, removing the socket file at `path` first if `r` failed: a Unix bind that made the
/// file and then failed (to register, outside a goroutine) must leave nothing behind.
fn unlink_on_error<T>(r: io::Result<T>, path: &std::path::Path) -> io::Result<T> {
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// std rejects a zero timeout; so do we.
fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

/// A socket shared by its handles (`try_clone`), with their timeouts (and, in the
/// registration, their deadlines).
struct Conn<S: mio::event::Source> {
    io: Arc<Pollable<S>>,
    limits: Arc<Mutex<(Limits, Limits)>>,
}

impl<S: mio::event::Source> Conn<S> {
    fn new(s: S) -> io::Result<Conn<S>> {
        Ok(Conn {
            io: Arc::new(Pollable::new(s)?),
            limits: Default::default(),
        })
    }

    /// A connection accepted from `listener`: on the listener's poller, so that accepting
    /// works wherever the listener does (any thread, after its runtime stopped).
    fn accepted<L: mio::event::Source>(listener: &Pollable<L>, mut s: S) -> io::Result<Conn<S>> {
        let reg = listener.reg.alongside(&mut s)?;
        Ok(Conn {
            io: Arc::new(Pollable::with(s, reg)),
            limits: Default::default(),
        })
    }

    fn share(&self) -> Conn<S> {
        Conn {
            io: self.io.clone(),
            limits: self.limits.clone(),
        }
    }

    fn limits(&self) -> (Limits, Limits) {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut (Limits, Limits))) {
        f(&mut self.limits.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Runs `op` on the socket, waiting for `dir`'s readiness on `WouldBlock` until that
    /// direction's timeout or deadline.
    fn retry<R>(&self, dir: Dir, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let (read, write) = self.limits();
        let limits = match dir {
            Dir::Read => read,
            Dir::Write => write,
        };
        self.io.retry(dir, limits.deadline(), op)
    }

    /// Waits for a non-blocking connect to finish: once the socket is writable, `take_error`
    /// says whether it failed, and `peer` fails with NotConnected while still connecting.
    fn await_connected(
        &self,
        deadline: Option<Instant>,
        take_error: impl Fn(&S) -> io::Result<Option<io::Error>>,
        peer: impl Fn(&S) -> io::Result<()>,
    ) -> io::Result<()> {
        loop {
            if let Some(e) = take_error(self.io.get())? {
                return Err(e);
            }
            match peer(self.io.get()) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotConnected => self.io.wait_writable(deadline)?,
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: mio::event::Source> Conn<S>
where
    for<'a> &'a S: Read + Write,
{
    /// Reads, waiting at most the read timeout / until the read deadline.
    ///
    /// A `recv` that returned less than it asked for (and not 0) left the receive queue
    /// empty, so the next read waits before it tries (tokio does the same): a `recv` that
    /// would only say `WouldBlock` costs a system call per message. The wait is
    /// `wait_readable_since` with the stamp read just before that `recv`, and it sleeps only
    /// while nothing is there:
    /// - data, FIN or RST arriving after the `recv` raises an edge that the poller reports
    ///   after the stamp was read (the kernel orders that `recv` before the arrival, both
    ///   under the socket's lock, and the stamp read before the `recv`), so the stamp moves
    ///   or the sleeper is woken;
    /// - a FIN or RST already queued behind the data that `recv` returned (both in the event
    ///   that woke the reader, which spent the edge) was reported either after the stamp was
    ///   read (it moved) or before, as read-closed or error (epoll: `EPOLLRDHUP`, `EPOLLHUP`,
    ///   `EPOLLERR`), and that mark is never cleared.
    ///
    /// Nothing else can be pending after such a `recv`, but for two cases where the kernel
    /// stops a `recv` short of queued data, both a peer's doing that these sockets do not
    /// support (tokio, which saves the same call, has them too): TCP urgent data (the `recv`
    /// stops at its mark) and a Unix message carrying descriptors (it stops after it). There
    /// the next read waits for the next edge or its deadline. The argument is about the
    /// socket, not the reader, so any stamp from such a `recv` serves any later read, on any
    /// handle.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // As std's sockets: an empty buffer reads nothing, at once (a non-blocking `recv` of
        // no bytes says WouldBlock while nothing is queued, and we would wait for data).
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.limits().0.deadline();
        // Past the read deadline, fail before any `recv` (Go's `prepareRead`). Only here:
        // a wait that readiness ends lets the read retry even if the deadline passed since.
        let reg = &self.io.reg;
        reg.prepare_read()?;
        let stamp = self.io.drained.load(Ordering::Relaxed);
        if stamp != NOT_DRAINED {
            self.io.drained.store(NOT_DRAINED, Ordering::Relaxed);
            reg.wait_readable_since(stamp, deadline)?;
        }
        let mut stamp = NOT_DRAINED;
        let n = self.io.retry_prepared(Dir::Read, deadline, |mut s| {
            stamp = reg.read_stamp();
            s.read(buf)
        })?;
        if n > 0 && n < buf.len() {
            self.io.drained.store(stamp, Ordering::Relaxed);
        }
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.retry(Dir::Write, |mut s| s.write(buf))
    }

    /// `AsyncRead`'s read: the system call first, then on `WouldBlock` the task's waker in
    /// the poll descriptor. Every poll starts with the `recv`, so an end of stream queued
    /// behind data is read by the next poll. (No short-read shortcut here: an earlier one,
    /// on the one-shot ready mark, lost wakeups; the blocking `read`'s stamp would not, but
    /// `poll_read_ready` has no form that takes one.)
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(Dir::Read, cx, |mut s| s.read(buf))
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(Dir::Write, cx, |mut s| s.write(buf))
    }
}

/// Which readiness an operation waits for.
#[derive(Clone, Copy)]
enum Dir {
    Read,
    Write,
}

/// A mio source with its registration; deregistered when dropped, before the socket closes.
struct Pollable<S: mio::event::Source> {
    source: S,
    reg: Registration,
    /// The read stamp taken before the last stream `recv`, if that `recv` was short: the
    /// receive queue was empty after it (`Conn::read`); else [`NOT_DRAINED`].
    drained: AtomicU64,
    /// A listener's `close` was called.
    closed: AtomicBool,
}

/// `Pollable::drained` when the last stream read was not short (no stamp reaches it).
const NOT_DRAINED: u64 = u64::MAX;

impl<S: mio::event::Source> Pollable<S> {
    fn new(mut source: S) -> io::Result<Pollable<S>> {
        let reg = Registration::new(&mut source)?;
        Ok(Pollable::with(source, reg))
    }

    /// `source`, registered as `reg`.
    fn with(source: S, reg: Registration) -> Pollable<S> {
        Pollable {
            source,
            reg,
            drained: AtomicU64::new(NOT_DRAINED),
            closed: AtomicBool::new(false),
        }
    }

    /// The source, for I/O (mio's sockets do I/O through `&S`, from any number of threads).
    fn get(&self) -> &S {
        &self.source
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.wait_readable(deadline)
    }

    /// Runs `op` until it does not report `WouldBlock` (waiting for `dir`'s readiness, up to
    /// `deadline` or the direction's own deadline) or `Interrupted`. Past the direction's
    /// deadline, fails without trying `op` (Go's `prepareRead`); once started, a wait that
    /// readiness ends retries `op` even if the deadline has passed since (Go too).
    fn retry<R>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        match dir {
            Dir::Read => self.reg.prepare_read()?,
            Dir::Write => self.reg.prepare_write()?,
        }
        self.retry_prepared(dir, deadline, op)
    }

    /// `retry` without the first deadline check, for a caller that made it.
    fn retry_prepared<R>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        // The read side was seen hung up before the last try (see `hung_up`).
        let mut hung = false;
        loop {
            match op(&self.source) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => match dir {
                    Dir::Read if self.hung_up(&mut hung)? => {}
                    Dir::Read => self.wait_readable(deadline)?,
                    Dir::Write => self.wait_writable(deadline)?,
                },
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.wait_writable(deadline)
    }

    /// `retry` for async callers: on `WouldBlock`, polls `dir`'s readiness (registering the
    /// task's waker) and retries while it says ready.
    fn poll_io<R>(
        &self,
        dir: Dir,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let mut hung = false;
        loop {
            match op(&self.source) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let ready = match dir {
                        Dir::Read => match self.hung_up(&mut hung) {
                            Ok(true) => continue,
                            Ok(false) => self.reg.poll_read_ready(cx),
                            Err(e) => return Poll::Ready(Err(e)),
                        },
                        Dir::Write => self.reg.poll_write_ready(cx),
                    };
                    match ready {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

impl<S: mio::event::Source + std::os::fd::AsFd> Pollable<S> {
    /// A listener's accept: `retry` on the read side, failing with [`ClosedError`] once
    /// `close` was called (also for an accept that was waiting then).
    fn accept<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        match self.retry(Dir::Read, None, op) {
            Err(_) if self.closed.load(Ordering::Acquire) => Err(closed_error()),
            r => r,
        }
    }

    /// A listener's `close` (Go's `Listener.Close`): stops listening and fails the accepts
    /// waiting, at once. The descriptor stays open (so no other socket can take its number
    /// under an accept still in the kernel) until the value drops.
    ///
    /// `accept` takes one queued connection, true if there was one: a Unix listening
    /// socket shut down still hands out the connections it had queued, which `close` then
    /// takes and drops, so that their clients see the end instead of waiting for the drop.
    fn close(&self, mut accept: impl FnMut(&S) -> bool) -> io::Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(closed_error());
        }
        // Linux: a listening socket shut down stops listening; new connections are refused,
        // and a TCP listener resets the ones queued and not yet accepted.
        let _ = socket2::SockRef::from(&self.source).shutdown(std::net::Shutdown::Both);
        while accept(&self.source) {}
        // Off the poller: the accepts waiting wake (and see `closed`), later waits fail at
        // once. `Drop` deregisters again, which finds nothing to do.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.source.as_fd());
        self.reg.deregister(&mut mio::unix::SourceFd(&fd));
        Ok(())
    }
}

impl<S: mio::event::Source> Pollable<S> {
    /// After a read said `WouldBlock`: Ok(true) to try again at once, if the poller has
    /// reported the read side hung up since the last look (`hung`); an error if it had been
    /// reported before that read, which then will never be ready (a datagram socket shut
    /// down for reading); Ok(false) to wait. The mark may come between a `WouldBlock` and the
    /// look (a stream's FIN after its data): only a try made after the mark was seen is
    /// final.
    fn hung_up(&self, hung: &mut bool) -> io::Result<bool> {
        if !self.reg.read_hung_up() {
            return Ok(false);
        }
        if std::mem::replace(hung, true) {
            return Err(read_shut_error());
        }
        Ok(true)
    }
}

impl<S: mio::event::Source> Drop for Pollable<S> {
    fn drop(&mut self) {
        self.reg.deregister(&mut self.source);
    }
}

impl<S: mio::event::Source> Pollable<S> {
    /// Deregisters the source and hands it back, still open (`into_std`).
    fn into_source(self) -> S {
        // Not dropped: its `Drop` would deregister again and close the source. Every field
        // that needs dropping is read out below (the atomics need none).
        let mut this = std::mem::ManuallyDrop::new(self);
        let this = &mut *this;
        this.reg.deregister(&mut this.source);
        // SAFETY: `this` is never used or dropped again, so the registration is read out (and
        // dropped) exactly once.
        drop(unsafe { std::ptr::read(&this.reg) });
        // SAFETY: as above: the source is read out once, and the caller owns it from here.
        unsafe { std::ptr::read(&this.source) }
    }
}

impl<S: mio::event::Source + Into<std::os::fd::OwnedFd>> Pollable<S> {
    /// The socket, deregistered and in blocking mode, as std's types expect (`into_std`); a
    /// closed listener gives the closed error (it listens no more).
    fn into_blocking_fd(self) -> io::Result<std::os::fd::OwnedFd> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        let fd: std::os::fd::OwnedFd = self.into_source().into();
        socket2::SockRef::from(&fd).set_nonblocking(false)?;
        Ok(fd)
    }
}

impl<S> Conn<S>
where
    S: mio::event::Source + std::os::fd::AsFd + Into<std::os::fd::OwnedFd>,
{
    /// The socket for `into_std`: if this is its last handle, the socket itself, deregistered
    /// and blocking; else a duplicate descriptor (std's `try_clone`) and the other handles
    /// keep the registration. The duplicate stays non-blocking: the flag belongs to the
    /// socket, which it shares with them, and they must not block their threads.
    fn into_std_fd(self) -> io::Result<std::os::fd::OwnedFd> {
        match Arc::try_unwrap(self.io) {
            Ok(io) => io.into_blocking_fd(),
            Err(shared) => shared.get().as_fd().try_clone_to_owned(),
        }
    }
}

/// `recv` with `MSG_PEEK` on any socket (std's `peek`), for sockets whose mio type lacks it.
fn peek_fd(fd: impl std::os::fd::AsFd, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len();
    let ptr = buf.as_mut_ptr().cast::<std::mem::MaybeUninit<u8>>();
    // SAFETY: `ptr` and `len` come from a live `&mut [u8]` borrowed for this call, and
    // `MaybeUninit<u8>` has `u8`'s layout; `recv` only writes initialised bytes into it, so
    // `buf` holds only initialised bytes afterwards.
    let uninit = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    socket2::SockRef::from(&fd).peek(uninit)
}
