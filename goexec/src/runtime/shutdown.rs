//! Stopping a runtime when its main goroutine returns: every M exits at its next scheduling
//! point, `shutdown` joins them, abandons the goroutines that never finished (Go abandons them
//! when `main` returns) and hands what can be reused to the next run (`Warm`, alloc.rs).
//!
//! An M whose goroutine runs without a scheduling point cannot be stopped (goexec does not
//! end the process as Go does): it is detached (`join_or_detach`), and abandons what its
//! goroutine leaves behind when it exits (`abandon_late`).

use super::alloc::Warm;
use super::g::{GCache, GRef, GStatus};
use super::m::MShared;
use super::sched::Sched;
use super::timers;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The runtime's threads, to join at teardown: each M with its shared half, and sysmon.
/// Under `Sched::synced`.
pub(super) type Threads = Vec<(std::thread::JoinHandle<()>, Option<Arc<MShared>>)>;

/// Where a runtime stands in its teardown (`Sched::teardown`).
#[derive(Default)]
pub(super) struct Teardown {
    /// Set when the main goroutine has finished: Ms exit at their next scheduling point.
    /// Release/Acquire: Ms that see it also see everything main did.
    begun: AtomicBool,
    /// `shutdown` has abandoned the goroutines it found: an M exiting later looks again
    /// (`abandon_late`). Written under the `allgs` lock; Release/Acquire.
    swept: AtomicBool,
}

impl Sched {
    /// Whether the main goroutine has finished: from then on nothing runs.
    #[inline]
    pub(crate) fn is_shut_down(&self) -> bool {
        self.teardown.begun.load(Ordering::Acquire)
    }

    /// Tells every M to exit at its next scheduling point. Called by the M that ran the main
    /// goroutine as soon as it exits, so that nothing else runs after main returns (as in Go),
    /// and again by `shutdown`.
    pub(super) fn begin_shutdown(&self) {
        // Release: pairs with the Acquire loads in find_runnable and stopm.
        self.teardown.begun.store(true, Ordering::Release);
        self.wake_sysmon();
        let allm = self.lock().allm.clone();
        for m in &allm {
            m.unpark();
        }
    }

