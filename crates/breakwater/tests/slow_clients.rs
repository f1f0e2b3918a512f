//! Slow, idle and flooding clients against the real binary: connections whose headers never
//! finish, idle keep-alive connections and slow bodies are closed by their deadlines, and
//! under a 256-descriptor limit 300 idle connections do not stop `/healthz` from answering.
//!
//! The deadlines here are a second or two of real time: what is tested is that sockets get
//! closed and descriptors freed in a child process, which no paused clock can stand in for.

mod process_common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

/// The server binary under a descriptor limit, with 1 s header and body deadlines.
async fn start(dir: &Path, open_files: u32) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", process_common::free_port());
    let child = process_common::isolated("prlimit")
        .arg(format!("--nofile={open_files}:{open_files}"))
        .arg(env!("CARGO_BIN_EXE_breakwater"))
        .args(["--env-dir", &dir.display().to_string(), "serve"])
        .env("BREAKWATER_ADDR", &addr)
        .env("BREAKWATER_DB", dir.join("notes.db"))
        .env("BREAKWATER_HEADER_TIMEOUT_SECONDS", "1")
        .env("BREAKWATER_BODY_TIMEOUT_SECONDS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prlimit and the binary run");
    // Up when it answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while healthz(&addr).await.is_none() {
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, addr)
}

/// `GET /healthz` on a new connection: the status line, or `None` if the connection was
/// refused, closed or silent for 2 s.
async fn healthz(addr: &str) -> Option<String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        text.lines()
            .next()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

/// Reads until the peer closes (`true`) or `within` passes (`false`).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

#[tokio::test]
async fn headers_that_never_finish_idle_keep_alive_and_slow_bodies_are_cut_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, addr) = start(dir.path(), 1024).await;

    let mut unfinished = TcpStream::connect(&addr).await.expect("connected");
    unfinished
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("sent");
    let mut idle = TcpStream::connect(&addr).await.expect("connected");
    let mut kept_alive = TcpStream::connect(&addr).await.expect("connected");
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("sent");
    let mut slow_body = TcpStream::connect(&addr).await.expect("connected");
    slow_body
        .write_all(
            b"POST /api/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"user_id\"",
        )
        .await
        .expect("sent");
    for (name, stream) in [
        ("unfinished headers", &mut unfinished),
        ("idle", &mut idle),
        ("idle after a keep-alive answer", &mut kept_alive),
    ] {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "{name} stays open"
        );
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow_body.read_to_end(&mut answer));
    assert!(read.await.is_ok(), "a slow body stays open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"body_timeout""#), "{answer}");
    stop(server).await;
}

#[tokio::test]
async fn a_flood_of_idle_connections_under_a_low_descriptor_limit_leaves_healthz_answering() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, addr) = start(dir.path(), 256).await;
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(stream) = TcpStream::connect(&addr).await {
            flood.push(stream);
        }
    }
    // While all 300 are held open by the client, health checks get answered: at once
    // through the overflow lane, or within its one-second deadline when the lane is full.
    let started = Instant::now();
    let mut answered = None;
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(status) = healthz(&addr).await {
            answered = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = answered.expect("/healthz answered while flooded");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // And the flood's connections are closed by the server, not held for ever.
    let mut closed = 0;
    for stream in &mut flood {
        if closed_within(stream, Duration::from_millis(3_000)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, flood.len(), "every idle connection was closed");
    stop(server).await;
}

/// SIGTERM, as an orchestrator stops a replica: it exits cleanly within 10 s.
async fn stop(mut server: Child) {
    let exit = process_common::stop(&mut server, "TERM").await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "the server did not stop cleanly on SIGTERM: {exit:?}"
    );
}
