//! Go's deadlock report: main sends on a channel nobody receives from. Instead of hanging,
//! goexec prints Go's message and every goroutine, and exits with status 2.
//!
//! ```text
//! cargo run --example deadlock
//! fatal error: all goroutines are asleep - deadlock!
//!
//! goroutine 1 [chan send, 12 ms]:
//!         spawned at examples/examples/deadlock.rs:...
//! ```

fn main() {
    goexec::run(|| {
        let (tx, _rx) = goexec::chan::bounded::<i32>(0);
        println!("sending on a channel nobody receives from...");
        let _ = tx.send(1);
        unreachable!("the send completed");
    });
}
