//! Unix domain datagram sockets: [`UnixDatagram`] (Go: `net.UnixConn` on a `unixgram`
//! socket).

use crate::{Conn, Dir};
use goexec::mio;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;

/// A Unix datagram socket: std's `UnixDatagram`, whose sends and receives park only the
/// calling goroutine. `&UnixDatagram` is shared freely between goroutines (each datagram is
/// one call), and [`try_clone`](UnixDatagram::try_clone) gives another handle.
///
/// # Examples
///
/// ```
/// use goexec_net::UnixDatagram;
///
/// let dir = std::env::temp_dir().join(format!("goexec-doc-dgram-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("server");
/// let _ = std::fs::remove_file(&path);
/// goexec::run(move || {
///     let server = UnixDatagram::bind(&path).unwrap();
///     let client = UnixDatagram::unbound().unwrap();
///     client.connect(&path).unwrap();
///     let echo = goexec::spawn(move || {
///         let mut buf = [0u8; 16];
///         let (n, from) = server.recv_from(&mut buf).unwrap();
///         assert!(from.is_unnamed()); // an unbound sender has no address to answer
///         buf[..n].to_vec()
///     });
///     client.send(b"ping").unwrap();
///     assert_eq!(echo.join().unwrap(), b"ping");
/// });
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct UnixDatagram {
    conn: Conn<mio::net::UnixDatagram>,
}

impl UnixDatagram {
    fn from_mio(s: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            conn: Conn::new(s)?,
        })
    }

    /// A socket bound to the socket file `path` (which must not exist). Call it from a
    /// goroutine.
    ///
    /// # Errors
    ///
    /// As std's `UnixDatagram::bind` (`AddrInUse` when `path` exists, ...); `Unsupported`
    /// outside a goroutine.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address: it can send (after [`connect`](Self::connect), or with
    /// [`send_to`](Self::send_to)), and receive answers only from a connected peer's `send`.
    /// Call it from a goroutine.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::unbound()?)
    }

    /// Two sockets connected to each other. Call it from a goroutine.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_mio(a)?, UnixDatagram::from_mio(b)?))
    }

    /// Fixes the peer: `send` goes to the socket at `path`, and `recv` takes datagrams from it
    /// only.
    ///
    /// # Errors
    ///
    /// As std: `NotFound` when nothing is at `path`, `ConnectionRefused` when no socket is
    /// bound there.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.source().connect(path)
    }

    /// Sends a datagram to the connected peer, waiting while its queue is full.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.conn.retry(Dir::Write, |s| s.send(buf))
    }

    /// Receives a datagram (from the connected peer, if connected); a datagram longer than
    /// `buf` is cut to fit.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn.retry(Dir::Read, |s| s.recv(buf))
    }

    /// Sends a datagram to the socket at `path`, waiting while its queue is full.
    pub fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.conn.retry(Dir::Write, |s| s.send_to(buf, path))
    }

    /// Receives a datagram and its sender's address (unnamed for an unbound sender).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.conn.retry(Dir::Read, |s| s.recv_from(buf))
    }

    /// The address this socket is bound to (unnamed if unbound).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` before [`connect`](Self::connect).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source().peer_addr()
    }

    /// Shuts down the receiving, sending, or both halves: a receive then returns `Ok(0)`, a
    /// send fails with `BrokenPipe`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source().shutdown(how)
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source().take_error()
    }

    /// Another handle to the same socket (sharing its timeouts and deadlines).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            conn: self.conn.share(),
        })
    }

    /// The mio socket, for the descriptor traits.
    fn source(&self) -> &mio::net::UnixDatagram {
        self.conn.io.get()
    }

    fn into_fd(self) -> io::Result<std::os::fd::OwnedFd> {
        self.conn.into_std_fd()
    }
}

timeouts_common!(UnixDatagram);
fd_common!(UnixDatagram);
std_conversions!(
    UnixDatagram,
    std::os::unix::net::UnixDatagram,
    mio::net::UnixDatagram,
    shared
);
fd_owned!(UnixDatagram, std::os::unix::net::UnixDatagram);

impl std::fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}
