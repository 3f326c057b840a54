//! Generating the code: the function as written, with a guard taken first.
//!
//! ```text
//! #[attrs] vis sig {                          // the original braces
//!     match <acquire> {
//!         __lockutils_guard => { original body }
//!     }
//! }
//! ```
//!
//! No closure wraps the body, so `return`, `?`, `self`, `Self` and borrows
//! behave exactly as written, and the guard drops on every exit (return,
//! `?`, panic, a dropped future). The body is a match arm, not a block after
//! a `let`: an arm's body is its own temporary scope, so the temporaries of
//! the body's tail expression (a `MutexGuard`, a `BufWriter`) are dropped
//! before the guard, while the lock is held; after a `let`, the tail of the
//! function body outlives its locals (editions before 2024). The function's
//! return type still reaches the body, so coercions (`Box<dyn Trait>`) work.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens, TokenStreamExt};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::item::{future_block, Body, Func};
use crate::validate::{Coordination, LockPath, Name, OnError, Options};

/// The function with a guard taken before its body: a pure function of
/// what validation and parsing returned.
pub(crate) fn expand(opts: &Options, func: Func) -> TokenStream {
    let awaits = func.is_async();
    let Func {
        outer_attrs,
        vis,
        sig,
        brace,
        inner_attrs,
        body,
    } = func;
    let acquire = acquire(opts, &sig, awaits);
    let mut out = quote!(#(#outer_attrs)* #vis #sig);
    brace.surround(&mut out, |t| {
        t.append_all(&inner_attrs);
        match body {
            Body::Stmts(stmts) => t.extend(guarded(&acquire, stmts)),
            Body::AsyncTrait { mut call, .. } => {
                // `#[async_trait]` ran first: the lock belongs in the future
                // it builds, awaited there, not around building it.
                let block = future_block(&mut call);
                let stmts = std::mem::take(&mut block.stmts);
                let body = guarded(&acquire, quote!(#(#stmts)*));
                block.stmts = vec![syn::Stmt::Expr(syn::Expr::Verbatim(body), None)];
                call.to_tokens(t);
            }
        }
    });
    out
}

/// `match <acquire> { __lockutils_guard => { body } }`: the guard is bound
/// for the arm, whose body is a temporary scope of its own, so everything the
/// body creates is dropped before the guard. The arm's braces are spanned at
/// the macro call: rustc's `unused_braces` (and clippy) leave braces a macro
/// made alone, while the user's braces around a one-expression body (`{ 1 }`)
/// would be reported with a fix that is not valid Rust.
///
/// No `#[allow(..)]` goes with it: a crate that `forbid`s a lint cannot
/// compile an `allow` of that lint (E0453), and rustc and clippy leave the
/// code a macro made alone; `tests/lints.rs` and `tests/forbidden_lints.rs`
/// keep every shape lint-free.
fn guarded(acquire: &TokenStream, body: TokenStream) -> TokenStream {
    let guard = internal("__lockutils_guard");
    let mut arm = quote!(#guard =>);
    syn::token::Brace(Span::call_site()).surround(&mut arm, |t| t.extend(body));
    quote! {
        match #acquire {
            #arm
        }
    }
}

/// An identifier of the expansion's own (a local, the guard) with mixed-site
/// hygiene: the body and the options' expressions cannot see it, and a
/// parameter or local of the same name neither shadows it nor is shadowed
/// by it.
pub(crate) fn internal(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// [`internal`], located at `span`: for a use whose type error belongs to
/// the user's expression there (`distributed = port` with a `u16`).
fn internal_at(name: &str, span: Span) -> Ident {
    Ident::new(name, Span::mixed_site().located_at(span))
}

/// The expression that takes the lock and yields its guard; `awaits` in an
/// async context.
fn acquire(opts: &Options, sig: &syn::Signature, awaits: bool) -> TokenStream {
    let k = &opts.krate;
    let p = quote!(#k::__private);
    let fn_name = sig.ident.unraw().to_string();
    let caller_id = internal("__LOCKUTILS_CALLER");
    let lock_id = internal("__LOCKUTILS_LOCK");
    let name_id = internal("__lockutils_name");
    let lock_path_id = internal("__lockutils_lock_path");
    let url_id = internal("__lockutils_url");
    let backend_id = internal("__lockutils_backend");
    // `str` through the facade too: a local `struct str;` does not change it.
    let caller = quote! {
        const #caller_id: &#p::str = #p::concat!(#p::module_path!(), "::", #fn_name);
    };
    let chain = chain(opts, &p);
    let take = match sig.asyncness {
        Some(a) => quote_spanned!(a.span=> lock_async().await),
        None if awaits => quote!(lock_async().await),
        None => quote!(lock()),
    };
    let check_registry = opts.semaphores.as_ref().map(|path| {
        // `semaphores` must be a `static`: a `const` Registry would be a new,
        // empty registry at every use. Taking its address rejects a `const`
        // at compile time ("cannot take address of a temporary") and costs
        // nothing at run time.
        quote_spanned! {path.span()=>
            let _: *const #p::Registry = #p::addr_of!(#path);
        }
    });
    // Every lock is a `LockOptions`: a `distributed` one on a coordination
    // URL's backend (in-process lock, then the ZooKeeper lock, under one
    // deadline).
    let options = quote!(#p::LockOptions);
    let (setup, taken) = if opts.is_static() {
        let Name::Static(name) = &opts.name else {
            unreachable!("static names only")
        };
        let setup = quote! {
            static #lock_id: #p::StaticLock = #p::StaticLock::new(#options::new(#name) #chain);
        };
        (setup, quote!(#lock_id.#take))
    } else {
        let name = match &opts.name {
            Name::Static(lit) => quote!(#lit),
            Name::Format(lit) => quote!(&#p::format!(#lit)),
            Name::Expr(expr) => quote_spanned!(expr.span()=> &(#expr)),
        };
        let as_str = match &opts.name {
            Name::Expr(expr) => {
                let name_id = internal_at("__lockutils_name", expr.span());
                quote_spanned!(expr.span()=> #p::AsRef::<#p::str>::as_ref(#name_id))
            }
            _ => quote!(#name_id),
        };
        let lock_path = match &opts.lock_path {
            Some(LockPath::Dynamic(expr)) => {
                let at = internal_at("__lockutils_lock_path", expr.span());
                let path = quote_spanned! {expr.span()=>
                    #p::AsRef::<#p::Path>::as_ref(#at)
                };
                Some((
                    quote!(let #lock_path_id = &(#expr);),
                    quote!(.lock_path(#path)),
                ))
            }
            _ => None,
        };
        let (path_setup, path_opt) = lock_path.unzip();
        let url_setup = match &opts.distributed {
            Some(Coordination::Dynamic(expr)) => Some(quote!(let #url_id = &(#expr);)),
            _ => None,
        };
        let backend_setup = match &opts.backend {
            Some(Coordination::Dynamic(expr)) => {
                Some(quote_spanned!(expr.span()=> let #backend_id = #expr;))
            }
            _ => None,
        };
        let setup = quote! {
            let #name_id = #name;
            #path_setup
            #url_setup
            #backend_setup
        };
        (
            setup,
            quote!(#options::new(#as_str) #path_opt #chain .#take),
        )
    };
    let unwrap = match opts.on_error {
        OnError::Panic => quote!(#p::expect_lock(#taken, #caller_id)),
        OnError::Return(span) => {
            // Located at the return type, where a missing
            // `From<lockutils::Error>` is reported, and still mixed-site.
            let guard_id = internal_at("__lockutils_guard", span);
            let error_id = internal_at("__lockutils_error", span);
            quote_spanned! {span=>
                match #taken {
                    #p::Ok(#guard_id) => #guard_id,
                    #p::Err(#error_id) => {
                        return #p::Err(#p::From::from(#error_id));
                    }
                }
            }
        }
    };
    // Backends chosen by URL need their engines' schemes registered.
    let register = (opts.backend.is_some() || opts.distributed.is_some())
        .then(|| quote!(#p::register_backends();));
    quote! {
        {
            #caller
            #check_registry
            #register
            #setup
            #unwrap
        }
    }
}

/// `.prefix(..).external(true)...caller(..)`: the options that differ from
/// the defaults, all `const fn`s, usable in the static. `external` and
/// `lock_path` never reach a `distributed` lock (validation refuses them);
/// `distributed` is the backend of its URL, or of the default coordination
/// URL.
fn chain(opts: &Options, p: &TokenStream) -> TokenStream {
    let caller_id = internal("__LOCKUTILS_CALLER");
    let backend_id = internal("__lockutils_backend");
    let mut c = TokenStream::new();
    if let Some(prefix) = &opts.prefix {
        c.extend(quote!(.prefix(#prefix)));
    }
    match &opts.distributed {
        Some(Coordination::Const(url)) => {
            c.extend(quote_spanned!(url.span()=> .backend_url(#url)));
        }
        Some(Coordination::Dynamic(expr)) => {
            let at = internal_at("__lockutils_url", expr.span());
            let url = quote_spanned! {expr.span()=>
                #p::AsRef::<#p::str>::as_ref(#at)
            };
            c.extend(quote!(.backend_url(#url)));
        }
        Some(Coordination::DefaultUrl) => c.extend(quote!(.coordinated())),
        None => {}
    }
    match &opts.backend {
        Some(Coordination::Const(url)) => {
            c.extend(quote_spanned!(url.span()=> .backend_url(#url)));
        }
        Some(Coordination::Dynamic(_)) => c.extend(quote!(.backend_from(#backend_id))),
        Some(Coordination::DefaultUrl) => c.extend(quote!(.coordinated())),
        None => {}
    }
    if opts.external {
        c.extend(quote!(.external(true)));
    }
    if let Some(LockPath::Const(dir)) = &opts.lock_path {
        c.extend(quote_spanned!(dir.span()=> .lock_path_str(#dir)));
    }
    match opts.fair {
        // A ZooKeeper lock is fair unless told otherwise: say what was
        // written, and nothing if nothing was.
        Some(fair) if opts.distributed.is_some() => c.extend(quote!(.fair(#fair))),
        Some(true) => c.extend(quote!(.fair(true))),
        Some(false) | None => {}
    }
    if !opts.blocking {
        c.extend(quote!(.blocking(false)));
    }
    if let Some(ns) = opts.timeout {
        let ns = Literal::u64_suffixed(ns);
        c.extend(quote!(.timeout(#p::Duration::from_nanos(#ns))));
    }
    if opts.shared {
        c.extend(quote!(.mode(#p::Mode::Shared)));
    }
    if let Some(registry) = &opts.semaphores {
        c.extend(quote_spanned!(registry.span()=> .registry(&#registry)));
    }
    c.extend(quote!(.caller(#caller_id)));
    c
}

#[cfg(test)]
mod tests {
    use crate::synchronized2 as synchronized;
    use crate::validate::Features;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn pretty(ts: TokenStream) -> String {
        prettyplease::unparse(&syn::parse2(ts).expect("expansion is a valid file"))
    }

    #[track_caller]
    fn check(args: TokenStream, item: TokenStream, expected: TokenStream) {
        let got = pretty(synchronized(args, item));
        let want = pretty(expected);
        assert_eq!(got, want, "\n--- got:\n{got}\n--- expected:\n{want}");
    }

    /// `check` as built with the facade's `zookeeper` feature, whichever
    /// features this test run has.
    #[track_caller]
    fn check_zk(args: TokenStream, item: TokenStream, expected: TokenStream) {
        let func: crate::item::Func = syn::parse2(item).unwrap();
        let opts = syn::parse2::<crate::args::RawArgs>(args)
            .unwrap()
            .build_for(
                &func,
                Features {
                    zookeeper: true,
                    postgresql: true,
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let got = pretty(super::expand(&opts, func));
        let want = pretty(expected);
        assert_eq!(got, want, "\n--- got:\n{got}\n--- expected:\n{want}");
    }

    fn errors(args: TokenStream, item: TokenStream, zookeeper: bool) -> Vec<String> {
        let func: crate::item::Func = syn::parse2(item).unwrap();
        match syn::parse2::<crate::args::RawArgs>(args).and_then(|raw| {
            raw.build_for(
                &func,
                Features {
                    zookeeper,
                    postgresql: zookeeper,
                },
            )
        }) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn sync_static_name() {
        check(
            quote!("inventory"),
            quote! {
                /// Docs stay.
                pub fn reserve(n: u32) -> u32 { n + 1 }
            },
            quote! {
                /// Docs stay.
                pub fn reserve(n: u32) -> u32 {
                    match {
                        const __LOCKUTILS_CALLER: &::lockutils::__private::str = ::lockutils::__private::concat!(::lockutils::__private::module_path!(), "::", "reserve");
                        static __LOCKUTILS_LOCK: ::lockutils::__private::StaticLock =
                            ::lockutils::__private::StaticLock::new(
                                ::lockutils::__private::LockOptions::new("inventory").caller(__LOCKUTILS_CALLER),
                            );
                        ::lockutils::__private::expect_lock(__LOCKUTILS_LOCK.lock(), __LOCKUTILS_CALLER)
                    } {
                        __lockutils_guard => { n + 1 }
                    }
                }
            },
        );
    }

    #[test]
    fn async_external_with_options() {
        check(
            quote!(
                "az",
                external,
                prefix = "nova",
                lock_path = "/var/lib/nova/tmp",
                fair,
                mode = read
            ),
            quote! { async fn f() {} },
            quote! {
                async fn f() {
                    match {
                        const __LOCKUTILS_CALLER: &::lockutils::__private::str = ::lockutils::__private::concat!(::lockutils::__private::module_path!(), "::", "f");
                        static __LOCKUTILS_LOCK: ::lockutils::__private::StaticLock =
                            ::lockutils::__private::StaticLock::new(
                                ::lockutils::__private::LockOptions::new("az")
                                    .prefix("nova")
                                    .external(true)
                                    .lock_path_str("/var/lib/nova/tmp")
                                    .fair(true)
                                    .mode(::lockutils::__private::Mode::Shared)
                                    .caller(__LOCKUTILS_CALLER),
                            );
                        ::lockutils::__private::expect_lock(__LOCKUTILS_LOCK.lock_async().await, __LOCKUTILS_CALLER)
                    } {
                        __lockutils_guard => {}
                    }
                }
            },
        );
    }

    #[test]
    fn method_non_blocking_returns_the_error() {
        check(
            quote!("x", blocking = false),
            quote! { fn take(&mut self) -> Result<(), MyError> { self.n += 1; Ok(()) } },
            quote! {
                fn take(&mut self) -> Result<(), MyError> {
                    match {
                        const __LOCKUTILS_CALLER: &::lockutils::__private::str = ::lockutils::__private::concat!(::lockutils::__private::module_path!(), "::", "take");
                        static __LOCKUTILS_LOCK: ::lockutils::__private::StaticLock =
                            ::lockutils::__private::StaticLock::new(
                                ::lockutils::__private::LockOptions::new("x")
                                    .blocking(false)
                                    .caller(__LOCKUTILS_CALLER),
                            );
                        match __LOCKUTILS_LOCK.lock() {
                            ::lockutils::__private::Ok(__lockutils_guard) => __lockutils_guard,
                            ::lockutils::__private::Err(__lockutils_error) => {
                                return ::lockutils::__private::Err(::lockutils::__private::From::from(__lockutils_error));
                            }
                        }
                    } {
                        __lockutils_guard => { self.n += 1; Ok(()) }
                    }
                }
            },
        );
    }

    #[test]
    fn generic_with_timeout_registry_and_crate_path() {
        check(
            quote!(
                "g",
                timeout = "1.5s",
                semaphores = crate::LOCKS,
                crate = my::lockutils
            ),
            quote! {
                pub(crate) unsafe fn g<'a, T: Clone>(x: &'a T) -> std::io::Result<T> where T: Send { Ok(x.clone()) }
            },
            quote! {
                pub(crate) unsafe fn g<'a, T: Clone>(x: &'a T) -> std::io::Result<T> where T: Send {
                    match {
                        const __LOCKUTILS_CALLER: &my::lockutils::__private::str = my::lockutils::__private::concat!(my::lockutils::__private::module_path!(), "::", "g");
                        let _: *const my::lockutils::__private::Registry = my::lockutils::__private::addr_of!(crate::LOCKS);
                        static __LOCKUTILS_LOCK: my::lockutils::__private::StaticLock =
                            my::lockutils::__private::StaticLock::new(
                                my::lockutils::__private::LockOptions::new("g")
                                    .timeout(my::lockutils::__private::Duration::from_nanos(1500000000u64))
                                    .registry(&crate::LOCKS)
                                    .caller(__LOCKUTILS_CALLER),
                            );
                        match __LOCKUTILS_LOCK.lock() {
                            my::lockutils::__private::Ok(__lockutils_guard) => __lockutils_guard,
                            my::lockutils::__private::Err(__lockutils_error) => {
                                return my::lockutils::__private::Err(my::lockutils::__private::From::from(__lockutils_error));
                            }
                        }
                    } {
                        __lockutils_guard => { Ok(x.clone()) }
                    }
                }
            },
        );
    }

    #[test]
    fn dynamic_names() {
        let expected = |name: TokenStream, as_str: TokenStream| {
            quote! {
                fn spawn(&self, instance_id: &str) {
                    match {
                        const __LOCKUTILS_CALLER: &::lockutils::__private::str = ::lockutils::__private::concat!(::lockutils::__private::module_path!(), "::", "spawn");
                        let __lockutils_name = #name;
                        ::lockutils::__private::expect_lock(
                            ::lockutils::__private::LockOptions::new(#as_str)
                                .prefix("nova")
                                .caller(__LOCKUTILS_CALLER)
                                .lock(),
                            __LOCKUTILS_CALLER,
                        )
                    } {
                        __lockutils_guard => { self.build(instance_id) }
                    }
                }
            }
        };
        let item = quote! { fn spawn(&self, instance_id: &str) { self.build(instance_id) } };
        check(
            quote!("instance-{instance_id}", prefix = "nova"),
            item.clone(),
            expected(
                quote!(&::lockutils::__private::format!("instance-{instance_id}")),
                quote!(__lockutils_name),
            ),
        );
        check(
            quote!(name = self.uuid(), prefix = "nova"),
            item,
            expected(
                quote!(&(self.uuid())),
                quote!(
                    ::lockutils::__private::AsRef::<::lockutils::__private::str>::as_ref(
                        __lockutils_name
                    )
                ),
            ),
        );
    }

    #[test]
    fn async_trait_output_gets_the_lock_inside_its_future() {
        check(
            quote!("x"),
            quote! {
                fn f<'life0, 'async_trait>(&'life0 self)
                    -> Pin<Box<dyn Future<Output = u32> + Send + 'async_trait>>
                {
                    Box::pin(async move { let __self = self; 1 })
                }
            },
            quote! {
                fn f<'life0, 'async_trait>(&'life0 self)
                    -> Pin<Box<dyn Future<Output = u32> + Send + 'async_trait>>
                {
                    Box::pin(async move {
                        match {
                            const __LOCKUTILS_CALLER: &::lockutils::__private::str = ::lockutils::__private::concat!(::lockutils::__private::module_path!(), "::", "f");
                            static __LOCKUTILS_LOCK: ::lockutils::__private::StaticLock =
                                ::lockutils::__private::StaticLock::new(
                                    ::lockutils::__private::LockOptions::new("x").caller(__LOCKUTILS_CALLER),
                                );
                            ::lockutils::__private::expect_lock(__LOCKUTILS_LOCK.lock_async().await, __LOCKUTILS_CALLER)
                        } {
                            __lockutils_guard => {
                                let __self = self;
                                1
                            }
                        }
                    })
                }
            },
        );
    }

    #[test]
    fn escaped_braces_are_a_static_name() {
        let out = synchronized(
            quote!("a{{b}}"),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(out.contains("StaticLock"), "{out}");
        assert!(out.contains("\"a{b}\""), "{out}");
    }

    #[test]
    fn errors_keep_the_item() {
        let out = synchronized(
            quote!("x", extrnal),
            quote!(
                fn reserve() {}
            ),
        )
        .to_string();
        assert!(out.starts_with("fn reserve"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("unknown option `extrnal`"), "{out}");
    }

    #[test]
    fn a_body_that_does_not_parse_is_still_expanded() {
        let out = synchronized(
            quote!("x"),
            quote!(
                fn reserve(n: u32) -> u32 { let x = ; n + x }
            ),
        )
        .to_string();
        assert!(out.starts_with("fn reserve"), "{out}");
        assert!(out.contains("__LOCKUTILS_LOCK"), "the lock is taken: {out}");
        assert!(out.contains("let x = ;"), "the body as written: {out}");
        assert!(
            !out.contains("compile_error"),
            "the compiler reports it: {out}"
        );

        // With a mistake in the options too: the item as written, plus that.
        let out = synchronized(
            quote!("x", extrnal),
            quote!(
                fn reserve(n: u32) -> u32 { n + }
            ),
        )
        .to_string();
        assert!(out.starts_with("fn reserve"), "{out}");
        assert!(out.contains("unknown option `extrnal`"), "{out}");
    }

    #[test]
    fn distributed_static_name() {
        check_zk(
            quote!("inventory", distributed, prefix = "nova"),
            quote! { pub fn reserve(&self, n: u32) -> u32 { self.stock - n } },
            quote! {
                pub fn reserve(&self, n: u32) -> u32 {
                    match {
                        const __LOCKUTILS_CALLER: &::lockutils::__private::str = ::lockutils::__private::concat!(::lockutils::__private::module_path!(), "::", "reserve");
                        ::lockutils::__private::register_backends();
                        static __LOCKUTILS_LOCK: ::lockutils::__private::StaticLock = ::lockutils::__private::StaticLock::new(
                            ::lockutils::__private::LockOptions::new("inventory")
                                .prefix("nova")
                                .coordinated()
                                .caller(__LOCKUTILS_CALLER)
                        );
                        ::lockutils::__private::expect_lock(__LOCKUTILS_LOCK.lock(), __LOCKUTILS_CALLER)
                    } {
                        __lockutils_guard => { self.stock - n }
                    }
                }
            },
        );
    }

    #[test]
    fn distributed_async_with_url_and_every_option() {
        check_zk(
            quote!(
                "catalog",
                distributed = "zookeeper://zk1:2181,zk2:2181/app",
                prefix = "glance",
                fair = false,
                timeout = "1.5s",
                mode = read,
                semaphores = crate::LOCKS
            ),
            quote! { async fn read_catalog() -> Result<u32, AppError> { Ok(1) } },
            quote! {
                async fn read_catalog() -> Result<u32, AppError> {
                    match {
                        const __LOCKUTILS_CALLER: &::lockutils::__private::str = ::lockutils::__private::concat!(::lockutils::__private::module_path!(), "::", "read_catalog");
                        let _: *const ::lockutils::__private::Registry = ::lockutils::__private::addr_of!(crate::LOCKS);
                        ::lockutils::__private::register_backends();
                        static __LOCKUTILS_LOCK: ::lockutils::__private::StaticLock = ::lockutils::__private::StaticLock::new(
                            ::lockutils::__private::LockOptions::new("catalog")
                                .prefix("glance")
                                .backend_url("zookeeper://zk1:2181,zk2:2181/app")
                                .fair(false)
                                .timeout(::lockutils::__private::Duration::from_nanos(1500000000u64))
                                .mode(::lockutils::__private::Mode::Shared)
                                .registry(&crate::LOCKS)
                                .caller(__LOCKUTILS_CALLER)
                        );
                        match __LOCKUTILS_LOCK.lock_async().await {
                            ::lockutils::__private::Ok(__lockutils_guard) => __lockutils_guard,
                            ::lockutils::__private::Err(__lockutils_error) => {
                                return ::lockutils::__private::Err(::lockutils::__private::From::from(__lockutils_error));
                            }
                        }
                    } {
                        __lockutils_guard => { Ok(1) }
                    }
                }
            },
        );
    }

    #[test]
    fn distributed_dynamic_name_and_url() {
        check_zk(
            quote!(
                "instance-{id}",
                distributed = &self.coordination_url,
                blocking = false,
                fair
            ),
            quote! { fn spawn(&self, id: u32) -> Result<(), Error> { Ok(()) } },
            quote! {
                fn spawn(&self, id: u32) -> Result<(), Error> {
                    match {
                        const __LOCKUTILS_CALLER: &::lockutils::__private::str = ::lockutils::__private::concat!(::lockutils::__private::module_path!(), "::", "spawn");
                        ::lockutils::__private::register_backends();
                        let __lockutils_name = &::lockutils::__private::format!("instance-{id}");
                        let __lockutils_url = &(&self.coordination_url);
                        match ::lockutils::__private::LockOptions::new(__lockutils_name)
                            .backend_url(::lockutils::__private::AsRef::<::lockutils::__private::str>::as_ref(__lockutils_url))
                            .fair(true)
                            .blocking(false)
                            .caller(__LOCKUTILS_CALLER)
                            .lock()
                        {
                            ::lockutils::__private::Ok(__lockutils_guard) => __lockutils_guard,
                            ::lockutils::__private::Err(__lockutils_error) => {
                                return ::lockutils::__private::Err(::lockutils::__private::From::from(__lockutils_error));
                            }
                        }
                    } {
                        __lockutils_guard => { Ok(()) }
                    }
                }
            },
        );
    }

    #[test]
    fn distributed_url_from_env_macro_stays_static() {
        let func: crate::item::Func = syn::parse_quote!(
            fn f() {}
        );
        let opts = syn::parse2::<crate::args::RawArgs>(quote!(
            "x",
            distributed = env!("APP_ZK_URL"),
            semaphores = LOCKS
        ))
        .unwrap()
        .build_for(
            &func,
            Features {
                zookeeper: true,
                postgresql: true,
            },
        )
        .unwrap();
        assert!(opts.is_static());
        let out = super::expand(&opts, func).to_string();
        assert!(out.contains("static __LOCKUTILS_LOCK"), "{out}");
        assert!(
            out.contains(". backend_url (env ! (\"APP_ZK_URL\"))"),
            "{out}"
        );
    }

    #[test]
    fn distributed_false_is_an_ordinary_lock() {
        // With or without the feature: `false` asks for nothing from it.
        let out = synchronized(
            quote!("x", distributed = false, external),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("StaticLock"), "{out}");
        assert!(!out.contains("zookeeper"), "{out}");
    }

    #[test]
    fn fixed_names_that_cannot_name_a_lock() {
        let f = quote!(
            fn f(id: u32) {}
        );
        for (args, found) in [
            (quote!(""), "the lock name is empty"),
            (quote!(".."), "`.` and `..` name directories"),
            (quote!("."), "`.` and `..` name directories"),
            (quote!(name = ".."), "`.` and `..` name directories"),
            (quote!("..", prefix = ""), "`.` and `..` name directories"),
            (quote!("a\0b"), "the lock name contains a NUL byte"),
            (quote!("a\0-{id}"), "the lock name contains a NUL byte"),
            (
                quote!("x", prefix = "p\0"),
                "the prefix contains a NUL byte",
            ),
        ] {
            let e = errors(args.clone(), f.clone(), false);
            assert!(e.len() == 1 && e[0].contains(found), "{args}: {e:?}");
        }
        for args in [
            quote!("..", prefix = "p"),
            quote!("./a"),
            quote!("{id}"),
            quote!("..{id}"),
            quote!(name = String::new()),
        ] {
            assert_eq!(
                errors(args.clone(), f.clone(), false),
                Vec::<String>::new(),
                "{args}"
            );
        }
    }

    #[test]
    fn raw_identifier_parameters_are_named_without_r_hash() {
        let f = quote!(
            fn f(r#type: u32, r#in: &str) {}
        );
        assert!(errors(quote!("kind-{type}-{in}"), f.clone(), false).is_empty());
        let e = errors(quote!("kind-{r#type}"), f.clone(), false);
        assert!(e.len() == 1 && e[0].contains("write `{type}`"), "{e:?}");
        let e = errors(quote!("kind-{kind}"), f, false);
        assert!(e[0].contains("its parameters are `type`, `in`"), "{e:?}");
    }

    #[test]
    fn backend_schemes() {
        let f = quote!(
            fn f() {}
        );
        // Lockutils' engines, with their features (`errors` turns both on or
        // both off).
        for url in [
            "file:///tmp/x",
            "zookeeper://zk1/app",
            "postgresql://h/db",
            "postgres://h/db",
        ] {
            assert!(
                errors(quote!("x", backend = #url), f.clone(), true).is_empty(),
                "{url}"
            );
        }
        assert!(errors(quote!("x", backend = "file:///tmp/x"), f.clone(), false).is_empty());
        for (url, feature) in [
            ("zookeeper://zk1/app", "`zookeeper` feature"),
            ("postgresql://h/db", "`postgresql` feature"),
            ("postgres://h/db", "`postgresql` feature"),
        ] {
            let e = errors(quote!("x", backend = #url), f.clone(), false);
            assert!(e.len() == 1 && e[0].contains(feature), "{url}: {e:?}");
        }
        // Misspellings of them, whatever the features.
        for (url, near) in [
            ("fille:///tmp/x", "did you mean `file://`?"),
            ("fiel:///tmp/x", "did you mean `file://`?"),
            ("File:///tmp/x", "did you mean `file://`?"),
            ("zookeper://zk1/app", "did you mean `zookeeper://`?"),
            ("postgre://h/db", "did you mean `postgres://`?"),
        ] {
            let e = errors(quote!("x", backend = #url), f.clone(), true);
            assert!(e.len() == 1 && e[0].contains(near), "{url}: {e:?}");
            assert!(
                e[0].contains("`postgresql://` (feature `postgresql`)"),
                "{e:?}"
            );
        }
        // An engine the program registers itself.
        for url in ["memory://macro", "scratch://x", "etcd3://h:2379"] {
            assert!(
                errors(quote!("x", backend = #url), f.clone(), false).is_empty(),
                "{url}"
            );
        }
    }

    #[test]
    fn distributed_mistakes() {
        let f = quote!(
            fn f() {}
        );
        let off = errors(quote!("x", distributed), f.clone(), false);
        assert_eq!(off.len(), 1, "{off:?}");
        assert!(
            off[0].contains("enable the `zookeeper` feature of lockutils"),
            "{off:?}"
        );
        assert!(errors(quote!("x", distributed), f.clone(), true).is_empty());

        let both = errors(
            quote!("x", external, distributed, lock_path = "/tmp"),
            f.clone(),
            true,
        );
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(both[0].contains("remove `external`"), "{both:?}");
        assert!(both[1].contains("remove `lock_path`"), "{both:?}");
        assert!(
            errors(quote!("x", distributed, external = false), f.clone(), true).is_empty(),
            "`external = false` asks for no lock file"
        );

        for (url, found) in [
            ("zk1:2181", "no scheme"),
            ("kazoo://zk1:2181", "the scheme `kazoo://`"),
            ("", "an empty string"),
        ] {
            let e = errors(quote!("x", distributed = #url), f.clone(), true);
            assert!(e.len() == 1 && e[0].contains(found), "{url}: {e:?}");
        }
        let e = errors(quote!("x", distributed = "zookeeper://"), f.clone(), true);
        assert!(e[0].contains("names no server"), "{e:?}");
        let e = errors(quote!("x", distributed = 2181), f.clone(), true);
        assert!(e[0].contains("takes a coordination URL string"), "{e:?}");
        let e = errors(quote!("x", distributed, distributed), f, true);
        assert!(e[0].contains("`distributed` given twice"), "{e:?}");
    }
}
