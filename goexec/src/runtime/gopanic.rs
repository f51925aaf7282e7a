//! Goroutine panics: a report that names the goroutine, and what a runtime does with a panic
//! (Go: a goroutine's panic prints `panic: ...` and `goroutine N [running]:`, then ends the
//! program with status 2).
//!
//! Rust's panic report names the thread, which for a goroutine is only the M that ran it
//! (`thread 'goexec-m1' panicked at ...`). The first runtime built installs a panic hook that,
//! on a goroutine, says which one (`goroutine 7 "worker" panicked:`) and then hands over to
//! the hook that was there before (std's, which prints the location, the message and any
//! backtrace, or the program's own).

use super::m::current_g;
use std::sync::{Mutex, Once};

/// What a runtime does when one of its goroutines panics. Set with
/// [`RuntimeBuilder::unhandled_panic`](crate::runtime::RuntimeBuilder::unhandled_panic).
///
/// ```
/// use goexec::runtime::UnhandledPanic;
///
/// let rt = goexec::Runtime::builder()
///     .unhandled_panic(UnhandledPanic::Ignore) // the default
///     .build()?;
/// let r = rt.run(|| goexec::spawn(|| panic!("boom")).join());
/// assert!(r.unwrap_err().is_panic());
/// # Ok::<(), goexec::runtime::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnhandledPanic {
    /// The panic ends only its goroutine, whose `join` returns it as an `Err` (a panic of the
    /// main goroutine comes out of `run`). The report is printed all the same.
    #[default]
    Ignore,
    /// Go's behaviour: a goroutine's panic ends the process. After its report, the runtime
    /// prints every goroutine with its stack ([`stack(true)`](fn@crate::runtime::stack), the
    /// panicking one first, with its frames where it panicked) and exits with status 2,
    /// whether or not anyone would have joined the goroutine.
    Abort,
}

/// Installs the hook that names the goroutine in a panic's report, once per process.
pub(crate) fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        // Go's printlock: goroutines panicking at once on different Ms print their reports
        // one after the other, each header beside its own report.
        static PRINT: Mutex<()> = Mutex::new(());
        std::panic::set_hook(Box::new(move |info| {
            let _print = PRINT.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(g) = current_g() {
                if g.sched().unhandled_panic == UnhandledPanic::Abort {
                    // The frames where it panicked, for the traceback printed once it has
                    // unwound (if nothing catches the panic first).
                    let frames = super::traceback::own_frames();
                    PANIC_FRAMES.with(|p| {
                        let mut p = p.borrow_mut();
                        p.retain(|(id, _)| *id != g.id());
                        if p.len() >= 64 {
                            p.remove(0);
                        }
                        p.push((g.id(), frames));
                    });
                }
                let thread = std::thread::current();
                let on = thread.name().unwrap_or("an M");
                match g.name() {
                    Some(name) => eprintln!("goroutine {} {name:?} panicked (on {on}):", g.id()),
                    None => eprintln!("goroutine {} panicked (on {on}):", g.id()),
                }
            }
            previous(info);
        }));
    });
}

/// Called when a goroutine's function has panicked, on that goroutine, after its report:
/// under [`UnhandledPanic::Abort`], ends the process as Go does.
pub(crate) fn goroutine_panicked() {
    let Some(g) = current_g() else {
        return;
    };
    if g.sched().unhandled_panic != UnhandledPanic::Abort {
        return;
    }
    // Its frames where it panicked, which the hook kept; none if the hook was replaced after
    // the runtime was built (frames taken now, after the unwind, would mislead).
    let frames = PANIC_FRAMES.with(|p| {
        let mut p = p.borrow_mut();
        let i = p.iter().rposition(|(id, _)| *id == g.id())?;
        Some(p.swap_remove(i).1)
    });
    let note = if frames.is_none() {
        " (its frames where it panicked are unknown: a panic hook set after the runtime was \
         built replaced goexec's)"
    } else {
        ""
    };
    let frames = frames.unwrap_or_default();
    // On the M's stack: a goroutine with a small stack has little left after a panic.
    let all =
        g.systemstack(move || super::traceback::report_goroutines(g.sched(), Some((g, frames))));
    eprintln!(
        "goexec: goroutine {} panicked, and the runtime's UnhandledPanic is Abort: exiting \
         with status 2{note}\n\n{all}",
        g.id()
    );
    std::process::exit(2);
}

thread_local! {
    /// Under `UnhandledPanic::Abort`, the frames of goroutines that panicked on this M and are
    /// unwinding, by goroutine id (a goroutine that parks while unwinding stays on its M:
    /// `GRef::follow_unwind`). Taken by `goroutine_panicked`; a panic the goroutine's own
    /// code catches leaves its entry behind, so the oldest go beyond 64.
    static PANIC_FRAMES: std::cell::RefCell<Vec<(u64, Vec<usize>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}
