//! `lockutils`: named locks from the shell, with the same lock files as the
//! lockutils library and oslo.concurrency.
//!
//! - `run CMD`: runs CMD with a private, temporary lock directory (like
//!   oslo's `lockutils-wrapper`), removed afterwards;
//! - `hold NAME CMD`: runs CMD while holding the named lock (like `flock(1)`,
//!   but excluding lockutils and oslo.concurrency holders);
//! - `list`, `show NAME`: lock files, who holds them and who waits;
//! - `remove NAME`, `clean`: remove free lock files with the safe removal
//!   protocol; held ones are never removed.
//!
//! The command is one driver over the library: `--backend` picks a backend
//! through the library's URL scheme registry (`file`, or any registered
//! coordination URL: `zookeeper://…` and `postgresql://…` with the features
//! of those names, off by default), `hold` takes the lock with the library's
//! `LockOptions` and guards, and `list`, `show`, `remove` and `clean` are the
//! backend's `Admin` interface, printed by one reporter in one JSON schema.
//! No module here knows an engine.
//!
//! See docs/cli.md for the whole reference.

mod backend;
mod child;
mod cmd_docs;
mod cmd_hold;
mod cmd_inspect;
mod cmd_remove;
mod cmd_run;
mod duration;
mod logging;
mod output;
mod park;
mod report;
#[cfg(target_os = "linux")]
mod spawn;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use backend::{BackendParser, Choice};
use lockutils_core::backend::{Admin, Backend};
use lockutils_core::ErrorKind;
use output::message;

/// Exit codes (also in `--help` and docs/cli.md).
pub(crate) mod exit {
    /// Success.
    pub(crate) const OK: i32 = 0;
    /// An error: unusable lock directory or file, missing lock file, I/O.
    pub(crate) const FAILURE: i32 = 1;
    /// Usage error: bad option, argument, lock name or duration; missing
    /// CMD; a backend this build does not provide.
    pub(crate) const USAGE: i32 = 2;
    /// The lock was busy: `hold` did not get it in time (`--no-wait`,
    /// `--timeout`), or `remove` skipped a held lock. Like `flock -E`, and
    /// `EX_TEMPFAIL` from sysexits.h.
    pub(crate) const CONFLICT: i32 = 75;
    /// `hold` on a backend that can lose a lock while held (ZooKeeper,
    /// PostgreSQL): it was lost (session expired, lock cleared), CMD was
    /// sent SIGTERM. `EX_UNAVAILABLE` from sysexits.h.
    pub(crate) const LOST: i32 = 69;
    /// CMD was found but could not be executed.
    pub(crate) const CANNOT_EXECUTE: i32 = 126;
    /// CMD was not found.
    pub(crate) const NOT_FOUND: i32 = 127;
}

const MAIN_HELP: &str = "\
Examples:
  lockutils run -- python -m pytest        # tests get a private lock directory
  lockutils hold --timeout 30s nova-instance-42 -- ./migrate.sh
  lockutils list --lock-path /var/lib/nova/tmp
  lockutils show --prefix nova instance-42
  lockutils clean --older-than 7d
  lockutils list --backend zookeeper://zk1:2181/lockutils    # ZooKeeper locks
  lockutils list --backend postgresql://locker@db1/app       # PostgreSQL advisory locks

The lock directory, unless --lock-path is given: LOCKUTILS_LOCK_PATH, then
OSLO_LOCK_PATH, then a per-user directory ($XDG_RUNTIME_DIR/lockutils or
$TMPDIR/lockutils-$UID), as for the library.

