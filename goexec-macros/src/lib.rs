//! Procedural macros for goexec: `go!`, `select!`, `#[goexec::main]` and `#[goexec::test]`.
//! Use them through the `goexec` crate, which re-exports them (`goexec::go!`,
//! `goexec::select!`, `#[goexec::main]`, `#[goexec::test]`); the expansions name `::goexec`.

mod entry;
mod go;
mod select;

use proc_macro::TokenStream;

/// Go's `select` statement, as an expression. See `goexec::select!` for the documentation.
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Go's `go` statement. See `goexec::go!` for the documentation.
#[proc_macro]
pub fn go(input: TokenStream) -> TokenStream {
    go::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Runs `fn main` as the main goroutine of a runtime. See `goexec::main`.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Main, attr.into(), item.into()).into()
}

/// A test whose body runs as the main goroutine of its own runtime. See `goexec::test`.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Test, attr.into(), item.into()).into()
}
