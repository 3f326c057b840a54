//! Metrics of named locks (feature `metrics`), through the [`metrics`]
//! facade: install any recorder (Prometheus, StatsD, ...) and these appear.
//!
//! | metric | kind | when |
//! |---|---|---|
//! | `lockutils_wait_seconds` | histogram | each acquisition: how long it waited (zero when it did not) |
//! | `lockutils_hold_seconds` | histogram | each release: how long the lock was held |
//! | `lockutils_contended_total` | counter | acquisitions that had to wait |
//! | `lockutils_would_block_total` | counter | non-blocking attempts that found the lock held |
//! | `lockutils_timeouts_total` | counter | acquisitions whose timeout ran out |
//!
//! Labels: `backend` (`memory` for an in-process lock, `file` for an
//! external one, `zookeeper`, `postgresql` or `other` for a lock on a backend
//! chosen with `LockOptions::backend*`) and `mode` (`exclusive` or `shared`): a handful of series
//! whatever the number of lock names. A `lock` label with the lock's
//! identity is added only after [`label_lock_names(true)`](label_lock_names),
//! for deployments with few, fixed names (one series per name otherwise
//! grows without bound when names come from data, such as instance ids).
//!
//! With this feature every acquisition reads the clock (about 20 ns), so
//! [`LockGuard::held`](crate::LockGuard::held) always has a value.

use std::time::Duration;

use crate::raw::Mode;

/// Whether the feature is on: every hold is then timed.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

/// Whether series carry a `lock` label (see [`label_lock_names`]).
#[cfg(feature = "metrics")]
static LOCK_NAMES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Adds (or, with `false`, stops adding) a `lock` label with each lock's
/// identity to every series. Off by default: only for a bounded set of names.
#[cfg(feature = "metrics")]
pub fn label_lock_names(on: bool) {
    LOCK_NAMES.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The backend label of a hold: an external lock has a lock file.
pub(crate) fn backend(external: bool) -> &'static str {
    if external {
        "file"
    } else {
        "memory"
    }
}

/// The backend label of a hold on a backend chosen by the options, from the
/// scheme of its URL: one of a fixed few values, whatever the URL says.
pub(crate) fn backend_of_url(url: &str) -> &'static str {
    match url.split_once("://").map_or("", |(scheme, _)| scheme) {
        "file" => "file",
        "zookeeper" => "zookeeper",
        "postgresql" | "postgres" => "postgresql",
        _ => "other",
    }
}

/// The backend label of a hold: its backend's kind (from
/// [`backend_of_url`]), its lock file's, or `memory`.
pub(crate) fn backend_label(file: bool, backend_kind: Option<&'static str>) -> &'static str {
    match backend_kind {
        Some(kind) => kind,
        None => backend(file),
    }
}

#[cfg(feature = "metrics")]
fn labels(backend: &'static str, mode: Mode, lock: &str) -> Vec<metrics::Label> {
    let mut labels = vec![
        metrics::Label::from_static_parts("backend", backend),
        metrics::Label::from_static_parts("mode", mode.as_str()),
    ];
    if LOCK_NAMES.load(std::sync::atomic::Ordering::Relaxed) {
        labels.push(metrics::Label::new("lock", lock.to_owned()));
    }
    labels
}

/// A lock was acquired after `waited`; `contended`: it waited for another
/// holder (a backend's round trip alone is not contention).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn acquired(
    backend: &'static str,
    mode: Mode,
    lock: &str,
    waited: Duration,
    contended: bool,
) {
    #[cfg(feature = "metrics")]
    {
        let labels = labels(backend, mode, lock);
        if contended {
            metrics::counter!("lockutils_contended_total", labels.clone()).increment(1);
        }
        metrics::histogram!("lockutils_wait_seconds", labels).record(waited.as_secs_f64());
    }
}

/// A lock held for `held` was released.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn released(backend: &'static str, mode: Mode, lock: &str, held: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("lockutils_hold_seconds", labels(backend, mode, lock))
        .record(held.as_secs_f64());
}

/// An acquisition failed because the lock was busy: at once (`timed_out`
/// false) or when its timeout ran out.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn busy(backend: &'static str, mode: Mode, lock: &str, timed_out: bool) {
    #[cfg(feature = "metrics")]
    {
        let name = if timed_out {
            "lockutils_timeouts_total"
        } else {
            "lockutils_would_block_total"
        };
        metrics::counter!(name, labels(backend, mode, lock)).increment(1);
    }
}
