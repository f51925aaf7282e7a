//! Aborting on a broken invariant.

/// Reports a broken invariant and aborts: `goexec: fatal: <func>: <what>`.
///
/// For states that cannot happen unless goexec itself is wrong; never for bad input, which
/// gets an error value instead.
#[cold]
pub(crate) fn fatal(func: &str, what: &str) -> ! {
    eprintln!("goexec: fatal: {func}: {what}");
    std::process::abort()
}
