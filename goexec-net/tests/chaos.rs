//! A chaos soak of the TCP server path: a goexec echo server (a goroutine per connection, a
//! read deadline that drops idle connections, an accept loop that backs off on errors) driven
//! by a client process holding thousands of connections at once, with a burst of `EMFILE`
//! in the middle.
//!
//! This process is the server; the client is this test binary run again (`harness = false`),
//! a goexec program too. Each client worker holds one connection at a time, back to back,
//! with a random role per connection:
//! - normal: rounds of write, read the echo back, verify; then close;
//! - reset: write, read part of the echo, then close with `SO_LINGER` 0 (an RST) while the
//!   rest is in flight;
//! - half-closed: a writer goroutine sends and shuts its half down, the reader reads every
//!   byte back and then the end (`Ok(0)`);
//! - slow reader: the same, reading in small chunks with pauses, so that the server's writes
//!   wait for the client;
//! - idle: nothing more after a greeting; the server's read deadline drops it, and the client
//!   sees the end or a reset.
//!
//! Every worker's first connection waits at a barrier until all of them are connected, so the
//! client really holds `GOEXEC_CHAOS_CONNS` connections at once. Message sizes run from 1 B
//! to 64 KiB (log-uniform), and every byte of a connection's stream is a function of its seed
//! and position, so that a byte lost, corrupted or duplicated fails the comparison. All the
//! choices come from one seed, printed at the start (`GOEXEC_CHAOS_SEED` repeats them; the
//! interleaving is the machine's).
//!
//! A third into the main phase the client asks for the burst: the server lowers its own
//! `RLIMIT_NOFILE` soft limit for a second, to leave just 8 descriptors free, and the client
//! sends an extra wave of connections (a quarter of the workers) into it, so `accept` fails
//! with `EMFILE` while connections queue. Connections started in that window that fail are
//! counted as expected.
//!
//! The server drops a connection idle for its read deadline: a second per 2,000 connections
//! by default, since a client goroutine among thousands, on two vCPUs shared with the server,
//! can take hundreds of milliseconds between an echo's arrival and its next write. A
//! connection dropped while its writes were never a deadline apart is the server's fault; one
//! whose writes were slower is counted as the client's (see `Pace`).
//!
//! Checked: no corrupted or extra byte on any connection, no short echo or other failure
//! that the burst or a slow client does not explain, no unexpected server error; the accept
//! loop saw `EMFILE` and served connections after the limit came back (a last probe
//! connection is echoed); the server's descriptor count returns to its baseline; its RSS
//! returns to within 10% of the baseline taken after a warm-up phase.
//!
//! The warm-up runs the same client (same concurrency, roles and wave, no burst) first, 8 s
//! by default, because what a finished connection leaves is kept for reuse, not given
//! back: the runtime caches goroutine stacks with the pages they touched, and the allocator
//! keeps freed buffers. An RSS baseline taken before any load counts those caches as a leak;
//! here they fill within the first few seconds of load, so a baseline taken after the same
//! load is what the process settles at, and a real leak (per connection or per byte) grows
//! past it. The server uses one malloc arena (`one_malloc_arena` says why).
//!
//! Defaults (CI, debug): 2,000 connections, an 8 s warm-up, an 8 s main phase, about 20 s in
//! all. The long run is a documented command, not CI:
//!
//! ```text
//! GOEXEC_CHAOS_SECS=600 GOEXEC_CHAOS_CONNS=10000 cargo test --release -p goexec-net --test chaos
//! ```
//!
//! Knobs: `GOEXEC_CHAOS_SECS` (main phase), `GOEXEC_CHAOS_WARMUP_SECS` (default 8),
//! `GOEXEC_CHAOS_CONNS` (concurrent connections), `GOEXEC_CHAOS_SEED`, `GOEXEC_CHAOS_IDLE_MS`
//! (the server's idle read deadline). The server prints a progress line every 5 s and a
//! summary: connections by role, bytes, the server's outcomes and errors by kind, the
//! `EMFILE` count, RSS baseline/peak/final and descriptor baseline/final.

mod common;
use common::{nofile, set_nofile};

use goexec_net::{TcpListener, TcpStream};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::fs::FileExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set in the client process: the server's address.
const CLIENT: &str = "GOEXEC_CHAOS_CLIENT";

/// Every client read and write gives up after this: a server that stops answering fails the
/// test instead of hanging it.
const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the server keeps its open-file limit lowered.
const BURST: Duration = Duration::from_secs(1);

/// Descriptors the lowered limit leaves above the server's open count.
const BURST_SLACK: u64 = 8;

/// How often the server prints a progress line.
const PROGRESS: Duration = Duration::from_secs(5);

/// A server read buffer: one chunk of an echo.
const CHUNK: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// Shared by both processes.

/// The run's parameters, from the environment (the client gets them the same way).
#[derive(Clone, Copy, Debug)]
struct Config {
    conns: usize,
    secs: f64,
    warmup_secs: f64,
    seed: u64,
    idle: Duration,
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} does not parse")),
    )
}

