//! goexec-net's sockets as futures::io::AsyncRead/AsyncWrite: futures::io::copy over a
//! stream split into halves, driven by a goroutine running the future, against a blocking
//! client; and a pending read woken by the peer.
//!
//! With both std's and futures' extension traits in scope a call like `write_all` is
//! ambiguous (as with tokio's); the blocking calls here are spelled out.

mod common;

use common::{rt, watchdog};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use goexec_net::{TcpListener, TcpStream};
use std::time::Duration;

#[test]
fn futures_io_copy_over_a_split_stream() {
    let _w = watchdog("futures_io_copy_over_a_split_stream", 120);
    for procs in [1, 2] {
        rt(procs).run(move || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // The echo server is async code: a future per connection, each on a goroutine.
            goexec::spawn(move || {
                while let Ok((conn, _)) = listener.accept() {
                    goexec::spawn_future(async move {
                        let (reader, mut writer) = conn.split();
                        let n = futures::io::copy(reader, &mut writer).await.unwrap();
                        writer.close().await.unwrap();
                        n
                    });
                }
            });
            // A blocking-style client: 1 MiB out, every byte back, from two goroutines.
            let c = TcpStream::connect(addr).unwrap();
            let w = c.try_clone().unwrap();
            const N: usize = 1 << 20;
            let pattern = |i: usize| (i * 7 % 251) as u8;
            let writer = goexec::spawn(move || {
                let data: Vec<u8> = (0..N).map(pattern).collect();
                std::io::Write::write_all(&mut &w, &data).unwrap();
                w.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut &c, &mut back).unwrap();
            writer.join().unwrap();
            assert_eq!(back.len(), N, "procs {procs}");
            assert!(back.iter().enumerate().all(|(i, b)| *b == pattern(i)));
        });
    }
}

#[test]
fn a_pending_async_read_is_woken_by_the_peer() {
    let _w = watchdog("a_pending_async_read_is_woken_by_the_peer", 120);
    rt(1).run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = goexec::spawn_future(async move {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).await.unwrap();
            conn.write_all(b"pong!").await.unwrap();
            buf
        });
        let mut c = TcpStream::connect(addr).unwrap();
        // Let the reader wait in its async read (its goroutine parks in block_on).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !goexec::runtime::dump().contains("[future") {
            assert!(std::time::Instant::now() < deadline);
            goexec::yield_now();
        }
        std::io::Write::write_all(&mut c, b"ping!").unwrap();
        let mut back = [0u8; 5];
        std::io::Read::read_exact(&mut c, &mut back).unwrap();
        assert_eq!(&back, b"pong!");
        assert_eq!(&reader.join().unwrap(), b"ping!");
    });
}

#[test]
fn many_short_async_reads_on_one_connection() {
    let _w = watchdog("many_short_async_reads_on_one_connection", 120);
    // Each message is a short read (the socket drained), so the next read waits for an edge
    // before its system call: every one must still be woken.
    for procs in [1, 2] {
        rt(procs).run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = goexec::spawn_future(async move {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 64];
                let mut total = 0;
                loop {
                    let n = conn.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return total;
                    }
                    total += n;
                    conn.write_all(&buf[..n]).await.unwrap();
                }
            });
            let mut c = TcpStream::connect(addr).unwrap();
            for i in 0..200u32 {
                let msg = i.to_le_bytes();
                std::io::Write::write_all(&mut c, &msg).unwrap();
                let mut back = [0u8; 4];
                std::io::Read::read_exact(&mut c, &mut back).unwrap();
                assert_eq!(back, msg);
            }
            drop(c);
            assert_eq!(server.join().unwrap(), 800);
        });
    }
}