Exit codes:
  0        success
  1        error (lock directory or file unusable, lock file missing, I/O;
           the backend's server unreachable or refusing)
  2        usage error (bad option, name, duration or --backend URL; an
           option the backend cannot honour; no CMD)
  69       `hold` with ZooKeeper or PostgreSQL: the lock was lost while CMD ran
           (CMD got SIGTERM)
  75       lock busy: `hold` did not get the lock in time (change with
           --conflict-exit-code), `remove` skipped a held lock
  126      CMD could not be executed
  127      CMD not found
  CMD's    `run` and `hold` exit with CMD's status, 128+N if signal N killed it
  128+N    interrupted by signal N while waiting for a lock";

/// Named locks from the shell, with the same lock files as the lockutils
/// library and oslo.concurrency.
#[derive(Debug, Parser)]
#[command(name = "lockutils", version, after_help = MAIN_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Show the library's events on stderr: -v debug, -vv trace (RUST_LOG,
    /// e.g. RUST_LOG=lockutils=debug, overrides).
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// When to colour output: auto (a terminal, unless NO_COLOR is set or
    /// CLICOLOR=0; CLICOLOR_FORCE=1 forces it), always or never.
    #[arg(long, value_name = "WHEN", default_value = "auto", global = true)]
    color: clap::ColorChoice,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run CMD with a private, temporary lock directory, removed afterwards.
    ///
    /// Creates a directory only this user can use (mode 0700), exports it as
    /// LOCKUTILS_LOCK_PATH and OSLO_LOCK_PATH, runs CMD, forwards SIGINT,
    /// SIGTERM, SIGHUP and SIGQUIT to it, removes the directory whatever
    /// happened, and exits with CMD's status.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),

    /// Run CMD while holding a named lock.
    ///
    /// Takes the lock file {lock path}/{prefix}-{NAME} exactly as the library
    /// does, so it excludes lockutils users and oslo.concurrency holders of
    /// the same name. Waits for it (at most --timeout, not at all with
    /// --no-wait), runs CMD, releases the lock when CMD ends, and exits with
    /// CMD's status. While it waits more than a second it says on stderr who
    /// holds the lock. Signals are forwarded to CMD; if `hold` itself is
    /// killed, CMD's own process is killed too, but not the processes CMD
    /// started, which go on without the lock: in a script, `exec` the last
    /// command (docs/cli.md, `hold`, says more).
    ///
    /// With --backend URL (zookeeper://…, postgresql://…), takes that
    /// backend's lock of the same name, as the library does: across hosts.
    /// If that lock is lost while CMD runs (session expired, lock cleared),
    /// CMD gets SIGTERM and `hold` exits with 69.
    #[command(after_help = HOLD_EXAMPLES)]
    Hold(HoldArgs),

    /// List the lock files of a lock directory: state, holders, waiters.
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),

    /// Show one lock: state, holders, waiters, and the file's details.
    #[command(after_help = SHOW_EXAMPLES)]
    Show(ShowArgs),

    /// Remove lock files that are free, with the safe removal protocol.
    ///
    /// Takes each lock without waiting, checks that the locked file is still
    /// the one at the path, and unlinks it while holding it; a held lock is
    /// never removed but skipped, with its holder. With a --backend URL, the
    /// same for that backend's locks; --force clears a held one too where the
    /// backend can (ZooKeeper, PostgreSQL).
    #[command(after_help = REMOVE_EXAMPLES)]
    Remove(RemoveArgs),

    /// Remove every free lock file of a lock directory (optionally only old ones).
    ///
    /// Like `remove` for each lock file: held ones are skipped. Only empty
    /// regular files are treated as lock files (lockutils and oslo never
    /// write to them); anything else is skipped.
    #[command(after_help = CLEAN_EXAMPLES)]
    Clean(CleanArgs),

    /// Print a shell completion script: `lockutils completions bash >
    /// /etc/bash_completion.d/lockutils` (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff): `lockutils man > lockutils.1`.
    Man,
}

const RUN_EXAMPLES: &str = "\
Examples:
  lockutils run -- python -m pytest
  lockutils run -- sh -c 'echo $LOCKUTILS_LOCK_PATH'

Exit codes:
  CMD's status, or 128+N if signal N killed CMD; 2 without CMD;
  126 CMD not executable, 127 CMD not found; 1 if the directory cannot be
  created. A signal that arrives before CMD starts: 128+N, CMD not started.";

const HOLD_EXAMPLES: &str = "\
CMD's environment names the lock: LOCKUTILS_LOCK_NAME, LOCKUTILS_LOCK_MODE,
and LOCKUTILS_LOCK_FILE (the lock file) with LOCKUTILS_LOCK_PATH (its
directory, for lockutils used inside CMD), or LOCKUTILS_LOCK_NODE
(ZooKeeper) or LOCKUTILS_LOCK_KEY (other backends); LOCKUTILS_FENCING_TOKEN
where the backend has them.

