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
//! With `--backend zookeeper://HOST:PORT/ROOT` (the `zookeeper` feature, on
//! by default), `hold`, `list`, `show`, `remove` and `clean` work on
//! ZooKeeper locks instead (module `zookeeper`); with
//! `--backend postgresql://USER@HOST/DBNAME` (the `postgresql` feature, on by
//! default), on PostgreSQL advisory locks (module `postgres`).
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
mod inspect;
mod logging;
mod output;
#[cfg(feature = "postgresql")]
mod postgres;
#[cfg(feature = "zookeeper")]
mod zookeeper;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use backend::{Backend, BackendParser};

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
    /// `hold` with ZooKeeper: the lock was lost while held (session expired,
    /// lock cleared), CMD was sent SIGTERM. `EX_UNAVAILABLE` from sysexits.h.
    #[cfg_attr(
        not(any(feature = "zookeeper", feature = "postgresql")),
        allow(dead_code)
    )]
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
           ZooKeeper unreachable or refusing)
  2        usage error (bad option, name, duration or --backend URL; no CMD)
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
    /// killed, CMD is killed too, so CMD never runs without the lock.
    ///
    /// With --backend zookeeper://…, takes the ZooKeeper lock of the same
    /// name (as the library's ZkLockOptions): across hosts. If that lock is
    /// lost while CMD runs (session expired, lock cleared), CMD gets SIGTERM
    /// and `hold` exits with 69.
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
    /// never removed but skipped, with its holder. With ZooKeeper, the same
    /// for lock nodes; --force clears a held one too.
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
Examples:
  lockutils hold nova-instance-42 -- ./migrate.sh
  lockutils hold --prefix nova --timeout 30s instance-42 -- ./migrate.sh
  lockutils hold --no-wait --conflict-exit-code 0 cron-job -- ./job  # skip if busy
  lockutils hold --shared --lock-path /srv/locks db -- ./read-only-report
  lockutils hold --backend zookeeper://zk1:2181/lockutils --timeout 30s \
      --prefix nova instance-42 -- ./migrate.sh              # across hosts

Exit codes:
  CMD's status (128+N if signal N killed it);
  75 the lock was busy (--no-wait) or the timeout ran out: change it
     with --conflict-exit-code;
  69 ZooKeeper: the lock was lost while CMD ran (session expired, lock
     cleared); CMD was sent SIGTERM;
  1 lock directory or file unusable, ZooKeeper unreachable; 2 usage error;
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
    /// Lock backend: `file` (lock files in the lock directory), ZooKeeper
    /// locks: `zookeeper://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…][/ROOT][?…]`,
    /// PostgreSQL advisory locks: `postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DBNAME[?…]`,
    /// or `zookeeper` / `postgresql` for the URL in LOCKUTILS_COORDINATION_URL
    /// (which keeps a password out of the process list).
    #[arg(long, value_name = "BACKEND", default_value = "file", value_parser = BackendParser)]
    backend: Backend,
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

    /// ZooKeeper and PostgreSQL only: clear the lock even if it is held. Its
    /// holders are not asked; they see the lock lost (ZooKeeper: their node
    /// is deleted; PostgreSQL: their sessions are ended).
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

    /// From a library error: exit 2 for a bad name or options, 1 otherwise.
    pub(crate) fn from_lock_error(e: &lockutils_core::Error) -> Self {
        match e {
            lockutils_core::Error::InvalidName { .. }
            | lockutils_core::Error::InvalidOptions { .. } => Failure::usage(e.to_string()),
            // The library's fix names its API; on the command line it is an option.
            lockutils_core::Error::LockPath { .. } => {
                Failure::error(format!("{e} (here: --lock-path DIR)"))
            }
            _ => Failure::error(e.to_string()),
        }
    }
}

fn main() {
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
        eprintln!("lockutils: {}", f.message);
        f.code
    });
    std::process::exit(code);
}

fn hold(args: &HoldArgs) -> Result<i32, Failure> {
    match &args.backend.backend {
        Backend::File => cmd_hold::hold(args),
        #[cfg(feature = "zookeeper")]
        Backend::ZooKeeper(url) => zookeeper::hold::hold(url, args),
        #[cfg(feature = "postgresql")]
        Backend::Postgres(url) => postgres::hold(url, args),
    }
}

