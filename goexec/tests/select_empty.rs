//! `select! {}` (Go's `select {}`): compiles in a user crate as an expression of any type, and
//! blocks its goroutine for good; the runtime abandons it when main returns.

mod common;

use goexec::runtime::dump;

// Never called: these only have to compile (this crate's edition is the workspace's).
#[allow(dead_code)]
fn blocks_as_any_type() -> u32 {
    goexec::select! {}
}

#[allow(dead_code)]
fn blocks_as_a_statement() {
    goexec::select! {};
}

#[allow(dead_code)]
fn blocks_in_a_branch(v: Option<String>) -> String {
    match v {
        Some(s) => s,
        None => goexec::select! {},
    }
}

#[test]
fn an_empty_select_blocks_and_is_abandoned_at_shutdown() {
    let _wd = common::watchdog("select_empty", 30);
    let rt = goexec::Runtime::builder().procs(2).build().unwrap();
    let text = rt.run(|| {
        let (tx, rx) = goexec::chan::bounded::<()>(0);
        let h = goexec::spawn(move || {
            tx.send(()).unwrap();
            goexec::select! {}
        });
        rx.recv().unwrap();
        // Bounded polling until it is parked.
        let want = format!("goroutine {} [select (no cases), ", h.id());
        let mut text = String::new();
        for _ in 0..100_000 {
            text = dump();
            if text.contains(&want) {
                break;
            }
            goexec::yield_now();
        }
        assert!(text.contains(&want), "{text}");
        text
    });
    // `run` came back with the goroutine still blocked.
    assert!(text.contains("select (no cases)"), "{text}");
}
