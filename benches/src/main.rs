//! `compare`: the same workloads on goexec and on tokio, side by side.
//!
//! Runs each selected workload at each selected worker count for several rounds, alternating
//! goexec and tokio (A B A B ...) so that drift in the machine's speed hits both alike, and
//! prints a table: the median with min–max per side, the cost ratio goexec/tokio (lower is
//! better for goexec; for throughput rows it is tokio's figure over goexec's), and the goal.
//!
//! ```text
//! cargo run --release -p goexec-benches                       # everything, 5 rounds
//! cargo run --release -p goexec-benches -- --only ring,ping_pong --threads 1 --rounds 9
//! cargo run --release -p goexec-benches -- --list
//! ```

use goexec_benches::{extras, mem, net, sched, timers};
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Which way a workload's figure improves.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    /// A cost (time or bytes per operation).
    Lower,
    /// A throughput (operations per second).
    Higher,
}

/// How a workload's samples are taken.
#[derive(Clone, Copy)]
enum How {
    /// In this process: each side is a function of the worker count returning the figure.
    InProcess {
        goexec: fn(usize) -> f64,
        tokio: Option<fn(usize) -> f64>,
    },
    /// Each sample in a fresh child process (`--child NAME SIDE THREADS`), for memory figures.
    Child,
    /// A server on each side, driven by a load generator in another process.
    Load(LoadKind),
}

#[derive(Clone, Copy, PartialEq)]
enum LoadKind {
    /// The echo client below (this binary started with `--echo-client`).
    Echo,
    /// `wrk -t1 -c64`.
    Wrk,
}

/// One workload of the comparison.
struct Workload {
    name: &'static str,
    unit: &'static str,
    about: &'static str,
    /// One row per worker count (false: a single row, the workload has no worker count).
    threaded: bool,
    better: Better,
    /// The project's goal for the cost ratio goexec/tokio.
    goal: Option<f64>,
    how: How,
}

/// Sizes of the runs (the operation each figure is per).
const SPAWN_N: usize = 100_000;
const CHAIN_N: usize = 10_000;
const YIELD_N: usize = sched::YIELD_TASKS * 5_000;
const PING_PONG_N: usize = 200_000;
const RING_HOPS: usize = 1_000_000;
const PARKED_N: usize = 100_000;
const SLEEPS: usize = 200;
const ECHO_CONNS: usize = 64;
const WRK_CONNS: usize = 64;

