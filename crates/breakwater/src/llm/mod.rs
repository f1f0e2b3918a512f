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

/// One LLM upstream as the assistant sees it: an answer whole, or streamed. Each upstream
/// of the chain is one of these behind its own breaker; [`LlmClient`] speaks HTTP in
/// either API's dialect.
#[async_trait::async_trait]
pub trait LlmProvider: Send + Sync + std::fmt::Debug {
    /// An answer to `prompt`, whole.
    async fn generate(&self, prompt: &Prompt) -> Result<String, LlmError>;
    /// An answer to `prompt`, as it is written: returns once the response headers are in.
    async fn stream(&self, prompt: &Prompt) -> Result<TokenStream, LlmError>;
}
