//! The runtime's thread-local state: the bottom layer's accessors (`sys/tls.rs`, which says
//! how they stay correct when a goroutine changes threads) and the goroutine running on this
//! thread.

pub(crate) use crate::sys::tls::{
    current_m, set_current_m, set_running_stack, set_system_code, system_code, with_thread_locals,
};

#[cfg(test)]
pub(crate) use crate::sys::tls::running_stack;

/// The goroutine running on the calling thread, if any.
pub(crate) fn current_g() -> Option<super::g::GRef> {
    super::m::current_g()
}
