//! Tasks: the handle to a goroutine's result, the builder that configures a goroutine, and
//! scoped goroutines ([`scope()`]), which may borrow their caller's data.

mod block_on;
mod join;
mod scope;
mod state;

pub use block_on::{block_on, spawn_future};
pub(crate) use join::{task, TaskPtr, TaskRef};
pub use join::{JoinError, JoinHandle};
pub(crate) use scope::spawn_scoped;
pub use scope::{scope, Scope, ScopedJoinHandle};

/// The goroutine builder, also at the crate root as [`goexec::Builder`](crate::Builder).
#[doc(inline)]
pub use crate::runtime::Builder;
