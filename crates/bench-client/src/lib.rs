//! The streaming benches' load client (`bench/breakwater_bench/streams.py`).
//!
//! It sends the requests of a [`Plan`] open-loop at a fixed rate (or one after another),
//! each over its own HTTP/1.0 connection, and gives back per request an [`Outcome`]: the
//! status, the time to its first piece of answer, the whole time, and the events read.
//!
//! It is Rust, not the benches' Python, because what it measures is a fraction of a
//! millisecond: the time a proxy adds to a stream's first piece. An asyncio client parsing
//! some 2,000 chunks a second on the core it shares with fake-llm stamps a first piece when
//! its loop gets round to it, which can be later than the piece arrived by more than the
//! goal's whole margin. Here a piece is stamped as soon as the read that brought it returns.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to send, and how fast.
#[derive(Debug, Deserialize)]
pub struct Plan {
    /// Requests per second, open loop: the `i`-th starts `i / rate` s after the first,
    /// whether or not the earlier ones are done. Absent: one after another.
    #[serde(default)]
    pub rate: Option<f64>,
    /// How long one request may take in all, connection to last byte.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// The requests, in the order they are sent; the outcomes come back in the same order.
    pub requests: Vec<Request>,
}

fn default_timeout_s() -> f64 {
    30.0
}

/// One request to a server on 127.0.0.1.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The server's port.
    pub port: u16,
    /// The path, with any query string.
    pub path: String,
    /// POSTed as JSON; absent, the request is a GET.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

/// What one request got.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// The response's status; 0 when no response head arrived (see `error`).
    pub status: u16,
    /// From just before connecting to the read that brought the first piece of answer
    /// ([`is_piece`]), in ms; `None` when no piece came.
    pub first_ms: Option<f64>,
    /// From just before connecting to the end of the response (or the error), in ms.
    pub total_ms: f64,
    /// The events of an event-stream response, as (name, data); none for other bodies.
    pub events: Vec<(String, String)>,
    /// Why the request did not end cleanly: a connection error, a broken response, the
    /// timeout.
    pub error: Option<String>,
}

/// Sends every request of `plan`; the outcomes in the plan's order.
pub async fn run(plan: Plan) -> Vec<Outcome> {
    let timeout = Duration::from_secs_f64(plan.timeout_s);
    let Some(rate) = plan.rate else {
        let mut outcomes = Vec::with_capacity(plan.requests.len());
        for request in &plan.requests {
            outcomes.push(send(request, timeout).await);
        }
        return outcomes;
    };
    let start = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(plan.requests.len());
    for (i, request) in plan.requests.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        sent.push(tokio::spawn(async move { send(&request, timeout).await }));
    }
    let mut outcomes = Vec::with_capacity(sent.len());
    for task in sent {
        outcomes.push(task.await.unwrap_or_else(|e| Outcome {
            error: Some(format!("the request's task failed: {e}")),
            ..Outcome::default()
        }));
    }
    outcomes
}

/// One request, within `timeout`.
pub async fn send(request: &Request, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    match tokio::time::timeout(timeout, exchange(request, started, &mut outcome)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => outcome.error = Some(format!("{e:#}")),
        Err(_) => outcome.error = Some(format!("no end within {timeout:?}")),
    }
    outcome.total_ms = ms(started.elapsed());
    outcome
}

/// Whether an event carries the first piece of an answer: breakwater's `delta`, an
/// OpenAI-style chunk with content, or a TGI token with text (not a special token such as
/// the closing `</s>`).
pub fn is_piece(name: &str, data: &str) -> bool {
    if name == "delta" {
        return true;
    }
    if name != "message" || !data.starts_with('{') {
        return false;
    }
    let Ok(chunk) = serde_json::from_str::<serde_json::Value>(data) else {
        return false;
    };
    let special = chunk.pointer("/token/special") == Some(&serde_json::Value::Bool(true));
    let text = chunk
        .pointer("/choices/0/delta/content")
        .or_else(|| chunk.pointer("/token/text").filter(|_| !special));
    text.and_then(serde_json::Value::as_str)
        .is_some_and(|t| !t.is_empty())
}

/// Connects, sends, reads the head and then the body to its end (the server closes it:
/// HTTP/1.0), filling `outcome` as it goes so a timeout keeps what was read.
async fn exchange(
    request: &Request,
    started: Instant,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let mut conn = TcpStream::connect(("127.0.0.1", request.port))
        .await
        .with_context(|| format!("connecting to port {}", request.port))?;
    conn.set_nodelay(true)?;
    conn.write_all(&encode(request)).await?;

    let mut buf = Vec::with_capacity(16 * 1024);
    let body_at = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if conn.read_buf(&mut buf).await? == 0 {
            bail!("the connection closed before the response head");
        }
    };
    let head = std::str::from_utf8(&buf[..body_at]).context("a response head not in UTF-8")?;
    outcome.status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status in {:?}", head.lines().next()))?;
    let event_stream = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("content-type:") && line.contains("text/event-stream")
    });
    let first = buf.split_off(body_at);
    if !event_stream {
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await?;
        return Ok(());
    }

    let bytes = async_stream::stream! {
        yield Ok::<_, std::io::Error>(first);
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match conn.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => yield Ok(chunk[..n].to_vec()),
                Err(e) => {
                    yield Err(e);
                    break;
                }
            }
        }
    };
    let mut events = std::pin::pin!(bytes.eventsource());
    while let Some(event) = events.next().await {
        let event = event.context("reading the event stream")?;
        if outcome.first_ms.is_none() && is_piece(&event.event, &event.data) {
            outcome.first_ms = Some(ms(started.elapsed()));
        }
        outcome.events.push((event.event, event.data));
    }
    Ok(())
}

/// The request's bytes: HTTP/1.0, so the server ends the body by closing (no chunked
/// framing to undo while timing).
fn encode(request: &Request) -> Vec<u8> {
    let Some(body) = &request.body else {
        return format!(
            "GET {} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            request.path
        )
        .into_bytes();
    };
    let body = body.to_string();
    format!(
        "POST {} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        request.path,
        body.len()
    )
    .into_bytes()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::is_piece;

    #[test]
    fn a_piece_is_a_delta_or_a_chunk_with_text() {
        assert!(is_piece("delta", r#"{"text":"a"}"#));
        assert!(is_piece(
            "message",
            r#"{"choices":[{"delta":{"content":"Hel"}}]}"#
        ));
        assert!(is_piece("message", r#"{"token":{"text":"Hel"}}"#));
        // The role-only opening chunk, an empty piece, the end marker, other events.
        assert!(!is_piece(
            "message",
            r#"{"choices":[{"delta":{"role":"assistant"}}]}"#
        ));
        assert!(!is_piece(
            "message",
            r#"{"choices":[{"delta":{"content":""}}]}"#
        ));
        assert!(!is_piece(
            "message",
            r#"{"token":{"text":"</s>","special":true}}"#
        ));
        assert!(!is_piece("message", "[DONE]"));
        assert!(!is_piece("sources", r#"{"sources":[]}"#));
        assert!(!is_piece("message", "{broken"));
    }
}
