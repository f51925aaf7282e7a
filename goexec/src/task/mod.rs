//! Tasks: the handle to a goroutine's result, and the builder that configures a goroutine.

mod block_on;
mod join;
mod state;

pub use block_on::{block_on, spawn_future};
pub(crate) use join::{task, TaskPtr, TaskRef};
pub use join::{JoinError, JoinHandle};

/// The goroutine builder, also at the crate root as [`goexec::Builder`](crate::Builder).
#[doc(inline)]
pub use crate::runtime::Builder;
