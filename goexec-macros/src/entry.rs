//! `#[goexec::main]` and `#[goexec::test]`: build a runtime and run the function's body as
//! its main goroutine.
//!
//! ```text
//! #[goexec::main]                                  // GOMAXPROCS, else the CPUs available
//! #[goexec::main(procs = 2, stack_size = 65536)]
//! #[goexec::test]                                  // a #[test] with a runtime of its own
//! ```

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Meta, ReturnType, Token};

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "#[goexec::main]",
            Kind::Test => "#[goexec::test]",
        }
    }
}

/// The attribute's arguments.
#[derive(Default)]
struct Args {
    procs: Option<Expr>,
    stack_size: Option<Expr>,
}

fn parse_args(kind: Kind, attr: TokenStream) -> syn::Result<Args> {
    let accepted = format!(
        "{} accepts `procs = N` and `stack_size = BYTES`, e.g. {}(procs = 2)]",
        kind.name(),
        kind.name().trim_end_matches(']')
    );
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(attr)
        .map_err(|e| syn::Error::new(e.span(), &accepted))?;
    let mut args = Args::default();
    for meta in metas {
        let Meta::NameValue(nv) = meta else {
            return Err(syn::Error::new(meta.span(), &accepted));
        };
        let path = &nv.path;
        let key = quote!(#path).to_string().replace(' ', "");
        let slot = match key.as_str() {
            "procs" => &mut args.procs,
            "stack_size" => &mut args.stack_size,
            _ => {
                return Err(syn::Error::new(
                    nv.path.span(),
                    format!("unknown argument `{key}`: {accepted}"),
                ))
            }
        };
        if slot.is_some() {
            return Err(syn::Error::new(
                nv.path.span(),
                format!("`{key}` is given twice"),
            ));
        }
        *slot = Some(nv.value);
    }
    Ok(args)
}

/// Expands the attribute; on an error, the error plus the function left as it was (made
/// plain), so that the error is the only one the user sees.
pub(crate) fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand_inner(kind, attr, item.clone()) {
        Ok(out) => out,
        Err(e) => {
            let err = e.into_compile_error();
            match syn::parse2::<ItemFn>(item.clone()) {
                Ok(mut f) => {
                    f.sig.asyncness = None;
                    quote!(#err #f)
                }
                Err(_) => quote!(#err #item),
            }
        }
    }
}

fn expand_inner(kind: Kind, attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(kind, attr)?;
    let func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if let Some(a) = sig.asyncness {
        return Err(syn::Error::new(
            a.span(),
            format!(
                "{} goes on a plain `fn`, not an `async fn`: its body runs as a goroutine and \
                 can block",
                kind.name()
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("{} goes on a function without parameters", kind.name()),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!(
                "{} goes on a function without generic parameters",
                kind.name()
            ),
        ));
    }
    if matches!(kind, Kind::Main) && sig.ident != "main" {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[goexec::main] goes on `fn main()`; for tests use #[goexec::test]",
        ));
    }

    // A literal 0 is caught here, where the user wrote it; any other value at run time, by
    // the builder.
    if let Some(Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(n),
        ..
    })) = &args.procs
    {
        if n.base10_parse::<u64>().is_ok_and(|v| v == 0) {
            return Err(syn::Error::new(
                n.span(),
                format!(
                    "{}: `procs` must be at least 1 (it is GOMAXPROCS: how many goroutines run at once)",
                    kind.name()
                ),
            ));
        }
    }
    let mut builder = quote!(::goexec::Runtime::builder());
    if let Some(p) = &args.procs {
        builder = quote!(#builder.procs(#p));
    }
    if let Some(s) = &args.stack_size {
        builder = quote!(#builder.stack_size(#s));
    }
    let what = kind.name();
    let build = quote! {
        let __goexec_rt = #builder
            .build()
            .unwrap_or_else(|e| ::core::panic!("{}: cannot build the runtime: {}", #what, e));
    };
    let body = &func.block;
    let attrs = &func.attrs;
    let vis = &func.vis;
    let ident = &sig.ident;
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => quote!(),
    };
    let out = match &sig.output {
        ReturnType::Default => quote! {
            #test_attr
            #(#attrs)*
            #vis fn #ident() {
                #build
                __goexec_rt.run(move || #body)
            }
        },
        ReturnType::Type(_, ty) => {
            // The body's value may not be Send (`Box<dyn Error>`), so it is reported where it
            // is made, in the goroutine, as Rust's own main would (`Error: ...` and a failure
            // status), and only the exit code comes back.
            quote! {
                #test_attr
                #(#attrs)*
                #vis fn #ident() -> ::std::process::ExitCode {
                    #build
                    __goexec_rt.run(move || {
                        let __goexec_result: #ty = (move || -> #ty #body)();
                        ::std::process::Termination::report(__goexec_result)
                    })
                }
            }
        }
    };
    Ok(out)
}
