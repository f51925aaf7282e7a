//! Tasks: the handle to a goroutine's result.

mod join;

pub(crate) use join::{task, Run};
pub use join::{JoinError, JoinHandle};