impl Config {
    fn from_env() -> Config {
        // Emulated runs are many times slower: a smaller default soak.
        let emulated = std::env::var_os("GOEXEC_TEST_EMULATED").is_some();
        let seed = env("GOEXEC_CHAOS_SEED").unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            mix(t.as_nanos() as u64 ^ u64::from(std::process::id()))
        });
        let conns = env("GOEXEC_CHAOS_CONNS").unwrap_or(if emulated { 200 } else { 2000 });
        // A second per 2,000 connections: on two vCPUs a client goroutine among 10,000 can
        // wait over a second between an echo's arrival and its next write.
        let idle_ms = 1000 * (conns as u64).div_ceil(2000);
        Config {
            conns,
            secs: env("GOEXEC_CHAOS_SECS").unwrap_or(8.0),
            warmup_secs: env("GOEXEC_CHAOS_WARMUP_SECS").unwrap_or(8.0),
            seed,
            idle: Duration::from_millis(env("GOEXEC_CHAOS_IDLE_MS").unwrap_or(idle_ms)),
        }
    }
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A message size from 1 B to 64 KiB, log-uniform: as many tiny messages as large ones.
    fn size(&mut self) -> usize {
        let bits = self.below(17);
        ((1u64 << bits) + self.below(1 << bits)).min(64 * 1024) as usize
    }
}

/// The length of [`pattern`]: a prime above every connection's stream length, so that a run
/// of bytes lost or repeated anywhere in a stream shifts what follows off the pattern.
const PATTERN_LEN: usize = 1_048_573;

/// Random bytes that every connection's stream is cut from: byte `pos` of the stream of
/// connection `seed` is `pattern()[(seed + pos) % PATTERN_LEN]`. Copying and comparing
/// slices of it is memcpy/memcmp, cheap even in a debug build, where generating each byte
/// would cost the client more CPU than the server spends.
fn pattern() -> &'static [u8] {
    static P: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let mut rng = Rng(0x0063_6861_6f73);
        let mut p = Vec::with_capacity(PATTERN_LEN + 8);
        while p.len() < PATTERN_LEN {
            p.extend_from_slice(&rng.next().to_le_bytes());
        }
        p.truncate(PATTERN_LEN);
        p
    })
}

/// Calls `f` with the pieces of the pattern that bytes `pos..pos + len` of the stream of
/// connection `seed` are, in order, with their offset into the range.
fn pieces(seed: u64, pos: u64, len: usize, mut f: impl FnMut(usize, &[u8])) {
    let p = pattern();
    let mut at =
        ((seed % PATTERN_LEN as u64 + pos % PATTERN_LEN as u64) % PATTERN_LEN as u64) as usize;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(PATTERN_LEN - at);
        f(done, &p[at..at + n]);
        done += n;
        at = 0;
    }
}

/// Bytes `pos..pos + out.len()` of the stream of connection `seed`.
fn fill(seed: u64, pos: u64, out: &mut [u8]) {
    pieces(seed, pos, out.len(), |i, src| {
        out[i..i + src.len()].copy_from_slice(src)
    });
}

/// The first byte of `got` that is not bytes `pos..` of the stream of connection `seed`.
fn mismatch(seed: u64, pos: u64, got: &[u8]) -> Option<usize> {
    let mut first = None;
    pieces(seed, pos, got.len(), |i, want| {
        let g = &got[i..i + want.len()];
        if first.is_none() && g != want {
            first = Some(i + g.iter().zip(want).position(|(a, b)| a != b).unwrap());
        }
    });
    first
}

/// Raises the soft open-file limit to the hard one (thousands of sockets per process).
fn raise_nofile() {
    let r = nofile();
    set_nofile(&libc::rlimit {
        rlim_cur: r.rlim_max,
        rlim_max: r.rlim_max,
    });
}

/// Counts into a map of named counters.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, what: impl Into<String>) {
        *self.0.lock().unwrap().entry(what.into()).or_default() += 1;
    }

    fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }

    /// `a=1,b=2`, or `-` when empty.
    fn render(&self) -> String {
        let m = self.0.lock().unwrap();
        if m.is_empty() {
            return "-".into();
        }
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn kind(e: &std::io::Error) -> String {
    format!("{:?}", e.kind())
}

// ---------------------------------------------------------------------------------------------
// The client process.

/// What a client connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Normal,
    Reset,
    HalfClosed,
    SlowReader,
    Idle,
}

const ROLES: [Role; 5] = [
    Role::Normal,
    Role::Reset,
    Role::HalfClosed,
    Role::SlowReader,
    Role::Idle,
];

impl Role {
    /// 5% slow readers, 5% idle, the rest in thirds.
    fn pick(rng: &mut Rng) -> Role {
        match rng.below(100) {
            0..5 => Role::SlowReader,
            5..10 => Role::Idle,
            10..40 => Role::Normal,
            40..70 => Role::Reset,
            _ => Role::HalfClosed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Normal => "normal",
            Role::Reset => "reset",
            Role::HalfClosed => "half_closed",
            Role::SlowReader => "slow_reader",
            Role::Idle => "idle",
        }
    }
}

/// Why a connection failed.
enum Fail {
    Connect(std::io::Error),
    Io(&'static str, std::io::Error),
    /// A byte that is not the one sent at `pos`.
    Corrupt {
        pos: u64,
    },
    /// The echo ended at `got` of `want` bytes.
    Short {
        got: u64,
        want: u64,
    },
    /// More came back than was sent (or anything, where nothing should).
    Extra {
        at: u64,
    },
    /// The server never dropped an idle connection.
    NotDropped,
}

impl Fail {
    /// Bytes that are not the ones sent: never expected, not even in the burst. (A short
    /// echo is what a connection the server dropped gives.)
    fn is_corruption(&self) -> bool {
        matches!(self, Fail::Corrupt { .. } | Fail::Extra { .. })
    }

