//! `go!`, `#[goexec::main]` and `#[goexec::test]`: Go's evaluation rules for `go`, method
//! receivers, blocks and closures, values through `join`; this file's tests use
//! `#[goexec::test]` themselves.

use goexec::go;
use std::sync::Arc;

fn add3(a: u32, b: u32, c: u32) -> u32 {
    a + b + c
}

fn sees(i: u32) -> u32 {
    i
}

/// The id it was given, and whether that is the id of the goroutine running it.
fn echo_id(given: u64) -> (u64, bool) {
    (given, given == goexec::runtime::goid())
}

#[goexec::test]
fn arguments_are_evaluated_at_the_go_site_in_order() {
    // Go: `i := 1; go f(i); i = 2` -> f sees 1.
    let mut i = 1;
    let h = go!(sees(i));
    i = 2;
    assert_eq!(h.join().unwrap(), 1);
    assert_eq!(i, 2);

    // Evaluated by the goroutine running go!, not by the new one.
    let caller = go!(echo_id(goexec::runtime::goid()));
    assert_eq!(caller.join().unwrap(), (1, false));

    // The function value first, then the arguments left to right, all before the goroutine
    // runs (this goroutine keeps running: nothing has yielded yet).
    let mut order = Vec::new();
    let mut note = |x: u32| {
        order.push(x);
        x
    };
    let pick = |_: u32| add3;
    let h = go!(pick(note(0))(note(1), note(2), note(3)));
    assert_eq!(order, [0, 1, 2, 3]);
    assert_eq!(h.join().unwrap(), 6);
}

struct Counter {
    base: u64,
}

impl Counter {
    fn plus(&self, x: u64) -> u64 {
        self.base + x
    }

    fn into_total(self, xs: Vec<u64>) -> u64 {
        self.base + xs.iter().sum::<u64>()
    }
}

#[goexec::test(procs = 2)]
fn method_receivers_are_evaluated_at_the_go_site() {
    let c = Counter { base: 10 };
    assert_eq!(go!(c.plus(5)).join().unwrap(), 15);

    // Receiver, then arguments, at the go site.
    let mut order = Vec::new();
    let mut make = |n: u64| {
        order.push(n);
        Counter { base: n }
    };
    let h = go!(make(100).into_total(vec![1, 2]));
    assert_eq!(order, [100]);
    assert_eq!(h.join().unwrap(), 103);

    // An Arc receiver: cloned at the site, the original stays usable.
    let shared = Arc::new(Counter { base: 7 });
    let h = go!(shared.clone().plus(1));
    assert_eq!(h.join().unwrap(), 8);
    assert_eq!(shared.base, 7);
}

#[goexec::test]
fn blocks_and_closures() {
    let v = String::from("123"); // moved into the goroutine
    let h = go!({ v.chars().filter_map(|c| c.to_digit(10)).sum::<u32>() });
    assert_eq!(h.join().unwrap(), 6);
    let (tx, rx) = goexec::chan::bounded::<&str>(0);
    let h = go!(move || tx.send("hi").unwrap());
    assert_eq!(rx.recv(), Ok("hi"));
    h.join().unwrap();
    // Goroutines started by go! are ordinary goroutines: many of them, joined.
    let hs: Vec<_> = (0..100u32).map(|i| go!(sees(i))).collect();
    let total: u32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 4950);
}

#[goexec::test(procs = 3, stack_size = 65536)]
fn the_attribute_configures_the_runtime() {
    assert_eq!(goexec::runtime::gomaxprocs(), 3);
    assert_eq!(goexec::runtime::goid(), 1, "the body is the main goroutine");
}

#[goexec::test]
fn a_test_may_return_a_result() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[goexec::test]
#[should_panic(expected = "boom in a goroutine test")]
fn a_panic_fails_the_test_as_usual() {
    panic!("boom in a goroutine test");
}

#[goexec::test]
fn select_and_go_together() {
    let (tx, rx) = goexec::chan::bounded::<u32>(0);
    go!(move || {
        for i in 0..3 {
            tx.send(i).unwrap();
        }
    });
    let mut got = Vec::new();
    loop {
        goexec::select! {
            recv(rx) -> v => match v {
                Ok(v) => got.push(v),
                Err(_) => break,
            },
            recv(goexec::chan::after(std::time::Duration::from_secs(10))) -> _ => panic!("stuck"),
        }
    }
    assert_eq!(got, [0, 1, 2]);
}