Examples:
  lockutils hold nova-instance-42 -- ./migrate.sh
  lockutils hold --prefix nova --timeout 30s instance-42 -- ./migrate.sh
  lockutils hold --no-wait --conflict-exit-code 0 cron-job -- ./job  # skip if busy
  lockutils hold --shared --lock-path /srv/locks db -- ./read-only-report
  lockutils hold --file-mode 0664 --lock-path /var/lib/nova/tmp x -- ./job  # group-shared
  lockutils hold --backend zookeeper://zk1:2181/lockutils --timeout 30s \
      --prefix nova instance-42 -- ./migrate.sh              # across hosts

Exit codes:
  CMD's status (128+N if signal N killed it);
  75 the lock was busy (--no-wait) or the timeout ran out: change it
     with --conflict-exit-code;
  69 the lock was lost while CMD ran (ZooKeeper, PostgreSQL: session
     expired, lock cleared); CMD was sent SIGTERM;
  1 lock directory or file unusable, server unreachable; 2 usage error;
  126/127 CMD not executable/not found; 128+N interrupted while waiting.";

const LIST_EXAMPLES: &str = "\
Examples:
  lockutils list
  lockutils list --lock-path /var/lib/nova/tmp
  lockutils list --json | jq '.[] | select(.state != \"free\") | .name'
  lockutils list --backend zookeeper://zk1:2181/lockutils

HELD FOR is at most the holder process's age: the kernel does not record
when a lock was taken. A holder this user cannot inspect shows as
\"not visible\".

Exit codes:
  0 success (also for a missing or empty directory); 1 error; 2 usage error.";

const SHOW_EXAMPLES: &str = "\
Examples:
  lockutils show nova-instance-42
  lockutils show --prefix nova instance-42 --json
  lockutils show --backend zookeeper://zk1:2181/lockutils nova-instance-42

Exit codes:
  0 success (with ZooKeeper also for a lock without a node: it is free);
  1 no such lock file, or error; 2 usage error.";

const REMOVE_EXAMPLES: &str = "\
Examples:
  lockutils remove nova-instance-42
  lockutils remove --prefix nova instance-42 instance-43
  lockutils remove --backend zookeeper://zk1:2181/lockutils --force stuck-job

Exit codes:
  0 every named lock file was removed or did not exist;
  75 some were held and skipped; 1 error; 2 usage error.";

const CLEAN_EXAMPLES: &str = "\
Examples:
  lockutils clean
  lockutils clean --older-than 7d --lock-path /var/lib/nova/tmp
  lockutils clean --dry-run
  lockutils clean --backend zookeeper://zk1:2181/lockutils   # free lock nodes

--older-than compares with the lock file's modification time, which for
lock files is when they were created (locking does not change it).

Exit codes:
  0 success (held locks skipped is not an error); 1 error; 2 usage error.";

/// Where lock files are and how names map to them.
#[derive(Debug, Args)]
struct LockDirArg {
    /// Lock directory [default: LOCKUTILS_LOCK_PATH, OSLO_LOCK_PATH, or the
    /// per-user directory].
    #[arg(long, value_name = "DIR")]
    lock_path: Option<PathBuf>,
}

/// The lock backend.
#[derive(Debug, Args)]
struct BackendArg {
    /// Lock backend: `file` (lock files in the lock directory), or a
    /// coordination URL of any engine this build has, such as ZooKeeper
    /// locks: `zookeeper://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…][/ROOT][?…]`,
    /// PostgreSQL advisory locks: `postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DBNAME[?…]`,
    /// lock files elsewhere: `file:///DIR`; or a scheme word (`zookeeper`,
    /// `postgresql`) for the URL in LOCKUTILS_COORDINATION_URL (which keeps
    /// a password out of the process list).
    #[arg(long, value_name = "BACKEND", default_value = "file", value_parser = BackendParser)]
    backend: Choice,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The command to run, and its arguments.
    #[arg(value_name = "CMD", required = true, trailing_var_arg = true, num_args = 1..)]
    command: Vec<OsString>,
}