    fn label(&self) -> String {
        match self {
            Fail::Connect(e) => format!("connect:{}", kind(e)),
            Fail::Io(step, e) => format!("{step}:{}", kind(e)),
            Fail::Corrupt { .. } => "corrupt".into(),
            Fail::Short { .. } => "short".into(),
            Fail::Extra { .. } => "extra".into(),
            Fail::NotDropped => "idle_not_dropped".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Fail::Connect(e) => format!("connect failed: {e}"),
            Fail::Io(step, e) => format!("{step} failed: {e}"),
            Fail::Corrupt { pos } => format!("byte {pos} is not the one sent"),
            Fail::Short { got, want } => format!("the echo ended at {got} of {want} bytes"),
            Fail::Extra { at } => format!("more than the {at} bytes sent came back"),
            Fail::NotDropped => "the server never dropped the idle connection".into(),
        }
    }
}

#[derive(Default)]
struct ClientStats {
    started: [AtomicU64; 5],
    completed: [AtomicU64; 5],
    bytes_sent: AtomicU64,
    bytes_verified: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    /// The slowest [`Pace`] of any connection.
    slowest_pace_ms: AtomicU64,
    connect_retries: Tally,
    /// Failures of connections started inside the burst window (or of the wave).
    expected: Tally,
    unexpected: Tally,
    /// The first few unexpected failures, in full.
    details: Mutex<Vec<String>>,
    /// Milliseconds from the client's start to the server's "lowered" and "raised"
    /// (u64::MAX: not yet).
    lowered_ms: AtomicU64,
    raised_ms: AtomicU64,
}

/// The pace of a connection's writes: the longest time between one write's end (or the
/// connect's start) and the next's. The server's idle deadline can only have passed on a
/// connection whose pace was at least that slow: the server starts waiting for the next
/// data after the previous write's data arrived, and the next write ends once its data is
/// sent. So a connection the server dropped although its pace was well under the deadline is
/// the server's fault; one with a slower pace is this client's (a goroutine among thousands,
/// on a machine the server shares, can wait that long to run).
struct Pace {
    t0: Instant,
    last_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Pace {
    fn new() -> Arc<Pace> {
        Arc::new(Pace {
            t0: Instant::now(),
            last_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// A connect starts.
    fn connecting(&self) {
        self.last_ns.store(self.now(), Relaxed);
    }

    /// A write ended.
    fn wrote(&self) {
        let now = self.now();
        let prev = self.last_ns.swap(now, Relaxed);
        self.max_ns.fetch_max(now.saturating_sub(prev), Relaxed);
    }

    fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns.load(Relaxed))
    }
}

/// One client connection: open while it lives, for the peak count.
struct Conn<'a> {
    s: TcpStream,
    pace: Arc<Pace>,
    stats: &'a ClientStats,
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Relaxed);
    }
}

struct Client {
    cfg: Config,
    addr: SocketAddr,
    start: Instant,
    deadline: Instant,
    stats: ClientStats,
}

impl Client {
    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Whether a connection started at `ms` (since the client's start) is in the burst
    /// window: from the server's lowering to a second after it raised the limit again.
    fn in_burst(&self, ms: u64) -> bool {
        let lowered = self.stats.lowered_ms.load(Relaxed);
        let raised = self.stats.raised_ms.load(Relaxed);
        lowered != u64::MAX && ms >= lowered && (raised == u64::MAX || ms <= raised + 1000)
    }

    /// Connects, retrying a few times (a connect can fail while the server's queue is full).
    fn connect(&self, pace: &Arc<Pace>) -> Result<Conn<'_>, Fail> {
        let mut attempt = 0;
        let s = loop {
            pace.connecting();
            match TcpStream::connect_timeout(&self.addr, CLIENT_IO_TIMEOUT) {
                Ok(s) => break s,
                Err(e) if attempt < 5 => {
                    self.stats.connect_retries.add(kind(&e));
                    attempt += 1;
                    goexec::time::sleep(Duration::from_millis(10 * attempt));
                }
                Err(e) => return Err(Fail::Connect(e)),
            }
        };
        let io = |e| Fail::Io("setup", e);
        s.set_read_timeout(Some(CLIENT_IO_TIMEOUT)).map_err(io)?;
        s.set_write_timeout(Some(CLIENT_IO_TIMEOUT)).map_err(io)?;
        let open = self.stats.open.fetch_add(1, Relaxed) + 1;
        self.stats.peak_open.fetch_max(open, Relaxed);
        Ok(Conn {
            s,
            pace: pace.clone(),
            stats: &self.stats,
        })
    }

