//! Start-up configuration: one typed [`Config`], parsed and validated once, then passed down.
//!
//! # Sources
//!
//! Lowest to highest precedence: built-in defaults < `.env` < `.env.$BREAKWATER_ENV` < the real
//! process environment < command-line flags ([`crate::cli::Cli::overrides`]). Both files are
//! looked up in one directory (the working directory, or `--env-dir`) and are optional.
//! `BREAKWATER_ENV` itself is taken from the flags, the process environment or `.env`. A value
//! set in a higher source wins even when it is empty, so `REDIS_URL=` in the environment turns
//! off a `REDIS_URL` from `.env`.
//!
//! The parse is a pure function over a map ([`Config::from_map`]); [`Config::load`] layers the
//! sources and [`Config::from_process_env_in`] is the only code in the crate that reads
//! `std::env`. Every variable is parsed and all bad values are reported together in one
//! [`ConfigError`].
//!
//! # Variables
//!
//! Surrounding whitespace is ignored. An empty value means "unset" for the optional variables
//! (tokens, `REDIS_URL`, `BREAKWATER_ENV`, `HF_CHAT_URL`, `HF_TEXT_URL`, `RUST_LOG`); for the
//! others it is a bad value. Seconds may be fractional (`0.5`), must be > 0 and at most one
//! year (31536000).
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `BREAKWATER_ADDR` | `127.0.0.1:8000` | listen address (IP and port) |
//! | `BREAKWATER_DB` | `breakwater.db` | SQLite file for notes (when `DATABASE_URL` is unset) |
//! | `DATABASE_URL` | unset | `postgres://…`: notes in PostgreSQL, behind the breaker `postgres` |
//! | `BREAKWATER_DB_TIMEOUT_SECONDS` | `2` | deadline of one PostgreSQL call |
//! | `CIRCUIT_BREAKER_SHARED` | `true` | with `REDIS_URL`: the LLM breaker's state is shared by every replica |
//! | `BREAKWATER_API_TOKEN` | unset | when set, `/api/*` needs `Authorization: Bearer <token>` |
//! | `BREAKWATER_HEADER_TIMEOUT_SECONDS` | `10` | request headers must arrive within this; an idle keep-alive connection closes after it |
//! | `BREAKWATER_BODY_TIMEOUT_SECONDS` | `30` | a request body must arrive within this (`408`) |
//! | `BREAKWATER_REQUEST_TIMEOUT_SECONDS` | `60` | one request's whole budget (`503` past it) |
//! | `BREAKWATER_MAX_CONNECTIONS` | `auto` | open connections served at once (`auto`: 3/4 of the open-file limit less a reserve) |
//! | `TOKIO_WORKER_THREADS` | the number of cores | the server runtime's worker threads (tokio's own name, so tokio and the `.env` files agree) |
//! | `BREAKWATER_ADMIN_TOKEN` | unset | turns on the operator controls; they need `Authorization: Bearer <it>` |
//! | `BREAKWATER_JWT_SECRET` | unset | JWT mode with HS256: `/api/*` takes a signed token; the user is its `sub` |
//! | `BREAKWATER_JWT_PUBLIC_KEY` | unset | JWT mode with RS256 or ES256: a PEM public key file |
//! | `BREAKWATER_JWT_AUDIENCE` / `BREAKWATER_JWT_ISSUER` | unset | checked against `aud` / `iss` when set |
//! | `BREAKWATER_CONFIG` | unset | a TOML file listing the LLM upstreams in order (see [`UpstreamConfig`]); unset = the `HF_*` variables describe one |
//! | `HF_API_TOKEN` (or `HF_TOKEN`) | unset | LLM credentials; `HF_API_TOKEN` wins; unset = excerpts-only mode |
//! | `HF_API_BASE` | `https://router.huggingface.co` | upstream base URL, `http(s)://`, trailing `/` trimmed |
//! | `HF_MODEL` | `Qwen/Qwen2.5-1.5B-Instruct` | model id |
//! | `HF_API_MODE` | `chat` | `chat` (OpenAI-style chat completions) or `text` (HF text generation) |
//! | `HF_CHAT_URL` | `{HF_API_BASE}/v1/chat/completions` | full URL for chat mode |
//! | `HF_TEXT_URL` | `{HF_API_BASE}/hf-inference/models/{HF_MODEL}` | full URL for text mode |
//! | `HF_FIRST_TOKEN_TIMEOUT_SECONDS` | = `CIRCUIT_BREAKER_TIMEOUT_SECONDS` | streaming: no first piece of the answer by then is a failure |
//! | `HF_STREAM_IDLE_TIMEOUT_SECONDS` | `10` | streaming: a longer gap between two pieces is a failure |
//! | `CIRCUIT_BREAKER_ENABLED` | `true` | `true/false`, `1/0`, `yes/no`, `on/off` (any case) |
//! | `CIRCUIT_BREAKER_FAIL_THRESHOLD` | `5` | consecutive failures that open the circuit (≥ 1) |
//! | `CIRCUIT_BREAKER_TIMEOUT_SECONDS` | `30` | per-call deadline for the upstream |
//! | `CIRCUIT_BREAKER_RESET_TIMEOUT` | `60` | seconds open before a trial call |
//! | `CIRCUIT_BREAKER_NAME` | `huggingface` | breaker name in status and metrics |
//! | `CIRCUIT_BREAKER_MAX_RESET_TIMEOUT` | = reset timeout | when larger, each trip after a failed trial doubles the open time (jittered) up to this |
//! | `CIRCUIT_BREAKER_FAILURE_RATE` | unset | 0 < rate ≤ 1: also open when the failure rate over the window reaches it |
//! | `CIRCUIT_BREAKER_WINDOW_SECONDS` | `60` | the failure-rate window (≥ 0.01) |
//! | `CIRCUIT_BREAKER_MIN_CALLS` | `10` | calls in the window before the rate counts (≥ 1) |
//! | `CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS` | `1` | trial calls in flight when half-open |
//! | `CIRCUIT_BREAKER_SUCCESS_THRESHOLD` | `1` | trial successes that close (1 to 65535) |
//! | `CIRCUIT_BREAKER_SLOW_CALL_SECONDS` | unset | a success slower than this counts as a failure |
//! | `CIRCUIT_BREAKER_MAX_IN_FLIGHT` | `auto` | LLM calls in flight: `auto` (adapts), a number, or `0` (no bound) |
//! | `REDIS_URL` | unset | `redis://` or `unix://`: shared answer cache and LLM breaker state |
//! | `BREAKWATER_ENV` | unset | `development` or `production`: also read `.env.$BREAKWATER_ENV` |
//! | `BREAKWATER_CACHE_CAPACITY` | `10000` | answers kept in the in-process cache (≥ 1) |
//! | `BREAKWATER_CACHE_TTL_SECONDS` | `3600` | how long a cached answer stays fresh |
//! | `BREAKWATER_MAX_BODY_BYTES` | `65536` | largest accepted request body (≥ 1024) |
//! | `BREAKWATER_TOP_K` | `5` | excerpts retrieved per question (1 to 20) |
//! | `BREAKWATER_LOG_FORMAT` | `text` | `text` or `json` |
//! | `RUST_LOG` | `info` | log filter (`tracing` `EnvFilter` syntax) |

