//! TCP on the netpoller: many connections at once with every byte checked, a std client,
//! timeouts, refused connections, and a peer's close.

mod common;

use common::{rt, watchdog};
use goexec_net::{TcpListener, TcpStream};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// An echo server: a goroutine per connection.
fn serve_echo(listener: TcpListener) {
    goexec::spawn(move || loop {
        let Ok((conn, _)) = listener.accept() else {
            continue;
        };
        goexec::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match (&conn).read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if (&conn).write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    });
}

#[test]
fn many_connections_many_round_trips_every_byte_checked() {
    let _w = watchdog("many_connections_many_round_trips_every_byte_checked", 120);
    // 200 concurrent clients x 500 round trips each, at procs 1 and 2.
    for procs in [1, 2] {
        let total = rt(procs).run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            serve_echo(listener);
            let clients: Vec<_> = (0..200u32)
                .map(|c| {
                    goexec::spawn(move || {
                        let mut s = TcpStream::connect(addr).unwrap();
                        s.set_nodelay(true).unwrap();
                        let mut sum = 0u64;
                        for i in 0..500u32 {
                            let msg = [(c % 251) as u8, (i % 253) as u8, 7, (c ^ i) as u8];
                            s.write_all(&msg).unwrap();
                            let mut back = [0u8; 4];
                            s.read_exact(&mut back).unwrap();
                            assert_eq!(back, msg, "client {c} trip {i}");
                            sum += 1;
                        }
                        sum
                    })
                })
                .collect();
            clients.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(total, 200 * 500, "procs {procs}");
    }
}

#[test]
fn a_std_client_against_a_goexec_server() {
    let _w = watchdog("a_std_client_against_a_goexec_server", 120);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        rt(2).run(move || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let (mut conn, peer) = listener.accept().unwrap();
            assert_eq!(conn.peer_addr().unwrap(), peer);
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while conn.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
                line.push(b[0]);
            }
            conn.write_all(&line.iter().rev().copied().collect::<Vec<_>>())
                .unwrap();
        })
    });
    let addr = rx.recv().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"goexec\n").unwrap();
    let mut back = String::new();
    s.read_to_string(&mut back).unwrap();
    assert_eq!(back, "cexeog");
    server.join().unwrap();
}

#[test]
fn read_timeout_and_deadline_return_timed_out_in_about_the_time() {
    let _w = watchdog(
        "read_timeout_and_deadline_return_timed_out_in_about_the_time",
        120,
    );
    rt(1).run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let keep = goexec::spawn(move || listener.accept().map(|(s, _)| s));
        let mut c = TcpStream::connect(addr).unwrap();
        let _server_side = keep.join().unwrap().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let t = Instant::now();
        let err = c.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_secs(2),
            "{took:?}"
        );
        c.set_read_timeout(None).unwrap();
        assert!(c.set_read_timeout(Some(Duration::ZERO)).is_err());
        // Go style: a deadline.
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))
            .unwrap();
        let err = c.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let _w = watchdog("connecting_to_a_closed_port_is_refused", 120);
    // A port that was just free: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    rt(1).run(move || {
        let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}

#[test]
fn a_blocked_read_wakes_with_zero_when_the_peer_closes() {
    let _w = watchdog("a_blocked_read_wakes_with_zero_when_the_peer_closes", 120);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let reader = goexec::spawn(move || {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 16];
                conn.read(&mut buf).unwrap()
            });
            let c = TcpStream::connect(addr).unwrap();
            // Let the reader block in read (it shows as "IO wait").
            while !goexec::runtime::dump().contains("[IO wait") {
                goexec::yield_now();
            }
            drop(c);
            assert_eq!(reader.join().unwrap(), 0);
        });
    }
}

#[test]
fn a_reader_and_a_writer_goroutine_share_a_connection() {
    let _w = watchdog("a_reader_and_a_writer_goroutine_share_a_connection", 120);
    rt(2).run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve_echo(listener);
        let s = TcpStream::connect(addr).unwrap();
        let w = s.try_clone().unwrap();
        let writer = goexec::spawn(move || {
            for i in 0..10_000u32 {
                (&w).write_all(&i.to_le_bytes()).unwrap();
            }
        });
        let mut buf = [0u8; 4];
        for i in 0..10_000u32 {
            (&s).read_exact(&mut buf).unwrap();
            assert_eq!(u32::from_le_bytes(buf), i);
        }
        writer.join().unwrap();
    });
}

