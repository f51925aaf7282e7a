//! The runtime: goroutines and the machinery that runs them.
//!
//! Today this layer holds the stackful coroutine that goroutines are built on
//! ([`Coroutine`]); the G-M-P scheduler joins it next (see DESIGN.md, layer 3).

pub(crate) mod runq;
mod switch;
pub(crate) mod tls;

pub use switch::{Coroutine, CoroutineResult, Yielder};

/// Reports a broken runtime invariant and aborts: `goexec: fatal: <func>: <what>`.
///
/// For states that cannot happen unless goexec itself is wrong; never for bad input, which
/// gets an error value instead.
#[cold]
pub(crate) fn fatal(func: &str, what: &str) -> ! {
    eprintln!("goexec: fatal: {func}: {what}");
    std::process::abort()
}