fn ns_per(d: Duration, ops: usize) -> f64 {
    d.as_nanos() as f64 / ops as f64
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "spawn_join",
        unit: "ns/task",
        about: "100,000 tasks each increment an atomic; all spawned, then all joined",
        threaded: true,
        better: Better::Lower,
        goal: Some(0.8),
        how: How::InProcess {
            goexec: |p| ns_per(sched::spawn_join_goexec(p, SPAWN_N), SPAWN_N),
            tokio: Some(|p| ns_per(sched::spawn_join_tokio(p, SPAWN_N), SPAWN_N)),
        },
    },
    Workload {
        name: "spawn_batch",
        unit: "ns/task",
        about: "spawn_join in batches of 1,000 (at most 1,000 tasks alive, so their memory \
                stays in cache)",
        threaded: true,
        better: Better::Lower,
        goal: None,
        how: How::InProcess {
            goexec: |p| ns_per(sched::spawn_batch_goexec(p, SPAWN_N), SPAWN_N),
            tokio: Some(|p| ns_per(sched::spawn_batch_tokio(p, SPAWN_N), SPAWN_N)),
        },
    },
    Workload {
        name: "chained_spawn",
        unit: "ns/link",
        about: "each task spawns the next and waits for it, 10,000 deep",
        threaded: true,
        better: Better::Lower,
        goal: Some(0.8),
        how: How::InProcess {
            goexec: |p| ns_per(sched::chained_spawn_goexec(p, CHAIN_N), CHAIN_N),
            tokio: Some(|p| ns_per(sched::chained_spawn_tokio(p, CHAIN_N), CHAIN_N)),
        },
    },
    Workload {
        name: "yield_many",
        unit: "ns/yield",
        about: "200 tasks each yield 5,000 times",
        threaded: true,
        better: Better::Lower,
        goal: Some(0.6),
        how: How::InProcess {
            goexec: |p| ns_per(sched::yield_many_goexec(p, YIELD_N), YIELD_N),
            tokio: Some(|p| ns_per(sched::yield_many_tokio(p, YIELD_N), YIELD_N)),
        },
    },
    Workload {
        name: "ping_pong",
        unit: "ns/round trip",
        about: "two tasks bounce a value over two channels, 200,000 round trips; goexec \
                unbuffered channels, tokio mpsc with capacity 1",
        threaded: true,
        better: Better::Lower,
        goal: Some(0.7),
        how: How::InProcess {
            goexec: |p| ns_per(sched::ping_pong_goexec(p, PING_PONG_N), PING_PONG_N),
            tokio: Some(|p| ns_per(sched::ping_pong_tokio(p, PING_PONG_N), PING_PONG_N)),
        },
    },
    Workload {
        name: "ring",
        unit: "ns/hop",
        about: "Go's threadring: 503 tasks in a ring pass a counter 1,000,000 hops; goexec \
                unbuffered channels, tokio mpsc with capacity 1",
        threaded: true,
        better: Better::Lower,
        goal: Some(0.7),
        how: How::InProcess {
            goexec: |p| ns_per(sched::ring_goexec(p, RING_HOPS), RING_HOPS),
            tokio: Some(|p| ns_per(sched::ring_tokio(p, RING_HOPS), RING_HOPS)),
        },
    },
    Workload {
        name: "mem_parked",
        unit: "bytes/task",
        about: "resident memory per parked task, 100,000 tasks waiting on one signal (goexec: \
                a channel receive; tokio: a semaphore acquire); VmRSS growth, each sample in a \
                fresh process",
        threaded: true,
        better: Better::Lower,
        goal: Some(4.0),
        how: How::Child,
    },
    Workload {
        name: "tcp_echo",
        unit: "round trips/s",
        about: "TCP echo server, a task per connection; one load client (a separate process, \
                one thread) keeps 64 connections busy with 64-byte round trips for a fixed \
                time (--echo-secs)",
        threaded: true,
        better: Better::Higher,
        goal: Some(0.9),
        how: How::Load(LoadKind::Echo),
    },
    Workload {
        name: "http_plaintext",
        unit: "requests/s",
        about: "`wrk -t1 -c64 -d5s` against the same minimal HTTP/1.1 keep-alive server on each \
                side (--http-secs sets -d); skipped, with a note, where wrk is not installed",
        threaded: true,
        better: Better::Higher,
        goal: Some(0.9),
        how: How::Load(LoadKind::Wrk),
    },
    Workload {
        name: "sleep_100us",
        unit: "µs/sleep",
        about: "one task sleeps 100 µs, 200 times, on an idle runtime with 1 worker: timer \
                precision (tokio, like Go, rounds a sleep up to its 1 ms timer wheel)",
        threaded: false,
        better: Better::Lower,
        goal: None,
        how: How::InProcess {
            goexec: |_| ns_per(sched::sleep_100us_goexec(SLEEPS), SLEEPS) / 1000.0,
            tokio: Some(|_| ns_per(sched::sleep_100us_tokio(SLEEPS), SLEEPS) / 1000.0),
        },
    },
    Workload {
        name: "timers_ticker",
        unit: "ticks",
        about: "10,000 tasks each on a 10 ms ticker for 500 ms: ticks received in all (at most \
                500,000); goexec Ticker, tokio interval with MissedTickBehavior::Skip (Go drops \
                a slow receiver's ticks too); Go's figure: benches/go/run.sh",
        threaded: true,
        better: Better::Higher,
        goal: None,
        how: How::InProcess {
            goexec: |p| ticker_total("goexec", p, timers::ticker_goexec),
            tokio: Some(|p| ticker_total("tokio", p, timers::ticker_tokio)),
        },
    },
    Workload {
        name: "timers_ticker_fewest",
        unit: "ticks",
        about: "timers_ticker's run: the ticks of the task that got fewest (at most 50; a low \
                figure is a starved ticker)",
        threaded: true,
        better: Better::Higher,
        goal: None,
        how: How::InProcess {
            goexec: |p| ticker_fewest("goexec", p, timers::ticker_goexec),
            tokio: Some(|p| ticker_fewest("tokio", p, timers::ticker_tokio)),
        },
    },
    Workload {
        name: "timers_burst",
        unit: "ms p99 late",
        about: "50,000 tasks sleep until one instant 300 ms ahead: the 99th percentile of how \
                late they woke; goexec sleep_until, tokio sleep_until; Go's figure: \
                benches/go/run.sh",
        threaded: true,
        better: Better::Lower,
        goal: None,
        how: How::InProcess {
            goexec: timers::burst_goexec,
            tokio: Some(timers::burst_tokio),
        },
    },
    Workload {
        name: "switch",
        unit: "ns/round trip",
        about: "the raw context switch: resume + suspend, a value each way (two stack \
                switches); tokio has no stackful switch (its task switch is in yield_many)",
        threaded: false,
        better: Better::Lower,
        goal: None,
        how: How::InProcess {
            goexec: |_| extras::raw_switch_round_trip(),
            tokio: None,
        },
    },
    Workload {
        name: "coroutine",
        unit: "ns/round trip",
        about: "Coroutine::resume + Yielder::suspend: the switch plus the stack-overflow record \
                and moving the values",
        threaded: false,
        better: Better::Lower,
        goal: None,
        how: How::InProcess {
            goexec: |_| extras::coroutine_round_trip(),
            tokio: None,
        },
    },
    Workload {
        name: "stack_pool",
        unit: "ns/get+put",
        about: "take a default-size stack from a warm StackPool and give it back",
        threaded: false,
        better: Better::Lower,
        goal: None,
        how: How::InProcess {
            goexec: |_| extras::stack_pool_cycle(),
            tokio: None,
        },
    },
    Workload {
        name: "stack_fresh",
        unit: "ns/new+drop",
        about: "Stack::new + drop of a default-size stack with no pool (the arena slot's guard \
                is already installed after the first round)",
        threaded: false,
        better: Better::Lower,
        goal: None,
        how: How::InProcess {
            goexec: |_| extras::stack_fresh_cycle(),
            tokio: None,
        },
    },
    Workload {
        name: "stack_rss",
        unit: "bytes/stack",
        about: "100,000 default-size stacks held at once, the top page of each touched: \
                resident memory per stack",
        threaded: false,
        better: Better::Lower,
        goal: None,
        how: How::InProcess {
            goexec: |_| extras::stack_rss(),
            tokio: None,
        },
    },
];