    /// Stops the runtime after the main goroutine finished: every M exits at its next
    /// scheduling point, and we wait for them. Returns what the next run of the `Runtime` can
    /// reuse: the records of finished goroutines found in this runtime's free lists, the free
    /// default-size stacks (still resident) and task cells.
    ///
    /// Goroutines that never finished are abandoned, as Go abandons them when `main` returns:
    /// their handles are told ([`JoinError::is_cancelled`](crate::JoinError::is_cancelled)),
    /// and their records and stacks are never freed, because channel and sync queues, join
    /// slots, wakers and poller lists may still name them: waking one later is a no-op
    /// (`goready` on a shut-down runtime). Only records this function can prove unreachable go
    /// back to the `Runtime`: those in the free lists of Ps no M holds.
    #[allow(unsafe_code)] // abandoning Gs: only once no M can run them (see below)
    pub(crate) fn shutdown(self: &Arc<Self>) -> Warm {
        // Join every M; Ms started while we joined (by a goroutine that was still spawning)
        // are woken and joined on the next pass.
        let mut detached = false;
        loop {
            self.begin_shutdown();
            let threads = std::mem::take(&mut self.lock().threads);
            if threads.is_empty() {
                break;
            }
            detached |= join_or_detach(threads);
        }
        // Sockets may outlive the run; their poller polls on its own from now on.
        if let Some(np) = self.netpoll.get() {
            np.orphan();
        }
        // Every M has exited but detached ones (hogs), which may keep their P: nothing else
        // runs Gs any more. Drain the queues and collect the free lists.
        let (free, mut stacks, cells) = {
            let mut s = self.lock();
            // A P handed to an M that had already stopped (sysmon retaking a hog's P as the
            // runtime stopped) never reached it: take those back too.
            for m in s.allm.clone() {
                if let Some((p, _)) = m.take_p() {
                    s.idle.pidle.push(p);
                }
                if let Some(p) = m.take_syscall_p() {
                    s.idle.pidle.push(p);
                }
            }
            s.runq.clear();
            let mut free = std::mem::take(&mut s.free.gfree);
            let mut stacks = std::mem::take(&mut s.free.stacks);
            let mut cells = std::mem::take(&mut s.free.cells);
            for p in s.idle.pidle.iter_mut() {
                while p.runq.pop().is_some() {}
                free.append(&mut p.gfree);
                stacks.extend(p.stacks.drain());
                cells.append(&mut p.cells);
            }
            (free, stacks, cells)
        };
        for shared in self.allp.iter() {
            shared.runnext.store(ptr::null_mut(), Ordering::Relaxed);
            // Sleepers are abandoned with their goroutines, cancellable calls with their
            // operations (a Sleep future's task is woken to re-arm it). A Timer, Ticker, after_func or context deadline that outlives the
            // run moves to the process-wide heap, where it still fires (time/mod.rs), and so
            // does one added from now on: the heap is closed (Sched::addtimer). Dropped or
            // moved after the heap's lock is released: see TimerHeap::push.
            let entries = shared
                .timers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .close();
            super::timers::rehome_at_teardown(entries);
            shared.timer0.store(0, Ordering::Relaxed);
        }
        let mut cache = GCache::default();
        let mut allgs = self.alloc.allgs.lock().unwrap_or_else(|e| e.into_inner());
        let found = self.abandon_unfinished(&allgs);
        if !detached {
            // Every Idle G is in the lists collected above, and nothing else can name them.
            // Goroutines that never ran have no frames: their records are reused too.
            for &(g, _) in &found.unstarted {
                // SAFETY: its function is taken (and cancelled below); the queues are drained.
                let stack = unsafe { g.reset_unstarted() };
                stacks.extend(stack.filter(|st| st.size() == self.stack_size));
                cache.push(g);
            }
            for g in free {
                cache.push(g);
            }
            // What stays (abandoned goroutines) is never freed: see above.
            allgs.retain(|g| g.status() != GStatus::Idle);
            self.alloc.gdb_view.publish(&mut allgs);
        }
        // Else a detached M still runs: it may hold its P (with a free list and a queue) and
        // look at any record (`dump`, a spawn): no record goes back, all stay listed here,
        // never freed, for the M to look at again when it exits.
        self.teardown.swept.store(true, Ordering::Release);
        drop(allgs);
        // Outside the lock: this runs user code. A panic there is re-raised once every handle
        // has been told.
        if let Err(p) = found.tell() {
            std::panic::resume_unwind(p);
        }
        Warm {
            gs: cache,
            stacks,
            cells,
        }
    }

    /// Finds every goroutine of this (shut down) runtime that started and will never run
    /// again, and those that never started, and takes their tasks out, for
    /// [`Abandoned::tell`] to tell their handles once the `allgs` lock is released (telling
    /// runs user code: a waker, the drop of a goroutine's function). Idempotent: a task is
    /// taken once. Called by `shutdown` once its Ms have exited, and again by a detached M as
    /// it exits (its goroutine may have parked, or spawned, after `shutdown` looked).
    #[allow(unsafe_code)] // see the SAFETY notes
    fn abandon_unfinished(&self, allgs: &[GRef]) -> Abandoned {
        debug_assert!(
            self.is_shut_down(),
            "abandon_unfinished: the runtime is running"
        );
        let mut found = Abandoned::default();
        for &g in allgs {
            match g.status() {
                GStatus::Waiting | GStatus::Runnable => {
                    // SAFETY: the runtime has shut down: no M dequeues or resumes a G any more
                    // (a detached M only finishes the G it is running, which is Running, and
                    // leaves a G that refuses to park after shutdown Waiting: `execute`), and
                    // the caller holds the `allgs` lock, so this is the only such look.
                    if let Some(task) = unsafe { g.take_unstarted() } {
                        found.unstarted.push((g, task));
                    // SAFETY: as above.
                    } else if let Some(task) = unsafe { g.take_abandoned_task() } {
                        found.started.push(task);
                    }
                }
                GStatus::Idle | GStatus::Running | GStatus::Dead => {}
            }
        }
        found
    }