#[derive(Debug, Args)]
struct HoldArgs {
    /// Name of the lock.
    #[arg(value_name = "NAME")]
    name: String,

    /// Prefix of the lock file name, joined with `-` (oslo's lock_file_prefix).
    #[arg(long, value_name = "P")]
    prefix: Option<String>,

    #[command(flatten)]
    dir: LockDirArg,

    /// Take the lock shared (reader): other shared holders may hold it too.
    #[arg(long, short = 's')]
    shared: bool,

    /// Wait at most this long for the lock (500ms, 10s, 1.5s, 2m, …).
    #[arg(long, short = 'w', value_name = "DUR", value_parser = duration::parse, conflicts_with = "no_wait")]
    timeout: Option<Duration>,

    /// Do not wait: fail at once if the lock is held.
    #[arg(long, short = 'n')]
    no_wait: bool,

    /// Exit code when the lock is not obtained in time.
    #[arg(long, short = 'E', value_name = "N", default_value_t = exit::CONFLICT as u8)]
    conflict_exit_code: u8,

    /// Permission bits of the lock file when `hold` creates it, octal (0644,
    /// 0664; default 0600), filtered by the umask as for any new file. An
    /// existing lock file keeps its mode. See docs/cli.md, "Cross-user setups".
    #[arg(long, value_name = "OCTAL", value_parser = parse_file_mode)]
    file_mode: Option<u32>,

    #[command(flatten)]
    backend: BackendArg,

    /// The command to run while holding the lock, and its arguments.
    #[arg(value_name = "CMD", required = true, trailing_var_arg = true, num_args = 1..)]
    command: Vec<OsString>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    dir: LockDirArg,

    /// Print a JSON array of lock objects (schema in docs/cli.md).
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    backend: BackendArg,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// Name of the lock (or a lock file name, as `list` prints it).
    #[arg(value_name = "NAME")]
    name: String,

    /// Prefix of the lock file name, joined with `-`.
    #[arg(long, value_name = "P")]
    prefix: Option<String>,

    #[command(flatten)]
    dir: LockDirArg,

    /// Print one JSON lock object (schema in docs/cli.md).
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    backend: BackendArg,
}

#[derive(Debug, Args)]
struct RemoveArgs {
    /// Names of the locks (or lock file names, as `list` prints them).
    #[arg(value_name = "NAME", required = true, num_args = 1..)]
    names: Vec<String>,

    /// Prefix of the lock file names, joined with `-`.
    #[arg(long, value_name = "P")]
    prefix: Option<String>,

    /// Clear the lock even if it is held, on backends that can (ZooKeeper,
    /// PostgreSQL; never lock files). Its holders are not asked; they see the
    /// lock lost (ZooKeeper: their node is deleted; PostgreSQL: their
    /// sessions are ended).
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    dir: LockDirArg,

    #[command(flatten)]
    backend: BackendArg,
}

#[derive(Debug, Args)]
struct CleanArgs {
    /// Only lock files last modified (created) at least this long ago.
    #[arg(long, value_name = "DUR", value_parser = duration::parse)]
    older_than: Option<Duration>,

    /// Say what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    dir: LockDirArg,

    #[command(flatten)]
    backend: BackendArg,
}

/// A failed subcommand: the exit code and the one-line message for stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    /// Exit 1 with `message`.
    pub(crate) fn error(message: impl Into<String>) -> Self {
        Failure {
            code: exit::FAILURE,
            message: message.into(),
        }
    }

    /// Exit 2 with `message`.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    /// From a library error, by its kind: exit 2 for a mistake in what was
    /// asked (name, options, URL, a capability the backend lacks), 1
    /// otherwise; the message is the error with its causes.
    pub(crate) fn from_lock_error(e: &lockutils_core::Error) -> Self {
        match e.kind() {
            kind if kind.is_usage() => Failure::usage(describe(e)),
            ErrorKind::Io => Failure::error(with_options_for_fixes(describe(e))),
            _ => Failure::error(describe(e)),
        }
    }
}