/// `timers_ticker` and `timers_ticker_fewest` are two figures of one run. The total's row keeps
/// each run's [`timers::Ticks`] here, per side and worker count, and the fewest's row (next in
/// the table, the same rounds in the same order) takes them instead of running the 500 ms
/// workload again; a row selected alone runs it itself.
type TicksKept = std::collections::HashMap<(&'static str, usize), Vec<timers::Ticks>>;
static TICKS: std::sync::Mutex<Option<TicksKept>> = std::sync::Mutex::new(None);

fn ticker_total(side: &'static str, workers: usize, run: fn(usize) -> timers::Ticks) -> f64 {
    let t = run(workers);
    let mut kept = TICKS.lock().unwrap();
    let kept = kept.get_or_insert_with(Default::default);
    kept.entry((side, workers)).or_default().push(t);
    t.total as f64
}

fn ticker_fewest(side: &'static str, workers: usize, run: fn(usize) -> timers::Ticks) -> f64 {
    let kept = TICKS
        .lock()
        .unwrap()
        .as_mut()
        .and_then(|k| k.get_mut(&(side, workers)))
        .filter(|runs| !runs.is_empty())
        .map(|runs| runs.remove(0));
    kept.unwrap_or_else(|| run(workers)).fewest as f64
}

struct Options {
    rounds: usize,
    threads: Vec<usize>,
    /// Workload names, or name/threads for one row.
    only: Option<Vec<String>>,
    echo_secs: f64,
    http_secs: u64,
}

const USAGE: &str = "\
usage: goexec-benches [--rounds N] [--threads N[,N...]] [--only NAME[,NAME...]]
                      [--echo-secs S] [--http-secs S] [--list]

  --rounds N      samples per side and row (default 5)
  --threads LIST  worker counts for the threaded workloads (default 1,2): goexec procs N,
                  tokio current_thread for 1 and multi_thread with N workers otherwise
  --only NAMES    run only these workloads; NAME/THREADS picks one row (see --list)
  --echo-secs S   length of each tcp_echo sample in seconds (default 2)
  --http-secs S   length of each wrk run in whole seconds (default 5)
  --list          list the workloads and what each measures";

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        rounds: 5,
        threads: vec![1, 2],
        only: None,
        echo_secs: 2.0,
        http_secs: 5,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs {what}"))
        };
        match arg.as_str() {
            "--rounds" => {
                let v = value("a number")?;
                o.rounds = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| format!("--rounds: {v:?} is not a whole number in 1..=1000"))?;
            }
            "--threads" => {
                let v = value("worker counts")?;
                o.threads = v
                    .split(',')
                    .map(|t| {
                        t.trim()
                            .parse()
                            .ok()
                            .filter(|n| (1..=1024).contains(n))
                            .ok_or_else(|| format!("--threads: {t:?} is not a count in 1..=1024"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--only" => {
                let v = value("workload names")?;
                let names: Vec<String> = v.split(',').map(|s| s.trim().to_owned()).collect();
                for n in &names {
                    let base = n.split('/').next().unwrap_or_default();
                    let Some(w) = WORKLOADS.iter().find(|w| w.name == base) else {
                        return Err(format!("--only: no workload named {base:?} (see --list)"));
                    };
                    if let Some(t) = n.split_once('/').map(|(_, t)| t) {
                        if !w.threaded || !t.parse::<usize>().is_ok_and(|t| t >= 1) {
                            return Err(format!(
                                "--only: {n:?}: {base} has {}",
                                if w.threaded {
                                    "rows NAME/N for a worker count N >= 1"
                                } else {
                                    "a single row (no worker count)"
                                }
                            ));
                        }
                    }
                }
                o.only = Some(names);
            }
            "--echo-secs" => {
                let v = value("seconds")?;
                o.echo_secs = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| (0.05..=600.0).contains(s))
                    .ok_or_else(|| format!("--echo-secs: {v:?} is not a time in 0.05..=600"))?;
            }
            "--http-secs" => {
                let v = value("seconds")?;
                o.http_secs = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=600).contains(s))
                    .ok_or_else(|| {
                        format!("--http-secs: {v:?} is not a whole number in 1..=600")
                    })?;
            }
            "--list" => {
                for w in WORKLOADS {
                    let rows = if w.threaded { "/N" } else { "" };
                    let goal = w.goal.map_or(String::new(), |g| format!(" [goal ≤ {g}]"));
                    println!("{}{rows} ({}){goal}\n    {}", w.name, w.unit, w.about);
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Some(o))
}

/// One row: a workload at a worker count (0 for the unthreaded ones).
struct Row {
    w: &'static Workload,
    threads: usize,
}

impl Row {
    fn label(&self) -> String {
        if self.w.threaded {
            format!("{}/{}", self.w.name, self.threads)
        } else {
            self.w.name.to_owned()
        }
    }
}

fn rows(o: &Options) -> Vec<Row> {
    let mut rows = Vec::new();
    for w in WORKLOADS {
        let counts: Vec<usize> = if w.threaded {
            o.threads.clone()
        } else {
            vec![0]
        };
        for threads in counts {
            let row = Row { w, threads };
            let picked = o
                .only
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| *n == w.name || *n == row.label()));
            if picked {
                rows.push(row);
            }
        }
    }
    // A NAME/N asked for by --only at an N outside --threads still runs.
    for n in o.only.iter().flatten() {
        if let Some((base, t)) = n.split_once('/') {
            let threads: usize = t.parse().expect("checked in parse_args");
            let w = WORKLOADS.iter().find(|w| w.name == base).expect("checked");
            if !rows.iter().any(|r| r.label() == *n) {
                rows.push(Row { w, threads });
            }
        }
    }
    rows
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Goexec,
    Tokio,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Goexec => "goexec",
            Side::Tokio => "tokio",
        }
    }
}

