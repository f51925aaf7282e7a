//! Go's `net` package shape for goexec: sockets on the runtime's netpoller, with
//! blocking-style calls that park only the calling goroutine.
//!
//! Today: [`TcpListener`] and [`TcpStream`] (std-style timeouts and Go-style deadlines,
//! `Read`/`Write` for the stream and for `&TcpStream`, `try_clone` for a reader and a writer
//! goroutine). `UdpSocket` and Unix sockets come next.
//!
//! Sockets are made from a goroutine (they register with its runtime's poller) and can then
//! be used from any goroutine or thread.

mod tcp;

pub use tcp::{TcpListener, TcpStream};

use goexec::mio;
use goexec::netpoll::Registration;
use std::io;
use std::time::Instant;

/// A mio source with its registration; deregistered when dropped, before the socket closes.
struct Pollable<S: mio::event::Source> {
    source: S,
    reg: Registration,
}

impl<S: mio::event::Source> Pollable<S> {
    fn new(mut source: S) -> io::Result<Pollable<S>> {
        let reg = Registration::new(&mut source)?;
        Ok(Pollable { source, reg })
    }

    /// The source, for I/O (mio's sockets do I/O through `&S`, from any number of threads).
    fn get(&self) -> &S {
        &self.source
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.wait_readable(deadline)
    }

    fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.wait_writable(deadline)
    }
}

impl<S: mio::event::Source> Drop for Pollable<S> {
    fn drop(&mut self) {
        self.reg.deregister(&mut self.source);
    }
}
