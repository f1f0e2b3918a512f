//! Configuration: defaults, parsing of every variable, error reports, source precedence and
//! the command-line flags that override it.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use breakwater::cli::{Cli, Command, OVERRIDE_FLAGS};
use breakwater::config::{ApiMode, Config, ConfigError, Environment, LogFormat};
use clap::Parser;
use proptest::prelude::*;
use tempfile::TempDir;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn parse(pairs: &[(&str, &str)]) -> Config {
    Config::from_map(&vars(pairs)).expect("valid configuration")
}

fn reject(pairs: &[(&str, &str)]) -> ConfigError {
    match Config::from_map(&vars(pairs)) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err,
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write env file");
    path
}

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("breakwater").chain(args.iter().copied()))
        .expect("valid command line")
}

// Defaults

#[test]
fn defaults_apply_when_nothing_is_set() {
    let config = parse(&[]);

    assert_eq!(config.environment, None);
    assert_eq!(
        config.server.addr,
        "127.0.0.1:8000".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(config.server.api_token, None);
    assert_eq!(config.server.max_body_bytes, 65_536);
    assert_eq!(config.notes.db, PathBuf::from("breakwater.db"));
    assert_eq!(config.notes.top_k, 5);
    assert_eq!(config.llm.api_token, None);
    assert_eq!(config.llm.api_base, "https://router.huggingface.co");
    assert_eq!(config.llm.model, "Qwen/Qwen2.5-1.5B-Instruct");
    assert_eq!(config.llm.mode, ApiMode::Chat);
    assert_eq!(
        config.llm.chat_url,
        "https://router.huggingface.co/v1/chat/completions"
    );
    assert_eq!(
        config.llm.text_url,
        "https://router.huggingface.co/hf-inference/models/Qwen/Qwen2.5-1.5B-Instruct"
    );
    assert!(config.breaker.enabled);
    assert_eq!(config.breaker.fail_threshold, 5);
    assert_eq!(config.breaker.call_timeout, Duration::from_secs(30));
    assert_eq!(config.breaker.reset_timeout, Duration::from_secs(60));
    assert_eq!(config.breaker.name, "huggingface");
    assert_eq!(config.cache.capacity, 10_000);
    assert_eq!(config.cache.ttl, Duration::from_secs(3600));
    assert_eq!(config.server.worker_threads, None);
    assert_eq!(config.redis_url, None);
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.filter, "info");
    assert!(config.warnings.is_empty());
    assert!(config.excerpts_only());
}

// Each variable

#[test]
fn every_variable_is_parsed() {
    let config = parse(&[
        ("BREAKWATER_ENV", "Production"),
        ("BREAKWATER_ADDR", "[::1]:9000"),
        ("BREAKWATER_DB", "/var/lib/breakwater/notes.db"),
        ("BREAKWATER_API_TOKEN", "s3cret"),
        ("BREAKWATER_MAX_BODY_BYTES", "1024"),
        ("BREAKWATER_TOP_K", "20"),
        ("HF_API_TOKEN", "hf_abc"),
        ("HF_API_BASE", "http://localhost:8080/"),
        ("HF_MODEL", "meta-llama/Llama-3.1-8B-Instruct"),
        ("HF_API_MODE", "TEXT"),
        ("HF_CHAT_URL", "http://chat.local/v1/chat/completions"),
        ("HF_TEXT_URL", "https://text.local/generate"),
        ("CIRCUIT_BREAKER_ENABLED", "off"),
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "3"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "0.5"),
        ("CIRCUIT_BREAKER_RESET_TIMEOUT", "2.25"),
        ("CIRCUIT_BREAKER_NAME", "chat-upstream"),
        ("BREAKWATER_CACHE_CAPACITY", "42"),
        ("BREAKWATER_CACHE_TTL_SECONDS", "90"),
        ("TOKIO_WORKER_THREADS", "1"),
        ("REDIS_URL", "redis://cache.internal:6380/0"),
        ("BREAKWATER_LOG_FORMAT", "json"),
        ("RUST_LOG", "breakwater=debug,tower_http=warn"),
    ]);

    assert_eq!(config.environment, Some(Environment::Production));
    assert_eq!(config.server.addr, "[::1]:9000".parse().expect("addr"));
    assert_eq!(
        config.notes.db,
        PathBuf::from("/var/lib/breakwater/notes.db")
    );
    assert_eq!(config.server.api_token.as_deref(), Some("s3cret"));
    assert_eq!(config.server.max_body_bytes, 1024);
    assert_eq!(config.notes.top_k, 20);
    assert_eq!(config.llm.api_token.as_deref(), Some("hf_abc"));
    assert_eq!(config.llm.api_base, "http://localhost:8080");
    assert_eq!(config.llm.model, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(config.llm.mode, ApiMode::Text);
    assert_eq!(config.llm.chat_url, "http://chat.local/v1/chat/completions");
    assert_eq!(config.llm.text_url, "https://text.local/generate");
    assert_eq!(config.llm.endpoint_url(), "https://text.local/generate");
    assert!(!config.breaker.enabled);
    assert_eq!(config.breaker.fail_threshold, 3);
    assert_eq!(config.breaker.call_timeout, Duration::from_millis(500));
    assert_eq!(config.breaker.reset_timeout, Duration::from_millis(2250));
    assert_eq!(config.breaker.name, "chat-upstream");
    assert_eq!(config.cache.capacity, 42);
    assert_eq!(config.cache.ttl, Duration::from_secs(90));
    assert_eq!(config.server.worker_threads, Some(1));
    assert_eq!(
        config.redis_url.as_deref(),
        Some("redis://cache.internal:6380/0")
    );
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.filter, "breakwater=debug,tower_http=warn");
    assert!(!config.excerpts_only());
}

