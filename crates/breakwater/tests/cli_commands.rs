//! The `breakwater` binary: help, configuration errors, ingest then ask, status.

mod http_common;
mod process_common;

use std::path::Path;
use std::process::Output;

use http_common::TestServer;
use serde_json::Value;
use tempfile::TempDir;
use tokio::process::Command;

/// The binary with an empty environment and no `.env` files, so the host cannot leak in.
fn breakwater(env_dir: &Path) -> Command {
    let mut command = process_common::isolated(env!("CARGO_BIN_EXE_breakwater"));
    command.arg("--env-dir").arg(env_dir);
    command
}

async fn run(command: &mut Command) -> Output {
    command.output().await.expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A notes folder in `dir` holding one note, on descaling a kettle.
fn kettle_notes(dir: &TempDir) -> std::path::PathBuf {
    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).expect("notes dir");
    std::fs::write(
        notes.join("kettle.md"),
        "# Kettle descaling\nDescale the kettle monthly with citric acid.",
    )
    .expect("write note");
    notes
}

#[tokio::test]
async fn help_lists_every_verb() {
    let dir = TempDir::new().expect("temp dir");
    let output = run(breakwater(dir.path()).arg("--help")).await;

    assert!(output.status.success());
    let text = stdout(&output);
    for verb in ["serve", "ingest", "ask", "status"] {
        assert!(text.contains(verb), "{verb} in {text}");
    }
}

#[tokio::test]
async fn a_bad_configuration_value_exits_2_naming_the_variable() {
    let dir = TempDir::new().expect("temp dir");
    let output = run(breakwater(dir.path())
        .env("CIRCUIT_BREAKER_FAIL_THRESHOLD", "abc")
        .arg("status"))
    .await;

    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("CIRCUIT_BREAKER_FAIL_THRESHOLD"), "{err}");
    assert!(err.contains("abc"), "{err}");
}

#[tokio::test]
async fn ingested_notes_answer_ask_with_excerpts_when_there_is_no_llm_token() {
    let dir = TempDir::new().expect("temp dir");
    let notes = kettle_notes(&dir);
    std::fs::write(notes.join("empty.md"), "").expect("write empty note");
    let db = dir.path().join("notes.db");
    let with_db = |command: &mut Command| {
        command.arg("--db").arg(&db);
    };

    let mut ingest = breakwater(dir.path());
    with_db(&mut ingest);
    let ingested = run(ingest
        .args(["ingest", "--user", "alice", "--no-progress"])
        .arg(&notes))
    .await;
    assert!(ingested.status.success(), "{}", stderr(&ingested));
    let report = stdout(&ingested);
    assert!(report.contains("1 added"), "{report}");
    assert!(
        report.contains("1 skipped") && report.contains("empty.md"),
        "{report}"
    );

    let mut ask = breakwater(dir.path());
    with_db(&mut ask);
    let asked = run(ask.args(["ask", "how do I descale the kettle?", "--user", "alice"])).await;
    assert!(asked.status.success(), "{}", stderr(&asked));
    let text = stdout(&asked);
    assert!(text.contains("Kettle descaling"), "{text}");
    assert!(text.contains("source: excerpts"), "{text}");

    let mut ask_json = breakwater(dir.path());
    with_db(&mut ask_json);
    let asked = run(ask_json.args(["ask", "descale kettle", "--user", "alice", "--json"])).await;
    assert!(asked.status.success(), "{}", stderr(&asked));
    let answer: Value = serde_json::from_slice(&asked.stdout).expect("JSON answer");
    assert_eq!(answer["metadata"]["source"], "excerpts");
    assert_eq!(answer["sources"][0]["title"], "Kettle descaling");
}

