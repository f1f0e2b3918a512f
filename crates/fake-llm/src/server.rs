//! Routing and serving: the router, graceful shutdown, and the in-process test server.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::state::FakeLlm;
use crate::{admin, api};

/// What every handler gets: the upstream and the server's shutdown signal.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) llm: FakeLlm,
    pub(crate) shutdown: Shutdown,
}

/// Tells hung or delayed calls that the server is stopping.
///
/// Graceful shutdown waits for in-flight requests, so without this a hung call would keep
/// the server (and a test's runtime shutdown, or Ctrl-C) waiting forever.
#[derive(Clone, Debug)]
pub(crate) struct Shutdown(Option<watch::Receiver<bool>>);

impl Shutdown {
    /// Completes once the server is shutting down; never, for a bare [`FakeLlm::router`].
    pub(crate) async fn requested(&self) {
        match &self.0 {
            None => std::future::pending().await,
            Some(rx) => {
                // An error means the sender is gone: the server is gone too, so stop as well.
                let _ = rx.clone().wait_for(|stopping| *stopping).await;
            }
        }
    }
}

impl FakeLlm {
    /// The HTTP routes of this upstream, sharing its fault and counters.
    ///
    /// Calls hung by [`FaultMode::Hang`](crate::FaultMode::Hang) on this router end only
    /// when their client disconnects; [`FakeLlm::serve`] also ends them on shutdown.
    pub fn router(&self) -> Router {
        self.app(Shutdown(None))
    }

    fn app(&self, shutdown: Shutdown) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(api::chat_completions))
            .route("/hf-inference/models/{*model}", post(api::text_generation))
            .route("/models/{*model}", post(api::text_generation))
            .route("/admin/fault", get(admin::get_fault).put(admin::put_fault))
            .route("/admin/reset", post(admin::reset))
            .route("/admin/stats", get(admin::stats))
            .route("/admin/first-pieces", get(admin::first_pieces))
            .route("/healthz", get(admin::healthz))
            .with_state(AppState {
                llm: self.clone(),
                shutdown,
            })
    }

    /// Serves on `listener` until `shutdown` completes, then stops gracefully.
    ///
    /// On shutdown, calls that are hanging or sleeping their latency are answered
    /// `503 {"error":"shutting_down"}` so that the server can actually stop.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stopping_tx, stopping_rx) = watch::channel(false);
        let app = self.app(Shutdown(Some(stopping_rx)));
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stopping_tx.send_replace(true);
            })
            .await
    }

    /// Binds `127.0.0.1:0`, spawns the server on the current tokio runtime, and returns
    /// the running handle.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let upstream = fake_llm::FakeLlm::new().spawn().await?;
    /// let url = format!("{}/hf-inference/models/some/model", upstream.base_url());
    /// # let _ = url;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn spawn(self) -> io::Result<RunningFakeLlm> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        // Either an explicit send or the sender's drop (the handle dropped) stops the server.
        let task = tokio::spawn(self.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        tracing::debug!(%addr, "fake-llm spawned");
        Ok(RunningFakeLlm {
            addr,
            llm: self,
            stop,
            task,
        })
    }
}

/// A fake upstream serving on a local port; dropping it stops the server.
///
/// Dropping starts a graceful shutdown in the background; [`RunningFakeLlm::shutdown`]
/// also waits for it to finish.
#[derive(Debug)]
pub struct RunningFakeLlm {
    /// The address the server listens on (`127.0.0.1`, an ephemeral port).
    pub addr: SocketAddr,
    /// The upstream being served: switch its fault and read its counters here.
    pub llm: FakeLlm,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl RunningFakeLlm {
    /// The server's base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, ends in-flight calls, and waits until the server is done.
    pub async fn shutdown(self) -> io::Result<()> {
        let Self { stop, task, .. } = self;
        // A send error means the server task already ended; the join below reports how.
        let _ = stop.send(());
        task.await.map_err(io::Error::other)?
    }
}
