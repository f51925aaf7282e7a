//! The tokio twin of `examples/hello_http.rs`, for the `wrk` comparison in BENCHMARKS.md:
//! the same parsing (requests end at the blank line; pipelined requests answered in one
//! write), the same response, a task per connection.
//!
//! ```text
//! cargo run --release -p goexec-benches --bin tokio_hello -- [ADDR] [WORKERS]
//! ```

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

async fn serve(mut conn: tokio::net::TcpStream) {
    let _ = conn.set_nodelay(true);
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

fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!(
            "tokio_hello: listening on http://{}/ ({workers} worker(s))",
            listener.local_addr().expect("addr")
        );
        loop {
            match listener.accept().await {
                Ok((conn, _)) => {
                    tokio::spawn(serve(conn));
                }
                Err(e) => {
                    eprintln!("tokio_hello: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    });
}
