//! Tasks: the handle to a goroutine's result.

mod join;

pub(crate) use join::join_state;
pub use join::{JoinError, JoinHandle};
