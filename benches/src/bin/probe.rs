//! One goexec workload, once, at procs 1: no tokio runtime and no warm-up, so that a tool
//! counting the whole process (`benches/callgrind.sh`) counts that workload alone. Prints
//! `NAME SIZE OPS`, where OPS is how many operations the run made.
//!
//! ```text
//! cargo run --release -p goexec-benches --bin probe -- NAME SIZE
//! ```

use goexec_benches::sched;
use std::process::ExitCode;
use std::time::Duration;

/// A deadline that never comes during a run.
const HOUR: Duration = Duration::from_secs(3600);

/// A scheduling point every 256 operations of a loop that never parks: sysmon would otherwise
/// take the P from it after 10 ms (slow under callgrind) and a second M would run it.
fn keep_the_p(i: usize) {
    if i % 256 == 255 {
        goexec::yield_now();
    }
}

/// Runs `f` as the main goroutine of a runtime with one P.
fn on_one_p(f: impl FnOnce() + Send + 'static) {
    let rt = goexec::Runtime::builder()
        .procs(1)
        .build()
        .expect("a runtime");
    rt.run(f);
}

/// A workload: its name, what one operation is, the largest size taken (spawn_join and
/// chained_spawn hold every goroutine at once), and a run of a size returning its operations.
struct Workload {
    name: &'static str,
    op: &'static str,
    max: usize,
    run: fn(usize) -> usize,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "yield_many",
        op: "a yield",
        max: 100_000_000,
        run: |n| {
            sched::yield_many_goexec(1, n);
            n / sched::YIELD_TASKS * sched::YIELD_TASKS
        },
    },
    Workload {
        name: "ping_pong",
        op: "a round trip",
        max: 100_000_000,
        run: |n| {
            sched::ping_pong_goexec(1, n);
            n
        },
    },
    Workload {
        name: "ring",
        op: "a hop",
        max: 100_000_000,
        run: |n| {
            sched::ring_goexec(1, n);
            n
        },
    },
    Workload {
        name: "spawn_join",
        op: "a spawn and its join",
        max: 1_000_000,
        run: |n| {
            sched::spawn_join_goexec(1, n);
            n
        },
    },
    Workload {
        name: "chained_spawn",
        op: "a link (a spawn and its join)",
        max: 100_000,
        run: |n| {
            sched::chained_spawn_goexec(1, n);
            n
        },
    },
    Workload {
        name: "timer_stop",
        op: "a Timer::new(1 h) and its stop",
        max: 100_000_000,
        run: |n| {
            on_one_p(move || {
                for i in 0..n {
                    let t = goexec::time::Timer::new(HOUR);
                    assert!(t.stop());
                    keep_the_p(i);
                }
            });
            n
        },
    },
    Workload {
        name: "select_after",
        op: "a select! of a ready value and an after(1 h)",
        max: 100_000_000,
        run: |n| {
            on_one_p(move || {
                let (tx, rx) = goexec::chan::bounded(1);
                for i in 0..n {
                    tx.send(i).unwrap();
                    goexec::select! {
                        recv(rx) -> v => assert_eq!(v, Ok(i)),
                        recv(goexec::chan::after(HOUR)) -> _ => unreachable!("an hour passed"),
                    }
                    keep_the_p(i);
                }
            });
            n
        },
    },
    Workload {
        name: "recv_timeout",
        op: "a round trip of recv_timeout(1 h)s",
        max: 100_000_000,
        run: |n| {
            on_one_p(move || {
                let (ping, pings) = goexec::chan::bounded(0);
                let (pong, pongs) = goexec::chan::bounded(0);
                let peer = goexec::spawn(move || {
                    while let Ok(i) = pings.recv_timeout(HOUR) {
                        pong.send(i).unwrap();
                    }
                });
                for i in 0..n {
                    ping.send(i).unwrap();
                    assert_eq!(pongs.recv_timeout(HOUR), Ok(i));
                }
                drop(ping);
                peer.join().unwrap();
            });
            n
        },
    },
    Workload {
        name: "sleep",
        op: "a sleep(1 ns) (due when the M looks)",
        max: 100_000_000,
        run: |n| {
            on_one_p(move || {
                for _ in 0..n {
                    goexec::time::sleep(Duration::from_nanos(1));
                }
            });
            n
        },
    },
];

fn usage() -> String {
    let mut s =
        "usage: probe NAME SIZE\n\nNAME, what one operation is, the largest SIZE:".to_owned();
    for w in WORKLOADS {
        s.push_str(&format!("\n  {:<14} {:<30} {}", w.name, w.op, w.max));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let [name, size] = &args[..] else {
        eprintln!("probe: expected NAME SIZE\n{}", usage());
        return ExitCode::from(2);
    };
    let Some(w) = WORKLOADS.iter().find(|w| w.name == name) else {
        eprintln!("probe: no workload named {name:?}\n{}", usage());
        return ExitCode::from(2);
    };
    let Some(n) = size.parse().ok().filter(|n| (1..=w.max).contains(n)) else {
        eprintln!("probe: {name} takes a SIZE in 1..={}, not {size:?}", w.max);
        return ExitCode::from(2);
    };
    let ops = (w.run)(n);
    println!("{name} {n} {ops}");
    ExitCode::SUCCESS
}
