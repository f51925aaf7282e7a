//! The network poller (Go: `netpoll.go`, `netpoll_epoll.go`): one `mio::Poll` per runtime,
//! created when the first source registers.
//!
//! Each registered source has a [`PollDesc`] in a slab; its mio token is the slab key plus a
//! generation, so an event still in flight for a closed source whose slot was reused is
//! recognised and dropped. A descriptor has a reader and a writer side (Go's `rg`/`wg`): the
//! goroutines and threads waiting on it, or a ready mark (an edge arrived while nobody waited).
//! Registration is edge-triggered, so a waiter retries its I/O after every wake and waits
//! again on `WouldBlock`.
//!
//! The read side also keeps a stamp that every read report moves, and a mark, never cleared,
//! that the source was reported closed for reading or in error: a reader that found the
//! source empty waits for "anything since" instead of for the one-shot ready mark, which a
//! wake or another waiter may have spent (see [`Netpoll::wait`]).
//!
//! Who polls (Go's places):
//! - `find_runnable`, without blocking, when it has no local or global work and someone waits
//!   on I/O; the goroutines made ready go to its P;
//! - the M about to park with nothing to do: it blocks in the poll (one M at a time), with the
//!   next timer as the timeout. Anything that would wake it (a P handed to it, an earlier
//!   timer, shutdown) goes through `MShared::unpark`, which also breaks the poll with the
//!   `mio::Waker` (Go's `netpollBreak`);
//! - sysmon, if nobody has polled for 10 ms;
//! - once the runtime has shut down, while sources are still registered (sockets outlive
//!   `run`): a fallback thread, `goexec-netpoll`, started when someone waits (a thread, a
//!   task, a goroutine of another runtime; the dead runtime's goroutines are dropped from the
//!   waits, as they never run again). It blocks in the poll and wakes the waiters, until the
//!   last source is deregistered (which breaks its poll with the waker). Until someone
//!   waits, edges queue in the kernel and nothing polls.
//!
//! A wait ends at the earlier of two deadlines: the operation's own (a timeout, from its
//! start) and the descriptor's (Go's `pd.rd`/`pd.wd`, set by `SetReadDeadline` from anyone,
//! any time). A goroutine's wait arms a timer (`timers::call_at`) that wakes the waiter of the
//! slot it was set for, identified by a per-slot sequence number, so a stale timer wakes
//! nobody; a thread parks with a timeout. Setting a descriptor's deadline earlier than it was
//! wakes the side's waiters, which look again: past it, they fail; before it, they re-arm
//! (Go's `netpolldeadlineimpl` and `poll_runtime_pollSetDeadline`).

use super::m::with_m;
use super::park::Waiter;
use super::timers::{self, nanotime};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// The poller of the calling goroutine's runtime, made on first use. None on a thread not
/// running a goroutine.
pub(crate) fn current() -> Option<io::Result<Arc<Netpoll>>> {
    with_m(|m| {
        m.curg.get()?;
        Some(m.sched.netpoll().cloned())
    })
    .flatten()
}

/// The waker's token (never a slab key: keys stay below 2^32).
const WAKER: Token = Token(usize::MAX);

/// A direction's waiters (Go: `rg`/`wg`, which hold one goroutine because Go serializes a
/// socket's readers and its writers; here several goroutines may wait on one side, as on a
/// listener shared by acceptors, and an edge wakes them all to retry).
#[derive(Default)]
struct Side {
    /// An edge arrived while nobody waited: the next wait returns at once.
    ready: bool,
    /// Who waits, with the number of their wait (for a deadline timer to find its own).
    waiters: Vec<(u64, Waiter)>,
    /// Moved by every report of this side: a wait that sees it moved was woken by (or saw)
    /// readiness, and retries its I/O even if its deadline passed meanwhile (Go: an
    /// `netpollblock` that returns ready wins over the deadline).
    edges: u64,
}

impl Side {
    /// Takes wait `seq` off the list, if it is still there.
    fn take_wait(&mut self, seq: u64) -> Option<Waiter> {
        let i = self.waiters.iter().position(|(s, _)| *s == seq)?;
        Some(self.waiters.swap_remove(i).1)
    }

    fn is_waiting(&self, seq: u64) -> bool {
        self.waiters.iter().any(|(s, _)| *s == seq)
    }
}

