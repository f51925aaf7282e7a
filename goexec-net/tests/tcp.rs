//! TCP on the netpoller: many connections at once with every byte checked, a std client,
//! timeouts, refused connections, and a peer's close.

use goexec::Runtime;
use goexec_net::{TcpListener, TcpStream};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

fn rt(procs: usize) -> Runtime {
    Runtime::builder().procs(procs).build().unwrap()
}

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
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)));
        let err = c.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
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