mod error;
mod parse;
mod redact;
mod sources;
mod upstreams;
mod values;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use error::{ConfigError, FileError, InvalidValue};
pub use redact::{Secret, Url};
pub use upstreams::UpstreamConfig;

/// Everything Breakwater needs to start, parsed and validated from the environment.
///
/// Build it with [`Config::from_process_env_in`] in `main`, or [`Config::from_map`] in tests.
/// `Debug` and [`Config::summary`] never print the tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `BREAKWATER_ENV`: which `.env.$BREAKWATER_ENV` file was read, if any.
    pub environment: Option<Environment>,
    /// The HTTP server.
    pub server: ServerConfig,
    /// The notes store and retrieval.
    pub notes: NotesConfig,
    /// The LLM upstream.
    pub llm: LlmConfig,
    /// The circuit breaker in front of the LLM.
    pub breaker: BreakerConfig,
    /// The LLM upstreams, in the order they are tried: those of `BREAKWATER_CONFIG`, else
    /// the one `llm` and `breaker` describe (none without a token: excerpts-only mode).
    pub upstreams: Vec<UpstreamConfig>,
    /// The answer cache.
    pub cache: CacheConfig,
    /// `REDIS_URL`: shared answer cache and breaker state; `None` keeps both in-process.
    pub redis_url: Option<Url>,
    /// `DATABASE_URL`: notes in PostgreSQL (`postgres://…`); `None` = SQLite at `BREAKWATER_DB`.
    pub database_url: Option<Url>,
    /// Logging.
    pub log: LogConfig,
    /// Things that are allowed but probably a mistake (an unknown `BREAKWATER_*` variable, an
    /// open listener without an API token); `main` logs them once logging is set up.
    pub warnings: Vec<String>,
}

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// JWT mode (`BREAKWATER_JWT_*`): the user is the token's subject.
    pub jwt: Option<JwtConfig>,
    /// `BREAKWATER_ADMIN_TOKEN`: operator controls on, behind this bearer token.
    pub admin_token: Option<Secret>,
    /// `BREAKWATER_HEADER_TIMEOUT_SECONDS`: header read and idle keep-alive deadline.
    pub header_timeout: Duration,
    /// `BREAKWATER_BODY_TIMEOUT_SECONDS`: body read deadline.
    pub body_timeout: Duration,
    /// `BREAKWATER_REQUEST_TIMEOUT_SECONDS`: one request's whole budget.
    pub request_timeout: Duration,
    /// `BREAKWATER_MAX_CONNECTIONS`: `None` = derived from the open-file limit.
    pub max_connections: Option<usize>,
    /// `TOKIO_WORKER_THREADS`: the server runtime's workers; `None` = one per core.
    pub worker_threads: Option<usize>,
    /// `BREAKWATER_ADDR`: the listen address.
    pub addr: SocketAddr,
    /// `BREAKWATER_API_TOKEN`: when set, `/api/*` needs `Authorization: Bearer <token>`.
    pub api_token: Option<Secret>,
    /// `BREAKWATER_MAX_BODY_BYTES`: the largest accepted request body.
    pub max_body_bytes: usize,
}

