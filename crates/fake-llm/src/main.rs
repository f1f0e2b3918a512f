//! `fake-llm`: serve the fake LLM upstream until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use fake_llm::{FakeLlm, Fault, FaultMode, StreamFault, StreamMode};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// An HF/OpenAI-compatible LLM upstream with run-time fault injection.
///
/// The flags set the initial fault; switch it later with `PUT /admin/fault`.
#[derive(Debug, Parser)]
#[command(name = "fake-llm", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FAKE_LLM_ADDR", default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// What to do with each LLM call.
    #[arg(long, value_enum, default_value_t = FaultMode::Ok)]
    mode: FaultMode,
    /// HTTP status of injected failures (mode error), 400..=599.
    #[arg(long, default_value_t = 503)]
    status: u16,
    /// Delay before each LLM call is handled, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of calls that fail in mode error, 0..=1.
    #[arg(long, default_value_t = 1.0)]
    failure_rate: f64,
    /// Send `Retry-After: N` with injected failures.
    #[arg(long)]
    retry_after_seconds: Option<u64>,
    /// Send HF's model-loading body with this `estimated_time` (seconds).
    #[arg(long)]
    estimated_time: Option<f64>,
    /// What a streamed answer does after `--stream-after` pieces.
    #[arg(long, value_enum, default_value_t = StreamMode::Ok)]
    stream: StreamMode,
    /// Pieces of a streamed answer sent before its fault.
    #[arg(long, default_value_t = 3)]
    stream_after: u32,
    /// Delay between the pieces of a streamed answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Split streamed answers into this many pieces (default: one per word).
    #[arg(long)]
    chunks: Option<u32>,
}

impl Args {
    fn fault(&self) -> Fault {
        Fault {
            mode: self.mode,
            status: self.status,
            latency_ms: self.latency_ms,
            failure_rate: self.failure_rate,
            retry_after_seconds: self.retry_after_seconds,
            estimated_time: self.estimated_time,
            stream: StreamFault {
                mode: self.stream,
                after_chunks: self.stream_after,
                chunk_delay_ms: self.chunk_delay_ms,
                chunks: self.chunks,
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let llm = FakeLlm::new();
    llm.try_set_fault(args.fault()).context("bad fault flags")?;
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listen address")?;
    tracing::info!(%addr, fault = ?llm.fault(), "fake-llm listening on http://{addr}");

    llm.serve(listener, shutdown_signal())
        .await
        .context("server failed")?;
    tracing::info!("fake-llm stopped");
    Ok(())
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what `docker stop` and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing in-flight calls");
}