#[tokio::test]
async fn status_prints_the_breakers_of_a_running_server() {
    let app = TestServer::start().await;
    let url = app.server.base_url();

    let table = run(breakwater(app.dir.path()).args(["status", "--server", &url])).await;
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.contains("NAME") && text.contains("STATE"), "{text}");
    assert!(
        text.contains("huggingface") && text.contains("closed"),
        "{text}"
    );

    let as_json =
        run(breakwater(app.dir.path()).args(["status", "--json", "--server", &url])).await;
    assert!(as_json.status.success(), "{}", stderr(&as_json));
    let health: Value = serde_json::from_slice(&as_json.stdout).expect("JSON status");
    assert_eq!(health["healthy"], true);
    app.stop().await;
}

#[tokio::test]
async fn status_of_an_unreachable_server_exits_1_naming_the_url() {
    let dir = TempDir::new().expect("temp dir");
    // A port just released: (almost certainly) nobody listens there now.
    let url = format!("http://127.0.0.1:{}", process_common::free_port());

    let output = run(breakwater(dir.path()).args(["status", "--server", &url])).await;

    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&url), "{}", stderr(&output));
}

#[tokio::test]
async fn status_of_a_server_that_answers_an_error_exits_1_with_its_answer() {
    let app = TestServer::start().await;
    // A base URL under which the health endpoint is not found.
    let url = format!("{}/not-breakwater", app.server.base_url());

    let output = run(breakwater(app.dir.path()).args(["status", "--server", &url])).await;

    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains("answered 404"), "{said}");
    app.stop().await;
}

