//! Go's deadlines reach operations already waiting: `set_read_deadline`, `set_write_deadline`
//! and `set_deadline`, called from any goroutine or thread, wake a read, write, accept or
//! `recv_from` that waits once the new deadline has passed, and a wait re-arms when its
//! deadline moves later. `set_read_deadline(Some(Instant::now()))` cancels a read.

mod common;
use common::{rt, tid, until_io_waiting, wait_until_sleeping, watchdog};
use goexec_net::{TcpListener, TcpStream, UdpSocket, UnixListener};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// A connected pair: (client, server side).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// The elapsed time of an operation that a deadline set by someone else ended: well under the
/// test's bound, which a read never woken would reach.
fn prompt(t: Instant) {
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_read_deadline_set_to_now_cancels_a_waiting_read() {
    let _w = watchdog("a_read_deadline_set_to_now_cancels_a_waiting_read", 60);
    for procs in [1, 2] {
        rt(procs).run(|| {
            let (c, _s) = tcp_pair();
            let c2 = c.try_clone().unwrap();
            let reader = goexec::spawn(move || {
                let t = Instant::now();
                let r = (&c2).read(&mut [0u8; 16]).map_err(|e| e.kind());
                (r, t)
            });
            until_io_waiting(1);
            c.set_read_deadline(Some(Instant::now())).unwrap();
            let (r, t) = reader.join().unwrap();
            assert_eq!(r, Err(ErrorKind::TimedOut));
            prompt(t);
            // The deadline stays: the next read fails at once, even with data queued (Go).
            c.set_read_deadline(Some(Instant::now())).unwrap();
            (&_s).write_all(b"x").unwrap();
            let e = (&c).read(&mut [0u8; 1]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            // Cleared, the data is there.
            c.set_read_deadline(None).unwrap();
            assert_eq!((&c).read(&mut [0u8; 1]).unwrap(), 1);
        });
    }
}

#[test]
fn a_deadline_set_from_a_plain_thread_wakes_a_waiting_goroutine() {
    let _w = watchdog(
        "a_deadline_set_from_a_plain_thread_wakes_a_waiting_goroutine",
        60,
    );
    rt(2).run(|| {
        let (c, _s) = tcp_pair();
        let c2 = c.try_clone().unwrap();
        let reader = goexec::spawn(move || (&c2).read(&mut [0u8; 16]).map_err(|e| e.kind()));
        until_io_waiting(1);
        std::thread::spawn(move || {
            c.set_deadline(Some(Instant::now() + Duration::from_millis(30)))
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(reader.join().unwrap(), Err(ErrorKind::TimedOut));
    });
}

#[test]
fn a_deadline_reaches_a_plain_thread_waiting_in_a_read() {
    let _w = watchdog("a_deadline_reaches_a_plain_thread_waiting_in_a_read", 60);
    let (c, s) = rt(1).run(tcp_pair);
    let c2 = c.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        tx.send(tid()).unwrap();
        let t = Instant::now();
        ((&c2).read(&mut [0u8; 16]).map_err(|e| e.kind()), t)
    });
    wait_until_sleeping(rx.recv().unwrap());
    c.set_read_deadline(Some(Instant::now())).unwrap();
    let (r, t) = reader.join().unwrap();
    assert_eq!(r, Err(ErrorKind::TimedOut));
    prompt(t);
    drop(s);
}

#[test]
fn a_deadline_moved_later_is_re_armed_and_moved_earlier_fires_sooner() {
    let _w = watchdog("a_deadline_moved_later_is_re_armed", 60);
    rt(2).run(|| {
        let (c, s) = tcp_pair();
        // Moved later: the first deadline passes while the read waits; the read goes on
        // waiting and gets the data sent after it.
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(200)))
            .unwrap();
        let c2 = c.try_clone().unwrap();
        let reader = goexec::spawn(move || {
            let mut b = [0u8; 4];
            (&c2)
                .read(&mut b)
                .map(|n| b[..n].to_vec())
                .map_err(|e| e.kind())
        });
        until_io_waiting(1);
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(30)))
            .unwrap();
        goexec::time::sleep(Duration::from_millis(400));
        assert!(!reader.is_finished(), "the read ended at the old deadline");
        (&s).write_all(b"late").unwrap();
        assert_eq!(reader.join().unwrap(), Ok(b"late".to_vec()));
        // Moved earlier: a read waiting with a deadline an hour away ends at the new one.
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(3600)))
            .unwrap();
        let c2 = c.try_clone().unwrap();
        let reader = goexec::spawn(move || {
            let t = Instant::now();
            ((&c2).read(&mut [0u8; 4]).map_err(|e| e.kind()), t)
        });
        until_io_waiting(1);
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(50)))
            .unwrap();
        let (r, t) = reader.join().unwrap();
        assert_eq!(r, Err(ErrorKind::TimedOut));
        prompt(t);
    });
}

