//! Inputs at the edges of their types: `Duration::MAX` as a timeout means "never", as in std.

mod common;

use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;

#[test]
fn duration_max_timeouts_wait_for_ever_instead_of_panicking() {
    let _w = common::watchdog("duration_max_timeouts", 30);
    goexec::run(|| {
        let (tx, rx) = goexec::chan::bounded::<u8>(1);
        assert_eq!(tx.send_timeout(1, Duration::MAX), Ok(()));
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(1));
        // A receive that has to wait for its value, with no deadline in practice.
        let h = goexec::spawn(move || rx.recv_timeout(Duration::MAX));
        tx.send(2).unwrap();
        assert_eq!(h.join().unwrap(), Ok(2));
        assert_eq!(goexec::time::timeout(Duration::MAX, || 3).unwrap(), 3);
        let mut sleep = Box::pin(goexec::time::sleep_async(Duration::MAX));
        assert!(sleep
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
    });
}
