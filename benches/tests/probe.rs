//! The probe binary (one goexec workload, for callgrind): bad input gets a message and exit
//! status 2, and a run prints its name, size and operation count.

use std::process::{Command, Output};

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_probe"))
        .args(args)
        .output()
        .expect("run the probe")
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    for (args, needle) in [
        (&[][..], "expected NAME SIZE"),
        (&["ring"][..], "expected NAME SIZE"),
        (&["nosuch", "5"][..], "no workload named \"nosuch\""),
        (&["ring", "x"][..], "ring takes a SIZE"),
        (&["ring", "0"][..], "ring takes a SIZE"),
        (&["chained_spawn", "100001"][..], "1..=100000"),
    ] {
        let out = probe(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_run_prints_its_operation_count() {
    for (args, line) in [
        (["yield_many", "1000"], "yield_many 1000 1000"),
        (["yield_many", "1100"], "yield_many 1100 1000"),
        (["ping_pong", "100"], "ping_pong 100 100"),
        (["ring", "1000"], "ring 1000 1000"),
        (["spawn_join", "100"], "spawn_join 100 100"),
        (["chained_spawn", "100"], "chained_spawn 100 100"),
    ] {
        let out = probe(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), line, "{args:?}");
    }
}
