//! Breakers by name: one per upstream endpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::breaker::{Builder, CircuitBreaker};
use crate::error::BuildError;
use crate::status::Status;

/// A set of breakers looked up by name (`chat`, `text-generation`, `embeddings`, ...).
///
/// Cheap to clone; clones share the set. Lookups take a read lock: fetch a breaker once
/// and keep the handle rather than looking it up on every call.
///
/// ```
/// let registry = breaker::Registry::new();
/// let chat = registry
///     .get_or_build("chat", |b| b.reset_timeout(std::time::Duration::from_secs(5)))
///     .expect("valid");
/// assert_eq!(registry.get("chat").expect("registered").name(), chat.name());
/// assert_eq!(registry.statuses().len(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Registry {
    breakers: Arc<RwLock<BTreeMap<String, CircuitBreaker>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The breaker with this name, if registered.
    pub fn get(&self, name: &str) -> Option<CircuitBreaker> {
        let map = self.breakers.read().unwrap_or_else(PoisonError::into_inner);
        map.get(name).cloned()
    }

    /// The breaker with this name, building and registering it with `configure` if it is
    /// not there yet.
    pub fn get_or_build(
        &self,
        name: &str,
        configure: impl FnOnce(Builder) -> Builder,
    ) -> Result<CircuitBreaker, BuildError> {
        if let Some(existing) = self.get(name) {
            return Ok(existing);
        }
        let mut map = self
            .breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = map.get(name) {
            return Ok(existing.clone());
        }
        let breaker = configure(CircuitBreaker::builder(name)).build()?;
        map.insert(name.to_owned(), breaker.clone());
        Ok(breaker)
    }

    /// Registers a breaker under its own name, replacing any breaker of that name.
    pub fn insert(&self, breaker: CircuitBreaker) {
        let mut map = self
            .breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.insert(breaker.name().to_owned(), breaker);
    }

    /// Every breaker, by name.
    pub fn all(&self) -> Vec<CircuitBreaker> {
        let map = self.breakers.read().unwrap_or_else(PoisonError::into_inner);
        map.values().cloned().collect()
    }

    /// The status of every breaker, by name.
    pub fn statuses(&self) -> Vec<Status> {
        self.all().iter().map(CircuitBreaker::status).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_name_is_built_once_and_shared_by_every_clone() {
        let registry = Registry::new();
        let other = registry.clone();
        assert!(registry.get("chat").is_none());
        let first = registry
            .get_or_build("chat", |b| b.reset_timeout(Duration::from_secs(5)))
            .expect("valid");
        // The second call finds it: `configure` does not run again.
        let again = other
            .get_or_build("chat", |_| panic!("built twice"))
            .expect("registered");
        assert_eq!(again.status().reset_timeout_seconds, 5.0);
        assert_eq!(first.name(), again.name());
        assert_eq!(registry.all().len(), 1);
    }

    #[test]
    fn a_bad_configuration_registers_nothing() {
        let registry = Registry::new();
        let built = registry.get_or_build("chat", |b| b.half_open_max_calls(0));
        assert!(built.is_err());
        assert!(registry.get("chat").is_none());
        assert!(registry.statuses().is_empty());
    }

    #[test]
    fn insert_replaces_a_breaker_of_the_same_name() {
        let registry = Registry::new();
        let build = |secs| {
            CircuitBreaker::builder("chat")
                .reset_timeout(Duration::from_secs(secs))
                .build()
                .expect("valid")
        };
        registry.insert(build(5));
        registry.insert(build(9));
        let statuses = registry.statuses();
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].reset_timeout_seconds, 9.0);
    }
}
