//! `lockutils list` and `lockutils show NAME`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::duration;
use crate::inspect::{LockReport, Owner, Snapshot, State};
use crate::output::{print_table, Cell, Paint};
use crate::{exit, Failure};

/// A lock file: its name, path and metadata.
pub(crate) type LockFile = (String, PathBuf, fs::Metadata);

/// The lock files of `dir`: name, path and metadata of each regular file,
/// sorted by name. `Ok(None)` if the directory does not exist.
pub(crate) fn lock_files(dir: &Path) -> Result<Option<Vec<LockFile>>, Failure> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Failure::error(format!(
                "cannot read lock directory {}: {e}; check --lock-path and its permissions",
                dir.display()
            )))
        }
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // removed meanwhile
        };
        if meta.is_file() {
            files.push((entry.file_name().to_string_lossy().into_owned(), path, meta));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(files))
}

/// Why the regular file `name` at `path` is not a lock file, or `None` if it
/// is one: the one rule `list` and `clean` share. A lock file is empty (no
/// lock implementation writes to it) and its name is its own lock file name,
/// so the library locks exactly this file.
pub(crate) fn not_a_lock_file(name: &str, path: &Path, meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if path.file_name().and_then(|n| n.to_str()) != Some(name) {
        return Some("the name is not UTF-8, so not a lock name".into());
    }
    if meta.size() > 0 {
        return Some(format!(
            "not empty ({} bytes), so not a lock file (lock files are always empty)",
            meta.size()
        ));
    }
    if lockutils_core::lock_file_name(name, None).ok().as_deref() != Some(name) {
        return Some("not a lock file name".into());
    }
    None
}

/// `lockutils list`.
pub(crate) fn list(lock_path: Option<&Path>, json: bool) -> Result<i32, Failure> {
    let dir = lockutils_core::lock_path(lock_path);
    let Some(files) = lock_files(&dir)? else {
        if json {
            println!("[]");
        } else {
            eprintln!(
                "lockutils: no lock directory at {} (no lock was taken there yet)",
                dir.display()
            );
        }
        return Ok(exit::OK);
    };
    let all = files.len();
    let files: Vec<LockFile> = files
        .into_iter()
        .filter(|(name, path, meta)| not_a_lock_file(name, path, meta).is_none())
        .collect();
    if all > files.len() && !json {
        eprintln!(
            "lockutils: {} other file(s) in {} are not lock files (`lockutils clean --dry-run` says why)",
            all - files.len(),
            dir.display()
        );
    }
    let snapshot = Snapshot::take(files.iter().map(|(_, _, m)| m));
    let reports: Vec<LockReport> = files
        .iter()
        .map(|(name, path, meta)| snapshot.report(name, path, meta))
        .collect();
    if json {
        crate::output::print_json(&reports)?;
        return Ok(exit::OK);
    }
    if reports.is_empty() {
        eprintln!("lockutils: no lock files in {}", dir.display());
        return Ok(exit::OK);
    }
    let paint = Paint::stdout();
    let mut rows = vec![["NAME", "STATE", "WAITING", "HELD FOR", "HOLDERS"]
        .iter()
        .map(|h| Cell::new(*h, paint.bold(h)))
        .collect::<Vec<_>>()];
    for r in &reports {
        rows.push(vec![
            Cell::plain(&r.name),
            state_cell(r, &paint),
            Cell::plain(if r.waiters.is_empty() {
                "-".to_owned()
            } else {
                r.waiters.len().to_string()
            }),
            held_for_cell(r, &paint),
            holders_cell(r, &paint),
        ]);
    }
    print_table(&rows);
    Ok(exit::OK)
}

/// `lockutils show NAME`.
pub(crate) fn show(
    name: &str,
    prefix: Option<&str>,
    lock_path: Option<&Path>,
    json: bool,
) -> Result<i32, Failure> {
    let file_name =
        lockutils_core::lock_file_name(name, prefix).map_err(|e| Failure::from_lock_error(&e))?;
    let dir = lockutils_core::lock_path(lock_path);
    let path = dir.join(&*file_name);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            return Err(Failure::error(format!(
                "{} (lock \"{name}\") is not a regular file, so not a lock file; \
                 check the name and --prefix",
                path.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Failure::error(format!(
                "no lock file for lock \"{name}\" at {}; check the name, --prefix and \
                 --lock-path (`lockutils list --lock-path {}` shows the lock files there)",
                path.display(),
                dir.display()
            )))
        }
        Err(e) => {
            return Err(Failure::error(format!(
                "cannot examine lock file {} for lock \"{name}\": {e}; check the lock \
                 directory's permissions",
                path.display()
            )))
        }
    };
    let report = Snapshot::take([&meta]).report(&file_name, &path, &meta);
    if json {
        crate::output::print_json(&report)?;
        return Ok(exit::OK);
    }
    let paint = Paint::stdout();
    let mut rows = vec![
        vec![
            Cell::new("lock", paint.bold("lock")),
            Cell::plain(&report.name),
        ],
        vec![
            Cell::new("path", paint.bold("path")),
            Cell::plain(report.path.display().to_string()),
        ],
    ];
    let mut state = state_cell(&report, &paint);
    if let Some(e) = &report.error {
        state = Cell::plain(format!("{} ({e})", state.plain_text()));
    }
    rows.push(vec![Cell::new("state", paint.bold("state")), state]);
    for h in &report.holders {
        rows.push(vec![
            Cell::new("holder", paint.bold("holder")),
            owner_cell(h, &paint),
        ]);
    }
    for w in &report.waiters {
        rows.push(vec![
            Cell::new("waiter", paint.bold("waiter")),
            owner_cell(w, &paint),
        ]);
    }
    if report.state != State::Free && report.state != State::Unknown {
        rows.push(vec![
            Cell::new("held for", paint.bold("held for")),
            Cell::plain(held_for_sentence(&report)),
        ]);
    }
    if report.flock_locks > 0 {
        rows.push(vec![
            Cell::new("flock", paint.bold("flock")),
            Cell::plain(format!(
                "{} flock(2) lock(s), which do not exclude lockutils or oslo holders",
                report.flock_locks
            )),
        ]);
    }
    if let Some(f) = &report.file {
        rows.push(vec![
            Cell::new("file", paint.bold("file")),
            Cell::plain(format!(
                "inode {} on device {}, mode {}, uid {} gid {}, {} bytes",
                f.inode, f.device, f.mode, f.uid, f.gid, f.size
            )),
        ]);
        rows.push(vec![
            Cell::new("modified", paint.bold("modified")),
            Cell::plain(format!(
                "{} ({} ago)",
                f.mtime,
                duration::human(duration::age(f.mtime_unix))
            )),
        ]);
    }
    if report.hidden_processes > 0 {
        rows.push(vec![
            Cell::new("not visible", paint.bold("not visible")),
            Cell::plain(format!(
                "{} processes of other users cannot be inspected; holders among them show \
                 as not visible",
                report.hidden_processes
            )),
        ]);
    }
    print_table(&rows);
    Ok(exit::OK)
}

