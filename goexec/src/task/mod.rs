//! Tasks: the handle to a goroutine's result.

mod join;

pub(crate) use join::{task, TaskRef};
pub use join::{JoinError, JoinHandle};
