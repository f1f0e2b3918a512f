//! The LLM upstream: Hugging Face chat completions (any OpenAI-compatible server) or HF
//! text generation, whole or streamed, and what each kind of failure means to the circuit
//! breaker.

pub(crate) mod client;
pub(crate) mod dialect;
mod error;
mod prompt;
mod stream;

pub use client::LlmClient;
pub use dialect::Chunk;
pub use error::LlmError;
pub use prompt::Prompt;
pub use stream::TokenStream;
