//! The std surface: conversions from and into std's sockets (`from_std`, `into_std`,
//! `FromRawFd`, `IntoRawFd`), `peek`, std's socket options, and listeners that take a burst
//! of connections.

mod common;

use common::{rt, watchdog};
use goexec_net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Whether `fd` is in non-blocking mode (`O_NONBLOCK`).
fn nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL only reads the flags of a descriptor that `fd` keeps open.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "fcntl: {}", std::io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// A fresh directory for socket files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("goexec-std-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A connected pair: the goexec end (accepted) and a std client.
fn tcp_pair() -> (TcpStream, std::net::TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    (l.accept().unwrap().0, client)
}

fn read_n(mut r: impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn tcp_from_std_and_into_std_keep_the_connection() {
    let _w = watchdog("tcp_from_std_and_into_std_keep_the_connection", 60);
    rt(2).run(|| {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        assert!(nonblocking(&listener));
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().unwrap();
        client.write_all(b"one").unwrap();
        assert_eq!(read_n(&s, 3), b"one");

        // Out to std: blocking, deregistered, the same connection.
        let fd = s.as_raw_fd();
        let mut std_s = s.into_std().unwrap();
        assert_eq!(
            std_s.as_raw_fd(),
            fd,
            "the last handle gives its own socket"
        );
        assert!(!nonblocking(&std_s));
        client.write_all(b"two").unwrap();
        assert_eq!(read_n(&std_s, 3), b"two");
        std_s.write_all(b"back").unwrap();
        assert_eq!(read_n(&client, 4), b"back");

        // And in again: the goexec handle waits on the poller for what comes next.
        let s = TcpStream::from_std(std_s).unwrap();
        assert!(nonblocking(&s));
        let reader = goexec::spawn(move || read_n(&s, 5));
        client.write_all(b"three").unwrap();
        assert_eq!(reader.join().unwrap(), b"three");

        // The listener out to std accepts (blocking) as std's does.
        let std_listener = listener.into_std().unwrap();
        assert!(!nonblocking(&std_listener));
        let c2 = std::net::TcpStream::connect(addr).unwrap();
        let (accepted, peer) = std_listener.accept().unwrap();
        assert_eq!(peer, c2.local_addr().unwrap());
        drop(accepted);

        // A closed listener listens no more: into_std says so.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        closed.close().unwrap();
        let err = closed.into_std().unwrap_err();
        assert!(goexec_net::is_closed(&err), "{err}");
    });
}

#[test]
fn into_std_with_clones_alive_gives_a_duplicate_and_the_clones_keep_working() {
    let _w = watchdog("into_std_with_clones_alive", 60);
    rt(2).run(|| {
        let (s, mut client) = tcp_pair();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let clone = s.try_clone().unwrap();
        let fd = s.as_raw_fd();
        let mut dup = s.into_std().unwrap();
        assert_ne!(dup.as_raw_fd(), fd, "a duplicate while a clone remains");
        // Non-blocking: the flag is the socket's, shared with the clone.
        assert!(nonblocking(&dup));
        assert!(nonblocking(&clone));

        // The clone still waits on the poller: the data is written once it waits.
        let reader = goexec::spawn(move || (read_n(&clone, 4), clone));
        while !goexec::runtime::dump().contains("[IO wait") {
            goexec::yield_now();
        }
        client.write_all(b"wake").unwrap();
        let (got, clone) = reader.join().unwrap();
        assert_eq!(got, b"wake");

        // Both write to the same connection.
        dup.write_all(b"ab").unwrap();
        (&clone).write_all(b"cd").unwrap();
        assert_eq!(read_n(&client, 4), b"abcd");

        // The last handle gives the socket itself; the duplicate keeps it open.
        let own = clone.into_std().unwrap();
        assert_eq!(own.as_raw_fd(), fd);
        assert!(!nonblocking(&own));
        drop(own);
        dup.write_all(b"still").unwrap();
        assert_eq!(read_n(&client, 5), b"still");
    });
}

#[test]
fn into_raw_fd_and_from_raw_fd_round_trip_every_type() {
    let _w = watchdog("into_raw_fd_and_from_raw_fd_round_trip_every_type", 60);
    let dir = temp_dir("rawfd");
    let d = dir.clone();
    rt(2).run(move || {
        // TCP: listener and stream.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // SAFETY: the descriptor comes from `into_raw_fd`, which gave up owning it.
        let l = unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) };
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        let raw = s.into_raw_fd();
        // SAFETY: as above.
        let s = unsafe { TcpStream::from_raw_fd(raw) };
        assert_eq!(s.as_raw_fd(), raw);
        client.write_all(b"tcp").unwrap();
        assert_eq!(read_n(&s, 3), b"tcp");

        // UDP.
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        // SAFETY: as above.
        let u = unsafe { UdpSocket::from_raw_fd(u.into_raw_fd()) };
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"udp", u.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(u.recv_from(&mut buf).unwrap().0, 3);

        // Unix: listener and stream.
        let path = d.join("s");
        let ul = UnixListener::bind(&path).unwrap();
        // SAFETY: as above.
        let ul = unsafe { UnixListener::from_raw_fd(ul.into_raw_fd()) };
        let mut uc = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (us, _) = ul.accept().unwrap();
        // SAFETY: as above.
        let us = unsafe { UnixStream::from_raw_fd(us.into_raw_fd()) };
        uc.write_all(b"unix").unwrap();
        assert_eq!(read_n(&us, 4), b"unix");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn from_std_outside_a_goroutine_is_unsupported_and_from_raw_fd_panics_saying_why() {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = UdpSocket::from_std(s).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);

    let fd = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .into_raw_fd();
    let panic = std::panic::catch_unwind(|| {
        // SAFETY: `fd` is an open UDP socket that nothing else owns.
        unsafe { UdpSocket::from_raw_fd(fd) }
    })
    .unwrap_err();
    let msg = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        msg.contains("from_raw_fd") && msg.contains("goroutine"),
        "{msg}"
    );
}

