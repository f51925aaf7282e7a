//! The count of spinning Ms (Go: `sched.nmspinning`) and the steps of the protocol on it.
//! Why Ms spin, the cap on how many, and the race between a spinner giving up and a submitter
//! waking nobody are in the scheduler's notes (sched.rs, "Spinning, and the Delicate dance");
//! the steps are used by `find_runnable` (sched.rs) and by `wakep`, `startm` and
//! `reset_spinning` (idle.rs).
//!
//! Every access that takes part in the Delicate dance is SeqCst. Under `cfg(loom)` the counter
//! is loom's, and the model below drives these methods against a submitter.

use crate::loom::sync::atomic::{fence, AtomicUsize, Ordering};

/// The number of spinning Ms, plus the Ms woken to spin that have not started yet (`wakep`
/// counts the M it wakes before the M runs). Go: `sched.nmspinning`.
pub(super) struct Spinning {
    n: AtomicUsize,
}

impl Spinning {
    /// No M spinning.
    pub(super) fn new() -> Spinning {
        Spinning {
            n: AtomicUsize::new(0),
        }
    }

    /// How many Ms spin. SeqCst: the deadlock check reads it among other SeqCst counters.
    pub(super) fn count(&self) -> usize {
        self.n.load(Ordering::SeqCst)
    }

    /// How many Ms spin, as a hint for reports (schedtrace): no ordering.
    pub(super) fn count_hint(&self) -> usize {
        self.n.load(Ordering::Relaxed)
    }

    /// An M out of work, not spinning yet, asks to spin with `busy` Ps busy: it may while fewer
    /// than half of them have a spinner (`2 * nmspinning < busy`), and then counts itself.
    /// True: the M is now a spinner. Go: findRunnable's check, then `becomeSpinning`.
    ///
    /// A heuristic, as in Go: the check and the count are two steps, so Ms that check at the
    /// same moment may all pass it (the loom model reaches that).
    pub(super) fn try_become_spinning(&self, busy: usize) -> bool {
        if 2 * self.n.load(Ordering::SeqCst) < busy {
            self.become_spinning();
            true
        } else {
            false
        }
    }

    /// The M spins again: it gave up, then found work in the re-check and took an idle P
    /// back. Go: `becomeSpinning`.
    pub(super) fn become_spinning(&self) {
        self.n.fetch_add(1, Ordering::SeqCst);
    }

