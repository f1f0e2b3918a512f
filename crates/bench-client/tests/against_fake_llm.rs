//! The client against a real fake-llm over real sockets: what it reads, when it stamps the
//! first piece, and what it says when there is no server.

use bench_client::{Plan, Request, run};
use fake_llm::{FakeLlm, Fault, StreamFault, StreamMode};
use serde_json::json;

fn chat(port: u16, question: &str) -> Request {
    Request {
        port,
        path: "/v1/chat/completions".into(),
        body: Some(json!({"model": "m", "stream": true,
                          "messages": [{"role": "user", "content": question}]})),
    }
}

fn pieces(events: &[(String, String)]) -> usize {
    events
        .iter()
        .filter(|(name, data)| bench_client::is_piece(name, data))
        .count()
}

#[tokio::test]
async fn a_paced_plan_reads_every_stream_whole_in_both_protocols() {
    let upstream = FakeLlm::new().spawn().await.expect("fake-llm starts");
    let port = upstream.addr.port();
    upstream.llm.set_fault(Fault::streaming(
        StreamFault::new(StreamMode::Ok, 0).with_chunks(5),
    ));
    let tgi = Request {
        port,
        path: "/models/m".into(),
        body: Some(json!({"inputs": "a question", "stream": true})),
    };
    let healthz = Request {
        port,
        path: "/healthz".into(),
        body: None,
    };
    let plan = Plan {
        rate: Some(200.0),
        timeout_s: 10.0,
        requests: vec![chat(port, "one"), tgi, healthz, chat(port, "two")],
    };

    let outcomes = run(plan).await;

    assert_eq!(outcomes.len(), 4);
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!((o.status, &o.error), (200, &None), "request {i}: {o:?}");
    }
    for i in [0, 3] {
        let o = &outcomes[i];
        assert_eq!(pieces(&o.events), 5, "{o:?}");
        assert_eq!(o.events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
        assert!(o.first_ms.is_some_and(|first| first <= o.total_ms), "{o:?}");
    }
    let tgi = &outcomes[1];
    assert_eq!(pieces(&tgi.events), 5, "{tgi:?}");
    assert!(
        tgi.events
            .last()
            .is_some_and(|(_, d)| d.contains("generated_text"))
    );
    // Not an event stream: read whole, no events, no piece.
    assert!(outcomes[2].events.is_empty() && outcomes[2].first_ms.is_none());
    assert_eq!(upstream.llm.calls(), 3);
    upstream.shutdown().await.expect("fake-llm stops");
}

#[tokio::test]
async fn the_first_piece_is_stamped_when_it_arrives_not_at_the_end() {
    let upstream = FakeLlm::new().spawn().await.expect("fake-llm starts");
    let port = upstream.addr.port();
    // Three pieces, 40 ms apart: the last comes at least 80 ms after the first.
    upstream.llm.set_fault(Fault::streaming(
        StreamFault::new(StreamMode::Ok, 0)
            .with_chunks(3)
            .with_chunk_delay_ms(40),
    ));
    let plan = Plan {
        rate: None,
        timeout_s: 10.0,
        requests: vec![chat(port, "slow")],
    };

    let outcomes = run(plan).await;

    let o = &outcomes[0];
    assert_eq!(pieces(&o.events), 3, "{o:?}");
    let first = o.first_ms.expect("a first piece");
    assert!(
        first + 80.0 <= o.total_ms,
        "first {first} ms, total {} ms",
        o.total_ms
    );
    upstream.shutdown().await.expect("fake-llm stops");
}

#[tokio::test]
async fn no_server_is_an_outcome_with_its_error_not_a_failed_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port(); // the listener is dropped: nothing listens there now
    let plan = Plan {
        rate: Some(100.0),
        timeout_s: 5.0,
        requests: vec![chat(port, "nobody")],
    };

    let outcomes = run(plan).await;

    let o = &outcomes[0];
    assert_eq!(o.status, 0);
    assert!(
        o.error
            .as_deref()
            .is_some_and(|e| e.contains(&format!("port {port}"))),
        "{o:?}"
    );
}
