//! The public API's shape, checked at compile time where it can be: error types that travel
//! through `?` into `Box<dyn Error + Send + Sync>`, the goroutine builder's paths, and `Debug`
//! on the public types, with output that says something and never waits for a lock.
//!
//! `BuildError`, `SpawnError` and `StackError` are `#[non_exhaustive]`: a `match` outside goexec
//! needs a `_` arm, which only a program that fails to compile could show.

mod common;

use std::error::Error;

fn send_sync_error<E: Error + Send + Sync + 'static>() {}

#[test]
fn errors_are_send_sync_and_box_into_dyn_error() {
    send_sync_error::<goexec::JoinError>();
    send_sync_error::<goexec::runtime::BuildError>();
    send_sync_error::<goexec::runtime::SpawnError>();
    send_sync_error::<goexec::stack::StackError>();
    send_sync_error::<goexec::context::Error>();

    // `?` from a panicked goroutine's join, and the payload is still there.
    fn join_boxed() -> Result<(), Box<dyn Error + Send + Sync>> {
        goexec::run(|| goexec::spawn(|| panic!("boom")).join())?;
        Ok(())
    }
    let err = join_boxed().unwrap_err();
    assert!(err.to_string().contains("panicked: boom"), "{err}");
    let err = err.downcast::<goexec::JoinError>().expect("a JoinError");
    let payload = err.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
}

#[test]
fn the_goroutine_builder_is_also_task_builder() {
    let via_task: goexec::task::Builder = goexec::Builder::new().name("w");
    let h = goexec::run(move || via_task.spawn(|| 7).expect("spawn").join());
    assert_eq!(h.unwrap(), 7);
}

fn debug<T: std::fmt::Debug + ?Sized>() {}

fn send_sync<T: Send + Sync + ?Sized>() {}

/// A scoped goroutine may spawn more into its scope (`&Scope` is `Send`), and its handle
/// travels as a `JoinHandle` does.
#[test]
fn scopes_and_scoped_handles_are_send_and_sync() {
    send_sync::<goexec::Scope<'static, 'static>>();
    send_sync::<goexec::ScopedJoinHandle<'static, u8>>();
}

/// Every public type of goexec is `Debug` (the lint `missing_debug_implementations` keeps it
/// so; this names them from outside, where a user does).
#[test]
fn public_types_are_debug() {
    use goexec::{chan, runtime, stack, sync, task, time};
    debug::<goexec::Runtime>();
    debug::<goexec::RuntimeBuilder>();
    debug::<task::Builder>();
    debug::<task::JoinHandle<u8>>();
    debug::<task::JoinError>();
    debug::<task::Scope<'static, 'static>>();
    debug::<task::ScopedJoinHandle<'static, u8>>();
    debug::<runtime::BuildError>();
    debug::<runtime::SpawnError>();
    debug::<runtime::UnhandledPanic>();
    debug::<runtime::LocalKey<u8>>();
    debug::<runtime::Coroutine<u8, u8, u8>>();
    debug::<runtime::Yielder<u8, u8>>();
    debug::<runtime::CoroutineResult<u8, u8>>();
    debug::<stack::Stack>();
    debug::<stack::StackError>();
    debug::<stack::GuardMode>();
    debug::<chan::Sender<u8>>();
    debug::<chan::Receiver<u8>>();
    debug::<chan::Iter<'static, u8>>();
    debug::<chan::IntoIter<u8>>();
    debug::<chan::RecvCase<'static, u8>>();
    debug::<chan::SendCase<'static, u8>>();
    debug::<chan::RecvFuture<'static, u8>>();
    debug::<chan::SendFuture<'static, u8>>();
    debug::<chan::SendError<u8>>();
    debug::<chan::RecvError>();
    debug::<chan::TrySendError<u8>>();
    debug::<chan::SendTimeoutError<u8>>();
    debug::<chan::RecvTimeoutError>();
    debug::<chan::TryRecvError>();
    debug::<sync::Mutex<u8>>();
    debug::<sync::MutexGuard<'static, u8>>();
    debug::<sync::RwLock<u8>>();
    debug::<sync::RwLockReadGuard<'static, u8>>();
    debug::<sync::RwLockWriteGuard<'static, u8>>();
    debug::<sync::WaitGroup>();
    debug::<sync::Once>();
    debug::<sync::Cond>();
    debug::<sync::Semaphore>();
    debug::<sync::SemaphorePermit<'static>>();
    debug::<time::Timer>();
    debug::<time::Ticker>();
    debug::<time::Sleep>();
    debug::<time::Elapsed>();
    debug::<goexec::netpoll::Registration>();
}

