//! `lockutils completions SHELL` and `lockutils man`: shell completions and
//! the man page, generated from the same clap definitions as `--help`, so
//! they never disagree with the command.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::{exit, Cli, Failure};

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: Shell) -> Result<i32, Failure> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "lockutils", &mut std::io::stdout());
    Ok(exit::OK)
}

/// Prints the man page (roff) on stdout: `lockutils man > lockutils.1`.
pub(crate) fn man() -> Result<i32, Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Failure::error(format!("cannot render the man page: {e}")))?;
    std::io::stdout()
        .write_all(&page)
        .map_err(|e| Failure::error(format!("cannot write the man page: {e}")))?;
    Ok(exit::OK)
}