/// Takes one side's samples of one row.
trait Sampler {
    /// An untimed run, to warm caches, pools and lazily started threads.
    fn warm_up(&mut self) -> Result<(), String>;
    fn sample(&mut self) -> Result<f64, String>;
}

struct InProcess {
    f: fn(usize) -> f64,
    threads: usize,
}

impl Sampler for InProcess {
    fn warm_up(&mut self) -> Result<(), String> {
        (self.f)(self.threads);
        Ok(())
    }
    fn sample(&mut self) -> Result<f64, String> {
        Ok((self.f)(self.threads))
    }
}

/// Runs this binary as `--child NAME SIDE THREADS` and reads the figure it prints.
struct Child {
    name: &'static str,
    side: Side,
    threads: usize,
}

impl Sampler for Child {
    fn warm_up(&mut self) -> Result<(), String> {
        Ok(()) // every sample is a fresh process: nothing carries over to warm
    }
    fn sample(&mut self) -> Result<f64, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let out = Command::new(exe)
            .args(["--child", self.name, self.side.name()])
            .arg(self.threads.to_string())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot start the child process: {e}"))?;
        if !out.status.success() {
            return Err(format!("the child process failed ({})", out.status));
        }
        parse_figure(&out.stdout)
    }
}

fn parse_figure(out: &[u8]) -> Result<f64, String> {
    let text = String::from_utf8_lossy(out);
    text.trim()
        .parse()
        .map_err(|_| format!("unexpected output {:?}", text.trim()))
}

