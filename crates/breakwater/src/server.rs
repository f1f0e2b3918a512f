//! Running the HTTP server: state from the configuration, serving, graceful shutdown.
//!
//! [`run`] is `breakwater serve`: it binds `BREAKWATER_ADDR` and serves until Ctrl-C or
//! SIGTERM. [`spawn`] serves in the background and returns a handle, for tests and
//! embedding:
//!
//! ```no_run
//! # async fn demo(config: breakwater::config::Config) -> anyhow::Result<()> {
//! let server = breakwater::server::spawn(config).await?; // BREAKWATER_ADDR=127.0.0.1:0 works
//! let health = reqwest::get(format!("{}/healthz", server.base_url())).await?;
//! assert!(health.status().is_success());
//! server.shutdown().await
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::assistant::Assistant;
use crate::config::Config;
use crate::http::{AppState, router};
use crate::listen::{self, ConnectionLimits};
use crate::metrics::Metrics;

/// Builds everything a request needs: the notes store, the assistant and the metrics.
///
/// # Errors
///
/// When the notes database cannot be opened or the assistant cannot be built from `config`.
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    // Every breaker's transitions (the LLM upstreams', Redis's, PostgreSQL's) for /status.
    let activity = std::sync::Arc::new(crate::assistant::Activity::default());
    let notes = config
        .open_notes(Some(activity.clone()))
        .await
        .with_context(|| format!("opening the notes store at {}", config.notes_location()))?;
    // The recorder first: metric handles taken before it exists would count into nothing.
    let metrics = Metrics::install();
    let assistant = Assistant::with_activity(config, notes.clone(), activity)
        .context("building the assistant")?;
    let state = AppState::new(
        assistant,
        notes,
        metrics,
        config.server.api_token.as_deref(),
        config.server.max_body_bytes,
    )
    .with_timeouts(config.server.body_timeout, config.server.request_timeout);
    let state = match &config.server.admin_token {
        Some(token) => state.with_admin_token(token),
        None => state,
    };
    Ok(match &config.server.jwt {
        Some(jwt) => state.with_jwt(crate::http::JwtVerifier::new(jwt)?),
        None => state,
    })
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight and returns.
///
/// # Errors
///
/// When the state cannot be built (see [`build_state`]) or the listener fails.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = build_state(&config).await?;
    announce(&config, &listener);
    serve_state(state, listener, limits(&config), shutdown).await
}

async fn serve_state(
    state: AppState,
    listener: TcpListener,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // On a worker, not on `block_on`'s own thread: a connection accepted there would wake
    // a worker to run it, one more context switch per connection (26 → 22 per stream).
    tokio::spawn(listen::serve(listener, router(state), limits, shutdown))
        .await
        .context("the accept loop ended abnormally")?;
    tracing::info!("server stopped");
    Ok(())
}

/// The connection limits `config` asks for.
fn limits(config: &Config) -> ConnectionLimits {
    let timeout = config.server.header_timeout;
    match config.server.max_connections {
        None => listen::default_limits(timeout),
        Some(max) => ConnectionLimits::new(max, timeout),
    }
}

/// Logs what is being served, loudly when the LLM is off.
fn announce(config: &Config, listener: &TcpListener) {
    tracing::info!(config = %config.summary(), "starting breakwater");
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.excerpts_only() {
        tracing::warn!(
            "no HF_API_TOKEN: excerpts-only mode, the LLM is never called; answers are the \
             matching excerpts of the notes"
        );
    }
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening on http://{addr}"),
        Err(err) => tracing::warn!(%err, "listening (address unknown)"),
    }
}

/// `breakwater serve`: binds `config.server.addr` and serves until Ctrl-C or SIGTERM.
///
/// # Errors
///
/// When the address cannot be bound, or as for [`serve`].
pub async fn run(config: Config) -> anyhow::Result<()> {
    let addr = config.server.addr;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (BREAKWATER_ADDR)"))?;
    serve(config, listener, shutdown_signal()).await
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what container runtimes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
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
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Binds `config.server.addr` (port 0 picks a free port) and serves in the background on
/// the current runtime.
///
/// # Errors
///
/// When the address cannot be bound or the state cannot be built; both are reported here,
/// before the server runs.
pub async fn spawn(config: Config) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(config.server.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.addr))?;
    let addr = listener.local_addr()?;
    let state = build_state(&config).await?;
    announce(&config, &listener);
    let (stop, stopped) = oneshot::channel::<()>();
    // A send or the handle's drop both stop the server.
    let task = tokio::spawn(serve_state(state, listener, limits(&config), async move {
        let _ = stopped.await;
    }));
    Ok(RunningServer { addr, stop, task })
}

/// A server running in the background; dropping it starts a graceful shutdown.
#[derive(Debug)]
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// `http://IP:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets requests in flight finish, and waits for the end.
    ///
    /// # Errors
    ///
    /// When the server failed or its task panicked.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        // A send error means the server already ended; the join reports how.
        let _ = self.stop.send(());
        self.task.await.context("the server task panicked")?
    }
}