goexec::local! {
    static COUNT: u32 = 0;
}

/// What the Debug output shows, and that formatting a held lock or a busy channel does not
/// wait for it (a wait would hang here; the watchdog turns that into a failure).
#[test]
fn debug_output_is_useful_and_never_waits() {
    let _w = common::watchdog("debug_output_is_useful_and_never_waits", 30);
    let rt = goexec::Runtime::builder().procs(2).build().unwrap();
    let shown = format!("{rt:?}");
    assert!(shown.contains("procs: 2"), "{shown}");
    let b = goexec::task::Builder::new().name("worker");
    assert!(format!("{b:?}").contains("\"worker\""), "{b:?}");
    assert_eq!(format!("{COUNT:?}"), "LocalKey { .. }");

    rt.run(|| {
        let (tx, rx) = goexec::chan::bounded::<u8>(2);
        tx.send(1).unwrap();
        assert_eq!(
            format!("{tx:?}"),
            "Sender { len: 1, cap: 2, closed: false }"
        );
        assert_eq!(
            format!("{:?}", rx.iter()),
            "Iter { rx: Receiver { len: 1, cap: 2, closed: false } }"
        );
        drop(tx);
        assert_eq!(
            format!("{:?}", rx.into_iter()),
            "IntoIter { rx: Receiver { len: 1, cap: 2, closed: true } }"
        );

        let m = goexec::sync::Mutex::new(5);
        assert_eq!(format!("{m:?}"), "Mutex { data: 5, .. }");
        let g = m.lock();
        assert_eq!(format!("{m:?}"), "Mutex { data: <locked>, .. }");
        assert_eq!(format!("{g:?}"), "5");
        drop(g);

        let l = goexec::sync::RwLock::new(6);
        let w = l.write();
        assert_eq!(format!("{l:?}"), "RwLock { data: <locked>, .. }");
        assert_eq!(format!("{w:?}"), "6");
        drop(w);
        assert_eq!(format!("{:?}", l.read()), "6");

        let h = goexec::spawn(|| ());
        let id = h.id();
        assert_eq!(format!("{h:?}"), format!("JoinHandle {{ id: {id} }}"));
        h.join().unwrap();
        let err = goexec::spawn(|| panic!("boom")).join().unwrap_err();
        assert!(format!("{err:?}").contains("panicked: boom"), "{err:?}");

        goexec::scope(|s| {
            let (tx, rx) = goexec::chan::bounded::<()>(0);
            let h = s.spawn(move || rx.recv().unwrap());
            let id = h.id();
            assert_eq!(format!("{h:?}"), format!("ScopedJoinHandle {{ id: {id} }}"));
            assert_eq!(
                format!("{s:?}"),
                "Scope { running: 1, unjoined_panics: 0, .. }"
            );
            tx.send(()).unwrap();
            h.join().unwrap();
        });
    });

    let mut co = goexec::runtime::Coroutine::<(), (), ()>::with_stack_size(64 * 1024, |y, ()| {
        assert!(
            format!("{y:?}").starts_with("Yielder { coroutine: "),
            "{y:?}"
        );
        y.suspend(());
    })
    .unwrap();
    let id = co.id();
    assert_eq!(
        format!("{co:?}"),
        format!("Coroutine {{ id: {id}, stack_size: 65536, finished: false }}")
    );
    co.resume(());
    co.resume(());
    assert!(format!("{co:?}").ends_with("finished: true }"), "{co:?}");
}

#[test]
fn unhandled_panic_defaults_to_ignore_and_is_a_plain_value() {
    use goexec::runtime::UnhandledPanic;
    let p: UnhandledPanic = Default::default();
    assert_eq!(p, UnhandledPanic::Ignore);
    let copy = p;
    assert_eq!(copy, p);
    let rt = goexec::Runtime::builder()
        .unhandled_panic(UnhandledPanic::Abort)
        .build()
        .unwrap();
    assert!(
        format!("{rt:?}").contains("unhandled_panic: Abort"),
        "{rt:?}"
    );
}