fn list(args: &ListArgs) -> Result<i32, Failure> {
    match &args.backend.backend {
        Backend::File => cmd_inspect::list(args.dir.lock_path.as_deref(), args.json),
        #[cfg(feature = "zookeeper")]
        Backend::ZooKeeper(url) => {
            zookeeper::refuse_lock_path(args.dir.lock_path.as_deref())?;
            zookeeper::inspect::list(url, args.json)
        }
        #[cfg(feature = "postgresql")]
        Backend::Postgres(url) => {
            postgres::refuse_lock_path(args.dir.lock_path.as_deref())?;
            postgres::list(url, args.json)
        }
    }
}

fn show(args: &ShowArgs) -> Result<i32, Failure> {
    match &args.backend.backend {
        Backend::File => cmd_inspect::show(
            &args.name,
            args.prefix.as_deref(),
            args.dir.lock_path.as_deref(),
            args.json,
        ),
        #[cfg(feature = "zookeeper")]
        Backend::ZooKeeper(url) => {
            zookeeper::refuse_lock_path(args.dir.lock_path.as_deref())?;
            zookeeper::inspect::show(url, &args.name, args.prefix.as_deref(), args.json)
        }
        #[cfg(feature = "postgresql")]
        Backend::Postgres(url) => {
            postgres::refuse_lock_path(args.dir.lock_path.as_deref())?;
            postgres::show(url, &args.name, args.prefix.as_deref(), args.json)
        }
    }
}

fn remove(args: &RemoveArgs) -> Result<i32, Failure> {
    match &args.backend.backend {
        Backend::File if args.force => Err(Failure::usage(
            "--force is for ZooKeeper locks: a held lock file is never removed (its holders \
             would go on holding a lock nobody else can see); stop the holder instead",
        )),
        Backend::File => cmd_remove::remove(
            &args.names,
            args.prefix.as_deref(),
            args.dir.lock_path.as_deref(),
        ),
        #[cfg(feature = "zookeeper")]
        Backend::ZooKeeper(url) => {
            zookeeper::refuse_lock_path(args.dir.lock_path.as_deref())?;
            zookeeper::remove::remove(url, &args.names, args.prefix.as_deref(), args.force)
        }
        #[cfg(feature = "postgresql")]
        Backend::Postgres(url) => {
            postgres::refuse_lock_path(args.dir.lock_path.as_deref())?;
            postgres::remove(url, &args.names, args.prefix.as_deref(), args.force)
        }
    }
}

fn clean(args: &CleanArgs) -> Result<i32, Failure> {
    match &args.backend.backend {
        Backend::File => {
            cmd_remove::clean(args.dir.lock_path.as_deref(), args.older_than, args.dry_run)
        }
        #[cfg(feature = "zookeeper")]
        Backend::ZooKeeper(url) => {
            zookeeper::refuse_lock_path(args.dir.lock_path.as_deref())?;
            if args.older_than.is_some() {
                return Err(Failure::usage(
                    "--older-than is for lock files: the ZooKeeper backend cannot tell how \
                     old a lock node is; drop it (free lock nodes are removed whatever their age)",
                ));
            }
            zookeeper::remove::clean(url, args.dry_run)
        }
        #[cfg(feature = "postgresql")]
        Backend::Postgres(url) => {
            postgres::refuse_lock_path(args.dir.lock_path.as_deref())?;
            postgres::clean(url)
        }
    }
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
        let cli = Cli::try_parse_from(["lockutils", "list"]).unwrap();
        let Command::List(l) = cli.command else {
            panic!()
        };
        assert!(matches!(l.backend.backend, Backend::File));
        let e = Cli::try_parse_from(["lockutils", "list", "--backend", "redis://u:topsecret@x"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("redis://u:***@x"), "{text}");
    }

    #[cfg(feature = "zookeeper")]
    #[test]
    fn zookeeper_urls_are_checked_by_the_parser_without_echoing_passwords() {
        let cli = Cli::try_parse_from([
            "lockutils",
            "hold",
            "--backend",
            "zookeeper://svc:topsecret@zk1:2181/app",
            "x",
            "true",
        ])
        .unwrap();
        let Command::Hold(h) = cli.command else {
            panic!()
        };
        let Backend::ZooKeeper(url) = &h.backend.backend else {
            panic!()
        };
        assert_eq!(url.root(), "/app");
        let e = Cli::try_parse_from([
            "lockutils",
            "show",
            "--backend",
            "zookeeper://svc:topsecret@zk1:nope/app",
            "x",
        ])
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("zookeeper://svc:***@zk1:nope/app"), "{text}");
        assert!(text.contains("port `nope`"), "{text}");
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
