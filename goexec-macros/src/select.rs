//! `select!`: parses the arms and lowers them onto `goexec::chan::select`.
//!
//! ```text
//! select! {
//!     recv(rx) -> v => body,
//!     send(tx, value) -> r => body,
//!     default => body,
//! }
//! ```
//!
//! The channel expressions and the values to send are evaluated once, in source order, before
//! the select starts (Go evaluates them the same way); a value whose case is not chosen is
//! dropped.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Pat, Token};

enum Op {
    Recv(Expr),
    Send(Expr, Expr),
}

struct Case {
    op: Op,
    pat: Pat,
    body: Expr,
}

struct Select {
    cases: Vec<Case>,
    default: Option<Expr>,
}

const ARMS: &str = "expected a `select!` arm: `recv(rx) -> v => ...`, \
                    `send(tx, value) -> r => ...` or `default => ...`";

impl Parse for Select {
    fn parse(input: ParseStream) -> syn::Result<Select> {
        let mut cases = Vec::new();
        let mut default: Option<Expr> = None;
        while !input.is_empty() {
            let kw: Ident = input.parse().map_err(|e| syn::Error::new(e.span(), ARMS))?;
            match kw.to_string().as_str() {
                "default" => {
                    if default.is_some() {
                        return Err(syn::Error::new(
                            kw.span(),
                            "`select!` has more than one `default` arm",
                        ));
                    }
                    if input.peek(syn::token::Paren) {
                        return Err(syn::Error::new(
                            input.span(),
                            "`default` takes no arguments: `default => ...`",
                        ));
                    }
                    arrow(input, &kw, "default")?;
                    default = Some(body(input)?);
                }
                "recv" | "send" => {
                    let what = kw.to_string();
                    let content;
                    syn::parenthesized!(content in input);
                    let args = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
                    let op =
                        match (what.as_str(), args.len()) {
                            ("recv", 1) => Op::Recv(args.into_iter().next().unwrap()),
                            ("recv", _) => {
                                return Err(syn::Error::new(
                                    kw.span(),
                                    "`recv` takes one channel: `recv(rx) -> v => ...`",
                                ))
                            }
                            (_, 2) => {
                                let mut it = args.into_iter();
                                Op::Send(it.next().unwrap(), it.next().unwrap())
                            }
                            _ => return Err(syn::Error::new(
                                kw.span(),
                                "`send` takes a channel and a value: `send(tx, value) -> r => ...`",
                            )),
                        };
                    if !input.peek(Token![->]) {
                        return Err(syn::Error::new(
                            input.span(),
                            format!(
                                "expected `-> pattern` after `{what}(...)`: the case's result \
                                 (write `-> _` to ignore it)"
                            ),
                        ));
                    }
                    input.parse::<Token![->]>()?;
                    let pat = Pat::parse_single(input)?;
                    arrow(input, &kw, &what)?;
                    cases.push(Case {
                        op,
                        pat,
                        body: body(input)?,
                    });
                }
                _ => return Err(syn::Error::new(kw.span(), ARMS)),
            }
        }
        Ok(Select { cases, default })
    }
}

/// The `=>` of an arm.
fn arrow(input: ParseStream, kw: &Ident, what: &str) -> syn::Result<()> {
    if !input.peek(Token![=>]) {
        return Err(syn::Error::new(
            if input.is_empty() {
                kw.span()
            } else {
                input.span()
            },
            format!("expected `=>` and the arm's body after the `{what}` case"),
        ));
    }
    input.parse::<Token![=>]>()?;
    Ok(())
}

/// An arm's body and the comma after it (optional after a block, and after the last arm).
fn body(input: ParseStream) -> syn::Result<Expr> {
    let e: Expr = input.parse()?;
    let block_like = matches!(
        e,
        Expr::Block(_)
            | Expr::If(_)
            | Expr::Match(_)
            | Expr::Loop(_)
            | Expr::While(_)
            | Expr::ForLoop(_)
            | Expr::Unsafe(_)
    );
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    } else if !input.is_empty() && !block_like {
        return Err(syn::Error::new(
            input.span(),
            "expected `,` after a `select!` arm",
        ));
    }
    Ok(e)
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let sel: Select = syn::parse2(input)?;
    let krate = quote!(::goexec);
    let mut setup = Vec::new();
    let mut refs = Vec::new();
    let mut arms = Vec::new();
    for (i, case) in sel.cases.iter().enumerate() {
        let ch = format_ident!("__goexec_select_ch{}", i);
        let c = format_ident!("__goexec_select_case{}", i);
        match &case.op {
            Op::Recv(rx) => {
                let sp = rx.span();
                setup.push(quote_spanned! {sp=>
                    let #ch = &(#rx);
                });
                setup.push(quote_spanned! {sp=>
                    let mut #c = #krate::chan::RecvCase::new(#ch);
                });
            }
            Op::Send(tx, v) => {
                let sp = tx.span();
                let val = format_ident!("__goexec_select_val{}", i);
                setup.push(quote_spanned! {sp=>
                    let #ch = &(#tx);
                });
                setup.push(quote! { let #val = #v; });
                setup.push(quote_spanned! {sp=>
                    let mut #c = #krate::chan::SendCase::new(#ch, #val);
                });
            }
        }
        refs.push(quote! { &mut #c as &mut dyn #krate::chan::SelectCase });
        let (pat, body) = (&case.pat, &case.body);
        arms.push(quote! {
            ::core::option::Option::Some(#i) => {
                #[allow(unused_variables)]
                let #pat = #c.result();
                #body
            }
        });
    }
    let has_default = sel.default.is_some();
    let none_arm = match &sel.default {
        Some(d) => quote! { ::core::option::Option::None => { #d } },
        None => quote! {
            ::core::option::Option::None => ::core::unreachable!("select without default"),
        },
    };
    if sel.cases.is_empty() && !has_default {
        // `select {}`: blocks forever. A loop, so that the expression has type `!` without a
        // format string whose meaning depends on the caller's edition.
        return Ok(quote! {
            loop {
                #krate::chan::select(&mut [], false);
            }
        });
    }
    let span = Span::call_site();
    Ok(quote_spanned! {span=> {
        #(#setup)*
        match #krate::chan::select(&mut [#(#refs),*], #has_default) {
            #(#arms)*
            #none_arm
            _ => ::core::unreachable!("select chose no case of its own"),
        }
    }})
}
