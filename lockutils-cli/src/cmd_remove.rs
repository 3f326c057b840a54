//! `lockutils remove NAME…` and `lockutils clean`: removing free lock files
//! with the library's safe removal protocol, never a held one.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lockutils_core::{InUse, LockOptions};

use crate::cmd_inspect::lock_files;
use crate::duration;
use crate::inspect::{probe_path, Snapshot, State};
use crate::output::Paint;
use crate::{exit, Failure};

/// What became of one lock file.
enum Outcome {
    Removed,
    Absent,
    /// Held: skipped. Why is told once every file was tried.
    Held,
    /// Free but open in another process (a polling waiter): skipped.
    InUse(InUse),
    /// Not removed, for this reason.
    Skipped(String),
    /// `clean --dry-run`: free, would be removed.
    WouldRemove,
}

/// Removes the lock file of `opts` if nobody holds it: takes the lock without
/// waiting, checks the file, unlinks it while holding it
/// ([`LockOptions::remove_lock_file`]).
fn remove_if_free(opts: LockOptions<'_, '_>) -> Result<Outcome, lockutils_core::Error> {
    match opts.external(true).blocking(false).remove_lock_file() {
        Ok(true) => Ok(Outcome::Removed),
        Ok(false) => Ok(Outcome::Absent),
        Err(e) if e.is_contention() => Ok(Outcome::Held),
        Err(e) => InUse::of(&e).map(Outcome::InUse).ok_or(e),
    }
}

/// Who holds each of the held lock files, in one snapshot.
fn held_reasons(held: &[(String, PathBuf)]) -> Vec<String> {
    let metas: Vec<Option<fs::Metadata>> = held
        .iter()
        .map(|(_, path)| fs::symlink_metadata(path).ok())
        .collect();
    let snapshot = Snapshot::take(metas.iter().flatten());
    held.iter()
        .zip(&metas)
        .map(|((name, path), meta)| match meta {
            Some(m) => {
                let r = snapshot.report(name, path, m);
                if r.state == State::Free {
                    "held (released since)".to_owned()
                } else {
                    r.holders_sentence()
                }
            }
            None => "held (removed since)".to_owned(),
        })
        .collect()
}

/// `lockutils remove NAME…`.
pub(crate) fn remove(
    names: &[String],
    prefix: Option<&str>,
    lock_path: Option<&Path>,
) -> Result<i32, Failure> {
    let options = |name| {
        let mut opts = LockOptions::new(name);
        if let Some(p) = prefix {
            opts = opts.prefix(p);
        }
        if let Some(d) = lock_path {
            opts = opts.lock_path(d);
        }
        opts
    };
    // Check every name before removing anything.
    let mut paths = Vec::new();
    for name in names {
        paths.push(
            options(name.as_str())
                .file_path()
                .map_err(|e| Failure::from_lock_error(&e))?,
        );
    }
    let paint = Paint::stdout();
    let mut code = exit::OK;
    let mut held = Vec::new();
    for (name, path) in names.iter().zip(&paths) {
        match remove_if_free(options(name)) {
            Ok(Outcome::Removed) => {
                println!("{} {name} ({})", paint.green("removed"), path.display())
            }
            Ok(Outcome::Absent) => println!(
                "{} {name}: no lock file at {}",
                paint.dim("skipped"),
                path.display()
            ),
            Ok(Outcome::Held) => held.push((name.clone(), path.clone())),
            Ok(Outcome::InUse(in_use)) => {
                println!(
                    "{} {name}: {in_use} ({})",
                    paint.yellow("skipped"),
                    path.display()
                );
                if code == exit::OK {
                    code = exit::CONFLICT;
                }
            }
            Ok(Outcome::Skipped(_) | Outcome::WouldRemove) => {}
            Err(e) => {
                eprintln!("lockutils: {e}");
                code = exit::FAILURE;
            }
        }
    }
    for ((name, path), why) in held.iter().zip(held_reasons(&held)) {
        println!(
            "{} {name}: {why} ({}); a held lock is never removed",
            paint.yellow("skipped"),
            path.display()
        );
    }
    if code == exit::OK && !held.is_empty() {
        code = exit::CONFLICT;
    }
    Ok(code)
}