    /// Runs one connection of `role` and records its outcome. `first` marks a worker's first
    /// connection, which waits at `barrier` (see `run_first`).
    fn one(&self, role: Role, rng: &mut Rng, barrier: Option<&goexec::sync::WaitGroup>) {
        let seed = rng.next();
        let began = self.ms();
        self.stats.started[role as usize].fetch_add(1, Relaxed);
        let pace = Pace::new();
        let r = match barrier {
            Some(b) => self.run_first(seed, rng, b, &pace),
            None => self.run(role, seed, rng, &pace),
        };
        let slow = pace.max();
        self.stats
            .slowest_pace_ms
            .fetch_max(slow.as_millis() as u64, Relaxed);
        match r {
            Ok(()) => {
                self.stats.completed[role as usize].fetch_add(1, Relaxed);
            }
            Err(f) if !f.is_corruption() && self.in_burst(began) => {
                self.stats
                    .expected
                    .add(format!("{}/{}", role.name(), f.label()));
            }
            // 50 ms of slack: the server may start its wait a little before a write ends.
            Err(f) if !f.is_corruption() && slow + Duration::from_millis(50) >= self.cfg.idle => {
                self.stats
                    .expected
                    .add(format!("{}/slow_client:{}", role.name(), f.label()));
            }
            Err(f) => {
                self.stats
                    .unexpected
                    .add(format!("{}/{}", role.name(), f.label()));
                let mut d = self.stats.details.lock().unwrap();
                if d.len() < 10 {
                    d.push(format!(
                        "{} connection (seed {seed:#x}) started at {began} ms, writes at most \
                         {slow:?} apart: {}",
                        role.name(),
                        f.describe()
                    ));
                }
            }
        }
    }

    /// A worker's first connection: a greeting, then a wait until every worker holds one (so
    /// the client holds `conns` at once), then a close. (The server may have dropped it as
    /// idle meanwhile, if the wait was long.)
    fn run_first(
        &self,
        seed: u64,
        rng: &mut Rng,
        barrier: &goexec::sync::WaitGroup,
        pace: &Arc<Pace>,
    ) -> Result<(), Fail> {
        let c = self.connect(pace);
        barrier.done();
        let c = c?;
        let n = 1 + rng.below(64) as usize;
        self.round(&c, seed, 0, n)?;
        barrier.wait();
        Ok(())
    }

    fn run(&self, role: Role, seed: u64, rng: &mut Rng, pace: &Arc<Pace>) -> Result<(), Fail> {
        let c = self.connect(pace)?;
        let s = &c.s;
        match role {
            Role::Normal => {
                let mut pos = 0;
                for _ in 0..1 + rng.below(6) {
                    let n = rng.size();
                    self.round(&c, seed, pos, n)?;
                    pos += n as u64;
                }
                Ok(())
            }
            Role::Reset => {
                let n = rng.size();
                let mut msg = vec![0; n];
                fill(seed, 0, &mut msg);
                (&*s).write_all(&msg).map_err(|e| Fail::Io("write", e))?;
                c.pace.wrote();
                self.stats.bytes_sent.fetch_add(n as u64, Relaxed);
                // Part of the echo, or none: the rest is in flight when the RST goes.
                let part = rng.below(n as u64 / 2 + 1);
                self.read_verify(s, seed, 0, part)?;
                socket2::SockRef::from(s)
                    .set_linger(Some(Duration::ZERO))
                    .map_err(|e| Fail::Io("linger", e))?;
                Ok(())
            }
            Role::HalfClosed => {
                let sizes: Vec<usize> = (0..1 + rng.below(4)).map(|_| rng.size()).collect();
                self.duplex(&c, seed, sizes, None)
            }
            Role::SlowReader => {
                // Enough that the server's writes wait for this reader.
                let sizes: Vec<usize> = (0..3).map(|_| 64 * 1024).collect();
                self.duplex(&c, seed, sizes, Some(rng.next()))
            }
            Role::Idle => {
                let n = rng.below(2) as usize * (1 + rng.below(64) as usize);
                if n > 0 {
                    self.round(&c, seed, 0, n)?;
                }
                self.expect_dropped(s, n as u64)
            }
        }
    }

    /// Writes bytes `pos..pos + n` and reads their echo back.
    fn round(&self, c: &Conn<'_>, seed: u64, pos: u64, n: usize) -> Result<(), Fail> {
        let mut msg = vec![0; n];
        fill(seed, pos, &mut msg);
        (&c.s).write_all(&msg).map_err(|e| Fail::Io("write", e))?;
        c.pace.wrote();
        self.stats.bytes_sent.fetch_add(n as u64, Relaxed);
        self.read_verify(&c.s, seed, pos, n as u64)
    }

    /// Reads exactly bytes `pos..pos + n` of the stream and checks them.
    fn read_verify(&self, s: &TcpStream, seed: u64, pos: u64, n: u64) -> Result<(), Fail> {
        let mut buf = vec![0; CHUNK];
        let mut got = 0;
        while got < n {
            let len = (n - got).min(CHUNK as u64) as usize;
            let r = (&*s)
                .read(&mut buf[..len])
                .map_err(|e| Fail::Io("read", e))?;
            if r == 0 {
                return Err(Fail::Short { got, want: n });
            }
            self.check(seed, pos + got, &buf[..r])?;
            got += r as u64;
        }
        Ok(())
    }

    fn check(&self, seed: u64, pos: u64, got: &[u8]) -> Result<(), Fail> {
        if let Some(i) = mismatch(seed, pos, got) {
            return Err(Fail::Corrupt {
                pos: pos + i as u64,
            });
        }
        self.stats
            .bytes_verified
            .fetch_add(got.len() as u64, Relaxed);
        Ok(())
    }

