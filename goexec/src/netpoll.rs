//! Waiting for I/O readiness on the runtime's network poller: the layer `goexec-net` is built
//! on, open to any [`mio::event::Source`].
//!
//! A [`Registration`] ties a non-blocking source to the current goroutine's runtime. Do the
//! I/O; on `WouldBlock`, [`wait_readable`](Registration::wait_readable) or
//! [`wait_writable`](Registration::wait_writable) parks the goroutine (a thread parks itself)
//! until the poller sees the source ready, then try again: registration is edge-triggered, so
//! a wake means "try", not "will succeed".
//!
//! A registered source can be waited on from any goroutine (of any runtime), thread or async
//! task, also after the runtime it registered with has stopped: that runtime's poller is then
//! polled by a thread of its own, `goexec-netpoll`, started by the first wait, until its last
//! source is deregistered.
//!
//! ```
//! use std::io::{ErrorKind, Read, Write};
//!
//! goexec::run(|| {
//!     let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = std_listener.local_addr().unwrap();
//!     std_listener.set_nonblocking(true).unwrap();
//!     let mut listener = goexec::mio::net::TcpListener::from_std(std_listener);
//!     let reg = goexec::netpoll::Registration::new(&mut listener).unwrap();
//!     let client = std::thread::spawn(move || {
//!         let mut s = std::net::TcpStream::connect(addr).unwrap();
//!         s.write_all(b"hi").unwrap();
//!     });
//!     // accept, parking the goroutine until a connection comes.
//!     let (mut conn, _) = loop {
//!         match listener.accept() {
//!             Ok(c) => break c,
//!             Err(e) if e.kind() == ErrorKind::WouldBlock => reg.wait_readable(None).unwrap(),
//!             Err(e) => panic!("{e}"),
//!         }
//!     };
//!     let conn_reg = goexec::netpoll::Registration::new(&mut conn).unwrap();
//!     let mut buf = [0u8; 2];
//!     let mut got = 0;
//!     while got < 2 {
//!         match conn.read(&mut buf[got..]) {
//!             Ok(n) => got += n,
//!             Err(e) if e.kind() == ErrorKind::WouldBlock => conn_reg.wait_readable(None).unwrap(),
//!             Err(e) => panic!("{e}"),
//!         }
//!     }
//!     assert_eq!(&buf, b"hi");
//!     conn_reg.deregister(&mut conn);
//!     reg.deregister(&mut listener);
//!     client.join().unwrap();
//! });
//! ```

use crate::runtime::netpoll::{self, Dir, Netpoll, PollDesc};
use crate::runtime::timers::instant_to_nanos;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// A source registered with a runtime's network poller (Go: a `pollDesc`). Deregister it
/// before the source is closed; dropping it deregisters nothing (it does not own the source).
///
/// Its waits work from any goroutine, thread or task, also after the runtime's `run` has
/// returned (see the [module docs](self)); a source left registered then keeps that poller's
/// thread, once started, until the process ends.
pub struct Registration {
    np: Arc<Netpoll>,
    desc: Arc<PollDesc>,
}

