//! `lockutils list` and `lockutils show NAME`, on any backend: the
//! library's [`Admin`](lockutils_core::backend::Admin) answers, this module
//! prints.

use lockutils_core::backend::Backend;

use crate::output::{message, print_table, Paint};
use crate::report::{list_rows, show_rows, LockReport};
use crate::{admin_identity, admin_of, exit, identity, Failure};

/// `lockutils list`.
pub(crate) fn list(backend: &dyn Backend, json: bool) -> Result<i32, Failure> {
    let admin = admin_of(backend)?;
    let listing = admin.list_all().map_err(|e| Failure::from_lock_error(&e))?;
    let url = backend.url();
    let reports: Vec<LockReport> = listing
        .locks
        .iter()
        .map(|info| LockReport::new(info, backend.kind(), &url))
        .collect();
    if json {
        crate::output::print_json(&reports)?;
        return Ok(exit::OK);
    }
    if !listing.ignored.is_empty() {
        message!(
            "{} other file(s) on {url} are not locks (`lockutils clean --dry-run` \
             says why)",
            listing.ignored.len()
        );
    }
    if reports.is_empty() {
        message!("no locks on {url}");
        return Ok(exit::OK);
    }
    print_table(&list_rows(&reports, &Paint::stdout()));
    Ok(exit::OK)
}

/// `lockutils show NAME`.
pub(crate) fn show(
    backend: &dyn Backend,
    name: &str,
    prefix: Option<&str>,
    json: bool,
) -> Result<i32, Failure> {
    let identity = identity(name, prefix)?;
    let admin = admin_of(backend)?;
    let identity = admin_identity(admin, name, &identity)?;
    let info = admin
        .inspect(&identity)
        .map_err(|e| Failure::from_lock_error(&e))?;
    let report = LockReport::new(&info, backend.kind(), &backend.url());
    if json {
        crate::output::print_json(&report)?;
    } else {
        print_table(&show_rows(&report, &Paint::stdout()));
    }
    Ok(exit::OK)
}
