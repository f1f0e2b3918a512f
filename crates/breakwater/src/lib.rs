//! Breakwater: a fault-tolerant AI assistant server for a user's notes.
//!
//! A question is answered from the user's notes (SQLite and a tantivy index) by an LLM behind a circuit
//! breaker; when the LLM is unavailable the assistant falls back to its answer cache, then to
//! the excerpts themselves, and only then to `503` with an honest `Retry-After`.
#![deny(missing_docs)]

pub mod assistant;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod http;
pub mod listen;
pub mod llm;
pub mod metrics;
pub mod notes;
pub mod server;
pub mod user;
