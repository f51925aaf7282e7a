//! Goroutine tracebacks (Go: `traceback.go`, `runtime.Stack`): every goroutine's state and
//! stack, as Go prints them on a crash, a deadlock or SIGQUIT.
//!
//! ```text
//! goroutine 7 "worker" [chan receive, 3 ms]:
//! myapp::worker
//!         /src/myapp/src/main.rs:12
//! myapp::main::{{closure}}
//!         /src/myapp/src/main.rs:20
//! created by goroutine 1 at src/main.rs:20:13
//! ```
//!
//! # How a parked goroutine's stack is walked
//!
//! A parked goroutine's context is saved on its own stack by the context switch (`arch`):
//! its resume address, the two registers the compiler may not name, and above them its frames
//! exactly as they were when it called `suspend`. So its frames can be walked by the ordinary
//! DWARF unwinder (`_Unwind_Backtrace`, through the `backtrace` crate) if the walk starts
//! *as if called from* the resume point. `arch::with_frames_of` does that: a small assembly
//! frame whose CFI names the saved context as its caller (CFA = saved sp + 24 on x86_64, + 32
//! on aarch64; return address, rbx/x19 and rbp/x29 where the switch pushed them). A backtrace
//! taken inside it walks our own frames, then the goroutine's, and stops at the goroutine's
//! root, whose trampoline says "no caller" (`.cfi_undefined`). Nothing is resumed or copied;
//! a debugger does the same with the same data (`goexec/gdb/goexec-gdb.py`).
//!
//! The alternatives were worse: frame pointers are not kept in release builds; copying the
//! stack out first costs a copy per goroutine and still needs the CFI; and running the walk
//! *on* the goroutine (resuming it into a traceback routine) would need its M.
//!
//! # Never racing a running goroutine
//!
//! A stack is walked only while its goroutine cannot run: the caller's own (it is the one
//! walking), and `Waiting` ones, held so by a scan bit in their status for the walk (Go's
//! `_Gscan`). Every way out of Waiting is a CAS, which waits while the bit is set, so the bit
//! costs nothing where nobody takes a traceback. Running goroutines on other Ms, those inside
//! `blocking`, and runnable ones are listed without frames, with a line saying why (making a
//! runnable one's frames safe to read would put a locked instruction on every switch).
//!
//! # Which frames are shown
//!
//! By default the runtime's own frames (the `goexec` crate's, and std's closure and
//! `catch_unwind` plumbing around a goroutine's function) are left out, as Go leaves out
//! `runtime.*`, so a parked goroutine's first frame is the user's function that parked.
//! `GOEXEC_TRACEBACK=system` shows every frame, with its address (Go's `GOTRACEBACK=system`).
//! Where none of a goroutine's frames can be told to be the program's (a binary without debug
//! information), all are shown, with addresses. A goroutine parked inside a
//! `runtime::Coroutine` shows its frames down to the coroutine's root: the walk does not cross
//! into the stack that resumed the coroutine.
//! Frames are symbolized from the binary's debug information: with line tables (`debug = 1`
//! or `"line-tables-only"` in a release profile) each has its file and line; without, the
//! symbol name (or only the address) is printed.
#![allow(unsafe_code)] // walking another goroutine's saved context (arch::with_frames_of)

use super::g::{GRef, GStatus, WaitReason};
use super::m::current_g;
use super::sched::Sched;
use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt::Write;
use std::sync::OnceLock;

/// Go prints at most 100 frames of a goroutine.
const MAX_FRAMES: usize = 100;

/// Return addresses taken per walk: room for the frames hidden from the output as well. A walk
/// that fills it was cut short, and the output says so.
const MAX_WALK: usize = 256;

/// How much a traceback shows, and whether SIGQUIT prints one; from `GOEXEC_TRACEBACK` (Go's
/// `GOTRACEBACK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// `none`: SIGQUIT is not caught, even if the builder asked for it, and the deadlock and
    /// `UnhandledPanic::Abort` reports leave out the goroutines.
    None,
    /// Unset (or `single`): the builder decides about SIGQUIT; runtime frames hidden.
    Default,
    /// `all`: SIGQUIT prints every goroutine of the runtime that notices it first.
    All,
    /// `system`: as `all`, and runtime frames (with addresses) are shown everywhere.
    System,
}