/// The notes store and retrieval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotesConfig {
    /// `BREAKWATER_DB`: the SQLite file holding the notes.
    pub db: PathBuf,
    /// `BREAKWATER_TOP_K`: how many excerpts are retrieved per question (1 to 20).
    pub top_k: usize,
    /// `BREAKWATER_DB_TIMEOUT_SECONDS`: a PostgreSQL call's deadline (connection included).
    pub db_timeout: Duration,
}

/// The LLM upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// `HF_API_TOKEN`, else `HF_TOKEN`; `None` = excerpts-only mode.
    pub api_token: Option<Secret>,
    /// `HF_API_BASE`, without a trailing slash.
    pub api_base: Url,
    /// `HF_MODEL`.
    pub model: String,
    /// `HF_API_MODE`.
    pub mode: ApiMode,
    /// `HF_CHAT_URL`: the full URL used in [`ApiMode::Chat`].
    pub chat_url: Url,
    /// `HF_TEXT_URL`: the full URL used in [`ApiMode::Text`].
    pub text_url: Url,
    /// `HF_FIRST_TOKEN_TIMEOUT_SECONDS`: a stream with no first token by then is a failure;
    /// `None` = the breaker's call timeout.
    pub first_token_timeout: Option<Duration>,
    /// `HF_STREAM_IDLE_TIMEOUT_SECONDS`: a longer gap between a stream's chunks is a failure.
    pub stream_idle_timeout: Duration,
}

/// The circuit breaker in front of the LLM.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// `CIRCUIT_BREAKER_ENABLED`: `false` lets calls straight through (metrics still kept).
    pub enabled: bool,
    /// `CIRCUIT_BREAKER_FAIL_THRESHOLD`: consecutive failures that open the circuit (≥ 1).
    pub fail_threshold: u32,
    /// `CIRCUIT_BREAKER_TIMEOUT_SECONDS`: per-call deadline; a timeout is a failure.
    pub call_timeout: Duration,
    /// `CIRCUIT_BREAKER_RESET_TIMEOUT`: how long the circuit stays open before a trial call.
    pub reset_timeout: Duration,
    /// `CIRCUIT_BREAKER_NAME`: the breaker's name in status and metrics.
    pub name: String,
    /// `CIRCUIT_BREAKER_MAX_RESET_TIMEOUT`: the cap of the growing open time.
    pub max_reset_timeout: Duration,
    /// `CIRCUIT_BREAKER_FAILURE_RATE`: also open at this failure share over the window.
    pub failure_rate: Option<f64>,
    /// `CIRCUIT_BREAKER_WINDOW_SECONDS`.
    pub window: Duration,
    /// `CIRCUIT_BREAKER_MIN_CALLS`.
    pub min_calls: u32,
    /// `CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS`.
    pub half_open_max_calls: u32,
    /// `CIRCUIT_BREAKER_SUCCESS_THRESHOLD`.
    pub success_threshold: u32,
    /// `CIRCUIT_BREAKER_SLOW_CALL_SECONDS`.
    pub slow_call: Option<Duration>,
    /// `CIRCUIT_BREAKER_MAX_IN_FLIGHT`.
    pub max_in_flight: breaker::InFlightLimit,
    /// `CIRCUIT_BREAKER_SHARED`: with `REDIS_URL`, the state is shared by every replica.
    pub shared: bool,
}