/// A server on one side and the load that drives it.
struct Load {
    server: net::Server,
    kind: LoadKind,
    echo_secs: f64,
    http_secs: u64,
}

impl Load {
    fn start(side: Side, kind: LoadKind, threads: usize, o: &Options) -> Load {
        let server = match (side, kind) {
            (Side::Goexec, LoadKind::Echo) => net::goexec_server(threads, net::echo_goexec),
            (Side::Goexec, LoadKind::Wrk) => net::goexec_server(threads, net::http_goexec),
            (Side::Tokio, LoadKind::Echo) => net::tokio_server(threads, net::echo_tokio),
            (Side::Tokio, LoadKind::Wrk) => net::tokio_server(threads, net::http_tokio),
        };
        Load {
            server,
            kind,
            echo_secs: o.echo_secs,
            http_secs: o.http_secs,
        }
    }

    fn drive(&self, secs: f64) -> Result<f64, String> {
        match self.kind {
            LoadKind::Echo => echo_load(self.server.addr, secs),
            LoadKind::Wrk => wrk(self.server.addr, secs.round().max(1.0) as u64),
        }
    }
}

impl Sampler for Load {
    fn warm_up(&mut self) -> Result<(), String> {
        self.drive(1.0).map(|_| ())
    }
    fn sample(&mut self) -> Result<f64, String> {
        match self.kind {
            LoadKind::Echo => self.drive(self.echo_secs),
            LoadKind::Wrk => self.drive(self.http_secs as f64),
        }
    }
}

/// Runs the echo client in a child process against `addr` for `secs`: round trips per second.
fn echo_load(addr: SocketAddr, secs: f64) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let out = Command::new(exe)
        .args(["--echo-client", &addr.to_string()])
        .arg(ECHO_CONNS.to_string())
        .arg(secs.to_string())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the echo client: {e}"))?;
    if !out.status.success() {
        return Err(format!("the echo client failed ({})", out.status));
    }
    parse_figure(&out.stdout)
}

/// The message printed, and the row skipped, where wrk is not installed.
const NO_WRK: &str = "wrk is not installed, so http_plaintext was skipped. Install it \
                      (Debian/Ubuntu: `sudo apt-get install wrk`; macOS: `brew install wrk`; \
                      or build https://github.com/wg/wrk) and run again.";

