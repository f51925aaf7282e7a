//! A TCP echo server: a goroutine per connection, each written as plain blocking code.
//!
//! ```text
//! cargo run --release -p goexec-examples --example echo [ADDR]     # default 127.0.0.1:7000
//! ```
//!
//! Try it with `nc 127.0.0.1 7000`. Accept errors (too many open files, say) are reported and
//! the loop backs off and keeps accepting.

use goexec_net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::time::Duration;

fn echo(mut conn: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_owned());
    goexec::run(move || {
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("echo: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!("echo: listening on {}", listener.local_addr().unwrap());
        loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    goexec::spawn(move || echo(conn));
                }
                Err(e) => {
                    eprintln!("echo: accept: {e}; backing off");
                    goexec::time::sleep(Duration::from_millis(10));
                }
            }
        }
    });
}
