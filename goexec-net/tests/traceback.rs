//! A goroutine parked in a socket read is listed by `runtime::stack(true)` with the user's
//! function that read as the first of its own frames (below goexec-net's), at procs 1 and 2.

mod common;

use common::{rt, watchdog};
use goexec_net::{TcpListener, TcpStream};
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[inline(never)]
fn parked_in_socket_read(conn: &mut TcpStream) -> usize {
    let mut buf = [0u8; 16];
    black_box(conn.read(&mut buf).unwrap())
}

fn socket_read(procs: usize) {
    let _w = watchdog("socket_read", 60);
    rt(procs).run(move || {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let reader = goexec::Builder::new()
            .name("reader")
            .spawn(move || {
                let (mut conn, _) = ln.accept().unwrap();
                parked_in_socket_read(&mut conn)
            })
            .unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let block = loop {
            let all = goexec::runtime::stack(true);
            if let Some(b) = all
                .split("\n\n")
                .find(|b| b.contains("\"reader\" [IO wait"))
            {
                break b.to_owned();
            }
            assert!(Instant::now() < deadline, "the reader never parked:\n{all}");
            goexec::yield_now();
        };
        // goexec-net's own frames may come first (as Go shows net's); the first frame
        // outside the library and std is the user's.
        let user = block
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with('\t'))
            .find(|l| {
                let l = l.trim_start_matches('<');
                !l.starts_with("goexec_net::")
                    && !l.starts_with("std::")
                    && !l.starts_with("core::")
            })
            .unwrap_or("");
        assert!(
            user == "traceback::parked_in_socket_read" || user == "parked_in_socket_read",
            "procs {procs}:\n{block}"
        );
        assert!(!block.contains("goexec::"), "{block}");
        client.write_all(b"hi").unwrap();
        assert_eq!(reader.join().unwrap(), 2);
    });
}

#[test]
fn socket_read_procs_1() {
    socket_read(1);
}

#[test]
fn socket_read_procs_2() {
    socket_read(2);
}
