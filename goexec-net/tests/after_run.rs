//! Sockets that outlive the `run` that made them: read after `run` returned, on a plain
//! thread (blocking, with a deadline, and as a future), and from a goroutine of another
//! runtime. The data is written only once the reader sleeps, so each read has to be woken by
//! the poller of the runtime that is gone.

mod common;

use common::{rt, tid, wait_until_sleeping, watchdog};
use goexec_net::{TcpListener, TcpStream, UnixListener};
use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A connection made inside a run of its own: the accepted goexec end and the std client.
fn tcp_pair_from_a_finished_run() -> (TcpStream, std::net::TcpStream) {
    rt(1).run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    })
}

/// Writes `msg` to `peer` once thread `reader` sleeps (in its read), on a thread of its own.
fn write_once_asleep<W: Write + Send + 'static>(
    reader: u32,
    mut peer: W,
    msg: &'static [u8],
) -> std::thread::JoinHandle<W> {
    std::thread::spawn(move || {
        wait_until_sleeping(reader);
        peer.write_all(msg).unwrap();
        peer
    })
}

/// One read on this thread, with `msg` written once it sleeps.
fn read_woken(mut s: impl Read, peer: impl Write + Send + 'static, msg: &'static [u8]) {
    let writer = write_once_asleep(tid(), peer, msg);
    let mut buf = [0u8; 64];
    let got = s.read(&mut buf).map(|n| buf[..n].to_vec());
    writer.join().unwrap();
    assert_eq!(got.map_err(|e| e.kind()), Ok(msg.to_vec()));
}

#[test]
fn a_tcp_stream_from_a_finished_run_is_read_on_a_plain_thread() {
    let _w = watchdog(
        "a_tcp_stream_from_a_finished_run_is_read_on_a_plain_thread",
        60,
    );
    let (s, peer) = tcp_pair_from_a_finished_run();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    read_woken(&s, peer, b"after run");
}

#[test]
fn a_unix_stream_from_a_finished_run_is_read_on_a_plain_thread() {
    let _w = watchdog(
        "a_unix_stream_from_a_finished_run_is_read_on_a_plain_thread",
        60,
    );
    let dir = std::env::temp_dir().join(format!("goexec-net-after-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let p = path.clone();
    let (s, peer) = rt(2).run(move || {
        let listener = UnixListener::bind(&p).unwrap();
        let client = std::os::unix::net::UnixStream::connect(&p).unwrap();
        (listener.accept().unwrap().0, client)
    });
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let peer = write_once_asleep(tid(), peer, b"one");
    let mut buf = [0u8; 8];
    assert_eq!((&s).read(&mut buf).map_err(|e| e.kind()), Ok(3));
    // A second wait on the same socket: the poller thread still serves it.
    let peer = write_once_asleep(tid(), peer.join().unwrap(), b"two");
    assert_eq!((&s).read(&mut buf).map_err(|e| e.kind()), Ok(3));
    assert_eq!(&buf[..3], b"two");
    drop(peer.join().unwrap());
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_read_deadline_after_run_gets_data_in_time_and_times_out_without() {
    let _w = watchdog("a_read_deadline_after_run", 60);
    let (s, peer) = tcp_pair_from_a_finished_run();
    s.set_read_deadline(Some(Instant::now() + Duration::from_secs(5)))
        .unwrap();
    read_woken(&s, peer.try_clone().unwrap(), b"in time");

    let timeout = Duration::from_millis(300);
    s.set_read_deadline(None).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    let start = Instant::now();
    let err = (&s).read(&mut [0u8; 8]).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(took >= timeout && took < Duration::from_secs(5), "{took:?}");
    drop(peer);
}

#[test]
fn an_async_read_after_run_wakes_its_task() {
    use futures::io::AsyncReadExt;
    let _w = watchdog("an_async_read_after_run_wakes_its_task", 60);
    let (mut s, peer) = tcp_pair_from_a_finished_run();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (got_tx, got_rx) = mpsc::channel();
    // On a thread of its own, so that a read that is never woken fails the test below.
    std::thread::spawn(move || {
        tid_tx.send(tid()).unwrap();
        let mut buf = [0u8; 16];
        let n = futures::executor::block_on(AsyncReadExt::read(&mut s, &mut buf)).unwrap();
        got_tx.send(buf[..n].to_vec()).unwrap();
    });
    let writer = write_once_asleep(tid_rx.recv().unwrap(), peer, b"async");
    let got = got_rx.recv_timeout(Duration::from_secs(5));
    writer.join().unwrap();
    assert_eq!(got, Ok(b"async".to_vec()), "the task was never woken");
}

#[test]
fn a_socket_of_a_stopped_runtime_wakes_a_goroutine_of_another() {
    let _w = watchdog(
        "a_socket_of_a_stopped_runtime_wakes_a_goroutine_of_another",
        60,
    );
    let (s, mut peer) = tcp_pair_from_a_finished_run();
    let got = rt(2).run(move || {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let reader = goexec::spawn(move || {
            let mut buf = [0u8; 16];
            (&s).read(&mut buf).map(|n| buf[..n].to_vec())
        });
        while !goexec::runtime::dump().contains("[IO wait") {
            goexec::yield_now();
        }
        peer.write_all(b"other runtime").unwrap();
        reader.join().unwrap()
    });
    assert_eq!(got.map_err(|e| e.kind()), Ok(b"other runtime".to_vec()));
}

/// A listener made inside `run` accepts on a plain thread afterwards: the connection joins
/// the listener's poller (no runtime is needed to register it), and reads work.
#[test]
fn a_listener_accepts_on_a_plain_thread_after_run() {
    let _w = common::watchdog("a_listener_accepts_on_a_plain_thread_after_run", 60);
    let l = common::rt(1).run(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"hello").unwrap();
        c
    });
    let (mut s, _) = l.accept().expect("accept on a plain thread");
    let _peer = peer.join().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
}
