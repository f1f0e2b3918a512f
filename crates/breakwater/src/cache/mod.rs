//! The L1 answer cache: fresh answers by notes generation, and the latest answer per
//! question for the stale fallback.
//!
//! A fresh entry is keyed by hash(user, normalised query, model, notes generation): any write
//! to the user's notes moves the generation, so a fresh hit is always an answer to the notes
//! as they are. Beside it, the latest answer to the same (user, query, model), whatever the
//! generation, is kept longer: when the LLM is unavailable an answer to slightly older notes
//! beats no answer (`stale_cache`). The user is part of both keys, so one user's answer can
//! never be served to another.
//!
//! Answers live in this process (moka, bounded, with a time to live) and, once
//! [`AnswerCache::with_redis`] attached one, in Redis too, so that several replicas share
//! them: a read asks moka first and Redis only on a miss (a Redis hit fills moka), a write
//! goes to both. Redis is an optimisation, never a dependency: see [`RedisCache`]. Replicas
//! that share a Redis must serve the same notes: a key holds the notes *generation*, not
//! the notes themselves.

mod redis;

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::notes::Excerpt;
use crate::user::UserId;

pub use self::redis::{RedisCache, RedisCacheError};

/// How long the latest answer to a question stays available for the stale fallback (at
/// least; never shorter than the fresh TTL).
pub const STALE_HORIZON: Duration = Duration::from_secs(24 * 3600);

/// An answer the LLM gave, with the sources it was grounded in.
///
/// Stored in Redis as JSON; a change to this shape must bump the version in the Redis keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    /// The answer text.
    pub answer: String,
    /// The excerpts the answer was built from.
    pub sources: Vec<Excerpt>,
    /// The user's notes generation the answer was built on.
    pub generation: u64,
    /// The notes it rests on, as they were: a stale answer is served only while every one
    /// of them is unchanged (a deleted or edited note's text is never served again).
    #[serde(default)]
    pub rests_on: Vec<crate::notes::NoteVersion>,
    /// The upstream that gave the answer (empty in entries from before the chain).
    #[serde(default)]
    pub upstream: String,
    /// Its model.
    #[serde(default)]
    pub model: String,
}

/// Where an answer lives in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    fresh: [u8; 32],
    latest: [u8; 32],
}

impl CacheKey {
    /// The key of `query` asked by `user` of `model` over notes generation `generation`.
    pub fn new(user: &UserId, query: &str, model: &str, generation: u64) -> Self {
        let mut hasher = Sha256::new();
        // Length-prefixed fields: no two different tuples hash the same input.
        for field in [user.as_str(), &normalise(query), model] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        let latest: [u8; 32] = hasher.clone().finalize().into();
        hasher.update(generation.to_le_bytes());
        Self {
            fresh: hasher.finalize().into(),
            latest,
        }
    }
}

/// A query as the cache sees it: case, spacing and trailing punctuation do not matter.
///
/// ```
/// assert_eq!(breakwater::cache::normalise("  What  IS a Breaker?? "), "what is a breaker");
/// ```
pub fn normalise(query: &str) -> String {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    words
        .join(" ")
        .trim_end_matches(['?', '!', '.', ' '])
        .to_owned()
}

/// The answer cache: in-process (bounded, with a time to live), optionally backed by Redis.
///
/// Cheap to clone; clones share the entries.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use breakwater::cache::{AnswerCache, CacheKey, CachedAnswer};
/// use breakwater::user::UserId;
///
/// let cache = AnswerCache::new(1_000, Duration::from_secs(60));
/// let user = UserId::parse("alice").expect("valid user id");
/// let key = CacheKey::new(&user, "When does a breaker open?", "model", 1);
/// let answer = CachedAnswer {
///     answer: "After five failures.".into(),
///     sources: vec![],
///     generation: 1,
///     rests_on: vec![],
///     upstream: "huggingface".into(),
///     model: "model".into(),
/// };
/// cache.insert(&key, answer).await;
/// assert!(cache.fresh(&key).await.is_some());
/// # }
/// ```
#[derive(Clone)]
pub struct AnswerCache {
    /// The notes generation last seen for each user: which fresh answer is still the
    /// answer while the notes store cannot be asked.
    generations: Cache<UserId, u64>,
    fresh: Cache<[u8; 32], Arc<CachedAnswer>>,
    latest: Cache<[u8; 32], Arc<CachedAnswer>>,
    fresh_ttl: Duration,
    latest_ttl: Duration,
    redis: Option<RedisCache>,
}