#[test]
fn a_write_deadline_wakes_a_write_waiting_on_a_full_socket() {
    let _w = watchdog("a_write_deadline_wakes_a_waiting_write", 60);
    rt(2).run(|| {
        let (c, _s) = tcp_pair();
        let c2 = c.try_clone().unwrap();
        let writer = goexec::spawn(move || {
            let big = vec![7u8; 1 << 20];
            loop {
                if let Err(e) = (&c2).write(&big) {
                    return e.kind();
                }
            }
        });
        until_io_waiting(1);
        // The read side's deadline does not touch the writer.
        c.set_read_deadline(Some(Instant::now())).unwrap();
        goexec::time::sleep(Duration::from_millis(50));
        assert!(!writer.is_finished());
        c.set_write_deadline(Some(Instant::now())).unwrap();
        assert_eq!(writer.join().unwrap(), ErrorKind::TimedOut);
    });
}

#[test]
fn a_listener_deadline_wakes_a_waiting_accept() {
    let _w = watchdog("a_listener_deadline_wakes_a_waiting_accept", 60);
    rt(2).run(|| {
        let l = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let l2 = l.clone();
        let acceptor = goexec::spawn(move || l2.accept().map(drop).map_err(|e| e.kind()));
        until_io_waiting(1);
        l.set_deadline(Some(Instant::now())).unwrap();
        assert_eq!(acceptor.join().unwrap(), Err(ErrorKind::TimedOut));
        // Cleared, accept works again.
        l.set_deadline(None).unwrap();
        let addr = l.local_addr().unwrap();
        let c = goexec::spawn(move || TcpStream::connect(addr).unwrap());
        l.accept().unwrap();
        c.join().unwrap();

        let dir = std::env::temp_dir().join(format!("goexec-dl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ul = std::sync::Arc::new(UnixListener::bind(dir.join("s")).unwrap());
        let ul2 = ul.clone();
        let acceptor = goexec::spawn(move || ul2.accept().map(drop).map_err(|e| e.kind()));
        until_io_waiting(1);
        ul.set_deadline(Some(Instant::now() + Duration::from_millis(20)))
            .unwrap();
        assert_eq!(acceptor.join().unwrap(), Err(ErrorKind::TimedOut));
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn a_read_deadline_wakes_a_waiting_recv_from() {
    let _w = watchdog("a_read_deadline_wakes_a_waiting_recv_from", 60);
    rt(1).run(|| {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let u2 = u.try_clone().unwrap();
        let r = goexec::spawn(move || u2.recv_from(&mut [0u8; 8]).map(drop).map_err(|e| e.kind()));
        until_io_waiting(1);
        u.set_read_deadline(Some(Instant::now())).unwrap();
        assert_eq!(r.join().unwrap(), Err(ErrorKind::TimedOut));
    });
}

/// 2^64 ns is 18,446,744,073.7 s: a deadline this far away once wrapped round to the past.
const FAR: Duration = Duration::from_secs(18_446_744_074);

#[test]
fn a_deadline_or_timeout_584_years_away_never_fires() {
    let _w = watchdog("a_deadline_or_timeout_584_years_away_never_fires", 60);
    rt(2).run(|| {
        for deadline in [true, false] {
            let (a, b) = tcp_pair();
            if deadline {
                a.set_read_deadline(Some(Instant::now() + FAR)).unwrap();
            } else {
                a.set_read_timeout(Some(FAR)).unwrap();
            }
            let a2 = a.try_clone().unwrap();
            let reader = goexec::spawn(move || (&a2).read(&mut [0u8; 1]).map_err(|e| e.kind()));
            until_io_waiting(1);
            // Long enough for a wrapped deadline (in the past) to have ended the read.
            goexec::time::sleep(Duration::from_millis(300));
            assert!(!reader.is_finished(), "deadline {deadline}: the read ended");
            (&b).write_all(b"x").unwrap();
            assert_eq!(reader.join().unwrap(), Ok(1));
        }
    });
}