#[test]
fn several_goroutines_blocked_on_one_socket_all_wake() {
    let _w = watchdog("several_goroutines_blocked_on_one_socket_all_wake", 120);
    // Four readers parked on the same connection and four acceptors on the same listener:
    // each must be woken in turn, none forgotten (each side has a list of waiters).
    for procs in [1, 2] {
        rt(procs).run(|| {
            let listener = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = listener.local_addr().unwrap();
            let acceptors: Vec<_> = (0..4)
                .map(|_| {
                    let l = listener.clone();
                    goexec::spawn(move || l.accept().unwrap().0)
                })
                .collect();
            wait_for_io_waiters(4);
            let clients: Vec<_> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
            let conns: Vec<_> = acceptors.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(conns.len(), 4);

            // The accepted end of clients[0] (the acceptors took the connections in any order).
            let mine = clients[0].local_addr().unwrap();
            let conn = conns.into_iter().find(|c| c.peer_addr().unwrap() == mine);
            let conn = std::sync::Arc::new(conn.unwrap());
            let (tx, rx) = goexec::chan::bounded::<u8>(4);
            for _ in 0..4 {
                let (c, tx) = (conn.clone(), tx.clone());
                goexec::spawn(move || {
                    let mut b = [0u8; 1];
                    assert_eq!((&*c).read(&mut b).unwrap(), 1);
                    tx.send(b[0]).unwrap();
                });
            }
            wait_for_io_waiters(4);
            let mut got = Vec::new();
            for byte in 1..=4u8 {
                // One byte at a time, each taken by some reader before the next is sent.
                (&clients[0]).write_all(&[byte]).unwrap();
                got.push(rx.recv().unwrap());
            }
            // The readers may take the bytes in any order, but each exactly once.
            got.sort_unstable();
            assert_eq!(got, [1, 2, 3, 4]);
        });
    }
}

/// Waits until at least `n` goroutines are parked on the network (`IO wait` in the dump).
fn wait_for_io_waiters(n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while goexec::runtime::dump().matches("[IO wait").count() < n {
        assert!(Instant::now() < deadline, "{}", goexec::runtime::dump());
        goexec::yield_now();
    }
}

#[test]
fn udp_round_trip_connected_and_not() {
    let _w = watchdog("udp_round_trip_connected_and_not", 120);
    use goexec_net::UdpSocket;
    for procs in [1, 2] {
        rt(procs).run(|| {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = server.local_addr().unwrap();
            let echo = goexec::spawn(move || {
                let mut buf = [0u8; 64];
                for _ in 0..100 {
                    let (n, from) = server.recv_from(&mut buf).unwrap();
                    server.send_to(&buf[..n], from).unwrap();
                }
            });
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.connect(addr).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 64];
            for i in 0..100u32 {
                client.send(&i.to_le_bytes()).unwrap();
                let n = client.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &i.to_le_bytes());
            }
            echo.join().unwrap();
            // Nothing more comes: the read timeout fires.
            client
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            assert_eq!(
                client.recv(&mut buf).unwrap_err().kind(),
                ErrorKind::TimedOut
            );
        });
    }
}

#[test]
fn unix_stream_echo() {
    let _w = watchdog("unix_stream_echo", 120);
    use goexec_net::{UnixListener, UnixStream};
    let dir = std::env::temp_dir().join(format!("goexec-net-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let p2 = path.clone();
    rt(2).run(move || {
        let listener = UnixListener::bind(&p2).unwrap();
        goexec::spawn(move || {
            while let Ok((conn, _)) = listener.accept() {
                goexec::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = (&conn).read(&mut buf) {
                        if n == 0 || (&conn).write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..20u8)
            .map(|c| {
                let p = p2.clone();
                goexec::spawn(move || {
                    let mut s = UnixStream::connect(&p).unwrap();
                    for i in 0..100u8 {
                        s.write_all(&[c, i]).unwrap();
                        let mut b = [0u8; 2];
                        s.read_exact(&mut b).unwrap();
                        assert_eq!(b, [c, i]);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn five_thousand_idle_connections_all_still_answer() {
    let _w = watchdog("five_thousand_idle_connections_all_still_answer", 120);
    // Each connection is two sockets here (client and server side): 10,000 descriptors. The
    // test lowers its count to what the process's open-file limit allows, and says so.
    let limit = {
        let mut r = libc_rlimit();
        if r.0 < r.1 {
            r.0 = r.1;
            set_rlimit(r);
        }
        libc_rlimit().0
    };
    let n = 5000usize.min((limit as usize).saturating_sub(200) / 2);
    if n < 5000 {
        eprintln!("open-file limit {limit}: holding {n} connections instead of 5,000");
    }
    let answered = rt(2).run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve_echo(listener);
        let conns: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // All idle for a while: their server goroutines are parked in read.
        goexec::time::sleep(Duration::from_millis(100));
        let mut answered = 0;
        for (i, c) in conns.iter().enumerate() {
            let msg = (i as u32).to_le_bytes();
            (&*c).write_all(&msg).unwrap();
            let mut back = [0u8; 4];
            (&*c).read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
            answered += 1;
        }
        answered
    });
    assert_eq!(answered, n);
}

#[test]
fn peers_resetting_their_connections_do_not_disturb_the_accept_loop() {
    let _w = watchdog(
        "peers_resetting_their_connections_do_not_disturb_the_accept_loop",
        120,
    );
    rt(2).run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve_echo(listener);
        // 50 peers connect and reset (SO_LINGER 0 makes close send RST).
        for _ in 0..50 {
            let s = std::net::TcpStream::connect(addr).unwrap();
            set_linger_zero(&s);
            drop(s);
        }
        // The server still accepts and answers.
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"still here").unwrap();
        let mut back = [0u8; 10];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still here");
    });
}

fn set_linger_zero(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a valid socket with a correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

fn libc_rlimit() -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    (r.rlim_cur as u64, r.rlim_max as u64)
}

fn set_rlimit(r: (u64, u64)) {
    let lim = libc::rlimit {
        rlim_cur: r.0 as libc::rlim_t,
        rlim_max: r.1 as libc::rlim_t,
    };
    // SAFETY: setrlimit with a valid rlimit; raising the soft limit up to the hard one.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
}
