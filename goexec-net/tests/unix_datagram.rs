//! `UnixDatagram` on the netpoller: pairs, bound and unbound sockets, timeouts and deadlines,
//! a receiver and a sender in different goroutines (also through a full queue), use after
//! the runtime's `run` returned, conversions, and errors on bad input.

mod common;

use common::{rt, tid, wait_until_sleeping, watchdog};
use goexec_net::UnixDatagram;
use std::io::ErrorKind;
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A fresh directory for socket files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("goexec-dgram-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn recv_vec(s: &UnixDatagram) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = s.recv(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn a_pair_talks_both_ways() {
    let _w = watchdog("a_pair_talks_both_ways", 60);
    rt(1).run(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"to b").unwrap();
        b.send(b"to a").unwrap();
        assert_eq!(recv_vec(&b), b"to b");
        assert_eq!(recv_vec(&a), b"to a");
        assert!(a.local_addr().unwrap().is_unnamed());
        assert!(a.peer_addr().unwrap().is_unnamed());
        assert!(format!("{a:?}").starts_with("UnixDatagram"));
        // A datagram longer than the buffer is cut to fit, and the rest dropped.
        a.send(b"0123456789").unwrap();
        a.send(b"next").unwrap();
        let mut small = [0u8; 4];
        assert_eq!(b.recv(&mut small).unwrap(), 4);
        assert_eq!(&small, b"0123");
        assert_eq!(recv_vec(&b), b"next");
    });
}

#[test]
fn bound_sockets_send_to_and_recv_from_by_path() {
    let _w = watchdog("bound_sockets_send_to_and_recv_from_by_path", 60);
    let dir = TempDir::new("bound");
    let (pa, pb) = (dir.join("a"), dir.join("b"));
    rt(2).run(move || {
        let a = UnixDatagram::bind(&pa).unwrap();
        let b = UnixDatagram::bind(&pb).unwrap();
        assert_eq!(a.local_addr().unwrap().as_pathname(), Some(pa.as_path()));
        a.send_to(b"hello", &pb).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from.as_pathname(), Some(pa.as_path()));
        // Answer the sender by its address.
        b.send_to(b"back", from.as_pathname().unwrap()).unwrap();
        assert_eq!(recv_vec(&a), b"back");
        assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    });
}

