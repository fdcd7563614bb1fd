//! The `corsgate` binary: parse the command line and dispatch. All logic lives in the library.

use std::process::ExitCode;

use clap::Parser;
use corsgate::{commands, Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => commands::check(&cli.config),
        Command::Explain(args) => commands::explain(&cli.config, &args),
        Command::Run => match commands::run(&cli.config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                commands::fatal(&e);
                ExitCode::FAILURE
            }
        },
        Command::Schema => commands::schema(),
        Command::Completions { shell } => commands::completions(shell),
        Command::Manpage => commands::manpage(),
        Command::Demo => match commands::demo().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("corsgate demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