/// The library's fixes name its API (`lock_path`, `lockutils::set_defaults`,
/// `.file_mode(0o660)`); on the command line they are options. Only the
/// wording changes: the diagnosis stays the library's. A fix this does not
/// know keeps its words, with the option added.
fn with_options_for_fixes(text: String) -> String {
    const REWORDED: [(&str, &str); 3] = [
        (
            "with lock_path, lockutils::set_defaults or LOCKUTILS_LOCK_PATH",
            "with --lock-path DIR or LOCKUTILS_LOCK_PATH",
        ),
        (
            "through a group with .file_mode(0o660)",
            "through a group (`lockutils hold --file-mode 0660` creates them so)",
        ),
        // A lock directory as a whole, not for one lock (list, clean).
        (" for lock \"\":", ":"),
    ];
    let mut text = REWORDED
        .iter()
        .fold(text, |text, (library, cli)| text.replace(library, cli));
    if text.contains("lockutils::set_defaults") {
        text.push_str(" (here: --lock-path DIR)");
    }
    text
}

/// With lock files, a lock directory that exists but is not a directory (a
/// regular file given as `--lock-path`, say) is said to be so, in the
/// library's words, before any subcommand looks inside it: otherwise `list`
/// would fail to list "a lock file" and `remove` find nothing to remove.
/// `name` is the lock's, or empty for the directory as a whole.
/// The backend for an admin subcommand, its lock directory (file backend)
/// checked to be a directory; `name` is the lock the error names.
fn open_checked(
    choice: &Choice,
    dir: &LockDirArg,
    name: &str,
) -> Result<std::sync::Arc<dyn Backend>, Failure> {
    let backend = choice.open(dir.lock_path.as_deref(), None)?;
    check_lock_dir(choice, dir.lock_path.as_deref(), &*backend, name)?;
    Ok(backend)
}

fn check_lock_dir(
    choice: &Choice,
    lock_path: Option<&Path>,
    backend: &dyn Backend,
    name: &str,
) -> Result<(), Failure> {
    let dir = match choice {
        Choice::LockDir => lockutils_core::lock_path(lock_path),
        // A `file://` URL: its lock files are in one directory.
        Choice::Url(_) if backend.kind() == "file" => {
            let Some(dir) = admin_of(backend)
                .ok()
                .and_then(|a| Path::new(&a.location("x")).parent().map(Path::to_owned))
            else {
                return Ok(());
            };
            dir
        }
        Choice::Url(_) => return Ok(()),
    };
    let reason = match std::fs::metadata(&dir) {
        Ok(m) if !m.is_dir() => "it exists and is not a directory".to_owned(),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => format!("it cannot be examined ({e})"),
        // Missing (nothing to list or remove), or for the subcommand to report.
        _ => return Ok(()),
    };
    Err(Failure::from_lock_error(&lockutils_core::Error::LockPath {
        name: name.to_owned(),
        path: dir,
        reason,
        source: None,
    }))
}

/// A library error on one line with its causes (`Display` leaves the source
/// out), without the `lock ""` of errors about no lock in particular.
pub(crate) fn describe(e: &lockutils_core::Error) -> String {
    let mut text = match e {
        lockutils_core::Error::Backend {
            name,
            backend,
            reason,
            ..
        } if name.is_empty() => format!("{backend}: {reason}"),
        e => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        // Some causes repeat their own source; say each thing once.
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

/// The lock's identity for NAME and `--prefix`: what the library locks on
/// every backend; a usage error if NAME cannot be a lock name.
pub(crate) fn identity(name: &str, prefix: Option<&str>) -> Result<String, Failure> {
    lockutils_core::lock_file_name(name, prefix)
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| Failure::from_lock_error(&e))
}

/// The identity `admin` takes for NAME and `--prefix`: the library's, as the
/// backend names that lock (ZooKeeper's kazoo layout keeps a name's `/`, as
/// `list` shows it), so that `show` and `remove` look where `hold` locks.
pub(crate) fn admin_identity(
    admin: &dyn Admin,
    name: &str,
    identity: &str,
) -> Result<String, Failure> {
    admin
        .identity_of(name, identity)
        .map_err(|e| Failure::from_lock_error(&e))
}

/// The backend's administration interface; a usage error where it has none.
pub(crate) fn admin_of(backend: &dyn Backend) -> Result<&dyn Admin, Failure> {
    backend.admin().map_err(|e| Failure::from_lock_error(&e))
}

/// `--file-mode`: octal permission bits, at most 0o7777, readable and
/// writable by the owner (a lock file its creator cannot open is useless).
fn parse_file_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && !digits.is_empty())
        .ok_or_else(|| format!("`{text}` is not octal permission bits such as 0644 or 0664"))?;
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "{mode:04o} does not let the owner read and write the lock file; give at least \
             0600 (e.g. 0644, 0664)"
        ));
    }
    Ok(mode)
}

