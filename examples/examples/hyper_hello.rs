//! HTTP/1.1 with hyper 1.x on goexec: a goroutine per connection runs hyper's connection
//! future (`spawn_future`), on a goexec `TcpStream` (hyper's `rt::Read`/`rt::Write` over its
//! async I/O) and goexec's timers (hyper's `rt::Timer`, so the header read timeout works).
//!
//! ```text
//! cargo run --release -p goexec-examples --example hyper_hello [ADDR]   # default 127.0.0.1:8081
//! curl http://127.0.0.1:8081/
//! wrk -t1 -c64 -d5s http://127.0.0.1:8081/
//! ```
//!
//! `GOMAXPROCS` sets the number of Ps; `HEADER_TIMEOUT_MS` (default 30,000) how long a client
//! may take to send a request's headers before hyper closes the connection.

use futures::io::{AsyncRead, AsyncWrite};
use goexec_net::{TcpListener, TcpStream};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A goexec TcpStream as hyper's I/O. hyper hands reads uninitialised memory; goexec reads
/// into `scratch` (initialised once) and copies what arrived.
struct Io {
    conn: TcpStream,
    scratch: Box<[u8]>,
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining().min(this.scratch.len());
        match Pin::new(&mut &this.conn).poll_read(cx, &mut this.scratch[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&this.scratch[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut &self.conn).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut &self.conn).poll_close(cx)
    }
}

/// goexec's timers for hyper.
#[derive(Clone)]
struct Timer;

/// goexec's `Sleep` as hyper's.
struct Sleep(goexec::time::Sleep);

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for Sleep {}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(goexec::time::sleep_async(d)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(goexec::time::sleep_until_async(deadline)))
    }
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!",
    ))))
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    // How long a client may take to send its request's headers (hyper's timer at work).
    let header_timeout = Duration::from_millis(
        std::env::var("HEADER_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30_000),
    );
    goexec::run(move || {
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hyper_hello: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "hyper_hello: listening on http://{} ({} Ps)",
            listener.local_addr().unwrap(),
            goexec::runtime::gomaxprocs()
        );
        loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    let _ = conn.set_nodelay(true);
                    let io = Io {
                        conn,
                        scratch: vec![0; 8192].into_boxed_slice(),
                    };
                    goexec::spawn_future(async move {
                        // Errors are the client's (a reset, a header timeout): nothing to do.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(Timer)
                            .header_read_timeout(header_timeout)
                            .serve_connection(io, hyper::service::service_fn(hello))
                            .await;
                    });
                }
                Err(e) => {
                    eprintln!("hyper_hello: accept: {e}; backing off");
                    goexec::time::sleep(Duration::from_millis(10));
                }
            }
        }
    });
}
