//! Runnable goexec examples: `cargo run --release -p goexec-examples --example NAME`.
//!
//! - `coroutines`: a generator pipeline of stackful coroutines switching on one thread.