fn state_cell(r: &LockReport, paint: &Paint) -> Cell {
    r.state.cell(r.state_text(), paint)
}

/// `≤3s`: no current holder has held the lock longer than the oldest
/// holder process has existed.
fn held_for_cell(r: &LockReport, paint: &Paint) -> Cell {
    match r.state {
        State::Free => Cell::plain("-"),
        State::Unknown => Cell::new("?", paint.dim("?")),
        _ => match oldest_holder_start(r) {
            Some(t) => Cell::plain(format!("≤{}", duration::human(duration::age(t)))),
            None => Cell::new("?", paint.dim("?")),
        },
    }
}

fn held_for_sentence(r: &LockReport) -> String {
    let which = if r.holders.len() > 1 {
        "the oldest holder process"
    } else {
        "the holder process"
    };
    match oldest_holder_start(r) {
        Some(t) => format!(
            "at most {}: {which} started {}; the kernel does not record when a lock was taken",
            duration::human(duration::age(t)),
            duration::rfc3339(t)
        ),
        None => "unknown: a holder is not visible, and the kernel does not record when a \
                 lock was taken"
            .into(),
    }
}

/// The earliest start time among the holders, if every holder is visible.
fn oldest_holder_start(r: &LockReport) -> Option<i64> {
    if r.holders.iter().any(|h| h.process_started_unix.is_none()) {
        return None;
    }
    r.holders
        .iter()
        .filter_map(|h| h.process_started_unix)
        .min()
}

fn holders_cell(r: &LockReport, paint: &Paint) -> Cell {
    if r.state == State::Free {
        return Cell::plain("-");
    }
    let parts: Vec<String> = r
        .holders
        .iter()
        .map(|h| match (h.pid, &h.command) {
            (Some(pid), Some(cmd)) => {
                format!(
                    "{pid} {}",
                    crate::inspect::truncate(&short_command(cmd), 48)
                )
            }
            (Some(pid), None) => pid.to_string(),
            (None, _) => "not visible".into(),
        })
        .collect();
    let text = parts.join(", ");
    if r.holders.iter().all(|h| h.pid.is_none()) {
        Cell::new(text.clone(), paint.dim(&text))
    } else {
        Cell::plain(text)
    }
}

/// `pid 42  exclusive  ofd  fd 3  started 3s ago  (fdinfo)  sleep 30`.
fn owner_cell(o: &Owner, paint: &Paint) -> Cell {
    let mode = o.mode.unwrap_or("mode unknown");
    let Some(pid) = o.pid else {
        let text = format!("not visible to this user  {mode}  {}", o.kind);
        return Cell::new(text.clone(), paint.dim(&text));
    };
    let mut text = format!("pid {pid}  {mode}  {}", o.kind);
    if !o.fds.is_empty() {
        let fds: Vec<String> = o.fds.iter().map(i32::to_string).collect();
        text.push_str(&format!("  fd {}", fds.join(",")));
    }
    if let Some(t) = o.process_started_unix {
        text.push_str(&format!(
            "  process started {} ago",
            duration::human(duration::age(t))
        ));
    }
    if let Some(e) = o.evidence {
        text.push_str(&format!("  (via {e})"));
    }
    if let Some(cmd) = &o.command {
        text.push_str(&format!("  {cmd}"));
    }
    Cell::plain(text)
}

/// A command line with its program's directory dropped, for narrow columns:
/// `/usr/bin/python3 x.py` → `python3 x.py`.
fn short_command(cmd: &str) -> String {
    let (program, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let program = program.rsplit('/').next().unwrap_or(program);
    if rest.is_empty() {
        program.to_owned()
    } else {
        format!("{program} {rest}")
    }
}
