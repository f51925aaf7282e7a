//! Running out of file descriptors: `accept` returns EMFILE as an error (no panic, no crash)
//! and accepts the waiting connections once descriptors are free again. In its own test
//! binary: it lowers the process's open-file limit, which would break tests running beside it.

mod common;
use common::{nofile, set_nofile};
use goexec_net::TcpListener;
use std::io::{Read, Write};

/// The highest open descriptor.
fn max_fd() -> i32 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .max()
        .unwrap()
}

#[test]
fn accept_returns_emfile_and_recovers() {
    goexec::Runtime::builder()
        .procs(1)
        .build()
        .unwrap()
        .run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // Three peers wait in the listen backlog (the kernel completes their handshakes).
            let mut peers: Vec<_> = (0..3)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();

            // No descriptor left: the limit just above the highest one in use, and every free
            // number below it filled.
            let saved = nofile();
            set_nofile(&libc::rlimit {
                rlim_cur: (max_fd() + 1) as libc::rlim_t,
                rlim_max: saved.rlim_max,
            });
            let mut filler = Vec::new();
            while let Ok(f) = std::fs::File::open("/dev/null") {
                filler.push(f);
            }

            for _ in 0..3 {
                let err = listener.accept().map(|_| ()).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
            }

            // Descriptors again: every waiting peer is accepted and served.
            drop(filler);
            set_nofile(&saved);
            for i in 0..peers.len() {
                let (mut conn, from) = listener.accept().unwrap();
                let peer = peers.iter_mut().find(|p| p.local_addr().unwrap() == from);
                let peer = peer.expect("an accepted connection from one of our peers");
                peer.write_all(&[i as u8]).unwrap();
                let mut b = [0u8; 1];
                conn.read_exact(&mut b).unwrap();
                conn.write_all(&b).unwrap();
                let mut back = [0u8; 1];
                peer.read_exact(&mut back).unwrap();
                assert_eq!(back[0], i as u8);
            }
        });
}
