//! `lockutils remove NAME…` and `lockutils clean`, on any backend: the
//! library's [`Admin`] removes what is free (never letting two holders
//! result) and, with `--force` on a backend that can, clears a held lock.

use std::time::Duration;

use lockutils_core::backend::{
    Admin, Backend, Capability, CleanOptions, Cleaned, LockInfo, Removal,
};

use crate::output::{message, Paint};
use crate::report::{one_line, Contender, LockReport};
use crate::{admin_identity, admin_of, duration, exit, identity, Failure};

/// `lockutils remove NAME…`.
pub(crate) fn remove(
    backend: &dyn Backend,
    names: &[String],
    prefix: Option<&str>,
    force: bool,
) -> Result<i32, Failure> {
    if force && !backend.capabilities().has(Capability::Clear) {
        return Err(Failure::usage(format!(
            "--force clears a held lock, which {} cannot do: a held lock of this backend is \
             never removed (its holders would go on holding a lock nobody else can see); \
             stop the holder instead",
            backend.url()
        )));
    }
    // Check every name before removing anything.
    let identities = names
        .iter()
        .map(|n| identity(n, prefix))
        .collect::<Result<Vec<String>, Failure>>()?;
    let admin = admin_of(backend)?;
    let identities = names
        .iter()
        .zip(identities)
        .map(|(n, i)| admin_identity(admin, n, &i))
        .collect::<Result<Vec<String>, Failure>>()?;
    let paint = Paint::stdout();
    let mut code = exit::OK;
    let mut held: Vec<(String, &String, String)> = Vec::new();
    for (name, identity) in names.iter().zip(&identities) {
        let place = one_line(&admin.location(identity));
        let name = &one_line(name);
        if force {
            match admin.clear_with_report(identity) {
                Ok(report) => {
                    let kept = still_holding(admin, identity, &report.before);
                    print_cleared(backend, name, &place, &report, kept, &paint);
                    if kept > 0 && code == exit::OK {
                        code = exit::CONFLICT;
                    }
                }
                Err(e) => {
                    message!("{}", crate::describe(&e));
                    code = exit::FAILURE;
                }
            }
            continue;
        }
        match admin.remove_if_free(identity) {
            Ok(Removal::Removed) => println!("{} {name} ({place})", paint.green("removed")),
            Ok(Removal::Absent) => println!(
                "{} {name}: nothing to remove at {place}",
                paint.dim("skipped")
            ),
            Ok(Removal::Busy) => held.push((name.clone(), identity, place)),
            Ok(Removal::InUse(in_use)) => {
                let in_use = one_line(&in_use.to_string());
                println!("{} {name}: {in_use} ({place})", paint.yellow("skipped"));
                if code == exit::OK {
                    code = exit::CONFLICT;
                }
            }
            Ok(_) => {}
            Err(e) => {
                message!("{}", crate::describe(&e));
                code = exit::FAILURE;
            }
        }
    }
    for (name, identity, place) in &held {
        let why = who_holds(admin, backend, identity);
        let hint = if backend.capabilities().has(Capability::Clear) {
            "a held lock is removed only with --force"
        } else {
            "a held lock is never removed"
        };
        println!(
            "{} {name}: {why} ({place}); {hint}",
            paint.yellow("skipped")
        );
    }
    if code == exit::OK && !held.is_empty() {
        code = exit::CONFLICT;
    }
    Ok(code)
}

/// Who holds the lock, as a clause, looked at now.
fn who_holds(admin: &dyn Admin, backend: &dyn Backend, identity: &str) -> String {
    match admin.inspect(identity) {
        Ok(info) if info.is_held() => {
            LockReport::new(&info, backend.kind(), &backend.url()).holders_sentence()
        }
        Ok(info) if !info.waiters.is_empty() => {
            format!(
                "free, but {} contender(s) queued for it",
                info.waiters.len()
            )
        }
        Ok(_) => "held (released since)".to_owned(),
        Err(_) => "held".to_owned(),
    }
}

