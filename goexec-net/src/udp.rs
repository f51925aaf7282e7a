//! UDP: [`UdpSocket`] (Go: `net.UDPConn`).

use crate::{resolve, Conn, Dir};
use goexec::mio;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};

/// A UDP socket. Sends and receives park only the calling goroutine; `&UdpSocket` is shared
/// freely between goroutines (each datagram is one call).
///
/// # Examples
///
/// ```
/// use goexec_net::UdpSocket;
///
/// goexec::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    conn: Conn<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (the first address that works). Call it from a goroutine.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve(addr)? {
            match std::net::UdpSocket::bind(a) {
                Ok(s) => {
                    s.set_nonblocking(true)?;
                    return Ok(UdpSocket {
                        conn: Conn::new(mio::net::UdpSocket::from_std(s))?,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no address")))
    }

    /// Sends a datagram to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = resolve(addr)?[0];
        self.conn.retry(Dir::Write, |s| s.send_to(buf, to))
    }

    /// Receives a datagram and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.conn.retry(Dir::Read, |s| s.recv_from(buf))
    }

    /// Fixes the peer: `send` and `recv` then talk to it only.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let to = resolve(addr)?[0];
        self.conn.io.get().connect(to)
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.conn.retry(Dir::Write, |s| s.send(buf))
    }

    /// Receives from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn.retry(Dir::Read, |s| s.recv(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn.io.get().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn.io.get().peer_addr()
    }

    /// Another handle to the same socket.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            conn: self.conn.share(),
        })
    }
}

timeouts_common!(UdpSocket);

impl UdpSocket {
    /// The mio socket, for the descriptor traits.
    fn source(&self) -> &mio::net::UdpSocket {
        self.conn.io.get()
    }
}

fd_common!(UdpSocket);

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}
