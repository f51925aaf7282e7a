//! `TcpListener::close` / `UnixListener::close` (Go's `Listener.Close`): accepts waiting and
//! later fail promptly with "use of closed network connection", queued connections are reset,
//! the descriptor goes when the listener drops; and `shutdown(Both)` from another goroutine
//! wakes a stream's reader with `Ok(0)`.

mod common;
use common::{rt, tid, until_io_waiting, wait_until_sleeping, watchdog};
use goexec_net::{TcpListener, TcpStream, UnixListener, UnixStream};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn close_fails_every_waiting_accept_at_once_and_later_ones_too() {
    let _w = watchdog("close_fails_every_waiting_accept", 60);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let acceptors: Vec<_> = (0..4)
                .map(|_| {
                    let l = l.clone();
                    goexec::spawn(move || l.accept().map(drop).unwrap_err())
                })
                .collect();
            until_io_waiting(4);
            let t = Instant::now();
            l.close().unwrap();
            for a in acceptors {
                let e = a.join().unwrap();
                assert!(goexec_net::is_closed(&e), "{e:?}");
                assert_eq!(e.kind(), ErrorKind::NotConnected);
                assert_eq!(e.to_string(), "use of closed network connection");
            }
            assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
            let e = l.accept().map(drop).unwrap_err();
            assert!(goexec_net::is_closed(&e));
            let e = l.close().unwrap_err();
            assert!(goexec_net::is_closed(&e), "a second close: {e:?}");
            assert!(goexec_net::is_closed(&l.set_deadline(None).unwrap_err()));
            // The address is still there to ask for: the descriptor is open until the drop.
            l.local_addr().unwrap();
        });
    }
}

#[test]
fn a_closed_listener_refuses_new_connections_and_resets_queued_ones() {
    let _w = watchdog("a_closed_listener_refuses", 60);
    rt(2).run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // Queued in the kernel, never accepted.
        let queued = TcpStream::connect(addr).unwrap();
        l.close().unwrap();
        let mut b = [0u8; 4];
        match (&queued).read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            r => panic!("a queued connection after close: {r:?}"),
        }
        let e = TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    });
}

#[test]
fn the_descriptor_is_released_when_the_last_reference_drops() {
    let _w = watchdog("the_descriptor_is_released", 60);
    rt(1).run(|| {
        let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        // The socket by inode, not by count or number: tests beside this one open and close
        // descriptors, and may take this number once it is free.
        let link = |fd: i32| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
        let socket = link(l.as_raw_fd()).unwrap();
        let open = || {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .any(|l| l == socket)
        };
        l.close().unwrap();
        assert!(open(), "close keeps the descriptor");
        let l2 = l.clone();
        drop(l);
        assert!(open());
        drop(l2);
        assert!(!open(), "the last drop closes it");
    });
}

#[test]
fn close_from_a_thread_wakes_an_accept_waiting_in_a_thread_after_run_returned() {
    let _w = watchdog("close_from_a_thread_after_run", 60);
    let l = Arc::new(rt(1).run(|| TcpListener::bind("127.0.0.1:0").unwrap()));
    let l2 = l.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let acceptor = std::thread::spawn(move || {
        tx.send(tid()).unwrap();
        l2.accept().map(drop).unwrap_err()
    });
    wait_until_sleeping(rx.recv().unwrap());
    l.close().unwrap();
    assert!(goexec_net::is_closed(&acceptor.join().unwrap()));
}

#[test]
fn a_unix_listener_closes_as_a_tcp_one() {
    let _w = watchdog("a_unix_listener_closes", 60);
    let dir = std::env::temp_dir().join(format!("goexec-close-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    rt(2).run(move || {
        let l = Arc::new(UnixListener::bind(&path).unwrap());
        let l2 = l.clone();
        let a = goexec::spawn(move || l2.accept().map(drop).unwrap_err());
        until_io_waiting(1);
        l.close().unwrap();
        assert!(goexec_net::is_closed(&a.join().unwrap()));
        let e = UnixStream::connect(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_unix_listener_ends_its_queued_connections() {
    let _w = watchdog("a_closed_unix_listener_ends_its_queued_connections", 60);
    let dir = std::env::temp_dir().join(format!("goexec-close-q-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    rt(2).run(move || {
        let l = UnixListener::bind(&path).unwrap();
        // Queued in the kernel, never accepted: a Unix listener shut down keeps these.
        let queued = UnixStream::connect(&path).unwrap();
        l.close().unwrap();
        queued
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        match (&queued).read(&mut [0u8; 4]) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            r => panic!("a queued connection after close: {r:?}"),
        }
        drop(l);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shutdown_both_from_another_goroutine_wakes_the_reader_with_end_of_stream() {
    let _w = watchdog("shutdown_both_wakes_the_reader", 60);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            let c2 = c.try_clone().unwrap();
            let reader = goexec::spawn(move || (&c2).read(&mut [0u8; 8]).map_err(|e| e.kind()));
            until_io_waiting(1);
            c.shutdown(Shutdown::Both).unwrap();
            assert_eq!(reader.join().unwrap(), Ok(0));
            // The peer sees the end too.
            assert_eq!((&s).read(&mut [0u8; 8]).unwrap(), 0);
            assert!((&c).write(b"x").is_err());

            let (a, b) = unix_pair();
            let a2 = a.try_clone().unwrap();
            let reader = goexec::spawn(move || (&a2).read(&mut [0u8; 8]).map_err(|e| e.kind()));
            until_io_waiting(1);
            a.shutdown(Shutdown::Both).unwrap();
            assert_eq!(reader.join().unwrap(), Ok(0));
            drop(b);
        });
    }
}

fn unix_pair() -> (UnixStream, UnixStream) {
    let dir = std::env::temp_dir().join(format!(
        "goexec-pair-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let a = UnixStream::connect(&path).unwrap();
    let (b, _) = l.accept().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (a, b)
}
