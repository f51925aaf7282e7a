//! `goexec/gdb/goexec-gdb.py` under a real gdb: the `parked` example stops at its breakpoint
//! with four goroutines parked, and `info goroutines` must list each with its wait reason,
//! `goroutine N bt` must walk each one's stack from the user's function down to the
//! goroutine's root, and the selected thread's registers and frames must be as before
//! afterwards (also after a command that fails inside the goroutine's context).
//!
//! Skipped, with a line saying so, where gdb is not installed or may not trace its child. The
//! example is built by `cargo test -p goexec-examples` (see `shutdown.rs`); `--test gdb`
//! alone refuses a binary older than its source.

mod common;

use common::example;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on the whole gdb session (it takes about a second).
const LIMIT: Duration = Duration::from_secs(60);

/// Runs gdb in batch mode with `commands`, each after an `echo @@<name>` line so that the
/// output can be cut into sections; killed after `LIMIT`. Returns stdout and stderr.
fn gdb(bin: &PathBuf, commands: &[(&str, &str)]) -> (String, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../goexec/gdb/goexec-gdb.py");
    let mut cmd = Command::new("gdb");
    cmd.args(["-batch", "-nx", "-iex", "set debuginfod enabled off"])
        .args(["-ex", &format!("source {}", script.display())])
        .args(["-ex", "break goexec_example_parked", "-ex", "run"]);
    for (name, c) in commands {
        cmd.args(["-ex", &format!("echo @@{name}\\n"), "-ex", c]);
    }
    cmd.args(["-ex", "echo @@end\\n", "-ex", "kill"]);
    let mut child = cmd
        .arg(bin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start gdb");
    // Read both pipes on threads, so that the wait below stays bounded.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "gdb did not finish in {LIMIT:?}; its output:\n{}",
                out.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (out.join().unwrap(), err.join().unwrap())
}

/// The output cut at the `@@<name>` lines.
fn sections(out: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut cur: Option<String> = None;
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            cur = Some(name.to_owned());
            map.insert(name.to_owned(), String::new());
        } else if let Some(c) = &cur {
            let s = map.get_mut(c).unwrap();
            s.push_str(line);
            s.push('\n');
        }
    }
    map
}

#[test]
fn info_goroutines_and_goroutine_bt() {
    if Command::new("gdb").arg("--version").output().is_err() {
        println!("skipped: gdb not found");
        return;
    }
    let bin = example("parked");
    // Goroutine ids are given in spawn order: main is 1, the four parked ones 2 to 5. Which
    // one waits for what is read from `info goroutines` below.
    let mut commands: Vec<(String, String)> = [
        ("info", "info goroutines"),
        ("regs-before", "info registers"),
        ("bt-before", "bt 3"),
    ]
    .map(|(n, c)| (n.to_owned(), c.to_owned()))
    .to_vec();
    for id in 1..=5 {
        commands.push((format!("bt-{id}"), format!("goroutine {id} bt")));
    }
    commands.extend(
        [
            // Fails inside the goroutine's context: the registers must come back all the same.
            ("failing", "goroutine 2 frame 5000"),
            ("regs-after", "info registers"),
            ("bt-after", "bt 3"),
            // From a thread that is not an M: no goroutine is current, and goroutine 1
            // (running) is shown from its own thread.
            ("thread1", "thread 1"),
            ("info-thread1", "info goroutines"),
            ("bt-main", "goroutine 1 bt"),
            ("thread-after", "thread"),
        ]
        .map(|(n, c)| (n.to_owned(), c.to_owned())),
    );
    let pairs: Vec<(&str, &str)> = commands
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    let (out, err) = gdb(&bin, &pairs);
    let all = format!("--- stdout\n{out}\n--- stderr\n{err}");
    if !out.contains("hit Breakpoint") && err.contains("Operation not permitted") {
        println!("skipped: gdb may not trace its child here (ptrace not permitted):\n{all}");
        return;
    }
    assert!(out.contains("hit Breakpoint"), "never stopped:\n{all}");
    let s = sections(&out);
    let section = |name: &str| {
        s.get(name)
            .unwrap_or_else(|| panic!("no section {name}:\n{all}"))
            .as_str()
    };

    // `* 1     running  on M0 (thread 3, LWP 1234)`, `  2     waiting [chan receive]`.
    let info = section("info");
    let mut by_reason = HashMap::new();
    for line in info.lines() {
        let fields: Vec<&str> = line[1..].split_whitespace().collect();
        let id: u64 = fields[0]
            .parse()
            .unwrap_or_else(|_| panic!("bad line {line:?}:\n{all}"));
        if fields[1] == "running" {
            assert_eq!(id, 1, "only main runs:\n{all}");
            assert!(
                line.starts_with('*'),
                "main is on the selected thread:\n{all}"
            );
            assert!(line.contains("on M"), "main's M:\n{all}");
        } else {
            assert_eq!(fields[1], "waiting", "{line:?}:\n{all}");
            let reason = line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()].to_owned();
            by_reason.insert(reason, id);
        }
    }
    let expect = [
        ("chan receive", "parked::wait_for_message"),
        ("sync.Mutex.Lock", "parked::wait_for_lock"),
        ("sync.WaitGroup.Wait", "parked::wait_for_group"),
        ("sleep", "parked::take_a_nap"),
    ];
    for (reason, function) in expect {
        let id = by_reason
            .get(reason)
            .unwrap_or_else(|| panic!("no goroutine waiting for {reason}:\n{all}"));
        let bt = section(&format!("bt-{id}"));
        assert!(
            bt.contains(function),
            "goroutine {id} ({reason}): {function} not in its backtrace:\n{all}"
        );
        // Every frame is named: a context restored wrongly shows as `?? ()` frames (gdb may
        // find its way back onto the right frames past them).
        assert!(
            !bt.contains(" ?? ("),
            "goroutine {id}: an unnamed frame in its backtrace:\n{all}"
        );
        assert!(
            bt.starts_with("#0 ") && bt.lines().next().unwrap().contains("goexec::"),
            "goroutine {id}: the innermost frame is not the runtime's switch:\n{all}"
        );
        // The walk ends at the goroutine's root: nothing past the trampoline.
        let last = bt.lines().last().unwrap_or_default();
        assert!(
            last.contains("goexec_trampoline"),
            "goroutine {id}: the backtrace does not end at goexec_trampoline:\n{all}"
        );
    }
    assert!(
        section("bt-1").contains("goexec_example_parked"),
        "goroutine 1 bt:\n{all}"
    );

    // The selected thread is as it was, after every goroutine's command and after a failing
    // one.
    assert!(
        err.contains("No frame at level 5000"),
        "the failing command:\n{all}"
    );
    assert_eq!(
        section("regs-before"),
        section("regs-after"),
        "registers:\n{all}"
    );
    assert_eq!(section("bt-before"), section("bt-after"), "frames:\n{all}");
    assert!(
        section("bt-before").contains("goexec_example_parked"),
        "{all}"
    );

    // From thread 1 (the process's main thread, not an M).
    assert!(
        !section("info-thread1").contains('*'),
        "no goroutine runs on thread 1:\n{all}"
    );
    assert!(
        section("bt-main").contains("goexec_example_parked"),
        "goroutine 1 bt from thread 1:\n{all}"
    );
    assert!(
        section("thread-after").contains("Current thread is 1 "),
        "thread 1 is selected again:\n{all}"
    );
}
