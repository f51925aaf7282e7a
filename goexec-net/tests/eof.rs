//! The end of a stream after a short read: data and the peer's close (FIN or RST) reach a
//! waiting read in one poller event; the read returns the data, and the next read must see
//! the end at once instead of waiting for an edge that already came. TCP and Unix streams,
//! at procs 1 and 2.

mod common;

use common::{rt, watchdog};
use goexec_net::{TcpListener, UnixListener};
use std::io::{self, ErrorKind, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

/// Rounds per test and procs value.
const ROUNDS: usize = 40;

/// How long a read may wait for the end; waiting this long is the failure.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// What the peer does once the server's read waits.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// Writes `hello`, then closes (FIN).
    DataThenClose,
    /// Writes `hello`, then closes with SO_LINGER 0 (RST).
    DataThenReset,
    /// Closes without writing.
    Close,
}

/// The server's side of one round: reads until the end of the stream or an error, while a
/// goroutine lets the peer act once this read waits in the poller.
///
/// That goroutine tells the peer to go when the dump shows the read in `IO wait`, then holds
/// its M until the peer has written and closed, so that at procs 1 no M polls in between and
/// the poller reports data and close in one event, the one that wakes the read. (At procs 2
/// an idle M may poll in between: some rounds see two events.)
fn read_to_end(conn: &mut impl Read, go: mpsc::Sender<()>, done: mpsc::Receiver<()>) -> Ending {
    let helper = goexec::spawn(move || {
        while !goexec::runtime::dump().contains("[IO wait") {
            goexec::yield_now();
        }
        go.send(()).unwrap();
        done.recv().unwrap();
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let end = loop {
        match conn.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    helper.join().unwrap();
    // After the end, reads keep saying so.
    let after = conn.read(&mut buf).map_err(|e| e.kind());
    Ending {
        got,
        end: end.map_err(|e| e.kind()),
        after,
    }
}

#[derive(Debug)]
struct Ending {
    got: Vec<u8>,
    end: Result<(), ErrorKind>,
    after: Result<usize, ErrorKind>,
}

/// What the server must see: the data, then the end. After a reset, Linux returns the data
/// that arrived before it, then `ConnectionReset` once, then `Ok(0)`.
fn check(e: &Ending, peer: Peer, what: &str) {
    let (data, end): (&[u8], _) = match peer {
        Peer::DataThenClose => (b"hello", Ok(())),
        Peer::DataThenReset => (b"hello", Err(ErrorKind::ConnectionReset)),
        Peer::Close => (b"", Ok(())),
    };
    assert!(
        e.got == data && e.end == end && e.after == Ok(0),
        "{what}: {peer:?}: got {e:?} (a TimedOut end: the read waited for an edge that had come)"
    );
}

/// The peer's half of a round, on a plain thread.
fn act<S: Write>(mut s: S, peer: Peer, reset: impl FnOnce(&S)) {
    if !matches!(peer, Peer::Close) {
        s.write_all(b"hello").unwrap();
    }
    if matches!(peer, Peer::DataThenReset) {
        reset(&s);
    }
}

fn tcp_rounds(peer: Peer) {
    for procs in [1, 2] {
        rt(procs).run(move || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            for round in 0..ROUNDS {
                let (go_tx, go_rx) = mpsc::channel();
                let (done_tx, done_rx) = mpsc::channel();
                let client = std::thread::spawn(move || {
                    let s = std::net::TcpStream::connect(addr).unwrap();
                    go_rx.recv().unwrap();
                    act(s, peer, set_linger_zero);
                    done_tx.send(()).unwrap();
                });
                let (mut conn, _) = listener.accept().unwrap();
                conn.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                let e = read_to_end(&mut conn, go_tx, done_rx);
                client.join().unwrap();
                check(&e, peer, &format!("tcp procs {procs} round {round}"));
            }
        });
    }
}

fn unix_rounds(name: &str, peer: Peer) {
    let dir = std::env::temp_dir().join(format!("goexec-net-eof-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    for procs in [1, 2] {
        let _ = std::fs::remove_file(&path);
        let path = path.clone();
        rt(procs).run(move || {
            let listener = UnixListener::bind(&path).unwrap();
            for round in 0..ROUNDS {
                let (go_tx, go_rx) = mpsc::channel();
                let (done_tx, done_rx) = mpsc::channel();
                let p = path.clone();
                let client = std::thread::spawn(move || {
                    let s = std::os::unix::net::UnixStream::connect(p).unwrap();
                    go_rx.recv().unwrap();
                    act(s, peer, |_| unreachable!("no reset on a Unix stream"));
                    done_tx.send(()).unwrap();
                });
                let (mut conn, _) = listener.accept().unwrap();
                conn.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                let e = read_to_end(&mut conn, go_tx, done_rx);
                client.join().unwrap();
                check(&e, peer, &format!("unix procs {procs} round {round}"));
            }
        });
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn set_linger_zero(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a valid socket with a correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
}

#[test]
fn tcp_data_then_close_reaches_a_waiting_read_as_data_then_end() {
    let _w = watchdog("tcp_data_then_close", 120);
    tcp_rounds(Peer::DataThenClose);
}

#[test]
fn tcp_data_then_reset_reaches_a_waiting_read_as_data_then_reset() {
    let _w = watchdog("tcp_data_then_reset", 120);
    tcp_rounds(Peer::DataThenReset);
}

#[test]
fn tcp_close_alone_reaches_a_waiting_read_as_end() {
    let _w = watchdog("tcp_close_alone", 120);
    tcp_rounds(Peer::Close);
}

#[test]
fn unix_data_then_close_reaches_a_waiting_read_as_data_then_end() {
    let _w = watchdog("unix_data_then_close", 120);
    unix_rounds("data", Peer::DataThenClose);
}

#[test]
fn unix_close_alone_reaches_a_waiting_read_as_end() {
    let _w = watchdog("unix_close_alone", 120);
    unix_rounds("close", Peer::Close);
}

/// As std's sockets: reading into an empty buffer returns Ok(0) at once, data queued or not;
/// a timeout too large for an `Instant` waits for ever instead of panicking.
#[test]
fn empty_reads_and_duration_max_timeouts() {
    let _w = common::watchdog("empty_reads_and_duration_max_timeouts", 30);
    common::rt(1).run(|| {
        use std::io::{Read, Write};
        let l = goexec_net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        assert_eq!(s.read(&mut []).unwrap(), 0);
        s.set_read_timeout(Some(std::time::Duration::MAX)).unwrap();
        peer.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    });
}
