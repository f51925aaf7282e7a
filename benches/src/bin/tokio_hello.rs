//! The tokio twin of `examples/hello_http.rs`, for running `wrk` by hand: the server of the
//! compare binary's http_plaintext row (`goexec_benches::net::http_tokio`), on its own.
//!
//! ```text
//! cargo run --release -p goexec-benches --bin tokio_hello -- [ADDR] [WORKERS]
//! ```

use goexec_benches::net::http_tokio as serve;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    // The compare binary's runtime for this worker count (current_thread for 1).
    let rt = goexec_benches::rt::tokio_new(workers);
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