/// How many of the holders `before` a clear still hold the lock: a backend
/// may keep holders it cannot tell hold this lock (PostgreSQL's tooz layout,
/// where a key stands for many names). A contender that took the lock after
/// the clear holds it since then, and is not counted.
fn still_holding(admin: &dyn Admin, identity: &str, before: &LockInfo) -> usize {
    let Ok(now) = admin.inspect(identity) else {
        return 0;
    };
    before
        .holders
        .iter()
        .filter(|h| {
            h.session.is_some()
                && now
                    .holders
                    .iter()
                    .any(|n| n.session == h.session && n.since == h.since)
        })
        .count()
}

fn print_cleared(
    backend: &dyn Backend,
    name: &str,
    place: &str,
    report: &lockutils_core::backend::Cleared,
    kept: usize,
    paint: &Paint,
) {
    let before = LockReport::new(&report.before, backend.kind(), &backend.url());
    let mut what = match report.removed {
        0 => "nothing was there to clear".to_owned(),
        1 => "cleared 1 holder or waiter".to_owned(),
        n => format!("cleared {n} holders and waiters"),
    };
    if let Some(kept) = &report.kept {
        what.push_str(&format!("; {kept}"));
    }
    let done = if kept > 0 {
        what = format!("still held; {what}");
        paint.yellow("kept")
    } else {
        paint.green("removed")
    };
    println!("{done} {name} ({place}): {what}");
    let line = |role: &str, c: &Contender| println!("  {role}  {}", c.line());
    before.holders.iter().for_each(|c| line("holder", c));
    before.waiters.iter().for_each(|c| line("waiter", c));
    if before.holders.len() > kept {
        println!(
            "  the holders were not asked: they now see the lock as lost; waiters queue again"
        );
    }
}

/// `lockutils clean`.
pub(crate) fn clean(
    backend: &dyn Backend,
    older_than: Option<Duration>,
    dry_run: bool,
) -> Result<i32, Failure> {
    let admin = admin_of(backend)?;
    let options = CleanOptions::new().older_than(older_than).dry_run(dry_run);
    let outcomes = admin.clean_with(&options).map_err(|e| match e.kind() {
        lockutils_core::ErrorKind::Unsupported => Failure::usage(format!(
            "--older-than needs a backend that records when a lock was created, which {} \
             does not; drop it (free locks are removed whatever their age)",
            backend.url()
        )),
        _ => Failure::from_lock_error(&e),
    })?;
    let paint = Paint::stdout();
    let (mut removed, mut skipped) = (0, 0);
    for (name, outcome) in &outcomes {
        let name = one_line(name);
        match outcome {
            Cleaned::Removed => {
                removed += 1;
                println!("{} {name}", paint.green("removed"));
            }
            Cleaned::WouldRemove => {
                removed += 1;
                println!("{} {name}", paint.green("would remove"));
            }
            Cleaned::Absent => {
                skipped += 1;
                println!(
                    "{} {name}: removed meanwhile by someone else",
                    paint.dim("skipped")
                );
            }
            Cleaned::Busy(info) => {
                skipped += 1;
                let report = LockReport::new(info, backend.kind(), &backend.url());
                let why = if info.is_held() {
                    report.holders_sentence()
                } else {
                    format!("{} contender(s) queued for it", info.waiters.len())
                };
                println!("{} {name}: {why}", paint.yellow("skipped"));
            }
            Cleaned::TooYoung(age) => {
                skipped += 1;
                println!(
                    "{} {name}: created {} ago, newer than --older-than {}",
                    paint.dim("skipped"),
                    duration::human(*age),
                    duration::human(older_than.unwrap_or_default())
                );
            }
            Cleaned::Skipped(why) => {
                skipped += 1;
                println!("{} {name}: {}", paint.dim("skipped"), one_line(why));
            }
            Cleaned::InUse(in_use) => {
                skipped += 1;
                let in_use = one_line(&in_use.to_string());
                println!("{} {name}: {in_use}", paint.yellow("skipped"));
            }
            _ => {}
        }
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    println!("{verb} {removed}, skipped {skipped} on {}", backend.url());
    Ok(exit::OK)
}
