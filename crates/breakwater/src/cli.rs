//! Command-line arguments: the `breakwater` verbs and the flags that override configuration.
//!
//! Only argument structs live here; `main` acts on them. Configuration flags stay text and go
//! through [`Cli::overrides`] to [`crate::config::Config::load`], so a flag is checked by the
//! same parser as its environment variable and an error names both.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::user::UserId;

const CONFIG: &str = "Configuration (overrides environment variables and .env files)";

/// A fault-tolerant AI assistant for your notes.
///
/// Answers questions from your notes with an LLM behind a circuit breaker; when the LLM is
/// down it answers from its cache or the notes themselves.
///
/// Configuration comes from environment variables, then `.env` and `.env.$BREAKWATER_ENV` in
/// --env-dir (the real environment wins); the flags below override both.
#[derive(Debug, Clone, Parser)]
#[command(name = "breakwater", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Listen address (BREAKWATER_ADDR, default 127.0.0.1:8000)
    #[arg(long, global = true, value_name = "IP:PORT", help_heading = CONFIG)]
    pub addr: Option<String>,

    /// SQLite file for notes (BREAKWATER_DB, default breakwater.db)
    #[arg(long, global = true, value_name = "FILE", help_heading = CONFIG)]
    pub db: Option<String>,

    /// LLM upstream base URL (HF_API_BASE, default the Hugging Face router)
    #[arg(long, global = true, value_name = "URL", help_heading = CONFIG)]
    pub hf_api_base: Option<String>,

    /// LLM model id (HF_MODEL)
    #[arg(long, global = true, value_name = "ID", help_heading = CONFIG)]
    pub model: Option<String>,

    /// Upstream API: chat or text (HF_API_MODE, default chat)
    #[arg(long, global = true, value_name = "MODE", help_heading = CONFIG)]
    pub api_mode: Option<String>,

    /// Use the circuit breaker: true or false (CIRCUIT_BREAKER_ENABLED, default true)
    #[arg(long, global = true, value_name = "BOOL", help_heading = CONFIG)]
    pub breaker_enabled: Option<String>,

    /// Consecutive failures that open the circuit (CIRCUIT_BREAKER_FAIL_THRESHOLD, default 5)
    #[arg(
        long,
        global = true,
        value_name = "N",
        help_heading = CONFIG,
        allow_negative_numbers = true
    )]
    pub fail_threshold: Option<String>,

    /// Per-call deadline for the LLM, in seconds (CIRCUIT_BREAKER_TIMEOUT_SECONDS, default 30)
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        help_heading = CONFIG,
        allow_negative_numbers = true
    )]
    pub call_timeout: Option<String>,

    /// Seconds the circuit stays open before a trial call (CIRCUIT_BREAKER_RESET_TIMEOUT,
    /// default 60)
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        help_heading = CONFIG,
        allow_negative_numbers = true
    )]
    pub reset_timeout: Option<String>,

    /// Redis for the shared answer cache (REDIS_URL; "" turns it off)
    #[arg(long, global = true, value_name = "URL", help_heading = CONFIG)]
    pub redis_url: Option<String>,

    /// Directory holding the .env files
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = ".",
        help_heading = CONFIG
    )]
    pub env_dir: PathBuf,
}

/// The `breakwater` verbs.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Add Markdown or text files (or folders of them) to a user's notes.
    Ingest(IngestArgs),
    /// Ask a question and print the answer, its sources and where it came from.
    Ask(AskArgs),
    /// Show the circuit breaker status of a running server.
    Status(StatusArgs),
}

/// `breakwater serve`: everything it needs comes from the configuration.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {}

/// `breakwater ingest PATH...`
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Files or folders to read (.md, .markdown, .txt)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Whose notes they become
    #[arg(long, value_name = "USER", default_value_t)]
    pub user: UserId,

    /// Do not draw a progress bar
    #[arg(long)]
    pub no_progress: bool,
}

/// `breakwater ask "question"`: the same pipeline as the server, run in this process.
#[derive(Debug, Clone, Args)]
pub struct AskArgs {
    /// The question
    pub question: String,

    /// Whose notes to search
    #[arg(long, value_name = "USER", default_value_t)]
    pub user: UserId,

    /// How many sources to show at most (default: BREAKWATER_TOP_K)
    #[arg(long, value_name = "N")]
    pub max_sources: Option<usize>,

    /// Print the answer as JSON, like the HTTP API
    #[arg(long, conflicts_with = "stream")]
    pub json: bool,

    /// Print the answer as it is written (the default when stdout is a terminal)
    #[arg(long)]
    pub stream: bool,
}

/// `breakwater status`: asks a running server for its breakers.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The server's base URL (default: http:// and the configured --addr)
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// Print the status as JSON
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,

    /// Redraw the table every second until interrupted (Ctrl-C)
    #[arg(long)]
    pub watch: bool,
}

/// Each configuration flag and the variable it overrides, in `Cli` field order.
pub const OVERRIDE_FLAGS: [(&str, &str); 10] = [
    ("--addr", "BREAKWATER_ADDR"),
    ("--db", "BREAKWATER_DB"),
    ("--hf-api-base", "HF_API_BASE"),
    ("--model", "HF_MODEL"),
    ("--api-mode", "HF_API_MODE"),
    ("--breaker-enabled", "CIRCUIT_BREAKER_ENABLED"),
    ("--fail-threshold", "CIRCUIT_BREAKER_FAIL_THRESHOLD"),
    ("--call-timeout", "CIRCUIT_BREAKER_TIMEOUT_SECONDS"),
    ("--reset-timeout", "CIRCUIT_BREAKER_RESET_TIMEOUT"),
    ("--redis-url", "REDIS_URL"),
];

impl Cli {
    /// The configuration flags that were given, as (variable, value) pairs for
    /// [`crate::config::Config::load`].
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        let values = [
            &self.addr,
            &self.db,
            &self.hf_api_base,
            &self.model,
            &self.api_mode,
            &self.breaker_enabled,
            &self.fail_threshold,
            &self.call_timeout,
            &self.reset_timeout,
            &self.redis_url,
        ];
        OVERRIDE_FLAGS
            .iter()
            .zip(values)
            .filter_map(|(&(_, variable), value)| Some((variable, value.clone()?)))
            .collect()
    }
}

/// The flag that overrides `variable`, e.g. `--fail-threshold` for
/// `CIRCUIT_BREAKER_FAIL_THRESHOLD`.
pub fn flag_for(variable: &str) -> Option<&'static str> {
    OVERRIDE_FLAGS
        .iter()
        .find(|(_, name)| *name == variable)
        .map(|(flag, _)| *flag)
}
