//! `go!`: Go's `go` statement.
//!
//! ```text
//! go!(f(a, b))            // f, a, b evaluated here, in order; f(a, b) runs in a new goroutine
//! go!(obj.method(x))      // obj and x evaluated here; the method runs in the goroutine
//! go!({ ... })            // a block, moved into the goroutine
//! go!(move || ...)        // a closure, run in the goroutine
//! ```
//!
//! Each expands to `::goexec::spawn(...)` and gives its `JoinHandle`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Expr;

const FORMS: &str = "`go!` takes a call (`go!(f(a, b))`, `go!(obj.method(x))`), a block \
                     (`go!({ ... })`) or a closure (`go!(move || ...)`)";

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    if input.is_empty() {
        return Err(syn::Error::new(proc_macro2::Span::call_site(), FORMS));
    }
    let expr: Expr = syn::parse2(input)?;
    let spawn = quote!(::goexec::spawn);
    match expr {
        Expr::Call(call) => {
            // Go evaluates the function value and the arguments at the `go` statement, in
            // order; the call itself happens in the new goroutine.
            let f = format_ident!("__goexec_go_fn");
            let func = &call.func;
            let mut lets = vec![quote_spanned! {func.span()=> let #f = #func; }];
            let mut names = Vec::new();
            for (i, a) in call.args.iter().enumerate() {
                let n = format_ident!("__goexec_go_arg{}", i);
                lets.push(quote_spanned! {a.span()=> let #n = #a; });
                names.push(n);
            }
            Ok(quote! {{
                #(#lets)*
                #spawn(move || #f(#(#names),*))
            }})
        }
        Expr::MethodCall(call) => {
            let r = format_ident!("__goexec_go_recv");
            let receiver = &call.receiver;
            let mut lets = vec![quote_spanned! {receiver.span()=> let #r = #receiver; }];
            let mut names = Vec::new();
            for (i, a) in call.args.iter().enumerate() {
                let n = format_ident!("__goexec_go_arg{}", i);
                lets.push(quote_spanned! {a.span()=> let #n = #a; });
                names.push(n);
            }
            let method = &call.method;
            let turbofish = &call.turbofish;
            Ok(quote! {{
                #(#lets)*
                #spawn(move || #r.#method #turbofish (#(#names),*))
            }})
        }
        Expr::Block(b) => Ok(quote! { #spawn(move || #b) }),
        Expr::Closure(c) => {
            if !c.inputs.is_empty() {
                return Err(syn::Error::new(
                    c.inputs.span(),
                    "the closure given to `go!` takes no arguments: `go!(move || ...)`",
                ));
            }
            Ok(quote! { #spawn(#c) })
        }
        Expr::Path(p) => Err(syn::Error::new(
            p.span(),
            format!(
                "`go!` needs a call, not a function value: write `go!({}())`",
                quote!(#p).to_string().replace(' ', "")
            ),
        )),
        Expr::Macro(m) => Err(syn::Error::new(
            m.span(),
            "`go!` cannot split a macro call into a function and its arguments: wrap it in a \
             block, `go!({ ... })`",
        )),
        other => Err(syn::Error::new(other.span(), FORMS)),
    }
}
