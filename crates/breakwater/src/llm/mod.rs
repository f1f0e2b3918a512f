//! The LLM upstream: Hugging Face chat completions (any OpenAI-compatible server) or HF
//! text generation, and what each kind of failure means to the circuit breaker.

mod client;
mod error;
mod prompt;

pub use client::LlmClient;
pub use error::LlmError;
pub use prompt::Prompt;
