//! Goroutine tracebacks (`runtime::stack`): parked goroutines listed with the user's function
//! that parked at the top of their frames, at procs 1 and 2.

mod common;

use goexec::chan;
use goexec::sync::{Mutex, WaitGroup};
use std::time::Duration;

#[inline(never)]
fn parked_in_chan_recv(rx: chan::Receiver<u32>) {
    let _ = rx.recv();
}

fn scenario(procs: usize) {
    let rt = goexec::Runtime::builder().procs(procs).build().unwrap();
    rt.run(|| {
        let (_tx, rx) = chan::bounded::<u32>(0);
        let h = goexec::spawn(move || parked_in_chan_recv(rx));
        loop {
            let s = goexec::runtime::stack(true);
            if s.contains("[chan receive") {
                println!("{s}");
                break;
            }
            goexec::yield_now();
        }
        drop(_tx);
        h.join().unwrap();
    });
}

#[test]
fn chan_recv_procs_1() {
    scenario(1);
}
