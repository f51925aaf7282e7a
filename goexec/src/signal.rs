//! Incoming signals as channel values (Go: `os/signal`'s `Notify`).
//!
//! [`notify`] catches the signals it is given and sends each one the process receives on the
//! channel it returns, so a goroutine can wait for `SIGINT` or `SIGTERM` in a
//! [`select!`](crate::select!) beside its other channels, and shut down in order.
//!
//! ```
//! use goexec::{chan, signal};
//! use std::time::Duration;
//!
//! goexec::run(|| {
//!     let signals = signal::notify(&[libc::SIGUSR1]).unwrap();
//!     // Here the process signals itself; usually it is `kill`, a terminal or a supervisor.
//!     signal_hook::low_level::raise(libc::SIGUSR1).unwrap();
//!     goexec::select! {
//!         recv(signals) -> sig => assert_eq!(sig, Ok(libc::SIGUSR1)),
//!         recv(chan::after(Duration::from_secs(10))) -> _ => panic!("no signal came"),
//!     }
//! });
//! ```
//!
//! The signals are caught with `signal-hook`: its handler writes to a pipe. Inside a
//! goroutine, the pipe is registered with the runtime's network poller, which forwards what
//! the handler wrote to the channel whenever it reports the pipe readable (no thread, no
//! goroutine); on a plain thread, a thread of the `notify` call, `goexec-signal`, polls the
//! pipe and forwards. Signals are process-wide: every `notify` for a signal gets each
//! delivery of it, from any thread, inside a runtime or not.

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::netpoll::Registration;
use signal_hook_mio::v1_0::Signals;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Whether any `notify` has taken SIGQUIT: if so, the goroutine-traceback handler
/// (runtime/sigquit.rs) never gives it its default effect.
pub(crate) static SIGQUIT_NOTIFIED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Room in the channel `notify` returns: deliveries that find it full are dropped.
const CAPACITY: usize = 16;

/// signal-hook keeps per-signal slots for numbers below this, and panics on larger ones.
const MAX_SIGNUM: i32 = 128;

const TOKEN: mio::Token = mio::Token(0);

/// Catches `signals` and returns a channel on which each one the process then receives is
/// sent, as its number (Go: `signal.Notify`).
///
/// The channel has room for 16 signals; as in Go, a delivery that finds it full is dropped
/// rather than waited on, and a signal delivered several times before the forwarder sees it
/// may come once (the operating system merges pending standard signals too). Several `notify`
/// calls for a signal each receive it.
///
/// A caught signal no longer has its default effect: a notified `SIGINT` or `SIGTERM` does
/// not end the process, which decides what to do on receiving it. A signal the process was
/// started with ignored (as `nohup` ignores `SIGHUP`) is caught all the same, as in Go.
/// signal-hook's handler runs on the stack of the thread the signal interrupts, a goroutine's
/// included, and needs a few KiB of it (the kernel's signal frame among them).
///
/// Works inside a goroutine and on a plain thread alike, and the channel keeps delivering
/// after the runtime the call was made in has stopped. Inside a goroutine, the runtime's
/// network poller does the forwarding (after `run` returns, its fallback thread does); on a
/// plain thread, a thread of the call's own, `goexec-signal`. When every [`Receiver`] of the
/// channel has been dropped, the forwarding ends at the next delivery of one of the signals,
/// and unregisters them. signal-hook does not restore the signal's previous disposition then:
/// a signal whose every `notify` has ended this way stays caught and is ignored from then on,
/// neither delivered nor given its default effect (Go's `signal.Stop` restores it). Until that
/// delivery, the registration (and on a plain thread, the thread) lives on.
///
/// # Errors
///
/// `ErrorKind::InvalidInput`, naming the signal, for a number that is not a signal of this
/// system or one that cannot be caught this way (`SIGKILL`, `SIGSTOP`, `SIGILL`, `SIGFPE`,
/// `SIGSEGV`: see `signal_hook::consts::FORBIDDEN`), and for an empty list; nothing is
/// registered then. The system's errors creating the pipe, the poller or the thread.
// Not inlined into a goroutine's frames: spawning a thread reaches std's thread-locals, and
// this function has no switch point (see the crate docs, "Soundness").
#[inline(never)]
pub fn notify(signals: &[i32]) -> io::Result<Receiver<i32>> {
    if signals.is_empty() {
        return Err(invalid("goexec::signal::notify: no signals given".into()));
    }
    // All checked before any is registered: signal-hook cannot give a signal back its old
    // disposition, so a half-made registration would leave the others ignored.
    for &sig in signals {
        check(sig)?;
    }
    if signals.contains(&libc::SIGQUIT) {
        // The traceback handler leaves SIGQUIT to us from now on (runtime/sigquit.rs).
        SIGQUIT_NOTIFIED.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    // Whatever can fail is made before `Signals::new` catches the signals: signal-hook
    // cannot give a signal back its old disposition, so a notify that failed after catching
    // would leave it ignored. (Only the poller's own registration can still fail after.)
    let context = |e: io::Error| io::Error::new(e.kind(), format!("goexec::signal::notify: {e}"));
    let (tx, rx) = chan::bounded(CAPACITY);
    // In a goroutine: on the runtime's poller, with a waker that forwards, not a forwarder
    // goroutine, which would be abandoned when `run` returns, holding the Signals for ever.
    // The poller keeps a task's waker across shutdown (its fallback thread then polls).
    if let Some(poller) = crate::runtime::netpoll::current() {
        poller.map_err(context)?;
        let mut source = Signals::new(signals).map_err(context)?;
        let reg = Registration::new(&mut source).map_err(context)?;
        let fwd = Arc::new(PollerForward {
            state: Mutex::new(Some((source, reg, tx))),
        });
        fwd.pump();
        return Ok(rx);
    }
    // A plain thread: a thread of its own, started before the signals are caught; it gets
    // the source once it is made, or ends when it is not.
    let poll = mio::Poll::new().map_err(context)?;
    let registry = poll.registry().try_clone().map_err(context)?;
    let (give, take) = std::sync::mpsc::sync_channel::<Signals>(1);
    // A full mapping table would make std abort the new thread: say so, and how to raise it.
    crate::stack::room_for_a_thread().map_err(context)?;
    std::thread::Builder::new()
        .name("goexec-signal".into())
        .spawn(move || {
            if let Ok(source) = take.recv() {
                forward(poll, source, tx);
            }
        })
        .map_err(context)?;
    let mut source = Signals::new(signals).map_err(context)?;
    mio::event::Source::register(&mut source, &registry, TOKEN, mio::Interest::READABLE)
        .map_err(context)?;
    let _ = give.send(source);
    Ok(rx)
}

/// The forwarder: sends what the handler recorded, then waits for the pipe, until the channel
/// has no receivers or the poller fails (dropping `signals` unregisters them; dropping `tx`
/// closes the channel).
fn forward(mut poll: mio::Poll, mut signals: Signals, tx: Sender<i32>) {
    let mut events = mio::Events::with_capacity(1);
    loop {
        if !deliver(&mut signals, &tx) {
            return;
        }
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("goexec: signal forwarder stopped: {e}");
                return;
            }
        }
    }
}

