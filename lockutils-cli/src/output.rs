//! Terminal output: colour only on a terminal, aligned tables, quiet exits
//! on a closed pipe, and messages on stderr that never fail.

use std::io::Write;

/// Prints `lockutils: MESSAGE` on stderr, as `eprintln!` would, but
/// ignores a failed write: a closed pipe or a full disk on stderr must not
/// turn into a panic, whose exit code (101) would hide the one documented
/// for the case (75, 127, …), and whose unwinding would skip clean-up. Every
/// message of the command goes through here.
macro_rules! message {
    ($($arg:tt)*) => {
        $crate::output::write_message(format_args!($($arg)*))
    };
}
pub(crate) use message;

/// The body of [`message!`].
pub(crate) fn write_message(text: std::fmt::Arguments<'_>) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "lockutils: {text}");
}

/// Colours for stdout, decided as clap decides its own (anstream): `--color`,
/// then `CLICOLOR_FORCE`, `NO_COLOR`, `CLICOLOR`, `TERM=dumb` and whether
/// stdout is a terminal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Paint {
    enabled: bool,
}

impl Paint {
    /// No colour (pipes, tests).
    #[cfg_attr(not(all(test, feature = "zookeeper")), allow(dead_code))]
    pub(crate) fn plain() -> Self {
        Paint { enabled: false }
    }

    /// Decides for stdout.
    pub(crate) fn stdout() -> Self {
        Paint {
            enabled: anstream::AutoStream::choice(&std::io::stdout())
                != anstream::ColorChoice::Never,
        }
    }

    fn sgr(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold (headers).
    pub(crate) fn bold(&self, text: &str) -> String {
        self.sgr("1", text)
    }

    /// Green (free).
    pub(crate) fn green(&self, text: &str) -> String {
        self.sgr("32", text)
    }

    /// Red (held exclusive).
    pub(crate) fn red(&self, text: &str) -> String {
        self.sgr("31", text)
    }

    /// Yellow (held shared, skipped).
    pub(crate) fn yellow(&self, text: &str) -> String {
        self.sgr("33", text)
    }

    /// Dim (not visible, unknown).
    pub(crate) fn dim(&self, text: &str) -> String {
        self.sgr("2", text)
    }
}

/// A cell: its plain text (for widths) and how it is printed.
pub(crate) struct Cell {
    plain: String,
    shown: String,
}

impl Cell {
    /// A cell printed as `shown` (possibly coloured), `plain` wide.
    pub(crate) fn new(plain: impl Into<String>, shown: impl Into<String>) -> Self {
        Cell {
            plain: plain.into(),
            shown: shown.into(),
        }
    }

    /// The text without colour.
    pub(crate) fn plain_text(&self) -> &str {
        &self.plain
    }

    /// An uncoloured cell.
    pub(crate) fn plain(text: impl Into<String>) -> Self {
        let text = text.into();
        Cell {
            shown: text.clone(),
            plain: text,
        }
    }
}

/// Prints rows as left-aligned columns two spaces apart; the last column is
/// not padded.
/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), crate::Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| crate::Failure::error(format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

pub(crate) fn print_table(rows: &[Vec<Cell>]) {
    for line in table_lines(rows) {
        println!("{line}");
    }
}

/// The lines [`print_table`] prints.
pub(crate) fn table_lines(rows: &[Vec<Cell>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.plain.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(&cell.shown);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.plain.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// Restores the default `SIGPIPE` action, so that `lockutils list | head`
/// ends quietly instead of failing to print. Only for the commands that run
/// no CMD and hold no lock.
pub(crate) fn restore_sigpipe() {
    // SAFETY: setting the default disposition of SIGPIPE installs no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
