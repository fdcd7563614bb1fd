//! The `corsgate` binary: parse the command line and dispatch. All logic lives in the library.

use std::process::ExitCode;

use clap::Parser;
use corsgate::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => corsgate::report::check_command(&cli.config),
        Command::Explain(args) => corsgate::report::explain_command(&cli.config, &args),
        Command::Run => match corsgate::server::run(&cli.config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("corsgate: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Schema => corsgate::editor::schema_command(),
        Command::Completions { shell } => corsgate::editor::completions_command(shell),
        Command::Manpage => corsgate::editor::manpage_command(),
        Command::Demo => match corsgate::demo::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("corsgate demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