    /// A writer goroutine sends messages of `sizes` and shuts the write half down; this one
    /// reads every byte back and then the end. `slow`: read in small chunks with pauses.
    fn duplex(
        &self,
        c: &Conn<'_>,
        seed: u64,
        sizes: Vec<usize>,
        slow: Option<u64>,
    ) -> Result<(), Fail> {
        let (s, pace) = (&c.s, c.pace.clone());
        let total: u64 = sizes.iter().map(|&n| n as u64).sum();
        let w = s.try_clone().map_err(|e| Fail::Io("try_clone", e))?;
        let writer = goexec::spawn(move || -> std::io::Result<()> {
            let mut pos = 0;
            for n in sizes {
                let mut msg = vec![0; n];
                fill(seed, pos, &mut msg);
                (&w).write_all(&msg)?;
                pace.wrote();
                pos += n as u64;
            }
            w.shutdown(Shutdown::Write)
        });
        let read = self.read_to_end_verify(s, seed, total, slow);
        let wrote = writer.join().expect("the writer goroutine panicked");
        self.stats.bytes_sent.fetch_add(total, Relaxed);
        // A read error is the cause of a write error, not the other way round.
        read?;
        wrote.map_err(|e| Fail::Io("write", e))
    }

    fn read_to_end_verify(
        &self,
        s: &TcpStream,
        seed: u64,
        total: u64,
        slow: Option<u64>,
    ) -> Result<(), Fail> {
        let mut rng = slow.map(Rng);
        let mut buf = vec![0; CHUNK];
        let mut got = 0;
        loop {
            let len = match &mut rng {
                Some(r) => 1 + r.below(2048) as usize,
                None => CHUNK,
            };
            let n = (&*s)
                .read(&mut buf[..len])
                .map_err(|e| Fail::Io("read", e))?;
            if n == 0 {
                break;
            }
            if got + n as u64 > total {
                return Err(Fail::Extra { at: total });
            }
            self.check(seed, got, &buf[..n])?;
            got += n as u64;
            if let Some(r) = &mut rng {
                if r.below(4) == 0 {
                    goexec::time::sleep(Duration::from_millis(1));
                }
            }
        }
        if got < total {
            return Err(Fail::Short { got, want: total });
        }
        Ok(())
    }

    /// Waits for the server to drop an idle connection: the end, or a reset, within 5 s of
    /// its idle deadline. (A connection the server never accepted waits in vain: in the
    /// burst, a full accept queue drops the handshake's last ACK, and a request that stays
    /// unacknowledged is forgotten, while the client believes it is connected.)
    fn expect_dropped(&self, s: &TcpStream, at: u64) -> Result<(), Fail> {
        s.set_read_timeout(Some(self.cfg.idle + Duration::from_secs(5)))
            .map_err(|e| Fail::Io("setup", e))?;
        match (&*s).read(&mut [0u8; 16]) {
            Ok(0) => Ok(()),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
            Ok(_) => Err(Fail::Extra { at }),
            Err(e) if e.kind() == ErrorKind::TimedOut => Err(Fail::NotDropped),
            Err(e) => Err(Fail::Io("idle read", e)),
        }
    }

    /// A worker: its first connection, then connections of random roles until the deadline.
    fn worker(&self, w: usize, barrier: &goexec::sync::WaitGroup) {
        let mut rng = Rng(mix(self.cfg.seed ^ mix(w as u64 + 1)));
        self.one(Role::Normal, &mut rng, Some(barrier));
        while Instant::now() < self.deadline {
            let role = Role::pick(&mut rng);
            self.one(role, &mut rng, None);
        }
    }

    /// The failures in full, then the `CHAOS-REPORT` line the server reads.
    fn report(&self, phase: &str) -> String {
        let st = &self.stats;
        let mut out = String::new();
        for d in st.details.lock().unwrap().iter() {
            out += &format!("unexpected failure: {d}\n");
        }
        let roles = ROLES
            .iter()
            .map(|&r| {
                format!(
                    "{}={}/{}",
                    r.name(),
                    st.completed[r as usize].load(Relaxed),
                    st.started[r as usize].load(Relaxed)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        out + &format!(
            "CHAOS-REPORT phase={phase} secs={:.1} peak_open={} slowest_pace_ms={} roles={roles} \
             bytes_sent={} \
             bytes_verified={} connect_retries={} expected={} unexpected={} \
             unexpected_total={}",
            self.start.elapsed().as_secs_f64(),
            st.peak_open.load(Relaxed),
            st.slowest_pace_ms.load(Relaxed),
            st.bytes_sent.load(Relaxed),
            st.bytes_verified.load(Relaxed),
            st.connect_retries.render(),
            st.expected.render(),
            st.unexpected.render(),
            st.unexpected.total(),
        )
    }
}

/// The client process: `GOEXEC_CHAOS_CLIENT=<addr>`, `GOEXEC_CHAOS_PHASE=warmup|main`.
fn client_main(addr: SocketAddr) {
    raise_nofile();
    let cfg = Config::from_env();
    let phase = std::env::var("GOEXEC_CHAOS_PHASE").unwrap();
    let burst = phase == "main";
    let secs = if burst { cfg.secs } else { cfg.warmup_secs };
    let start = Instant::now();
    let client = Arc::new(Client {
        cfg,
        addr,
        start,
        deadline: start + Duration::from_secs_f64(secs),
        stats: ClientStats {
            lowered_ms: AtomicU64::new(u64::MAX),
            raised_ms: AtomicU64::new(u64::MAX),
            ..Default::default()
        },
    });

    // The server's word on the burst comes on stdin; its end means the server is gone.
    let (lowered_tx, lowered_rx) = goexec::chan::bounded::<()>(1);
    let c = client.clone();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line.as_deref() {
                Ok("LOWERED") => {
                    c.stats.lowered_ms.store(c.ms(), Relaxed);
                    let _ = lowered_tx.send(());
                }
                Ok("RAISED") => c.stats.raised_ms.store(c.ms(), Relaxed),
                _ => {}
            }
        }
        if !d.load(Relaxed) {
            eprintln!("chaos client: the server went away; exiting");
            std::process::exit(3);
        }
    });

