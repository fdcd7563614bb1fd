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
        Command::Demo => match corsgate::demo::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("corsgate demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