#[test]
fn peek_waits_for_data_and_does_not_consume_it() {
    let _w = watchdog("peek_waits_for_data_and_does_not_consume_it", 60);
    let dir = temp_dir("peek");
    let d = dir.clone();
    rt(2).run(move || {
        let (s, mut client) = tcp_pair();
        let peeker = goexec::spawn(move || {
            let mut buf = [0u8; 16];
            let n = s.peek(&mut buf).unwrap();
            (buf[..n].to_vec(), s)
        });
        while !goexec::runtime::dump().contains("[IO wait") {
            goexec::yield_now();
        }
        client.write_all(b"hello").unwrap();
        let (peeked, s) = peeker.join().unwrap();
        assert_eq!(peeked, b"hello");
        let mut buf = [0u8; 3];
        assert_eq!(s.peek(&mut buf).unwrap(), 3);
        assert_eq!(&buf, b"hel");
        assert_eq!(s.peek(&mut []).unwrap(), 0);
        assert_eq!(read_n(&s, 5), b"hello", "peek consumed nothing");

        // The read timeout bounds a peek.
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let start = Instant::now();
        assert_eq!(
            s.peek(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        assert!(start.elapsed() >= Duration::from_millis(200));

        let path = d.join("s");
        let l = UnixListener::bind(&path).unwrap();
        let mut uc = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (us, _) = l.accept().unwrap();
        uc.write_all(b"unix").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(us.peek(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"unix");
        assert_eq!(read_n(&us, 4), b"unix", "peek consumed nothing");
        us.set_read_deadline(Some(Instant::now() + Duration::from_millis(100)))
            .unwrap();
        assert_eq!(us.peek(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(us.take_error().unwrap().is_none());
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tcp_ttl_and_take_error() {
    rt(1).run(|| {
        let (s, _client) = tcp_pair();
        s.set_ttl(42).unwrap();
        assert_eq!(s.ttl().unwrap(), 42);
        assert!(s.take_error().unwrap().is_none());
    });
}

#[test]
fn udp_options_as_std_names_them() {
    rt(1).run(|| {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_broadcast(true).unwrap();
        assert!(u.broadcast().unwrap());
        u.set_broadcast(false).unwrap();
        assert!(!u.broadcast().unwrap());
        u.set_ttl(7).unwrap();
        assert_eq!(u.ttl().unwrap(), 7);
        u.set_multicast_ttl_v4(3).unwrap();
        assert_eq!(u.multicast_ttl_v4().unwrap(), 3);
        u.set_multicast_loop_v4(false).unwrap();
        assert!(!u.multicast_loop_v4().unwrap());
        u.set_multicast_loop_v4(true).unwrap();
        assert!(u.multicast_loop_v4().unwrap());

        let group = Ipv4Addr::new(239, 255, 43, 21);
        let any = UdpSocket::bind("0.0.0.0:0").unwrap();
        match any.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED) {
            Ok(()) => {
                // Joined twice is an error; left, it can be joined again.
                assert!(any
                    .join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                    .is_err());
                any.leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                    .unwrap();
                assert!(any
                    .leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                    .is_err());
            }
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                println!("note: no IPv4 multicast route here ({e}); join/leave not checked")
            }
            Err(e) => panic!("join_multicast_v4: {e}"),
        }

        match UdpSocket::bind("[::1]:0") {
            Ok(u6) => {
                u6.set_multicast_loop_v6(false).unwrap();
                assert!(!u6.multicast_loop_v6().unwrap());
                u6.set_multicast_loop_v6(true).unwrap();
                assert!(u6.multicast_loop_v6().unwrap());
                let group6: Ipv6Addr = "ff02::1:3".parse().unwrap();
                match u6.join_multicast_v6(&group6, 0) {
                    Ok(()) => u6.leave_multicast_v6(&group6, 0).unwrap(),
                    Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                        println!("note: no IPv6 multicast route here ({e}); join not checked")
                    }
                    Err(e) => panic!("join_multicast_v6: {e}"),
                }
            }
            Err(e) => println!("note: no IPv6 loopback here ({e}); v6 options not checked"),
        }
    });
}

#[test]
fn udp_peek_keeps_the_datagram_and_take_error_reports_a_refusal() {
    let _w = watchdog("udp_peek_keeps_the_datagram", 60);
    rt(2).run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peeker = {
            let b = b.try_clone().unwrap();
            goexec::spawn(move || {
                let mut buf = [0u8; 16];
                let (n, from) = b.peek_from(&mut buf).unwrap();
                (buf[..n].to_vec(), from)
            })
        };
        while !goexec::runtime::dump().contains("[IO wait") {
            goexec::yield_now();
        }
        a.send_to(b"dgram", b.local_addr().unwrap()).unwrap();
        assert_eq!(
            peeker.join().unwrap(),
            (b"dgram".to_vec(), a.local_addr().unwrap())
        );
        b.connect(a.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.peek(&mut buf).unwrap(), 5);
        assert_eq!(b.recv(&mut buf).unwrap(), 5, "peek consumed nothing");
        assert_eq!(&buf[..5], b"dgram");
        b.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert_eq!(b.peek(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);

        // A connected socket's send to a closed port: the ICMP refusal lands in SO_ERROR.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(c.take_error().unwrap().is_none());
        c.connect(closed_addr).unwrap();
        c.send(b"anyone?").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            if let Some(e) = c.take_error().unwrap() {
                break e;
            }
            assert!(Instant::now() < deadline, "no ICMP refusal in 10 s");
            goexec::yield_now();
        };
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        assert!(c.take_error().unwrap().is_none(), "reading clears it");
    });
}

/// 600 clients connect at once to a listener nobody accepts from yet: every connect
/// completes, in the accept queue. With std's backlog of 128 the kernel would drop the SYNs
/// beyond it and those clients would wait in SYN retries (1 s, 3 s, 7 s, ...), here until
/// their timeout.
#[test]
fn a_listener_takes_a_burst_of_600_connects_before_accepting() {
    const CLIENTS: usize = 600;
    let _w = watchdog("a_listener_takes_a_burst_of_600_connects", 120);
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    if somaxconn < CLIENTS {
        println!("note: net.core.somaxconn is {somaxconn} here, below {CLIENTS}; not checked");
        return;
    }
    let failed = rt(2).run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                goexec::spawn(move || {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| e.kind())
                })
            })
            .collect();
        let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let failed = results.iter().filter(|r| r.is_err()).count();
        // Now accept them all: every connection is there.
        if failed == 0 {
            for _ in 0..CLIENTS {
                listener.accept().unwrap();
            }
        }
        drop(results);
        failed
    });
    assert_eq!(failed, 0, "connects that did not complete in 10 s");
}