impl BreakerConfig {
    /// A breaker builder with every one of these settings.
    pub fn builder(&self) -> breaker::Builder {
        use breaker::{Backoff, TripPolicy, Window};
        let policy = match self.failure_rate {
            None => TripPolicy::consecutive_failures(self.fail_threshold),
            Some(threshold) => TripPolicy::ConsecutiveOrRate {
                failures: self.fail_threshold,
                threshold,
                window: Window::Time(self.window),
                min_calls: self.min_calls,
            },
        };
        let backoff = if self.max_reset_timeout > self.reset_timeout {
            Backoff::Exponential {
                multiplier: 2.0,
                max: self.max_reset_timeout,
                jitter: 0.2,
            }
        } else {
            Backoff::Constant
        };
        let mut builder = breaker::CircuitBreaker::builder(self.name.clone())
            .trip_policy(policy)
            .reset_timeout(self.reset_timeout)
            .backoff(backoff)
            .half_open_max_calls(self.half_open_max_calls)
            .success_threshold(self.success_threshold)
            .call_timeout(self.call_timeout)
            .max_in_flight(self.max_in_flight)
            .enabled(self.enabled);
        if let Some(slow) = self.slow_call {
            builder = builder.slow_call_threshold(slow);
        }
        builder
    }
}

/// The in-process answer cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// `BREAKWATER_CACHE_CAPACITY`: the most answers kept (≥ 1).
    pub capacity: u64,
    /// `BREAKWATER_CACHE_TTL_SECONDS`: how long a cached answer stays fresh.
    pub ttl: Duration,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `RUST_LOG`: a `tracing_subscriber::EnvFilter` directive string, checked at parse time.
    pub filter: String,
    /// `BREAKWATER_LOG_FORMAT`.
    pub format: LogFormat,
}

/// `HF_API_MODE`: which upstream API the LLM client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ApiMode {
    /// OpenAI-style chat completions at [`LlmConfig::chat_url`].
    Chat,
    /// The HF text-generation task at [`LlmConfig::text_url`].
    Text,
}

/// `BREAKWATER_LOG_FORMAT`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `BREAKWATER_ENV`: the deployment environment, which selects `.env.$BREAKWATER_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Environment {
    /// `development`: reads `.env.development`.
    Development,
    /// `production`: reads `.env.production`.
    Production,
}

/// The default `BREAKWATER_ADDR`.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8000);

impl Config {
    /// True when there is no LLM token: the assistant answers with excerpts only.
    pub fn excerpts_only(&self) -> bool {
        self.upstreams.is_empty()
    }

    /// Where the notes live, for logs and messages: the redacted `DATABASE_URL`, else the
    /// SQLite file.
    pub fn notes_location(&self) -> String {
        match &self.database_url {
            Some(url) => redact::url(url),
            None => self.notes.db.display().to_string(),
        }
    }

    /// Opens the notes store this configuration names (see [`crate::notes::open`]);
    /// `observer`, when given, is told of the store breaker's events (the status page's
    /// record of transitions).
    ///
    /// # Errors
    ///
    /// When the store cannot be opened or migrated.
    pub async fn open_notes(
        &self,
        observer: Option<std::sync::Arc<dyn breaker::Listener>>,
    ) -> Result<crate::notes::SharedNotes, crate::notes::NotesError> {
        let (db, url) = (&self.notes.db, self.database_url.as_deref());
        crate::notes::open(db, url, self.notes.db_timeout, observer).await
    }