impl Registration {
    /// Registers `source` (which must be in non-blocking mode, as mio's sources are) with the
    /// current goroutine's runtime, for both directions, edge-triggered.
    ///
    /// # Errors
    ///
    /// The poller's errors, and `ErrorKind::Unsupported` on a thread that is not running a
    /// goroutine (there is no runtime to poll for it).
    pub fn new(source: &mut impl mio::event::Source) -> io::Result<Registration> {
        let Some(np) = netpoll::current() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "goexec: network sources are registered from a goroutine (inside goexec::run); \
                 they can be used from anywhere afterwards",
            ));
        };
        let np = np?;
        let desc = np.register(source)?;
        Ok(Registration { np, desc })
    }

    /// Registers `source` with the same poller as this registration, from any thread, also
    /// after that poller's runtime has stopped (its sources are then polled by a thread of
    /// their own): a connection accepted from a listener belongs with the listener.
    ///
    /// # Errors
    ///
    /// The poller's errors.
    pub fn alongside(&self, source: &mut impl mio::event::Source) -> io::Result<Registration> {
        let desc = self.np.register(source)?;
        Ok(Registration {
            np: self.np.clone(),
            desc,
        })
    }

    /// Waits until the source may be readable (or hit an error or end of stream), or until
    /// `deadline` or the registration's read deadline
    /// ([`set_read_deadline`](Registration::set_read_deadline)), whichever is first. Then
    /// retry the read.
    ///
    /// # Errors
    ///
    /// `ErrorKind::TimedOut` when a deadline passes first; `ErrorKind::NotConnected` if the
    /// registration was deregistered meanwhile.
    pub fn wait_readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.wait(Dir::Read, deadline, None)
    }

    /// A stamp of what the poller has reported for reading so far: every report moves it.
    /// Take it just before a read; if that read found the source empty (a stream read
    /// shorter than its buffer), [`wait_readable_since`](Registration::wait_readable_since)
    /// with it waits without first trying a read that would only say `WouldBlock`.
    pub fn read_stamp(&self) -> u64 {
        self.desc.read_stamp()
    }

    /// As [`wait_readable`](Registration::wait_readable), for a caller whose read, started
    /// after `stamp` was taken, found the source empty: returns at once if the poller reported
    /// the source for reading since `stamp`, or ever reported it closed for reading or in
    /// error (so an end of stream queued behind the data that read returned is seen, even
    /// when its edge was spent on a wake); otherwise waits for the next report. Unlike
    /// `wait_readable`, it does not depend on who spent the edges in between.
    ///
    /// # Errors
    ///
    /// As [`wait_readable`](Registration::wait_readable).
    pub fn wait_readable_since(&self, stamp: u64, deadline: Option<Instant>) -> io::Result<()> {
        self.wait(Dir::Read, deadline, Some(stamp))
    }

    /// As [`wait_readable`](Registration::wait_readable), for writing.
    pub fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.wait(Dir::Write, deadline, None)
    }

    /// Whether the poller has reported the source's read side hung up: the end of a stream,
    /// or a socket shut down for reading. Final; every read wait returns at once from then
    /// on. A read that still says `WouldBlock` then (a datagram socket shut down for
    /// reading) will never be ready: the caller must not wait again.
    pub fn read_hung_up(&self) -> bool {
        self.desc.read_hung_up()
    }

    /// The async form of [`wait_readable`](Registration::wait_readable): `Ready(Ok(()))` when
    /// the source may be readable (retry the read; on `WouldBlock` poll again), else
    /// `Pending` with the task's waker registered: the poller wakes it on the next edge.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.np.poll_ready(&self.desc, Dir::Read, cx)
    }

    /// The async form of [`wait_writable`](Registration::wait_writable).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.np.poll_ready(&self.desc, Dir::Write, cx)
    }

    /// Go's `SetReadDeadline` for the source: every read wait ends with
    /// `ErrorKind::TimedOut` once `deadline` has passed (None: no deadline), beside the
    /// deadline each wait is given. Works from any goroutine or thread, at any time: waits
    /// already in progress see it (one moved earlier wakes them; one moved later lets them
    /// wait on), and a deadline that has passed fails waits at once, ready or not (see
    /// [`prepare_read`](Registration::prepare_read)).
    pub fn set_read_deadline(&self, deadline: Option<Instant>) {
        self.np
            .set_deadline(&self.desc, Dir::Read, deadline.map(instant_to_nanos));
    }

    /// As [`set_read_deadline`](Registration::set_read_deadline), for writing.
    pub fn set_write_deadline(&self, deadline: Option<Instant>) {
        self.np
            .set_deadline(&self.desc, Dir::Write, deadline.map(instant_to_nanos));
    }

    /// Go's `pollDesc.prepareRead`: `ErrorKind::TimedOut` if the read deadline has passed,
    /// so an operation fails before it tries the source (Go fails a read past its deadline
    /// even when data is waiting). Costs an atomic load, and a clock read only while a
    /// deadline is set.
    ///
    /// # Errors
    ///
    /// `TimedOut`, as said.
    pub fn prepare_read(&self) -> io::Result<()> {
        if self.desc.expired(Dir::Read) {
            return Err(timed_out());
        }
        Ok(())
    }

    /// As [`prepare_read`](Registration::prepare_read), for writing.
    ///
    /// # Errors
    ///
    /// `TimedOut` if the write deadline has passed.
    pub fn prepare_write(&self) -> io::Result<()> {
        if self.desc.expired(Dir::Write) {
            return Err(timed_out());
        }
        Ok(())
    }

    fn wait(&self, dir: Dir, deadline: Option<Instant>, since: Option<u64>) -> io::Result<()> {
        let when = deadline.map(instant_to_nanos);
        if self.np.wait(&self.desc, dir, when, since)? {
            Ok(())
        } else {
            Err(timed_out())
        }
    }

    /// Removes the source from the poller; anyone still waiting on it wakes with
    /// `ErrorKind::NotConnected`.
    pub fn deregister(&self, source: &mut impl mio::event::Source) {
        self.np.deregister(source, &self.desc);
    }
}

/// A wait's deadline passed (Go: `os.ErrDeadlineExceeded`, "i/o timeout").
fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o deadline reached")
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").finish_non_exhaustive()
    }
}
