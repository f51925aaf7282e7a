//! Go's `net` package shape for goexec: `TcpListener`, `TcpStream`, `UdpSocket`,
//! `UnixListener` and `UnixStream` on the runtime's netpoller, with blocking-style calls that
//! park only the calling goroutine.
//!
//! The types arrive with the netpoller (see the project's issues); until then this crate
//! exports nothing.