struct DescState {
    read: Side,
    write: Side,
    /// Numbers the waits, both sides together.
    seq: u64,
    closed: bool,
    /// A report said read-closed (end of stream, both halves shut) or error. Final for a
    /// stream socket; only `wait`'s `since` looks at it.
    read_closed: bool,
    /// A report said read-closed (not error, which a datagram socket gets over): final. Every
    /// read wait returns at once from then on, so that a reader who found the source empty
    /// just before the one edge of its end (spent on the readers waiting then) still sees it:
    /// several readers may share a stream, and a datagram socket shut down for reading says
    /// `WouldBlock`, not 0, raising no edge after that one.
    read_hup: bool,
}

impl DescState {
    fn side(&mut self, dir: Dir) -> &mut Side {
        match dir {
            Dir::Read => &mut self.read,
            Dir::Write => &mut self.write,
        }
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the socket was closed")
}

/// A registered source's waiter slots (Go: `pollDesc`).
pub(crate) struct PollDesc {
    token: Token,
    /// Each side's deadline in `nanotime` units, 0 for none (Go's `rd`/`wd`). Written under
    /// `state`'s lock, read without it by `expired` before each operation.
    deadlines: [AtomicU64; 2],
    /// Moved by every report of the read side, under `state`'s lock; read without it.
    read_stamp: AtomicU64,
    state: Mutex<DescState>,
}

/// Which side of a descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dir {
    Read = 0,
    Write = 1,
}

impl PollDesc {
    fn lock(&self) -> MutexGuard<'_, DescState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `dir`'s deadline (`nanotime` units), if it has one.
    pub(crate) fn deadline(&self, dir: Dir) -> Option<u64> {
        match self.deadlines[dir as usize].load(Ordering::Acquire) {
            0 => None,
            d => Some(d),
        }
    }

    /// Whether `dir`'s deadline has passed (Go's `netpollcheckerr` seeing `rd < 0`): an
    /// operation then fails before it tries, even if the source is ready.
    pub(crate) fn expired(&self, dir: Dir) -> bool {
        self.deadline(dir).is_some_and(|d| nanotime() >= d)
    }

