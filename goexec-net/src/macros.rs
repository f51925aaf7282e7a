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
            /// never).
            pub fn set_read_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.conn.update(|l| l.0.deadline = deadline);
                Ok(())
            }

            /// Go's `SetWriteDeadline`.
            pub fn set_write_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.conn.update(|l| l.1.deadline = deadline);
                Ok(())
            }

            /// Go's `SetDeadline`: both directions.
            pub fn set_deadline(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.conn.update(|l| {
                    l.0.deadline = deadline;
                    l.1.deadline = deadline;
                });
                Ok(())
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
/// `into_fd(self)`; `shared` for types with `try_clone`, whose handles share one socket.
macro_rules! std_conversions {
    ($t:ident, $std:ty, $mio:ty) => {
        std_conversions!(
            @ $t, $std, $mio,
            "The std socket, deregistered from the poller and in blocking mode, as std's \
             sockets are (the timeouts and deadlines set here do not carry over)."
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
