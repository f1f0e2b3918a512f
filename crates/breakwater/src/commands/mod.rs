//! The runners behind the `breakwater` verbs; `main` parses and configures, then calls
//! [`run`].
//!
//! Exit codes: `0` success, `1` failure ([`EXIT_FAILURE`]), `2` bad configuration or input
//! ([`EXIT_USAGE`]), `3` the assistant had nothing to answer with ([`EXIT_UNAVAILABLE`]).

mod ask;
mod ingest;
mod status;

use std::process::ExitCode;

use crate::cli::Command;
use crate::config::{Config, LogConfig, LogFormat};

/// Exit code of a command that failed (an unreachable server, an unreadable path).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad configuration value or a rejected question.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `ask` when the LLM is unavailable and nothing else could answer (HTTP 503).
pub const EXIT_UNAVAILABLE: u8 = 3;

/// Runs `command` with `config` and returns the process exit code; errors are reported on
/// stderr.
pub fn run(command: Command, config: Config) -> ExitCode {
    let result = match command {
        Command::Ingest(args) => block_on(Runtime::OneShot, ingest::run(&config, &args)),
        Command::Serve(_) => block_on(Runtime::Server(config.server.worker_threads), {
            crate::server::run(config)
        })
        .map(|()| ExitCode::SUCCESS),
        Command::Ask(args) => block_on(Runtime::OneShot, ask::run(&config, &args)),
        Command::Status(args) => block_on(Runtime::OneShot, status::run(&config, &args)),
    };
    result.unwrap_or_else(|err| {
        eprintln!("breakwater: {err:#}");
        ExitCode::from(EXIT_FAILURE)
    })
}

/// The runtime a command runs on.
enum Runtime {
    /// Multi-threaded, with this many workers (`None`: one per core).
    Server(Option<usize>),
    /// A single thread, for one-shot commands.
    OneShot,
}

/// Runs `future` to completion on a new runtime of the kind `runtime` names.
fn block_on<T>(
    runtime: Runtime,
    future: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut builder = match runtime {
        Runtime::Server(workers) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            // Set even when it came from the process environment, which tokio would read
            // itself: the configuration has checked it (tokio panics on a bad value), and
            // it may come from a `.env` file tokio never sees.
            if let Some(workers) = workers {
                builder.worker_threads(workers);
            }
            builder
        }
        Runtime::OneShot => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build()?.block_on(future)
}

/// Sends `tracing` events to stderr, as text or JSON lines, filtered by `RUST_LOG`.
///
/// # Errors
///
/// When the filter does not parse (the configuration checked it already) or a global
/// subscriber is already set.
pub fn init_tracing(log: &LogConfig) -> anyhow::Result<()> {
    // tantivy reports its housekeeping (segment merges, file clean-up) at `info`: noise to
    // an operator unless asked for by name.
    let filter = if log.filter.contains("tantivy") {
        log.filter.clone()
    } else {
        format!("{},tantivy=warn", log.filter)
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|err| anyhow::anyhow!("cannot set up logging: {err}"))
}