    let report = goexec::run(move || {
        let barrier = Arc::new(goexec::sync::WaitGroup::new());
        barrier.add(client.cfg.conns as i64);
        let workers: Vec<_> = (0..client.cfg.conns)
            .map(|w| {
                let (c, b) = (client.clone(), barrier.clone());
                goexec::spawn(move || c.worker(w, &b))
            })
            .collect();

        // A third in: the wave, into the server's lowered limit in the main phase.
        goexec::time::sleep(Duration::from_secs_f64(secs / 3.0));
        if burst {
            println!("BURST");
            std::io::stdout().flush().unwrap();
            lowered_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the server never lowered its limit");
        }
        let mut rng = Rng(mix(client.cfg.seed ^ 0x5741_5645));
        let wave: Vec<_> = (0..client.cfg.conns / 4)
            .map(|_| {
                let c = client.clone();
                let (role, mut r) = (Role::pick(&mut rng), Rng(rng.next()));
                goexec::spawn(move || c.one(role, &mut r, None))
            })
            .collect();
        for h in wave.into_iter().chain(workers) {
            h.join().expect("a client goroutine panicked");
        }
        client.report(if burst { "main" } else { "warmup" })
    });
    done.store(true, Relaxed);
    println!("{report}");
}

// ---------------------------------------------------------------------------------------------
// The server process.

#[derive(Default)]
struct ServerStats {
    accepted: AtomicU64,
    live: AtomicU64,
    peak_live: AtomicU64,
    bytes: AtomicU64,
    /// How connections ended: eof, idle (the read deadline), or an error kind.
    outcomes: Tally,
    emfile: AtomicU64,
    accept_errors: Tally,
}

/// This process's open descriptors (the directory's own included, the same every time).
fn open_fds() -> std::io::Result<Vec<u64>> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

fn fd_count() -> std::io::Result<u64> {
    Ok(open_fds()?.len() as u64)
}

/// An open-file limit that leaves [`BURST_SLACK`] descriptors free: a new descriptor takes
/// the lowest free number, and the limit bounds the numbers, so it is one past the
/// `BURST_SLACK`th free number (a little above the open count when the numbers are dense, as
/// they are after a churn of connections).
fn burst_limit() -> u64 {
    let open: std::collections::HashSet<u64> =
        open_fds().expect("list descriptors").into_iter().collect();
    let mut free = 0;
    (0..)
        .find(|n| {
            if !open.contains(n) {
                free += 1;
            }
            free == BURST_SLACK
        })
        .unwrap()
        + 1
}

/// Resident memory, from a `/proc/self/statm` opened once (reading needs no descriptor, so it
/// works during the burst).
struct Rss(std::fs::File);

impl Rss {
    fn open() -> Rss {
        Rss(std::fs::File::open("/proc/self/statm").unwrap())
    }

    fn bytes(&self) -> u64 {
        let mut buf = [0u8; 128];
        let n = self.0.read_at(&mut buf, 0).unwrap();
        let s = std::str::from_utf8(&buf[..n]).unwrap();
        let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        pages * page as u64
    }
}

/// This process's threads.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Echoes until the end, an error, or `idle` without a byte.
fn serve(conn: TcpStream, idle: Duration, stats: &ServerStats) {
    let outcome = (|| {
        conn.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            conn.set_read_deadline(Some(Instant::now() + idle))?;
            let n = match (&conn).read(&mut buf) {
                Ok(0) => return Ok("eof".to_string()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    // Data queued now came as the deadline passed, or woke this read too late
                    // to run before it (a read that runs after its deadline fails with
                    // TimedOut).
                    let mut b = [std::mem::MaybeUninit::new(0u8); 1];
                    let queued = socket2::SockRef::from(&conn).peek(&mut b);
                    return Ok(match queued {
                        Ok(n) if n > 0 => "idle_data_queued".to_string(),
                        _ => "idle".to_string(),
                    });
                }
                Err(e) => return Err(e),
            };
            (&conn).write_all(&buf[..n])?;
            stats.bytes.fetch_add(n as u64, Relaxed);
        }
    })();
    stats.outcomes.add(match outcome {
        Ok(o) => o,
        Err(e) => kind(&e),
    });
}

/// Accepts until `stop`, a goroutine per connection; backs off (5 ms doubling to 100 ms, as
/// Go's http.Server does to 1 s) on errors such as EMFILE.
fn accept_loop(l: TcpListener, idle: Duration, stats: Arc<ServerStats>, stop: Arc<AtomicBool>) {
    let mut delay = Duration::ZERO;
    loop {
        match l.accept() {
            Ok((conn, _)) => {
                if stop.load(Relaxed) {
                    return;
                }
                delay = Duration::ZERO;
                stats.accepted.fetch_add(1, Relaxed);
                let live = stats.live.fetch_add(1, Relaxed) + 1;
                stats.peak_live.fetch_max(live, Relaxed);
                let st = stats.clone();
                goexec::spawn(move || {
                    serve(conn, idle, &st);
                    st.live.fetch_sub(1, Relaxed);
                });
            }
            Err(e) => {
                if e.raw_os_error() == Some(libc::EMFILE) {
                    stats.emfile.fetch_add(1, Relaxed);
                } else {
                    stats.accept_errors.add(kind(&e));
                }
                delay = (delay * 2).clamp(Duration::from_millis(5), Duration::from_millis(100));
                goexec::time::sleep(delay);
            }
        }
    }
}

