//! Removing credentials from values before they reach logs, `Debug` output or error messages.

use std::fmt;

use super::{Config, LlmConfig, ServerConfig};

/// `url` with any `user:password@` replaced by `***@` and any `?query` by `?***`: Redis and
/// proxy URLs carry passwords there (`redis://:secret@host`, `unix:///sock?pass=secret`).
pub(super) fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(query) => format!("{}?***", &tail[..query]),
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The stand-in shown for a token's value.
pub(super) const SECRET: &str = "***";

// Hand-written `Debug` for the structs holding secrets. Each destructures `self` so that a new
// field cannot be forgotten; tokens print as `Some("***")`, URLs lose their credentials.

fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "***")
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            environment,
            server,
            notes,
            llm,
            breaker,
            upstreams,
            cache,
            redis_url,
            database_url,
            log,
            warnings,
        } = self;
        f.debug_struct("Config")
            .field("environment", environment)
            .field("server", server)
            .field("notes", notes)
            .field("llm", llm)
            .field("breaker", breaker)
            // By name: each one's settings repeat `llm` and `breaker` with its overrides.
            .field(
                "upstreams",
                &upstreams.iter().map(|u| u.name()).collect::<Vec<_>>(),
            )
            .field("cache", cache)
            .field("redis_url", &redis_url.as_deref().map(url))
            .field("database_url", &database_url.as_deref().map(url))
            .field("log", log)
            .field("warnings", warnings)
            .finish()
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            jwt,
            admin_token,
            header_timeout,
            body_timeout,
            request_timeout,
            max_connections,
            addr,
            api_token,
            max_body_bytes,
        } = self;
        f.debug_struct("ServerConfig")
            .field("addr", addr)
            .field("api_token", &redacted(api_token))
            .field("jwt", jwt)
            .field("admin_token", &redacted(admin_token))
            .field("header_timeout", header_timeout)
            .field("body_timeout", body_timeout)
            .field("request_timeout", request_timeout)
            .field("max_connections", max_connections)
            .field("max_body_bytes", max_body_bytes)
            .finish()
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            api_token,
            api_base,
            model,
            mode,
            chat_url,
            text_url,
            first_token_timeout,
            stream_idle_timeout,
        } = self;
        f.debug_struct("LlmConfig")
            .field("api_token", &redacted(api_token))
            .field("api_base", &url(api_base))
            .field("model", model)
            .field("mode", mode)
            .field("chat_url", &url(chat_url))
            .field("text_url", &url(text_url))
            .field("first_token_timeout", first_token_timeout)
            .field("stream_idle_timeout", stream_idle_timeout)
            .finish()
    }
}
