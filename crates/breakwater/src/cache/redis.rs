//! Redis as the shared L1 answer cache, so that several replicas see each other's answers.
//!
//! Redis is an optimisation, never a dependency. Every call has a short deadline
//! ([`RedisCache::DEADLINE`]) and goes through a circuit breaker named `redis`: after three
//! failures in a row Redis is skipped for five seconds, then tried again. A read that fails
//! is a miss; a write runs in a background task, so a request never waits for it. The
//! connection is made lazily and in the background, and remade after a drop by the
//! connection manager: start-up neither waits for Redis nor fails without it, and a call
//! made before the connection is up counts as a Redis failure like any other.
//!
//! Keys are `breakwater:v2:fresh:<hex>` and `breakwater:v2:latest:<hex>`, the hex of the
//! [`CacheKey`] hashes (which include the user); values are [`CachedAnswer`] as JSON and
//! expire on their own (`SET ... PX`).

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError};
use breaker::{CallError, CircuitBreaker, TripPolicy};
use tokio::sync::OnceCell;
use tracing::Instrument as _;

use sha2::{Digest, Sha256};

use super::{CacheKey, CachedAnswer};
use crate::metrics::BreakerMetrics;
use crate::user::UserId;

/// The prefix of every key; the version moves when [`CachedAnswer`]'s JSON changes shape,
/// so replicas of different versions never read each other's entries.
/// v2: answers carry the note versions they rest on.
const KEY_PREFIX: &str = "breakwater:v2";
/// Failures in a row that open the Redis circuit.
const FAIL_THRESHOLD: u32 = 3;
/// How long Redis is skipped once its circuit opened.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);
/// One connection attempt. Longer than the call deadline: it runs in the background (the
/// connection manager's own task), and a slow handshake should still end up connected.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers shared through Redis, behind a circuit breaker. Cheap to clone.
///
/// Attach it to an [`AnswerCache`](super::AnswerCache) with
/// [`with_redis`](super::AnswerCache::with_redis), and register [`RedisCache::breaker`]
/// where breakers are reported.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// Made on first use: building a connection manager spawns a task, which needs a
    /// runtime, and `RedisCache::new` must work without one.
    connection: OnceCell<ConnectionManager>,
    breaker: CircuitBreaker,
}

