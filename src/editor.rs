//! Editor and shell integration: `corsgate schema` (the config's JSON Schema), `corsgate completions
//! SHELL` (clap_complete) and `corsgate manpage` (clap_mangen), each printed on stdout.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// Write the completion script for `shell`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "corsgate", out);
}

/// Write the man page (roff).
pub fn manpage(out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// `corsgate schema`.
pub fn schema_command() -> ExitCode {
    emit(|out| out.write_all(crate::config::schema::json_schema_text().as_bytes()))
}

/// `corsgate completions SHELL`.
pub fn completions_command(shell: Shell) -> ExitCode {
    emit(|out| {
        completions(shell, out);
        Ok(())
    })
}

/// `corsgate manpage`.
pub fn manpage_command() -> ExitCode {
    emit(manpage)
}

/// Run `write` on a locked, buffered stdout; a failed write (a closed pipe) is exit 1.
fn emit(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corsgate: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
