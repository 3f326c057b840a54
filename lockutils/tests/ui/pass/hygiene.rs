//! Local items named like what the expansion uses must not break it, and the
//! expansion's own bindings must not shadow the function's.
#![allow(dead_code, non_camel_case_types, unused_macros)]

mod std {}
mod core {}
mod lockutils {}
type Result = ();
type Option = ();
struct Guard;
struct str;
struct StaticLock;
struct LockOptions;
struct Duration;
struct Registry;
enum Shadow {
    Ok,
    Err,
}
use Shadow::{Err, Ok};
trait From {}
trait AsRef {}
macro_rules! format {
    () => {};
}
macro_rules! concat {
    () => {};
}
macro_rules! module_path {
    () => {};
}

static LOCKS: ::lockutils::Registry = ::lockutils::Registry::new();

#[::lockutils::synchronized("hygiene")]
fn fixed() -> u32 {
    let _ = (Guard, Ok, Err);
    1
}

#[::lockutils::synchronized("hygiene-{id}", semaphores = LOCKS)]
fn dynamic(id: u32) -> u32 {
    id
}

#[::lockutils::synchronized(name = ::std::string::ToString::to_string(&id), external, lock_path = dir, timeout = "1s")]
fn fallible(id: u32, dir: &::std::path::Path) -> ::std::result::Result<u32, ::lockutils::Error> {
    ::std::result::Result::Ok(id)
}

#[::lockutils::synchronized("hygiene-async", blocking = false)]
async fn fallible_async() -> ::std::result::Result<(), ::lockutils::Error> {
    ::std::result::Result::Ok(())
}

// A parameter named like the guard is the parameter in the body.
#[::lockutils::synchronized("hygiene-guard")]
fn guard_named_parameter(__lockutils_guard: u32) -> u32 {
    __lockutils_guard
}

#[::lockutils::synchronized("hygiene-guard-{__lockutils_name}", blocking = false)]
fn name_named_parameter(
    __lockutils_name: u32,
    __lockutils_guard: u32,
) -> ::std::result::Result<u32, ::lockutils::Error> {
    ::std::result::Result::Ok(__lockutils_name + __lockutils_guard)
}

fn main() {
    let dir = ::tempfile::tempdir().unwrap();
    ::std::assert_eq!(fixed(), 1);
    ::std::assert_eq!(dynamic(2), 2);
    ::std::assert_eq!(fallible(3, dir.path()).unwrap(), 3);
    let _ = fallible_async();
    ::std::assert_eq!(guard_named_parameter(4), 4);
    ::std::assert_eq!(name_named_parameter(1, 2).unwrap(), 3);
}
