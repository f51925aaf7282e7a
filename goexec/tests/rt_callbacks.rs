//! User code that the runtime calls on its own stacks (a `Waker::wake` run by the timers or
//! the network poller, a `tracing` subscriber) must not unwind or block there: either ends the
//! process with a fatal error that names the callback, never silent corruption or a hang.
//! Each case runs in a child process of this binary.

mod common;

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

const CHILD: &str = "GOEXEC_CALLBACK_CHILD";

/// Runs test `name`'s `body` in a child process and returns its stderr, checking that the
/// child was ended by a fatal error (abort), not by a hang or a clean exit.
fn fatal_in_child(name: &str, body: fn()) -> Option<String> {
    if std::env::var_os(CHILD).is_some() {
        let _w = common::watchdog("callback child", 20);
        body();
        return None;
    }
    // The panic reports stay short (and quick under emulation).
    let out = common::run_test_child(
        name,
        &[(CHILD, "1"), ("RUST_BACKTRACE", "0")],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{name}: the child should abort with a fatal error ({}):\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("still running after"),
        "{name}: hung:\n{stderr}"
    );
    Some(stderr)
}

/// A waker whose `wake` runs `f`.
struct FnWaker(fn());

impl Wake for FnWaker {
    fn wake(self: Arc<Self>) {
        (self.0)()
    }
}

/// In a goroutine: registers a waker running `f` with a 1 ms `sleep_async`, then waits long
/// enough for the timer to fire (on the scheduler's stack).
fn timer_calls(f: fn()) {
    goexec::Runtime::builder()
        .procs(1)
        .build()
        .unwrap()
        .run(move || {
            let waker = Waker::from(Arc::new(FnWaker(f)));
            // Under emulation a short timer can expire before its first poll; then the
            // waker is never registered, so try again with a longer one.
            let mut d = Duration::from_millis(1);
            let _sleep = loop {
                let mut sleep = Box::pin(goexec::time::sleep_async(d));
                if sleep
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
                {
                    break sleep;
                }
                assert!(
                    d < Duration::from_secs(1),
                    "a {d:?} sleep_async was never pending"
                );
                d *= 4;
            };
            goexec::time::sleep(Duration::from_secs(5));
        });
}

fn blocking_call() {
    let (_tx, rx) = goexec::chan::bounded::<u8>(0);
    let _ = rx.recv();
}

#[test]
fn a_timer_waker_that_panics_is_a_fatal_error() {
    if let Some(err) = fatal_in_child("a_timer_waker_that_panics_is_a_fatal_error", || {
        timer_calls(|| panic!("waker panics"))
    }) {
        assert!(err.contains("waker panics"), "{err}");
        assert!(
            err.contains("goexec: fatal: a Waker::wake called by the timers: panicked"),
            "{err}"
        );
    }
}

#[test]
fn a_timer_waker_that_blocks_is_a_fatal_error() {
    if let Some(err) = fatal_in_child("a_timer_waker_that_blocks_is_a_fatal_error", || {
        timer_calls(blocking_call)
    }) {
        assert!(
            err.contains("goexec: fatal: blocking call:")
                && err.contains("inside a Waker::wake called by the timers"),
            "{err}"
        );
    }
}

#[test]
fn a_network_waker_that_panics_is_a_fatal_error() {
    if let Some(err) = fatal_in_child("a_network_waker_that_panics_is_a_fatal_error", || {
        goexec::Runtime::builder()
            .procs(1)
            .build()
            .unwrap()
            .run(|| {
                let (mut a, mut b) = goexec::mio::net::UnixStream::pair().unwrap();
                let reg = goexec::netpoll::Registration::new(&mut a).unwrap();
                let waker = Waker::from(Arc::new(FnWaker(|| panic!("net waker panics"))));
                // The first poll may see the registration's initial edge: poll until Pending.
                while reg
                    .poll_read_ready(&mut Context::from_waker(&waker))
                    .is_ready()
                {}
                b.write_all(b"x").unwrap();
                goexec::time::sleep(Duration::from_secs(5));
                drop(a);
            });
    }) {
        assert!(err.contains("net waker panics"), "{err}");
        assert!(
            err.contains("a Waker::wake called by the network poller") && err.contains("panicked"),
            "{err}"
        );
    }
}