#[test]
fn fractional_seconds_become_exact_durations() {
    let config = parse(&[
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "0.5"),
        ("CIRCUIT_BREAKER_RESET_TIMEOUT", ".25"),
        ("BREAKWATER_CACHE_TTL_SECONDS", "1.5"),
    ]);

    assert_eq!(config.breaker.call_timeout, Duration::from_millis(500));
    assert_eq!(config.breaker.reset_timeout, Duration::from_millis(250));
    assert_eq!(config.cache.ttl, Duration::from_millis(1500));
}

#[test]
fn breaker_enabled_accepts_every_documented_spelling_in_any_case() {
    for (value, expected) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("On", true),
        ("false", false),
        ("False", false),
        ("0", false),
        ("NO", false),
        ("off", false),
    ] {
        let config = parse(&[("CIRCUIT_BREAKER_ENABLED", value)]);
        assert_eq!(config.breaker.enabled, expected, "value {value:?}");
    }
}

#[test]
fn surrounding_whitespace_is_ignored() {
    let config = parse(&[
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", " 7 "),
        ("HF_API_MODE", "text\n"),
        ("HF_API_TOKEN", "  hf_x\n"),
    ]);

    assert_eq!(config.breaker.fail_threshold, 7);
    assert_eq!(config.llm.mode, ApiMode::Text);
    assert_eq!(config.llm.api_token.as_deref(), Some("hf_x"));
}

#[test]
fn redis_url_accepts_redis_and_unix_schemes() {
    for url in ["redis://user:pw@host:6380/1", "unix:///run/redis.sock"] {
        assert_eq!(parse(&[("REDIS_URL", url)]).redis_url.as_deref(), Some(url));
    }
}

#[test]
fn tls_redis_and_the_reserved_breaker_name_stop_start_up() {
    // This build has no TLS for Redis: better refused at start than silently unshared.
    let err = reject(&[("REDIS_URL", "rediss://host:6380")]);
    assert!(err.to_string().contains("rediss://"), "{err}");
    let err = reject(&[("CIRCUIT_BREAKER_NAME", "redis")]);
    assert!(err.to_string().contains("CIRCUIT_BREAKER_NAME"), "{err}");
}

#[test]
fn empty_optional_variables_mean_unset() {
    let config = parse(&[
        ("BREAKWATER_ENV", ""),
        ("BREAKWATER_API_TOKEN", ""),
        ("HF_API_TOKEN", "  "),
        ("HF_CHAT_URL", ""),
        ("REDIS_URL", ""),
        ("RUST_LOG", ""),
    ]);

    assert_eq!(config, Config::default());
}

// URL defaults

#[test]
fn url_defaults_derive_from_base_and_model() {
    let config = parse(&[
        ("HF_API_BASE", "http://127.0.0.1:9999//"),
        ("HF_MODEL", "org/model-7b"),
    ]);

    assert_eq!(config.llm.api_base, "http://127.0.0.1:9999");
    assert_eq!(
        config.llm.chat_url,
        "http://127.0.0.1:9999/v1/chat/completions"
    );
    assert_eq!(
        config.llm.text_url,
        "http://127.0.0.1:9999/hf-inference/models/org/model-7b"
    );
    assert_eq!(config.llm.endpoint_url(), &*config.llm.chat_url);
}

#[test]
fn explicit_urls_win_over_derived_ones() {
    let config = parse(&[
        ("HF_API_BASE", "http://base.local"),
        ("HF_CHAT_URL", "http://elsewhere.local/chat"),
    ]);

    assert_eq!(config.llm.chat_url, "http://elsewhere.local/chat");
    assert_eq!(
        config.llm.text_url,
        "http://base.local/hf-inference/models/Qwen/Qwen2.5-1.5B-Instruct"
    );
}

// Tokens

#[test]
fn hf_token_is_the_fallback_for_hf_api_token() {
    let fallback = parse(&[("HF_TOKEN", "hf_fallback")]);
    let both = parse(&[("HF_API_TOKEN", "hf_primary"), ("HF_TOKEN", "hf_fallback")]);
    let empty_primary = parse(&[("HF_API_TOKEN", ""), ("HF_TOKEN", "hf_fallback")]);

    assert_eq!(fallback.llm.api_token.as_deref(), Some("hf_fallback"));
    assert_eq!(both.llm.api_token.as_deref(), Some("hf_primary"));
    assert_eq!(empty_primary.llm.api_token.as_deref(), Some("hf_fallback"));
}

