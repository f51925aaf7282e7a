//! Procedural macros for goexec: `go!`, `select!`, `#[goexec::main]` and `#[goexec::test]`.
//!
//! The macros arrive with the runtime features they expand to (see the project's issues); until
//! then this crate exports nothing. Use them through the `goexec` crate, which re-exports them.
