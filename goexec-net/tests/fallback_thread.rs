//! The poller thread that serves sockets after their runtime stopped: none while nobody
//! waits (not even for a goroutine left parked in `accept` when `run` returned), one once a
//! thread waits on such a socket, and gone again when the socket is dropped. In its own test
//! binary: it counts the process's threads.

mod common;

use common::{rt, thread_names, tid, wait_until_sleeping, watchdog};
use goexec_net::TcpListener;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn pollers() -> usize {
    thread_names()
        .iter()
        .filter(|n| *n == "goexec-netpoll")
        .count()
}

fn threads() -> usize {
    thread_names().len()
}

/// Waits (at most 10 s) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: {:?}", thread_names());
        std::thread::yield_now();
    }
}

#[test]
fn the_poller_thread_runs_while_a_thread_uses_a_socket_and_exits_when_it_is_dropped() {
    let _w = watchdog("the_poller_thread_runs_while_a_thread_uses_a_socket", 60);
    // A joined thread may linger in /proc for a moment: counts are compared with `eventually`.
    let base = threads();
    let rt = rt(2);
    // A run whose goroutine is still parked in accept when it returns: it never runs again,
    // so nothing waits, and no thread stays behind (the listener stays registered).
    rt.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        goexec::spawn(move || listener.accept().map(|_| ()));
        while !goexec::runtime::dump().contains("[IO wait") {
            goexec::yield_now();
        }
    });
    eventually("the runtime's threads exit", || threads() == base);
    assert_eq!(pollers(), 0, "{:?}", thread_names());

    let (mut s, peer) = rt.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    });
    eventually("the runtime's threads exit", || threads() == base);

    // This thread waits: the poller thread starts, and wakes it when the data comes.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = tid();
    let writer = std::thread::spawn(move || {
        wait_until_sleeping(me);
        let mut peer = peer;
        peer.write_all(b"ping").unwrap();
        peer
    });
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).map_err(|e| e.kind()), Ok(4));
    let peer = writer.join().unwrap();
    assert_eq!(pollers(), 1, "{:?}", thread_names());

    // The socket's last handle goes: its deregistration ends the poller thread.
    drop(s);
    eventually("the poller thread exits", || {
        pollers() == 0 && threads() == base
    });
    drop(peer);
}
