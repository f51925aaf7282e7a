//! The same workloads on goexec and on tokio, written idiomatically for each, for the compare
//! binary (`cargo run --release -p goexec-benches`) and the criterion benches
//! (`cargo bench -p goexec-benches`).

pub mod extras;
pub mod mem;
pub mod net;
pub mod rt;
pub mod sched;
pub mod timers;
