//! Go's `sync` package: [`Mutex`], [`RwLock`], [`WaitGroup`], [`Once`], [`Cond`] and
//! [`Semaphore`]; and [`ErrGroup`] (Go: `golang.org/x/sync/errgroup`).
//!
//! Waiting parks only the goroutine, never its thread; on a plain thread it parks the thread,
//! so these work between goroutines (of any runtime) and threads. A goroutine blocked in one
//! shows its wait in [`runtime::dump`](crate::runtime::dump) as Go names it
//! (`sync.Mutex.Lock`, `sync.WaitGroup.Wait`, `semacquire`, ...).
//!
//! There is no poisoning: as in Go, a panic while holding a lock releases it.

mod cond;
mod errgroup;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod waitgroup;

pub use cond::Cond;
pub use errgroup::ErrGroup;
pub use mutex::{Mutex, MutexGuard};
pub use once::Once;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;