fn have_wrk() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `wrk -t1 -c64 -dSECSs http://ADDR/`: requests per second, or why the run does not count.
fn wrk(addr: SocketAddr, secs: u64) -> Result<f64, String> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{WRK_CONNS}"), &format!("-d{secs}s")])
        .arg(format!("http://{addr}/"))
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("wrk failed ({}): {text}", out.status));
    }
    // An error or a bad response means the server misbehaved: that run's figure is void.
    for bad in ["Socket errors", "Non-2xx or 3xx responses"] {
        if let Some(line) = text.lines().find(|l| l.trim_start().starts_with(bad)) {
            return Err(format!("wrk reported `{}`", line.trim()));
        }
    }
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output: {text}"))
}

/// Median, min and max.
type Summary = (f64, f64, f64);

fn summary(samples: &mut [f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    Some((median, samples[0], samples[n - 1]))
}

/// A figure with as many decimals as its size deserves.
fn fmt_num(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_cell(s: Option<Summary>) -> String {
    match s {
        Some((med, lo, hi)) => format!("{} ({}–{})", fmt_num(med), fmt_num(lo), fmt_num(hi)),
        None => "—".to_owned(),
    }
}

/// The outcome of one row.
struct Outcome {
    goexec: Option<Summary>,
    tokio: Option<Summary>,
    /// Why the row has no figures, if it has none.
    error: Option<String>,
}

fn sampler(row: &Row, side: Side, o: &Options) -> Option<Box<dyn Sampler>> {
    let threads = row.threads.max(1);
    match row.w.how {
        How::InProcess { goexec, tokio } => {
            let f = match side {
                Side::Goexec => goexec,
                Side::Tokio => tokio?,
            };
            Some(Box::new(InProcess { f, threads }))
        }
        How::Child => Some(Box::new(Child {
            name: row.w.name,
            side,
            threads,
        })),
        How::Load(kind) => Some(Box::new(Load::start(side, kind, threads, o))),
    }
}

/// Progress on one line of a terminal (nothing where stderr is a file or a pipe: the finished
/// rows are printed either way).
fn show(progress: &str, what: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K{progress} {what}");
    }
}

/// Where stderr is a terminal, the start of the line and a clear, to overwrite the progress.
fn clear() -> &'static str {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        "\r\x1b[K"
    } else {
        ""
    }
}

fn run_row(row: &Row, o: &Options, progress: &str) -> Outcome {
    let mut sides: Vec<(Side, Box<dyn Sampler>, Vec<f64>)> = [Side::Goexec, Side::Tokio]
        .into_iter()
        .filter_map(|side| sampler(row, side, o).map(|s| (side, s, Vec::new())))
        .collect();
    let fail = |e: String| Outcome {
        goexec: None,
        tokio: None,
        error: Some(e),
    };
    for (side, s, _) in &mut sides {
        show(progress, &format!("warming up {}", side.name()));
        if let Err(e) = s.warm_up() {
            return fail(format!("{} warm-up: {e}", side.name()));
        }
    }
    for round in 1..=o.rounds {
        for (side, s, samples) in &mut sides {
            show(
                progress,
                &format!("round {round}/{} {}", o.rounds, side.name()),
            );
            match s.sample() {
                Ok(v) => samples.push(v),
                Err(e) => return fail(format!("{}: {e}", side.name())),
            }
        }
    }
    let mut out = Outcome {
        goexec: None,
        tokio: None,
        error: None,
    };
    for (side, _, mut samples) in sides {
        match side {
            Side::Goexec => out.goexec = summary(&mut samples),
            Side::Tokio => out.tokio = summary(&mut samples),
        }
    }
    out
}

/// The cost ratio goexec/tokio (for throughput, tokio's figure over goexec's).
fn ratio(w: &Workload, g: Summary, t: Summary) -> f64 {
    match w.better {
        Better::Lower => g.0 / t.0,
        Better::Higher => t.0 / g.0,
    }
}

