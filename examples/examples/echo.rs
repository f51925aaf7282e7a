//! A TCP echo server: a goroutine per connection, each written as plain blocking code.
//!
//! ```text
//! cargo run --release -p goexec-examples --example echo [ADDR]     # default 127.0.0.1:7000
//! ```
//!
//! Try it with `nc 127.0.0.1 7000`. Accept errors (too many open files, say) are reported and
//! the loop backs off and keeps accepting. On SIGINT or SIGTERM it shuts down gracefully: it
//! stops accepting, gives the open connections 5 s to end, shuts down those still open, and
//! prints a summary.

use goexec::chan::{self, Sender};
use goexec::signal;
use goexec_net::{TcpListener, TcpStream};
use libc::{SIGINT, SIGTERM};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// How long the open connections get to end after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(5);

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

/// Accepts until the listener is closed, handing each connection to `main`.
fn accept_loop(listener: &TcpListener, accepted: Sender<TcpStream>) {
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                if accepted.send(conn).is_err() {
                    return;
                }
            }
            Err(e) if goexec_net::is_closed(&e) => return,
            Err(e) => {
                eprintln!("echo: accept: {e}; backing off");
                goexec::time::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_owned());
    goexec::run(move || {
        // Caught from here on: once it says it listens, a signal shuts it down gracefully.
        let signals = signal::notify(&[SIGINT, SIGTERM]).expect("catching SIGINT and SIGTERM");
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                eprintln!("echo: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!("echo: listening on {}", listener.local_addr().unwrap());
        let (accepted_tx, accepted) = chan::bounded(0);
        goexec::spawn({
            let listener = listener.clone();
            move || accept_loop(&listener, accepted_tx)
        });
        // This goroutine owns the open connections (a clone of each, to close it at the end);
        // a connection's goroutine says when it is done.
        let (done_tx, done) = chan::bounded::<u64>(64);
        let mut open = HashMap::new();
        let mut served = 0;
        let sig = loop {
            goexec::select! {
                recv(accepted) -> conn => {
                    let conn: TcpStream = conn.unwrap();
                    served += 1;
                    let id = served;
                    if let Ok(clone) = conn.try_clone() {
                        open.insert(id, clone);
                    }
                    let done_tx = done_tx.clone();
                    goexec::spawn(move || {
                        echo(conn);
                        let _ = done_tx.send(id);
                    });
                },
                recv(done) -> id => {
                    open.remove(&id.unwrap());
                },
                recv(signals) -> sig => break sig.unwrap(),
            }
        };
        // Stop accepting (a waiting accept fails at once), then give the open connections
        // DRAIN to end before shutting down those left, which wakes their reads with Ok(0).
        listener.close().expect("closing the listener");
        drop(accepted);
        let deadline = chan::after(DRAIN);
        while !open.is_empty() {
            goexec::select! {
                recv(done) -> id => {
                    open.remove(&id.unwrap());
                },
                recv(deadline) -> _ => break,
            }
        }
        for conn in open.values() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
        println!(
            "echo: shut down on {name}: {served} connections served, {} forced closed",
            open.len()
        );
    });
}