/// `REDIS_URL` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisCacheError {
    /// The Redis client rejects the URL (for example `rediss://`: this build has no TLS for
    /// Redis).
    #[error("REDIS_URL cannot be used: {0}")]
    Url(#[from] RedisError),
    /// The breaker in front of Redis could not be built.
    #[error(transparent)]
    Breaker(#[from] breaker::BuildError),
}

impl RedisCache {
    /// The name of the breaker in front of Redis, in status and metrics.
    pub const BREAKER_NAME: &'static str = "redis";
    /// How long one Redis call may take; past it the call counts as a failure and the
    /// request goes on with the in-process cache alone.
    pub const DEADLINE: Duration = Duration::from_millis(100);

    /// A shared cache at `url` (`redis://`, `unix://`). Makes no connection here: inside a
    /// Tokio runtime one is started in the background, otherwise on first use.
    ///
    /// # Errors
    ///
    /// When the Redis client rejects the URL.
    pub fn new(url: &str) -> Result<Self, RedisCacheError> {
        Self::observed(url, None)
    }

    /// [`Self::new`], with `observer` told of the Redis breaker's events too.
    ///
    /// # Errors
    ///
    /// When the Redis client rejects the URL.
    pub fn observed(
        url: &str,
        observer: Option<Arc<dyn breaker::Listener>>,
    ) -> Result<Self, RedisCacheError> {
        let client = Client::open(url)?;
        let mut builder = CircuitBreaker::builder(Self::BREAKER_NAME)
            .trip_policy(TripPolicy::consecutive_failures(FAIL_THRESHOLD))
            .reset_timeout(RESET_TIMEOUT)
            .call_timeout(Self::DEADLINE)
            .listener(Arc::new(BreakerMetrics));
        if let Some(observer) = observer {
            builder = builder.listener(observer);
        }
        let breaker = builder.build()?;
        let cache = Self {
            inner: Arc::new(Inner {
                client,
                connection: OnceCell::new(),
                breaker,
            }),
        };
        tracing::info!(
            redis = %cache.addr(),
            "shared answer cache on: Redis behind the in-process cache"
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(cache.clone().warm_up());
        }
        Ok(cache)
    }

    /// The breaker every Redis call goes through.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// The Redis key of the fresh answer for `key`: `breakwater:v2:fresh:<64 hex digits>`.
    pub fn fresh_key(key: &CacheKey) -> String {
        redis_key("fresh", &key.fresh)
    }

    /// The Redis key of the latest answer for `key`: `breakwater:v2:latest:<64 hex digits>`.
    pub fn latest_key(key: &CacheKey) -> String {
        redis_key("latest", &key.latest)
    }

    /// The answer stored under `key`; `None` on a miss, and also when Redis fails, is slow
    /// or is being skipped (its circuit is open).
    pub(super) async fn get(&self, key: &str) -> Option<CachedAnswer> {
        let read = self.with_connection(|mut connection| async move {
            ::redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut connection)
                .await
        });
        let json = match self.inner.breaker.call(read).await {
            Ok(json) => json?,
            Err(err) => {
                report("read", &err);
                return None;
            }
        };
        match serde_json::from_str(&json) {
            Ok(answer) => Some(answer),
            Err(err) => {
                // Redis answered: not its failure. Another writer's bug; a miss is safe.
                tracing::warn!(key, %err, "unreadable answer in Redis, treated as a miss");
                None
            }
        }
    }

    /// Writes `answer` under both keys in a background task: the fresh one expires after
    /// `fresh_ttl`, the latest one after `latest_ttl`.
    pub(super) fn store_in_background(
        &self,
        key: &CacheKey,
        answer: &CachedAnswer,
        fresh_ttl: Duration,
        latest_ttl: Duration,
    ) {
        let json = match serde_json::to_string(answer) {
            Ok(json) => json,
            Err(err) => {
                tracing::warn!(%err, "answer not shared: it cannot be written as JSON");
                return;
            }
        };
        let mut pipe = ::redis::pipe();
        for (redis_key, ttl) in [
            (Self::fresh_key(key), fresh_ttl),
            (Self::latest_key(key), latest_ttl),
        ] {
            pipe.cmd("SET")
                .arg(redis_key)
                .arg(&json)
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
        }
        let this = self.clone();
        let write = async move {
            let pipe = &pipe;
            let write = this.with_connection(|mut connection| async move {
                pipe.exec_async(&mut connection).await
            });
            if let Err(err) = this.inner.breaker.call(write).await {
                report("write", &err);
            }
        };
        tokio::spawn(write.in_current_span());
    }

    /// The connection manager, made on first use. It connects lazily and reconnects by
    /// itself; its calls fail at once (an I/O error) while Redis cannot be reached.
    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let manager = self
            .inner
            .connection
            .get_or_try_init(|| async {
                // No retries inside the manager: a failed call starts a new attempt, and
                // the breaker already spaces calls out while Redis is down.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    /// Runs `command` on the connection, once more after an I/O error: the manager answers
    /// the first call after a drop (or a failed connection attempt) with that error and
    /// only then starts a new connection. Without the second try, a Redis that is back
    /// would be found only by the next trial call, one reset timeout later. Both commands
    /// used here (GET, SET) are safe to repeat.
    async fn with_connection<T, F>(
        &self,
        command: impl Fn(ConnectionManager) -> F,
    ) -> Result<T, RedisError>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        match command(self.connection().await?).await {
            Err(err) if err.is_io_error() => command(self.connection().await?).await,
            result => result,
        }
    }

    /// Connects and pings once, outside the breaker, so the first request finds a
    /// connection and the log says at start-up whether Redis answers.
    async fn warm_up(self) {
        let ping = async {
            let mut connection = self.connection().await?;
            ::redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await
        };
        let answered = match tokio::time::timeout(CONNECT_TIMEOUT, ping).await {
            Ok(result) => result.map_err(|err| err.to_string()),
            Err(_) => Err(format!(
                "no answer within {}s",
                CONNECT_TIMEOUT.as_secs_f64()
            )),
        };
        let redis = self.addr();
        match answered {
            Ok(()) => tracing::info!(redis, "shared answer cache: Redis answers"),
            Err(err) => tracing::warn!(
                redis,
                %err,
                "shared answer cache: Redis does not answer; answers stay in this process \
                 until it does"
            ),
        }
    }

    /// Where Redis is (`host:port` or a socket path), without the credentials of the URL.
    fn addr(&self) -> String {
        self.inner.client.get_connection_info().addr().to_string()
    }
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("addr", &self.addr())
            .field("circuit", &self.inner.breaker.state())
            .finish()
    }
}