    /// The earlier of `op`'s deadline and `dir`'s.
    fn deadline_with(&self, dir: Dir, op: Option<u64>) -> Option<u64> {
        match (op, self.deadline(dir)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The read side's stamp now; see [`Netpoll::wait`].
    pub(crate) fn read_stamp(&self) -> u64 {
        self.read_stamp.load(Ordering::Acquire)
    }

    /// Whether the read side was reported hung up (end of stream, or shut down for reading):
    /// final.
    pub(crate) fn read_hung_up(&self) -> bool {
        self.lock().read_hup
    }

    /// Marks the directions ready: moves their waiters to `out`, or leaves the readiness for
    /// the next wait on a side nobody waits on. `read_closed`: the report said read-closed
    /// or error; `hup`: read-closed.
    fn ready(&self, read: bool, write: bool, read_closed: bool, hup: bool, out: &mut Vec<Waiter>) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if read {
            let stamp = self.read_stamp.load(Ordering::Relaxed);
            self.read_stamp.store(stamp + 1, Ordering::Release);
            st.read_closed |= read_closed;
            st.read_hup |= hup;
        }
        for (yes, side) in [(read, &mut st.read), (write, &mut st.write)] {
            if !yes {
                continue;
            }
            side.edges = side.edges.wrapping_add(1);
            if side.waiters.is_empty() {
                side.ready = true;
            } else {
                out.extend(side.waiters.drain(..).map(|(_, w)| w));
            }
        }
    }
}

/// The poller of one runtime (Go: the `netpoll*` globals).
pub(crate) struct Netpoll {
    poll: Mutex<(Poll, Events)>,
    registry: mio::Registry,
    pub(crate) waker: Arc<Waker>,
    descs: Mutex<Slab<(u32, Arc<PollDesc>)>>,
    next_gen: AtomicU64,
    /// Goroutines and threads waiting on I/O (Go: `netpollWaiters`): nobody polls without.
    pub(crate) waiters: AtomicUsize,
    /// When someone last polled (`nanotime`), for sysmon.
    pub(crate) last_poll: AtomicU64,
    /// An M is blocked in the poll.
    pub(crate) blocked: AtomicBool,
    /// Registered sources (the slab's length, readable without its lock).
    sources: AtomicUsize,
    /// The runtime has shut down: waits start the fallback thread (`orphan`).
    orphaned: AtomicBool,
    /// The fallback thread runs.
    fallback: Mutex<bool>,
}

impl Netpoll {
    pub(crate) fn new() -> io::Result<Netpoll> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Netpoll {
            poll: Mutex::new((poll, Events::with_capacity(256))),
            registry,
            waker,
            descs: Mutex::new(Slab::new()),
            next_gen: AtomicU64::new(1),
            waiters: AtomicUsize::new(0),
            last_poll: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            sources: AtomicUsize::new(0),
            orphaned: AtomicBool::new(false),
            fallback: Mutex::new(false),
        })
    }

    /// Registers `src` (edge-triggered, both directions) and returns its descriptor.
    pub(crate) fn register(&self, src: &mut dyn mio::event::Source) -> io::Result<Arc<PollDesc>> {
        let gen = (self.next_gen.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff) as u32;
        let mut descs = self.descs.lock().unwrap_or_else(|e| e.into_inner());
        let entry = descs.vacant_entry();
        let key = entry.key();
        if key >= u32::MAX as usize {
            return Err(io::Error::other("goexec: too many registered sources"));
        }
        let token = Token(((gen as usize) << 32) | key);
        let desc = Arc::new(PollDesc {
            token,
            deadlines: [AtomicU64::new(0), AtomicU64::new(0)],
            read_stamp: AtomicU64::new(0),
            state: Mutex::new(DescState {
                read: Side::default(),
                write: Side::default(),
                seq: 0,
                closed: false,
                read_closed: false,
                read_hup: false,
            }),
        });
        self.registry
            .register(src, token, Interest::READABLE | Interest::WRITABLE)?;
        entry.insert((gen, desc.clone()));
        self.sources.fetch_add(1, Ordering::SeqCst);
        Ok(desc)
    }

    /// Deregisters `src` and wakes anyone still waiting on `desc` (they see it closed).
    pub(crate) fn deregister(&self, src: &mut dyn mio::event::Source, desc: &PollDesc) {
        let _ = self.registry.deregister(src);
        let key = desc.token.0 & 0xffff_ffff;
        {
            let mut descs = self.descs.lock().unwrap_or_else(|e| e.into_inner());
            if descs.get(key).is_some_and(|(_, d)| d.token == desc.token) {
                descs.remove(key);
                // The last one: a fallback thread blocked in the poll wakes and exits. SeqCst,
                // as the thread's load of `sources` and `orphan`'s store: one of the two sees
                // the other.
                if self.sources.fetch_sub(1, Ordering::SeqCst) == 1
                    && self.orphaned.load(Ordering::SeqCst)
                {
                    let _ = self.waker.wake();
                }
            }
        }
        let woken: Vec<Waiter> = {
            let mut guard = desc.lock();
            let st = &mut *guard;
            st.closed = true;
            st.read
                .waiters
                .drain(..)
                .chain(st.write.waiters.drain(..))
                .map(|(_, w)| w)
                .collect()
        };
        for w in woken {
            self.waiters.fetch_sub(1, Ordering::AcqRel);
            w.wake();
        }
    }

    /// Sets `dir`'s deadline of `desc` (None: none). Moved earlier (or set where there was
    /// none), it wakes the side's waiters, which fail if it has passed and otherwise wait
    /// again until it; moved later or cleared, waiters whose wait ends at the old deadline
    /// wake then, see it has not passed and wait again.
    pub(crate) fn set_deadline(&self, desc: &PollDesc, dir: Dir, deadline: Option<u64>) {
        let woken: Vec<Waiter> = {
            let mut st = desc.lock();
            let old = desc.deadline(dir);
            // 0 means none; `instant_to_nanos` never gives 0.
            desc.deadlines[dir as usize].store(deadline.map_or(0, |d| d.max(1)), Ordering::Release);
            let earlier = match (deadline, old) {
                (Some(new), Some(old)) => new < old,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !earlier {
                return;
            }
            st.side(dir).waiters.drain(..).map(|(_, w)| w).collect()
        };
        for w in woken {
            self.waiters.fetch_sub(1, Ordering::AcqRel);
            w.wake();
        }
    }

    /// Polls once, waiting at most `timeout` (None: until an event or a wake). Returns the
    /// waiters made ready; None if another M is polling now.
    pub(crate) fn poll(&self, timeout: Option<Duration>) -> Option<Vec<Waiter>> {
        let guard = self.poll.try_lock().ok()?;
        Some(self.poll_locked(guard, timeout))
    }

    /// `poll`, for the caller holding the poll.
    fn poll_locked(
        &self,
        mut guard: MutexGuard<'_, (Poll, Events)>,
        timeout: Option<Duration>,
    ) -> Vec<Waiter> {
        let (poll, events) = &mut *guard;
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                super::fatal("netpoll", &format!("epoll_wait failed: {e}"));
            }
        }
        self.last_poll.store(nanotime(), Ordering::Relaxed);
        // Sized once: a side may hold several waiters, but mostly it is one per event.
        let mut ready = Vec::with_capacity(events.iter().count());
        let descs = self.descs.lock().unwrap_or_else(|e| e.into_inner());
        for ev in events.iter() {
            let token = ev.token();
            if token == WAKER {
                continue;
            }
            let key = token.0 & 0xffff_ffff;
            let Some((_, desc)) = descs.get(key).filter(|(_, d)| d.token == token) else {
                continue; // a closed source's slot, reused since
            };
            let closed = ev.is_read_closed() || ev.is_error();
            let read = ev.is_readable() || closed;
            let write = ev.is_writable() || ev.is_write_closed() || ev.is_error();
            desc.ready(read, write, closed, ev.is_read_closed(), &mut ready);
        }
        drop(descs);
        self.waiters.fetch_sub(ready.len(), Ordering::AcqRel);
        ready
    }

    /// The runtime has shut down (its Ms have exited; its goroutines never run again): drops
    /// the waits of goroutines whose runtime has shut down, and from now on, while a source is
    /// registered and someone waits, a fallback thread polls (`start_fallback`).
    pub(crate) fn orphan(self: &Arc<Self>) {
        // Before the descriptors are visited: a wait registered after its descriptor was
        // visited sees the flag (through the descriptor's lock) and starts the thread itself;
        // one registered before is counted here. SeqCst: see `deregister`.
        self.orphaned.store(true, Ordering::SeqCst);
        let (mut left, mut dropped) = (0, 0);
        let descs = self.descs.lock().unwrap_or_else(|e| e.into_inner());
        for (_, (_, desc)) in descs.iter() {
            let mut guard = desc.lock();
            let st = &mut *guard;
            for side in [&mut st.read, &mut st.write] {
                let before = side.waiters.len();
                side.waiters
                    .retain(|(_, w)| !matches!(w, Waiter::G(g) if g.sched().is_shut_down()));
                dropped += before - side.waiters.len();
                left += side.waiters.len();
            }
        }
        drop(descs);
        self.waiters.fetch_sub(dropped, Ordering::AcqRel);
        if left > 0 {
            self.start_fallback();
        }
    }

    /// Starts the fallback thread unless it runs: for the waits `orphan` found, and for each
    /// new wait on an orphaned poller.
    fn start_fallback(self: &Arc<Self>) {
        let mut running = self.fallback.lock().unwrap_or_else(|e| e.into_inner());
        if *running {
            return;
        }
        let np = Arc::downgrade(self);
        // The same check as an M's start: a full mapping table gets an error naming
        // vm.max_map_count instead of std's abort inside the thread's start.
        let spawned = crate::stack::room_for_a_thread().and_then(|()| {
            std::thread::Builder::new()
                .name("goexec-netpoll".into())
                .spawn(move || fallback(np))
        });
        if let Err(e) = spawned {
            // Go too ends the program when it cannot make a thread.
            super::fatal("netpoll", &format!("cannot start the fallback poller: {e}"));
        }
        *running = true;
    }

    /// The poll-based wait (async I/O): Ready(Ok) if `dir` of `desc` may be ready (an edge
    /// came since the last wait: retry the I/O), else registers the task's waker, replacing
    /// the one an earlier poll of the same task left, and returns Pending.
    pub(crate) fn poll_ready(
        self: &Arc<Self>,
        desc: &PollDesc,
        dir: Dir,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let mut st = desc.lock();
        if st.closed {
            return std::task::Poll::Ready(Err(closed_error()));
        }
        let hup = dir == Dir::Read && st.read_hup;
        let side = st.side(dir);
        if side.ready || hup {
            side.ready = false;
            return std::task::Poll::Ready(Ok(()));
        }
        let waker = cx.waker();
        let same = side
            .waiters
            .iter_mut()
            .find(|(_, w)| matches!(w, Waiter::Task(old) if old.will_wake(waker)));
        if let Some((_, w)) = same {
            *w = Waiter::Task(waker.clone());
        } else {
            st.seq += 1;
            let seq = st.seq;
            st.side(dir)
                .waiters
                .push((seq, Waiter::Task(waker.clone())));
            self.waiters.fetch_add(1, Ordering::AcqRel);
            // Under the descriptor's lock: see `orphan`.
            if self.orphaned.load(Ordering::Acquire) {
                self.start_fallback();
            }
        }
        std::task::Poll::Pending
    }

    /// Waits until `dir` of `desc` is ready, or `deadline` (`nanotime` units) or the side's
    /// own deadline passes: Ok(true) when woken by readiness or a deadline that moved (retry
    /// the I/O), Ok(false) on a deadline, Err when the source was deregistered. A deadline
    /// already passed fails at once, before readiness is looked at (Go). On a goroutine only
    /// the goroutine parks.
    ///
    /// `since` (read side only): a stamp taken before a read that found the source empty.
    /// Then the wait returns at once if the read side was reported since, or was ever
    /// reported closed or in error; it ignores the ready mark, which is older than the stamp
    /// if the stamp has not moved. So it sleeps only while nothing can have come since that
    /// read, whoever spent the edges in between.
    pub(crate) fn wait(
        self: &Arc<Self>,
        desc: &Arc<PollDesc>,
        dir: Dir,
        op_deadline: Option<u64>,
        since: Option<u64>,
    ) -> io::Result<bool> {
        let mut st = desc.lock();
        if st.closed {
            return Err(closed_error());
        }
        // Under the lock: `set_deadline` wakes the waiters it finds after changing it.
        let deadline = desc.deadline_with(dir, op_deadline);
        if deadline.is_some_and(|d| nanotime() >= d) {
            return Ok(false);
        }
        let moved = since.map(|s| st.read_closed || desc.read_stamp() != s);
        let hup = dir == Dir::Read && st.read_hup;
        let side = st.side(dir);
        let go = moved.unwrap_or(side.ready) || hup;
        side.ready = false;
        if go {
            return Ok(true);
        }
        // Under the descriptor's lock, with the waiter added before it is released: see
        // `orphan`.
        if self.orphaned.load(Ordering::Acquire) {
            self.start_fallback();
        }
        st.seq += 1;
        let seq = st.seq;
        let edges = st.side(dir).edges;
        st.side(dir).waiters.push((seq, Waiter::current()));
        self.waiters.fetch_add(1, Ordering::AcqRel);
        // On a goroutine, a timer wakes this wait if it is still this wait; a thread waits
        // with a timeout below instead (call_at adds nothing there). The wait cancels it when
        // it ends (outside the descriptor's lock, which the callback takes under the timer's).
        let timer = deadline.and_then(|d| {
            let (desc2, np) = (desc.clone(), self.clone());
            timers::call_at(d, move || {
                let waiter = desc2.lock().side(dir).take_wait(seq);
                if let Some(waiter) = waiter {
                    np.waiters.fetch_sub(1, Ordering::AcqRel);
                    waiter.wake();
                }
            })
        });
        let is_g = super::m::current_g().is_some();
        if is_g {
            super::park::block_on_guard(st, super::g::WaitReason::IoWait);
        } else {
            // A thread: park until our slot is no longer our wait, or the deadline.
            drop(st);
            loop {
                let now = nanotime();
                match deadline {
                    Some(d) if now >= d => {
                        if desc.lock().side(dir).take_wait(seq).is_some() {
                            self.waiters.fetch_sub(1, Ordering::AcqRel);
                        }
                        break;
                    }
                    Some(d) => std::thread::park_timeout(Duration::from_nanos(d - now)),
                    None => std::thread::park(),
                }
                if !desc.lock().side(dir).is_waiting(seq) {
                    break;
                }
            }
        }
        drop(timer);
        let mut st = desc.lock();
        if st.closed {
            return Err(closed_error());
        }
        if st.side(dir).edges != edges {
            // Readiness came: retry the I/O, whatever time it is now (the goroutine may run
            // only after the deadline; the data is there all the same).
            return Ok(true);
        }
        drop(st);
        // The side's deadline as it is now: it may have moved while this waited.
        let deadline = desc.deadline_with(dir, op_deadline);
        Ok(deadline.is_none_or(|d| nanotime() < d))
    }
}

