//! Streamed answers in both protocols, and each stream fault, as a client reads them.

use fake_llm::{Fault, StreamFault, StreamMode};
use futures::StreamExt as _;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::common::{chat_body, start};

const CHAT: &str = "/v1/chat/completions";
const TEXT: &str = "/models/org/model";

async fn ask(client: &Client, base: &str, path: &str, prompt: &str) -> reqwest::Result<Response> {
    let body = if path == CHAT {
        let mut body = chat_body(prompt);
        body["stream"] = json!(true);
        body
    } else {
        json!({"inputs": prompt, "stream": true})
    };
    client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
}

/// The `data:` of every event in a whole SSE body.
fn events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// The answer text the events carry, in either protocol.
fn text_of(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter(|v| v["token"]["special"] != true)
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .or_else(|| v["token"]["text"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn a_chat_stream_sends_the_answer_in_pieces_then_finish_reason_and_done() -> anyhow::Result<()>
{
    let (upstream, client) = start().await?;
    let response = ask(
        &client,
        &upstream.base_url(),
        CHAT,
        "the garden needs water",
    )
    .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(&response.text().await?);
    assert_eq!(
        text_of(&events),
        "Based on your notes: the garden needs water"
    );
    assert_eq!(events.len(), 8 + 2, "{events:?}");
    let last_chunk: Value = serde_json::from_str(&events[events.len() - 2])?;
    assert_eq!(last_chunk["choices"][0]["finish_reason"], "stop");
    assert_eq!(last_chunk["object"], "chat.completion.chunk");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let stats = upstream.llm.stats();
    assert_eq!(
        (stats.streams, stats.streams_finished, stats.chat_calls),
        (1, 1, 1)
    );
    Ok(())
}

#[tokio::test]
async fn a_text_stream_sends_tgi_tokens_then_the_whole_generated_text() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    upstream
        .llm
        .set_fault(Fault::streaming(StreamFault::default().with_chunks(3)));
    let response = ask(&client, &upstream.base_url(), TEXT, "bees like clover").await?;
    let events = events(&response.text().await?);
    assert_eq!(events.len(), 3 + 1, "{events:?}");
    assert_eq!(text_of(&events), "Based on your notes: bees like clover");
    let last: Value = serde_json::from_str(&events[3])?;
    assert_eq!(
        last["generated_text"],
        "Based on your notes: bees like clover"
    );
    assert_eq!(last["details"]["finish_reason"], "eos_token");
    assert_eq!(last["token"]["special"], true);
    Ok(())
}

#[tokio::test]
async fn faults_strike_after_n_pieces_in_both_protocols() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    let base = upstream.base_url();
    for path in [CHAT, TEXT] {
        // No end marker: every piece, then a clean end of body.
        upstream
            .llm
            .set_fault(Fault::streaming(StreamFault::new(StreamMode::NoEnd, 0)));
        let got = events(
            &ask(&client, &base, path, "one two three")
                .await?
                .text()
                .await?,
        );
        assert_eq!(
            text_of(&got),
            "Based on your notes: one two three",
            "{path}"
        );
        assert!(
            got.iter()
                .all(|e| e != "[DONE]" && !e.contains("generated_text\":\"")),
            "{path} {got:?}"
        );

        upstream
            .llm
            .set_fault(Fault::streaming(StreamFault::new(StreamMode::Malformed, 2)));
        let got = events(
            &ask(&client, &base, path, "one two three")
                .await?
                .text()
                .await?,
        );
        assert_eq!(text_of(&got), "Based on ", "{path}");
        assert_eq!(
            got.last().map(String::as_str),
            Some(r#"{"choices": ["#),
            "{path}"
        );

        upstream
            .llm
            .set_fault(Fault::streaming(StreamFault::new(StreamMode::Error, 1)));
        let got = events(
            &ask(&client, &base, path, "one two three")
                .await?
                .text()
                .await?,
        );
        assert_eq!(got.len(), 2, "{path} {got:?}");
        assert!(
            got[1].contains("injected error mid-stream"),
            "{path} {got:?}"
        );

        // Cut: the body breaks off after the pieces, without a clean end.
        upstream
            .llm
            .set_fault(Fault::streaming(StreamFault::new(StreamMode::Cut, 2)));
        let mut body = ask(&client, &base, path, "one two three")
            .await?
            .bytes_stream();
        let mut read = String::new();
        let ended = loop {
            match body.next().await {
                Some(Ok(bytes)) => read.push_str(&String::from_utf8_lossy(&bytes)),
                Some(Err(_)) => break "broken",
                None => break "clean",
            }
        };
        assert_eq!(ended, "broken", "{path}");
        assert_eq!(text_of(&events(&read)), "Based on ", "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn a_stalled_stream_sends_its_pieces_then_sees_its_client_leave() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    upstream
        .llm
        .set_fault(Fault::streaming(StreamFault::new(StreamMode::Stall, 2)));
    let response = ask(&client, &upstream.base_url(), CHAT, "one two three").await?;
    let mut body = response.bytes_stream();
    let mut read = String::new();
    while events(&read).len() < 2 {
        let bytes = body.next().await.expect("two pieces come")?;
        read.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert_eq!(text_of(&events(&read)), "Based on ");
    drop(body);
    // The server notices the closed connection on its own schedule: wait for it, boundedly.
    for _ in 0..200 {
        if upstream.llm.stats().streams_dropped == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stats = upstream.llm.stats();
    assert_eq!((stats.streams_dropped, stats.streams_finished), (1, 0));
    Ok(())
}

#[test]
fn a_stream_fault_is_checked_like_the_rest() {
    let fault = Fault::streaming(StreamFault::default().with_chunks(0));
    assert!(fault.validate().is_err());
    let unknown = serde_json::from_str::<Fault>(r#"{"stream":{"mode":"cut","after":2}}"#);
    assert!(unknown.is_err());
}

#[tokio::test]
async fn each_stream_reports_its_wait_for_the_first_piece_once() -> anyhow::Result<()> {
    let (upstream, client) = start().await?;
    let base = upstream.base_url();
    upstream
        .llm
        .set_fault(Fault::streaming(StreamFault::default()).with_latency_ms(20));
    // A prompt longer than what is kept, with multi-byte characters at the cut.
    let long = format!("{} question 7", "é".repeat(300));
    ask(&client, &base, CHAT, &long).await?.text().await?;
    ask(&client, &base, TEXT, "question 8")
        .await?
        .text()
        .await?;
    let pieces = first_pieces(&client, &base).await?;
    assert_eq!(pieces.len(), 2, "{pieces:?}");
    assert!(pieces[0].prompt_tail.ends_with("question 7"));
    assert_eq!(
        pieces[0].prompt_tail.chars().count(),
        fake_llm::PROMPT_TAIL_CHARS
    );
    assert!(pieces[1].prompt_tail.ends_with("question 8"));
    // Each waited out the latency at least (a sleep never ends early).
    assert!(pieces.iter().all(|p| p.waited_us >= 20_000), "{pieces:?}");
    assert!(
        first_pieces(&client, &base).await?.is_empty(),
        "a read clears them"
    );
    Ok(())
}

async fn first_pieces(client: &Client, base: &str) -> anyhow::Result<Vec<fake_llm::FirstPiece>> {
    let response = client
        .get(format!("{base}/admin/first-pieces"))
        .send()
        .await?;
    Ok(response.error_for_status()?.json().await?)
}
