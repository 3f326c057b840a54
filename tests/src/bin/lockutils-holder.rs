//! `lockutils-holder`: takes one external lock a number of times, holding it
//! for a while each time, and logs every hold, for the multi-process tests.
//!
//! ```text
//! lockutils-holder --name N [--lock-path DIR] [--prefix P] [--shared]
//!                  [--hold-ms MS] [--rounds K] [--log FILE] [--timeout-ms MS]
//!                  [--no-wait] [--remove-after] [--ready FILE]
//! ```
//!
//! Each round acquires the lock (shared with `--shared`; failing at once with
//! `--no-wait`; giving up after `--timeout-ms`), logs `enter <pid> <micros>`,
//! creates the `--ready` file (first round only), sleeps `--hold-ms`, logs
//! `exit <pid> <micros>` and releases. With `--remove-after` it then removes
//! the lock file with the safe removal protocol, logging `removed <pid>
//! <micros>` when a file was removed.
//!
//! Exit codes: 0 ok, 2 would block, 3 timed out, 1 any other error (with a
//! message on stderr).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use lockutils::LockOptions;
use lockutils_tests::{Event, EventLog};

const USAGE: &str = "usage: lockutils-holder --name N [--lock-path DIR] [--prefix P] [--shared] \
    [--hold-ms MS] [--rounds K] [--log FILE] [--timeout-ms MS] [--no-wait] [--remove-after] \
    [--ready FILE]";

/// The parsed command line.
#[derive(Debug, Default)]
struct Args {
    name: String,
    lock_path: Option<PathBuf>,
    prefix: Option<String>,
    shared: bool,
    hold: Duration,
    rounds: u32,
    log: Option<PathBuf>,
    timeout: Option<Duration>,
    no_wait: bool,
    remove_after: bool,
    ready: Option<PathBuf>,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = OsString>) -> Result<Self, String> {
        let mut args = Args {
            rounds: 1,
            ..Args::default()
        };
        let mut name = None;
        while let Some(flag) = argv.next() {
            let flag = flag
                .into_string()
                .map_err(|f| format!("unknown argument {f:?}"))?;
            let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--name" => name = Some(utf8(&flag, value()?)?),
                "--lock-path" => args.lock_path = Some(value()?.into()),
                "--prefix" => args.prefix = Some(utf8(&flag, value()?)?),
                "--shared" => args.shared = true,
                "--hold-ms" => args.hold = Duration::from_millis(number(&flag, value()?)?),
                "--rounds" => args.rounds = number(&flag, value()?)?,
                "--log" => args.log = Some(value()?.into()),
                "--timeout-ms" => {
                    args.timeout = Some(Duration::from_millis(number(&flag, value()?)?));
                }
                "--no-wait" => args.no_wait = true,
                "--remove-after" => args.remove_after = true,
                "--ready" => args.ready = Some(value()?.into()),
                _ => return Err(format!("unknown argument {flag:?}")),
            }
        }
        args.name = name.ok_or("--name is required")?;
        Ok(args)
    }

    fn options(&self) -> LockOptions<'_, 'static> {
        let mut opts = LockOptions::new(&self.name)
            .external(true)
            .blocking(!self.no_wait);
        if let Some(prefix) = &self.prefix {
            opts = opts.prefix(prefix);
        }
        if let Some(dir) = &self.lock_path {
            opts = opts.lock_path(dir);
        }
        if self.shared {
            opts = opts.shared();
        }
        if let Some(timeout) = self.timeout {
            opts = opts.timeout(timeout);
        }
        opts
    }
}

fn utf8(flag: &str, value: OsString) -> Result<String, String> {
    value
        .into_string()
        .map_err(|v| format!("{flag}: {v:?} is not UTF-8"))
}

fn number<T: std::str::FromStr>(flag: &str, value: OsString) -> Result<T, String> {
    let text = utf8(flag, value)?;
    text.parse()
        .map_err(|_| format!("{flag}: {text:?} is not a valid number"))
}

/// Why a run failed.
#[derive(Debug)]
enum Failure {
    Lock(lockutils::Error),
    Io(&'static str, std::io::Error),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Lock(lockutils::Error::WouldBlock { .. }) => 2,
            Failure::Lock(lockutils::Error::Timeout { .. }) => 3,
            _ => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Lock(e) => e.fmt(f),
            Failure::Io(what, e) => write!(f, "cannot {what}: {e}"),
        }
    }
}

impl From<lockutils::Error> for Failure {
    fn from(e: lockutils::Error) -> Self {
        Failure::Lock(e)
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let log = args
        .log
        .as_deref()
        .map(EventLog::open)
        .transpose()
        .map_err(|e| Failure::Io("open the log", e))?;
    let record = |event| match &log {
        Some(log) => log
            .record(event)
            .map_err(|e| Failure::Io("write the log", e)),
        None => Ok(()),
    };
    let opts = args.options();
    for round in 0..args.rounds {
        let guard = opts.lock()?;
        record(Event::Enter)?;
        if let (0, Some(ready)) = (round, &args.ready) {
            std::fs::File::create(ready).map_err(|e| Failure::Io("create the ready file", e))?;
        }
        std::thread::sleep(args.hold);
        record(Event::Exit)?;
        drop(guard);
        if args.remove_after
            && lockutils::remove_external_lock_file(
                &args.name,
                args.prefix.as_deref(),
                args.lock_path.as_deref(),
            )?
        {
            record(Event::Removed)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("lockutils-holder: {msg}\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lockutils-holder: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
