//! A seeded, randomized differential test of channels and `select!` against a sequential
//! model of Go's channel semantics.
//!
//! The test runs rounds drawn from one seed, of two sorts:
//! - quiescent: a batch of operations (sends and receives, their `try_` and timed forms,
//!   selects with and without `default`, close) that one actor does alone: the main
//!   goroutine, another goroutine or a plain thread. The model predicts every outcome.
//! - concurrent: goroutines and a plain thread sending, receiving, selecting and closing at
//!   once, in a plan whose outcome Go's semantics fix whatever the interleaving: counts
//!   matched so that every operation completes, a close only once the senders are done or
//!   with every other party waiting, selects whose every case a counterpart can reach,
//!   timed operations racing short timeouts (where only what arrives is fixed).
//!
//! Checked: each quiescent outcome, exactly; that no value is lost or received twice; each
//! sender's values in order on a channel, after the values buffered before them; buffered
//! values outliving a close and coming before `closed`; a value arriving on the channel its
//! select case sent it on; a select completing exactly one case; a close waking every
//! waiting receiver, sender and select; a send on a full or unbuffered channel waiting for
//! its receiver; a timed operation either completing or timing out with its value back;
//! what each buffer holds between rounds. Every value is counted while it
//! lives, so one that a channel drops or keeps too long shows too.
//!
//! `cargo test` runs 100,000 operations at procs 1 and again at procs 2 (5,000 under
//! `GOEXEC_TEST_VALGRIND`). A failure names its seed, round and operation:
//! `GOEXEC_MODEL_SEED=<seed>` replays that seed's plan (the interleaving is the scheduler's)
//! and `GOEXEC_MODEL_OPS=<n>` sets the operations per test. The long mode:
//! `GOEXEC_MODEL_OPS=1000000 cargo test --release -p goexec --test chan_model`.
//!
//! A round still running after 10 s has its channels closed, so that its waiters return and
//! the checks say what went missing (a lost value starves a receiver). A lost wakeup that
//! this does not end stops the rounds, and a watchdog aborts, naming the seed and the round.
//! The seeds go to stderr past the harness's capture, so that a crash shows them too.

mod common;

use goexec::chan::{
    self, RecvCase, RecvError, RecvTimeoutError, SelectCase, SendCase, SendError, SendTimeoutError,
    TryRecvError, TrySendError,
};
use goexec::sync::WaitGroup;
use goexec::{select, Runtime};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Operations per test in `cargo test`.
const OPS: u64 = 100_000;
/// Operations per test under valgrind, tens of times slower.
const OPS_UNDER_VALGRIND: u64 = 5_000;
/// A timeout that a run that works never reaches: a timed operation that must complete.
const LONG: Duration = Duration::from_secs(60);
/// A value's id is its sender's number times this plus its place in the sender's sequence.
const SEQ: u64 = 1_000_000;

#[test]
fn channels_and_select_match_the_model_at_procs_1() {
    static LIVE: AtomicI64 = AtomicI64::new(0);
    model_test(1, &LIVE);
}

#[test]
fn channels_and_select_match_the_model_at_procs_2() {
    static LIVE: AtomicI64 = AtomicI64::new(0);
    model_test(2, &LIVE);
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected a number")),
    )
}

fn model_test(procs: usize, live: &'static AtomicI64) {
    let seed = env_u64("GOEXEC_MODEL_SEED").unwrap_or_else(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(Instant::now())
    });
    let ops = env_u64("GOEXEC_MODEL_OPS").unwrap_or(if common::under_valgrind() {
        OPS_UNDER_VALGRIND
    } else {
        OPS
    });
    // Straight to stderr, past the harness's capture: a crash (memory corruption in a
    // queue, say) loses what the test printed, and the seed is what replays it.
    let _ = writeln!(
        std::io::stderr(),
        "chan_model: procs {procs}, seed {seed}, {ops} operations"
    );
    let slow = common::under_valgrind() || common::under_emulation();
    let progress = Arc::new(AtomicU64::new(0));
    let kind = Arc::new(AtomicUsize::new(0));
    let k = kind.clone();
    let _w = common::stall_watchdog(
        "chan_model",
        if slow { 300 } else { 60 },
        progress.clone(),
        move |at| {
            format!(
                "procs {procs}, seed {seed} (replay: GOEXEC_MODEL_SEED={seed}), in a round \
                 ({}) from operation {at}",
                KINDS[k.load(Ordering::Relaxed)]
            )
        },
    );
    let rt = Runtime::builder().procs(procs).build().unwrap();
    rt.run(move || {
        let mut w = World::new(seed, procs, live, progress, kind, slow);
        while w.ops < ops {
            w.round();
        }
        w.finish();
    });
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "seed {seed}, procs {procs}: values still alive after every channel is gone"
    );
}

/// splitmix64: seedable and good enough to draw plans.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    /// True `pct` times in 100.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.range(0, xs.len() - 1)].clone()
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.range(0, i));
        }
    }

    /// `total` split into `parts` counts.
    fn split(&mut self, total: usize, parts: usize) -> Vec<usize> {
        let mut v = vec![0; parts];
        for _ in 0..total {
            v[self.range(0, parts - 1)] += 1;
        }
        v
    }
}

/// A value sent through the channels, counted in `live` while it lives.
struct Val {
    id: u64,
    live: &'static AtomicI64,
}

