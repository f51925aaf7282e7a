//! A minimal HTTP/1.1 server that answers every request with `Hello, World!`, keeping
//! connections alive: a goroutine per connection, for load tests with `wrk`.
//!
//! ```text
//! cargo run --release -p goexec-examples --example hello_http [ADDR]   # default 127.0.0.1:8080
//! wrk -t1 -c64 -d5s http://127.0.0.1:8080/
//! ```
//!
//! It reads requests up to the blank line that ends their headers and ignores bodies (the
//! load generators send none); anything it cannot parse closes the connection. On SIGINT or
//! SIGTERM it shuts down gracefully: it stops accepting, gives the open connections 5 s to end
//! (a keep-alive client's connection ends when the client closes it), shuts down those still
//! open, and prints a summary.
//!
//! Each batch of responses is written under a context of its own with a deadline
//! (`goexec::context`, as Go's `context.WithTimeout` per request), a child of the server's: a
//! client that stops reading loses its connection instead of holding a goroutine for ever.
//! The server's context is a real one, cancelled when the shutdown begins, and with it the
//! request contexts in flight (code below a request that selects on `done()` stops then);
//! the connections themselves get the drain period to end.

use goexec::chan::{self, Sender};
use goexec::context::Context;
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

/// How long writing a batch of responses may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

fn serve(mut conn: TcpStream, server: &Context) {
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
        if !out.is_empty() {
            // The request's context: its deadline bounds the write; dropping its Cancel once
            // written stops the timer.
            let (ctx, _cancel) = server.with_timeout(WRITE_TIMEOUT);
            if conn.set_write_deadline(ctx.deadline()).is_err() || conn.write_all(&out).is_err() {
                return;
            }
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
                eprintln!("hello_http: accept: {e}; backing off");
                goexec::time::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    goexec::run(move || {
        // Caught from here on: once it says it listens, a signal shuts it down gracefully.
        let signals = signal::notify(&[SIGINT, SIGTERM]).expect("catching SIGINT and SIGTERM");
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                eprintln!("hello_http: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "hello_http: listening on http://{}/",
            listener.local_addr().unwrap()
        );
        // Cancelled when the shutdown begins, and with it every request's context.
        let (server, stop_server) = Context::background().with_cancel();
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
                    let (done_tx, server) = (done_tx.clone(), server.clone());
                    goexec::spawn(move || {
                        serve(conn, &server);
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
        stop_server.cancel();
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
            "hello_http: shut down on {name}: {served} connections served, {} forced closed",
            open.len()
        );
    });
}