impl AnswerCache {
    /// A cache of at most `capacity` answers, fresh for `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let latest_ttl = ttl.max(STALE_HORIZON);
        Self {
            generations: Cache::new(capacity),
            fresh: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            latest: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(latest_ttl)
                .build(),
            fresh_ttl: ttl,
            latest_ttl,
            redis: None,
        }
    }

    /// Shares answers through `redis`, behind the in-process cache.
    pub fn with_redis(mut self, redis: RedisCache) -> Self {
        self.redis = Some(redis);
        self
    }

    /// The answer for exactly this user, query, model and notes generation.
    ///
    /// With Redis attached, a miss here asks Redis, waiting at most
    /// [`RedisCache::DEADLINE`]; a Redis failure is a miss.
    pub async fn fresh(&self, key: &CacheKey) -> Option<Arc<CachedAnswer>> {
        read_through(&self.fresh, key.fresh, self.redis.as_ref(), || {
            RedisCache::fresh_key(key)
        })
        .await
    }

    /// The latest answer for this user, query and model, from any notes generation; asks
    /// Redis on a miss, like [`fresh`](Self::fresh).
    pub async fn latest(&self, key: &CacheKey) -> Option<Arc<CachedAnswer>> {
        read_through(&self.latest, key.latest, self.redis.as_ref(), || {
            RedisCache::latest_key(key)
        })
        .await
    }

    /// Stores an answer under both keys; the Redis write (if any) runs in the background,
    /// so the caller never waits for it.
    pub async fn insert(&self, key: &CacheKey, answer: CachedAnswer) {
        if let Some(redis) = &self.redis {
            redis.store_in_background(key, &answer, self.fresh_ttl, self.latest_ttl);
        }
        let answer = Arc::new(answer);
        self.fresh.insert(key.fresh, Arc::clone(&answer)).await;
        self.latest.insert(key.latest, answer).await;
    }
}

impl AnswerCache {
    /// Notes that `user`'s notes generation is `generation`, as just read from the store.
    /// `written`: this replica just wrote the notes, so the others are told through Redis
    /// too (reads are not shared: every replica reads the generation on every question).
    pub async fn saw_generation(&self, user: &UserId, generation: u64, written: bool) {
        let entry = self.generations.entry(user.clone());
        entry
            .and_upsert_with(|old| async move {
                old.map_or(generation, |old| old.into_value().max(generation))
            })
            .await;
        if written && let Some(redis) = &self.redis {
            redis.raise_generation_in_background(user, generation);
        }
    }

    /// The newest notes generation of `user` seen here or, through Redis, by any replica.
    pub async fn known_generation(&self, user: &UserId) -> Option<u64> {
        let local = self.generations.get(user).await;
        let shared = match &self.redis {
            Some(redis) => redis.generation(user).await,
            None => None,
        };
        local.max(shared)
    }
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("fresh", &self.fresh.entry_count())
            .field("latest", &self.latest.entry_count())
            .field("redis", &self.redis)
            .finish()
    }
}

/// moka first, then Redis; a Redis hit fills moka. It gets a full TTL there: the key (with
/// the notes generation, for fresh answers) keeps it true to the notes, only its lifetime
/// can exceed the one left in Redis.
async fn read_through(
    local: &Cache<[u8; 32], Arc<CachedAnswer>>,
    hash: [u8; 32],
    redis: Option<&RedisCache>,
    redis_key: impl FnOnce() -> String,
) -> Option<Arc<CachedAnswer>> {
    if let Some(hit) = local.get(&hash).await {
        return Some(hit);
    }
    let hit = Arc::new(redis?.get(&redis_key()).await?);
    local.insert(hash, Arc::clone(&hit)).await;
    Some(hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse(id).expect("valid user id")
    }

    fn answer(text: &str, generation: u64) -> CachedAnswer {
        CachedAnswer {
            answer: text.to_owned(),
            sources: Vec::new(),
            generation,
            rests_on: Vec::new(),
            upstream: String::new(),
            model: String::new(),
        }
    }

    #[tokio::test]
    async fn a_fresh_hit_needs_the_same_notes_generation() {
        let cache = AnswerCache::new(100, Duration::from_secs(60));
        cache
            .insert(&CacheKey::new(&user("a"), "q", "m", 1), answer("A", 1))
            .await;
        assert!(
            cache
                .fresh(&CacheKey::new(&user("a"), "Q ", "m", 1))
                .await
                .is_some()
        );
        let newer = CacheKey::new(&user("a"), "q", "m", 2);
        assert!(cache.fresh(&newer).await.is_none());
        let stale = cache.latest(&newer).await.expect("stale answer kept");
        assert_eq!(stale.generation, 1);
    }

    #[tokio::test]
    async fn another_user_never_hits_an_answer() {
        let cache = AnswerCache::new(100, Duration::from_secs(60));
        cache
            .insert(&CacheKey::new(&user("alice"), "q", "m", 1), answer("A", 1))
            .await;
        let bob = CacheKey::new(&user("bob"), "q", "m", 1);
        assert!(cache.fresh(&bob).await.is_none());
        assert!(cache.latest(&bob).await.is_none());
    }

    #[tokio::test]
    async fn the_model_is_part_of_the_key() {
        let cache = AnswerCache::new(100, Duration::from_secs(60));
        cache
            .insert(&CacheKey::new(&user("a"), "q", "m1", 1), answer("A", 1))
            .await;
        assert!(
            cache
                .latest(&CacheKey::new(&user("a"), "q", "m2", 1))
                .await
                .is_none()
        );
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        let a = CacheKey::new(&user("ab"), "c", "m", 0);
        let b = CacheKey::new(&user("a"), "bc", "m", 0);
        assert_ne!(a, b);
    }
}