/// What one client phase reported, as `key=value` pairs.
type Report = BTreeMap<String, String>;

/// Runs the client process for `phase` and waits for it; in the main phase, serves its burst
/// request: lowers this process's open-file limit for [`BURST`], then raises it back.
fn run_client(addr: SocketAddr, phase: &str, stats: &Arc<ServerStats>) -> (Report, Option<u64>) {
    let mut child = common::this_binary()
        .env(CLIENT, addr.to_string())
        .env("GOEXEC_CHAOS_PHASE", phase)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the client");
    let stdin = Arc::new(Mutex::new(child.stdin.take().unwrap()));
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut report = None;
    let mut burst = None;
    for line in stdout.lines() {
        let line = line.expect("read the client's output");
        if line == "BURST" {
            let (stdin, stats) = (stdin.clone(), stats.clone());
            // A thread started before the limit drops (starting one needs no descriptor, but
            // nothing is left to chance); it tells the client when the window opens and shuts.
            burst = Some(std::thread::spawn(move || {
                let saved = nofile();
                let (open, limit) = (fd_count().expect("count descriptors"), burst_limit());
                set_nofile(&libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: saved.rlim_max,
                });
                let _ = writeln!(stdin.lock().unwrap(), "LOWERED");
                std::thread::sleep(BURST);
                set_nofile(&saved);
                let accepted = stats.accepted.load(Relaxed);
                let _ = writeln!(stdin.lock().unwrap(), "RAISED");
                (open, limit, accepted)
            }));
        } else if let Some(r) = line.strip_prefix("CHAOS-REPORT ") {
            report = Some(
                r.split(' ')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        } else {
            println!("client: {line}");
        }
    }
    let status = child.wait().unwrap();
    drop(stdin);
    assert!(status.success(), "the {phase} client failed: {status}");
    let burst = burst.map(|t| t.join().expect("the burst thread panicked"));
    if let Some((open, limit, _)) = burst {
        println!(
            "burst: open-file limit lowered to {limit} ({open} open, {BURST_SLACK} free) for \
             {BURST:?}"
        );
    }
    (
        report.expect("the client printed no report"),
        burst.map(|(_, _, accepted)| accepted),
    )
}

/// Waits (at most 20 s, polling every 5 ms) until the descriptor count is `base`.
fn settle_fds(base: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let n = fd_count().expect("count descriptors");
        if n == base || Instant::now() > until {
            return n;
        }
        goexec::time::sleep(Duration::from_millis(5));
    }
}

/// Echo round trip on a fresh connection: the accept loop still serves.
fn probe(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"still there?")?;
    let mut back = [0u8; 12];
    s.read_exact(&mut back)?;
    assert_eq!(&back, b"still there?");
    Ok(())
}