#[tokio::test]
async fn ask_with_nothing_to_answer_from_exits_3_with_the_retry_after() {
    let dir = TempDir::new().expect("temp dir");
    let output = run(breakwater(dir.path())
        .arg("--db")
        .arg(dir.path().join("empty.db"))
        .args(["ask", "anything at all?"]))
    .await;

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("retry after"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn status_watch_redraws_the_table_until_stopped() {
    use tokio::io::AsyncReadExt as _;
    let app = TestServer::start().await;
    let url = app.server.base_url();
    let mut child = breakwater(app.dir.path())
        .args(["status", "--watch", "--server", &url])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawned");
    let mut stdout = child.stdout.take().expect("piped");
    let mut seen = String::new();
    // Frames are each cleared first: wait for a third, so the second is whole. Bounded, so
    // a broken loop fails instead of hanging.
    let frames = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        let mut buf = [0u8; 4096];
        while seen.matches("\x1b[2J").count() < 3 {
            let n = stdout.read(&mut buf).await.expect("read");
            assert!(n > 0, "the watch ended by itself: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    // Ctrl-C stops it, with success.
    let exit = process_common::stop(&mut child, "INT").await;
    assert!(frames.is_ok(), "fewer than three frames: {seen}");
    assert!(
        exit.is_some_and(|s| s.success()),
        "Ctrl-C did not end the watch with success: {exit:?}"
    );
    let last = seen.split("\x1b[2J").nth(2).unwrap_or_default();
    assert!(
        last.contains("NAME") && last.contains("huggingface"),
        "{last}"
    );
    assert!(last.contains("Ctrl-C to stop"), "{last}");
    app.stop().await;
}

#[tokio::test]
async fn ask_stream_prints_the_answer_and_says_so_when_it_falls_back_mid_stream() {
    let dir = TempDir::new().expect("temp dir");
    let notes = kettle_notes(&dir);
    let db = dir.path().join("notes.db");
    let ingested = run(breakwater(dir.path())
        .arg("--db")
        .arg(&db)
        .args(["ingest", "--user", "alice", "--no-progress"])
        .arg(&notes))
    .await;
    assert!(ingested.status.success(), "{}", stderr(&ingested));
    let upstream = fake_llm::FakeLlm::new()
        .spawn()
        .await
        .expect("fake-llm starts");
    let ask = |question: &str| {
        let mut command = breakwater(dir.path());
        command
            .arg("--db")
            .arg(&db)
            .env("HF_API_TOKEN", "test")
            .env("HF_API_BASE", upstream.base_url())
            .args(["ask", question, "--user", "alice", "--stream"]);
        command
    };

    let asked = run(&mut ask("how do I descale the kettle?")).await;
    assert!(asked.status.success(), "{}", stderr(&asked));
    let text = stdout(&asked);
    assert!(text.starts_with("Based on your notes:"), "{text}");
    assert!(text.contains("1. Kettle descaling"), "{text}");
    assert!(text.contains("source: llm"), "{text}");
    assert_eq!(upstream.llm.stats().streams_finished, 1);

    let cut = fake_llm::StreamFault::new(fake_llm::StreamMode::Cut, 3);
    upstream.llm.set_fault(fake_llm::Fault::streaming(cut));
    let asked = run(&mut ask("kettle citric acid")).await;
    assert!(asked.status.success(), "{}", stderr(&asked));
    let text = stdout(&asked);
    assert!(text.starts_with("Based on your "), "{text}");
    assert!(text.contains("the language model broke off"), "{text}");
    assert!(text.contains("the answer from excerpts follows"), "{text}");
    assert!(text.contains("Descale the kettle monthly"), "{text}");
    assert!(text.contains("source: excerpts"), "{text}");
    upstream.shutdown().await.expect("fake-llm stops");
}

#[tokio::test]
async fn an_upstreams_file_with_errors_exits_2_naming_each_with_its_line() {
    let dir = TempDir::new().expect("temp dir");
    let file = dir.path().join("upstreams.toml");
    std::fs::write(
        &file,
        "[[upstream]]\nname = \"a\"\nurl = \"ftp://x\"\nmodel = \"m\"\n\n\
         [[upstream]]\nname = \"b\"\nurl = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n\
         token_env = \"B_TOKEN\"\ncall_timeout_seconds = -1\n",
    )
    .expect("write the file");
    let output = run(breakwater(dir.path())
        .env("BREAKWATER_CONFIG", &file)
        .arg("status"))
    .await;
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    let path = file.display().to_string();
    for want in [
        format!("{path}: line 3: upstream[0].url"),
        format!("{path}: line 10: upstream[1].token_env: \"B_TOKEN\": no such variable is set"),
        format!("{path}: line 11: upstream[1].call_timeout_seconds"),
    ] {
        assert!(err.contains(&want), "{want} in {err}");
    }
}

#[tokio::test]
async fn values_that_are_not_utf8_are_named_and_a_token_is_not_shown() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = TempDir::new().expect("temp dir");
    let not_utf8 = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let output = run(breakwater(dir.path())
        .env("HF_MODEL", not_utf8)
        .env("HF_API_TOKEN", not_utf8)
        // Not ours: ignored, even though it is not UTF-8 either.
        .env("SOMEONE_ELSES", not_utf8)
        .arg("status"))
    .await;

    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("HF_MODEL=\"caf\u{FFFD}\": expected valid UTF-8"),
        "{err}"
    );
    assert!(
        err.contains(r#"HF_API_TOKEN="***": expected valid UTF-8"#),
        "{err}"
    );
    assert!(!err.contains("SOMEONE_ELSES"), "{err}");
}

#[tokio::test]
async fn a_dotenv_file_that_cannot_be_used_is_named_with_its_line() {
    let dir = TempDir::new().expect("temp dir");
    std::fs::write(
        dir.path().join(".env"),
        b"HF_MODEL=ok\nHF_API_BASE=caf\xe9\n",
    )
    .expect("written");
    let output = run(breakwater(dir.path()).arg("status")).await;
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains(".env: line 2: not valid UTF-8"), "{err}");

    // A `.env` that is a directory cannot be read.
    let dir = TempDir::new().expect("temp dir");
    std::fs::create_dir(dir.path().join(".env")).expect("a directory");
    let output = run(breakwater(dir.path()).arg("status")).await;
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains(".env: cannot read"), "{err}");
}
