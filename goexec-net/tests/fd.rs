//! The descriptor traits: socket2 (and anything written for std's sockets) reaches a goexec
//! socket's options through `AsFd` / `AsRawFd`.

use goexec_net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use socket2::SockRef;
use std::os::fd::{AsFd, AsRawFd};

#[test]
fn socket2_sets_options_through_as_fd() {
    goexec::run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let r = SockRef::from(&c);
        r.set_keepalive(true).unwrap();
        assert!(r.keepalive().unwrap());
        r.set_linger(Some(std::time::Duration::ZERO)).unwrap();
        assert_eq!(r.linger().unwrap(), Some(std::time::Duration::ZERO));
        assert!(SockRef::from(&l).reuse_address().unwrap());
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        SockRef::from(&u).set_broadcast(true).unwrap();
        assert!(SockRef::from(&u).broadcast().unwrap());
        assert_eq!(u.as_raw_fd(), u.as_fd().as_raw_fd());
        let dir = std::env::temp_dir().join(format!("goexec-fd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let ul = UnixListener::bind(&path).unwrap();
        let us = UnixStream::connect(&path).unwrap();
        SockRef::from(&us).set_recv_buffer_size(1 << 16).unwrap();
        assert!(ul.as_raw_fd() >= 0);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}
