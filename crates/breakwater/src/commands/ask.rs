//! `breakwater ask "question"`: the server's pipeline, run in this process.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use futures::StreamExt as _;

use crate::http::ApiError;
use anyhow::Context as _;

use super::{EXIT_UNAVAILABLE, EXIT_USAGE};
use crate::assistant::{Answer, AnswerMetadata, Assistant, AssistantError, Question, StreamEvent};
use crate::cli::AskArgs;
use crate::config::Config;
use crate::notes::Excerpt;

/// Asks the question and prints the answer, its sources and where it came from (or the
/// HTTP API's JSON with `--json`).
#[expect(clippy::print_stdout, reason = "the answer is the command's output")]
pub(super) async fn run(config: &Config, args: &AskArgs) -> anyhow::Result<ExitCode> {
    let notes = config.open_notes(None).await?;
    let assistant = Assistant::new(config, notes).context("building the assistant")?;
    let question = Question {
        user: args.user.clone(),
        query: args.question.clone(),
        max_sources: args.max_sources,
    };
    if !args.json && (args.stream || std::io::stdout().is_terminal()) {
        return match assistant.answer_stream(question).await {
            Ok(events) => print_stream(events).await,
            Err(err) => failed(err, false),
        };
    }
    match assistant.answer(question).await {
        Ok(answer) if args.json => println!("{}", serde_json::to_string_pretty(&answer)?),
        Ok(answer) => print!("{}", render(&answer)),
        Err(err) => return failed(err, args.json),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints each piece of a streamed answer as it comes; a mid-stream fallback is said so,
/// and its answer follows.
#[expect(clippy::print_stdout, reason = "the answer is the command's output")]
async fn print_stream(mut events: crate::assistant::AnswerStream) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    let mut sources: Vec<Excerpt> = Vec::new();
    while let Some(event) = events.next().await {
        match event {
            StreamEvent::Sources { sources: s } => sources = s,
            StreamEvent::Delta { text } => {
                print!("{text}");
                stdout.flush()?;
            }
            StreamEvent::Fallback {
                reason,
                source,
                sources: s,
            } => {
                println!(
                    "\n\n[the language model broke off ({reason}); \
                     disregard the text above: the answer from {} follows]\n",
                    source.as_str()
                );
                sources = s;
            }
            StreamEvent::Done { metadata } => {
                println!();
                print!("{}", footer(&sources, &metadata));
            }
            StreamEvent::Error {
                detail,
                retry_after_seconds,
                ..
            } => {
                println!();
                eprintln!("breakwater: no answer: {detail}");
                eprintln!("breakwater: retry after {retry_after_seconds} s");
                return Ok(ExitCode::from(EXIT_UNAVAILABLE));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit for a question with no answer: what went wrong on stderr (and the HTTP API's
/// JSON body on stdout with `--json`).
#[expect(
    clippy::print_stdout,
    reason = "--json prints the error body as output"
)]
fn failed(err: AssistantError, json: bool) -> anyhow::Result<ExitCode> {
    match err {
        unavailable @ AssistantError::Unavailable { .. } => {
            let error = ApiError::from(unavailable);
            if json {
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
            Ok(ExitCode::from(EXIT_UNAVAILABLE))
        }
        AssistantError::Invalid { field, reason } => {
            eprintln!("breakwater: the question was rejected: {field}: {reason}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
        AssistantError::Notes(err) => Err(err).context("reading the notes"),
    }
}

/// The answer, then the numbered sources, then one line on where the answer came from.
fn render(answer: &Answer) -> String {
    format!(
        "{}\n{}",
        answer.answer.trim_end(),
        footer(&answer.sources, &answer.metadata)
    )
}

/// The numbered sources, then one line on where the answer came from.
fn footer(sources: &[Excerpt], meta: &AnswerMetadata) -> String {
    let mut out = String::new();
    if sources.is_empty() {
        out.push_str("\nNo sources: no note matched the question.\n");
    } else {
        out.push_str("\nSources:\n");
    }
    for (n, source) in sources.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} (score {:.2})\n     {}",
            n + 1,
            source.title,
            source.score,
            one_line(&source.excerpt)
        );
    }
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