fn child_main(args: &[String]) -> ExitCode {
    let run = || -> Result<String, String> {
        match args {
            [flag, name, side, threads] if flag == "--child" && name == "mem_parked" => {
                let threads: usize = threads.parse().map_err(|_| "bad thread count")?;
                Ok(match side.as_str() {
                    "goexec" => mem::parked_goexec(threads, PARKED_N),
                    "tokio" => mem::parked_tokio(threads, PARKED_N),
                    _ => return Err(format!("unknown side {side:?}")),
                }
                .to_string())
            }
            [flag, addr, conns, secs] if flag == "--echo-client" => {
                let addr: SocketAddr = addr.parse().map_err(|_| "bad address")?;
                let conns: usize = conns.parse().map_err(|_| "bad connection count")?;
                let secs: f64 = secs.parse().map_err(|_| "bad duration")?;
                let start = Instant::now();
                let trips = net::echo_client(addr, conns, Duration::from_secs_f64(secs))
                    .map_err(|e| format!("echo client: {e}"))?;
                Ok((trips as f64 / start.elapsed().as_secs_f64()).to_string())
            }
            _ => Err(format!("bad internal invocation {args:?}")),
        }
    };
    match run() {
        Ok(figure) => {
            println!("{figure}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("goexec-benches: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| a == "--child" || a == "--echo-client")
    {
        return child_main(&args);
    }
    let o = match parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("goexec-benches: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("goexec-benches: warning: a debug build; run with --release for real figures");
    }
    let rows = rows(&o);
    let wrk_ok = have_wrk();
    eprintln!(
        "goexec-benches: {} row(s), {} round(s) per side, goexec and tokio alternating",
        rows.len(),
        o.rounds
    );
    let started = Instant::now();
    let mut table = Vec::new();
    let mut notes = Vec::new();
    let mut failed = false;
    for (i, row) in rows.iter().enumerate() {
        let label = row.label();
        let progress = format!(
            "[{}/{} {:>4.0}s] {label}:",
            i + 1,
            rows.len(),
            started.elapsed().as_secs_f64()
        );
        let outcome = if matches!(row.w.how, How::Load(LoadKind::Wrk)) && !wrk_ok {
            if !notes.iter().any(|n| n == NO_WRK) {
                notes.push(NO_WRK.to_owned());
            }
            Outcome {
                goexec: None,
                tokio: None,
                error: Some("skipped: wrk is not installed".to_owned()),
            }
        } else {
            run_row(row, &o, &progress)
        };
        let (ratio_cell, goal_cell) = match (outcome.goexec, outcome.tokio) {
            (Some(g), Some(t)) => {
                let r = ratio(row.w, g, t);
                let goal = row.w.goal.map_or("—".to_owned(), |goal| {
                    format!("≤ {goal}: {}", if r <= goal { "met" } else { "missed" })
                });
                (format!("{r:.2}"), goal)
            }
            _ => (
                "—".to_owned(),
                row.w.goal.map_or("—".to_owned(), |g| format!("≤ {g}")),
            ),
        };
        if let Some(e) = &outcome.error {
            if !e.starts_with("skipped") {
                failed = true;
            }
            eprintln!("{}{label}: {e}", clear());
        } else {
            eprintln!(
                "{}{label}: goexec {} | tokio {} | {ratio_cell}",
                clear(),
                fmt_cell(outcome.goexec),
                fmt_cell(outcome.tokio)
            );
        }
        let (g, t) = match &outcome.error {
            Some(e) => (e.clone(), "—".to_owned()),
            None => (fmt_cell(outcome.goexec), fmt_cell(outcome.tokio)),
        };
        table.push([label, row.w.unit.to_owned(), g, t, ratio_cell, goal_cell]);
    }
    let header = [
        "workload",
        "unit",
        "goexec median (min–max)",
        "tokio median (min–max)",
        "goexec/tokio cost",
        "goal",
    ];
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for r in table {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    let _ = writeln!(
        out,
        "\n{} rounds per side; worker counts {:?}; the cost ratio is goexec/tokio for times and \
         bytes, tokio/goexec for throughputs, so below 1 means goexec is ahead; took {:.0} s",
        o.rounds,
        o.threads,
        started.elapsed().as_secs_f64()
    );
    for n in notes {
        let _ = writeln!(out, "\nnote: {n}");
    }
    if failed {
        eprintln!("goexec-benches: some rows failed (see above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
