//! The socket types' shared surface.

/// What every socket with a `conn: Conn<_>` field has the same way: std timeouts and Go
/// deadlines.
macro_rules! timeouts_common {
    ($t:ty) => {
        impl $t {
            /// std's read timeout: each read waits at most this long, then fails with
            /// `TimedOut`. `Some(Duration::ZERO)` is rejected, as std does.
            pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                $crate::check_timeout(t)?;
                self.conn.update(|l| l.0.timeout = t);
                Ok(())
            }

            /// std's write timeout.
            pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                $crate::check_timeout(t)?;
                self.conn.update(|l| l.1.timeout = t);
                Ok(())
            }

            /// The read timeout.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.conn.limits().0.timeout)
            }

            /// The write timeout.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.conn.limits().1.timeout)
            }

            /// Go's `SetReadDeadline`: reads fail with `TimedOut` from `deadline` on (None:
            /// never), on every handle of the socket (`try_clone`). Callable from any
            /// goroutine or thread, at any time: a read already waiting ends once the new
            /// deadline has passed, and waits on if it moved later, so
            /// `set_read_deadline(Some(Instant::now()))` is Go's way to cancel a read. A read
            /// past the deadline fails even if data is waiting; clear or move the deadline to
            /// read again. The async reads (`AsyncRead`) ignore deadlines and timeouts: drop
            /// the future, or wrap it in `goexec::time::timeout`.
            pub fn set_read_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.conn.io.reg.set_read_deadline(deadline);
                Ok(())
            }

            /// Go's `SetWriteDeadline`: as `set_read_deadline`, for writes.
            pub fn set_write_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.conn.io.reg.set_write_deadline(deadline);
                Ok(())
            }

            /// Go's `SetDeadline`: both directions.
            pub fn set_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.set_read_deadline(deadline)?;
                self.set_write_deadline(deadline)
            }
        }
    };
}

/// What every stream type has the same way: the timeouts, and `Read`/`Write` for the type and
/// its shared reference.
macro_rules! stream_common {
    ($t:ty) => {
        timeouts_common!($t);

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.conn.read(buf)
            }
        }

        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.conn.read(buf)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.conn.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.conn.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        async_io!($t);
        async_io!(&$t);
    };
}

/// `futures::io::AsyncRead` and `AsyncWrite` for a stream type (or a reference to one), on
/// the same poll descriptor as the blocking calls: a pending operation leaves the task's
/// waker there and the poller wakes it. Closing shuts the write half down.
macro_rules! async_io {
    ($t:ty) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.conn.poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.conn.poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown(std::net::Shutdown::Write))
            }
        }
    };
}

/// `from_std` and `into_std` for a socket type with `from_mio(mio socket)` and
/// `into_fd(self)`: a listener, or with `shared` a type with `try_clone`, whose handles
/// share one socket.
macro_rules! std_conversions {
    ($t:ident, $std:ty, $mio:ty) => {
        std_conversions!(
            @ $t, $std, $mio,
            "The std listener, deregistered from the poller and in blocking mode, as std's \
             are (a deadline set here does not carry over). A listener that was closed \
             (`close`) gives the closed error instead."
        );
    };
    ($t:ident, $std:ty, $mio:ty, shared) => {
        std_conversions!(
            @ $t, $std, $mio,
            "The std socket, deregistered from the poller and in blocking mode, as std's \
             sockets are (the timeouts and deadlines set here do not carry over).\n\n\
             While other handles to the socket remain (`try_clone`), it is a duplicate \
             descriptor (std's `try_clone`) and they keep working; it then stays \
             non-blocking, since that flag belongs to the socket, which they share (a \
             blocking socket would block their threads): set it blocking once they are gone."
        );
    };
    (@ $t:ident, $std:ty, $mio:ty, $into_doc:expr) => {
        impl $t {
            #[doc = concat!(
                "A `", stringify!($t), "` on `socket`: sets it non-blocking and registers it ",
                "with the current goroutine's runtime. Call it from a goroutine; ",
                "[`FromRawFd`](std::os::fd::FromRawFd) is this.\n\n",
                "# Errors\n\n",
                "`ErrorKind::Unsupported` outside a goroutine (as `bind` and `connect`), and the ",
                "poller's errors; the socket is closed then."
            )]
            pub fn from_std(socket: $std) -> std::io::Result<$t> {
                socket.set_nonblocking(true)?;
                <$t>::from_mio(<$mio>::from_std(socket))
            }

            #[doc = $into_doc]
            ///
            /// # Errors
            ///
            /// Setting blocking mode; duplicating the descriptor (out of descriptors).
            pub fn into_std(self) -> std::io::Result<$std> {
                self.into_fd().map(<$std>::from)
            }
        }
    };
}

/// What both listener types have the same way: Go's `Close` and `SetDeadline`.
macro_rules! listener_common {
    ($t:ty) => {
        impl $t {
            /// Go's `Listener.Close`: stops listening. Accepts waiting in any goroutine or
            /// thread fail at once, and later ones too, with an `ErrorKind::NotConnected`
            /// error saying "use of closed network connection" ([`is_closed`](crate::is_closed)
            /// is true of it): an accept loop's signal to stop. Connections the kernel had
            /// queued but nobody accepted are ended (a TCP client sees a reset, a Unix one
            /// the end of the stream); new ones are refused. The descriptor
            /// itself is released when the listener drops (share it with an `Arc` to close it
            /// from another goroutine while one accepts).
            ///
            /// # Errors
            ///
            /// The same closed error if the listener was already closed.
            pub fn close(&self) -> std::io::Result<()> {
                self.io.close(|l| l.accept().is_ok())
            }

            /// Go's `SetDeadline` on a listener: accepts fail with `ErrorKind::TimedOut` from
            /// `deadline` on (None: never). As with a stream's read deadline, an accept already
            /// waiting sees a deadline set from any goroutine or thread.
            ///
            /// # Errors
            ///
            /// The closed error once the listener was closed.
            pub fn set_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                if self.io.closed.load(std::sync::atomic::Ordering::Acquire) {
                    return Err($crate::closed_error());
                }
                self.io.reg.set_read_deadline(deadline);
                Ok(())
            }
        }
    };
}