/// The fallback thread of a poller whose runtime has shut down: polls it and wakes the waiters
/// (threads unpark, tasks are woken, goroutines of live runtimes are readied), until its last
/// source is deregistered (which breaks the poll) or, between polls, the poller is gone.
fn fallback(weak: Weak<Netpoll>) {
    while let Some(np) = weak.upgrade() {
        {
            let mut running = np.fallback.lock().unwrap_or_else(|e| e.into_inner());
            if np.sources.load(Ordering::SeqCst) == 0 {
                *running = false;
                return;
            }
        }
        let guard = np.poll.lock().unwrap_or_else(|e| e.into_inner());
        for w in np.poll_locked(guard, None) {
            // A waker is user code: it must not block this thread (callback.rs).
            super::callback::user_code(
                "a Waker::wake called by the network poller (fallback thread)",
                || w.wake(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    //! The read stamp, on a poller of the test's own, polled by hand.

    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn registered(np: &Netpoll) -> (mio::net::UnixStream, Arc<PollDesc>, UnixStream) {
        let (ours, peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut ours = mio::net::UnixStream::from_std(ours);
        let desc = np.register(&mut ours).unwrap();
        (ours, desc, peer)
    }

    fn in_ms(ms: u64) -> Option<u64> {
        Some(nanotime() + ms * 1_000_000)
    }

    #[test]
    fn netpoll_an_end_reported_before_a_short_read_is_seen_after_it() {
        // Data and the close are reported while nobody waits; a wait spends the ready mark;
        // the read after it returns the data, short, with the end behind it and no edge to
        // come. A wait on the ready mark alone would sleep until its deadline.
        let np = Arc::new(Netpoll::new().unwrap());
        let (ours, desc, mut peer) = registered(&np);
        peer.write_all(b"hi").unwrap();
        drop(peer);
        assert!(np.poll(Some(Duration::ZERO)).unwrap().is_empty());
        assert!(np.wait(&desc, Dir::Read, None, None).unwrap());
        let stamp = desc.read_stamp();
        let mut buf = [0u8; 8];
        assert_eq!((&ours).read(&mut buf).unwrap(), 2);
        assert!(np.wait(&desc, Dir::Read, in_ms(5000), Some(stamp)).unwrap());
        assert_eq!((&ours).read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn netpoll_a_wait_readiness_ended_retries_even_after_its_deadline() {
        // The report takes the waiter off the side before its deadline; the waiter gets to
        // look only after the deadline (here: it is never woken, and wakes from its own
        // timeout). It was ended by readiness, so it says "retry", not "timed out" (Go).
        let np = Arc::new(Netpoll::new().unwrap());
        let (_ours, desc, mut peer) = registered(&np);
        let (np2, desc2) = (np.clone(), desc.clone());
        let waiter =
            std::thread::spawn(move || np2.wait(&desc2, Dir::Read, in_ms(300), None).unwrap());
        while np.waiters.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        peer.write_all(b"x").unwrap();
        let readied = np.poll(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(readied.len(), 1);
        assert!(waiter.join().unwrap(), "readiness came before the deadline");
        drop(readied);
        // With nothing reported, the same wait times out.
        let (np2, desc2) = (np.clone(), desc.clone());
        let waiter =
            std::thread::spawn(move || np2.wait(&desc2, Dir::Read, in_ms(50), None).unwrap());
        assert!(!waiter.join().unwrap());
    }

    #[test]
    fn netpoll_a_wait_since_a_stamp_ignores_older_reports_and_sees_newer_ones() {
        let np = Arc::new(Netpoll::new().unwrap());
        let (ours, desc, mut peer) = registered(&np);
        peer.write_all(b"a").unwrap();
        assert!(np.poll(Some(Duration::ZERO)).unwrap().is_empty());
        let stamp = desc.read_stamp();
        let mut buf = [0u8; 8];
        assert_eq!((&ours).read(&mut buf).unwrap(), 1);
        // The ready mark is older than the stamp: nothing to read, so the wait sleeps (here
        // until its deadline) instead of returning for a read that would say WouldBlock.
        assert!(!np.wait(&desc, Dir::Read, in_ms(50), Some(stamp)).unwrap());
        // A report after the stamp: the wait returns at once, or is woken by it.
        let np2 = np.clone();
        let poller = std::thread::spawn(move || {
            peer.write_all(b"b").unwrap();
            for w in np2.poll(Some(Duration::from_secs(5))).unwrap() {
                w.wake();
            }
            peer
        });
        assert!(np.wait(&desc, Dir::Read, in_ms(5000), Some(stamp)).unwrap());
        assert_eq!((&ours).read(&mut buf).unwrap(), 1);
        drop(poller.join().unwrap());
    }
}
