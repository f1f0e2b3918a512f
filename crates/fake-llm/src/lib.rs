//! A fake LLM upstream speaking both Hugging Face inference APIs, with fault injection.
//!
//! [`FakeLlm`] answers OpenAI-style chat completions (`POST /v1/chat/completions`) and HF
//! text generation (`POST /hf-inference/models/{model}`, `POST /models/{model}`) with a
//! deterministic answer that quotes the prompt, whole or streamed (`"stream": true`: SSE in
//! OpenAI's chunk format, or TGI's token format). Its [`Fault`] — errors, latency, hangs,
//! broken JSON, streams cut, stalled, dripping or broken after N pieces — can be switched at run time, from code or over `PUT /admin/fault`, so
//! tests, benchmarks and demos can take the upstream down and bring it back. Each streamed
//! call's wait for its first piece is kept for `GET /admin/first-pieces`, so a benchmark can
//! subtract the upstream's own first token, call by call, from what a proxy's client saw.
//!
//! ```no_run
//! use fake_llm::{FakeLlm, Fault};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let upstream = FakeLlm::new().spawn().await?;
//! let chat_url = format!("{}/v1/chat/completions", upstream.base_url());
//! // ... point the client under test at `chat_url` ...
//! upstream.llm.set_fault(Fault::error(503).with_retry_after_seconds(2));
//! // ... the client now sees 503s; then check that the breaker stopped calling:
//! let calls_before = upstream.llm.calls();
//! # let _ = (chat_url, calls_before);
//! upstream.shutdown().await
//! # }
//! ```
#![deny(missing_docs)]

mod admin;
mod answer;
mod api;
mod error;
mod fault;
mod server;
mod state;
mod stream;

pub use fault::{Fault, FaultMode, InvalidFault, StreamFault, StreamMode};
pub use server::RunningFakeLlm;
pub use state::{FakeLlm, FirstPiece, PROMPT_TAIL_CHARS, Stats};
