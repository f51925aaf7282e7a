//! The scheduler's `tracing` events (spawn, park with its wait reason, ready, exit) and
//! GOEXEC_SCHEDTRACE's lines.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The events of target `goexec::sched`: (goid, message, reason).
static EVENTS: Mutex<Vec<(u64, String, String)>> = Mutex::new(Vec::new());

/// A minimal subscriber that keeps goexec's scheduler events.
struct Collect;

#[derive(Default)]
struct Fields {
    goid: u64,
    message: String,
    reason: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "goid" {
            self.goid = value;
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "reason" {
            self.reason = value.to_owned();
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);

impl Subscriber for Collect {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.target() == "goexec::sched"
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(NEXT_SPAN.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        EVENTS.lock().unwrap().push((f.goid, f.message, f.reason));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn spawn_park_ready_and_exit_are_traced() {
    tracing::subscriber::set_global_default(Collect).unwrap();
    let child = goexec::run(|| {
        let (tx, rx) = goexec::chan::bounded::<u32>(0);
        let h = goexec::spawn(move || rx.recv().unwrap());
        let id = h.id();
        // Let it park in its receive, then wake it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !goexec::runtime::dump().contains("[chan receive") {
            assert!(std::time::Instant::now() < deadline);
            goexec::yield_now();
        }
        tx.send(5).unwrap();
        assert_eq!(h.join().unwrap(), 5);
        id
    });
    let events = EVENTS.lock().unwrap().clone();
    let of_child: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.0 == child)
        .map(|e| (e.1.as_str(), e.2.as_str()))
        .collect();
    let pos = |what: (&str, &str)| {
        of_child
            .iter()
            .position(|e| *e == what)
            .unwrap_or_else(|| panic!("no {what:?} for goroutine {child} in {of_child:?}"))
    };
    let spawn = pos(("spawn", ""));
    let park = pos(("park", "chan receive"));
    let ready = pos(("ready", ""));
    let exit = pos(("exit", ""));
    assert!(spawn < park && park < ready && ready < exit, "{of_child:?}");
    // Main (goroutine 1) was spawned and exited too.
    assert!(events.iter().any(|e| e.0 == 1 && e.1 == "spawn"));
    assert!(events.iter().any(|e| e.0 == 1 && e.1 == "exit"));
}

#[test]
fn schedtrace_prints_go_style_lines() {
    if std::env::var_os("GOEXEC_SCHEDTRACE").is_some() {
        // The child: a runtime busy for a while with goroutines queued.
        goexec::Runtime::builder()
            .procs(2)
            .build()
            .unwrap()
            .run(|| {
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_millis(120) {
                    let hs: Vec<_> = (0..100).map(|i| goexec::spawn(move || i)).collect();
                    hs.into_iter().for_each(|h| drop(h.join()));
                    goexec::time::sleep(Duration::from_millis(1));
                }
            });
        return;
    }
    let out = common::run_test_child(
        "schedtrace_prints_go_style_lines",
        &[("GOEXEC_SCHEDTRACE", "20")],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(lines.len() >= 3, "too few schedtrace lines:\n{err}");
    for l in &lines {
        for key in [
            "gomaxprocs=2",
            "idleprocs=",
            "threads=",
            "spinningthreads=",
            "idlethreads=",
            "runqueue=",
        ] {
            assert!(l.contains(key), "{key} missing in {l:?}");
        }
        assert!(l.ends_with(']') && l.matches(' ').count() >= 8, "{l:?}");
    }
}
