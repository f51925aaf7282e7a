//! TCP: [`TcpListener`] and [`TcpStream`] (Go: `net.TCPListener`, `net.TCPConn`).

use crate::{resolve, Conn, Dir, Pollable};
use goexec::mio;
use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A TCP socket server, listening for connections. `accept` parks only the calling goroutine.
///
/// `bind` listens with a server's backlog, as Go does: the kernel's cap
/// (`net.core.somaxconn`, 4096 by default), where std listens with 128; a server takes
/// bursts of thousands of connections, and while the accept queue is full the kernel drops
/// their SYNs (the clients wait in SYN retries, a second and more).
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
    /// Binds to `addr` (the first address that works, as std does, with `SO_REUSEADDR`) and
    /// listens. Call it from a goroutine.
    ///
    /// # Errors
    ///
    /// As `std::net::TcpListener::bind`; `ErrorKind::Unsupported` outside a goroutine.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            match crate::listen::tcp(a) {
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
    /// `EMFILE` (too many open files) are returned, not fatal: back off and call again. The
    /// connection joins the listener's poller, so this works from any goroutine or thread,
    /// also after the listener's runtime stopped.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, addr) = self.io.accept(|l| l.accept())?;
        let conn = Conn::accepted(&self.io, s)?;
        Ok((TcpStream { conn }, addr))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// An iterator over incoming connections (Go: a loop around `Accept`).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }

    /// Sets `IP_TTL` for the connections this listener accepts (std's `set_ttl`).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get().set_ttl(ttl)
    }

    /// `IP_TTL` (std's `ttl`).
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get().ttl()
    }

    /// The listener's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }
}

impl TcpListener {
    /// The mio socket, for the descriptor traits.
    fn source(&self) -> &mio::net::TcpListener {
        self.io.get()
    }
}

fd_common!(TcpListener);
listener_common!(TcpListener);

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// A TCP connection. Reads and writes park only the calling goroutine. `&TcpStream` is
/// `Read` and `Write` too, and [`try_clone`](TcpStream::try_clone) shares the connection, so
/// one goroutine can read while another writes.
pub struct TcpStream {
    conn: Conn<mio::net::TcpStream>,
}

impl TcpStream {
    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            conn: Conn::new(s)?,
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

    /// `connect` that gives up after `timeout` with `ErrorKind::TimedOut`. A zero timeout is
    /// `ErrorKind::InvalidInput`, as std has it.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        crate::check_timeout(Some(timeout))?;
        Self::connect_inner(addr, Instant::now().checked_add(timeout))
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
        s.conn.await_connected(
            deadline,
            |io| io.take_error(),
            |io| io.peer_addr().map(drop),
        )?;
        Ok(s)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn.io.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn.io.get().local_addr()
    }

    /// Shuts down the read, write, or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.conn.io.get().shutdown(how)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.conn.io.get().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.conn.io.get().nodelay()
    }

    /// Another handle to the same connection (sharing its timeouts and deadlines), for a
    /// second goroutine.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            conn: self.conn.share(),
        })
    }
}

stream_common!(TcpStream);

impl TcpStream {
    /// The mio socket, for the descriptor traits.
    fn source(&self) -> &mio::net::TcpStream {
        self.conn.io.get()
    }
}

fd_common!(TcpStream);

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl TcpListener {
    fn from_mio(l: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: Pollable::new(l)?,
        })
    }

    fn into_fd(self) -> io::Result<std::os::fd::OwnedFd> {
        self.io.into_blocking_fd()
    }
}

std_conversions!(TcpListener, std::net::TcpListener, mio::net::TcpListener);
fd_owned!(TcpListener, std::net::TcpListener);

impl TcpStream {
    fn into_fd(self) -> io::Result<std::os::fd::OwnedFd> {
        self.conn.into_std_fd()
    }

    /// Reads without consuming (`MSG_PEEK`): the next read returns the same bytes. Waits for
    /// data as `read` does, up to the read timeout / deadline.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        // As `read`: an empty buffer sees nothing, at once.
        if buf.is_empty() {
            return Ok(0);
        }
        self.conn.retry(Dir::Read, |s| s.peek(buf))
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source().take_error()
    }

    /// Sets `IP_TTL`, the time-to-live of the packets sent.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source().ttl()
    }
}

std_conversions!(TcpStream, std::net::TcpStream, mio::net::TcpStream, shared);
fd_owned!(TcpStream, std::net::TcpStream);