impl RedisCache {
    /// The Redis key of a user's latest known notes generation.
    fn generation_key(user: &UserId) -> String {
        let hash: [u8; 32] = Sha256::digest(user.as_str().as_bytes()).into();
        redis_key("generation", &hash)
    }

    /// Raises the user's known notes generation to `generation` in a background task
    /// (never lowers it: writes from several replicas may arrive out of order).
    pub(super) fn raise_generation_in_background(&self, user: &UserId, generation: u64) {
        let (this, user) = (self.clone(), user.clone());
        let write = async move {
            if let Err(err) = this.raise_generation(&user, generation).await {
                report("write", &err);
            }
        };
        tokio::spawn(write.in_current_span());
    }

    /// Raises the user's known notes generation to `generation` now (`breakwater ingest`,
    /// which writes the notes outside any replica, tells them this way before it exits).
    pub async fn raise_generation(
        &self,
        user: &UserId,
        generation: u64,
    ) -> Result<(), CallError<RedisError>> {
        let key = Self::generation_key(user);
        let (key, script) = (&key, &*RAISE);
        let write = self.with_connection(|mut connection| async move {
            script
                .key(key)
                .arg(generation)
                .arg(millis(GENERATION_TTL))
                .invoke_async::<()>(&mut connection)
                .await
        });
        self.inner.breaker.call(write).await
    }

    /// The user's latest notes generation known to any replica, if Redis answers.
    pub(super) async fn generation(&self, user: &UserId) -> Option<u64> {
        let key = Self::generation_key(user);
        let read = self.with_connection(|mut connection| {
            let key = key.clone();
            async move {
                ::redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<u64>>(&mut connection)
                    .await
            }
        });
        self.inner.breaker.call(read).await.ok().flatten()
    }
}

/// How long a user's known generation is kept after their last write.
const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// SET the key to ARGV[1] unless it already holds a larger number.
static RAISE: std::sync::LazyLock<::redis::Script> = std::sync::LazyLock::new(|| {
    ::redis::Script::new(
        "if (tonumber(redis.call('GET', KEYS[1])) or -1) < tonumber(ARGV[1]) then \
           redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end",
    )
});

/// Logs a failed Redis call. Once per failure while the circuit is closed (three in a row
/// open it, and the opening is logged too), so an outage does not log every request.
fn report(operation: &'static str, err: &CallError<RedisError>) {
    match err {
        CallError::Rejected(_) => {
            tracing::debug!(operation, "Redis skipped: its circuit is open");
        }
        CallError::Timeout(_) | CallError::Inner(_) => {
            tracing::warn!(operation, %err, "Redis call failed; going on with the in-process cache");
        }
    }
}

fn redis_key(kind: &str, hash: &[u8; 32]) -> String {
    let mut key = format!("{KEY_PREFIX}:{kind}:");
    for byte in hash {
        // Writing to a String cannot fail.
        let _ = write!(key, "{byte:02x}");
    }
    key
}

/// A TTL in whole milliseconds for `PX`, at least 1 (Redis refuses 0).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::UserId;

    fn key() -> CacheKey {
        let user = UserId::parse("alice").expect("valid user id");
        CacheKey::new(&user, "q", "m", 1)
    }

    #[test]
    fn keys_are_versioned_and_hold_the_hex_of_the_hash() {
        let fresh = RedisCache::fresh_key(&key());
        let latest = RedisCache::latest_key(&key());
        for (redis_key, prefix) in [
            (&fresh, "breakwater:v2:fresh:"),
            (&latest, "breakwater:v2:latest:"),
        ] {
            let hex = redis_key.strip_prefix(prefix).expect("prefixed");
            assert_eq!(hex.len(), 64, "{redis_key}");
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        assert_ne!(fresh[20..], latest[21..], "different hashes");
    }

    #[test]
    fn ttls_are_whole_milliseconds_and_never_zero() {
        assert_eq!(millis(Duration::from_secs_f64(1.5)), 1_500);
        assert_eq!(millis(Duration::from_micros(10)), 1);
    }

    #[test]
    fn building_needs_no_runtime_and_no_redis() {
        let cache = RedisCache::new("redis://127.0.0.1:1").expect("a valid URL");
        assert_eq!(cache.breaker().name(), "redis");
        assert_eq!(cache.breaker().call_timeout(), Some(RedisCache::DEADLINE));
    }

    #[test]
    fn a_url_the_client_cannot_use_is_an_error() {
        assert!(RedisCache::new("rediss://127.0.0.1:6379").is_err());
    }
}
