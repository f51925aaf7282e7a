//! Stackful coroutines switching on one thread: a generator pipeline.
//!
//! A producer coroutine yields the Fibonacci numbers, a filter coroutine keeps the even ones,
//! and main prints the first ten. Each `resume` switches stacks; nothing is buffered.
//!
//! Run with `cargo run --release -p goexec-examples --example coroutines`.

use goexec::runtime::{Coroutine, CoroutineResult};

fn main() -> Result<(), goexec::stack::StackError> {
    // Yields 0, 1, 1, 2, 3, 5, ... forever.
    let mut fib = Coroutine::<(), u64, ()>::new(|y, ()| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.suspend(a);
            (a, b) = (b, a.wrapping_add(b));
        }
    })?;
    // Pulls from `fib` (its own coroutine, resumed from inside this one) and yields evens.
    let mut evens = Coroutine::<(), u64, ()>::new(move |y, ()| loop {
        if let CoroutineResult::Yield(n) = fib.resume(()) {
            if n % 2 == 0 {
                y.suspend(n);
            }
        }
    })?;
    print!("even Fibonacci numbers:");
    for _ in 0..10 {
        if let CoroutineResult::Yield(n) = evens.resume(()) {
            print!(" {n}");
        }
    }
    println!();
    println!("coroutine {} switched stacks {} times", evens.id(), 2 * 10);
    Ok(())
}