    /// `wakep`'s claim: true if no M spins and we are the one to wake an M to spin (counted
    /// as spinning from now on, so that no other submitter wakes one too). Go: wakep's
    /// `nmspinning.Load() != 0 || !nmspinning.CompareAndSwap(0, 1)`; the load first keeps
    /// the common case (a spinner exists) free of a locked instruction.
    ///
    /// The submitter's half of the Delicate dance: it published its work with a SeqCst write
    /// before calling this.
    pub(super) fn claim_wake(&self) -> bool {
        self.n.load(Ordering::SeqCst) == 0
            && self
                .n
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// A spinner (or a claim from [`Spinning::claim_wake`] that found no P to use) stops
    /// counting. True: it was the last; with work around, someone must wake another
    /// (`reset_spinning`). Go: `nmspinning.Add(-1)`.
    pub(super) fn stop_spinning(&self) -> bool {
        let prev = self.n.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(prev > 0, "nmspinning would go negative");
        prev == 1
    }

    /// The spinner's half of the Delicate dance: a spinner that found nothing and put its P
    /// in the idle list stops counting, then (the caller) looks at every queue again. The
    /// fence keeps those re-reads after the decrement for the queues that are not read with
    /// SeqCst (a local queue's indices). Go: findRunnable's `nmspinning.Add(-1)` before its
    /// re-checks.
    pub(super) fn stop_spinning_before_recheck(&self) {
        self.stop_spinning();
        fence(Ordering::SeqCst);
    }
}

/// The loom model: `RUSTFLAGS="--cfg loom" cargo test -p goexec --lib --release loom_tests`.
///
/// The scheduler around the counter is reduced to what the Delicate dance reads and writes:
/// one run queue (a count of queued Gs, published and re-read with SeqCst as `runnext` and
/// `runqsize` are), the idle Ps (a count, written and read with SeqCst as `npidle` is), and
/// the Ms `wakep` starts (counted: a started M spins, so it finds whatever is queued). The
/// counter is the real [`Spinning`], driven by the steps of `wakep`, `find_runnable` and
/// `reset_spinning`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::Spinning;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    struct World {
        nmspinning: Spinning,
        /// Queued Gs.
        work: AtomicUsize,
        /// Idle Ps. The real list is under the scheduler's lock, with this count beside it,
        /// written (SeqCst) under the lock and read without it; here the count is the list.
        npidle: AtomicUsize,
        /// Ms started by `wakep`.
        woken: AtomicUsize,
    }

    impl World {
        /// `idle` of the Ps idle, nothing queued, no M spinning.
        fn new(idle: usize) -> Arc<World> {
            let w = World {
                nmspinning: Spinning::new(),
                work: AtomicUsize::new(0),
                npidle: AtomicUsize::new(idle),
                woken: AtomicUsize::new(0),
            };
            // Loom takes a SeqCst load or store for an AcqRel one, except that a SeqCst load
            // does not return a store older than the newest SeqCst store: a location whose
            // every store is SeqCst is read as under C11's total order. An initial value is
            // no SeqCst store, so one is stored over it (the real counts are written long
            // before any of this, by threads that happen before these ones).
            w.work.store(0, Ordering::SeqCst);
            w.npidle.store(idle, Ordering::SeqCst);
            Arc::new(w)
        }

        fn get(a: &AtomicUsize) -> usize {
            a.load(Ordering::SeqCst)
        }

        /// Sched::pidleput.
        fn pidleput(&self) {
            self.npidle.fetch_add(1, Ordering::SeqCst);
        }

        /// Sched::pidleget.
        fn pidleget(&self) -> bool {
            Self::take_one(&self.npidle)
        }

        /// runqput with `next`, or globrunqput: the SeqCst publication.
        fn submit(&self) {
            self.work.fetch_add(1, Ordering::SeqCst);
        }

        /// runqget, or a steal: takes a G if one is queued.
        fn take(&self) -> bool {
            Self::take_one(&self.work)
        }

        /// Takes one from a count that is not 0.
        fn take_one(a: &AtomicUsize) -> bool {
            a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }

        /// Sched::wakep (startm: an M starts with the P, counted as spinning).
        fn wakep(&self) {
            if self.npidle.load(Ordering::SeqCst) == 0 {
                return;
            }
            if !self.nmspinning.claim_wake() {
                return;
            }
            if self.pidleget() {
                self.woken.fetch_add(1, Ordering::SeqCst);
            } else {
                self.nmspinning.stop_spinning();
            }
        }

        /// reset_spinning.
        fn reset_spinning(&self) {
            if self.nmspinning.stop_spinning() {
                self.wakep();
            }
        }

        /// A spinning M's last look before it parks (find_runnable's steps 5 and 6, once):
        /// steal, else give up the P and do the spinner's half of the dance. True: it took
        /// the G (and, having found work, stopped spinning).
        fn spinner_gives_up(&self) -> bool {
            if self.take() {
                self.reset_spinning();
                return true;
            }
            self.pidleput();
            self.nmspinning.stop_spinning_before_recheck();
            if Self::get(&self.work) > 0 && self.pidleget() {
                // Spinning again: back to the top of find_runnable, where it steals.
                self.nmspinning.become_spinning();
                if self.take() {
                    self.reset_spinning();
                    return true;
                }
                // Someone else took it. A real M goes round again, and looks once more
                // after it stops spinning; the model gives up (a stricter test).
                self.pidleput();
                self.nmspinning.stop_spinning_before_recheck();
            }
            false
        }
    }

    /// The lost wakeup: spinners give up while a submitter queues a G and calls wakep (one
    /// P busy with the submitter, each spinner's P going idle; one spinner, then two, which
    /// also race each other for the G and the idle Ps). In every interleaving the G is taken
    /// by a spinner or an M is started for it: nothing is left queued with nobody spinning
    /// and nobody woken. And the counter is exact: what is left counted is the M started (it
    /// spins until it runs).
    #[test]
    fn spinners_give_up_while_work_arrives() {
        for spinners in [1, 2] {
            let mut model = loom::model::Builder::new();
            if spinners > 1 {
                // Every interleaving of three threads this long is out of reach (hours); five
                // preemptions take a second or two, and the broken dances this model catches
                // (the re-check before the decrement, a Relaxed decrement) fail within two.
                model.preemption_bound = Some(5);
            }
            model.check(move || {
                let w = World::new(0);
                let busy = 1 + spinners;
                for _ in 0..spinners {
                    assert!(w.nmspinning.try_become_spinning(busy), "below the cap");
                }
                let ms: Vec<_> = (0..spinners)
                    .map(|_| {
                        let w = w.clone();
                        thread::spawn(move || w.spinner_gives_up())
                    })
                    .collect();
                w.submit();
                w.wakep();
                let took = ms
                    .into_iter()
                    .map(|m| m.join().unwrap())
                    .filter(|&t| t)
                    .count();
                let woken = World::get(&w.woken);
                let queued = World::get(&w.work);
                assert!(
                    queued == 0 || woken > 0,
                    "{spinners} spinners: the G is queued, nobody spins, nobody was woken"
                );
                assert_eq!(took + queued, 1, "{spinners} spinners: Gs taken and left");
                assert!(
                    woken <= 1,
                    "{spinners} spinners: one M woken to spin at a time"
                );
                assert_eq!(
                    w.nmspinning.count(),
                    woken,
                    "{spinners}: spinners left counted"
                );
            });
        }
    }

    /// Two submitters queue a G each and call wakep, with Ps idle and nobody spinning: exactly
    /// one M is started (the CAS 0 -> 1), which finds both Gs.
    #[test]
    fn two_submitters_wake_one_m() {
        loom::model(|| {
            let w = World::new(2);
            let other = w.clone();
            let t = thread::spawn(move || {
                other.submit();
                other.wakep();
            });
            w.submit();
            w.wakep();
            t.join().unwrap();
            assert_eq!(World::get(&w.woken), 1, "Ms started");
            assert_eq!(w.nmspinning.count(), 1);
        });
    }

    /// The cap (`2 * nmspinning < busy`): with 2 Ps busy, one spinner is allowed. Two Ms
    /// out of work check it at once: at least one spins (the first check always passes),
    /// and one whose check comes after the other is counted is refused. The check and the
    /// count are two steps, as in Go, so Ms checking together may both pass: the model
    /// records that it reaches both outcomes, so that a change to the cap (a strict one, or
    /// one that lets two spin) is a deliberate one. An M that checks once the spinners are
    /// counted is refused. The spinners then stop together: exactly one of them is the last.
    #[test]
    fn spin_cap() {
        use std::sync::atomic::AtomicBool;
        static REFUSED: AtomicBool = AtomicBool::new(false);
        static OVERSHOT: AtomicBool = AtomicBool::new(false);
        const BUSY: usize = 2;
        loom::model(|| {
            let w = World::new(0);
            let other = w.clone();
            let m = thread::spawn(move || other.nmspinning.try_become_spinning(BUSY));
            let spun = [w.nmspinning.try_become_spinning(BUSY), m.join().unwrap()];
            let n = spun.iter().filter(|&&s| s).count();
            assert!(n >= 1, "nobody spins");
            assert_eq!(w.nmspinning.count(), n);
            let seen = if n == 1 { &REFUSED } else { &OVERSHOT };
            seen.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(!w.nmspinning.try_become_spinning(BUSY), "past the cap");
            let other = w.clone();
            let m = (n > 1).then(|| thread::spawn(move || other.nmspinning.stop_spinning()));
            let mut last = usize::from(w.nmspinning.stop_spinning());
            if let Some(m) = m {
                last += usize::from(m.join().unwrap());
            }
            assert_eq!(last, 1, "last spinners");
            assert_eq!(w.nmspinning.count(), 0);
        });
        let seen = |b: &AtomicBool| b.load(std::sync::atomic::Ordering::Relaxed);
        assert!(seen(&REFUSED), "the cap never refused the second M");
        assert!(
            seen(&OVERSHOT),
            "no interleaving let two checks pass the cap together"
        );
    }
}
