//! The `fake-llm` binary, as the benches run it: its flags set the fault, a bad flag is a
//! start-up error, and SIGTERM stops it cleanly.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port()
}

/// The binary started with `args`, and its base URL; the child inherits the environment
/// (a coverage run's `LLVM_PROFILE_FILE` among it).
fn start(args: &[&str]) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_fake-llm"))
        .args(["--addr", &addr])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    (child, format!("http://{addr}"))
}

async fn wait_until_up(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "never came up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends SIGTERM and waits (up to 10 s) for the exit.
fn terminate(child: &mut Child) -> ExitStatus {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn the_flags_set_the_fault_and_sigterm_stops_it_cleanly() {
    let (mut child, base) = start(&[
        "--mode",
        "error",
        "--status",
        "429",
        "--retry-after-seconds",
        "7",
    ]);
    let client = reqwest::Client::new();
    wait_until_up(&client, &base).await;

    let response = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    // Switched at run time, as the benches do.
    let fault: serde_json::Value = client
        .get(format!("{base}/admin/fault"))
        .send()
        .await
        .expect("the fault")
        .json()
        .await
        .expect("JSON");
    assert_eq!(fault["mode"], "error", "{fault}");

    assert!(terminate(&mut child).success());
}

#[test]
fn a_bad_fault_flag_is_a_start_up_error_naming_it() {
    let (child, _) = start(&["--mode", "error", "--failure-rate", "2"]);
    let output = child.wait_with_output().expect("the exit");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad fault flags"), "{stderr}");
}
