//! A minimal HTTP/1.1 server that answers every request with `Hello, World!`, keeping
//! connections alive: a goroutine per connection, for load tests with `wrk`.
//!
//! ```text
//! cargo run --release -p goexec-examples --example hello_http [ADDR]   # default 127.0.0.1:8080
//! wrk -t1 -c64 -d5s http://127.0.0.1:8080/
//! ```
//!
//! It reads requests up to the blank line that ends their headers and ignores bodies (the
//! load generators send none); anything it cannot parse closes the connection.

use goexec_net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::time::Duration;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    loop {
        // Answer every complete request in the buffer (pipelining), then read more.
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

/// The length of the first request's head (through "\r\n\r\n"), if it is all there.
fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    goexec::run(move || {
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hello_http: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "hello_http: listening on http://{}/",
            listener.local_addr().unwrap()
        );
        loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    goexec::spawn(move || serve(conn));
                }
                Err(e) => {
                    eprintln!("hello_http: accept: {e}; backing off");
                    goexec::time::sleep(Duration::from_millis(10));
                }
            }
        }
    });
}
