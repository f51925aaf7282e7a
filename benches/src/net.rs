//! Network servers for the tcp_echo and http_plaintext workloads, the same protocol code on
//! goexec (a goroutine per connection, blocking-style reads and writes) and on tokio (a task
//! per connection), and the echo load client.
//!
//! The servers run on a thread of the calling process; the load comes from another process
//! (the echo client below, started by the compare binary as a child of its own, or `wrk`), so
//! the same client drives both servers and its cost is never counted on a server's side.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running server: its address, and how to stop it.
pub struct Server {
    /// Where it listens (127.0.0.1, a port the kernel chose).
    pub addr: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a server does with each accepted connection (blocking style, on a goroutine).
type GoexecHandler = fn(goexec_net::TcpStream);

/// Serves `handler` on a fresh goexec runtime with `procs` Ps, a goroutine per connection.
pub fn goexec_server(procs: usize, handler: GoexecHandler) -> Server {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = goexec::chan::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        let rt = goexec::Runtime::builder()
            .procs(procs)
            .build()
            .expect("goexec runtime");
        rt.run(move || {
            let listener = goexec_net::TcpListener::bind("127.0.0.1:0").expect("bind");
            addr_tx
                .send(listener.local_addr().expect("local address"))
                .expect("send the address");
            goexec::spawn(move || {
                while let Ok((conn, _)) = listener.accept() {
                    let _ = conn.set_nodelay(true);
                    goexec::spawn(move || handler(conn));
                }
            });
            // Serves until told to stop; returning shuts the runtime down.
            let _ = stop_rx.recv();
        });
    });
    Server {
        addr: addr_rx.recv().expect("server address"),
        stop: Some(Box::new(move || {
            let _ = stop_tx.send(());
        })),
        thread: Some(thread),
    }
}

/// Serves `handler` on a fresh tokio runtime with `workers` workers, a task per connection.
pub fn tokio_server<F, Fut>(workers: usize, handler: F) -> Server
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Copy + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = crate::rt::tokio_new(workers);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        rt.block_on(async move {
            let accept = tokio::spawn(async move {
                while let Ok((conn, _)) = listener.accept().await {
                    let _ = conn.set_nodelay(true);
                    tokio::spawn(handler(conn));
                }
            });
            let _ = stop_rx.await;
            accept.abort();
        });
        drop(rt);
    });
    Server {
        addr,
        stop: Some(Box::new(move || {
            let _ = stop_tx.send(());
        })),
        thread: Some(thread),
    }
}

/// Echo: write back whatever arrives, until the peer closes.
pub fn echo_goexec(conn: goexec_net::TcpStream) {
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
}

/// The same on tokio.
pub async fn echo_tokio(mut conn: tokio::net::TcpStream) {
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
}

/// The HTTP response: the TechEmpower plaintext answer.
pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

/// The length of the first request's head (through "\r\n\r\n"), if it is all there.
fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Minimal HTTP/1.1 keep-alive server: every request (headers up to the blank line; bodies
/// are not expected) gets [`RESPONSE`]; pipelined requests are answered in one write.
pub fn http_goexec(mut conn: goexec_net::TcpStream) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    loop {
        let mut answered = 0;
        let mut out = Vec::new();
        while let Some(end) = find_end(&buf[answered..filled]) {
            answered += end;
            out.extend_from_slice(RESPONSE);
        }
        if !out.is_empty() && conn.write_all(&out).is_err() {
            return;
        }
        buf.copy_within(answered..filled, 0);
        filled -= answered;
        if filled == buf.len() {
            return; // headers too large
        }
        match conn.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
    }
}

/// The same on tokio, line for line.
pub async fn http_tokio(mut conn: tokio::net::TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    loop {
        let mut answered = 0;
        let mut out = Vec::new();
        while let Some(end) = find_end(&buf[answered..filled]) {
            answered += end;
            out.extend_from_slice(RESPONSE);
        }
        if !out.is_empty() && conn.write_all(&out).await.is_err() {
            return;
        }
        buf.copy_within(answered..filled, 0);
        filled -= answered;
        if filled == buf.len() {
            return;
        }
        match conn.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
    }
}

/// Size of each echo message.
pub const ECHO_MSG: usize = 64;

/// The echo load: `conns` connections to `addr`, each sending a 64-byte message and reading
/// its echo, round after round, for `dur`. Returns the round trips completed. Runs on a tokio
/// `current_thread` runtime of its own (one thread: the client's share of the CPU is the same
/// against either server).
pub fn echo_client(addr: SocketAddr, conns: usize, dur: Duration) -> io::Result<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut streams = Vec::with_capacity(conns);
        for _ in 0..conns {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        let deadline = Instant::now() + dur;
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|mut s| {
                tokio::spawn(async move {
                    let msg = [7u8; ECHO_MSG];
                    let mut back = [0u8; ECHO_MSG];
                    let mut trips = 0u64;
                    while Instant::now() < deadline {
                        s.write_all(&msg).await?;
                        s.read_exact(&mut back).await?;
                        if back != msg {
                            return Err(io::Error::other("the echo differs from the message"));
                        }
                        trips += 1;
                    }
                    Ok::<u64, io::Error>(trips)
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.map_err(io::Error::other)??;
        }
        Ok(total)
    })
}