/// `GOEXEC_TRACEBACK`, read once.
pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        match std::env::var("GOEXEC_TRACEBACK")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "none" | "0" => Level::None,
            "all" | "1" => Level::All,
            "system" | "2" | "crash" => Level::System,
            _ => Level::Default,
        }
    })
}

/// The calling goroutine's stack, or every goroutine's, formatted as Go's `runtime.Stack`
/// does: for each goroutine a header with its id, name, state and how long it has waited,
/// then its frames from the innermost (where it parked) out, then where it was spawned.
/// The calling goroutine comes first. Empty on a plain thread.
///
/// Goroutines parked (in a channel operation, `select`, a `sync` primitive, a sleep, a
/// socket read, a join) are listed with their frames; one running on another M, inside
/// [`blocking`](crate::blocking), or runnable is listed without, with a line saying why: its
/// stack may change at any moment and is never read while it may. See the module source for
/// how the walk works and `GOEXEC_TRACEBACK` for showing the runtime's own frames.
///
/// ```text
/// goroutine 1 [running]:
/// myapp::main::{{closure}}
///         /src/myapp/src/main.rs:9
/// created at src/main.rs:4:5
///
/// goroutine 7 [chan receive, 12 ms]:
/// myapp::worker
///         /src/myapp/src/main.rs:20
/// created by goroutine 1 at src/main.rs:8:9
/// ```
///
/// # Examples
///
/// ```
/// goexec::run(|| {
///     let (tx, rx) = goexec::chan::bounded::<u32>(0);
///     let worker = goexec::spawn(move || rx.recv());
///     while !goexec::runtime::stack(true).contains("[chan receive") {
///         goexec::yield_now();
///     }
///     let mine = goexec::runtime::stack(false);
///     assert!(mine.starts_with("goroutine 1 [running]:"));
///     tx.send(1).unwrap();
///     assert_eq!(worker.join().unwrap(), Ok(1));
/// });
/// ```
pub fn stack(all: bool) -> String {
    let Some(me) = current_g() else {
        return String::new();
    };
    // The caller's frames are walked here, on its own stack (a walk from another stack could
    // not find them); the rest (other goroutines' walks, symbolizing, formatting: tens of KiB
    // of stack) runs on the M's stack, so that a goroutine with a small stack can call it.
    let mine = own_frames();
    me.systemstack(move || {
        if all {
            traceback_sched(me.sched(), Some((me, mine)))
        } else {
            let mut t = Tracer::new();
            t.goroutine(me, me.sched().now_ns(), Some(&mine));
            t.out
        }
    })
}

/// Every goroutine of the current runtime with its stack: [`dump`](super::dump())'s long
/// form, the same as [`stack(true)`](stack).
pub fn dump_stacks() -> String {
    stack(true)
}

/// The frames of the calling thread, as return addresses (the innermost first).
pub(crate) fn own_frames() -> Vec<usize> {
    let mut ips = Vec::with_capacity(64);
    backtrace::trace(|f| {
        if f.ip().is_null() {
            return false;
        }
        ips.push(f.ip() as usize);
        ips.len() < MAX_WALK
    });
    ips
}

/// Every goroutine of `sched`, with stacks. `me` is the calling goroutine and its frames
/// (taken by the caller, or earlier: a panic's report), listed first.
pub(crate) fn traceback_sched(sched: &Sched, me: Option<(GRef, Vec<usize>)>) -> String {
    let now = sched.now_ns();
    let gs = sorted_gs(sched);
    let mut t = Tracer::new();
    if let Some((g, frames)) = &me {
        t.goroutine(*g, now, Some(frames));
    }
    for g in gs {
        if me.as_ref().is_some_and(|(m, _)| *m == g) {
            continue;
        }
        t.goroutine(g, now, None);
    }
    t.out
}

/// Every G record of `sched`, by goroutine id as read once: a record reused by a spawn while
/// we sort must not change its key mid-sort.
pub(crate) fn sorted_gs(sched: &Sched) -> Vec<GRef> {
    let mut gs: Vec<(u64, GRef)> = sched.all_gs().into_iter().map(|g| (g.id(), g)).collect();
    gs.sort_unstable_by_key(|&(id, _)| id);
    gs.into_iter().map(|(_, g)| g).collect()
}

