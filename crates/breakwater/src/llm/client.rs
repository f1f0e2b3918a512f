//! The HTTP client for both upstream APIs, whole or streamed.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Deserialize;

use super::dialect::{self, Dialect, MAX_DETAIL};
use super::stream::TokenStream;
use super::{LlmError, Prompt};
use crate::config::LlmConfig;

/// Largest upstream body read (a whole answer, or all of a stream's events).
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Calls the configured LLM endpoint. Cheap to clone (a connection pool inside).
#[derive(Clone, Debug)]
pub struct LlmClient {
    http: reqwest::Client,
    dialect: &'static dyn Dialect,
    url: String,
    model: String,
    token: Option<String>,
    /// The backstop for a whole stream (the client's own timeout bounds a whole answer).
    stream_timeout: Duration,
}

impl LlmClient {
    /// A client for `config`'s endpoint and mode, authenticating with `token` (a bearer
    /// token; none for a server that needs none).
    ///
    /// `timeout` bounds each whole-answer request as a backstop; the circuit breaker's call
    /// timeout is the deadline that counts (it is what makes a timeout a failure). A stream
    /// is bounded by `stream_timeout` instead: the caller's first-token and idle deadlines
    /// are the ones that count.
    pub fn new(
        config: &LlmConfig,
        token: Option<&str>,
        timeout: Duration,
        stream_timeout: Duration,
    ) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("breakwater/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(LlmError::Setup)?;
        Ok(Self {
            http,
            dialect: dialect::of(config.mode),
            url: config.endpoint_url().to_owned(),
            model: config.model.clone(),
            token: token.map(str::to_owned),
            stream_timeout,
        })
    }

    /// Asks the upstream for an answer to `prompt`.
    pub async fn generate(&self, prompt: &Prompt) -> Result<String, LlmError> {
        let response = self.send(prompt, false).await?;
        let bytes = read_capped(response).await?;
        parse_answer(self.dialect, &bytes)
    }

    /// Asks the upstream for an answer to `prompt`, streamed: returns once the response
    /// headers are in. A server that answers a stream request with a whole JSON answer is
    /// read as a stream of one piece.
    pub async fn stream(&self, prompt: &Prompt) -> Result<TokenStream, LlmError> {
        let response = self.send(prompt, true).await?;
        let is_event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !is_event_stream {
            let bytes = read_capped(response).await?;
            return Ok(TokenStream::whole(parse_answer(self.dialect, &bytes)?));
        }
        Ok(TokenStream::new(response, self.dialect))
    }

    /// Sends the request; an error status is read into an [`LlmError::Status`].
    async fn send(&self, prompt: &Prompt, stream: bool) -> Result<reqwest::Response, LlmError> {
        let mut request =
            self.http
                .post(&self.url)
                .json(&self.dialect.body(&self.model, prompt, stream));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if stream {
            request = request
                .timeout(self.stream_timeout)
                .header(reqwest::header::ACCEPT, "text/event-stream");
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after_header(response.headers());
        let bytes = read_capped(response).await?;
        Err(status_error(status.as_u16(), retry_after, &bytes))
    }
}

#[async_trait::async_trait]
impl super::LlmProvider for LlmClient {
    async fn generate(&self, prompt: &Prompt) -> Result<String, LlmError> {
        LlmClient::generate(self, prompt).await
    }

    async fn stream(&self, prompt: &Prompt) -> Result<TokenStream, LlmError> {
        LlmClient::stream(self, prompt).await
    }
}

/// The answer in a 2xx body in `dialect`, trimmed; a blank one is no answer.
pub(crate) fn parse_answer(dialect: &dyn Dialect, body: &[u8]) -> Result<String, LlmError> {
    let text = dialect.answer(body)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(LlmError::Malformed("empty answer".to_owned()));
    }
    Ok(text.to_owned())
}

/// Reads the body, refusing one larger than `MAX_BODY`: a broken upstream must not make
/// us buffer without bound.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, LlmError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(LlmError::Malformed(format!(
                "answer larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn transport_error(e: reqwest::Error) -> LlmError {
    if e.is_timeout() {
        LlmError::Timeout
    } else {
        LlmError::Connect(e)
    }
}

/// The longest wait an upstream's hint may impose: a `Retry-After: 1000000000` must not
/// reach our own callers (nor hold the circuit open for years).
pub const MAX_RETRY_HINT: Duration = Duration::from_secs(300);

/// `Retry-After` as delay-seconds or as an HTTP-date, capped at [`MAX_RETRY_HINT`]; a date
/// in the past is no wait.
pub(crate) fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds.min(MAX_RETRY_HINT.as_secs())),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_HINT))
}

pub(crate) fn status_error(status: u16, retry_after: Option<Duration>, body: &[u8]) -> LlmError {
    #[derive(Deserialize)]
    struct Loading {
        estimated_time: f64,
    }
    // HF answers 503 `{"error": "Model is loading", "estimated_time": 20.0}` while a
    // model loads: the wait it names is as good as a Retry-After.
    let estimated = serde_json::from_slice::<Loading>(body)
        .ok()
        .filter(|l| l.estimated_time.is_finite() && l.estimated_time > 0.0)
        .map(|l| Duration::from_secs_f64(l.estimated_time.min(MAX_RETRY_HINT.as_secs_f64())));
    let text = String::from_utf8_lossy(body);
    let detail: String = text.chars().take(MAX_DETAIL).collect();
    LlmError::Status {
        status,
        retry_after: retry_after.or(estimated),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, v.parse().expect("a header value"));
            retry_after_header(&h)
        };
        assert_eq!(header("7"), Some(Duration::from_secs(7)));
        assert_eq!(header("1000000000"), Some(MAX_RETRY_HINT));
        let soon = std::time::SystemTime::now() + Duration::from_secs(90);
        let wait = header(&httpdate::fmt_http_date(soon)).expect("a date");
        assert!(wait > Duration::from_secs(85) && wait <= Duration::from_secs(90));
        let far = std::time::SystemTime::now() + Duration::from_secs(86_400);
        assert_eq!(header(&httpdate::fmt_http_date(far)), Some(MAX_RETRY_HINT));
        assert_eq!(
            header("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(header("soon"), None);
        let e = status_error(503, None, br#"{"error":"loading","estimated_time":1e9}"#);
        assert!(matches!(e, LlmError::Status { retry_after: Some(d), .. } if d == MAX_RETRY_HINT));
    }

    #[test]
    fn a_loading_model_s_estimated_time_becomes_the_retry_hint() {
        let e = status_error(503, None, br#"{"error":"loading","estimated_time":20.5}"#);
        assert!(
            matches!(e, LlmError::Status { retry_after: Some(d), .. } if d == Duration::from_secs_f64(20.5))
        );
        let e = status_error(429, Some(Duration::from_secs(7)), b"slow down");
        assert!(
            matches!(e, LlmError::Status { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
    }
}
