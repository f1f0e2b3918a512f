//! The LLM upstream: Hugging Face chat completions (any OpenAI-compatible server) or HF
//! text generation, and what each kind of failure means to the circuit breaker.

pub(crate) mod client;
mod error;
mod prompt;

pub use client::LlmClient;
pub use error::LlmError;
pub use prompt::Prompt;
