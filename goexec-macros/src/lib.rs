//! Procedural macros for goexec: `select!` now; `go!`, `#[goexec::main]` and
//! `#[goexec::test]` arrive with their issue. Use them through the `goexec` crate, which
//! re-exports them (`goexec::select!`); the expansions name `::goexec`.

mod select;

use proc_macro::TokenStream;

/// Go's `select` statement, as an expression. See `goexec::select!` for the documentation.
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
