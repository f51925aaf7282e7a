//! hyper on tokio, the twin of `examples/hyper_hello.rs` for the `wrk` comparison in
//! BENCHMARKS.md: the same service, hyper-util's tokio I/O and timer adapters.
//!
//! ```text
//! cargo run --release -p goexec-benches --bin hyper_tokio_hello -- [ADDR] [WORKERS]
//! ```

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::time::Duration;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!",
    ))))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8082".to_owned());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    // The compare binary's runtime for this worker count (current_thread for 1).
    let rt = goexec_benches::rt::tokio_new(workers);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!("hyper_tokio_hello: listening on http://{addr} ({workers} workers)");
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(conn), hyper::service::service_fn(hello))
                    .await;
            });
        }
    });
}
