//! The server examples shut down gracefully on SIGTERM: each is started on a free port with
//! three connections: one finished before the signal, one that goes on being served after it
//! and then ends, and one left open, which the server shuts down once its 5 s of grace are
//! over. The example must print its summary and exit with status 0.
//!
//! `cargo test -p goexec-examples` builds the examples next to this test
//! (`target/<profile>/examples/`), and the test runs those binaries; `--test shutdown` alone
//! builds no example, and the test then refuses binaries older than their source.

mod common;

use common::example;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Bound on each wait: starting, a reply, the drain (5 s) and the exit.
const WAIT: Duration = Duration::from_secs(30);

/// A running example: killed if the test fails before it exits.
struct Server {
    name: &'static str,
    child: Child,
    lines: Receiver<String>,
    addr: SocketAddr,
}

impl Server {
    fn start(name: &'static str) -> Server {
        let bin = example(name);
        let mut child = Command::new(&bin)
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        // Lines come through a thread, so that every wait for one is bounded.
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Server {
            name,
            child,
            lines,
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let first = server.line();
        let addr = first
            .strip_prefix(&format!("{name}: listening on "))
            .unwrap_or_else(|| panic!("{name}: unexpected first line {first:?}"));
        let addr = addr.trim_start_matches("http://").trim_end_matches('/');
        server.addr = addr.parse().unwrap();
        server
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("{}: no line on stdout in {WAIT:?}: {e}", self.name))
    }

    fn connect(&self) -> TcpStream {
        let conn = TcpStream::connect(self.addr).unwrap();
        conn.set_read_timeout(Some(WAIT)).unwrap();
        conn
    }

    fn sigterm(&self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child, which has not been waited for (so the pid is it).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// Waits (bounded) for the exit; then the last line printed.
    fn exit(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running {WAIT:?} after SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let last = self.lines.iter().last().unwrap_or_default();
        (status, last)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until `want` has come (panics on end of stream, an error or the read timeout).
fn read_until(conn: &mut TcpStream, want: &str) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(want) {
        let n = conn
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {want:?}: {e}"));
        assert!(n > 0, "end of stream while waiting for {want:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// Reads from both until one of them has heard `want` (the order in which the server handles
/// two clients is not known).
fn first_to_hear(a: &mut TcpStream, b: &mut TcpStream, want: &str) {
    let deadline = Instant::now() + WAIT;
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    for conn in [&*a, &*b] {
        conn.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
    }
    'found: loop {
        for (conn, got) in [(&mut *a, &mut got_a), (&mut *b, &mut got_b)] {
            let mut buf = [0u8; 1024];
            match conn.read(&mut buf) {
                Ok(0) => panic!("end of stream while waiting for {want:?}"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("waiting for {want:?}: {e}"),
            }
            if String::from_utf8_lossy(got).contains(want) {
                break 'found;
            }
        }
        assert!(Instant::now() < deadline, "nobody heard {want:?}");
    }
    for conn in [&*a, &*b] {
        conn.set_read_timeout(Some(WAIT)).unwrap();
    }
}

/// The server shuts the connection down: after what it still sends, end of stream (or a
/// reset) before the read timeout.
fn assert_closed_by_server(mut conn: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("expected the server to close the connection: {e}"),
        }
    }
}

fn check_exit(server: Server) {
    let name = server.name;
    let (status, last) = server.exit();
    assert_eq!(
        last,
        format!("{name}: shut down on SIGTERM: 3 connections served, 1 forced closed")
    );
    assert!(status.success(), "{name}: {status}");
}

#[test]
fn echo() {
    let server = Server::start("echo");
    let round_trip = |conn: &mut TcpStream, msg: &str| {
        conn.write_all(msg.as_bytes()).unwrap();
        read_until(conn, msg);
    };
    let mut done = server.connect();
    round_trip(&mut done, "one");
    drop(done);
    let mut going_on = server.connect();
    round_trip(&mut going_on, "two");
    let mut idle = server.connect();
    round_trip(&mut idle, "three");

    server.sigterm();
    // Still served while the server drains; then it ends on its own.
    round_trip(&mut going_on, "four");
    drop(going_on);
    assert_closed_by_server(idle);
    check_exit(server);
}

#[test]
fn hello_http() {
    let server = Server::start("hello_http");
    let get = |conn: &mut TcpStream| {
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_until(conn, "Hello, World!");
    };
    let mut done = server.connect();
    get(&mut done);
    drop(done);
    let mut keep_alive = server.connect();
    get(&mut keep_alive);
    let mut idle = server.connect();
    get(&mut idle);

    server.sigterm();
    get(&mut keep_alive);
    drop(keep_alive);
    assert_closed_by_server(idle);
    check_exit(server);
}

#[test]
fn chat() {
    let server = Server::start("chat");
    let mut done = server.connect();
    let mut leaving = server.connect();
    // Whichever of the two joined first hears of the other: then both are in.
    first_to_hear(&mut done, &mut leaving, "joined (2 here)");
    let idle = server.connect();
    read_until(&mut leaving, "joined (3 here)");
    drop(done);
    read_until(&mut leaving, "left");

    server.sigterm();
    // Told of the shutdown, this client leaves; the idle one is disconnected.
    read_until(&mut leaving, "* server shutting down");
    drop(leaving);
    assert_closed_by_server(idle);
    check_exit(server);
}
