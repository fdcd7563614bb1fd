//! Command-line types (clap derive) and their help text. No logic lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
pub(crate) use clap_complete::Shell;

/// A CORS-enforcing reverse proxy: answers preflights, blocks denied cross-origin requests before they
/// reach the upstream, and rewrites Access-Control-* headers on the way back.
#[derive(Debug, Parser)]
#[command(name = "corsgate", version, about, long_about = None)]
pub struct Cli {
    /// Config file. Defaults to $CORSGATE_CONFIG, else config/corsgate.toml.
    #[arg(
        short,
        long,
        global = true,
        env = "CORSGATE_CONFIG",
        default_value = "config/corsgate.toml"
    )]
    pub config: PathBuf,

    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default when no command is given).
    Run,
    /// Validate the config and print a summary of routes, upstreams and policies; exit 1 with every
    /// error as FILE:LINE:COL: message.
    Check,
    /// Evaluate one request against the policy and print the decision, the matched route and policy,
    /// the rule that decided, and the exact response headers the proxy would send.
    Explain(ExplainArgs),
    /// Start an echo upstream, the proxy and a demo page on a second origin; print the URLs to open.
    Demo,
    /// Print the config's JSON Schema (draft 2020-12), for editors such as taplo or Even Better TOML.
    Schema,
    /// Print shell completions (bash, zsh, fish, elvish or powershell); see docs/editor-and-shell.md.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff), e.g. `corsgate manpage > corsgate.1`.
    Manpage,
}

/// The request `explain` evaluates.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The Origin header, e.g. https://app.example.com (omit for a request without Origin).
    #[arg(long)]
    pub origin: Option<String>,
    /// The request method (for --preflight: the Access-Control-Request-Method).
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The request path (query allowed; it is ignored for routing).
    #[arg(long, default_value = "/")]
    pub path: String,
    /// The Host header (the request's own authority).
    #[arg(long)]
    pub host: Option<String>,
    /// A header the request carries, NAME or NAME:VALUE; for --preflight, the names listed in
    /// Access-Control-Request-Headers. Repeatable.
    #[arg(long = "header", value_name = "NAME")]
    pub headers: Vec<String>,
    /// Evaluate the CORS preflight (OPTIONS) for this method and headers.
    #[arg(long)]
    pub preflight: bool,
    /// The preflight asks for private network access (Access-Control-Request-Private-Network: true).
    #[arg(long)]
    pub private_network: bool,
    /// The Sec-Fetch-Site header (same-origin, same-site, cross-site, none), for fetch_metadata.
    #[arg(long, value_name = "V")]
    pub sec_fetch_site: Option<String>,
    /// The Sec-Fetch-Mode header (cors, no-cors, navigate, same-origin, websocket).
    #[arg(long, value_name = "V")]
    pub sec_fetch_mode: Option<String>,
    /// The Sec-Fetch-Dest header (document, iframe, image, script, empty, ...).
    #[arg(long, value_name = "V")]
    pub sec_fetch_dest: Option<String>,
    /// Evaluate as if received on a TLS listener (the request's own scheme is https).
    #[arg(long)]
    pub https: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
