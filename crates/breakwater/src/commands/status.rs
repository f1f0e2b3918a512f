//! `breakwater status`: the circuit breakers of a running server.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::EXIT_FAILURE;
use crate::cli::StatusArgs;
use crate::config::Config;

/// The health endpoint, relative to the server's base URL.
const HEALTH_PATH: &str = "/api/assistant/health/circuit-breaker";
/// A local status check that takes longer than this is as good as down.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How often `--watch` redraws.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Clears the terminal and puts the cursor home (ANSI), before each `--watch` frame.
const CLEAR: &str = "\x1b[2J\x1b[H";

/// Fetches the breaker status and prints it as a table (or the JSON with `--json`); with
/// `--watch`, redraws it every second until Ctrl-C, through outages of the server itself.
#[expect(clippy::print_stdout, reason = "the status is the command's output")]
pub(super) async fn run(config: &Config, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let base = args
        .server
        .clone()
        .unwrap_or_else(|| config.server.local_url());
    let url = format!("{}{HEALTH_PATH}", base.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
    let token = config.server.api_token.as_deref();
    if args.watch {
        return watch(&client, &url, token).await;
    }
    let health = match fetch(&client, &url, token).await {
        Ok(health) => health,
        Err(Unreachable(why)) => {
            eprintln!("breakwater: {why}");
            eprintln!("breakwater: is `breakwater serve` running? (--server URL or --addr)");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
        Err(Refused(why)) => {
            eprintln!("breakwater: {why}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&health)?);
    } else {
        print!("{}", render(&health));
    }
    Ok(ExitCode::SUCCESS)
}

#[expect(clippy::print_stdout, reason = "the status is the command's output")]
async fn watch(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let mut every = tokio::time::interval(WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
        let frame = match fetch(client, url, token).await {
            Ok(health) => render(&health),
            Err(Unreachable(why) | Refused(why)) => format!("{why}\n"),
        };
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        print!(
            "{CLEAR}{url} · {now} · every {}s, Ctrl-C to stop\n{frame}",
            WATCH_EVERY.as_secs()
        );
        std::io::stdout().flush()?;
    }
}

/// Why the status could not be read: no server there, or it answered something else.
enum FetchError {
    Unreachable(String),
    Refused(String),
}
use FetchError::{Refused, Unreachable};

/// The health JSON of the server at `url`, or a sentence saying why not.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> Result<Value, FetchError> {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|err| Unreachable(format!("cannot reach the server at {url}: {err}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Refused(format!(
            "the server at {url} answered {status}: {text}"
        )));
    }
    serde_json::from_str::<Value>(&text).map_err(|_| {
        Refused(format!(
            "the server at {url} did not answer with JSON: {text}"
        ))
    })
}

const COLUMNS: [&str; 11] = [
    "NAME",
    "STATE",
    "FAILURES",
    "RETRY-AFTER",
    "CALLS",
    "OK",
    "FAILED",
    "REJECTED",
    "IGNORED",
    "IN-FLIGHT",
    "SHED",
];

/// A summary line, then one row per breaker.
fn render(health: &Value) -> String {
    let flag = |key: &str, yes: &'static str, no: &'static str| {
        if health[key].as_bool().unwrap_or(false) {
            yes
        } else {
            no
        }
    };
    let mut out = format!(
        "{} · circuit breaker {} · {}\n",
        flag("healthy", "healthy", "UNHEALTHY"),
        flag("enabled", "enabled", "disabled"),
        flag("excerpts_only", "excerpts only (no LLM token)", "LLM on"),
    );
    let empty = Vec::new();
    let breakers = health["breakers"].as_array().unwrap_or(&empty);
    if breakers.is_empty() {
        out.push_str("no breakers registered\n");
        return out;
    }
    let rows: Vec<[String; 11]> = breakers.iter().map(row).collect();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([COLUMNS[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let header = COLUMNS.map(str::to_owned);
    for cells in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn row(status: &Value) -> [String; 11] {
    let text = |key: &str| match &status[key] {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let failures = match status["fail_threshold"].as_u64() {
        Some(threshold) => format!("{}/{threshold}", text("consecutive_failures")),
        None => text("consecutive_failures"),
    };
    // In flight over the bound now (`auto` adapts it), or `-` without a bound.
    let limit = &status["in_flight_limit"];
    let (in_flight, shed) = match (limit["in_flight"].as_u64(), limit["limit"].as_u64()) {
        (Some(n), Some(bound)) => (format!("{n}/{bound}"), limit["shed"].to_string()),
        _ => ("-".to_owned(), "-".to_owned()),
    };
    let retry_after = status["retry_after_seconds"]
        .as_f64()
        .map_or_else(|| "-".to_owned(), |secs| format!("{secs:.1}s"));
    [
        text("name"),
        text("state"),
        failures,
        retry_after,
        text("calls"),
        text("successes"),
        text("failures"),
        text("rejected"),
        text("ignored"),
        in_flight,
        shed,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_has_a_row_per_breaker_with_failures_over_threshold() {
        let health = json!({
            "enabled": true, "healthy": false, "excerpts_only": false,
            "breakers": [{
                "name": "huggingface", "state": "open", "consecutive_failures": 5,
                "fail_threshold": 5, "retry_after_seconds": 12.34, "calls": 9,
                "successes": 4, "failures": 5, "rejected": 3, "ignored": 0,
                "in_flight_limit": {"mode": "auto", "limit": 4, "in_flight": 2, "shed": 7}
            }, {
                "name": "redis", "state": "closed", "consecutive_failures": 0,
                "fail_threshold": 3, "retry_after_seconds": null, "calls": 1,
                "successes": 1, "failures": 0, "rejected": 0, "ignored": 0,
                "in_flight_limit": null
            }]
        });
        let text = render(&health);
        assert!(
            text.starts_with("UNHEALTHY · circuit breaker enabled · LLM on\n"),
            "{text}"
        );
        let row = text.lines().nth(2).expect("one row");
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "huggingface",
                "open",
                "5/5",
                "12.3s",
                "9",
                "4",
                "5",
                "3",
                "0",
                "2/4",
                "7"
            ]
        );
        let redis = text.lines().nth(3).expect("a second row");
        let cells: Vec<&str> = redis.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 2..], ["-", "-"], "no bound: {redis}");
    }
}