/// glibc gives each thread that allocates an arena of its own (up to eight per core), and the
/// runtime starts threads as it needs them (for a blocking section, or to run a P taken from
/// a goroutine that ran too long): a thread first seen after the warm-up brings a fresh
/// arena, which fills with buffers while the others keep theirs for reuse, a step of 5 to 15
/// MiB here that is the allocator's, not a leak. With one arena the baseline means something.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called before this process starts a thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn server_main() {
    one_malloc_arena();
    raise_nofile();
    let cfg = Config::from_env();
    println!(
        "chaos: seed={:#x} conns={} warmup={}s main={}s idle={:?} (GOEXEC_CHAOS_SEED={:#x} \
         repeats the client's choices)",
        cfg.seed, cfg.conns, cfg.warmup_secs, cfg.secs, cfg.idle, cfg.seed
    );
    // Everything should be over well within this; a hang aborts instead.
    let _w = common::watchdog("chaos", (cfg.warmup_secs + cfg.secs) as u64 * 3 + 120);
    let began = Instant::now();
    let failures = goexec::run(move || {
        let mut failures = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(what);
            }
        };
        let rss = Rss::open();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(ServerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stats.clone(), stop.clone());
        goexec::spawn(move || accept_loop(listener, cfg.idle, st, sp));
        // The peak RSS, sampled every 20 ms while the phases run.
        let peak = Arc::new(AtomicU64::new(0));
        let sampling = Arc::new(AtomicBool::new(true));
        let (pk, sm, sample) = (peak.clone(), sampling.clone(), Rss::open());
        let st = stats.clone();
        let sampler = goexec::spawn(move || {
            let rss = sample;
            let (t0, mut next) = (Instant::now(), PROGRESS);
            while sm.load(Relaxed) {
                let r = rss.bytes();
                pk.fetch_max(r, Relaxed);
                if t0.elapsed() >= next {
                    next += PROGRESS;
                    println!(
                        "progress {:.0}s: RSS {}, {} live, {} accepted, {} echoed, {} threads",
                        t0.elapsed().as_secs_f64(),
                        mib(r),
                        st.live.load(Relaxed),
                        st.accepted.load(Relaxed),
                        mib(st.bytes.load(Relaxed)),
                        threads(),
                    );
                }
                goexec::time::sleep(Duration::from_millis(20));
            }
        });
        let fd_base = fd_count().unwrap();

        let t = Instant::now();
        let (warm, _) = goexec::blocking(|| run_client(addr, "warmup", &stats));
        let warm_secs = t.elapsed().as_secs_f64();
        let fd_warm = settle_fds(fd_base);
        check(
            fd_warm == fd_base,
            format!("descriptors after the warm-up: {fd_warm}, baseline {fd_base}"),
        );
        let rss_base = rss.bytes();
        let before = (
            stats.accepted.load(Relaxed),
            stats.bytes.load(Relaxed),
            stats.emfile.load(Relaxed),
        );
        println!(
            "warm-up: {warm_secs:.1}s, peak_open={} roles={}; server accepted {} peak_live {}; \
             RSS baseline {}",
            warm["peak_open"],
            warm["roles"],
            before.0,
            stats.peak_live.load(Relaxed),
            mib(rss_base)
        );
        stats.peak_live.store(0, Relaxed);

        let t = Instant::now();
        let (main, accepted_at_raise) = goexec::blocking(|| run_client(addr, "main", &stats));
        let main_secs = t.elapsed().as_secs_f64();
        let accepted_after_burst = stats.accepted.load(Relaxed) - accepted_at_raise.unwrap();
        let probed = probe(addr);
        let fd_final = settle_fds(fd_base);
        let rss_final = rss.bytes();
        sampling.store(false, Relaxed);
        sampler.join().unwrap();
        stop.store(true, Relaxed);
        // Wakes the accept loop, which sees `stop`.
        drop(TcpStream::connect(addr));

        let emfile = stats.emfile.load(Relaxed) - before.2;
        println!(
            "chaos summary ({:.1}s in all):",
            began.elapsed().as_secs_f64()
        );
        for (name, r) in [("warm-up", &warm), ("main", &main)] {
            println!(
                "  client {name}: {}s, peak {} open, writes at most {} ms apart, completed/started by role {}, bytes sent {} \
                 verified {}, connect retries {}, expected failures (burst, slow client) {}, unexpected {}",
                r["secs"],
                r["peak_open"],
                r["slowest_pace_ms"],
                r["roles"],
                r["bytes_sent"],
                r["bytes_verified"],
                r["connect_retries"],
                r["expected"],
                r["unexpected"],
            );
        }
        println!(
            "  server main: {main_secs:.1}s, accepted {} ({} after the burst), peak live {}, \
             echoed {} bytes, EMFILE {emfile}, other accept errors {}",
            stats.accepted.load(Relaxed) - before.0,
            accepted_after_burst,
            stats.peak_live.load(Relaxed),
            stats.bytes.load(Relaxed) - before.1,
            stats.accept_errors.render(),
        );
        println!(
            "  server connection outcomes (both phases): {}",
            stats.outcomes.render()
        );
        println!(
            "  RSS baseline {} peak {} final {}; descriptors baseline {fd_base} final {fd_final}",
            mib(rss_base),
            mib(peak.load(Relaxed)),
            mib(rss_final)
        );

        for (name, r) in [("warm-up", &warm), ("main", &main)] {
            check(
                r["unexpected_total"] == "0",
                format!("client {name}: unexpected failures {}", r["unexpected"]),
            );
            let peak_open: usize = r["peak_open"].parse().unwrap();
            check(
                peak_open >= cfg.conns,
                format!(
                    "client {name}: peak {peak_open} open, fewer than {}",
                    cfg.conns
                ),
            );
        }
        check(emfile > 0, "the burst caused no EMFILE".into());
        check(
            accepted_after_burst > 0,
            "nothing was accepted after the burst".into(),
        );
        check(
            probed.is_ok(),
            format!("the last probe connection failed: {probed:?}"),
        );
        check(
            fd_final == fd_base,
            format!("descriptors after the run: {fd_final}, baseline {fd_base}"),
        );
        check(
            rss_final <= rss_base + rss_base / 10,
            format!(
                "RSS after the run {} is over 110% of the baseline {}",
                mib(rss_final),
                mib(rss_base)
            ),
        );
        // A reset client makes the server's read or write fail; nothing else should.
        let outcomes = stats.outcomes.0.lock().unwrap();
        for (what, n) in outcomes.iter() {
            let fine = [
                "eof",
                "idle",
                "idle_data_queued",
                "ConnectionReset",
                "BrokenPipe",
            ]
            .contains(&what.as_str());
            check(fine, format!("server: {n} connections ended with {what}"));
        }
        // ECONNABORTED: a connection reset while it waited to be accepted.
        for (what, n) in stats.accept_errors.0.lock().unwrap().iter() {
            check(
                what == "ConnectionAborted",
                format!("server: accept failed {n} times with {what}"),
            );
        }
        failures
    });
    if failures.is_empty() {
        println!("\ntest chaos ... ok\n\ntest result: ok");
    } else {
        for f in &failures {
            println!("FAILED: {f}");
        }
        println!("\ntest chaos ... FAILED\n\ntest result: FAILED");
        std::process::exit(1);
    }
}

fn main() {
    match std::env::var(CLIENT) {
        Ok(addr) => client_main(addr.parse().expect("the server's address")),
        Err(_) => server_main(),
    }
}
