//! Editor and shell integration: `corsgate schema` (the config's JSON Schema), `corsgate completions
//! SHELL` (clap_complete) and `corsgate manpage` (clap_mangen), each printed on stdout.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// Write the completion script for `shell`.
pub(crate) fn completions(shell: Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "corsgate", out);
}

/// Write the man page (roff): clap_mangen's page for `corsgate`, then a COMMAND OPTIONS section
/// with the synopsis and options of each subcommand that takes any, so one page documents them all.
pub(crate) fn manpage(out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    clap_mangen::Man::new(cmd.clone()).render(out)?;
    writeln!(out, ".SH \"COMMAND OPTIONS\"")?;
    for sub in cmd.get_subcommands() {
        let own = |a: &&clap::Arg| !a.is_global_set() && a.get_id() != "help";
        if !sub.get_arguments().any(|a| own(&a)) {
            continue;
        }
        let name = format!("corsgate {}", sub.get_name());
        let man = clap_mangen::Man::new(
            sub.clone()
                .display_name(name.clone())
                .bin_name(name.clone()),
        );
        let mut chunk = Vec::new();
        man.render_synopsis_section(&mut chunk)?;
        man.render_options_section(&mut chunk)?;
        for line in String::from_utf8_lossy(&chunk).lines() {
            match line {
                // Each chunk repeats roff's apostrophe preamble, already written once above.
                l if l.starts_with(".ie \\n(.g") || l.starts_with(".el .ds Aq") => {}
                ".SH SYNOPSIS" => writeln!(out, ".SS \"{name}\"")?,
                ".SH OPTIONS" => {}
                l => writeln!(out, "{l}")?,
            }
        }
    }
    Ok(())
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
