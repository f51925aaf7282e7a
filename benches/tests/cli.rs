//! The compare binary's command line: bad input gets a message and exit status 2, a missing
//! `wrk` skips the HTTP row with a note instead of failing, and a small run prints the table.

use std::process::{Command, Output};

fn compare(args: &[&str], path: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_goexec-benches"));
    cmd.args(args);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output().expect("run the compare binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    for (args, needle) in [
        (&["--only", "nosuch"][..], "no workload named \"nosuch\""),
        (&["--rounds", "0"][..], "--rounds"),
        (&["--threads", "x"][..], "--threads"),
        (&["--only", "switch/2"][..], "a single row"),
        (&["--echo-secs", "-1"][..], "--echo-secs"),
        (&["--frobnicate"][..], "unknown argument"),
    ] {
        let out = compare(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn list_names_every_workload() {
    let out = compare(&["--list"], None);
    assert!(out.status.success());
    let list = text(&out.stdout);
    for w in [
        "spawn_join",
        "chained_spawn",
        "ping_pong",
        "yield_many",
        "ring",
        "mem_parked",
        "tcp_echo",
        "http_plaintext",
        "switch",
        "timers_ticker",
        "timers_ticker_fewest",
        "timers_burst",
    ] {
        assert!(list.contains(w), "{w} missing from --list:\n{list}");
    }
}

#[test]
fn without_wrk_the_http_row_is_skipped_with_a_note() {
    // An empty PATH: no wrk to be found.
    let empty = std::env::temp_dir().join("goexec-benches-no-wrk");
    std::fs::create_dir_all(&empty).unwrap();
    let out = compare(
        &["--only", "http_plaintext/1", "--rounds", "1"],
        Some(empty.to_str().unwrap()),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("skipped: wrk is not installed"), "{stdout}");
    assert!(stdout.contains("apt-get install wrk"), "{stdout}");
}

#[test]
fn a_small_run_prints_the_table_with_both_sides() {
    let out = compare(
        &[
            "--only",
            "ping_pong/1,mem_parked/1,tcp_echo/1",
            "--rounds",
            "1",
            "--echo-secs",
            "0.2",
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for row in ["ping_pong/1", "mem_parked/1", "tcp_echo/1"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {row} |")))
            .unwrap_or_else(|| panic!("no {row} row in:\n{stdout}"));
        // Both sides measured: no "—" in the figure columns, and a ratio.
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(!cells[3].contains('—') && !cells[4].contains('—'), "{line}");
        assert!(cells[5].parse::<f64>().is_ok(), "{line}");
    }
}

/// Go's side of the timer rows: without `go` on PATH the script says it skipped and succeeds.
#[test]
fn the_go_timer_script_skips_without_go() {
    let empty = std::env::temp_dir().join("goexec-benches-no-go");
    std::fs::create_dir_all(&empty).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/go/run.sh");
    let out = Command::new("/bin/bash")
        .arg(script)
        .env("PATH", &empty)
        .output()
        .expect("run benches/go/run.sh");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("skipped: no `go` on PATH"), "{stdout}");
}
