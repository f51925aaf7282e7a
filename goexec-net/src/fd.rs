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