    /// For an M exiting after `shutdown` finished (one it detached, or one started late):
    /// abandons what its goroutine may have parked or spawned meanwhile.
    pub(super) fn abandon_late(&self) {
        let found = {
            let allgs = self.alloc.allgs.lock().unwrap_or_else(|e| e.into_inner());
            // Acquire: pairs with shutdown's Release, made under the same lock.
            if !self.teardown.swept.load(Ordering::Acquire) {
                return;
            }
            self.abandon_unfinished(&allgs)
        };
        // On this M's g0: a panic in the user code it runs is fatal (callback.rs).
        if let Err(p) = found.tell() {
            drop(p);
            super::fatal(
                "shutdown",
                "a goroutine's function or a JoinHandle waker panicked as the goroutine was \
                 abandoned (the message is above)",
            );
        }
    }
}

/// Goroutines a shut-down runtime will never run, with their tasks taken out of their Gs.
#[derive(Default)]
struct Abandoned {
    /// Never started: the function, to drop, and the G.
    unstarted: Vec<(GRef, crate::task::TaskRef)>,
    /// Started: their handles are told they are abandoned.
    started: Vec<crate::task::TaskPtr>,
}

impl Abandoned {
    /// Tells every handle (a waiting `join` wakes). Runs user code: the drop of a function
    /// that never ran, a waker in a join slot. Every handle is told even if some of that
    /// panics; the first panic is returned.
    #[allow(unsafe_code)] // TaskPtr::abandon, see below
    fn tell(self) -> Result<(), Box<dyn std::any::Any + Send>> {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        let mut first = Ok(());
        let mut keep_first = |r: std::thread::Result<()>| {
            if let Err(p) = r {
                if first.is_ok() {
                    first = Err(p);
                }
            }
        };
        for (_, task) in self.unstarted {
            keep_first(catch_unwind(AssertUnwindSafe(move || task.cancel())));
        }
        for t in self.started {
            // SAFETY: taken by abandon_unfinished from a G that can never run again, whose
            // frames (never resumed) keep the task alive.
            keep_first(catch_unwind(AssertUnwindSafe(move || unsafe {
                t.abandon()
            })));
        }
        first
    }
}

/// Waits for the runtime's threads to exit, except an M whose goroutine has run 20 ms without
/// a scheduling point (a hog): Go ends the process when main returns, which goexec cannot do
/// to a thread, so that M is left running its goroutine (its G record and stack are leaked)
/// and exits at the goroutine's next scheduling point, if any. An M in a blocking section is
/// waited for. Goroutines' panics are caught where they run, so a runtime thread that
/// panicked is a runtime bug: report it instead of carrying on with a half-stopped runtime.
/// Returns whether it left a thread running.
fn join_or_detach(threads: Vec<(std::thread::JoinHandle<()>, Option<Arc<MShared>>)>) -> bool {
    let mut detached = false;
    const HOG_NS: u64 = 20_000_000;
    let ticks = |m: &Option<Arc<MShared>>| m.as_ref().map(|m| m.life());
    let mut pending: Vec<_> = threads
        .into_iter()
        .map(|(t, m)| {
            let life = ticks(&m);
            (t, m, life, timers::nanotime())
        })
        .collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (t, m, life, since) in pending {
            if t.is_finished() {
                if t.join().is_err() {
                    super::fatal(
                        "shutdown",
                        "a runtime thread panicked (its message is above)",
                    );
                }
                continue;
            }
            let now_life = ticks(&m);
            if now_life != life {
                still.push((t, m, now_life, timers::nanotime()));
                continue;
            }
            let hog = life.is_some_and(|l| !l.in_rt)
                && timers::nanotime().saturating_sub(since) > HOG_NS
                && m.as_ref().is_some_and(|m| !m.in_section());
            if !hog {
                still.push((t, m, life, since));
            } else {
                // Detached: the JoinHandle is dropped.
                detached = true;
            }
        }
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    detached
}
