//! The runtimes the workloads run on, built once per worker count and reused by every sample,
//! as tokio's own benches do (`rt.block_on` inside `b.iter`): goexec's `Runtime` keeps its
//! goroutines' records and stacks warm between `run` calls, tokio keeps its allocator warm.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The goexec runtime with `procs` Ps.
pub fn goexec(procs: usize) -> &'static goexec::Runtime {
    static RTS: OnceLock<Mutex<HashMap<usize, &'static goexec::Runtime>>> = OnceLock::new();
    let mut map = RTS
        .get_or_init(Default::default)
        .lock()
        .expect("runtime map");
    map.entry(procs).or_insert_with(|| {
        Box::leak(Box::new(
            goexec::Runtime::builder()
                .procs(procs)
                .build()
                .expect("goexec runtime"),
        ))
    })
}

/// A tokio runtime for `workers` workers: `current_thread` for 1 (goexec's procs 1 also runs
/// every goroutine on one thread), `multi_thread` otherwise. `enable_all` for the network and
/// timer workloads.
pub fn tokio_new(workers: usize) -> tokio::runtime::Runtime {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("tokio runtime")
}

/// The shared tokio runtime for `workers` workers.
pub fn tokio(workers: usize) -> &'static tokio::runtime::Runtime {
    static RTS: OnceLock<Mutex<HashMap<usize, &'static tokio::runtime::Runtime>>> = OnceLock::new();
    let mut map = RTS
        .get_or_init(Default::default)
        .lock()
        .expect("runtime map");
    map.entry(workers)
        .or_insert_with(|| Box::leak(Box::new(tokio_new(workers))))
}
