//! The lock order (Go: `lockrank.go`): every lock goexec takes, and which may be taken while
//! another is held. Documentation only; nothing checks it at run time.
//!
//! Outermost first. A lock may be taken while holding only locks listed above it, and only
//! along the edges named; a *leaf* takes nothing while held (waking a goroutine or a thread
//! counts as taking what `goready` takes: `Sched::synced`, and `MShared::next` after it). Every lock is
//! a `std::sync::Mutex`; "user code" is a waker or a value's `Drop`, which may take anything.
//!
//! 1. **`sync::Cond`'s queue.** `Cond::wait` releases the user's `sync::Mutex` while holding
//!    it: → that mutex's queue (4), and the wake that unlock makes (→ 12).
//! 2. **A timed call's slot** (`CallSlot::c` in `timers/call.rs`: channel operations with a
//!    deadline, socket waits, `time::Sleep` futures). Held while its call runs, which takes the
//!    channel's state (5) or the descriptor's (8) and wakes the waiter (→ 12); a Sleep's waker
//!    is woken after it is released. The owner cancels it (taking it) only after releasing
//!    those. Taken with `try_lock` under a timer heap (10), which never waits.
//! 3. **A `time::Timer`'s state** (`TimerShared::state`, `time/chan_timer.rs`). Firing,
//!    stopping and resetting hold it while they send on or drain the timer's channel: → that
//!    channel's state (5), and the wake the send makes (→ 12). Taken with `try_lock` under a
//!    timer heap (10), which never waits: a receive arming a deadline on the timer's own
//!    channel holds (5) and then (10).
//!    3a. **An `ErrGroup`'s state** (`Inner::st`, `sync/errgroup.rs`). `go` and `try_go` count a
//!    goroutine in under it (→ its `WaitGroup`, 4) so that `set_limit`'s check sees it, and
//!    `try_go` takes a slot of the limit's channel under it (`try_send`, → 5, which wakes
//!    nobody: the slots are only ever `try_recv`ed). `go` waits for a slot after releasing it;
//!    the context is cancelled after releasing it.
//! 4. **The other `sync` primitives' state**: `Mutex`'s queue, `RwLock`, `WaitGroup`,
//!    `Semaphore`, `Once`. Leaves: each wakes its waiters after releasing it.
//!    4a. **A context's node** (`CancelCtx::state`, `context/cancel.rs`). Taken alone, except
//!    that a new node registers under its parent's lock and takes its own then (parent, then
//!    child: nobody else can reach the child yet, so no cycle). A cancel takes a node's, then
//!    its parent's after releasing it, and closes the done channel, stops the deadline timer
//!    (→ 10a) and cancels the children after releasing both; it drops nothing under them but
//!    the `Weak` it unlinks, which runs no code. Arming a deadline adds to a heap (→ 10) after
//!    releasing it.
//! 5. **A channel's state** (`chan/hchan.rs`). `select` holds several, taken in order of the
//!    channels' addresses (Go's `sellock`). `close`, and `select` completing a case, wake
//!    waiters while holding it (→ 12, and a task's waker: user code); an operation with a
//!    deadline arms its timer under it (→ 10, 11, 12).
//! 6. **The poller** (`Netpoll::poll` in `netpoll.rs`): held while polling; → the descriptor
//!    table (7). Taken with `try_lock`, except by the fallback thread of a shut-down runtime.
//! 7. **The descriptor table** (`Netpoll::descs`): → descriptor states (8), when polling and
//!    when the runtime shuts down (`orphan`).
//! 8. **A socket descriptor's state** (`PollDesc::state`). A wait holds it while it starts the
//!    fallback thread (→ 9) and while it arms its deadline (→ 10, 11, 12); the waiters it
//!    readies are woken after it is released.
//! 9. **The fallback thread's flag** (`Netpoll::fallback`). Leaf.
//! 10. **A P's timer heap** (`PShared::timers`), and likewise the process-wide heap of plain
//!     threads' timers (`timers/process.rs`, whose condvar it also guards). The process-wide
//!     one is never held with a P's: teardown moves a P's surviving entries (a context's
//!     deadline) into it after releasing the P's, and its thread fires due entries after
//!     releasing it. The deadlock check asks each of its entries `is_stale` under it. Adding
//!     may sweep stale entries: → a timed call's slot (2) and a timer's state (3), both with
//!     `try_lock`, and a context's deadline slot (10a). What a sweep takes out
//!     is not dropped by whoever added (a receive arming its deadline holds its channel's
//!     lock, and dropping a timer's last reference closes that timer's channel): it goes into
//!     an entry due at once, which the P's timers drop holding nothing (`timers/heap.rs`).
//!     Teardown drops (or moves) every entry after releasing it. Due timers fire after it is released.
//!     10a. **A context's deadline slot** (`DeadlineTimer::ctx`, `context/cancel.rs`). Leaf: a
//!     stop or a fire takes the node's `Weak` out and releases it before cancelling; a heap's
//!     `is_stale` takes it with `try_lock` and counts a held slot as live.
//! 11. **The timer sleeper** (`Idle::sleeper`, idle.rs). Leaf (it only unparks the sleeper).
//! 12. **The scheduler** (`Sched::synced`: global queue, idle lists, free lists, every M).
//!     Taken by `wakep`, `goready`, spawns and exits, idle Ms, sysmon. Under it: → an M's
//!     `next` and `syscall` slots (teardown takes back the Ps handed to Ms), → an M's
//!     `retake_mu` (the test watchdog's `debug_state`), → the stack allocator (a stack of
//!     another size dropped by `gfput_global`). `MShared::hand_p` (→ `next`) and
//!     `MShared::unpark` are called after it is released.
//! 13. **Every G** (`Alloc::allgs`, alloc.rs). Never held with `synced`. → the stack allocator
//!     (teardown drops the stacks of goroutines that never ran, when not of the default size).
//! 14. **Goroutine names** (`Alloc::names`). Leaf.
//! 15. **An M's locks** (`MShared` in m.rs): `next` (a P handed over), `syscall` (the blocking
//!     section's slot), `retake_mu` (sysmon's handshake, preempt.rs). Leaves: each is taken
//!     alone, except under `synced` (12); the P taken out is handed on after release.
//! 16. **The stack allocator** (`stack/arena.rs`). Leaf.
//! 17. **A `Runtime`'s warm cache** (`Runtime::warm`, mod.rs), **goexec-net's limits**. Leaves.
//! 18. **The debugger's registries** (`RUNTIMES`, `ALLMS` in debug.rs): taken when a run
//!     starts or ends and when an M thread starts or exits, with no other lock held. Leaves.
//!     (A runtime's own G list is published under the `allgs` lock, 13, with no lock of its
//!     own.)
//!
//! # No inversions
//!
//! Every edge above goes down the list; the two places where a lower lock is asked for under a
//! higher one (a timer heap's sweep looking at a timed call's slot or a timer's state) use
//! `try_lock` and count a held lock as a live entry; and a swept timer's last reference is
//! never dropped under its adder's locks. `tests/rt_timer_locks.rs` has both cases that
//! deadlocked before (a deadline on a timer's own channel against its reset; a sweep dropping
//! the last sender of the channel whose lock its adder holds).
