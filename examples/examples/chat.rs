//! A broadcast chat server over channels: each connection has a reader goroutine that sends
//! its lines to a hub, and a writer goroutine that receives the hub's broadcasts on its own
//! channel. The hub is one goroutine that owns the list of clients (no locks), and selects
//! between their events and a ticker.
//!
//! ```text
//! cargo run --release -p goexec-examples --example chat [ADDR]   # default 127.0.0.1:7001
//! ```
//!
//! Connect with several `telnet 127.0.0.1 7001` (or `nc`); every line a client types is sent
//! to all the others, prefixed with the sender's address. On SIGINT or SIGTERM it shuts down
//! gracefully: it stops accepting, tells the clients and gives them 5 s to leave, disconnects those still
//! there, and prints a summary.

use goexec::chan::{self, Receiver, Sender};
use goexec::signal;
use goexec_net::{TcpListener, TcpStream};
use libc::{SIGINT, SIGTERM};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long the clients get to leave after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(5);

/// What the hub hears.
enum Event {
    Join(SocketAddr, Sender<String>),
    Leave(SocketAddr),
    Line(SocketAddr, String),
    /// The server is shutting down: tell everyone.
    Shutdown,
}

/// Owns the clients; forwards every line to everyone but its sender, and says how many are
/// connected once a minute.
fn hub(events: Receiver<Event>) {
    let mut clients: Vec<(SocketAddr, Sender<String>)> = Vec::new();
    let stats = goexec::time::tick(Duration::from_secs(60));
    loop {
        let ev = goexec::select! {
            recv(events) -> ev => match ev {
                Ok(ev) => ev,
                Err(_) => return, // every sender gone
            },
            recv(stats) -> _ => {
                println!("chat: {} connected", clients.len());
                continue;
            }
        };
        match ev {
            Event::Join(addr, tx) => {
                let msg = format!("* {addr} joined ({} here)\n", clients.len() + 1);
                broadcast(&clients, None, &msg);
                clients.push((addr, tx));
            }
            Event::Leave(addr) => {
                clients.retain(|(a, _)| *a != addr);
                broadcast(&clients, None, &format!("* {addr} left\n"));
            }
            Event::Line(addr, line) => {
                broadcast(&clients, Some(addr), &format!("{addr}: {line}\n"));
            }
            Event::Shutdown => broadcast(&clients, None, "* server shutting down\n"),
        }
    }
}

/// A slow client is skipped rather than allowed to stall everyone (its buffer holds 64).
fn broadcast(clients: &[(SocketAddr, Sender<String>)], except: Option<SocketAddr>, msg: &str) {
    for (addr, tx) in clients {
        if Some(*addr) != except {
            let _ = tx.try_send(msg.to_owned());
        }
    }
}

fn client(conn: TcpStream, addr: SocketAddr, events: Sender<Event>) {
    let (tx, rx) = chan::bounded::<String>(64);
    if events.send(Event::Join(addr, tx)).is_err() {
        return;
    }
    let writer = conn.try_clone().expect("clone");
    goexec::spawn(move || {
        for msg in rx {
            if (&writer).write_all(msg.as_bytes()).is_err() {
                return;
            }
        }
    });
    for line in BufReader::new(&conn).lines() {
        let Ok(line) = line else { break };
        if events.send(Event::Line(addr, line)).is_err() {
            return;
        }
    }
    let _ = events.send(Event::Leave(addr));
}

/// Accepts until the listener is closed, handing each connection to `main`.
fn accept_loop(listener: &TcpListener, accepted: Sender<(TcpStream, SocketAddr)>) {
    loop {
        match listener.accept() {
            Ok(conn) => {
                if accepted.send(conn).is_err() {
                    return;
                }
            }
            Err(e) if goexec_net::is_closed(&e) => return,
            Err(e) => {
                eprintln!("chat: accept: {e}; backing off");
                goexec::time::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7001".to_owned());
    goexec::run(move || {
        // Caught from here on: once it says it listens, a signal shuts it down gracefully.
        let signals = signal::notify(&[SIGINT, SIGTERM]).expect("catching SIGINT and SIGTERM");
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                eprintln!("chat: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!("chat: listening on {}", listener.local_addr().unwrap());
        let (events, hub_rx) = chan::bounded::<Event>(256);
        goexec::spawn(move || hub(hub_rx));
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
                    let (conn, peer): (TcpStream, _) = conn.unwrap();
                    served += 1;
                    let id = served;
                    if let Ok(clone) = conn.try_clone() {
                        open.insert(id, clone);
                    }
                    let (events, done_tx) = (events.clone(), done_tx.clone());
                    goexec::spawn(move || {
                        client(conn, peer, events);
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
        let _ = events.send(Event::Shutdown);
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
            "chat: shut down on {name}: {served} connections served, {} forced closed",
            open.len()
        );
    });
}
