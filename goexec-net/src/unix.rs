//! Unix domain stream sockets: [`UnixListener`] and [`UnixStream`] (Go: `net.UnixListener`,
//! `net.UnixConn`).

use crate::{Conn, Dir, Pollable};
use goexec::mio;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;

/// A Unix socket server. `accept` parks only the calling goroutine.
///
/// # Examples
///
/// ```
/// use goexec_net::{UnixListener, UnixStream};
/// use std::io::{Read, Write};
///
/// let dir = std::env::temp_dir().join(format!("goexec-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("sock");
/// let _ = std::fs::remove_file(&path);
/// goexec::run(move || {
///     let listener = UnixListener::bind(&path).unwrap();
///     goexec::spawn(move || {
///         let (mut c, _) = listener.accept().unwrap();
///         c.write_all(b"hi").unwrap();
///     });
///     let mut s = UnixStream::connect(&path).unwrap();
///     let mut buf = [0u8; 2];
///     s.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"hi");
/// });
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct UnixListener {
    io: Pollable<mio::net::UnixListener>,
}

impl UnixListener {
    /// Binds to the socket file `path` (which must not exist) and listens, with the backlog
    /// of [`TcpListener`](crate::TcpListener). Call it from a goroutine.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let l = crate::listen::unix(path)?;
        let io = l
            .set_nonblocking(true)
            .and_then(|()| Pollable::new(mio::net::UnixListener::from_std(l)));
        // A bind that failed after it made the socket file (outside a goroutine, say)
        // removes it, so that the same call can be made again.
        let io = crate::unlink_on_error(io, path)?;
        Ok(UnixListener { io })
    }

    /// An iterator over incoming connections (Go: a loop around `Accept`).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }

    /// The listener's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get().take_error()
    }

    /// Accepts a connection, parking the goroutine until one arrives. The connection joins
    /// the listener's poller, so this works from any goroutine or thread, also after the
    /// listener's runtime stopped.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, addr) = self.io.accept(|l| l.accept())?;
        let conn = Conn::accepted(&self.io, s)?;
        Ok((UnixStream { conn }, addr))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }
}

impl UnixListener {
    /// The mio socket, for the descriptor traits.
    fn source(&self) -> &mio::net::UnixListener {
        self.io.get()
    }
}

fd_common!(UnixListener);
listener_common!(UnixListener);

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// A Unix stream connection; like [`TcpStream`](crate::TcpStream) otherwise.
pub struct UnixStream {
    conn: Conn<mio::net::UnixStream>,
}

impl UnixStream {
    fn from_mio(s: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            conn: Conn::new(s)?,
        })
    }

    /// Two streams connected to each other (std's `UnixStream::pair`). Call it from a
    /// goroutine.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    /// Connects to the socket at `path`, parking the goroutine until it is connected.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let s = UnixStream::from_mio(mio::net::UnixStream::connect(path)?)?;
        s.conn
            .await_connected(None, |io| io.take_error(), |io| io.peer_addr().map(drop))?;
        Ok(s)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn.io.get().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn.io.get().peer_addr()
    }

    /// Shuts down the read, write, or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.conn.io.get().shutdown(how)
    }

    /// Another handle to the same connection.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            conn: self.conn.share(),
        })
    }
}

stream_common!(UnixStream);

impl UnixStream {
    /// The mio socket, for the descriptor traits.
    fn source(&self) -> &mio::net::UnixStream {
        self.conn.io.get()
    }
}

fd_common!(UnixStream);

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl UnixListener {
    fn from_mio(l: mio::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: Pollable::new(l)?,
        })
    }

    fn into_fd(self) -> io::Result<std::os::fd::OwnedFd> {
        self.io.into_blocking_fd()
    }
}

std_conversions!(
    UnixListener,
    std::os::unix::net::UnixListener,
    mio::net::UnixListener
);
fd_owned!(UnixListener, std::os::unix::net::UnixListener);

impl UnixStream {
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
        self.conn.retry(Dir::Read, |s| crate::peek_fd(s, buf))
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source().take_error()
    }
}

std_conversions!(
    UnixStream,
    std::os::unix::net::UnixStream,
    mio::net::UnixStream,
    shared
);
fd_owned!(UnixStream, std::os::unix::net::UnixStream);
