//! `local!` values die with their goroutine (or thread), even those that another local's
//! destructor creates or uses on the way out: the next goroutine on the same G record starts
//! from the initial values.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A value that counts its drops.
struct Counted(Cell<u64>, &'static AtomicUsize);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

static REQ_DROPS: AtomicUsize = AtomicUsize::new(0);
static PING_DROPS: AtomicUsize = AtomicUsize::new(0);
static PONG_DROPS: AtomicUsize = AtomicUsize::new(0);

/// Records the request id on the way out, as a logging guard would.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        REQ_ID.with(|r| r.0.set(4242));
    }
}

/// Each uses the other from its destructor: every drop re-creates the other one.
struct Ping;
struct Pong;

impl Drop for Ping {
    fn drop(&mut self) {
        PING_DROPS.fetch_add(1, Ordering::SeqCst);
        PONG.with(|_| ());
    }
}

impl Drop for Pong {
    fn drop(&mut self) {
        PONG_DROPS.fetch_add(1, Ordering::SeqCst);
        PING.with(|_| ());
    }
}

goexec::local! {
    static REQ_ID: Counted = Counted(Cell::new(0), &REQ_DROPS);
    static GUARD: Guard = Guard;
    static PING: Ping = Ping;
    static PONG: Pong = Pong;
}

fn rt() -> goexec::Runtime {
    // One P: each goroutine reuses the G record the one before it left.
    goexec::Runtime::builder().procs(1).build().unwrap()
}

#[test]
fn a_local_created_by_a_destructor_dies_with_its_goroutine() {
    let _wd = common::watchdog("local_teardown", 30);
    let seen = rt().run(|| {
        goexec::spawn(|| GUARD.with(|_| ())).join().unwrap();
        let drops = REQ_DROPS.load(Ordering::SeqCst);
        let seen: Vec<u64> = (0..3)
            .map(|_| goexec::spawn(|| REQ_ID.with(|r| r.0.get())).join().unwrap())
            .collect();
        (drops, seen)
    });
    assert_eq!(
        seen.0, 1,
        "the value the destructor made was not dropped with its goroutine"
    );
    assert_eq!(
        seen.1,
        [0, 0, 0],
        "a fresh goroutine saw a dead one's local"
    );
}

#[test]
fn locals_whose_destructors_recreate_each_other_end_too() {
    let _wd = common::watchdog("local_teardown", 30);
    let (ping, pong) = rt().run(|| {
        goexec::spawn(|| PING.with(|_| ())).join().unwrap();
        let drops = (
            PING_DROPS.load(Ordering::SeqCst),
            PONG_DROPS.load(Ordering::SeqCst),
        );
        // The next goroutine on the record starts with none: using PONG alone makes one
        // value, dropped once (its destructor's PING is dropped in turn, and so on).
        let before = PONG_DROPS.load(Ordering::SeqCst);
        goexec::spawn(|| PONG.with(|_| ())).join().unwrap();
        assert!(PONG_DROPS.load(Ordering::SeqCst) > before);
        drops
    });
    // Each drop re-creates the other: the teardown gives up after a few rounds instead of
    // looping for ever (the rest is leaked, never handed on).
    assert!(ping >= 1 && pong >= 1, "ping {ping} pong {pong}");
    assert!(ping + pong <= 64, "ping {ping} pong {pong}");
}

#[test]
fn a_plain_threads_locals_may_use_each_other_as_it_exits() {
    if std::env::var_os("GOEXEC_LOCAL_TEARDOWN_CHILD").is_some() {
        // The child: a plain thread whose local's destructor uses another local.
        std::thread::spawn(|| GUARD.with(|_| ())).join().unwrap();
        println!("thread exited");
        return;
    }
    let out = common::run_test_child(
        "a_plain_threads_locals_may_use_each_other_as_it_exits",
        &[("GOEXEC_LOCAL_TEARDOWN_CHILD", "1")],
        std::time::Duration::from_secs(60),
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && all.contains("thread exited"),
        "child failed ({}): {all}",
        out.status
    );
}
