//! Coroutines: values both ways, many coroutines, panics, drop, reuse, backtraces.

use super::*;
use crate::runtime::tls;
use crate::stack::StackPool;
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn values_pass_in_and_out() {
    let mut co = Coroutine::new(|y, first: String| {
        let second = y.suspend(first.len());
        let third = y.suspend(second.len() * 10);
        format!("{first}{second}{third}")
    })
    .unwrap();
    assert!(matches!(co.resume("ab".into()), CoroutineResult::Yield(2)));
    assert!(matches!(
        co.resume("cde".into()),
        CoroutineResult::Yield(30)
    ));
    match co.resume("f".into()) {
        CoroutineResult::Return(s) => assert_eq!(s, "abcdef"),
        _ => panic!("expected Return"),
    }
    assert!(co.is_finished());
}

#[test]
fn ten_thousand_coroutines_round_robin() {
    const N: usize = 10_000;
    const ROUNDS: usize = 100;
    let log = Rc::new(RefCell::new(Vec::with_capacity(N * ROUNDS)));
    let mut cos: Vec<Coroutine<(), (), usize>> = (0..N)
        .map(|i| {
            let log = log.clone();
            Coroutine::with_stack_size(64 * 1024, move |y, ()| {
                for round in 0..ROUNDS {
                    log.borrow_mut().push((round, i));
                    y.suspend(());
                }
                i
            })
            .unwrap()
        })
        .collect();
    for _ in 0..ROUNDS {
        for co in &mut cos {
            assert!(matches!(co.resume(()), CoroutineResult::Yield(())));
        }
    }
    for (i, co) in cos.iter_mut().enumerate() {
        match co.resume(()) {
            CoroutineResult::Return(r) => assert_eq!(r, i),
            _ => panic!("coroutine {i} did not finish"),
        }
    }
    let log = log.borrow();
    assert_eq!(log.len(), N * ROUNDS);
    for (k, &(round, i)) in log.iter().enumerate() {
        assert_eq!((round, i), (k / N, k % N), "out of order at {k}");
    }
}

#[test]
fn panic_is_caught_and_reported() {
    let mut co = Coroutine::<(), (), ()>::new(|y, ()| {
        y.suspend(());
        panic!("boom {}", 42);
    })
    .unwrap();
    assert!(matches!(co.resume(()), CoroutineResult::Yield(())));
    match co.resume(()) {
        CoroutineResult::Panic(p) => {
            // A constant message may arrive as &str, a formatted one as String.
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str));
            assert_eq!(msg, Some("boom 42"));
        }
        _ => panic!("expected Panic"),
    }
    assert!(co.is_finished());
    // The thread is fine: run another coroutine.
    let mut again = Coroutine::<(), (), u8>::new(|_, ()| 7).unwrap();
    assert!(matches!(again.resume(()), CoroutineResult::Return(7)));
}

#[test]
#[should_panic(expected = "already finished")]
fn resuming_a_finished_coroutine_panics() {
    let mut co = Coroutine::<(), (), ()>::new(|_, ()| ()).unwrap();
    co.resume(());
    co.resume(());
}

/// Sets its flag when dropped.
struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn dropping_a_suspended_coroutine_unwinds_its_frames() {
    let dropped = Rc::new(Cell::new(false));
    let flag = dropped.clone();
    let mut co = Coroutine::<(), (), ()>::new(move |y, ()| {
        let _guard = DropFlag(flag);
        loop {
            y.suspend(());
        }
    })
    .unwrap();
    co.resume(());
    assert!(!dropped.get());
    drop(co);
    assert!(dropped.get(), "the frame's destructor must run on drop");
}

#[test]
fn dropping_an_unstarted_coroutine_drops_its_closure() {
    let dropped = Rc::new(Cell::new(false));
    let guard = DropFlag(dropped.clone());
    let co = Coroutine::<(), (), ()>::new(move |_, ()| drop(guard)).unwrap();
    assert!(!dropped.get());
    drop(co);
    assert!(dropped.get());
}

#[test]
fn a_coroutine_that_refuses_to_unwind_is_leaked_not_freed() {
    let mut co = Coroutine::<(), (), ()>::new(|y, ()| loop {
        // Swallows the forced unwind and suspends again.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| y.suspend(())));
    })
    .unwrap();
    co.resume(());
    drop(co); // must neither crash nor free a stack with live frames
}

#[test]
fn coroutines_nest() {
    let mut outer = Coroutine::<(), u32, ()>::new(|y, ()| {
        let mut inner = Coroutine::<(), u32, ()>::new(|y2, ()| {
            for i in 0..3 {
                y2.suspend(i);
            }
        })
        .unwrap();
        while let CoroutineResult::Yield(v) = inner.resume(()) {
            y.suspend(v * 100);
        }
    })
    .unwrap();
    let mut got = vec![];
    while let CoroutineResult::Yield(v) = outer.resume(()) {
        got.push(v);
    }
    assert_eq!(got, [0, 100, 200]);
}

#[test]
fn finished_coroutine_gives_its_stack_back_for_reuse() {
    let mut pool = StackPool::new(64 * 1024).unwrap();
    let stack = pool.get().unwrap();
    let bottom = stack.bottom();
    let mut co = Coroutine::<(), (), u32>::with_stack(stack, |_, ()| 1);
    co.resume(());
    pool.put(co.into_stack().expect("finished"));
    let mut co = Coroutine::<(), (), u32>::with_stack(pool.get().unwrap(), |_, ()| 2);
    assert!(matches!(co.resume(()), CoroutineResult::Return(2)));
    let stack = co.into_stack().unwrap();
    assert_eq!(stack.bottom(), bottom, "the pooled stack was reused");
    let unfinished = Coroutine::<(), (), ()>::new(|_, ()| ()).unwrap();
    assert!(unfinished.into_stack().is_none());
}

#[test]
fn running_stack_is_recorded_while_resumed_and_restored_after() {
    assert!(tls::running_stack().is_null());
    let mut co = Coroutine::<(), (u64, usize), ()>::new(|y, ()| {
        // SAFETY: non-null while this coroutine runs (checked by the unwrap).
        let r = unsafe { *tls::running_stack().as_ref().unwrap() };
        y.suspend((r.id, r.size));
    })
    .unwrap();
    let id = co.id();
    match co.resume(()) {
        CoroutineResult::Yield((seen_id, size)) => {
            assert_eq!(seen_id, id);
            assert_eq!(size, crate::stack::DEFAULT_STACK_SIZE);
        }
        _ => panic!("expected Yield"),
    }
    assert!(
        tls::running_stack().is_null(),
        "restored after the switch back"
    );
}

#[inline(never)]
fn backtrace_inside_coroutine() -> String {
    std::backtrace::Backtrace::force_capture().to_string()
}

#[inline(never)]
fn outer_resumer_marker() -> String {
    let mut co = Coroutine::<(), (), String>::new(|_, ()| backtrace_inside_coroutine()).unwrap();
    match co.resume(()) {
        CoroutineResult::Return(s) => s,
        _ => panic!("expected Return"),
    }
}

#[test]
fn backtrace_ends_at_the_coroutine_root() {
    let bt = outer_resumer_marker();
    assert!(bt.contains("backtrace_inside_coroutine"), "{bt}");
    // The resumer's chain runs through this test function; the coroutine's chain must not.
    assert!(
        !bt.contains("backtrace_ends_at_the_coroutine_root"),
        "the walk must stop at the coroutine's first frame, not continue into the resumer: {bt}"
    );
}