/// Sends what the handler recorded, dropping what finds the channel full (Go); false once the
/// channel has no receivers, when the forwarding ends.
fn deliver(signals: &mut Signals, tx: &Sender<i32>) -> bool {
    signals
        .pending()
        .all(|sig| !matches!(tx.try_send(sig), Err(TrySendError::Closed(_))))
}

/// The forwarding of a `notify` made in a goroutine: the waker that the runtime's poller
/// calls when the pipe becomes readable (Go's `signal_recv` loop, done by the poller). It
/// runs where the poller runs (the scheduler's stack, sysmon, the fallback thread), so it
/// only takes its own lock, reads the pipe and `try_send`s: nothing that blocks.
struct PollerForward {
    /// None once the channel lost its receivers (the Signals dropped, the source
    /// deregistered).
    state: Mutex<Option<(Signals, Registration, Sender<i32>)>>,
}

impl PollerForward {
    /// Sends what the handler recorded, then leaves this waker with the poller for the next
    /// edge; again while the poller says an edge came meanwhile. The waker the poller holds
    /// is this value itself: a cycle broken when the channel loses its receivers.
    fn pump(self: &Arc<Self>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some((signals, reg, tx)) = state.as_mut() else {
            return;
        };
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            if !deliver(signals, tx) {
                if let Some((mut signals, reg, _)) = state.take() {
                    reg.deregister(&mut signals);
                }
                return;
            }
            match reg.poll_read_ready(&mut cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) | Poll::Pending => return,
            }
        }
    }
}

impl Wake for PollerForward {
    fn wake(self: Arc<Self>) {
        self.pump();
    }
}

/// Whether `sig` can be notified; else an InvalidInput error that names it.
fn check(sig: i32) -> io::Result<()> {
    if signal_hook::consts::FORBIDDEN.contains(&sig) {
        return Err(invalid(format!(
            "goexec::signal::notify: {} cannot be caught (SIGKILL and SIGSTOP never can; \
             SIGILL, SIGFPE and SIGSEGV come from the faulting code itself)",
            describe(sig)
        )));
    }
    if !(1..MAX_SIGNUM).contains(&sig) || !exists(sig) {
        return Err(invalid(format!(
            "goexec::signal::notify: {sig} is not a signal this system can catch"
        )));
    }
    Ok(())
}

/// Whether the system knows `sig` and lets it be caught: asks for its disposition, changing
/// nothing (C libraries refuse the numbers they keep for themselves here too).
#[allow(unsafe_code)] // sigaction(2), as a query
fn exists(sig: i32) -> bool {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction only writes the current one to `old`, which
    // points to memory of the right type and size.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    rc == 0
}

fn describe(sig: i32) -> String {
    match signal_hook::low_level::signal_name(sig) {
        Some(name) => format!("{name} ({sig})"),
        None => format!("signal {sig}"),
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
