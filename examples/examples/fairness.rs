//! Go's classic fairness program, on goexec: at one P, a goroutine spins in pure arithmetic
//! forever while main sleeps for a second and prints. Before Go 1.14 this hung (the spinning
//! goroutine never gave up its P); goexec has no signals, so sysmon instead hands the spinner's
//! P to another thread after 10 ms and main's timer fires there. A ticker keeps ticking
//! meanwhile, and the timings it prints show how late its ticks were.
//!
//! ```text
//! cargo run --release -p goexec-examples --example fairness
//! ```

use goexec::time::{sleep, Ticker};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn busy() {
    let mut x = 1u64;
    loop {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn main() {
    let rt = goexec::Runtime::builder()
        .procs(1)
        .build()
        .expect("runtime");
    let start = Instant::now();
    let worst = rt.run(move || {
        goexec::spawn(busy);
        let ticks = goexec::spawn(|| {
            let ticker = Ticker::new(Duration::from_millis(10));
            let mut last = Instant::now();
            let mut worst = Duration::ZERO;
            for _ in 0..50 {
                ticker.recv();
                worst = worst.max(last.elapsed());
                last = Instant::now();
            }
            worst
        });
        sleep(Duration::from_secs(1));
        println!(
            "main woke after {:?} with a goroutine spinning at procs 1",
            start.elapsed()
        );
        ticks.join().expect("ticker")
    });
    println!("a 10 ms ticker beside it: longest gap {worst:?}");
    // The spinning goroutine's thread was left to it when main returned (Go would have ended
    // the process): end it here.
    std::process::exit(0);
}