/// Formats goroutines, with a cache of symbolized addresses (ten thousand goroutines parked
/// at the same few places resolve each address once).
struct Tracer {
    out: String,
    symbols: HashMap<usize, Vec<Sym>>,
    system: bool,
}

/// One (possibly inlined) function at an address.
struct Sym {
    name: Option<String>,
    file: Option<String>,
    line: Option<u32>,
}

impl Tracer {
    fn new() -> Tracer {
        Tracer {
            out: String::new(),
            symbols: HashMap::new(),
            system: level() == Level::System,
        }
    }

    /// Appends one goroutine: its header, its frames (`frames` if given: the caller's own),
    /// where it was created. Skips free records.
    fn goroutine(&mut self, g: GRef, now: u64, frames: Option<&Vec<usize>>) {
        let mut walked = None;
        let state;
        let mut why_not = None;
        // Held Waiting, if it is, for the header and the walk together.
        let scan = if frames.is_none() {
            g.scan_waiting_wait()
        } else {
            None
        };
        if let Some(guard) = &scan {
            state = super::dump::state_of(g, GStatus::Waiting, now);
            let sp = guard.saved_sp();
            // SAFETY: `sp` is the saved context of a G held Waiting by the guard: its stack
            // is mapped (a Waiting G's stack is never freed) and unchanged until the guard
            // drops, after the walk. A parked G's sp is from suspend or transfer, never
            // init_stack's (only Runnable or Idle Gs have a fresh stack).
            let fresh = unsafe { crate::arch::is_fresh(sp) };
            if !fresh {
                // SAFETY: as above.
                walked = Some(unsafe { crate::arch::suspended_return_addresses(sp, MAX_WALK) });
            }
        } else {
            let status = g.status();
            state = super::dump::state_of(g, status, now);
            if frames.is_none() {
                why_not = match status {
                    GStatus::Running if g.wait_reason() == WaitReason::Syscall => {
                        Some("goroutine in a blocking section on another thread; stack unavailable")
                    }
                    GStatus::Running => {
                        Some("goroutine running on other thread; stack unavailable")
                    }
                    GStatus::Runnable => Some("goroutine runnable; stack not walked"),
                    // Woke between the scan attempt and now, or parked just now: say so.
                    GStatus::Waiting => Some("goroutine changing state; stack not walked"),
                    GStatus::Idle | GStatus::Dead => None,
                };
            }
        }
        drop(scan);
        let Some(state) = state else {
            return;
        };
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        super::dump::write_header(&mut self.out, g, &state);
        let ips = frames.or(walked.as_ref());
        match (ips, why_not) {
            (Some(ips), _) => self.frames(ips),
            (None, Some(why)) => {
                let _ = writeln!(self.out, "\t{why}");
            }
            (None, None) => {}
        }
        self.created_by(g);
    }

    /// `created by goroutine 1 at src/main.rs:8:9`, or `created at ...` for a goroutine no
    /// goroutine spawned (the main one, `after_func`'s).
    fn created_by(&mut self, g: GRef) {
        let by = match g.parent() {
            0 => String::new(),
            id => format!(" by goroutine {id}"),
        };
        match g.spawned_at() {
            Some(at) => {
                let _ = writeln!(
                    self.out,
                    "created{by} at {}:{}:{}",
                    at.file(),
                    at.line(),
                    at.column()
                );
            }
            None if !by.is_empty() => {
                let _ = writeln!(self.out, "created{by}");
            }
            None => {}
        }
    }

