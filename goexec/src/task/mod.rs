//! Tasks: the handle to a goroutine's result.

mod block_on;
mod join;
mod state;

pub use block_on::{block_on, spawn_future};
pub(crate) use join::{task, TaskPtr, TaskRef};
pub use join::{JoinError, JoinHandle};
