//! Listening sockets with a server's backlog: std listens with 128 (TCP), and a server takes
//! bursts of thousands of connections, whose SYNs the kernel drops while the accept queue is
//! full (the clients then wait in SYN retries: 1 s, 3 s, 7 s, ...).

use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

/// The accept queue's length, Go's choice: the kernel's cap, `net.core.somaxconn` (read
/// once, at most 65535), or 4096 (Linux's default since 5.4) where that cannot be read.
pub(crate) fn backlog() -> i32 {
    static BACKLOG: OnceLock<i32> = OnceLock::new();
    *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&n| n > 0)
            .map_or(4096, |n| n.min(65535))
    })
}

/// A TCP listener on `addr` as std makes one (close-on-exec, `SO_REUSEADDR`), listening with
/// [`backlog`].
pub(crate) fn tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog())?;
    Ok(socket.into())
}

/// A Unix stream listener on `path`, listening with [`backlog`].
pub(crate) fn unix(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    // std's checks and errors for the path (no interior NUL, not too long).
    std::os::unix::net::SocketAddr::from_pathname(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(backlog())?;
    Ok(socket.into())
}
