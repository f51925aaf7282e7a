//! A first look at goexec: `#[goexec::main]`, `go!` and `select!`.
//!
//! ```text
//! cargo run --release -p goexec-examples --example hello
//! ```
//!
//! Three workers report on a channel; main selects between their reports and a timeout.
//! Runs on 2 Ps (`procs = 2`) and checks that it does.

use goexec::{chan, go, select};
use std::time::Duration;

fn worker(id: u64, results: chan::Sender<String>) {
    goexec::time::sleep(Duration::from_millis(10 * id));
    let _ = results.send(format!(
        "worker {id} done on goroutine {}",
        goexec::runtime::goid()
    ));
}

#[goexec::main(procs = 2)]
fn main() {
    assert_eq!(
        goexec::runtime::gomaxprocs(),
        2,
        "#[goexec::main(procs = 2)]"
    );
    let (tx, rx) = chan::bounded(0);
    for id in 1..=3 {
        go!(worker(id, tx.clone())); // id and the Sender are evaluated here, as in Go
    }
    drop(tx); // the channel closes when the last worker's Sender goes
    let timeout = chan::after(Duration::from_secs(5));
    loop {
        select! {
            recv(rx) -> msg => match msg {
                Ok(msg) => println!("{msg}"),
                Err(_) => break, // every worker is done
            },
            recv(timeout) -> _ => {
                println!("timed out");
                std::process::exit(1);
            }
        }
    }
    println!("all done on {} Ps", goexec::runtime::gomaxprocs());
}
