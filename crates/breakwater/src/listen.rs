//! Accepting connections so that slow, idle or flooding clients cannot take a replica down.
//!
//! `axum::serve` sets no timer on hyper, so a connection whose headers never finish, or an
//! idle keep-alive one, stays open for ever. Here each connection is served by hyper-util
//! with:
//! - a header-read timeout, which in hyper's HTTP/1 also bounds an idle keep-alive
//!   connection (the timer runs whenever hyper waits for a request head);
//! - a cap on open connections. Beyond it, a small overflow lane still serves a connection,
//!   but only one request, whose headers must arrive within a second: `/healthz` and a
//!   quick request get through while a flood holds nothing for long. Beyond the lane the
//!   connection is closed at once: refused early and cheaply.
//!
//! Body-read and whole-request deadlines are tower-http layers on the router
//! ([`crate::http::router`]). Graceful shutdown closes idle connections at once and waits
//! for requests under way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The header deadline of a connection in the overflow lane.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait before accepting again when the process is out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How connections are bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served normally at once.
    pub max_connections: usize,
    /// Extra connections served one short request each beyond that.
    pub overflow: usize,
    /// Headers must arrive within this; an idle keep-alive connection closes after it.
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let regular = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(limits.overflow));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // Out of descriptors (or a connection reset before it was accepted):
                    // wait a little rather than spin; nothing here is fatal.
                    tracing::warn!(%err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (permit, header_timeout, keep_alive) =
            if let Ok(permit) = Arc::clone(&regular).try_acquire_owned() {
                (permit, limits.header_timeout, true)
            } else if let Ok(permit) = Arc::clone(&overflow).try_acquire_owned() {
                let timeout = limits.header_timeout.min(OVERFLOW_HEADER_TIMEOUT);
                (permit, timeout, false)
            } else {
                crate::metrics::record_refused_connection();
                drop(stream);
                continue;
            };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // HTTP/1 only: hyper's version sniffing (for h2c) reads with no deadline, which
            // is the very hole this closes; behind a load balancer HTTP/1.1 is the norm.
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(keep_alive)
                .serve_connection(TokioIo::new(stream), service);
            // Timeouts and resets end connections all the time: not worth a log line.
            let _ = watcher.watch(connection).await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The default connection cap: three quarters of what the process may open, less a
/// reserve for the database, Redis and upstream connections; 1,024 when the limit cannot
/// be read (see `/proc/self/limits`).
pub fn default_limits(header_timeout: Duration) -> ConnectionLimits {
    let open_files = open_file_limit().unwrap_or(1_024 + 128);
    let usable = open_files.saturating_sub(128).max(16);
    ConnectionLimits::new((usable * 3 / 4).clamp(8, 16_384), header_timeout)
}

impl ConnectionLimits {
    /// `max_connections` served normally, and an overflow lane of a sixth of that.
    pub fn new(max_connections: usize, header_timeout: Duration) -> Self {
        Self {
            max_connections,
            overflow: (max_connections / 6).clamp(4, 1_024),
            header_timeout,
        }
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
