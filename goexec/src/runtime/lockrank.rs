//! The lock order (Go: `lockrank.go`): every lock goexec takes, and which may be taken while
//! another is held. Documentation only; nothing checks it at run time.
//!
//! Outermost first. A lock may be taken while holding only locks listed above it, and only
//! along the edges named; a *leaf* takes nothing while held (waking a goroutine or a thread
//! counts as taking what `goready` takes: `Sched::synced`, and `MShared::next` after it). Every lock is
//! a `std::sync::Mutex`; "user code" is a waker or a value's `Drop`, which may take anything.
//!
//! 1. **`sync::Cond`'s queue.** `Cond::wait` releases the user's `sync::Mutex` while holding
//!    it: → that mutex's queue (4), and the wake that unlock makes (→ 13).
//! 2. **A deadline's timer slot** (`CallSlot::f` in `timers.rs`: channel operations with a
//!    deadline, socket waits). Held while its callback runs, which takes the channel's state (5)
//!    or the descriptor's (8) and wakes the waiter (→ 13). The owner cancels it (taking it) only
//!    after releasing those. Taken with `try_lock` under a timer heap (10), which never waits.
//! 3. **A `time::Timer`'s state** (`TimerShared::state`). Firing, stopping and resetting hold it
//!    while they send on or drain the timer's channel: → that channel's state (5), and the
//!    wake the send makes (→ 13).
//! 4. **The other `sync` primitives' state**: `Mutex`'s queue, `RwLock`, `WaitGroup`,
//!    `Semaphore`, `Once`. Leaves: each wakes its waiters after releasing it.
//! 5. **A channel's state** (`chan/hchan.rs`). `select` holds several, taken in order of the
//!    channels' addresses (Go's `sellock`). `close`, and `select` completing a case, wake
//!    waiters while holding it (→ 13, and a task's waker: user code); an operation with a
//!    deadline arms its timer under it (→ 10, 12, 13).
//! 6. **The poller** (`Netpoll::poll` in `netpoll.rs`): held while polling; → the descriptor
//!    table (7). Taken with `try_lock`, except by the fallback thread of a shut-down runtime.
//! 7. **The descriptor table** (`Netpoll::descs`): → descriptor states (8), when polling and
//!    when the runtime shuts down (`orphan`).
//! 8. **A socket descriptor's state** (`PollDesc::state`). A wait holds it while it starts the
//!    fallback thread (→ 9) and while it arms its deadline (→ 10, 12, 13); the waiters it
//!    readies are woken after it is released.
//! 9. **The fallback thread's flag** (`Netpoll::fallback`). Leaf.
//! 10. **A P's timer heap** (`PShared::timers`). Adding may sweep stale entries: → a Sleep's
//!     state (11), a deadline's slot (2, `try_lock`), a timer's state (3: see below). Entries
//!     dropped under it (by a sweep; all of them at teardown) may drop a timer's last
//!     reference, and with it its channel's last sender, which closes the channel: → (5, see
//!     below). Due timers fire after it is released.
//! 11. **A `time::Sleep`'s state** (`WakeTimer::state`). Leaf: it wakes after releasing.
//! 12. **The timer sleeper** (`Idle::sleeper`, idle.rs). Leaf (it only unparks the sleeper).
//! 13. **The scheduler** (`Sched::synced`: global queue, idle lists, free lists, every M).
//!     Taken by `wakep`, `goready`, spawns and exits, idle Ms, sysmon. Under it: → an M's
//!     `next` and `syscall` slots (teardown takes back the Ps handed to Ms), → an M's
//!     `retake_mu` (the test watchdog's `debug_state`), → the stack allocator (a stack of
//!     another size dropped by `gfput_global`). `MShared::hand_p` (→ `next`) and
//!     `MShared::unpark` are called after it is released.
//! 14. **Every G** (`Alloc::allgs`, alloc.rs). Never held with `synced`. → the stack allocator
//!     (teardown drops the stacks of goroutines that never ran, when not of the default size).
//! 15. **Goroutine names** (`Alloc::names`). Leaf.
//! 16. **An M's locks** (`MShared` in m.rs): `next` (a P handed over), `syscall` (the blocking
//!     section's slot), `retake_mu` (sysmon's handshake, preempt.rs). Leaves: each is taken
//!     alone, except under `synced` (13); the P taken out is handed on after release.
//! 17. **The stack allocator** (`stack/arena.rs`). Leaf.
//! 18. **A `Runtime`'s warm cache** (`Runtime::warm`, mod.rs), **goexec-net's limits**. Leaves.
//!
//! # Known inversions
//!
//! - A timer's channel (5) → a P's timer heap (10) → that timer's state (3), against (3) → (5):
//!   `t.receiver().recv_timeout(..)` arms its deadline under the channel's lock; the push may
//!   sweep the heap and look at a stale entry of the same timer (`Action::is_dead` locks the
//!   timer's state), while `t.reset(..)` or a firing holds that state and drains or sends on
//!   the channel. The two can deadlock when both hit one timer at once. `is_dead` taking the
//!   timer's state with `try_lock`, and counting a held one as live (as a deadline's slot
//!   does), would remove the edge.
//! - A P's timer heap (10) → a channel (5) when a sweep or teardown drops a timer's last
//!   reference, against (5) → (10) for deadlines: only a channel whose timer is gone, received
//!   from with a deadline through a clone of its receiver, meets both.
