//! The `corsgate` binary: parse the command line and dispatch. All logic lives in the library.

use std::process::ExitCode;

use clap::Parser;
use corsgate::{commands, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => commands::check(&cli.config),
        Command::Explain(args) => commands::explain(&cli.config, &args),
        // Builds its runtime itself, sized by the config's `worker_threads`.
        Command::Run => commands::run(&cli.config),
        Command::Schema => commands::schema(),
        Command::Completions { shell } => commands::completions(shell),
        Command::Manpage => commands::manpage(),
        Command::Demo => {
            let demo = tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(commands::demo()));
            match demo {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("corsgate demo: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