#[test]
fn an_unbound_socket_connects_and_sends() {
    let _w = watchdog("an_unbound_socket_connects_and_sends", 60);
    let dir = TempDir::new("unbound");
    let path = dir.join("server");
    rt(1).run(move || {
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        assert!(client.local_addr().unwrap().is_unnamed());
        client.connect(&path).unwrap();
        assert_eq!(
            client.peer_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        client.send(b"ping").unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert!(from.is_unnamed());
    });
}

#[test]
fn read_timeout_and_deadline_give_timed_out() {
    let _w = watchdog("read_timeout_and_deadline_give_timed_out", 60);
    rt(1).run(|| {
        let (a, _b) = UnixDatagram::pair().unwrap();
        let timeout = Duration::from_millis(200);
        a.set_read_timeout(Some(timeout)).unwrap();
        assert_eq!(a.read_timeout().unwrap(), Some(timeout));
        let start = Instant::now();
        let err = a.recv(&mut [0u8; 8]).unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(
            took >= timeout && took < Duration::from_secs(10),
            "{took:?}"
        );
        assert_eq!(
            a.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );

        a.set_read_timeout(None).unwrap();
        a.set_read_deadline(Some(Instant::now() + Duration::from_millis(100)))
            .unwrap();
        assert_eq!(
            a.recv_from(&mut [0u8; 8]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        // A deadline already past fails at once, also for a clone (they share it).
        a.set_deadline(Some(Instant::now())).unwrap();
        let clone = a.try_clone().unwrap();
        assert_eq!(
            clone.recv(&mut [0u8; 8]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
    });
}

/// One goroutine sends 5000 numbered datagrams, another receives them in order: the
/// receiver parks on an empty queue, the sender on a full one (a Unix datagram queue holds
/// far fewer).
#[test]
fn a_goroutine_receives_while_another_sends() {
    const N: u32 = 5000;
    let _w = watchdog("a_goroutine_receives_while_another_sends", 120);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let (a, b) = UnixDatagram::pair().unwrap();
            let receiver = goexec::spawn(move || {
                let mut buf = [0u8; 64];
                for i in 0..N {
                    let n = b.recv(&mut buf).unwrap();
                    assert_eq!(&buf[..n], format!("message {i}").as_bytes());
                }
            });
            // The receiver waits for the first one.
            while !goexec::runtime::dump().contains("[IO wait") {
                goexec::yield_now();
            }
            for i in 0..N {
                a.send(format!("message {i}").as_bytes()).unwrap();
            }
            receiver.join().unwrap();
        });
    }
}

#[test]
fn a_socket_from_a_finished_run_is_read_on_a_plain_thread() {
    let _w = watchdog("a_socket_from_a_finished_run_is_read_on_a_plain_thread", 60);
    let (a, b) = rt(1).run(|| UnixDatagram::pair().unwrap());
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The datagram is sent only once this thread sleeps in its receive, so the gone
    // runtime's poller must wake it.
    let reader = tid();
    let sender = std::thread::spawn(move || {
        wait_until_sleeping(reader);
        b.send(b"after run").unwrap();
        b
    });
    let mut buf = [0u8; 16];
    let got = a.recv(&mut buf).map(|n| buf[..n].to_vec());
    let b = sender.join().unwrap();
    assert_eq!(got.map_err(|e| e.kind()), Ok(b"after run".to_vec()));

    // The timeout still holds there.
    a.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(a.recv(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    drop(b);
}

#[test]
fn from_std_and_into_std_keep_the_socket() {
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    let _w = watchdog("from_std_and_into_std_keep_the_socket", 60);
    rt(1).run(|| {
        let (sa, sb) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let a = UnixDatagram::from_std(sa).unwrap();
        sb.send(b"in").unwrap();
        assert_eq!(recv_vec(&a), b"in");

        // A clone keeps working after into_std took a duplicate.
        let clone = a.try_clone().unwrap();
        let dup = a.into_std().unwrap();
        assert_ne!(dup.as_raw_fd(), clone.as_raw_fd());
        sb.send(b"clone").unwrap();
        assert_eq!(recv_vec(&clone), b"clone");
        // The last handle gives the socket itself, blocking.
        let own = clone.into_std().unwrap();
        own.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        sb.send(b"std").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(own.recv(&mut buf).unwrap(), 3);
        drop(dup);

        // SAFETY: the descriptor comes from `into_raw_fd`, which gave up owning it.
        let back = unsafe { UnixDatagram::from_raw_fd(own.into_raw_fd()) };
        sb.send(b"raw").unwrap();
        assert_eq!(recv_vec(&back), b"raw");
    });
}

#[test]
fn shutdown_ends_receives_and_fails_sends() {
    let _w = watchdog("shutdown_ends_receives_and_fails_sends", 60);
    rt(2).run(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        // A receiver waiting now is woken with the end.
        let waiting = {
            let a = a.try_clone().unwrap();
            goexec::spawn(move || a.recv(&mut [0u8; 8]).map_err(|e| e.kind()))
        };
        while !goexec::runtime::dump().contains("[IO wait") {
            goexec::yield_now();
        }
        b.send(b"queued").unwrap();
        // The waiter may take "queued" or the end; whatever it leaves comes next.
        a.shutdown(Shutdown::Read).unwrap();
        let first = waiting.join().unwrap();
        if first == Ok(0) {
            assert_eq!(recv_vec(&a), b"queued", "queued data comes before the end");
        } else {
            assert_eq!(first, Ok(6));
        }
        assert_eq!(a.recv(&mut [0u8; 8]).unwrap(), 0);
        let (n, from) = a.recv_from(&mut [0u8; 8]).unwrap();
        assert_eq!(n, 0);
        assert!(from.is_unnamed());

        b.shutdown(Shutdown::Write).unwrap();
        assert_eq!(b.send(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
        assert!(a.take_error().unwrap().is_none());
    });
}

#[test]
fn bad_input_gives_errors_not_panics() {
    let dir = TempDir::new("bad");
    let (missing, file, taken) = (dir.join("missing"), dir.join("file"), dir.join("taken"));
    std::fs::write(&file, b"not a socket").unwrap();
    rt(1).run(move || {
        let s = UnixDatagram::unbound().unwrap();
        assert_eq!(s.connect(&missing).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(
            s.connect(&file).unwrap_err().kind(),
            ErrorKind::ConnectionRefused
        );
        assert_eq!(
            s.send_to(b"x", &missing).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(s.send(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
        let _t = UnixDatagram::bind(&taken).unwrap();
        assert_eq!(
            UnixDatagram::bind(&taken).unwrap_err().kind(),
            ErrorKind::AddrInUse
        );
        // A bound socket whose file is gone: connecting to its path finds nothing.
        drop(_t);
        std::fs::remove_file(&taken).unwrap();
        assert_eq!(s.connect(&taken).unwrap_err().kind(), ErrorKind::NotFound);
    });
    // Outside a goroutine there is no runtime to register with.
    assert_eq!(
        UnixDatagram::unbound().unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn a_read_shutdown_seen_by_one_waiting_receiver_is_seen_by_a_later_one_too() {
    // UnixDatagram::recv's loop step by step, with two receivers: A waits in the poller; B's
    // recv said WouldBlock before the shutdown, and B reaches the wait after the shutdown's
    // one edge woke A. A datagram socket shut down for reading raises no edge after that, so
    // B must see the hang-up mark, not sleep for ever.
    let _w = watchdog("a_read_shutdown_seen_by_a_later_receiver", 60);
    rt(2).run(|| {
        let (ours, _peer) = std::os::unix::net::UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut sock = goexec::mio::net::UnixDatagram::from_std(ours);
        let reg = std::sync::Arc::new(goexec::netpoll::Registration::new(&mut sock).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let reg_a = reg.clone();
        let a = std::thread::spawn(move || {
            tx.send(tid()).unwrap();
            reg_a.wait_readable(None)
        });
        wait_until_sleeping(rx.recv().unwrap());
        // B: its recv says WouldBlock.
        let mut buf = [0u8; 8];
        assert_eq!(
            sock.recv(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        // The shutdown's edge wakes A.
        sock.shutdown(Shutdown::Read).unwrap();
        goexec::blocking(|| a.join().unwrap()).unwrap();
        // B waits now: it returns at once.
        let t = Instant::now();
        let r = reg.wait_readable(Some(Instant::now() + Duration::from_secs(10)));
        assert!(
            r.is_ok() && t.elapsed() < Duration::from_secs(5),
            "{r:?} after {:?}",
            t.elapsed()
        );
        assert!(reg.read_hung_up());
        reg.deregister(&mut sock);
    });
}

#[test]
fn a_shutdown_through_the_descriptor_ends_receives_too() {
    let _w = watchdog("a_shutdown_through_the_descriptor_ends_receives_too", 60);
    rt(2).run(|| {
        let (a, _b) = UnixDatagram::pair().unwrap();
        let a2 = a.try_clone().unwrap();
        let r = goexec::spawn(move || a2.recv(&mut [0u8; 8]).map_err(|e| e.kind()));
        socket2::SockRef::from(&a).shutdown(Shutdown::Read).unwrap();
        assert_eq!(r.join().unwrap(), Ok(0));
        assert_eq!(a.recv(&mut [0u8; 8]).unwrap(), 0);
    });
}
