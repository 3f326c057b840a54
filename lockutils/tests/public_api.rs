//! The facade's public surface, as the crate docs list it under "What is
//! public": every item is here, so dropping one from the re-exports fails
//! this test. What must *not* be public (lockutils-core's lock-file and
//! `/proc` internals, a function named like the prefix attribute) is
//! `tests/ui/fail/internals-not-public.rs`.

#[allow(unused_imports)]
use lockutils::{
    backend, clear_defaults, external_lock, held_locks, lock, lock_file_name, lock_path,
    lock_with_prefix, parse_duration, register_backends, remove_external_lock_file,
    remove_external_lock_file_with_prefix, set_defaults, synchronized, synchronized_with_prefix,
    user_default_dir, Acquire, AsyncLockGuard, DisplayDuration, DurationError, Error, ErrorKind,
    HeldLock, InUse, LockGuard, LockOptions, Mode, Prefix, ReaderWriterLock, Registry, Report,
    Result, RwAcquire, RwGuard, StaticAcquire, StaticLock, LOCK_PATH_ENV, MAX_FILE_NAME,
    OSLO_LOCK_PATH_ENV, REMOVE_UNVERIFIED_ENV,
};

#[cfg(feature = "metrics")]
#[allow(unused_imports)]
use lockutils::metrics;
#[cfg(feature = "postgresql")]
#[allow(unused_imports)]
use lockutils::postgresql;
#[cfg(feature = "zookeeper")]
#[allow(unused_imports)]
use lockutils::zookeeper;

/// A prefix as a value is `Prefix::new` (or oslo's `lock_with_prefix`); the
/// name `synchronized_with_prefix` is the attribute's alone.
#[test]
fn a_prefix_value_is_prefix_new() {
    static NOVA: Prefix = Prefix::new("nova");
    static GLANCE: Prefix = lock_with_prefix("glance");
    assert_eq!(NOVA.prefix(), "nova");
    let g = NOVA.lock("public-api").unwrap();
    assert_eq!(LockGuard::name(&g), "nova-public-api");
    assert_eq!(GLANCE.options("x").name(), "x");
}
