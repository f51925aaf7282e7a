//! UDP: [`UdpSocket`] (Go: `net.UDPConn`).

use crate::{resolve, Conn, Dir};
use goexec::mio;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

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

impl UdpSocket {
    fn from_mio(s: mio::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            conn: Conn::new(s)?,
        })
    }

    fn into_fd(self) -> io::Result<std::os::fd::OwnedFd> {
        self.conn.into_std_fd()
    }

    /// Receives a datagram without taking it off the queue, and its sender: the next receive
    /// returns it again. Waits as `recv_from` does.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.conn.retry(Dir::Read, |s| s.peek_from(buf))
    }

    /// Receives a datagram from the connected peer without taking it off the queue. Waits as
    /// `recv` does.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn.retry(Dir::Read, |s| s.peek(buf))
    }

    /// The socket's pending error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source().take_error()
    }

    /// Sets `SO_BROADCAST`: whether datagrams may go to a broadcast address.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.source().set_broadcast(on)
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.source().broadcast()
    }

    /// Sets `IP_TTL`, the time-to-live of the packets sent.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source().ttl()
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the kernel chooses) (`IP_ADD_MEMBERSHIP`).
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.source().join_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group (`IP_DROP_MEMBERSHIP`).
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.source().leave_multicast_v4(multiaddr, interface)
    }

    /// Joins the IPv6 multicast group `multiaddr` on the interface with index `interface`
    /// (0: the kernel chooses) (`IPV6_ADD_MEMBERSHIP`).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.source().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group (`IPV6_DROP_MEMBERSHIP`).
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.source().leave_multicast_v6(multiaddr, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`: whether IPv4 multicast sent here is looped back to this
    /// host's own sockets.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.source().set_multicast_loop_v4(on)
    }

    /// `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.source().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`, the time-to-live of IPv4 multicast sent here.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.source().set_multicast_ttl_v4(ttl)
    }

    /// `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.source().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`, as [`set_multicast_loop_v4`](Self::set_multicast_loop_v4)
    /// for IPv6.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.source().set_multicast_loop_v6(on)
    }

    /// `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.source().multicast_loop_v6()
    }
}

std_conversions!(UdpSocket, std::net::UdpSocket, mio::net::UdpSocket, shared);
fd_owned!(UdpSocket, std::net::UdpSocket);
