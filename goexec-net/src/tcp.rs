//! TCP: [`TcpListener`] and [`TcpStream`] (Go: `net.TCPListener`, `net.TCPConn`).

use crate::{resolve, Conn, Dir, Pollable};
use goexec::mio;
use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

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
            match listen_on(a) {
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
        let (s, addr) = self.io.retry(Dir::Read, None, |l| l.accept())?;
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
}

/// The listen backlog asked for: the most the kernel allows (Linux caps it at
/// `net.core.somaxconn`, 4096 by default), as Go's net package asks. std asks for 128, which a
/// burst of a few hundred connects overflows: SYNs are dropped (the connect takes a second
/// more), and handshakes that complete on the client's side while the queue is full can be
/// forgotten by the server, so the client's first write meets a reset.
const BACKLOG: i32 = i32::MAX;

/// A listening socket on `addr`, as `std::net::TcpListener::bind` makes it (close-on-exec,
/// `SO_REUSEADDR` on Unix) but with [`BACKLOG`].
fn listen_on(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

impl TcpListener {
    /// The mio socket, for the descriptor traits.
    fn source(&self) -> &mio::net::TcpListener {
        self.io.get()
    }
}

fd_common!(TcpListener);

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

    /// `connect` that gives up after `timeout` with `ErrorKind::TimedOut`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
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