fn main() {
    // Before parsing: `--backend` URLs are resolved through the registry.
    backend::register_engines();
    let cli = Cli::parse();
    logging::init(cli.verbose);
    anstream::ColorChoice::write_global(match cli.color {
        clap::ColorChoice::Auto => anstream::ColorChoice::Auto,
        clap::ColorChoice::Always => anstream::ColorChoice::Always,
        clap::ColorChoice::Never => anstream::ColorChoice::Never,
    });
    let code = match cli.command {
        Command::Completions { shell } => cmd_docs::completions(shell),
        Command::Man => cmd_docs::man(),
        Command::Run(args) => Ok(cmd_run::run(&args.command)),
        Command::Hold(args) => hold(&args),
        Command::List(args) => {
            output::restore_sigpipe();
            list(&args)
        }
        Command::Show(args) => {
            output::restore_sigpipe();
            show(&args)
        }
        Command::Remove(args) => {
            output::restore_sigpipe();
            remove(&args)
        }
        Command::Clean(args) => {
            output::restore_sigpipe();
            clean(&args)
        }
    };
    let code = code.unwrap_or_else(|f| {
        // Names in it (lock names, file names) are shown escaped, as in `list`.
        message!("{}", report::one_line(&f.message));
        f.code
    });
    std::process::exit(code);
}

fn hold(args: &HoldArgs) -> Result<i32, Failure> {
    let backend = args
        .backend
        .backend
        .open(args.dir.lock_path.as_deref(), args.file_mode)?;
    cmd_hold::hold(backend, args)
}

fn list(args: &ListArgs) -> Result<i32, Failure> {
    let backend = open_checked(&args.backend.backend, &args.dir, "")?;
    cmd_inspect::list(&*backend, args.json)
}

fn show(args: &ShowArgs) -> Result<i32, Failure> {
    let name = identity(&args.name, args.prefix.as_deref())?;
    let backend = open_checked(&args.backend.backend, &args.dir, &name)?;
    cmd_inspect::show(&*backend, &args.name, args.prefix.as_deref(), args.json)
}

fn remove(args: &RemoveArgs) -> Result<i32, Failure> {
    let name = match &*args.names {
        [one] => identity(one, args.prefix.as_deref())?,
        _ => String::new(),
    };
    let backend = open_checked(&args.backend.backend, &args.dir, &name)?;
    cmd_remove::remove(&*backend, &args.names, args.prefix.as_deref(), args.force)
}