    /// A one-line description for the start-up log; holds no secrets.
    pub fn summary(&self) -> String {
        let env = self
            .environment
            .map_or("unset".to_owned(), |e| e.to_string());
        let llm = if self.excerpts_only() {
            "off (no HF_API_TOKEN: excerpts only)".to_owned()
        } else {
            let each: Vec<String> = self
                .upstreams
                .iter()
                .map(|u| {
                    format!(
                        "{}: {} model={} url={}",
                        u.name(),
                        u.llm.mode,
                        u.llm.model,
                        redact::url(u.llm.endpoint_url())
                    )
                })
                .collect();
            each.join(" → ")
        };
        let breaker = &self.breaker;
        let rate = breaker.failure_rate.map_or("off".to_owned(), |r| {
            format!(
                "{r} over {}s after {} calls",
                breaker.window.as_secs_f64(),
                breaker.min_calls
            )
        });
        let slow = breaker
            .slow_call
            .map_or("off".to_owned(), |d| format!("{}s", d.as_secs_f64()));
        format!(
            "env={env} addr={} db={} api_auth={} admin={} jwt={} llm={llm} breaker={}({}, fail_threshold={}, \
             failure_rate={rate}, call_timeout={}s, reset_timeout={}s, \
             max_reset_timeout={}s, half_open_max_calls={}, success_threshold={}, \
             slow_call={slow}, max_in_flight={}, shared={}) cache={} answers ttl={}s redis={} top_k={} \
             max_body={}B timeouts(header={}s, body={}s, request={}s) max_connections={} \
             workers={} log={}:{}",
            self.server.addr,
            self.notes_location(),
            on_off(self.server.api_token.is_some()),
            on_off(self.server.admin_token.is_some()),
            match self.server.jwt.as_ref().map(|j| &j.key) {
                None => "off".to_owned(),
                Some(JwtKey::Secret(_)) => "HS256".to_owned(),
                Some(JwtKey::PublicKeyFile(path)) => format!("public key {}", path.display()),
            },
            breaker.name,
            if breaker.enabled {
                "enabled"
            } else {
                "disabled"
            },
            breaker.fail_threshold,
            breaker.call_timeout.as_secs_f64(),
            breaker.reset_timeout.as_secs_f64(),
            breaker.max_reset_timeout.as_secs_f64(),
            breaker.half_open_max_calls,
            breaker.success_threshold,
            breaker.max_in_flight,
            on_off(breaker.shared && self.redis_url.is_some()),
            self.cache.capacity,
            self.cache.ttl.as_secs_f64(),
            self.redis_url.as_deref().map_or("off".into(), redact::url),
            self.notes.top_k,
            self.server.max_body_bytes,
            self.server.header_timeout.as_secs_f64(),
            self.server.body_timeout.as_secs_f64(),
            self.server.request_timeout.as_secs_f64(),
            self.server
                .max_connections
                .map_or("auto".to_owned(), |n| n.to_string()),
            self.server
                .worker_threads
                .map_or("auto".to_owned(), |n| n.to_string()),
            self.log.format,
            self.log.filter,
        )
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

impl ServerConfig {
    /// The URL a client on this machine uses to reach the server, e.g. `http://127.0.0.1:8000`
    /// (an unspecified listen address such as `0.0.0.0` becomes loopback).
    pub fn local_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{addr}")
    }
}

impl LlmConfig {
    /// The URL of the configured [`ApiMode`]: [`Self::chat_url`] or [`Self::text_url`].
    pub fn endpoint_url(&self) -> &str {
        match self.mode {
            ApiMode::Chat => &self.chat_url,
            ApiMode::Text => &self.text_url,
        }
    }
}

/// How JWTs are checked in JWT mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// The key tokens are signed with.
    pub key: JwtKey,
    /// `BREAKWATER_JWT_AUDIENCE`: the `aud` a token must carry.
    pub audience: Option<String>,
    /// `BREAKWATER_JWT_ISSUER`: the `iss` a token must carry.
    pub issuer: Option<String>,
}

/// The key of [`JwtConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey {
    /// `BREAKWATER_JWT_SECRET`: HS256 with this shared secret.
    Secret(Secret),
    /// `BREAKWATER_JWT_PUBLIC_KEY`: RS256 or ES256 with the PEM public key in this file
    /// (read at start-up).
    PublicKeyFile(PathBuf),
}

// Each is written as its `ValueEnum` name (`chat`, `json`, `production`), as it is parsed.
macro_rules! display_as_value_name {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let value = clap::ValueEnum::to_possible_value(self).ok_or(fmt::Error)?;
                f.write_str(value.get_name())
            }
        }
    )*};
}
display_as_value_name!(ApiMode, LogFormat, Environment);
