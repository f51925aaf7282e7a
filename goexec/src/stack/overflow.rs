//! Turning a guard-page hit into `goroutine N stack overflow (stack size S bytes)`.
//!
//! A SIGSEGV/SIGBUS handler, installed once per process, runs on a per-thread alternate signal
//! stack (the faulting stack has no room left). It compares the fault address with the guard
//! of the stack the thread is running (`tls::running_stack`, set on every switch onto a
//! goroutine or coroutine stack): a hit is reported and the process aborts, as Go's runtime
//! does; anything else goes to the handler that was installed before ours (Rust's own
//! main-thread overflow check, a sanitizer, or the default action).
//!
//! Everything reachable from the handler is async-signal-safe: a const-initialised TLS read, a
//! stack buffer, write(2), abort(3), sigaction(2).

use crate::sys::tls;
use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// The record of the stack a thread runs on, which the handler reads; it is declared beside the
/// thread-local that points at it.
pub(crate) use crate::sys::tls::RunningStack;

/// The page size, for the handler (which must not call sysconf); set before the handler is
/// installed.
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// The handlers that were installed before ours; set once, before ours is installed, and only
/// read afterwards.
static PREV_SEGV: OnceLock<libc::sigaction> = OnceLock::new();
static PREV_BUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Makes the calling thread ready to run goroutine stacks: installs the process-wide handler
/// (first call only) and gives the thread an alternate signal stack if it has none. Cheap after
/// the first call on a thread.
pub(crate) fn init_thread() -> io::Result<()> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        PAGE.store(crate::sys::page_size(), Ordering::Relaxed);
        install(libc::SIGSEGV, &PREV_SEGV);
        install(libc::SIGBUS, &PREV_BUS);
    });
    tls::ensure_alt_stack()
}

fn install(sig: libc::c_int, prev: &OnceLock<libc::sigaction>) {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: reading the current disposition into a zeroed, properly sized buffer.
    if unsafe { libc::sigaction(sig, ptr::null(), old.as_mut_ptr()) } != 0 {
        return;
    }
    // SAFETY: sigaction filled it in (or left it zeroed, which reads as SIG_DFL).
    let _ = prev.set(unsafe { old.assume_init() });
    // SAFETY: an all-zero sigaction is valid (SIG_DFL, empty mask); we fill in the fields.
    let mut new: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    new.sa_sigaction = handle_fault as *const () as usize;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: a valid sigset_t in a local struct.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    // SAFETY: installing a handler that only does async-signal-safe work (see module doc).
    unsafe { libc::sigaction(sig, &new, ptr::null_mut()) };
}

extern "C" fn handle_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; si_addr is the fault
    // address for SIGSEGV and SIGBUS.
    let siginfo = unsafe { &*info };
    // SAFETY: as above: si_addr is valid for these signals.
    let addr = unsafe { siginfo.si_addr() } as usize;
    let running = tls::running_stack();
    if !running.is_null() {
        // SAFETY: a non-null record is valid while its stack runs on this thread, and this
        // thread is the one that faulted; the handler runs before anything could remove it.
        let running = unsafe { *running };
        let guard_lo = running.bottom.saturating_sub(PAGE.load(Ordering::Relaxed));
        if guard_lo <= addr && addr < running.bottom {
            report_overflow(running);
        }
    }
    chain(sig, info, ctx);
}

/// Writes the overflow message to stderr and aborts. Async-signal-safe: no allocation, no
/// locks.
fn report_overflow(r: RunningStack) -> ! {
    let mut buf = [0u8; 192];
    let mut len = 0;
    for part in [
        Part::Str("fatal error: goroutine "),
        Part::Num(r.id),
        Part::Str(" stack overflow (stack size "),
        Part::Num(r.size as u64),
        Part::Str(" bytes)\n"),
        Part::Str(
            "goexec: raise it per goroutine (goexec::Builder::stack_size) or for the \
                   runtime (Runtime::builder().stack_size)\n",
        ),
    ] {
        len += part.write(&mut buf[len..]);
    }
    write_stderr(&buf[..len]);
    // SAFETY: abort is async-signal-safe and never returns.
    unsafe { libc::abort() }
}

enum Part {
    Str(&'static str),
    Num(u64),
}

impl Part {
    /// Copies itself into `out` (truncating if it does not fit); returns bytes written.
    fn write(&self, out: &mut [u8]) -> usize {
        let mut digits = [0u8; 20];
        let bytes: &[u8] = match *self {
            Part::Str(s) => s.as_bytes(),
            Part::Num(mut n) => {
                let mut i = digits.len();
                loop {
                    i -= 1;
                    digits[i] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                &digits[i..]
            }
        };
        let n = bytes.len().min(out.len());
        out[..n].copy_from_slice(&bytes[..n]);
        n
    }
}

fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a live buffer to fd 2.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Hands a fault that is not ours to whatever handled it before us.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = match sig {
        libc::SIGSEGV => PREV_SEGV.get(),
        libc::SIGBUS => PREV_BUS.get(),
        _ => None,
    };
    match prev {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: with SA_SIGINFO the previous handler has the three-argument form;
                // it was a valid handler when we read it and handlers are never unloaded.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: without SA_SIGINFO it has the one-argument form; as above.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Default action: restore it and return; the faulting instruction runs again and
            // the kernel ends the process with this signal, as if we had never been here.
            // SAFETY: an all-zero sigaction is SIG_DFL with an empty mask.
            let dfl: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
            // SAFETY: restoring the default action is async-signal-safe.
            unsafe { libc::sigaction(sig, &dfl, ptr::null_mut()) };
        }
    }
}