    /// Appends the frames at these return addresses, innermost first.
    fn frames(&mut self, ips: &[usize]) {
        let mut shown = 0;
        // A walk that filled its buffer did not reach the goroutine's root.
        let mut elided = ips.len() >= MAX_WALK;
        for &ip in ips.iter() {
            if shown >= MAX_FRAMES {
                elided = true;
                break;
            }
            let system = self.system;
            let syms = self.symbols.entry(ip).or_insert_with(|| resolve(ip));
            if syms.is_empty() {
                if system {
                    let _ = writeln!(self.out, "?\n\tpc={ip:#x}");
                    shown += 1;
                }
                continue;
            }
            for s in syms.iter() {
                let name = s.name.as_deref().unwrap_or("?");
                if !system
                    && (is_runtime_frame(name) || s.file.as_deref().is_some_and(is_runtime_file))
                {
                    continue;
                }
                let _ = writeln!(self.out, "{name}");
                match (&s.file, s.line) {
                    (Some(file), Some(line)) if system => {
                        let _ = writeln!(self.out, "\t{file}:{line} pc={ip:#x}");
                    }
                    (Some(file), Some(line)) => {
                        let _ = writeln!(self.out, "\t{file}:{line}");
                    }
                    _ => {
                        let _ = writeln!(self.out, "\tpc={ip:#x}");
                    }
                }
                shown += 1;
            }
        }
        if elided {
            self.out.push_str("...additional frames elided...\n");
        }
        if shown == 0 && !ips.is_empty() && !self.system {
            // Nothing of the program's own could be told apart (no debug information, or its
            // code inlined into the runtime's): every frame, with its address, beats none.
            self.system = true;
            self.frames(ips);
            self.system = false;
        }
    }
}

/// The functions at return address `ip` (inlined ones first), from the binary's symbols and
/// debug information.
fn resolve(ip: usize) -> Vec<Sym> {
    let mut syms = Vec::new();
    // A return address is just past its call: look up the call itself.
    let at = ip.saturating_sub(1) as *mut c_void;
    backtrace::resolve(at, |s| {
        syms.push(Sym {
            name: s.name().map(|n| format!("{n:#}")),
            file: s.filename().map(|f| f.display().to_string()),
            line: s.lineno(),
        });
    });
    syms
}

/// Whether a frame belongs to the runtime rather than the program: the `goexec` crate's own
/// functions, the backtrace machinery, and std's plumbing between a goroutine's root and its
/// function (closure calls, `catch_unwind`).
fn is_runtime_frame(name: &str) -> bool {
    let name = name.strip_prefix('<').unwrap_or(name);
    const PREFIXES: [&str; 10] = [
        "goexec::",
        "goexec_unwind_pivot",
        "goexec_trampoline",
        "backtrace::",
        "core::ops::function::",
        "std::panicking::",
        "std::panic::",
        "core::panic::unwind_safe::",
        "__rust_try",
        "std::sys::backtrace::",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || name.contains(" as core::ops::function::Fn")
        || name.starts_with("alloc::boxed::Box<F,A> as core::ops::function::")
}

/// Whether a source file is the runtime's: this crate's sources, or std's closure-call and
/// `catch_unwind` plumbing. With `debug = "line-tables-only"` inlined functions carry only
/// their short names (`park`, `call_once`), so the file is what tells.
fn is_runtime_file(file: &str) -> bool {
    const OURS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");
    const STD: [&str; 5] = [
        "/library/core/src/ops/function.rs",
        "/library/core/src/panic/unwind_safe.rs",
        "/library/std/src/panicking.rs",
        "/library/std/src/panic.rs",
        "/library/alloc/src/boxed.rs",
    ];
    file.starts_with(OURS)
        || STD.iter().any(|s| file.ends_with(s))
        || (file.contains("/backtrace-0.") && file.contains("/src/backtrace/"))
}

/// Writes a report to the process's stderr directly, not through std's `Stderr`, whose lock
/// another thread may hold (the report of a deadlock or a SIGQUIT must not wait on it).
pub(crate) fn write_stderr(text: &str) {
    let mut bytes = text.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer of the given length to fd 2, which the process
        // keeps open (or the write fails, and the report is lost: nothing else is at stake).
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        } else {
            return;
        }
    }
}

/// The goroutines part of a fatal report (deadlock, Abort), or a line saying it is left out
/// under `GOEXEC_TRACEBACK=none`.
pub(crate) fn report_goroutines(sched: &Sched, me: Option<(GRef, Vec<usize>)>) -> String {
    if level() == Level::None {
        return "(goroutines not shown: GOEXEC_TRACEBACK=none)\n".to_owned();
    }
    traceback_sched(sched, me)
}