#[test]
fn differing_hf_tokens_add_a_warning() {
    let config = parse(&[("HF_API_TOKEN", "hf_a"), ("HF_TOKEN", "hf_b")]);

    assert!(config.warnings.iter().any(|w| w.contains("HF_TOKEN")));
}

#[test]
fn empty_hf_token_means_excerpts_only() {
    let config = parse(&[("HF_API_TOKEN", ""), ("HF_TOKEN", "")]);

    assert!(config.excerpts_only());
    assert_eq!(config.llm.api_token, None);
}

#[test]
fn debug_output_redacts_tokens_and_url_credentials() {
    let config = parse(&[
        ("BREAKWATER_API_TOKEN", "api-secret-1"),
        ("HF_API_TOKEN", "hf-secret-2"),
        ("REDIS_URL", "redis://:redis-secret-3@cache:6379"),
    ]);

    let debug = format!("{config:?}");
    let pretty = format!("{config:#?}");

    for output in [&debug, &pretty] {
        assert!(!output.contains("api-secret-1"), "{output}");
        assert!(!output.contains("hf-secret-2"), "{output}");
        assert!(!output.contains("redis-secret-3"), "{output}");
    }
    assert!(debug.contains(r#"api_token: Some("***")"#), "{debug}");
    // The server's token, the LLM's, and the LLM's again as the chain's one upstream.
    assert_eq!(debug.matches(r#"Some("***")"#).count(), 3, "{debug}");
    assert!(debug.contains("redis://***@cache:6379"), "{debug}");
}

#[test]
fn summary_is_one_line_without_secrets() {
    let config = parse(&[
        ("BREAKWATER_API_TOKEN", "api-secret-1"),
        ("HF_API_TOKEN", "hf-secret-2"),
        ("REDIS_URL", "redis://:redis-secret-3@cache:6379"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "0.5"),
    ]);

    let summary = config.summary();

    assert!(!summary.contains('\n'));
    assert!(!summary.contains("secret"), "{summary}");
    assert!(summary.contains("addr=127.0.0.1:8000"), "{summary}");
    assert!(summary.contains("call_timeout=0.5s"), "{summary}");
    assert!(summary.contains("api_auth=on"), "{summary}");
}

#[test]
fn summary_says_when_the_assistant_is_excerpts_only() {
    assert!(parse(&[]).summary().contains("excerpts only"));
}

// Bad values

#[test]
fn bad_value_reports_variable_value_and_reason() {
    let err = reject(&[("CIRCUIT_BREAKER_FAIL_THRESHOLD", "abc")]);

    assert_eq!(err.invalid.len(), 1);
    assert_eq!(err.invalid[0].variable, "CIRCUIT_BREAKER_FAIL_THRESHOLD");
    assert_eq!(err.invalid[0].value, "abc");
    assert_eq!(
        err.to_string(),
        r#"CIRCUIT_BREAKER_FAIL_THRESHOLD="abc": expected a whole number ≥ 1"#
    );
}

#[test]
fn several_bad_values_are_all_reported_one_per_line() {
    let err = reject(&[
        ("BREAKWATER_ADDR", "localhost"),
        ("HF_API_MODE", "completion"),
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "0"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "-1"),
        ("REDIS_URL", "http://cache"),
    ]);

    let variables: Vec<&str> = err.variables().collect();
    assert_eq!(
        variables,
        [
            "BREAKWATER_ADDR",
            "HF_API_MODE",
            "CIRCUIT_BREAKER_FAIL_THRESHOLD",
            "CIRCUIT_BREAKER_TIMEOUT_SECONDS",
            "REDIS_URL",
        ]
    );
    let message = err.to_string();
    assert_eq!(message.lines().count(), 5, "{message}");
    assert!(
        message.contains(r#"BREAKWATER_ADDR="localhost""#),
        "{message}"
    );
    assert!(message.contains(r#"HF_API_MODE="completion""#), "{message}");
    assert!(
        message.contains(r#"CIRCUIT_BREAKER_TIMEOUT_SECONDS="-1""#),
        "{message}"
    );
}

#[test]
fn each_variable_rejects_a_bad_value() {
    let cases = [
        ("BREAKWATER_ENV", "staging"),
        ("BREAKWATER_ADDR", "127.0.0.1"),
        ("BREAKWATER_ADDR", ""),
        ("BREAKWATER_DB", ""),
        ("BREAKWATER_API_TOKEN", "two words"),
        ("BREAKWATER_MAX_BODY_BYTES", "1023"),
        ("BREAKWATER_TOP_K", "0"),
        ("BREAKWATER_TOP_K", "21"),
        ("HF_API_TOKEN", "hf\u{e9}"),
        ("HF_TOKEN", "tab\there"),
        ("HF_API_BASE", "ftp://host"),
        ("HF_API_BASE", "router.huggingface.co"),
        ("HF_API_BASE", "https://host/?q=1"),
        ("HF_MODEL", "has space"),
        ("HF_API_MODE", ""),
        ("HF_CHAT_URL", "not a url"),
        ("HF_TEXT_URL", "file:///etc/passwd"),
        ("CIRCUIT_BREAKER_ENABLED", "maybe"),
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "1.5"),
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "4294967296"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "0"),
        ("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "NaN"),
        ("CIRCUIT_BREAKER_RESET_TIMEOUT", "inf"),
        ("CIRCUIT_BREAKER_RESET_TIMEOUT", "1e-12"),
        ("CIRCUIT_BREAKER_NAME", ""),
        ("BREAKWATER_CACHE_CAPACITY", "0"),
        ("BREAKWATER_CACHE_TTL_SECONDS", "99999999999"),
        ("TOKIO_WORKER_THREADS", "0"),
        ("TOKIO_WORKER_THREADS", "abc"),
        ("TOKIO_WORKER_THREADS", "1025"),
        ("REDIS_URL", "redis://"),
        ("BREAKWATER_LOG_FORMAT", "xml"),
        ("RUST_LOG", "breakwater=loud"),
    ];
    for (variable, value) in cases {
        let err = reject(&[(variable, value)]);
        let reported: Vec<&str> = err.variables().collect();
        assert_eq!(reported, [variable], "{variable}={value:?}: {err}");
    }
}

#[test]
fn too_large_numbers_report_the_upper_bound() {
    // The breaker's own limit, not u32's: start-up fails naming the variable.
    let err = reject(&[("CIRCUIT_BREAKER_FAIL_THRESHOLD", "16777216")]);

    assert!(err.to_string().contains("from 1 to 16777215"), "{err}");
}

#[test]
fn rejected_tokens_and_url_credentials_are_not_echoed() {
    let err = reject(&[
        ("HF_API_TOKEN", "hf secret"),
        ("REDIS_URL", "http://:pw-secret@cache"),
    ]);

    let message = err.to_string();
    assert!(message.contains(r#"HF_API_TOKEN="***""#), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn unknown_breakwater_variables_add_a_warning() {
    let config = parse(&[("BREAKWATER_ADR", "0.0.0.0:1"), ("PATH", "/bin")]);

    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].contains("BREAKWATER_ADR"));
}

#[test]
fn a_public_listener_without_api_token_adds_a_warning() {
    let open = parse(&[("BREAKWATER_ADDR", "0.0.0.0:8000")]);
    let guarded = parse(&[
        ("BREAKWATER_ADDR", "0.0.0.0:8000"),
        ("BREAKWATER_API_TOKEN", "t"),
    ]);

    assert!(
        open.warnings
            .iter()
            .any(|w| w.contains("BREAKWATER_API_TOKEN"))
    );
    assert!(guarded.warnings.is_empty());
}

#[test]
fn local_url_maps_unspecified_addresses_to_loopback() {
    let v4 = parse(&[("BREAKWATER_ADDR", "0.0.0.0:8000")]);
    let v6 = parse(&[("BREAKWATER_ADDR", "[::]:8001")]);

    assert_eq!(v4.server.local_url(), "http://127.0.0.1:8000");
    assert_eq!(v6.server.local_url(), "http://[::1]:8001");
}

// Sources and precedence

#[test]
fn precedence_is_dotenv_then_env_file_then_process_then_flags() {
    let dir = TempDir::new().expect("temp dir");
    write(
        dir.path(),
        ".env",
        "BREAKWATER_ENV=production\nHF_MODEL=from-dotenv\nBREAKWATER_DB=dotenv.db\n\
         CIRCUIT_BREAKER_NAME=dotenv\nCIRCUIT_BREAKER_FAIL_THRESHOLD=1\n",
    );
    write(
        dir.path(),
        ".env.production",
        "HF_MODEL=from-production\nBREAKWATER_DB=production.db\n\
         CIRCUIT_BREAKER_FAIL_THRESHOLD=2\n",
    );
    let process = env(&[
        ("BREAKWATER_DB", "process.db"),
        ("CIRCUIT_BREAKER_FAIL_THRESHOLD", "3"),
    ]);
    let overrides = [("CIRCUIT_BREAKER_FAIL_THRESHOLD", "4".to_owned())];

    let config = Config::load(dir.path(), process, &overrides).expect("valid");

    assert_eq!(config.environment, Some(Environment::Production));
    assert_eq!(config.breaker.name, "dotenv");
    assert_eq!(config.llm.model, "from-production");
    assert_eq!(config.notes.db, PathBuf::from("process.db"));
    assert_eq!(config.breaker.fail_threshold, 4);
}

#[test]
fn process_breakwater_env_selects_the_env_file() {
    let dir = TempDir::new().expect("temp dir");
    write(dir.path(), ".env", "BREAKWATER_ENV=production\n");
    write(dir.path(), ".env.production", "HF_MODEL=prod-model\n");
    write(dir.path(), ".env.development", "HF_MODEL=dev-model\n");

    let config =
        Config::load(dir.path(), env(&[("BREAKWATER_ENV", "development")]), &[]).expect("valid");

    assert_eq!(config.environment, Some(Environment::Development));
    assert_eq!(config.llm.model, "dev-model");
}

#[test]
fn env_file_is_not_read_without_breakwater_env() {
    let dir = TempDir::new().expect("temp dir");
    write(dir.path(), ".env.production", "HF_MODEL=prod-model\n");

    let config = Config::load(dir.path(), Vec::new(), &[]).expect("valid");

    assert_eq!(config.environment, None);
    assert_eq!(config.llm.model, "Qwen/Qwen2.5-1.5B-Instruct");
}

#[test]
fn missing_env_files_are_fine() {
    let dir = TempDir::new().expect("temp dir");

    let config =
        Config::load(dir.path(), env(&[("BREAKWATER_ENV", "production")]), &[]).expect("valid");

    assert_eq!(config.environment, Some(Environment::Production));
}

#[test]
fn empty_process_value_unsets_a_dotenv_value() {
    let dir = TempDir::new().expect("temp dir");
    write(
        dir.path(),
        ".env",
        "REDIS_URL=redis://cache\nHF_API_TOKEN=hf_x\n",
    );

    let config = Config::load(
        dir.path(),
        env(&[("REDIS_URL", ""), ("HF_API_TOKEN", "")]),
        &[],
    )
    .expect("valid");

    assert_eq!(config.redis_url, None);
    assert!(config.excerpts_only());
}

#[test]
fn dotenv_supports_quotes_comments_and_export() {
    let dir = TempDir::new().expect("temp dir");
    write(
        dir.path(),
        ".env",
        "\u{feff}# comment\nexport HF_MODEL='org/model'\nCIRCUIT_BREAKER_NAME=\"chat upstream\" # trailing\n\r\n",
    );

    let config = Config::load(dir.path(), Vec::new(), &[]).expect("valid");

    assert_eq!(config.llm.model, "org/model");
    assert_eq!(config.breaker.name, "chat upstream");
}

#[test]
fn malformed_dotenv_names_the_file_and_line() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(
        dir.path(),
        ".env",
        "HF_MODEL=ok\n# fine\nTHIS IS NOT AN ASSIGNMENT\nHF_API_MODE=text\n",
    );

    let err = Config::load(dir.path(), Vec::new(), &[]).expect_err("malformed file");

    assert_eq!(err.files.len(), 1);
    assert_eq!(err.files[0].path, path);
    assert_eq!(err.files[0].line, Some(3));
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn malformed_env_file_is_reported_with_bad_values() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(dir.path(), ".env.development", "HF_TOKEN=\"unterminated\n");

    let err = Config::load(
        dir.path(),
        env(&[
            ("BREAKWATER_ENV", "development"),
            ("BREAKWATER_TOP_K", "99"),
        ]),
        &[],
    )
    .expect_err("malformed file and bad value");

    assert_eq!(err.files.len(), 1);
    assert_eq!(err.files[0].path, path);
    assert_eq!(err.files[0].line, Some(1));
    assert!(!err.to_string().contains("unterminated"), "{err}");
    assert_eq!(err.variables().collect::<Vec<_>>(), ["BREAKWATER_TOP_K"]);
}

#[test]
fn bad_breakwater_env_is_reported_and_loads_no_env_file() {
    let dir = TempDir::new().expect("temp dir");
    write(dir.path(), ".env", "BREAKWATER_ENV=staging\n");

    let err = Config::load(dir.path(), Vec::new(), &[]).expect_err("bad env");

    assert_eq!(err.variables().collect::<Vec<_>>(), ["BREAKWATER_ENV"]);
    assert!(err.to_string().contains(r#"BREAKWATER_ENV="staging""#));
}

#[test]
fn missing_env_dir_is_an_error() {
    let dir = TempDir::new().expect("temp dir");
    let missing = dir.path().join("nope");

    let err = Config::load(&missing, Vec::new(), &[]).expect_err("missing dir");

    assert_eq!(err.files[0].path, missing);
}

#[test]
fn loading_never_changes_the_process_environment() {
    let dir = TempDir::new().expect("temp dir");
    write(dir.path(), ".env", "BREAKWATER_TEST_ONLY_MARKER=1\n");

    let _ = Config::load(dir.path(), Vec::new(), &[]);

    assert!(std::env::var_os("BREAKWATER_TEST_ONLY_MARKER").is_none());
}

#[test]
fn bad_flag_value_names_the_flag_and_the_variable() {
    let dir = TempDir::new().expect("temp dir");
    let cli = cli(&["--fail-threshold", "abc", "serve"]);

    let err = Config::load(dir.path(), Vec::new(), &cli.overrides()).expect_err("bad flag");

    assert_eq!(err.invalid[0].flag, Some("--fail-threshold"));
    assert_eq!(
        err.to_string(),
        "--fail-threshold=abc (CIRCUIT_BREAKER_FAIL_THRESHOLD): expected a whole number ≥ 1"
    );
}

#[test]
fn negative_flag_values_reach_the_config_parser() {
    let dir = TempDir::new().expect("temp dir");
    let cli = cli(&["serve", "--call-timeout", "-1"]);

    let err = Config::load(dir.path(), Vec::new(), &cli.overrides()).expect_err("negative");

    assert_eq!(err.invalid[0].flag, Some("--call-timeout"));
    assert!(
        err.to_string()
            .starts_with("--call-timeout=-1 (CIRCUIT_BREAKER_TIMEOUT_SECONDS)")
    );
}

#[test]
fn from_process_env_applies_overrides_over_the_real_environment() {
    let dir = TempDir::new().expect("temp dir");
    let overrides = [("HF_MODEL", "org/override".to_owned())];

    // The real environment of the test runner is unknown: only check what the override decides.
    match Config::from_process_env_in(dir.path(), &overrides) {
        Ok(config) => assert_eq!(config.llm.model, "org/override"),
        Err(err) => assert!(err.variables().all(|name| name != "HF_MODEL"), "{err}"),
    }
}

#[test]
fn bad_process_value_does_not_blame_a_flag() {
    let dir = TempDir::new().expect("temp dir");

    let err = Config::load(dir.path(), env(&[("HF_API_MODE", "x")]), &[]).expect_err("bad");

    assert_eq!(err.invalid[0].flag, None);
}

// CLI

#[test]
fn cli_parses_serve() {
    let cli = cli(&["serve"]);

    assert!(matches!(cli.command, Command::Serve(_)));
    assert!(cli.overrides().is_empty());
    assert_eq!(cli.env_dir, PathBuf::from("."));
}

#[test]
fn cli_parses_ingest_with_paths_user_and_no_progress() {
    let cli = cli(&[
        "ingest",
        "notes/",
        "a.md",
        "--user",
        "alice",
        "--no-progress",
    ]);

    let Command::Ingest(args) = cli.command else {
        panic!("expected ingest, got {:?}", cli.command);
    };
    assert_eq!(args.paths, [PathBuf::from("notes/"), PathBuf::from("a.md")]);
    assert_eq!(args.user.as_str(), "alice");
    assert!(args.no_progress);
}

#[test]
fn cli_ingest_needs_at_least_one_path() {
    assert!(Cli::try_parse_from(["breakwater", "ingest"]).is_err());
}

#[test]
fn cli_rejects_an_invalid_user() {
    assert!(Cli::try_parse_from(["breakwater", "ask", "q", "--user", "bob smith"]).is_err());
}

#[test]
fn cli_parses_ask_with_defaults_and_options() {
    let plain = cli(&["ask", "what is a breakwater?"]);
    let full = cli(&[
        "ask",
        "why?",
        "--user",
        "bob",
        "--max-sources",
        "2",
        "--json",
    ]);

    let Command::Ask(plain) = plain.command else {
        panic!("expected ask");
    };
    assert_eq!(plain.question, "what is a breakwater?");
    assert_eq!(plain.user.as_str(), "default");
    assert_eq!(plain.max_sources, None);
    assert!(!plain.json);
    let Command::Ask(full) = full.command else {
        panic!("expected ask");
    };
    assert_eq!(full.user.as_str(), "bob");
    assert_eq!(full.max_sources, Some(2));
    assert!(full.json);
}

#[test]
fn cli_parses_status() {
    let plain = cli(&["status"]);
    let full = cli(&["status", "--server", "http://10.0.0.5:8000", "--json"]);

    let Command::Status(plain) = plain.command else {
        panic!("expected status");
    };
    assert_eq!(plain.server, None);
    assert!(!plain.json);
    let Command::Status(full) = full.command else {
        panic!("expected status");
    };
    assert_eq!(full.server.as_deref(), Some("http://10.0.0.5:8000"));
    assert!(full.json);
}

#[test]
fn cli_maps_every_config_flag_to_its_variable() {
    let cli = cli(&[
        "--addr",
        "0.0.0.0:9000",
        "--db",
        "flag.db",
        "--hf-api-base",
        "http://upstream.local/",
        "--model",
        "org/flag-model",
        "--api-mode",
        "text",
        "--breaker-enabled",
        "false",
        "--fail-threshold",
        "9",
        "--call-timeout",
        "0.5",
        "--reset-timeout",
        "7",
        "--redis-url",
        "redis://flag:6379",
        "--env-dir",
        "/etc/breakwater",
        "serve",
    ]);

    let overrides = cli.overrides();
    let names: Vec<&str> = overrides.iter().map(|(name, _)| *name).collect();
    let expected: Vec<&str> = OVERRIDE_FLAGS.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, expected);
    assert_eq!(cli.env_dir, PathBuf::from("/etc/breakwater"));

    let config = Config::from_map(
        &overrides
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    )
    .expect("valid overrides");
    assert_eq!(config.server.addr, "0.0.0.0:9000".parse().expect("addr"));
    assert_eq!(config.notes.db, PathBuf::from("flag.db"));
    assert_eq!(config.llm.api_base, "http://upstream.local");
    assert_eq!(config.llm.model, "org/flag-model");
    assert_eq!(config.llm.mode, ApiMode::Text);
    assert!(!config.breaker.enabled);
    assert_eq!(config.breaker.fail_threshold, 9);
    assert_eq!(config.breaker.call_timeout, Duration::from_millis(500));
    assert_eq!(config.breaker.reset_timeout, Duration::from_secs(7));
    assert_eq!(config.redis_url.as_deref(), Some("redis://flag:6379"));
}

#[test]
fn cli_config_flags_are_accepted_after_the_verb() {
    let cli = cli(&["ask", "q", "--model", "org/m", "--env-dir", "conf"]);

    assert_eq!(cli.overrides(), [("HF_MODEL", "org/m".to_owned())]);
    assert_eq!(cli.env_dir, PathBuf::from("conf"));
}

#[test]
fn cli_help_lists_the_verbs_and_config_flags() {
    let err = Cli::try_parse_from(["breakwater", "--help"]).expect_err("help exits");
    let help = err.to_string();

    for word in [
        "serve",
        "ingest",
        "ask",
        "status",
        "--fail-threshold",
        "--env-dir",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
}

#[test]
fn flags_override_the_process_environment() {
    let dir = TempDir::new().expect("temp dir");
    let cli = cli(&["--redis-url", "", "--api-mode", "text", "serve"]);

    let config = Config::load(
        dir.path(),
        env(&[("REDIS_URL", "redis://cache"), ("HF_API_MODE", "chat")]),
        &cli.overrides(),
    )
    .expect("valid");

    assert_eq!(config.redis_url, None);
    assert_eq!(config.llm.mode, ApiMode::Text);
}

// Properties

fn known_variable() -> impl Strategy<Value = String> {
    proptest::sample::select(Config::variables().to_vec()).prop_map(str::to_owned)
}

proptest! {
    #[test]
    fn from_map_never_panics_on_arbitrary_values(
        entries in proptest::collection::hash_map(known_variable(), any::<String>(), 0..24),
    ) {
        let _ = Config::from_map(&entries);
    }

    #[test]
    fn from_map_never_panics_on_number_like_values(
        entries in proptest::collection::hash_map(
            known_variable(),
            "[-+]?[0-9]{0,25}(\\.[0-9]{0,12})?([eE][-+]?[0-9]{1,4})?|inf|NaN|[a-z:/.@\\[\\]]{0,20}",
            0..24,
        ),
    ) {
        let _ = Config::from_map(&entries);
    }

    #[test]
    fn every_rejected_value_is_reported_by_its_variable(
        entries in proptest::collection::hash_map(known_variable(), any::<String>(), 0..24),
    ) {
        if let Err(err) = Config::from_map(&entries) {
            prop_assert!(!err.invalid.is_empty());
            for invalid in &err.invalid {
                prop_assert!(entries.contains_key(invalid.variable));
            }
        }
    }

    #[test]
    fn load_never_panics_on_arbitrary_dotenv_text(text in any::<String>()) {
        let dir = TempDir::new().expect("temp dir");
        write(dir.path(), ".env", &text);
        let _ = Config::load(dir.path(), Vec::new(), &[]);
    }
}

#[test]
fn breaker_policies_have_defaults_and_are_all_read() {
    use breaker::{Adaptive, InFlightLimit};
    let d = parse(&[]).breaker;
    assert_eq!(
        d.max_reset_timeout, d.reset_timeout,
        "fixed open time by default"
    );
    assert_eq!(d.failure_rate, None);
    assert_eq!((d.window, d.min_calls), (Duration::from_secs(60), 10));
    assert_eq!((d.half_open_max_calls, d.success_threshold), (1, 1));
    assert_eq!(
        (d.slow_call, d.max_in_flight),
        (None, InFlightLimit::Adaptive(Adaptive::default()))
    );
    let c = parse(&[
        ("CIRCUIT_BREAKER_RESET_TIMEOUT", "2"),
        ("CIRCUIT_BREAKER_MAX_RESET_TIMEOUT", "60"),
        ("CIRCUIT_BREAKER_FAILURE_RATE", "0.25"),
        ("CIRCUIT_BREAKER_WINDOW_SECONDS", "0.5"),
        ("CIRCUIT_BREAKER_MIN_CALLS", "3"),
        ("CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "4"),
        ("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "2"),
        ("CIRCUIT_BREAKER_SLOW_CALL_SECONDS", "1.5"),
        ("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "64"),
    ])
    .breaker;
    assert_eq!(c.max_reset_timeout, Duration::from_secs(60));
    assert_eq!(c.failure_rate, Some(0.25));
    assert_eq!((c.window, c.min_calls), (Duration::from_millis(500), 3));
    assert_eq!((c.half_open_max_calls, c.success_threshold), (4, 2));
    assert_eq!(c.slow_call, Some(Duration::from_millis(1500)));
    assert_eq!(c.max_in_flight, InFlightLimit::Fixed(64));
    let off = parse(&[("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "0")]).breaker;
    assert_eq!(off.max_in_flight, InFlightLimit::Off);
    assert!(
        c.builder().build().is_ok(),
        "every accepted value builds a breaker"
    );
    let summary = parse(&[("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "AUTO")]).summary();
    for part in [
        "failure_rate=off",
        "max_reset_timeout=60s",
        "half_open_max_calls=1",
        "success_threshold=1",
        "slow_call=off",
        "max_in_flight=auto",
    ] {
        assert!(summary.contains(part), "{part} in {summary}");
    }
}

#[test]
fn bad_breaker_policies_name_their_variable() {
    let err = reject(&[
        ("CIRCUIT_BREAKER_RESET_TIMEOUT", "10"),
        ("CIRCUIT_BREAKER_MAX_RESET_TIMEOUT", "5"),
        ("CIRCUIT_BREAKER_FAILURE_RATE", "1.5"),
        ("CIRCUIT_BREAKER_WINDOW_SECONDS", "0.001"),
        ("CIRCUIT_BREAKER_MIN_CALLS", "0"),
        ("CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "-1"),
        ("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "70000"),
        ("CIRCUIT_BREAKER_SLOW_CALL_SECONDS", "fast"),
        ("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "lots"),
    ]);
    let named: Vec<&str> = err.invalid.iter().map(|i| i.variable).collect();
    assert_eq!(
        named,
        [
            "CIRCUIT_BREAKER_WINDOW_SECONDS",
            "CIRCUIT_BREAKER_MIN_CALLS",
            "CIRCUIT_BREAKER_MAX_RESET_TIMEOUT",
            "CIRCUIT_BREAKER_FAILURE_RATE",
            "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS",
            "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
            "CIRCUIT_BREAKER_SLOW_CALL_SECONDS",
            "CIRCUIT_BREAKER_MAX_IN_FLIGHT",
        ]
    );
    assert!(
        err.to_string()
            .contains("must be at least CIRCUIT_BREAKER_RESET_TIMEOUT (10s)"),
        "{err}"
    );
}

#[test]
fn jwt_mode_takes_a_secret_or_a_key_file_and_its_claims_need_one() {
    use breakwater::config::JwtKey;
    let secret = parse(&[
        ("BREAKWATER_JWT_SECRET", "s3cret"),
        ("BREAKWATER_JWT_AUDIENCE", "breakwater"),
    ]);
    let jwt = secret.server.jwt.as_ref().expect("JWT mode");
    assert_eq!(jwt.key, JwtKey::Secret("s3cret".to_owned().into()));
    assert_eq!(jwt.audience.as_deref(), Some("breakwater"));
    assert!(
        !format!("{secret:?}").contains("s3cret"),
        "the secret is never printed"
    );
    assert!(
        secret.summary().contains("jwt=HS256"),
        "{}",
        secret.summary()
    );
    let key = parse(&[("BREAKWATER_JWT_PUBLIC_KEY", "/etc/keys/jwt.pem")]);
    let jwt = key.server.jwt.expect("JWT mode");
    assert_eq!(
        jwt.key,
        JwtKey::PublicKeyFile(PathBuf::from("/etc/keys/jwt.pem"))
    );
    assert!(parse(&[]).server.jwt.is_none());

    let both = reject(&[
        ("BREAKWATER_JWT_SECRET", "s3cret"),
        ("BREAKWATER_JWT_PUBLIC_KEY", "/k.pem"),
    ]);
    assert_eq!(both.invalid[0].variable, "BREAKWATER_JWT_PUBLIC_KEY");
    assert!(both.to_string().contains("not both"), "{both}");
    assert!(!both.to_string().contains("s3cret"));
    let orphan = reject(&[("BREAKWATER_JWT_ISSUER", "https://id.example")]);
    assert_eq!(orphan.invalid[0].variable, "BREAKWATER_JWT_ISSUER");
}

#[test]
fn the_variables_are_those_the_parse_reads_and_the_docs_list() {
    let names = Config::variables();
    // The module's table documents each one (`HF_TOKEN` shares `HF_API_TOKEN`'s row).
    let docs = include_str!("../src/config/mod.rs");
    for name in names {
        assert!(
            docs.contains(&format!("`{name}`")),
            "{name} is not documented"
        );
    }
    for name in [
        "BREAKWATER_ENV",
        "HF_TOKEN",
        "CIRCUIT_BREAKER_MAX_IN_FLIGHT",
        "RUST_LOG",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
}
