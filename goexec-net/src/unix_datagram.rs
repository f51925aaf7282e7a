//! Unix domain datagram sockets: [`UnixDatagram`] (Go: `net.UnixConn` on a `unixgram`
//! socket).

use crate::{Conn, Dir};
use goexec::mio;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

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
    /// Whether [`shutdown`](UnixDatagram::shutdown) closed the receiving half (shared by
    /// the handles). A non-blocking receive then says `WouldBlock` once the queue is empty,
    /// where std's blocking one returns 0, and no edge will come; this says which it is.
    read_shut: Arc<AtomicBool>,
}

impl UnixDatagram {
    fn from_mio(s: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            conn: Conn::new(s)?,
            read_shut: Default::default(),
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
        let path = path.as_ref();
        let s = UnixDatagram::from_mio(mio::net::UnixDatagram::bind(path)?);
        // As UnixListener::bind: a failed bind leaves no socket file behind.
        crate::unlink_on_error(s, path)
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
    /// `buf` is cut to fit. `Ok(0)` once the receiving half is shut down and the queue empty.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn
            .retry(Dir::Read, |s| self.unless_shut(s.recv(buf), || 0))
    }

    /// Sends a datagram to the socket at `path`, waiting while its queue is full.
    pub fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.conn.retry(Dir::Write, |s| s.send_to(buf, path))
    }

    /// Receives a datagram and its sender's address (unnamed for an unbound sender).
    /// `(0, unnamed)` once the receiving half is shut down and the queue empty.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.conn.retry(Dir::Read, |s| {
            self.unless_shut(s.recv_from(buf), || {
                // std's unnamed address: the empty path.
                let unnamed = SocketAddr::from_pathname("").expect("the empty path is valid");
                (0, unnamed)
            })
        })
    }

    /// `r`, or `shut()` if it is `WouldBlock` and the receiving half is shut down (what
    /// std's blocking receive returns then).
    fn unless_shut<R>(&self, r: io::Result<R>, shut: impl FnOnce() -> R) -> io::Result<R> {
        match r {
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    && (self.read_shut.load(SeqCst) || self.conn.io.reg.read_hung_up()) =>
            {
                Ok(shut())
            }
            r => r,
        }
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

    /// Shuts down the receiving, sending, or both halves: a receive then returns what is
    /// queued, then `Ok(0)` (also one waiting now), and a send fails with `BrokenPipe`. A
    /// shutdown made through the descriptor (socket2, libc) does the same once the poller
    /// has reported it.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let read = matches!(how, Shutdown::Read | Shutdown::Both);
        // Marked first: the shutdown wakes receivers waiting now, which must see the mark.
        if read && !self.read_shut.swap(true, SeqCst) {
            let r = self.source().shutdown(how);
            if r.is_err() {
                self.read_shut.store(false, SeqCst);
            }
            return r;
        }
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
            read_shut: self.read_shut.clone(),
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
