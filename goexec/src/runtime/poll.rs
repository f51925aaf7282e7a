//! Where the scheduler polls the network (the poller itself is netpoll.rs). Go polls in
//! `findRunnable`, without blocking while there may be other work and blocking when an M has
//! nothing else to do, and from sysmon when nobody has polled for 10 ms; goexec does the same:
//! `netpoll_nonblock` for `find_runnable` (sched.rs) and sysmon, `netpoll_block` for one idle
//! M in `stopm` (idle.rs), which also keeps the timer sleeper's deadline meanwhile.

use super::m::MLocal;
use super::netpoll::Netpoll;
use super::park::Waiter;
use super::sched::Sched;
use super::timers;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl Sched {
    /// The runtime's network poller, made on first use.
    pub(crate) fn netpoll(&self) -> std::io::Result<&Arc<Netpoll>> {
        if let Some(np) = self.netpoll.get() {
            return Ok(np);
        }
        let np = Arc::new(Netpoll::new()?);
        Ok(self.netpoll.get_or_init(|| np))
    }

    /// Polls the network without blocking if anyone waits on it and no M is blocked in the
    /// poll. Returns the waiters it made ready, if any.
    pub(crate) fn netpoll_nonblock(&self) -> Option<Vec<Waiter>> {
        let np = self.netpoll.get()?;
        if np.waiters.load(Ordering::Acquire) == 0 || np.blocked.load(Ordering::Acquire) {
            return None;
        }
        np.poll(Some(Duration::ZERO))
            .filter(|ready| !ready.is_empty())
    }

    /// The parking M `m` blocks in the network poll instead of a plain park, when someone
    /// waits on the network and no other M is blocked there: until an event, the next timer
    /// (`next`; 0: none), or a wake (`MShared::unpark` breaks the poll). Returns what the poll
    /// readied (the caller takes a P to run it, or queues it); None if it did not poll (park
    /// as usual).
    pub(super) fn netpoll_block(&self, m: &MLocal, next: u64) -> Option<Vec<Waiter>> {
        let np = self.netpoll.get()?;
        if np.waiters.load(Ordering::Acquire) == 0 || (next != 0 && next <= timers::nanotime()) {
            return None;
        }
        if np
            .blocked
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return None;
        }
        // The timer sleeper's role too, so that an earlier timer breaks the poll; if another
        // M has it, that M runs the timers.
        let sleeper = next != 0 && self.become_sleeper(&m.shared, next);
        m.shared.enter_netpoll(&np.waker);
        // Looked at after announcing ourselves (SeqCst, as the waker's side): a P handed over,
        // shutdown, or an earlier timer added meanwhile, and we poll without blocking.
        let again = self.next_timer();
        let now = timers::nanotime();
        let timeout = if m.shared.next_pending()
            || self.is_shut_down()
            || (sleeper && again != 0 && again < next)
        {
            Some(Duration::ZERO)
        } else if sleeper {
            Some(Duration::from_nanos(next.saturating_sub(now)))
        } else {
            None
        };
        let ready = np.poll(timeout);
        m.shared.leave_netpoll();
        if sleeper {
            self.leave_sleeper(&m.shared);
        }
        np.blocked.store(false, Ordering::SeqCst);
        Some(ready.unwrap_or_default())
    }
}
