//! TCP: [`TcpListener`] and [`TcpStream`] (Go: `net.TCPListener`, `net.TCPConn`).

use crate::Pollable;
use goexec::mio;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
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

/// A TCP socket server, listening for connections. `accept` parks only the calling goroutine.
///
/// # Examples
///
/// ```
/// use goexec_net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// goexec::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     goexec::spawn(move || {
///         let (mut conn, _) = listener.accept().unwrap();
///         let mut buf = [0u8; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap(); // echo
///     });
///     let mut c = TcpStream::connect(addr).unwrap();
///     c.write_all(b"hello").unwrap();
///     let mut back = [0u8; 5];
///     c.read_exact(&mut back).unwrap();
///     assert_eq!(&back, b"hello");
/// });
/// ```
pub struct TcpListener {
    io: Pollable<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first address that works, as std does). Call it from a goroutine.
    ///
    /// # Errors
    ///
    /// As `std::net::TcpListener::bind`; `ErrorKind::Unsupported` outside a goroutine.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            match std::net::TcpListener::bind(a) {
                Ok(l) => {
                    l.set_nonblocking(true)?;
                    let io = Pollable::new(mio::net::TcpListener::from_std(l))?;
                    return Ok(TcpListener { io });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no address")))
    }

    /// Accepts a connection, parking the goroutine until one arrives. Errors such as
    /// `EMFILE` (too many open files) are returned, not fatal: back off and call again.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            match self.io.get().accept() {
                Ok((s, addr)) => return Ok((TcpStream::from_mio(s)?, addr)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.io.wait_readable(None)?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// An iterator over incoming connections (Go: a loop around `Accept`).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// Timeouts and deadlines of one direction (std's `set_read_timeout`, Go's `SetReadDeadline`).
#[derive(Default, Clone, Copy)]
struct Limits {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

impl Limits {
    /// The deadline for an operation starting now: the earlier of the two.
    fn deadline(&self) -> Option<Instant> {
        let from_timeout = self.timeout.map(|t| Instant::now() + t);
        match (from_timeout, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A TCP connection. Reads and writes park only the calling goroutine. `&TcpStream` is
/// `Read` and `Write` too, and [`try_clone`](TcpStream::try_clone) shares the connection, so
/// one goroutine can read while another writes.
pub struct TcpStream {
    io: Arc<Pollable<mio::net::TcpStream>>,
    limits: Arc<std::sync::Mutex<(Limits, Limits)>>,
}

impl TcpStream {
    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: Arc::new(Pollable::new(s)?),
            limits: Default::default(),
        })
    }

    /// Connects to `addr` (each resolved address in turn), parking the goroutine meanwhile.
    ///
    /// # Errors
    ///
    /// As std (`ConnectionRefused` for a closed port, ...); `Unsupported` outside a goroutine.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(addr, None)
    }

    /// `connect` that gives up after `timeout` with `ErrorKind::TimedOut`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        Self::connect_inner(addr, Some(Instant::now() + timeout))
    }

    fn connect_inner(addr: impl ToSocketAddrs, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve(addr)? {
            match Self::connect_one(a, deadline) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no address")))
    }

    fn connect_one(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let s = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        loop {
            // mio: once writable, the connection is made or failed; take_error tells which,
            // and peer_addr tells "still connecting" (NotConnected) from "connected".
            if let Some(e) = s.io.get().take_error()? {
                return Err(e);
            }
            match s.io.get().peer_addr() {
                Ok(_) => return Ok(s),
                Err(e) if e.kind() == ErrorKind::NotConnected => {
                    s.io.wait_writable(deadline)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn limits(&self) -> (Limits, Limits) {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut (Limits, Limits))) {
        f(&mut self.limits.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Reads, waiting at most the read timeout / until the read deadline.
    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.limits().0.deadline();
        loop {
            match self.io.get().read(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.io.wait_readable(deadline)?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        let deadline = self.limits().1.deadline();
        loop {
            match self.io.get().write(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.io.wait_writable(deadline)?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// Shuts down the read, write, or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get().nodelay()
    }

    /// Another handle to the same connection (sharing its timeouts and deadlines), for a
    /// second goroutine.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: self.io.clone(),
            limits: self.limits.clone(),
        })
    }

    /// std's read timeout: each read waits at most this long, then fails with `TimedOut`.
    /// `Some(Duration::ZERO)` is rejected, as std does.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.update(|l| l.0.timeout = t);
        Ok(())
    }

    /// std's write timeout.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.update(|l| l.1.timeout = t);
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.limits().0.timeout)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.limits().1.timeout)
    }

    /// Go's `SetReadDeadline`: reads fail with `TimedOut` from `deadline` on (None: never).
    pub fn set_read_deadline(&self, deadline: Option<Instant>) {
        self.update(|l| l.0.deadline = deadline);
    }

    /// Go's `SetWriteDeadline`.
    pub fn set_write_deadline(&self, deadline: Option<Instant>) {
        self.update(|l| l.1.deadline = deadline);
    }

    /// Go's `SetDeadline`: both directions.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.update(|l| {
            l.0.deadline = deadline;
            l.1.deadline = deadline;
        });
    }
}

fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}