/// `lockutils clean`.
pub(crate) fn clean(
    lock_path: Option<&Path>,
    older_than: Option<Duration>,
    dry_run: bool,
) -> Result<i32, Failure> {
    let dir = lockutils_core::lock_path(lock_path);
    let Some(files) = lock_files(&dir)? else {
        println!("nothing to clean: no lock directory at {}", dir.display());
        return Ok(exit::OK);
    };
    // Non-regular entries are not lock files; say so.
    let mut outcomes: Vec<(String, PathBuf, Outcome)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !files.iter().any(|(n, _, _)| *n == name) {
                outcomes.push((
                    name,
                    entry.path(),
                    Outcome::Skipped("not a regular file, so not a lock file".into()),
                ));
            }
        }
    }
    let mut code = exit::OK;
    for (name, path, meta) in files {
        let outcome = match crate::cmd_inspect::not_a_lock_file(&name, &path, &meta) {
            None => clean_one(&name, &path, lock_path, &meta, older_than, dry_run),
            Some(why) => Ok(Outcome::Skipped(why)),
        };
        match outcome {
            Ok(o) => outcomes.push((name, path, o)),
            Err(e) => {
                eprintln!("lockutils: {e}");
                code = exit::FAILURE;
            }
        }
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let held: Vec<(String, PathBuf)> = outcomes
        .iter()
        .filter(|(_, _, o)| matches!(o, Outcome::Held))
        .map(|(n, p, _)| (n.clone(), p.clone()))
        .collect();
    let mut reasons = held_reasons(&held).into_iter();
    let paint = Paint::stdout();
    let (mut removed, mut skipped) = (0, 0);
    for (name, _, outcome) in &outcomes {
        match outcome {
            Outcome::Removed => {
                removed += 1;
                println!("{} {name}", paint.green("removed"));
            }
            Outcome::WouldRemove => {
                removed += 1;
                println!("{} {name}", paint.green("would remove"));
            }
            Outcome::Absent => {
                skipped += 1;
                println!(
                    "{} {name}: removed meanwhile by someone else",
                    paint.dim("skipped")
                );
            }
            Outcome::Held => {
                skipped += 1;
                let why = reasons.next().unwrap_or_default();
                println!("{} {name}: {why}", paint.yellow("skipped"));
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                println!("{} {name}: {why}", paint.dim("skipped"));
            }
            Outcome::InUse(in_use) => {
                skipped += 1;
                println!("{} {name}: {in_use}", paint.yellow("skipped"));
            }
        }
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    println!("{verb} {removed}, skipped {skipped} in {}", dir.display());
    Ok(code)
}

fn clean_one(
    name: &str,
    path: &Path,
    lock_path: Option<&Path>,
    meta: &fs::Metadata,
    older_than: Option<Duration>,
    dry_run: bool,
) -> Result<Outcome, lockutils_core::Error> {
    use std::os::unix::fs::MetadataExt;
    if let Some(min) = older_than {
        let age = duration::age(meta.mtime());
        if age < min {
            return Ok(Outcome::Skipped(format!(
                "created {} ago, newer than --older-than {}",
                duration::human(age),
                duration::human(min)
            )));
        }
    }
    let mut opts = LockOptions::new(name);
    if let Some(d) = lock_path {
        opts = opts.lock_path(d);
    }
    if dry_run {
        // Ask the kernel whether a lock would conflict; create nothing.
        return Ok(match probe_path(path) {
            Ok(None) => Outcome::WouldRemove,
            Ok(Some(_)) => Outcome::Held,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Absent,
            Err(e) => Outcome::Skipped(format!("cannot examine it: {e}")),
        });
    }
    remove_if_free(opts)
}
