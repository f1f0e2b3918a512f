//! `breakwater ask "question"`: the server's pipeline, run in this process.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::http::ApiError;
use anyhow::Context as _;

use super::{EXIT_UNAVAILABLE, EXIT_USAGE};
use crate::assistant::{Answer, Assistant, AssistantError, Question};
use crate::cli::AskArgs;
use crate::config::Config;

/// Asks the question and prints the answer, its sources and where it came from (or the
/// HTTP API's JSON with `--json`).
#[expect(clippy::print_stdout, reason = "the answer is the command's output")]
pub(super) async fn run(config: &Config, args: &AskArgs) -> anyhow::Result<ExitCode> {
    let notes = config.open_notes().await?;
    let assistant = Assistant::new(config, notes).context("building the assistant")?;
    let question = Question {
        user: args.user.clone(),
        query: args.question.clone(),
        max_sources: args.max_sources,
    };
    match assistant.answer(question).await {
        Ok(answer) if args.json => println!("{}", serde_json::to_string_pretty(&answer)?),
        Ok(answer) => print!("{}", render(&answer)),
        Err(unavailable @ AssistantError::Unavailable { .. }) => {
            let error = ApiError::from(unavailable);
            if args.json {
                // The same body the HTTP API answers with.
                println!("{}", serde_json::to_string_pretty(&error.body())?);
            }
            if let ApiError::Unavailable {
                retry_after_seconds,
                detail,
                ..
            } = &error
            {
                eprintln!("breakwater: no answer: {detail}");
                eprintln!("breakwater: retry after {retry_after_seconds} s");
            }
            return Ok(ExitCode::from(EXIT_UNAVAILABLE));
        }
        Err(AssistantError::Invalid { field, reason }) => {
            eprintln!("breakwater: the question was rejected: {field}: {reason}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(AssistantError::Notes(err)) => return Err(err).context("reading the notes"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The answer, then the numbered sources, then one line on where the answer came from.
fn render(answer: &Answer) -> String {
    let mut out = format!("{}\n", answer.answer.trim_end());
    if answer.sources.is_empty() {
        out.push_str("\nNo sources: no note matched the question.\n");
    } else {
        out.push_str("\nSources:\n");
    }
    for (n, source) in answer.sources.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} (score {:.2})\n     {}",
            n + 1,
            source.title,
            source.score,
            one_line(&source.excerpt)
        );
    }
    let meta = &answer.metadata;
    let _ = writeln!(
        out,
        "\nsource: {} · degraded: {} · circuit: {} · model: {} · {:.0} ms",
        meta.source.as_str(),
        if meta.degraded { "yes" } else { "no" },
        meta.circuit_state.as_str(),
        meta.model,
        meta.latency_ms
    );
    out
}

/// An excerpt on one line: newlines and runs of spaces become single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