fn clean(args: &CleanArgs) -> Result<i32, Failure> {
    let backend = open_checked(&args.backend.backend, &args.dir, "")?;
    cmd_remove::clean(&*backend, args.older_than, args.dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn backends() {
        backend::register_engines();
        let cli = Cli::try_parse_from(["lockutils", "list"]).unwrap();
        let Command::List(l) = cli.command else {
            panic!()
        };
        assert!(matches!(l.backend.backend, Choice::LockDir));
        let e = Cli::try_parse_from(["lockutils", "list", "--backend", "redis://u:topsecret@x"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("redis://u:***@x"), "{text}");
    }

    #[test]
    fn the_librarys_fixes_name_the_commands_options() {
        let text = with_options_for_fixes(
            "cannot open lock file /l/x for lock \"x\": the lock file belongs to uid 7 and \
             its mode 600 does not let this user (uid 8) read and write it; run as its owner, \
             have its owner remove it, or share lock files through a group with \
             .file_mode(0o660)"
                .to_owned(),
        );
        assert!(
            text.ends_with("(`lockutils hold --file-mode 0660` creates them so)"),
            "{text}"
        );
        let text = with_options_for_fixes(
            "cannot use lock directory /l for lock \"\": it is missing; choose another with \
             lock_path, lockutils::set_defaults or LOCKUTILS_LOCK_PATH"
                .to_owned(),
        );
        assert_eq!(
            text,
            "cannot use lock directory /l: it is missing; choose another with --lock-path DIR \
             or LOCKUTILS_LOCK_PATH"
        );
    }

    #[test]
    fn file_modes_are_octal_and_usable_by_the_owner() {
        assert_eq!(parse_file_mode("0644"), Ok(0o644));
        assert_eq!(parse_file_mode("664"), Ok(0o664));
        assert_eq!(parse_file_mode("0o600"), Ok(0o600));
        for bad in ["", "0999", "rw-r--r--", "17777", "0444", "-1"] {
            assert!(parse_file_mode(bad).is_err(), "{bad}");
        }
        let e = Cli::try_parse_from(["lockutils", "hold", "--file-mode", "0x1", "x", "true"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    /// A scheme registered only through the library is usable by the
    /// command's whole path (parse, resolve, hold's lock, the admin
    /// reports) without any change here.
    #[test]
    fn a_scheme_registered_only_in_the_library_drives_every_subcommand() {
        use lockutils_core::backend::{register_scheme, FileBackend};
        fn scratch(url: &str) -> Result<std::sync::Arc<dyn Backend>, String> {
            let dir = url
                .strip_prefix("scratch-cli://")
                .ok_or("expected scratch-cli://DIR")?;
            Ok(std::sync::Arc::new(FileBackend::new(dir)))
        }
        register_scheme("scratch-cli", scratch);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("scratch-cli://{}", dir.path().display());
        let cli = Cli::try_parse_from(["lockutils", "show", "--backend", &url, "x"]).unwrap();
        let Command::Show(args) = cli.command else {
            panic!()
        };
        let backend = args.backend.backend.open(None, None).unwrap();
        let guard = lockutils_core::LockOptions::new("x")
            .backend(&*backend)
            .lock()
            .unwrap();
        let info = admin_of(&*backend).unwrap().inspect("x").unwrap();
        let report = report::LockReport::new(&info, backend.kind(), &backend.url());
        assert_eq!(report.state, report::State::HeldExclusive, "{report:?}");
        assert_eq!(report.holders.len(), 1, "{report:?}");
        drop(guard);
        assert_eq!(
            cmd_remove::remove(&*backend, &["x".to_owned()], None, false).unwrap(),
            exit::OK
        );
        assert!(!dir.path().join("x").exists());
        let e = Cli::try_parse_from(["lockutils", "list", "--backend", "scratch-cli:/rel"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn hold_takes_flags_before_cmd_and_passes_cmd_flags_through() {
        let cli = Cli::try_parse_from([
            "lockutils",
            "hold",
            "x",
            "--no-wait",
            "--",
            "ls",
            "-l",
            "--timeout",
        ])
        .unwrap();
        let Command::Hold(h) = cli.command else {
            panic!()
        };
        assert!(h.no_wait);
        assert_eq!(h.command, ["ls", "-l", "--timeout"]);
        let cli = Cli::try_parse_from(["lockutils", "hold", "-w", "2s", "x", "ls", "-l"]).unwrap();
        let Command::Hold(h) = cli.command else {
            panic!()
        };
        assert_eq!(h.timeout, Some(Duration::from_secs(2)));
        assert_eq!(h.command, ["ls", "-l"]);
        assert!(Cli::try_parse_from(["lockutils", "hold", "x", "-n", "-w", "1s", "ls"]).is_err());
    }

    #[test]
    fn run_passes_everything_after_cmd_through() {
        let cli = Cli::try_parse_from(["lockutils", "run", "ls", "-l", "--help"]).unwrap();
        let Command::Run(r) = cli.command else {
            panic!()
        };
        assert_eq!(r.command, ["ls", "-l", "--help"]);
        assert!(Cli::try_parse_from(["lockutils", "run"]).is_err());
    }
}