#[test]
fn bad_input_gives_errors_not_panics() {
    let dir = temp_dir("bad");
    let d = dir.clone();
    rt(1).run(move || {
        // Taken ports and malformed addresses, as before.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            TcpListener::bind(l.local_addr().unwrap())
                .unwrap_err()
                .kind(),
            ErrorKind::AddrInUse
        );
        assert!(TcpListener::bind("256.0.0.1:80").is_err());
        assert_eq!(
            TcpListener::bind(&[][..] as &[std::net::SocketAddr])
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        // Unix paths: in use, interior NUL, too long.
        let path = d.join("l");
        let _ul = UnixListener::bind(&path).unwrap();
        assert_eq!(
            UnixListener::bind(&path).unwrap_err().kind(),
            ErrorKind::AddrInUse
        );
        assert_eq!(
            UnixListener::bind(d.join("a\0b")).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            UnixListener::bind(d.join("x".repeat(200)))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            UnixStream::connect(d.join("missing")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_unix_bind_that_fails_outside_a_goroutine_leaves_no_socket_file() {
    let _w = watchdog("a_unix_bind_that_fails_outside_a_goroutine", 60);
    let dir = temp_dir("bind-outside");
    let (l, d) = (dir.join("l"), dir.join("d"));
    let e = UnixListener::bind(&l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(!l.exists(), "the listener's socket file stayed");
    let e = goexec_net::UnixDatagram::bind(&d).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(!d.exists(), "the datagram socket's file stayed");
    // The same calls in a goroutine work; an existing file is still an error, and kept.
    rt(1).run(move || {
        let _l = UnixListener::bind(&l).unwrap();
        let _d = goexec_net::UnixDatagram::bind(&d).unwrap();
        let e = UnixListener::bind(&l).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        assert!(l.exists());
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn connect_timeout_of_zero_is_invalid_input_as_std_has_it() {
    rt(1).run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let e = TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    });
}

#[test]
fn unix_stream_pair_unix_incoming_and_listener_options() {
    let _w = watchdog("unix_stream_pair_unix_incoming_and_listener_options", 60);
    let dir = temp_dir("pair-incoming");
    let path = dir.join("s");
    rt(2).run(move || {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(b"ping").unwrap();
        assert_eq!(read_n(&b, 4), b"ping");
        let l = UnixListener::bind(&path).unwrap();
        let c = UnixStream::connect(&path).unwrap();
        let s = l.incoming().next().unwrap().unwrap();
        (&c).write_all(b"x").unwrap();
        assert_eq!(read_n(&s, 1), b"x");
        assert!(l.take_error().unwrap().is_none());
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        t.set_ttl(42).unwrap();
        assert_eq!(t.ttl().unwrap(), 42);
        assert!(t.take_error().unwrap().is_none());
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