/// Set by the main goroutine: from then on the subscribers below misbehave.
static ARMED: AtomicBool = AtomicBool::new(false);

/// A subscriber to goexec's scheduler events that runs `on_event` on each.
struct OnEvent(fn());

impl tracing::Subscriber for OnEvent {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.target() == "goexec::sched"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        (self.0)()
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_tracing_subscriber_that_blocks_in_a_goroutine_spawn_is_a_fatal_error() {
    if let Some(err) = fatal_in_child(
        "a_tracing_subscriber_that_blocks_in_a_goroutine_spawn_is_a_fatal_error",
        || {
            // Blocks once armed: the first event then is the spawn below, on the scheduler's
            // stack.
            tracing::subscriber::set_global_default(OnEvent(|| {
                if ARMED.load(Ordering::SeqCst) {
                    goexec::yield_now();
                    blocking_call();
                }
            }))
            .unwrap();
            goexec::Runtime::builder()
                .procs(1)
                .build()
                .unwrap()
                .run(|| {
                    ARMED.store(true, Ordering::SeqCst);
                    goexec::spawn(|| ()).join().unwrap()
                });
        },
    ) {
        assert!(
            err.contains("goexec: fatal: blocking call:")
                && err.contains("inside a tracing subscriber"),
            "{err}"
        );
    }
}

#[test]
fn a_tracing_subscriber_that_panics_is_a_fatal_error() {
    if let Some(err) = fatal_in_child("a_tracing_subscriber_that_panics_is_a_fatal_error", || {
        tracing::subscriber::set_global_default(OnEvent(|| {
            if ARMED.load(Ordering::SeqCst) {
                panic!("subscriber panics")
            }
        }))
        .unwrap();
        goexec::Runtime::builder()
            .procs(1)
            .build()
            .unwrap()
            .run(|| {
                ARMED.store(true, Ordering::SeqCst);
                goexec::spawn(|| ()).join().unwrap()
            });
    }) {
        assert!(err.contains("subscriber panics"), "{err}");
        assert!(
            err.contains("goexec: fatal: a tracing subscriber: panicked"),
            "{err}"
        );
    }
}

/// Blocking on a goroutine's own stack from a callback that runs there is still fine: the
/// checks above only fire on the scheduler's stacks.
#[test]
fn wakers_run_by_goroutines_may_block() {
    let _w = common::watchdog("wakers_run_by_goroutines_may_block", 30);
    goexec::Runtime::builder()
        .procs(2)
        .build()
        .unwrap()
        .run(|| {
            static TX: std::sync::OnceLock<goexec::chan::Sender<u8>> = std::sync::OnceLock::new();
            let (tx, rx) = goexec::chan::bounded::<u8>(1);
            TX.set(tx).unwrap();
            let waker = Waker::from(Arc::new(FnWaker(|| {
                TX.get().unwrap().send(1).unwrap();
            })));
            goexec::spawn(move || waker.wake()).join().unwrap();
            assert_eq!(rx.recv(), Ok(1));
        });
}

#[test]
fn a_panicking_local_destructor_is_a_fatal_error_that_says_so() {
    if let Some(err) = fatal_in_child(
        "a_panicking_local_destructor_is_a_fatal_error_that_says_so",
        || {
            struct P;
            impl Drop for P {
                fn drop(&mut self) {
                    panic!("local destructor panics")
                }
            }
            goexec::local! {
                static L: std::cell::RefCell<Option<P>> = std::cell::RefCell::new(None);
            }
            goexec::Runtime::builder()
                .procs(1)
                .build()
                .unwrap()
                .run(|| {
                    let _ = goexec::spawn(|| L.with(|l| *l.borrow_mut() = Some(P))).join();
                    // The join returns as the goroutine's task ends, before its locals go;
                    // and a slow panic report can cost the goroutine its P (sysmon): main
                    // waits here, so that only the fatal error ends the process.
                    goexec::time::sleep(Duration::from_secs(15));
                });
        },
    ) {
        assert!(err.contains("local destructor panics"), "{err}");
        assert!(
            err.contains("goexec: fatal: local!: the destructor of a goroutine-local value"),
            "{err}"
        );
    }
}
