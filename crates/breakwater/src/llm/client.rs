//! The HTTP client for both Hugging Face APIs.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde_json::json;

use super::{LlmError, Prompt};
use crate::config::{ApiMode, LlmConfig};

/// Longest answer asked for, in tokens.
const MAX_NEW_TOKENS: u32 = 512;
/// Largest upstream body read.
const MAX_BODY: usize = 1 << 20;
/// Longest upstream error body kept for logs and errors.
const MAX_DETAIL: usize = 300;

/// Calls the configured LLM endpoint. Cheap to clone (a connection pool inside).
#[derive(Clone, Debug)]
pub struct LlmClient {
    http: reqwest::Client,
    mode: ApiMode,
    url: String,
    model: String,
    token: String,
}

impl LlmClient {
    /// A client for `config`'s endpoint and mode, authenticating with `token`.
    ///
    /// `timeout` bounds each request as a backstop; the circuit breaker's call timeout is
    /// the deadline that counts (it is what makes a timeout a failure).
    pub fn new(config: &LlmConfig, token: &str, timeout: Duration) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("breakwater/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(LlmError::Setup)?;
        Ok(Self {
            http,
            mode: config.mode,
            url: config.endpoint_url().to_owned(),
            model: config.model.clone(),
            token: token.to_owned(),
        })
    }

    /// Asks the upstream for an answer to `prompt`.
    pub async fn generate(&self, prompt: &Prompt) -> Result<String, LlmError> {
        let body = match self.mode {
            ApiMode::Chat => json!({
                "model": self.model,
                "messages": [
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": prompt.user},
                ],
                "max_tokens": MAX_NEW_TOKENS,
                "temperature": 0.2,
                "stream": false,
            }),
            ApiMode::Text => json!({
                "inputs": prompt.as_text(),
                "parameters": {
                    "max_new_tokens": MAX_NEW_TOKENS,
                    "temperature": 0.2,
                    "return_full_text": false,
                },
            }),
        };
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let retry_after = retry_after_header(response.headers());
        let bytes = read_capped(response).await?;
        if !status.is_success() {
            return Err(status_error(status.as_u16(), retry_after, &bytes));
        }
        parse_answer(self.mode, &bytes)
    }
}

/// The answer in a 2xx body of `mode`, trimmed; a blank one is no answer.
pub(crate) fn parse_answer(mode: ApiMode, body: &[u8]) -> Result<String, LlmError> {
    let text = match mode {
        ApiMode::Chat => parse_chat(body),
        ApiMode::Text => parse_text(body),
    }?;
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

fn transport_error(e: reqwest::Error) -> LlmError {
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

fn parse_chat(body: &[u8]) -> Result<String, LlmError> {
    #[derive(Deserialize)]
    struct Completion {
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Message {
        content: Option<String>,
    }
    let completion: Completion = serde_json::from_slice(body)
        .map_err(|e| LlmError::Malformed(format!("not a chat completion: {e}")))?;
    completion
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| LlmError::Malformed("no choice with content".to_owned()))
}

fn parse_text(body: &[u8]) -> Result<String, LlmError> {
    #[derive(Deserialize)]
    struct Generated {
        generated_text: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Reply {
        Many(Vec<Generated>),
        One(Generated),
    }
    match serde_json::from_slice::<Reply>(body) {
        Ok(Reply::Many(list)) => list
            .into_iter()
            .next()
            .map(|g| g.generated_text)
            .ok_or_else(|| LlmError::Malformed("empty generation list".to_owned())),
        Ok(Reply::One(one)) => Ok(one.generated_text),
        Err(e) => Err(LlmError::Malformed(format!("not a text generation: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_chat_completion() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}]}"#;
        assert_eq!(parse_chat(body).expect("valid"), "Hi");
        assert!(matches!(
            parse_chat(b"{\"choices\": ["),
            Err(LlmError::Malformed(_))
        ));
        assert!(matches!(
            parse_chat(br#"{"choices":[]}"#),
            Err(LlmError::Malformed(_))
        ));
    }

    #[test]
    fn reads_a_text_generation_list_or_object() {
        assert_eq!(
            parse_text(br#"[{"generated_text":"A"}]"#).expect("valid"),
            "A"
        );
        assert_eq!(
            parse_text(br#"{"generated_text":"B"}"#).expect("valid"),
            "B"
        );
        assert!(matches!(parse_text(b"[]"), Err(LlmError::Malformed(_))));
    }

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
