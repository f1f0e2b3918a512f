//! The L1 answer cache: fresh answers by notes generation, and the latest answer per
//! question for the stale fallback.
//!
//! A fresh entry is keyed by hash(user, normalised query, model, notes generation): any write
//! to the user's notes moves the generation, so a fresh hit is always an answer to the notes
//! as they are. Beside it, the latest answer to the same (user, query, model), whatever the
//! generation, is kept longer: when the LLM is unavailable an answer to slightly older notes
//! beats no answer (`stale_cache`). The user is part of both keys, so one user's answer can
//! never be served to another.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::notes::Excerpt;
use crate::user::UserId;

/// How long the latest answer to a question stays available for the stale fallback (at
/// least; never shorter than the fresh TTL).
pub const STALE_HORIZON: Duration = Duration::from_secs(24 * 3600);

/// An answer the LLM gave, with the sources it was grounded in.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedAnswer {
    /// The answer text.
    pub answer: String,
    /// The excerpts the answer was built from.
    pub sources: Vec<Excerpt>,
    /// The user's notes generation the answer was built on.
    pub generation: u64,
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

/// The in-process answer cache (bounded, with a time to live).
#[derive(Clone)]
pub struct AnswerCache {
    fresh: Cache<[u8; 32], Arc<CachedAnswer>>,
    latest: Cache<[u8; 32], Arc<CachedAnswer>>,
}

impl AnswerCache {
    /// A cache of at most `capacity` answers, fresh for `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            fresh: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            latest: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.max(STALE_HORIZON))
                .build(),
        }
    }

    /// The answer for exactly this user, query, model and notes generation.
    pub async fn fresh(&self, key: &CacheKey) -> Option<Arc<CachedAnswer>> {
        self.fresh.get(&key.fresh).await
    }

    /// The latest answer for this user, query and model, from any notes generation.
    pub async fn latest(&self, key: &CacheKey) -> Option<Arc<CachedAnswer>> {
        self.latest.get(&key.latest).await
    }

    /// Stores an answer under both keys.
    pub async fn insert(&self, key: &CacheKey, answer: CachedAnswer) {
        let answer = Arc::new(answer);
        self.fresh.insert(key.fresh, Arc::clone(&answer)).await;
        self.latest.insert(key.latest, answer).await;
    }
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("fresh", &self.fresh.entry_count())
            .field("latest", &self.latest.entry_count())
            .finish()
    }
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
