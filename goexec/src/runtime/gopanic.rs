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
    /// prints every goroutine ([`dump`](crate::runtime::dump())) and exits with status 2,
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
    let dump = super::dump::dump();
    eprintln!(
        "goexec: goroutine {} panicked, and the runtime's UnhandledPanic is Abort: exiting \
         with status 2\n\n{dump}",
        g.id()
    );
    std::process::exit(2);
}