impl Val {
    fn new(id: u64, live: &'static AtomicI64) -> Val {
        live.fetch_add(1, Ordering::Relaxed);
        Val { id, live }
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

type Tx = chan::Sender<Val>;
type Rx = chan::Receiver<Val>;

/// A channel's ends as an actor holds them: only the sides its script uses, so that the
/// ends that close a channel when dropped are where the plan says.
#[derive(Clone, Default)]
struct Ends {
    tx: Option<Tx>,
    rx: Option<Rx>,
}

impl Ends {
    fn both(cap: usize) -> Ends {
        let (tx, rx) = chan::bounded(cap);
        Ends {
            tx: Some(tx),
            rx: Some(rx),
        }
    }

    fn tx(&self) -> &Tx {
        self.tx
            .as_ref()
            .expect("the plan gave this actor no Sender")
    }

    fn rx(&self) -> &Rx {
        self.rx
            .as_ref()
            .expect("the plan gave this actor no Receiver")
    }
}

/// One case of a select; channels are indices into the actor's ends.
#[derive(Clone, Debug, PartialEq)]
enum Case {
    Recv(usize),
    Send(usize, u64),
    /// A receive from `chan::never()`.
    Never,
}

/// One operation; values are ids, made into `Val`s when the operation runs.
#[derive(Clone, Debug)]
enum Op {
    Send(usize, u64),
    TrySend(usize, u64),
    SendTimeout(usize, u64, Duration),
    Recv(usize),
    TryRecv(usize),
    RecvTimeout(usize, Duration),
    Close(usize),
    /// Through `chan::select`, or `select!` (two cases only) if `by_macro`.
    Select {
        cases: Vec<Case>,
        default: bool,
        by_macro: bool,
    },
}

/// How an operation ended; values by id.
#[derive(Clone, Debug, PartialEq)]
enum Out {
    Sent,
    Full(u64),
    SendTimeout(u64),
    SendClosed(u64),
    Got(u64),
    Empty,
    RecvTimeout,
    RecvClosed,
    Closed(bool),
    Case(usize, Box<Out>),
    Default,
}

impl Out {
    /// The outcome of the operation itself: a select's case's.
    fn leaf(&self) -> &Out {
        match self {
            Out::Case(_, o) => o,
            o => o,
        }
    }
}

/// Runs `op` on real channels.
fn exec(op: &Op, ends: &[Ends], live: &'static AtomicI64) -> Out {
    match *op {
        Op::Send(c, id) => send_out(ends[c].tx().send(Val::new(id, live))),
        Op::TrySend(c, id) => match ends[c].tx().try_send(Val::new(id, live)) {
            Ok(()) => Out::Sent,
            Err(TrySendError::Full(v)) => Out::Full(v.id),
            Err(TrySendError::Closed(v)) => Out::SendClosed(v.id),
        },
        Op::SendTimeout(c, id, d) => match ends[c].tx().send_timeout(Val::new(id, live), d) {
            Ok(()) => Out::Sent,
            Err(SendTimeoutError::Timeout(v)) => Out::SendTimeout(v.id),
            Err(SendTimeoutError::Closed(v)) => Out::SendClosed(v.id),
        },
        Op::Recv(c) => recv_out(ends[c].rx().recv()),
        Op::TryRecv(c) => match ends[c].rx().try_recv() {
            Ok(v) => Out::Got(v.id),
            Err(TryRecvError::Empty) => Out::Empty,
            Err(TryRecvError::Closed) => Out::RecvClosed,
        },
        Op::RecvTimeout(c, d) => match ends[c].rx().recv_timeout(d) {
            Ok(v) => Out::Got(v.id),
            Err(RecvTimeoutError::Timeout) => Out::RecvTimeout,
            Err(RecvTimeoutError::Closed) => Out::RecvClosed,
        },
        Op::Close(c) => Out::Closed(ends[c].tx().close()),
        Op::Select {
            ref cases,
            default,
            by_macro,
        } => {
            if by_macro {
                select_by_macro(cases, default, ends, live)
            } else {
                select_cases(cases, default, ends, live)
            }
        }
    }
}

fn send_out(r: Result<(), SendError<Val>>) -> Out {
    match r {
        Ok(()) => Out::Sent,
        Err(SendError(v)) => Out::SendClosed(v.id),
    }
}

fn recv_out(r: Result<Val, RecvError>) -> Out {
    match r {
        Ok(v) => Out::Got(v.id),
        Err(RecvError) => Out::RecvClosed,
    }
}

fn select_cases(cases: &[Case], default: bool, ends: &[Ends], live: &'static AtomicI64) -> Out {
    enum C<'a> {
        R(RecvCase<'a, Val>),
        S(SendCase<'a, Val>),
    }
    let never = chan::never::<Val>();
    let mut cs: Vec<C<'_>> = cases
        .iter()
        .map(|case| match *case {
            Case::Recv(c) => C::R(RecvCase::new(ends[c].rx())),
            Case::Never => C::R(RecvCase::new(&never)),
            Case::Send(c, id) => C::S(SendCase::new(ends[c].tx(), Val::new(id, live))),
        })
        .collect();
    let mut refs: Vec<&mut dyn SelectCase> = cs
        .iter_mut()
        .map(|c| match c {
            C::R(r) => r as &mut dyn SelectCase,
            C::S(s) => s as &mut dyn SelectCase,
        })
        .collect();
    let chosen = chan::select(&mut refs, default);
    drop(refs);
    match chosen {
        None => Out::Default,
        Some(i) => Out::Case(
            i,
            Box::new(match cs.swap_remove(i) {
                C::R(r) => recv_out(r.result()),
                C::S(s) => send_out(s.result()),
            }),
        ),
    }
}

/// A two-case select through `select!`.
fn select_by_macro(cases: &[Case], default: bool, ends: &[Ends], live: &'static AtomicI64) -> Out {
    let never = chan::never::<Val>();
    let rx = |case: &Case| match *case {
        Case::Recv(c) => ends[c].rx(),
        _ => &never,
    };
    let tx = |case: &Case| match *case {
        Case::Send(c, _) => ends[c].tx(),
        _ => unreachable!("not a send case"),
    };
    let val = |case: &Case| match *case {
        Case::Send(_, id) => Val::new(id, live),
        _ => unreachable!("not a send case"),
    };
    let case = |i: usize, o: Out| Out::Case(i, Box::new(o));
    let (a, b) = (&cases[0], &cases[1]);
    match (a, b, default) {
        (Case::Send(..), Case::Send(..), false) => select! {
            send(tx(a), val(a)) -> r => case(0, send_out(r)),
            send(tx(b), val(b)) -> r => case(1, send_out(r)),
        },
        (Case::Send(..), Case::Send(..), true) => select! {
            send(tx(a), val(a)) -> r => case(0, send_out(r)),
            send(tx(b), val(b)) -> r => case(1, send_out(r)),
            default => Out::Default,
        },
        (Case::Send(..), _, false) => select! {
            send(tx(a), val(a)) -> r => case(0, send_out(r)),
            recv(rx(b)) -> v => case(1, recv_out(v)),
        },
        (Case::Send(..), _, true) => select! {
            send(tx(a), val(a)) -> r => case(0, send_out(r)),
            recv(rx(b)) -> v => case(1, recv_out(v)),
            default => Out::Default,
        },
        (_, Case::Send(..), false) => select! {
            recv(rx(a)) -> v => case(0, recv_out(v)),
            send(tx(b), val(b)) -> r => case(1, send_out(r)),
        },
        (_, Case::Send(..), true) => select! {
            recv(rx(a)) -> v => case(0, recv_out(v)),
            send(tx(b), val(b)) -> r => case(1, send_out(r)),
            default => Out::Default,
        },
        (_, _, false) => select! {
            recv(rx(a)) -> v => case(0, recv_out(v)),
            recv(rx(b)) -> v => case(1, recv_out(v)),
        },
        (_, _, true) => select! {
            recv(rx(a)) -> v => case(0, recv_out(v)),
            recv(rx(b)) -> v => case(1, recv_out(v)),
            default => Out::Default,
        },
    }
}

/// What one actor does: its operations in order, or one receive repeated until it reports
/// the channel closed (Go: `for v := range ch`), at most `limit` times.
#[derive(Clone)]
enum Script {
    Ops(Vec<Op>),
    UntilClosed(Op, usize),
}

impl Script {
    fn run(&self, ends: &[Ends], live: &'static AtomicI64) -> Vec<Out> {
        match self {
            Script::Ops(ops) => ops.iter().map(|op| exec(op, ends, live)).collect(),
            Script::UntilClosed(op, limit) => {
                let mut outs = Vec::new();
                while outs.len() < *limit {
                    let out = exec(op, ends, live);
                    let closed = *out.leaf() == Out::RecvClosed;
                    outs.push(out);
                    if closed {
                        break;
                    }
                }
                outs
            }
        }
    }

    fn ops(&self) -> &[Op] {
        match self {
            Script::Ops(ops) => ops,
            Script::UntilClosed(op, _) => std::slice::from_ref(op),
        }
    }

    /// The ends of `all` that the script uses.
    fn ends(&self, all: &[Ends]) -> Vec<Ends> {
        let mut mine = vec![Ends::default(); all.len()];
        let mut tx = |c: usize| mine[c].tx = all[c].tx.clone();
        let mut rx_of = Vec::new();
        for op in self.ops() {
            match op {
                Op::Send(c, _) | Op::TrySend(c, _) | Op::SendTimeout(c, _, _) | Op::Close(c) => {
                    tx(*c)
                }
                Op::Recv(c) | Op::TryRecv(c) | Op::RecvTimeout(c, _) => rx_of.push(*c),
                Op::Select { cases, .. } => {
                    for case in cases {
                        match case {
                            Case::Send(c, _) => tx(*c),
                            Case::Recv(c) => rx_of.push(*c),
                            Case::Never => {}
                        }
                    }
                }
            }
        }
        for c in rx_of {
            mine[c].rx = all[c].rx.clone();
        }
        mine
    }
}

/// A running actor: a goroutine, or a job on one of the plain threads.
enum Actor {
    G(goexec::JoinHandle<Vec<Out>>),
    T(Arc<ThreadDone>),
}

/// A plain thread's job's outcome; the main goroutine waits on the WaitGroup (parking, so
/// that goroutines keep running at procs 1).
struct ThreadDone {
    wg: WaitGroup,
    out: std::sync::Mutex<Option<std::thread::Result<Vec<Out>>>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Ends a stuck round: a plain thread that closes the round's channels if the round is
/// still running `bound` after it was armed, so that the waiters return and the checks can
/// say what went missing (a lost value starves a receiver of its matched count). A lost
/// wakeup that a close does not end is the watchdog's.
struct Rescue {
    bound: Duration,
    shared: Arc<(std::sync::Mutex<Armed>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Armed {
    /// The round's Senders, while it runs.
    txs: Vec<Tx>,
    deadline: Option<Instant>,
    fired: bool,
    stop: bool,
}

impl Rescue {
    fn new(secs: u64) -> Rescue {
        let shared = Arc::new((
            std::sync::Mutex::new(Armed::default()),
            std::sync::Condvar::new(),
        ));
        let sh = shared.clone();
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*sh;
            let mut a = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !a.stop {
                match a.deadline {
                    Some(d) if Instant::now() >= d => {
                        for tx in &a.txs {
                            tx.close();
                        }
                        a.fired = true;
                        a.deadline = None;
                    }
                    Some(d) => {
                        let wait = d.saturating_duration_since(Instant::now());
                        a = cv
                            .wait_timeout(a, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    None => a = cv.wait(a).unwrap_or_else(|e| e.into_inner()),
                }
            }
        });
        Rescue {
            bound: Duration::from_secs(secs),
            shared,
            thread: Some(thread),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches a round over the Senders in `ends` (a clone of each: only where the plan
    /// has the main goroutine hold one anyway, so that no close by drop waits on it).
    fn arm(&self, ends: &[Ends]) {
        let mut a = self.lock();
        a.txs = ends.iter().filter_map(|e| e.tx.clone()).collect();
        a.deadline = Some(Instant::now() + self.bound);
        a.fired = false;
        self.shared.1.notify_one();
    }

    /// The round is over: whether the rescue had to close its channels.
    fn disarm(&self) -> bool {
        let mut a = self.lock();
        a.deadline = None;
        let txs = std::mem::take(&mut a.txs);
        let fired = a.fired;
        drop(a);
        drop(txs);
        fired
    }

    fn stop(&mut self) {
        self.lock().stop = true;
        self.shared.1.notify_one();
        if let Some(t) = self.thread.take() {
            goexec::blocking(|| t.join()).expect("the rescue thread failed");
        }
    }
}

/// The model of one channel nobody is using at the moment.
struct MChan {
    cap: usize,
    buf: VecDeque<u64>,
    closed: bool,
}

impl MChan {
    /// Whether a send completes now (no receiver waits at a quiescent point).
    fn send_ready(&self) -> bool {
        self.closed || self.buf.len() < self.cap
    }

    /// Whether a receive completes now.
    fn recv_ready(&self) -> bool {
        self.closed || !self.buf.is_empty()
    }

    fn send(&mut self, id: u64, full: Out) -> Out {
        if self.closed {
            Out::SendClosed(id)
        } else if self.buf.len() < self.cap {
            self.buf.push_back(id);
            Out::Sent
        } else {
            full
        }
    }

    fn recv(&mut self, empty: Out) -> Out {
        match self.buf.pop_front() {
            Some(id) => Out::Got(id),
            None if self.closed => Out::RecvClosed,
            None => empty,
        }
    }
}

/// Go's semantics, sequentially: what `op` does to the model's channels, and returns.
fn predict(model: &mut [MChan], op: &Op) -> Out {
    match *op {
        Op::Send(c, id) | Op::TrySend(c, id) => model[c].send(id, Out::Full(id)),
        Op::SendTimeout(c, id, _) => model[c].send(id, Out::SendTimeout(id)),
        Op::Recv(c) | Op::TryRecv(c) => model[c].recv(Out::Empty),
        Op::RecvTimeout(c, _) => model[c].recv(Out::RecvTimeout),
        Op::Close(c) => {
            let first = !model[c].closed;
            model[c].closed = true;
            Out::Closed(first)
        }
        Op::Select { ref cases, .. } => {
            // The plans have one ready case (maybe repeated), or none and a default.
            let ready = cases.iter().position(|case| match *case {
                Case::Send(c, _) => model[c].send_ready(),
                Case::Recv(c) => model[c].recv_ready(),
                Case::Never => false,
            });
            match ready {
                None => Out::Default,
                Some(i) => Out::Case(
                    i,
                    Box::new(match cases[i] {
                        Case::Send(c, id) => model[c].send(id, Out::Full(id)),
                        Case::Recv(c) => model[c].recv(Out::Empty),
                        Case::Never => unreachable!(),
                    }),
                ),
            }
        }
    }
}

/// A select's outcome with its case index made the first of the equal cases (a receive
/// from one channel may be there twice; which copy runs is the select's choice).
fn canon(op: &Op, out: &Out) -> Out {
    match (op, out) {
        (Op::Select { cases, .. }, Out::Case(i, o)) if *i < cases.len() => {
            let first = cases.iter().position(|c| *c == cases[*i]).unwrap_or(*i);
            Out::Case(first, o.clone())
        }
        _ => out.clone(),
    }
}

/// The value a blocking send (plain or select) sent, and on which channel; None if it did
/// not send.
fn sent_by(op: &Op, out: &Out) -> Option<(usize, u64)> {
    match (op, out) {
        (Op::Send(c, id) | Op::SendTimeout(c, id, _), Out::Sent) => Some((*c, *id)),
        (Op::Select { cases, .. }, Out::Case(i, o)) if **o == Out::Sent => match cases.get(*i) {
            Some(Case::Send(c, id)) => Some((*c, *id)),
            _ => None,
        },
        _ => None,
    }
}

/// The value a blocking receive (plain or select) got, and from which channel.
fn got_by(op: &Op, out: &Out) -> Option<(usize, u64)> {
    match (op, out) {
        (Op::Recv(c) | Op::RecvTimeout(c, _), Out::Got(id)) => Some((*c, *id)),
        (Op::Select { cases, .. }, Out::Case(i, o)) => match (cases.get(*i), &**o) {
            (Some(Case::Recv(c)), Out::Got(id)) => Some((*c, *id)),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a receive (plain or select) reported channel `c` closed, through that channel's
/// case.
fn closed_by(op: &Op, out: &Out, c: usize) -> bool {
    match (op, out) {
        (Op::Recv(d) | Op::RecvTimeout(d, _), Out::RecvClosed) => *d == c,
        (Op::Select { cases, .. }, Out::Case(i, o)) => {
            cases.get(*i) == Some(&Case::Recv(c)) && **o == Out::RecvClosed
        }
        _ => false,
    }
}

/// Whether a send (plain or select) to channel `c` got its value back because `c` closed.
fn refused_by(op: &Op, out: &Out, c: usize) -> bool {
    match (op, out) {
        (Op::Send(d, id) | Op::SendTimeout(d, id, _), Out::SendClosed(v)) => *d == c && v == id,
        (Op::Select { cases, .. }, Out::Case(i, o)) => match (cases.get(*i), &**o) {
            (Some(Case::Send(d, id)), Out::SendClosed(v)) => *d == c && v == id,
            _ => false,
        },
        _ => false,
    }
}

/// The main goroutine's state: the channels that live across rounds, with their model, and
/// the plain threads that take part.
struct World {
    rng: Rng,
    seed: u64,
    procs: usize,
    live: &'static AtomicI64,
    ends: Vec<Ends>,
    model: Vec<MChan>,
    next_actor: u64,
    /// Operations done (some of the round under way's as it goes).
    ops: u64,
    round: u64,
    /// `ops` when the round under way began.
    first_op: u64,
    /// The round under way: an index into KINDS.
    kind: Arc<AtomicUsize>,
    progress: Arc<AtomicU64>,
    jobs: Vec<std::sync::mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Plain threads not yet given an actor this round (one actor each: two on one thread
    /// would wait for each other).
    free: Vec<usize>,
    /// The round's failed checks.
    problems: RefCell<Vec<String>>,
    rescue: Rescue,
    /// The rescue ended the round.
    rescued: bool,
}

/// The sorts of round, by name (`World::round` draws one).
const KINDS: [&str; 8] = [
    "one actor",
    "senders and receivers",
    "close wakes the waiters",
    "selects receive from several channels",
    "selects send on several unbuffered channels",
    "selects send or receive on one channel",
    "a non-blocking operation meets a waiting one",
    "timed sends and receives race their timeouts",
];
/// Channels that live across rounds.
const CHANS: usize = 4;
/// Plain threads taking part.
const THREADS: usize = 2;

impl World {
    fn new(
        seed: u64,
        procs: usize,
        live: &'static AtomicI64,
        progress: Arc<AtomicU64>,
        kind: Arc<AtomicUsize>,
        slow: bool,
    ) -> World {
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..THREADS {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            jobs.push(tx);
            threads.push(std::thread::spawn(move || {
                for job in rx {
                    job();
                }
            }));
        }
        let mut w = World {
            rng: Rng(seed),
            seed,
            procs,
            live,
            ends: Vec::new(),
            model: Vec::new(),
            next_actor: 0,
            ops: 0,
            round: 0,
            first_op: 0,
            kind,
            progress,
            jobs,
            threads,
            free: Vec::new(),
            problems: RefCell::new(Vec::new()),
            rescue: Rescue::new(if slow { 60 } else { 10 }),
            rescued: false,
        };
        for _ in 0..CHANS {
            let (e, m) = w.new_chan();
            w.ends.push(e);
            w.model.push(m);
        }
        w
    }

    /// Records a failed check. The round goes on, so that its other checks can say more,
    /// and fails at its end.
    fn fail(&self, what: impl fmt::Display) {
        self.problems.borrow_mut().push(what.to_string());
    }

    /// Fails the test with `what` and the round's failed checks.
    fn report(&self, what: impl fmt::Display) -> ! {
        let mut failed = String::new();
        for p in self.problems.borrow().iter().take(20) {
            failed.push_str("\n- ");
            failed.push_str(p);
        }
        let mut chans = String::new();
        for (i, m) in self.model.iter().enumerate() {
            chans.push_str(&format!(
                "\n  chan {i}: cap {}, {}buffered {:?}",
                m.cap,
                if m.closed { "closed, " } else { "" },
                m.buf
            ));
        }
        panic!(
            "chan_model: procs {}, seed {} (replay: GOEXEC_MODEL_SEED={}), round {} ({}), \
             from operation {}: {what}{failed}\nthe model's channels now:{chans}\n\
             (a value is its sender's number times {SEQ} plus its place in the sender's \
             sequence)",
            self.procs,
            self.seed,
            self.seed,
            self.round,
            KINDS[self.kind.load(Ordering::Relaxed)],
            self.first_op
        );
    }

    fn new_chan(&mut self) -> (Ends, MChan) {
        let cap = self.rng.pick(&[0, 0, 1, 2, 3, 4]);
        (
            Ends::both(cap),
            MChan {
                cap,
                buf: VecDeque::new(),
                closed: false,
            },
        )
    }

    /// Replaces channel `c` with a new one; returns the old one's ends.
    fn replace(&mut self, c: usize) -> Ends {
        let (e, m) = self.new_chan();
        self.model[c] = m;
        std::mem::replace(&mut self.ends[c], e)
    }

    /// A channel that is open, a new one where the one drawn is closed.
    fn open_chan(&mut self) -> usize {
        let c = self.rng.range(0, CHANS - 1);
        if self.model[c].closed {
            self.replace(c);
        }
        c
    }

    /// An actor's first value id: its number times SEQ.
    fn actor(&mut self) -> u64 {
        self.next_actor += 1;
        self.next_actor * SEQ
    }

    fn round(&mut self) {
        self.round += 1;
        self.first_op = self.ops;
        self.free = (0..THREADS).collect();
        if self.rng.chance(3) {
            let c = self.rng.range(0, CHANS - 1);
            self.replace(c);
        }
        let kind = match self.rng.range(0, 99) {
            0..=27 => 0,
            28..=47 => 1,
            48..=57 => 2,
            58..=68 => 3,
            69..=76 => 4,
            77..=84 => 5,
            85..=92 => 6,
            _ => 7,
        };
        self.kind.store(kind, Ordering::Relaxed);
        match kind {
            0 => self.round_quiescent(),
            1 => self.round_traffic(),
            2 => self.round_close(),
            3 => self.round_select_recv(),
            4 => self.round_select_send(),
            5 => self.round_swap(),
            6 => self.round_handoff(),
            _ => self.round_timeouts(),
        }
        if std::mem::take(&mut self.rescued) {
            self.report(format!(
                "the round was still running after {} s, so its channels were closed to end \
                 it (a lost value, or a lost wakeup?); then:",
                self.rescue.bound.as_secs()
            ));
        }
        if !self.problems.borrow().is_empty() {
            self.report("the round's checks failed:");
        }
        for (c, (e, m)) in self.ends.iter().zip(&self.model).enumerate() {
            let (len, closed) = (e.rx().len(), e.rx().is_closed());
            if len != m.buf.len() || closed != m.closed || e.tx().cap() != m.cap {
                self.report(format!(
                    "after the round, chan {c} holds {len} values (closed: {closed}, cap {}); \
                     the model, {} (closed: {}, cap {})",
                    e.tx().cap(),
                    m.buf.len(),
                    m.closed,
                    m.cap
                ));
            }
        }
        let buffered: usize = self.model.iter().map(|m| m.buf.len()).sum();
        let live = self.live.load(Ordering::Relaxed);
        if live != buffered as i64 {
            self.report(format!(
                "after the round, {live} values alive; the channels hold {buffered} and \
                 nothing else may"
            ));
        }
        self.progress.store(self.ops, Ordering::Relaxed);
    }

    fn finish(mut self) {
        self.rescue.stop();
        self.ends.clear();
        self.jobs.clear();
        for t in std::mem::take(&mut self.threads) {
            goexec::blocking(|| t.join()).expect("an actor thread failed outside its jobs");
        }
    }

    // ---- actors ----

    /// Starts `script` on a goroutine or, now and then, on a free plain thread, with the
    /// ends of `all` it uses.
    fn spawn(&mut self, script: Script, all: &[Ends]) -> Actor {
        let ends = script.ends(all);
        let live = self.live;
        if !self.free.is_empty() && self.rng.chance(25) {
            let t = self.free.pop().unwrap();
            let done = Arc::new(ThreadDone {
                wg: WaitGroup::new(),
                out: std::sync::Mutex::new(None),
            });
            done.wg.add(1);
            let d = done.clone();
            let job: Job = Box::new(move || {
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| script.run(&ends, live)));
                // The ends go before the main goroutine hears that the job is over: a
                // channel may close, or free its values, with them.
                drop((script, ends));
                *d.out.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                d.wg.done();
            });
            self.jobs[t].send(job).expect("an actor thread is gone");
            Actor::T(done)
        } else {
            Actor::G(goexec::spawn(move || script.run(&ends, live)))
        }
    }

    /// Waits for the round's actors, in order, with the rescue armed over `ends`.
    fn join_all(&mut self, actors: Vec<Actor>, ends: &[Ends]) -> Vec<Vec<Out>> {
        self.rescue.arm(ends);
        let outs = actors.into_iter().map(|a| self.join(a)).collect();
        self.rescued |= self.rescue.disarm();
        outs
    }

    fn join(&self, a: Actor) -> Vec<Out> {
        match a {
            Actor::G(h) => h
                .join()
                .unwrap_or_else(|e| self.report(format!("an actor failed: {e}"))),
            Actor::T(d) => {
                d.wg.wait();
                let r = d.out.lock().unwrap_or_else(|e| e.into_inner()).take();
                match r {
                    Some(Ok(outs)) => outs,
                    Some(Err(p)) => {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        self.report(format!("an actor on a plain thread panicked: {msg}"))
                    }
                    None => self.report("an actor thread's job ended without an outcome"),
                }
            }
        }
    }

    /// Starts every script (in a random order) and collects their outcomes, in the order
    /// given.
    fn run_all(&mut self, scripts: &[Script], all: &[Ends]) -> Vec<Vec<Out>> {
        let mut order: Vec<usize> = (0..scripts.len()).collect();
        self.rng.shuffle(&mut order);
        let mut actors: Vec<Option<Actor>> = (0..scripts.len()).map(|_| None).collect();
        for i in order {
            actors[i] = Some(self.spawn(scripts[i].clone(), all));
        }
        let actors = actors.into_iter().map(|a| a.expect("spawned")).collect();
        self.join_all(actors, all)
    }

    // ---- one actor at a time ----

    /// Runs `op` in the main goroutine, alone on the world's channels, and checks it.
    fn q(&mut self, op: Op) -> Out {
        let want = predict(&mut self.model, &op);
        let got = exec(&op, &self.ends, self.live);
        self.ops += 1;
        self.expect(&op, &got, &want);
        got
    }

    fn expect(&self, op: &Op, got: &Out, want: &Out) {
        if canon(op, got) != *want {
            self.fail(format!("{op:?} gave {got:?}; the model says {want:?}"));
        }
    }

    /// Receives what channel `c` holds.
    fn q_drain(&mut self, c: usize) {
        while !self.model[c].buf.is_empty() {
            self.q(Op::TryRecv(c));
        }
    }

    /// Fills channel `c`'s buffer (open) with new values.
    fn q_fill(&mut self, c: usize) {
        let actor = self.actor();
        for seq in 0.. {
            if self.model[c].buf.len() == self.model[c].cap {
                break;
            }
            self.q(Op::TrySend(c, actor + seq));
        }
    }

    /// A timeout for an operation that blocks (a short one: it times out) or does not.
    fn timeout(&mut self, blocks: bool) -> Duration {
        match self.rng.range(0, if blocks { 1 } else { 2 }) {
            0 => Duration::ZERO,
            1 => Duration::from_micros(self.rng.range(1, 200) as u64),
            _ => LONG,
        }
    }

    /// One operation whose outcome the model predicts, with nobody else on the channels.
    fn gen_quiescent(&mut self, actor: u64, seq: &mut u64) -> Op {
        let mut id = || {
            *seq += 1;
            actor + *seq
        };
        let c = self.rng.range(0, CHANS - 1);
        let (send_blocks, recv_blocks) = (!self.model[c].send_ready(), !self.model[c].recv_ready());
        match self.rng.range(0, 99) {
            0..=12 => Op::TrySend(c, id()),
            13..=25 => Op::TryRecv(c),
            26..=35 if !send_blocks => Op::Send(c, id()),
            26..=35 => Op::TrySend(c, id()),
            36..=45 if !recv_blocks => Op::Recv(c),
            36..=45 => Op::TryRecv(c),
            46..=55 => Op::SendTimeout(c, id(), self.timeout(send_blocks)),
            56..=65 => Op::RecvTimeout(c, self.timeout(recv_blocks)),
            66..=67 => Op::Close(c),
            _ => {
                // One ready case (maybe twice, if a receive), or none and a default, among
                // cases that cannot proceed.
                let (mut ready, mut unready) = (Vec::new(), vec![Case::Never]);
                for c in 0..CHANS {
                    let m = &self.model[c];
                    let (s, r) = (m.send_ready(), m.recv_ready());
                    let send = Case::Send(c, id());
                    (if s { &mut ready } else { &mut unready }).push(send);
                    (if r { &mut ready } else { &mut unready }).push(Case::Recv(c));
                }
                let mut cases = Vec::new();
                let one = !ready.is_empty() && self.rng.chance(65);
                if one {
                    let case = self.rng.pick(&ready);
                    if matches!(case, Case::Recv(_)) && self.rng.chance(20) {
                        cases.push(case.clone());
                    }
                    cases.push(case);
                }
                for _ in 0..self.rng.range(0, 3) {
                    let case = self.rng.pick(&unready);
                    cases.push(case);
                }
                self.rng.shuffle(&mut cases);
                let default = !one || self.rng.chance(50);
                let by_macro = cases.len() == 2 && self.rng.chance(50);
                Op::Select {
                    cases,
                    default,
                    by_macro,
                }
            }
        }
    }

    /// A batch of operations by one actor: the main goroutine, another goroutine or a plain
    /// thread; the model predicts each.
    fn round_quiescent(&mut self) {
        let n = self.rng.range(1, 12);
        let actor = self.actor();
        let mut seq = 0;
        let (mut ops, mut want) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let op = self.gen_quiescent(actor, &mut seq);
            want.push(predict(&mut self.model, &op));
            ops.push(op);
        }
        let got = if self.rng.chance(60) {
            ops.iter()
                .map(|op| exec(op, &self.ends, self.live))
                .collect()
        } else {
            let all = self.ends.clone();
            let a = self.spawn(Script::Ops(ops.clone()), &all);
            self.join_all(vec![a], &all).remove(0)
        };
        if got.len() != n {
            self.fail(format!("{n} operations gave {} outcomes", got.len()));
        }
        for (i, ((op, got), want)) in ops.iter().zip(&got).zip(&want).enumerate() {
            if canon(op, got) != *want {
                self.fail(format!(
                    "operation {i} of {n}: {op:?} gave {got:?}; the model says {want:?} \
                     (the model's state is after all {n})"
                ));
            }
        }
        self.ops += n as u64;
    }

    // ---- concurrent rounds ----

    /// A blocking send of `id` on `c`, in one of its forms.
    fn send_op(&mut self, c: usize, id: u64) -> Op {
        match self.rng.range(0, 5) {
            0 | 1 => Op::Send(c, id),
            2 => Op::SendTimeout(c, id, LONG),
            3 => Op::Select {
                cases: vec![Case::Send(c, id)],
                default: false,
                by_macro: false,
            },
            _ => {
                let mut cases = vec![Case::Send(c, id), Case::Never];
                self.rng.shuffle(&mut cases);
                Op::Select {
                    cases,
                    default: false,
                    by_macro: self.rng.chance(50),
                }
            }
        }
    }

    /// A blocking receive on `c`, in one of its forms.
    fn recv_op(&mut self, c: usize) -> Op {
        match self.rng.range(0, 5) {
            0 | 1 => Op::Recv(c),
            2 => Op::RecvTimeout(c, LONG),
            3 => Op::Select {
                cases: vec![Case::Recv(c); self.rng.range(1, 2)],
                default: false,
                by_macro: false,
            },
            _ => {
                let mut cases = vec![Case::Recv(c), Case::Never];
                self.rng.shuffle(&mut cases);
                Op::Select {
                    cases,
                    default: false,
                    by_macro: self.rng.chance(50),
                }
            }
        }
    }

    /// A select over `cases` (shuffled, perhaps with a `never()` case), blocking.
    fn select_op(&mut self, mut cases: Vec<Case>) -> Op {
        if self.rng.chance(20) {
            cases.push(Case::Never);
        }
        self.rng.shuffle(&mut cases);
        let by_macro = cases.len() == 2 && self.rng.chance(50);
        Op::Select {
            cases,
            default: false,
            by_macro,
        }
    }

    /// The values a sender's script sent, checking that each of its sends did.
    fn sent(&self, script: &Script, outs: &[Out]) -> Vec<(usize, u64)> {
        let ops = script.ops();
        if outs.len() != ops.len() {
            self.fail(format!(
                "a sender did {} operations of {}",
                outs.len(),
                ops.len()
            ));
        }
        ops.iter()
            .zip(outs)
            .filter_map(|(op, out)| {
                let sent = sent_by(op, out);
                if sent.is_none() {
                    self.fail(format!("a sender's {op:?} gave {out:?}; it must send"));
                }
                sent
            })
            .collect()
    }

    /// The values a receiver's script got, checking that each receive got one (and, for a
    /// range loop, that it ended with `closed`).
    fn got(&self, script: &Script, outs: &[Out]) -> Vec<(usize, u64)> {
        let (ops, ranging): (Vec<&Op>, bool) = match script {
            Script::Ops(ops) => (ops.iter().collect(), false),
            Script::UntilClosed(op, _) => (vec![op; outs.len()], true),
        };
        if !ranging && outs.len() != ops.len() {
            self.fail(format!(
                "a receiver did {} operations of {}",
                outs.len(),
                ops.len()
            ));
        }
        let mut got = Vec::new();
        for (op, out) in ops.iter().zip(outs) {
            if ranging && closed_by(op, out, 0) {
                return got;
            }
            match got_by(op, out) {
                Some(g) => got.push(g),
                None => self.fail(format!("a receiver's {op:?} gave {out:?}; it must receive")),
            }
        }
        if ranging {
            self.fail(format!(
                "a receiver ranging over the channel got {} values and no `closed`",
                got.len()
            ));
        }
        got
    }

    /// `got`, with every value sent, equals `want`: nothing lost, nothing twice.
    fn same_values(&self, what: &str, mut got: Vec<u64>, mut want: Vec<u64>) {
        got.sort_unstable();
        want.sort_unstable();
        if got == want {
            return;
        }
        let (mut missing, mut extra) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < got.len() || j < want.len() {
            match (got.get(i), want.get(j)) {
                (Some(g), Some(w)) if g == w => {
                    i += 1;
                    j += 1;
                }
                (Some(g), Some(w)) if g < w => {
                    extra.push(*g);
                    i += 1;
                }
                (Some(g), None) => {
                    extra.push(*g);
                    i += 1;
                }
                (_, Some(w)) => {
                    missing.push(*w);
                    j += 1;
                }
                (None, None) => unreachable!(),
            }
        }
        self.fail(format!(
            "{what}: lost {missing:?}, received but not sent (or twice) {extra:?}"
        ));
    }

    /// Go's order on one channel, as one receiver saw it or as the buffer held what was left:
    /// the values buffered before the round first, in their order, and each sender's values
    /// in the order it sent them.
    fn check_order(&self, what: &str, seen: &[u64], before: &[u64]) {
        let mut last: HashMap<u64, u64> = HashMap::new();
        let mut new = false;
        for &id in seen {
            let (src, place) = match before.iter().position(|&b| b == id) {
                Some(p) => (0, p as u64),
                None => (id / SEQ, id % SEQ),
            };
            if src == 0 && new {
                self.fail(format!(
                    "{what}: {id} came after a value sent in the round, but was buffered \
                     before it (buffered: {before:?}, seen: {seen:?})"
                ));
            }
            new |= src != 0;
            if last.get(&src).is_some_and(|&p| p >= place) {
                self.fail(format!("{what}: out of order: {seen:?}"));
            }
            last.insert(src, place);
        }
    }

    /// What is left in a buffer is the last of what each sender sent (and of what was there
    /// before): a value stays only behind the ones sent after it.
    fn check_left(&self, left: &[u64], lists: &[Vec<u64>]) {
        for list in lists {
            let mine: Vec<u64> = left.iter().copied().filter(|v| list.contains(v)).collect();
            if mine[..] != list[list.len() - mine.len()..] {
                self.fail(format!(
                    "left in the buffer: {mine:?}, not the last ones of {list:?}"
                ));
            }
        }
    }

    /// Takes what the receiver `rx` can get without waiting, up to `max` values (a working
    /// channel ends with Empty or Closed before); returns them and how it stopped.
    fn drain(&self, rx: &Rx, max: usize) -> (Vec<Val>, TryRecvError) {
        let mut left = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(v) => left.push(v),
                Err(e) => return (left, e),
            }
            if left.len() > max {
                self.fail(format!(
                    "the buffer gave {} values: more than its room ({max})",
                    left.len()
                ));
                return (left, TryRecvError::Empty);
            }
        }
    }

    /// Senders and receivers on one channel, blocking: counts matched so that all complete,
    /// leaving some values in the buffer; or receivers ranging until the channel is closed,
    /// by the main goroutine once the senders are done or by the last sender's drop.
    fn round_traffic(&mut self) {
        let c = self.open_chan();
        let (cap, before) = (
            self.model[c].cap,
            self.model[c].buf.iter().copied().collect::<Vec<_>>(),
        );
        let mode = self.rng.range(0, 2);
        let mut ends = vec![if mode == 2 {
            // The last sender's drop closes it: the world keeps no end of it.
            self.replace(c)
        } else {
            self.ends[c].clone()
        }];
        let mut scripts = Vec::new();
        let senders = self.rng.range(1, 4);
        let mut sent_n = 0;
        for _ in 0..senders {
            let actor = self.actor();
            let k = self.rng.range(0, 10);
            sent_n += k;
            let ops = (0..k as u64).map(|s| self.send_op(0, actor + s)).collect();
            scripts.push(Script::Ops(ops));
        }
        let total = before.len() + sent_n;
        let receivers = self.rng.range(1, 4);
        let left = if mode == 0 {
            self.rng.range(0, cap.min(total))
        } else {
            0
        };
        for k in self.rng.split(total - left, receivers) {
            scripts.push(if mode == 0 {
                Script::Ops((0..k).map(|_| self.recv_op(0)).collect())
            } else {
                Script::UntilClosed(self.recv_op(0), total + 1)
            });
        }
        self.ops += (sent_n + total - left) as u64;

        let mut order: Vec<usize> = (0..scripts.len()).collect();
        self.rng.shuffle(&mut order);
        let mut actors: Vec<Option<Actor>> = (0..scripts.len()).map(|_| None).collect();
        for i in order {
            actors[i] = Some(self.spawn(scripts[i].clone(), &ends));
        }
        if mode == 2 {
            ends[0].tx = None;
        }
        let mut outs: Vec<Vec<Out>> = Vec::new();
        self.rescue.arm(&ends);
        for (i, a) in actors.into_iter().enumerate() {
            if mode == 1 && i == senders {
                // Every sender is done: close, and the receivers drain the buffer.
                let out = exec(&Op::Close(0), &ends, self.live);
                if out != Out::Closed(true) {
                    self.fail(format!("close gave {out:?}"));
                }
                self.ops += 1;
            }
            outs.push(self.join(a.expect("spawned")));
        }
        self.rescued |= self.rescue.disarm();

        let mut lists = vec![before.clone()];
        let mut all_sent = before.clone();
        for (script, out) in scripts[..senders].iter().zip(&outs) {
            let sent: Vec<u64> = self.sent(script, out).into_iter().map(|s| s.1).collect();
            all_sent.extend(&sent);
            lists.push(sent);
        }
        let mut all_got = Vec::new();
        for (script, out) in scripts[senders..].iter().zip(&outs[senders..]) {
            let got: Vec<u64> = self.got(script, out).into_iter().map(|g| g.1).collect();
            self.check_order("a receiver", &got, &before);
            all_got.extend(got);
        }
        let (vals, end) = self.drain(ends[0].rx(), cap);
        let rest: Vec<u64> = vals.iter().map(|v| v.id).collect();
        let want_end = if mode == 0 {
            TryRecvError::Empty
        } else {
            TryRecvError::Closed
        };
        if rest.len() != left || end != want_end {
            self.fail(format!(
                "the buffer held {rest:?} then {end:?}; the plan leaves {left} then {want_end:?}"
            ));
        }
        self.check_order("the buffer", &rest, &before);
        self.check_left(&rest, &lists);
        all_got.extend(&rest);
        self.same_values("senders and receivers", all_got, all_sent);
        match mode {
            0 => {
                // Back into the buffer: the channel carries them into later rounds.
                for v in vals {
                    if ends[0].tx().try_send(v).is_err() {
                        self.fail("a value drained from the buffer did not fit back");
                    }
                }
                self.model[c].buf = rest.into();
            }
            1 => {
                self.model[c].closed = true;
                self.model[c].buf.clear();
            }
            _ => {}
        }
    }

    /// Close wakes every receiver (or every sender, of a full buffer) waiting on the channel,
    /// some of them in selects with other cases that cannot proceed; a send after it gets
    /// its value back; buffered values outlive it. The close is a `close()` or the drop of
    /// every Sender (of every Receiver, for the senders).
    fn round_close(&mut self) {
        let c = self.open_chan();
        let senders = self.rng.chance(50);
        let by_drop = self.rng.chance(30);
        if senders {
            self.q_fill(c);
        } else {
            self.q_drain(c);
        }
        // Other channels the selects may wait on: they stay unable to proceed.
        let others: Vec<usize> = (0..CHANS)
            .filter(|&d| {
                d != c && {
                    let m = &self.model[d];
                    if senders {
                        !m.send_ready()
                    } else {
                        !m.recv_ready()
                    }
                }
            })
            .collect();
        let mut ends = vec![if by_drop {
            self.replace(c)
        } else {
            self.ends[c].clone()
        }];
        ends.extend(others.iter().map(|&d| self.ends[d].clone()));
        let actor = self.actor();
        let mut scripts = Vec::new();
        for s in 0..self.rng.range(1, 6) as u64 {
            let id = actor + s * 8;
            let op = if self.rng.chance(60) {
                if senders {
                    self.send_op(0, id)
                } else {
                    self.recv_op(0)
                }
            } else {
                let mut cases = vec![if senders {
                    Case::Send(0, id)
                } else {
                    Case::Recv(0)
                }];
                for k in 1..=self.rng.range(0, ends.len() - 1) as u64 {
                    let d = self.rng.range(1, ends.len() - 1);
                    cases.push(if senders {
                        Case::Send(d, id + k)
                    } else {
                        Case::Recv(d)
                    });
                }
                self.select_op(cases)
            };
            scripts.push(Script::Ops(vec![op]));
        }
        self.ops += scripts.len() as u64 + 1;
        let mut actors = Vec::new();
        for s in &scripts {
            actors.push(self.spawn(s.clone(), &ends));
        }
        for _ in 0..self.rng.range(0, 3) {
            goexec::yield_now();
        }
        if by_drop {
            if senders {
                ends[0].rx = None;
            } else {
                ends[0].tx = None;
            }
        } else {
            let out = exec(&Op::Close(0), &ends, self.live);
            if out != Out::Closed(true) {
                self.fail(format!("close gave {out:?}"));
            }
        }
        let mut outs = self.join_all(actors, &ends);
        if !by_drop && self.rng.chance(30) {
            // Late: a send on the closed channel, or a receive (the buffer empty).
            let op = if senders {
                self.send_op(0, actor + 1000)
            } else {
                self.recv_op(0)
            };
            let s = Script::Ops(vec![op]);
            let a = self.spawn(s.clone(), &ends);
            outs.extend(self.join_all(vec![a], &ends));
            scripts.push(s);
            self.ops += 1;
        }
        for (s, out) in scripts.iter().zip(&outs) {
            let (op, out) = (&s.ops()[0], out.first().unwrap_or(&Out::Default));
            let ok = if senders {
                refused_by(op, out, 0)
            } else {
                closed_by(op, out, 0)
            };
            if !ok {
                self.fail(format!(
                    "{op:?} gave {out:?}; the channel (chan 0 here) was closed under it"
                ));
            }
        }
        if by_drop {
            let closed = match (&ends[0].tx, &ends[0].rx) {
                (Some(tx), _) => tx.is_closed(),
                (_, Some(rx)) => rx.is_closed(),
                _ => unreachable!(),
            };
            if !closed {
                self.fail("the channel is not closed after its last Sender or Receiver went");
            }
            if let Some(rx) = &ends[0].rx {
                let (vals, end) = self.drain(rx, 0);
                if !vals.is_empty() || end != TryRecvError::Closed {
                    let ids: Vec<u64> = vals.iter().map(|v| v.id).collect();
                    self.fail(format!("a closed, empty channel gave {ids:?} then {end:?}"));
                }
            }
            return;
        }
        self.model[c].closed = true;
        if self.rng.chance(50) {
            // The values buffered before the close, then `closed`.
            self.q_drain(c);
            self.q(Op::TryRecv(c));
        }
    }

    /// Selects receiving from every channel of a few, against senders on any of them
    /// (plain sends and selects over some): every select completes with a value that was
    /// sent on the channel of its case.
    fn round_select_recv(&mut self) {
        let mut chans: Vec<usize> = Vec::new();
        let m = self.rng.range(2, 3);
        while chans.len() < m {
            let c = self.open_chan();
            if !chans.contains(&c) {
                chans.push(c);
            }
        }
        let ends: Vec<Ends> = chans.iter().map(|&c| self.ends[c].clone()).collect();
        let before: Vec<Vec<u64>> = chans
            .iter()
            .map(|&c| self.model[c].buf.iter().copied().collect())
            .collect();
        let mut scripts = Vec::new();
        let senders = self.rng.range(1, 4);
        let mut total: usize = before.iter().map(Vec::len).sum();
        for _ in 0..senders {
            let actor = self.actor();
            let mut seq = 0;
            let mut ops = Vec::new();
            for _ in 0..self.rng.range(0, 8) {
                if self.rng.chance(40) {
                    let c = self.rng.range(0, m - 1);
                    ops.push(self.send_op(c, actor + seq));
                    seq += 1;
                } else {
                    let mut cases = Vec::new();
                    for c in 0..m {
                        if cases.is_empty() || self.rng.chance(60) {
                            cases.push(Case::Send(c, actor + seq));
                            seq += 1;
                        }
                    }
                    ops.push(self.select_op(cases));
                }
            }
            total += ops.len();
            scripts.push(Script::Ops(ops));
        }
        let receivers = self.rng.range(1, 4);
        for k in self.rng.split(total, receivers) {
            let ops = (0..k)
                .map(|_| {
                    let mut cases: Vec<Case> = (0..m).map(Case::Recv).collect();
                    if self.rng.chance(20) {
                        cases.push(Case::Recv(self.rng.range(0, m - 1)));
                    }
                    self.select_op(cases)
                })
                .collect();
            scripts.push(Script::Ops(ops));
        }
        self.ops += (total * 2) as u64;
        let outs = self.run_all(&scripts, &ends);

        let mut sent_on: HashMap<u64, usize> = HashMap::new();
        for (c, b) in before.iter().enumerate() {
            sent_on.extend(b.iter().map(|&id| (id, c)));
        }
        for (s, out) in scripts[..senders].iter().zip(&outs) {
            sent_on.extend(self.sent(s, out).into_iter().map(|(c, id)| (id, c)));
        }
        let mut all_got = Vec::new();
        for (s, out) in scripts[senders..].iter().zip(&outs[senders..]) {
            let got = self.got(s, out);
            for (c, before) in before.iter().enumerate() {
                let on_c: Vec<u64> = got.iter().filter(|g| g.0 == c).map(|g| g.1).collect();
                self.check_order("a select receiving", &on_c, before);
            }
            for &(c, id) in &got {
                if sent_on.get(&id).is_some_and(|&s| s != c) {
                    self.fail(format!(
                        "{id} received from chan {c} (of the round), sent on chan {}",
                        sent_on[&id]
                    ));
                }
            }
            all_got.extend(got.into_iter().map(|g| g.1));
        }
        self.same_values(
            "selects receiving",
            all_got,
            sent_on.keys().copied().collect(),
        );
        for &c in &chans {
            self.model[c].buf.clear();
        }
    }

    /// Selects sending on every channel of a few unbuffered ones, against receivers on one
    /// of them or selecting over some: every select sends exactly one value, received on
    /// the channel of its case, and each sender's values arrive in order.
    fn round_select_send(&mut self) {
        let m = self.rng.range(2, 3);
        let ends: Vec<Ends> = (0..m).map(|_| Ends::both(0)).collect();
        let mut scripts = Vec::new();
        let senders = self.rng.range(1, 4);
        let mut total = 0;
        for _ in 0..senders {
            let actor = self.actor();
            let mut seq = 0;
            let mut ops = Vec::new();
            for _ in 0..self.rng.range(0, 8) {
                let cases = (0..m)
                    .map(|c| {
                        seq += 1;
                        Case::Send(c, actor + seq)
                    })
                    .collect();
                ops.push(self.select_op(cases));
            }
            total += ops.len();
            scripts.push(Script::Ops(ops));
        }
        let receivers = self.rng.range(1, 4);
        for k in self.rng.split(total, receivers) {
            let ops = (0..k)
                .map(|_| {
                    if self.rng.chance(50) {
                        let c = self.rng.range(0, m - 1);
                        self.recv_op(c)
                    } else {
                        let mut cases = Vec::new();
                        for c in 0..m {
                            if cases.is_empty() || self.rng.chance(50) {
                                cases.push(Case::Recv(c));
                            }
                        }
                        self.select_op(cases)
                    }
                })
                .collect();
            scripts.push(Script::Ops(ops));
        }
        self.ops += (total * 2) as u64;
        let outs = self.run_all(&scripts, &ends);

        let mut sent_on: HashMap<u64, usize> = HashMap::new();
        for (s, out) in scripts[..senders].iter().zip(&outs) {
            sent_on.extend(self.sent(s, out).into_iter().map(|(c, id)| (id, c)));
        }
        let mut all_got = Vec::new();
        for (s, out) in scripts[senders..].iter().zip(&outs[senders..]) {
            let got = self.got(s, out);
            let ids: Vec<u64> = got.iter().map(|g| g.1).collect();
            // Unbuffered: a send completes with its receive, so order holds across channels.
            self.check_order("a receiver of unbuffered channels", &ids, &[]);
            for &(c, id) in &got {
                if sent_on.get(&id).is_some_and(|&s| s != c) {
                    self.fail(format!(
                        "{id} received from chan {c} (of the round), sent on chan {}",
                        sent_on[&id]
                    ));
                }
            }
            all_got.extend(ids);
        }
        self.same_values(
            "selects sending",
            all_got,
            sent_on.keys().copied().collect(),
        );
        for e in &ends {
            if !e.rx().is_empty() {
                self.fail("an unbuffered channel holds a value");
            }
        }
    }

    /// Selects that each send on or receive from one channel: each completes one case, and
    /// what the receiving ones got, with what is left in the buffer, is what the sending
    /// ones sent (and what was there before). Unbuffered, they pair off.
    fn round_swap(&mut self) {
        let c = self.open_chan();
        let cap = self.model[c].cap;
        let before: Vec<u64> = self.model[c].buf.iter().copied().collect();
        let n = if cap == 0 {
            2 * self.rng.range(1, 4)
        } else {
            self.rng.range(1, 8)
        };
        let ends = vec![self.ends[c].clone()];
        let scripts: Vec<Script> = (0..n)
            .map(|_| {
                let id = self.actor();
                Script::Ops(vec![self.select_op(vec![Case::Send(0, id), Case::Recv(0)])])
            })
            .collect();
        self.ops += n as u64;
        let outs = self.run_all(&scripts, &ends);
        let (mut sent, mut got) = (Vec::new(), Vec::new());
        for (s, out) in scripts.iter().zip(&outs) {
            let op = &s.ops()[0];
            let out = out.first().unwrap_or(&Out::Default);
            match (sent_by(op, out), got_by(op, out)) {
                (Some((_, id)), None) => sent.push(id),
                (None, Some((_, id))) => got.push(id),
                _ => self.fail(format!("{op:?} gave {out:?}; it must send or receive")),
            }
        }
        let (vals, end) = self.drain(ends[0].rx(), cap);
        let rest: Vec<u64> = vals.iter().map(|v| v.id).collect();
        if end != TryRecvError::Empty {
            self.fail(format!("the buffer held {rest:?} then {end:?}"));
        }
        self.check_order("the buffer", &rest, &before);
        got.extend(&rest);
        sent.extend(&before);
        self.same_values("selects sending or receiving", got, sent);
        self.model[c].buf.clear();
    }

    /// A value handed over by a non-blocking operation to the other side waiting: `try_send`
    /// (or a select with a default) to a waiting receiver, `try_recv` from a waiting sender;
    /// with a full buffer, `try_recv` takes the head and the waiting sender's value goes to
    /// the tail.
    fn round_handoff(&mut self) {
        let c = self.open_chan();
        let to_receiver = self.rng.chance(50);
        if to_receiver {
            self.q_drain(c);
        } else {
            self.q_fill(c);
        }
        let ends = vec![self.ends[c].clone()];
        let id = self.actor();
        let op = if to_receiver {
            self.recv_op(0)
        } else {
            self.send_op(0, id)
        };
        let script = Script::Ops(vec![op.clone()]);
        let a = self.spawn(script.clone(), &ends);
        for _ in 0..self.rng.range(0, 3) {
            goexec::yield_now();
        }
        let by_select = self.rng.chance(50);
        let mine = match (to_receiver, by_select) {
            (true, false) => Op::TrySend(0, id + 1),
            (true, true) => Op::Select {
                cases: vec![Case::Send(0, id + 1)],
                default: true,
                by_macro: false,
            },
            (false, false) => Op::TryRecv(0),
            (false, true) => Op::Select {
                cases: vec![Case::Recv(0)],
                default: true,
                by_macro: false,
            },
        };
        let head = self.model[c].buf.front().copied();
        let since = Instant::now();
        loop {
            let out = exec(&mine, &ends, self.live);
            let done = match out.leaf() {
                Out::Sent if to_receiver => true,
                Out::Got(v) if !to_receiver && Some(*v) == head.or(Some(id)) => true,
                Out::Full(v) if to_receiver && *v == (id + 1) => false,
                Out::Empty | Out::Default if head.is_none() => false,
                _ => {
                    self.fail(format!(
                        "{mine:?} gave {out:?}, with {op:?} waiting (buffered first: {head:?})"
                    ));
                    true
                }
            };
            if done {
                break;
            }
            if since.elapsed() > Duration::from_secs(30) {
                self.report(format!("{op:?} was not ready for {mine:?} in 30 s"));
            }
            goexec::yield_now();
        }
        let out = self.join_all(vec![a], &ends).remove(0);
        let out = out.first().unwrap_or(&Out::Default);
        let want = if to_receiver { id + 1 } else { id };
        let ok = if to_receiver {
            got_by(&op, out) == Some((0, want))
        } else {
            sent_by(&op, out) == Some((0, want))
        };
        if !ok {
            self.fail(format!(
                "{op:?} gave {out:?}; it must have handed over {want}"
            ));
        }
        if !to_receiver && head.is_some() {
            let m = &mut self.model[c];
            m.buf.pop_front();
            m.buf.push_back(id);
        }
        self.ops += 2;
    }

    /// Timed sends and receives with short timeouts on one channel, racing their timers:
    /// each send either sends or times out with its own value back, each receive gets a value
    /// or times out, and what was received, with what is left in the buffer, is what was
    /// sent. Exactly one of the timer and the other side takes a waiter off its queue.
    fn round_timeouts(&mut self) {
        let c = self.open_chan();
        let cap = self.model[c].cap;
        let before: Vec<u64> = self.model[c].buf.iter().copied().collect();
        let ends = vec![self.ends[c].clone()];
        let short = |rng: &mut Rng| Duration::from_micros(rng.range(0, 300) as u64);
        let mut scripts = Vec::new();
        let senders = self.rng.range(1, 4);
        for _ in 0..senders {
            let actor = self.actor();
            let ops = (0..self.rng.range(1, 8) as u64)
                .map(|s| Op::SendTimeout(0, actor + s, short(&mut self.rng)))
                .collect();
            scripts.push(Script::Ops(ops));
        }
        for _ in 0..self.rng.range(1, 4) {
            let ops = (0..self.rng.range(1, 8))
                .map(|_| Op::RecvTimeout(0, short(&mut self.rng)))
                .collect();
            scripts.push(Script::Ops(ops));
        }
        self.ops += scripts.iter().map(|s| s.ops().len() as u64).sum::<u64>();
        let outs = self.run_all(&scripts, &ends);

        let mut lists = vec![before.clone()];
        let mut sent = before.clone();
        for (s, out) in scripts[..senders].iter().zip(&outs) {
            let mut mine = Vec::new();
            for (op, out) in s.ops().iter().zip(out) {
                match (op, out) {
                    (Op::SendTimeout(_, id, _), Out::Sent) => mine.push(*id),
                    (Op::SendTimeout(_, id, _), Out::SendTimeout(v)) if v == id => {}
                    _ => self.fail(format!("{op:?} gave {out:?}")),
                }
            }
            sent.extend(&mine);
            lists.push(mine);
        }
        let mut got = Vec::new();
        for (s, out) in scripts[senders..].iter().zip(&outs[senders..]) {
            let mut mine = Vec::new();
            for (op, out) in s.ops().iter().zip(out) {
                match out {
                    Out::Got(id) => mine.push(*id),
                    Out::RecvTimeout => {}
                    _ => self.fail(format!("{op:?} gave {out:?}")),
                }
            }
            self.check_order("a timed receiver", &mine, &before);
            got.extend(mine);
        }
        let (vals, end) = self.drain(ends[0].rx(), cap);
        let rest: Vec<u64> = vals.iter().map(|v| v.id).collect();
        if end != TryRecvError::Empty {
            self.fail(format!("the buffer held {rest:?} then {end:?}"));
        }
        self.check_order("the buffer", &rest, &before);
        self.check_left(&rest, &lists);
        got.extend(&rest);
        self.same_values("timed senders and receivers", got, sent);
        self.model[c].buf.clear();
    }
}
