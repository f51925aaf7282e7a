//! The public API's shape, checked at compile time where it can be: error types that travel
//! through `?` into `Box<dyn Error + Send + Sync>`, the goroutine builder's paths, and `Debug`
//! on the public types, with output that says something and never waits for a lock.
//!
//! `BuildError`, `SpawnError` and `StackError` are `#[non_exhaustive]`: a `match` outside goexec
//! needs a `_` arm, which only a program that fails to compile could show.

use std::error::Error;

fn send_sync_error<E: Error + Send + Sync + 'static>() {}

#[test]
fn errors_are_send_sync_and_box_into_dyn_error() {
    send_sync_error::<goexec::JoinError>();
    send_sync_error::<goexec::runtime::BuildError>();
    send_sync_error::<goexec::runtime::SpawnError>();
    send_sync_error::<goexec::stack::StackError>();

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
