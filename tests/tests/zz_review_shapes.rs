//! Review: function shapes `#[synchronized]` should accept (compile + run).
#![deny(warnings)]
#![forbid(unsafe_code)]
#![allow(dead_code)]

use std::fmt::Display;
use std::pin::Pin;

use lockutils::synchronized;

#[synchronized("zz-shape-pat-{a}-{b}")]
fn tuple_pattern((a, b): (u8, u8)) -> u8 {
    a + b
}

#[synchronized("zz-shape-mut-{x}")]
fn mut_binding(mut x: u32) -> u32 {
    x += 1;
    x
}

#[synchronized("zz-shape-underscore")]
fn underscore(_: u32) {}

#[synchronized("zz-shape-impl-{x}")]
fn impl_arg(x: impl Display) -> String {
    x.to_string()
}

#[synchronized("zz-shape-never")]
fn never() -> ! {
    panic!("never returns")
}

#[must_use]
#[synchronized("zz-shape-must-use")]
/// Docs after the attribute.
fn must_use() -> u32 {
    1
}

#[synchronized("zz-shape-cfg-{y}")]
fn cfg_arg(#[cfg(any())] x: u32, y: u32) -> u32 {
    y
}

struct S(u32);

impl Display for S {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

impl S {
    #[synchronized("zz-shape-{self}")]
    fn boxed(self: Box<Self>) -> u32 {
        self.0
    }

    #[synchronized(name = self.0.to_string())]
    fn pinned(self: Pin<&mut Self>) -> u32 {
        self.0
    }

    #[synchronized("zz-shape-mut-self-{self}")]
    fn by_mut(&mut self) -> u32 {
        self.0 += 1;
        self.0
    }
}

trait T {
    #[synchronized("zz-shape-default")]
    fn default_method(&self) -> u32 {
        7
    }

    #[synchronized("zz-shape-default-async")]
    fn sized_default(self) -> u32
    where
        Self: Sized,
    {
        8
    }
}

impl T for S {}

#[synchronized("zz-shape-inner-attrs")]
fn inner_attrs() -> u32 {
    #![allow(unused_variables)]
    let unused = 3;
    4
}

#[synchronized("zz-shape-label")]
fn labelled() -> u32 {
    'outer: loop {
        break 'outer 5;
    }
}

#[synchronized("zz-shape-elided")]
fn elided(x: &str) -> &str {
    x
}

#[synchronized("zz-shape-async-impl-{x}")]
async fn async_impl_arg(x: impl Display + Send) -> String {
    x.to_string()
}

#[synchronized("zz-shape-async-ref")]
async fn async_ref<'a>(x: &'a str, y: &str) -> &'a str {
    let _ = y;
    x
}

mod no_prelude {
    #![no_implicit_prelude]

    #[::lockutils::synchronized("zz-shape-no-prelude")]
    pub fn fixed() -> u32 {
        1
    }

    #[::lockutils::synchronized("zz-shape-no-prelude-{id}", timeout = "1s")]
    pub fn dynamic(id: u32) -> ::std::result::Result<u32, ::lockutils::Error> {
        ::std::result::Result::Ok(id)
    }

    #[::lockutils::synchronized(name = "zz-np", blocking = false)]
    pub async fn asynchronous() -> ::std::result::Result<u32, ::lockutils::Error> {
        ::std::result::Result::Ok(1)
    }
}

#[test]
fn shapes_run() {
    assert_eq!(tuple_pattern((1, 2)), 3);
    assert_eq!(mut_binding(1), 2);
    underscore(1);
    assert_eq!(impl_arg(3), "3");
    assert_eq!(must_use(), 1);
    assert_eq!(cfg_arg(2), 2);
    assert_eq!(Box::new(S(1)).boxed(), 1);
    let mut s = S(2);
    assert_eq!(Pin::new(&mut s).pinned(), 2);
    assert_eq!(s.by_mut(), 3);
    assert_eq!(s.default_method(), 7);
    assert_eq!(S(0).sized_default(), 8);
    assert_eq!(inner_attrs(), 4);
    assert_eq!(labelled(), 5);
    assert_eq!(elided("e"), "e");
    assert_eq!(lockutils_tests::block_on(async_impl_arg(4)), "4");
    assert_eq!(lockutils_tests::block_on(async_ref("a", "b")), "a");
    assert_eq!(no_prelude::fixed(), 1);
    assert_eq!(no_prelude::dynamic(2).unwrap(), 2);
    assert_eq!(lockutils_tests::block_on(no_prelude::asynchronous()).unwrap(), 1);
    assert!(std::panic::catch_unwind(|| never()).is_err());
}
