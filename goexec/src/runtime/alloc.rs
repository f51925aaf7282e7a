//! What a goroutine is made of, and where it comes from: ids, G records, stacks and task
//! cells, each kept in a per-P cache backed by one shared list, and reused from run to run of
//! a `Runtime` ([`Warm`]); `newproc` puts a goroutine together. Go: `proc.go` `newproc`,
//! `gfget`/`gfput`, `allgadd`, and the stack cache of `stack.go`.
//!
//! A goroutine of the default stack size gets its stack when it first runs (`gstart`), not at
//! `newproc`, and gives it back when it exits (`gfput`): see the scheduler's notes (sched.rs).

use super::cells::{Cells, CELL_CACHE_MAX};
use super::g::{GCache, GRef, GStatus};
use super::m::with_m;
use super::p::{GFREE_MAX, P};
use super::sched::{runqput, Sched, MAIN_GOID};
use crate::stack::{Stack, StackError, DEFAULT_POOL_CAPACITY};
use std::collections::HashMap;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What one run of a `Runtime` leaves for the next: finished Gs, free stacks (their touched
/// pages still resident) and free task cells.
#[derive(Default)]
pub(crate) struct Warm {
    pub(crate) gs: GCache,
    pub(crate) stacks: Vec<Stack>,
    pub(crate) cells: Cells,
}

impl Warm {
    /// Adds what another run left.
    pub(crate) fn append(&mut self, other: Warm) {
        self.gs.append(other.gs);
        self.stacks.extend(other.stacks);
        let mut cells = other.cells;
        self.cells.append(&mut cells);
    }

    /// Goroutine records, stacks and task cells held.
    pub(crate) fn len(&self) -> usize {
        self.gs.len() + self.stacks.len() + self.cells.len()
    }
}

/// Goroutine ids, counts, names and records (`Sched::alloc`).
pub(super) struct Alloc {
    /// Next goroutine id; the main goroutine is 1. Relaxed: uniqueness only.
    next_goid: AtomicU64,
    /// Goroutines started from outside any P (the main goroutine). Each P counts its own
    /// starts and exits (`PShared::gcount`); the sum is the number of live goroutines (Go
    /// derives `gcount` from per-P lists too). Relaxed: a count for display.
    ngoroutines_ext: AtomicIsize,
    /// Names given with `Builder::name`, by goroutine id, while the goroutine lives (kept
    /// out of the G record: few goroutines have one, and every spawn would carry its space).
    names: Mutex<HashMap<u64, String>>,
    /// Every G ever allocated (Go: `allgs`), for dump() and teardown.
    pub(super) allgs: Mutex<Vec<GRef>>,
    /// `allgs` as a debugger reads it (debug.rs): republished after every change, under the
    /// `allgs` lock.
    pub(super) gdb_view: super::debug::GsView,
}

impl Alloc {
    /// No goroutine yet: the first id is the main goroutine's.
    pub(super) fn new() -> Alloc {
        Alloc {
            next_goid: AtomicU64::new(MAIN_GOID),
            ngoroutines_ext: AtomicIsize::new(0),
            names: Mutex::new(HashMap::new()),
            allgs: Mutex::new(Vec::new()),
            gdb_view: super::debug::GsView::new(),
        }
    }
}

/// The free lists shared by all Ps, under `Sched::synced`: spilled into by full per-P caches,
/// refilling empty ones.
pub(super) struct FreeLists {
    /// Free Gs (Go: `sched.gFree`).
    pub(super) gfree: Vec<GRef>,
    /// Free default-size stacks: filled from the `Runtime`'s warm cache at start, and handed
    /// back at teardown.
    pub(super) stacks: Vec<Stack>,
    /// Free task cells (`cells.rs`), kept between runs like the stacks.
    pub(super) cells: Cells,
}

impl FreeLists {
    /// Lists holding what an earlier run left (its Gs are adopted once the scheduler exists).
    pub(super) fn new(stacks: Vec<Stack>, cells: Cells) -> FreeLists {
        FreeLists {
            gfree: Vec::new(),
            stacks,
            cells,
        }
    }
}

impl Sched {
    /// The name of goroutine `id`, if it was given one.
    pub(crate) fn name_of(&self, id: u64) -> Option<String> {
        let names = self.alloc.names.lock().unwrap_or_else(|e| e.into_inner());
        names.get(&id).cloned()
    }

    /// Sets (or with None, removes) goroutine `id`'s name.
    pub(crate) fn set_name(&self, id: u64, name: Option<String>) {
        let mut names = self.alloc.names.lock().unwrap_or_else(|e| e.into_inner());
        match name {
            Some(n) => names.insert(id, n),
            None => names.remove(&id),
        };
    }

    /// Goroutines started and not finished (Go: `gcount`).
    pub(crate) fn num_goroutine(&self) -> usize {
        let n = self.alloc.ngoroutines_ext.load(Ordering::Relaxed)
            + self
                .allp
                .iter()
                .map(|p| p.gcount.load(Ordering::Relaxed))
                .sum::<isize>();
        n.max(0) as usize
    }

    /// Adds `delta` to `p`'s goroutine count. Only the P's owner writes it, so a load and a
    /// store do (no locked instruction on the spawn and exit paths).
    #[inline]
    pub(super) fn gcount_add(&self, p: &P, delta: isize) {
        let c = &self.allp[p.id].gcount;
        c.store(c.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
    }

    /// A snapshot of every G, for dump().
    pub(crate) fn all_gs(&self) -> Vec<GRef> {
        self.alloc
            .allgs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A fresh goroutine id, to give to [`Sched::newproc`] (and to the goroutine's handle
    /// before the goroutine can run).
    pub(crate) fn new_goid(&self) -> u64 {
        self.alloc.next_goid.fetch_add(1, Ordering::Relaxed)
    }

    /// Creates a goroutine running `f` and makes it runnable: in the calling M's `runnext` when
    /// called from one of this runtime's goroutines, else on the global queue. Go: `newproc`.
    /// `parent` is the spawning goroutine's id, for tracebacks (0: none).
    pub(crate) fn newproc(
        self: &Arc<Self>,
        id: u64,
        f: crate::task::TaskRef,
        spawned_at: &'static Location<'static>,
        parent: u64,
        name: Option<String>,
        stack_size: usize,
    ) -> Result<GRef, StackError> {
        // A default-size goroutine gets its stack when it first runs (see `gstart`); another
        // size is allocated now, so that a failure is the spawner's error.
        let stack = if stack_size == self.stack_size {
            None
        } else {
            Some(Stack::new(stack_size)?)
        };
        // On one of our Ms (a goroutine spawning): its P's free list, then its runnext. The
        // arguments stay in `args` unless the closure takes them.
        let mut args = Some((f, name, stack));
        let on_m = with_m(|m| {
            // Without a P (a blocking section), from outside, or another runtime's M: the
            // global queue below.
            if !Arc::ptr_eq(&m.sched, self) {
                return None;
            }
            // The P may be gone by now (sysmon takes it from goroutines that run long:
            // preempt.rs), so the arguments are taken only once we have it.
            let g = m.with_p(|p| {
                let g = self.gfget(p);
                self.gcount_add(p, 1);
                g
            })?;
            let (f, name, stack) = args.take()?;
            g.prepare(id, f, spawned_at, parent, name, stack);
            g.set_status(GStatus::Runnable);
            sched_event!(goid = id, "spawn");
            runqput(m, g, true);
            Some(g)
        })
        .flatten();
        let g = match on_m {
            Some(g) => g,
            None => {
                // From outside (Runtime::run starting main) or without a P: the global queue.
                let Some((f, name, stack)) = args.take() else {
                    super::fatal("newproc", "the M lost its P");
                };
                let g = self.gfget_global();
                g.prepare(id, f, spawned_at, parent, name, stack);
                self.alloc.ngoroutines_ext.fetch_add(1, Ordering::Relaxed);
                g.set_status(GStatus::Runnable);
                sched_event!(goid = id, "spawn");
                self.globrunqput(g);
                g
            }
        };
        self.wakep();
        Ok(g)
    }

    /// Gives `g`, about to run on `p`'s M, a stack if it has none: the first run of a
    /// default-size goroutine. The stack comes from `p`'s cache (refilled from the shared one),
    /// else the allocator; failing that, the runtime cannot go on (Go throws here too).
    #[inline]
    pub(super) fn gstart(&self, p: &mut P, g: GRef) {
        if !g.has_stack() {
            self.newstack(p, g);
        }
    }

    /// The slow half of `gstart`: binds a stack from the cache.
    #[inline(never)]
    fn newstack(&self, p: &mut P, g: GRef) {
        if p.stacks.is_empty() {
            self.refill_stacks(p);
        }
        match p.stacks.get() {
            Ok(s) => g.bind_stack(s),
            Err(e) => super::fatal(
                "newstack",
                &format!(
                    "out of memory: cannot allocate goroutine {}'s stack: {e}",
                    g.id()
                ),
            ),
        }
    }

    /// A free task cell from `p`'s cache, refilled from the shared list when empty; None when
    /// both are empty (the caller allocates).
    pub(crate) fn cell_get(&self, p: &mut P) -> Option<NonNull<u8>> {
        if let Some(c) = p.cells.pop() {
            return Some(c);
        }
        self.lock()
            .free
            .cells
            .move_to(&mut p.cells, CELL_CACHE_MAX / 2);
        p.cells.pop()
    }

    /// Keeps a free task cell in `p`'s cache, moving half of a full cache to the shared list.
    pub(crate) fn cell_put(&self, p: &mut P, cell: NonNull<u8>) {
        if p.cells.len() >= CELL_CACHE_MAX {
            p.cells
                .move_to(&mut self.lock().free.cells, CELL_CACHE_MAX / 2);
        }
        p.cells.push(cell);
    }

    /// Moves up to half a pool's worth of stacks from the shared cache into `p`'s pool.
    fn refill_stacks(&self, p: &mut P) {
        let mut s = self.lock();
        let n = s.free.stacks.len().min(DEFAULT_POOL_CAPACITY / 2);
        let at = s.free.stacks.len() - n;
        p.stacks.extend(s.free.stacks.drain(at..));
    }

    /// Gives a finished goroutine's stack back to `p`'s cache; a full cache moves its older
    /// half to the shared one first, so that stacks already faulted in stay in this runtime
    /// (a fresh stack's first touch costs microseconds). Stacks of another size are freed.
    fn stackfree(&self, p: &mut P, stack: Stack) {
        if stack.size() != self.stack_size {
            return;
        }
        if p.stacks.len() >= DEFAULT_POOL_CAPACITY {
            let spill = p.stacks.len() / 2;
            self.lock().free.stacks.extend(p.stacks.take_oldest(spill));
        }
        p.stacks.put(stack);
    }

    /// A free G from `p`'s list, else a batch from the global list, else a new one.
    /// Go: `gfget`.
    fn gfget(self: &Arc<Self>, p: &mut P) -> GRef {
        if p.gfree.is_empty() {
            let mut s = self.lock();
            let n = s.free.gfree.len().min(GFREE_MAX / 2);
            let at = s.free.gfree.len() - n;
            p.gfree.extend(s.free.gfree.drain(at..));
        }
        match p.gfree.pop() {
            Some(g) => g,
            None => self.galloc(),
        }
    }

    /// A free G from the global list, or a new one (no P at hand).
    fn gfget_global(self: &Arc<Self>) -> GRef {
        let g = self.lock().free.gfree.pop();
        g.unwrap_or_else(|| self.galloc())
    }

    fn galloc(self: &Arc<Self>) -> GRef {
        let g = GRef::alloc(self.clone());
        let mut allgs = self.alloc.allgs.lock().unwrap_or_else(|e| e.into_inner());
        allgs.push(g);
        self.alloc.gdb_view.publish(&mut allgs);
        g
    }

    /// Returns a finished G to `p`'s free list, spilling half to the global list when full,
    /// and its stack to `p`'s stack cache. Go: `gfput`.
    #[inline]
    pub(super) fn gfput(&self, p: &mut P, g: GRef) {
        if let Some(stack) = g.take_stack() {
            self.stackfree(p, stack);
        }
        g.clear_name();
        g.set_status(GStatus::Idle);
        p.gfree.push(g);
        if p.gfree.len() > GFREE_MAX {
            let half = p.gfree.len() / 2;
            let mut s = self.lock();
            s.free.gfree.extend(p.gfree.drain(..half));
        }
    }

    /// `gfput` for an M without a P (sysmon took it): the G to the global free list, its
    /// stack to the shared cache.
    pub(super) fn gfput_global(&self, g: GRef) {
        self.alloc.ngoroutines_ext.fetch_sub(1, Ordering::Relaxed);
        let stack = g.take_stack();
        g.clear_name();
        g.set_status(GStatus::Idle);
        let mut s = self.lock();
        s.free
            .stacks
            .extend(stack.filter(|st| st.size() == self.stack_size));
        s.free.gfree.push(g);
    }
}
