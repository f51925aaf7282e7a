//! The descriptor traits of std's sockets (`AsRawFd`, `AsFd`), so that code written for std
//! (`socket2::SockRef::from(&s)`, `libc::setsockopt`) reaches a goexec socket's options.

/// `AsRawFd` and `AsFd` for a socket type whose `source()` is its mio socket.
macro_rules! fd_common {
    ($t:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(self.source())
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.source())
            }
        }
    };
}

/// `IntoRawFd` and `FromRawFd` for a socket type with `into_std` and `from_std`, through its
/// std counterpart `$std`.
macro_rules! fd_owned {
    ($t:ident, $std:ty) => {
        impl std::os::fd::IntoRawFd for $t {
            /// The descriptor, as [`into_std`](Self::into_std) leaves it: deregistered and in
            /// blocking mode, or a duplicate if other handles to the socket remain.
            ///
            /// # Panics
            ///
            /// If `into_std` fails: it duplicates the descriptor while other handles remain,
            /// which fails when the process is out of descriptors, and it fails on a
            /// listener after [`close`](crate::TcpListener::close).
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                match self.into_std() {
                    Ok(s) => std::os::fd::IntoRawFd::into_raw_fd(s),
                    Err(e) => panic!(
                        "goexec_net::{}::into_raw_fd: {e} (into_std returns this error instead)",
                        stringify!($t)
                    ),
                }
            }
        }

        impl std::os::fd::FromRawFd for $t {
            /// [`from_std`](Self::from_std) on the socket: it is set non-blocking and
            /// registered with the current goroutine's runtime.
            ///
            /// # Panics
            ///
            /// Outside a goroutine (there is no runtime to register with), or when the poller
            /// refuses the descriptor: the trait cannot return the error, and `from_std`
            /// does.
            ///
            /// # Safety
            ///
            /// As std's: `fd` is an open socket of this type, owned by nothing else.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: the caller's promise above is std's `from_raw_fd` contract.
                let s = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                match <$t>::from_std(s) {
                    Ok(s) => s,
                    Err(e) => panic!(
                        "goexec_net::{}::from_raw_fd: {e} (from_std returns this error instead)",
                        stringify!($t)
                    ),
                }
            }
        }
    };
}
