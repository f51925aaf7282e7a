//! Listening sockets with a server's backlog: std listens with 128 (TCP), and a server takes
//! bursts of thousands of connections, whose SYNs the kernel drops while the accept queue is
//! full (the clients then wait in SYN retries: 1 s, 3 s, 7 s, ...).

use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::path::Path;

/// The accept queue's length asked for: Go's choice, the kernel's cap, `net.core.somaxconn`
/// (4096 by default since Linux 5.4). Linux cuts a larger backlog down to that cap, so asking
/// for the most any kernel takes (65535; older kernels keep it in 16 bits) gives it without
/// reading `/proc` as Go does.
const BACKLOG: i32 = 65535;

/// A TCP listener on `addr` as std makes one (close-on-exec, `SO_REUSEADDR`), listening with
/// [`BACKLOG`].
pub(crate) fn tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// A Unix stream listener on `path`, listening with [`BACKLOG`].
pub(crate) fn unix(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    // std's checks and errors for the path (no interior NUL, not too long).
    std::os::unix::net::SocketAddr::from_pathname(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
