//! Network workloads: the same echo load against a goexec server and a tokio server.
//!
//! The load client is the same for both: a tokio `current_thread` runtime on its own thread,
//! 64 connections, each sending a 64-byte message and reading its echo, round after round.
//! The figure is the wall time per round trip over all connections (lower is better).

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNS: usize = 64;
const MSG: usize = 64;
const TRIPS: usize = 500;

/// Drives the load against `addr`: the time for CONNS x TRIPS round trips.
fn load(addr: SocketAddr) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async move {
        let mut conns = Vec::new();
        for _ in 0..CONNS {
            let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.set_nodelay(true).expect("nodelay");
            conns.push(s);
        }
        let start = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut s| {
                tokio::spawn(async move {
                    let msg = [7u8; MSG];
                    let mut back = [0u8; MSG];
                    for _ in 0..TRIPS {
                        s.write_all(&msg).await.expect("write");
                        s.read_exact(&mut back).await.expect("read");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("client task");
        }
        start.elapsed()
    })
}

fn per_trip(d: Duration) -> f64 {
    d.as_nanos() as f64 / (CONNS * TRIPS) as f64
}

/// goexec's echo server (a goroutine per connection, blocking-style code), `P` procs.
pub fn echo_goexec<const P: usize>() -> f64 {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = goexec::chan::bounded::<()>(1);
    let server = std::thread::spawn(move || {
        let rt = goexec::Runtime::builder()
            .procs(P)
            .build()
            .expect("runtime");
        rt.run(move || {
            let listener = goexec_net::TcpListener::bind("127.0.0.1:0").expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("addr");
            goexec::spawn(move || {
                while let Ok((conn, _)) = listener.accept() {
                    let _ = conn.set_nodelay(true);
                    goexec::spawn(move || {
                        use std::io::{Read, Write};
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
                }
            });
            // Runs until the load is done.
            let _ = stop_rx.recv();
        });
    });
    let addr = addr_rx.recv().expect("server address");
    let d = load(addr);
    let _ = stop_tx.send(());
    server.join().expect("server");
    per_trip(d)
}

/// tokio's echo server (a task per connection), `P` workers.
pub fn echo_tokio<const P: usize>() -> f64 {
    let rt = if P == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(P)
            .enable_all()
            .build()
    }
    .expect("server runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        rt.block_on(async move {
            let accept = tokio::spawn(async move {
                while let Ok((mut conn, _)) = listener.accept().await {
                    let _ = conn.set_nodelay(true);
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        loop {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if conn.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
            });
            let _ = stop_rx.await;
            accept.abort();
        });
        drop(rt);
    });
    let d = load(addr);
    let _ = stop_tx.send(());
    server.join().expect("server");
    per_trip(d)
}
