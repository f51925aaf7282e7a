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
//! to all the others, prefixed with the sender's address.

use goexec::chan::{self, Receiver, Sender};
use goexec_net::{TcpListener, TcpStream};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// What the hub hears.
enum Event {
    Join(SocketAddr, Sender<String>),
    Leave(SocketAddr),
    Line(SocketAddr, String),
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

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7001".to_owned());
    goexec::run(move || {
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("chat: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!("chat: listening on {}", listener.local_addr().unwrap());
        let (events, hub_rx) = chan::bounded::<Event>(256);
        goexec::spawn(move || hub(hub_rx));
        loop {
            match listener.accept() {
                Ok((conn, peer)) => {
                    let events = events.clone();
                    goexec::spawn(move || client(conn, peer, events));
                }
                Err(e) => {
                    eprintln!("chat: accept: {e}; backing off");
                    goexec::time::sleep(Duration::from_millis(10));
                }
            }
        }
    });
}
