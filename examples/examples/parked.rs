//! Goroutines parked four ways, for a debugger to look at (`goexec/gdb/goexec-gdb.py`).
//!
//! ```text
//! cargo build -p goexec-examples --example parked
//! gdb -x goexec/gdb/goexec-gdb.py -ex 'break goexec_example_parked' -ex run \
//!     -ex 'info goroutines' target/debug/examples/parked
//! ```
//!
//! Four goroutines park, each in its own function: in a channel receive, on a held
//! `sync::Mutex`, in a `WaitGroup` wait and in a sleep. Once `runtime::dump()` shows all four
//! parked, main calls `goexec_example_parked` (a place for a breakpoint), prints every
//! goroutine's stack, then releases them and joins them.

use goexec::sync::{Mutex, WaitGroup};
use goexec::{chan, JoinHandle};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the sleeper sleeps: well past the moment everyone is parked, short enough for a
/// run on its own to end promptly.
const SLEEP: Duration = Duration::from_secs(2);

#[inline(never)]
fn wait_for_message(rx: chan::Receiver<u64>) -> u64 {
    rx.recv().unwrap_or(0)
}

#[inline(never)]
fn wait_for_lock(m: &Mutex<u64>) -> u64 {
    *m.lock() + 1
}

// These two return how long they waited: work after the call keeps it from being a tail call,
// which would leave no frame of theirs on the stack.
#[inline(never)]
fn wait_for_group(wg: &WaitGroup) -> Duration {
    let start = Instant::now();
    wg.wait();
    start.elapsed()
}

#[inline(never)]
fn take_a_nap() -> Duration {
    let start = Instant::now();
    goexec::time::sleep(SLEEP);
    start.elapsed()
}

/// Called once every goroutine is parked: a breakpoint here sees them all waiting.
#[no_mangle]
#[inline(never)]
pub extern "C" fn goexec_example_parked() {
    // Keeps the call (and the symbol) in optimised builds.
    std::hint::black_box(());
}

/// The wait reasons `runtime::dump()` shows for the four goroutines.
const REASONS: [&str; 4] = [
    "[chan receive",
    "[sync.Mutex.Lock",
    "[sync.WaitGroup.Wait",
    "[sleep",
];

fn main() {
    goexec::run(|| {
        let (tx, rx) = chan::bounded::<u64>(0);
        let mutex = Arc::new(Mutex::new(41));
        let held = mutex.lock();
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);

        let handles: Vec<JoinHandle<()>> = vec![
            goexec::spawn(move || assert_eq!(wait_for_message(rx), 7)),
            goexec::spawn({
                let m = mutex.clone();
                move || assert_eq!(wait_for_lock(&m), 42)
            }),
            goexec::spawn({
                let wg = wg.clone();
                move || {
                    wait_for_group(&wg);
                }
            }),
            goexec::spawn(|| assert!(take_a_nap() >= SLEEP)),
        ];

        // Until dump() shows each one parked; yielding lets them get there.
        while !REASONS.iter().all(|r| goexec::runtime::dump().contains(r)) {
            goexec::yield_now();
        }

        goexec_example_parked();
        print!("{}", goexec::runtime::stack(true));

        tx.send(7).unwrap();
        drop(held);
        wg.done();
        for h in handles {
            h.join().unwrap();
        }
        println!("parked: all goroutines finished");
    });
}
