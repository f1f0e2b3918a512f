//! The pure parse: a map of variables in, a validated [`Config`] or every problem out.
//!
//! The defaults are written here, beside the variable each belongs to; [`Config::default`]
//! is the parse of an empty map. The settings an `[[upstream]]` entry may override are read
//! by one function, [`overrides`], from either source, so the two cannot drift apart.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use breaker::{Adaptive, InFlightLimit};

use super::redact::{self, SECRET};
use super::upstreams::{self, UpstreamConfig};
use super::values::{
    base_url, boolean, breaker_name, choice, database_url, file_path, http_url, log_filter,
    max_in_flight, model_id, rate, redis_url, seconds, socket_addr, token, whole_count,
    whole_number, whole_usize, whole_usize_to,
};
use super::{
    ApiMode, BreakerConfig, CacheConfig, Config, ConfigError, DEFAULT_ADDR, FileError,
    InvalidValue, JwtConfig, JwtKey, LlmConfig, LogConfig, LogFormat, NotesConfig, Secret,
    ServerConfig,
};

/// The default `HF_API_BASE`.
const DEFAULT_HF_API_BASE: &str = "https://router.huggingface.co";
/// The default `HF_MODEL`: a small instruct model.
const DEFAULT_HF_MODEL: &str = "Qwen/Qwen2.5-1.5B-Instruct";

/// A setting the environment gives every upstream and an `[[upstream]]` entry may override:
/// its variable and its key in the file.
#[derive(Clone, Copy)]
pub(super) struct Key {
    pub(super) var: &'static str,
    pub(super) file: &'static str,
    /// In the environment, an empty value means "not set" rather than a bad value.
    pub(super) blank_unsets: bool,
}

const fn key(var: &'static str, file: &'static str) -> Key {
    Key {
        var,
        file,
        blank_unsets: false,
    }
}

const fn optional_key(var: &'static str, file: &'static str) -> Key {
    Key {
        var,
        file,
        blank_unsets: true,
    }
}

/// Where the overridable settings are read from: the environment, or one `[[upstream]]` entry.
pub(super) trait Source {
    /// The value of `key` checked by `parse`: `None` when absent, or when rejected (then
    /// recorded).
    fn read<T>(&mut self, key: Key, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T>;

    /// Records a problem with the value of `key`.
    fn reject(&mut self, key: Key, reason: String);

    /// How `key` is written in this source, for messages.
    fn name(&self, key: Key) -> &'static str;
}

/// Reads the overridable settings from `src` over `b` and `llm`: what `src` gives replaces
/// what they hold, what it does not give stays.
pub(super) fn overrides(src: &mut impl Source, b: &mut BreakerConfig, llm: &mut LlmConfig) {
    let count = |max: u32| move |s: &str| whole_count(s, max);
    let calls = count(breaker::MAX_FAIL_THRESHOLD);
    let k = key("CIRCUIT_BREAKER_FAIL_THRESHOLD", "fail_threshold");
    set(&mut b.fail_threshold, src.read(k, calls));
    let k = key("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "call_timeout_seconds");
    set(&mut b.call_timeout, src.read(k, seconds));
    let constant = b.max_reset_timeout <= b.reset_timeout;
    let reset = key("CIRCUIT_BREAKER_RESET_TIMEOUT", "reset_timeout_seconds");
    set(&mut b.reset_timeout, src.read(reset, seconds));
    let k = optional_key(
        "CIRCUIT_BREAKER_MAX_RESET_TIMEOUT",
        "max_reset_timeout_seconds",
    );
    b.max_reset_timeout = match src.read(k, seconds) {
        Some(max) if max < b.reset_timeout => {
            let secs = b.reset_timeout.as_secs_f64();
            let reason = format!("must be at least {} ({secs}s)", src.name(reset));
            src.reject(k, reason);
            b.reset_timeout
        }
        Some(max) => max,
        // A constant open time follows the reset timeout; a growing one keeps its cap.
        None if constant => b.reset_timeout,
        None => b.max_reset_timeout.max(b.reset_timeout),
    };
    let k = optional_key("CIRCUIT_BREAKER_FAILURE_RATE", "failure_rate");
    set(&mut b.failure_rate, src.read(k, rate).map(Some));
    let k = key("CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "half_open_max_calls");
    set(&mut b.half_open_max_calls, src.read(k, calls));
    let k = key("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "success_threshold");
    set(&mut b.success_threshold, src.read(k, count(65_535)));
    let k = optional_key("CIRCUIT_BREAKER_SLOW_CALL_SECONDS", "slow_call_seconds");
    set(&mut b.slow_call, src.read(k, seconds).map(Some));
    let k = key("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "max_in_flight");
    set(&mut b.max_in_flight, src.read(k, max_in_flight));
    let k = optional_key(
        "HF_FIRST_TOKEN_TIMEOUT_SECONDS",
        "first_token_timeout_seconds",
    );
    set(&mut llm.first_token_timeout, src.read(k, seconds).map(Some));
    let k = key(
        "HF_STREAM_IDLE_TIMEOUT_SECONDS",
        "stream_idle_timeout_seconds",
    );
    set(&mut llm.stream_idle_timeout, src.read(k, seconds));
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

impl Config {
    /// Every variable the configuration reads, in the order they are parsed and reported.
    ///
    /// Taken from the parse itself (the names it asks for), so it cannot miss one.
    pub fn variables() -> &'static [&'static str] {
        static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
            let empty = HashMap::new();
            let mut r = Reader::new(&empty);
            r.config();
            r.names
        });
        &NAMES
    }

    /// Parses and validates a configuration from variables (name → value), applying defaults.
    ///
    /// Pure: reads nothing but `vars` (and the `BREAKWATER_CONFIG` file it names), so tests
    /// pass a map. Every variable is checked and all bad values are returned together; names
    /// not in [`Config::variables`] are ignored (an unknown `BREAKWATER_*` or
    /// `CIRCUIT_BREAKER_*` name adds a warning).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use breakwater::config::{ApiMode, Config};
    ///
    /// let vars = HashMap::from([
    ///     ("HF_API_MODE".to_owned(), "text".to_owned()),
    ///     ("CIRCUIT_BREAKER_TIMEOUT_SECONDS".to_owned(), "0.5".to_owned()),
    /// ]);
    /// let config = Config::from_map(&vars)?;
    /// assert_eq!(config.llm.mode, ApiMode::Text);
    /// assert_eq!(config.breaker.call_timeout, Duration::from_millis(500));
    /// assert!(config.excerpts_only());
    ///
    /// let bad = HashMap::from([("CIRCUIT_BREAKER_FAIL_THRESHOLD".to_owned(), "abc".to_owned())]);
    /// let err = Config::from_map(&bad).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"CIRCUIT_BREAKER_FAIL_THRESHOLD="abc": expected a whole number ≥ 1"#
    /// );
    /// # Ok::<(), breakwater::config::ConfigError>(())
    /// ```
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut r = Reader::new(vars);
        let mut config = r.config();
        if !r.invalid.is_empty() || !r.files.is_empty() {
            return Err(ConfigError {
                files: r.files,
                invalid: r.invalid,
            });
        }
        config.warnings = warnings(vars, &r.names, &config.server);
        Ok(config)
    }
}

impl Default for Config {
    /// Every default: the configuration of an empty environment.
    fn default() -> Self {
        Config::from_map(&HashMap::new()).expect("the defaults are valid")
    }
}

/// Reads variables from the map, recording every rejected value and carrying on with the
/// default so that all problems are found in one pass.
struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    /// Every name asked for, in order: [`Config::variables`].
    names: Vec<&'static str>,
    invalid: Vec<InvalidValue>,
    /// The `BREAKWATER_CONFIG` file's problems.
    files: Vec<FileError>,
}

impl<'a> Reader<'a> {
    fn new(vars: &'a HashMap<String, String>) -> Self {
        Reader {
            vars,
            names: Vec::new(),
            invalid: Vec::new(),
            files: Vec::new(),
        }
    }

    /// The whole configuration, the defaults standing in for every rejected value.
    fn config(&mut self) -> Config {
        let secs = Duration::from_secs;
        let environment = self.optional("BREAKWATER_ENV", choice);
        let server = self.server();
        let notes = NotesConfig {
            db: self.value("BREAKWATER_DB", "breakwater.db".into(), file_path),
            top_k: self.value("BREAKWATER_TOP_K", 5, |s| whole_usize_to(s, 1, 20)),
            db_timeout: self.value("BREAKWATER_DB_TIMEOUT_SECONDS", secs(2), seconds),
        };
        let config_file = self.optional("BREAKWATER_CONFIG", file_path);
        let mut llm = self.llm();
        let mut breaker = self.breaker();
        overrides(self, &mut breaker, &mut llm);
        let upstreams = match config_file {
            Some(path) => self.upstreams_file(&path, &llm, &breaker),
            None if llm.api_token.is_some() => vec![UpstreamConfig {
                llm: llm.clone(),
                breaker: breaker.clone(),
            }],
            None => Vec::new(),
        };
        let capacity = |s: &str| whole_number(s, 1, u64::MAX, false);
        let cache = CacheConfig {
            capacity: self.value("BREAKWATER_CACHE_CAPACITY", 10_000, capacity),
            ttl: self.value("BREAKWATER_CACHE_TTL_SECONDS", secs(3600), seconds),
        };
        Config {
            environment,
            server,
            notes,
            llm,
            breaker,
            upstreams,
            cache,
            redis_url: self.optional("REDIS_URL", redis_url),
            database_url: self.optional("DATABASE_URL", database_url),
            log: LogConfig {
                format: self.value("BREAKWATER_LOG_FORMAT", LogFormat::Text, choice),
                filter: self
                    .optional("RUST_LOG", log_filter)
                    .unwrap_or_else(|| "info".into()),
            },
            warnings: Vec::new(),
        }
    }

    fn server(&mut self) -> ServerConfig {
        let secs = Duration::from_secs;
        let connections = |s: &str| {
            if s.eq_ignore_ascii_case("auto") {
                return Ok(None);
            }
            whole_usize(s, 1)
                .map(Some)
                .map_err(|_| "expected auto or a whole number ≥ 1".to_owned())
        };
        ServerConfig {
            addr: self.value("BREAKWATER_ADDR", DEFAULT_ADDR, socket_addr),
            api_token: self.secret("BREAKWATER_API_TOKEN"),
            jwt: self.jwt(),
            admin_token: self.secret("BREAKWATER_ADMIN_TOKEN"),
            header_timeout: self.value("BREAKWATER_HEADER_TIMEOUT_SECONDS", secs(10), seconds),
            body_timeout: self.value("BREAKWATER_BODY_TIMEOUT_SECONDS", secs(30), seconds),
            request_timeout: self.value("BREAKWATER_REQUEST_TIMEOUT_SECONDS", secs(60), seconds),
            max_connections: self.value("BREAKWATER_MAX_CONNECTIONS", None, connections),
            // Bounded: each worker is an OS thread, and a typo like 40000 would spawn them
            // until the machine gives out.
            worker_threads: self.value("TOKIO_WORKER_THREADS", None, |s| {
                whole_usize_to(s, 1, 1024).map(Some)
            }),
            max_body_bytes: self.value("BREAKWATER_MAX_BODY_BYTES", 65_536, |s| {
                whole_usize(s, 1024)
            }),
        }
    }

    /// The upstreams of the `BREAKWATER_CONFIG` file, each starting from the environment's
    /// settings; none (and the problems recorded) when it cannot be read or has errors.
    fn upstreams_file(
        &mut self,
        path: &std::path::Path,
        llm: &LlmConfig,
        breaker: &BreakerConfig,
    ) -> Vec<UpstreamConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) => upstreams::parse(path, &text, (llm, breaker), self.vars).unwrap_or_else(
                |mut errors| {
                    self.files.append(&mut errors);
                    Vec::new()
                },
            ),
            Err(e) => {
                let raw = self.raw("BREAKWATER_CONFIG");
                self.reject_value(
                    "BREAKWATER_CONFIG",
                    &raw,
                    format!("cannot read the file: {e}"),
                );
                Vec::new()
            }
        }
    }

    /// The value of `var` with surrounding whitespace removed; `None` when absent.
    fn get(&mut self, var: &'static str) -> Option<&'a str> {
        if !self.names.contains(&var) {
            self.names.push(var);
        }
        self.vars.get(var).map(|value| value.trim())
    }

    /// The value of `var` exactly as given, for error messages.
    fn raw(&self, var: &str) -> String {
        self.vars.get(var).cloned().unwrap_or_default()
    }

    /// True when `var` is present and not blank.
    fn is_set(&mut self, var: &'static str) -> bool {
        self.get(var).is_some_and(|value| !value.is_empty())
    }

    /// Records a rejected value; credentials in URLs are removed before it is kept.
    fn reject_value(&mut self, variable: &'static str, value: &str, reason: String) {
        self.invalid.push(InvalidValue {
            variable,
            value: redact::url(value),
            reason,
            flag: None,
        });
    }

    /// A variable with a default: absent = `default`; present, even empty, it must parse.
    fn value<T>(
        &mut self,
        var: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        self.present(var, parse).unwrap_or(default)
    }

    /// The parsed value of `var`; `None` when absent or rejected.
    fn present<T>(
        &mut self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.get(var)?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(reason) => {
                let raw = self.raw(var);
                self.reject_value(var, &raw, reason);
                None
            }
        }
    }

    /// An optional variable: absent or blank = `None`.
    fn optional<T>(
        &mut self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if !self.is_set(var) {
            return None;
        }
        self.present(var, parse)
    }

    /// A token: optional, and its value never appears in an error.
    fn secret(&mut self, var: &'static str) -> Option<Secret> {
        let value = self.get(var).filter(|value| !value.is_empty())?;
        match token(value) {
            Ok(token) => Some(token),
            Err(reason) => {
                self.reject_value(var, SECRET, reason);
                None
            }
        }
    }

    /// JWT mode: a secret or a public key file (not both), and the claims to check.
    fn jwt(&mut self) -> Option<JwtConfig> {
        let secret = self.secret("BREAKWATER_JWT_SECRET");
        let public_key = self.optional("BREAKWATER_JWT_PUBLIC_KEY", file_path);
        let audience = self.optional("BREAKWATER_JWT_AUDIENCE", |s| Ok(s.to_owned()));
        let issuer = self.optional("BREAKWATER_JWT_ISSUER", |s| Ok(s.to_owned()));
        let key = match (secret, public_key) {
            (Some(_), Some(path)) => {
                let reason = "set either BREAKWATER_JWT_SECRET or BREAKWATER_JWT_PUBLIC_KEY, \
                              not both"
                    .to_owned();
                let path = path.display().to_string();
                self.reject_value("BREAKWATER_JWT_PUBLIC_KEY", &path, reason);
                return None;
            }
            (Some(secret), None) => JwtKey::Secret(secret),
            (None, Some(path)) => JwtKey::PublicKeyFile(path),
            (None, None) => {
                for var in ["BREAKWATER_JWT_AUDIENCE", "BREAKWATER_JWT_ISSUER"] {
                    if self.is_set(var) {
                        let raw = self.raw(var);
                        let reason =
                            "needs BREAKWATER_JWT_SECRET or BREAKWATER_JWT_PUBLIC_KEY".to_owned();
                        self.reject_value(var, &raw, reason);
                    }
                }
                return None;
            }
        };
        Some(JwtConfig {
            key,
            audience,
            issuer,
        })
    }

    /// The breaker settings only the environment gives; the others are [`overrides`]'s, here
    /// at their defaults.
    fn breaker(&mut self) -> BreakerConfig {
        let window = |s: &str| {
            seconds(s).and_then(|d| {
                (d >= Duration::from_millis(10))
                    .then_some(d)
                    .ok_or_else(|| "expected at least 0.01 seconds".to_owned())
            })
        };
        BreakerConfig {
            enabled: self.value("CIRCUIT_BREAKER_ENABLED", true, boolean),
            shared: self.value("CIRCUIT_BREAKER_SHARED", true, boolean),
            name: self.value("CIRCUIT_BREAKER_NAME", "huggingface".into(), breaker_name),
            window: self.value(
                "CIRCUIT_BREAKER_WINDOW_SECONDS",
                Duration::from_secs(60),
                window,
            ),
            min_calls: self.value("CIRCUIT_BREAKER_MIN_CALLS", 10, |s| {
                whole_count(s, u32::MAX)
            }),
            fail_threshold: 5,
            call_timeout: Duration::from_secs(30),
            reset_timeout: Duration::from_secs(60),
            max_reset_timeout: Duration::from_secs(60),
            failure_rate: None,
            half_open_max_calls: 1,
            success_threshold: 1,
            slow_call: None,
            max_in_flight: InFlightLimit::Adaptive(Adaptive::default()),
        }
    }

    /// The upstream the `HF_*` variables describe; its stream deadlines are [`overrides`]'s,
    /// here at their defaults.
    fn llm(&mut self) -> LlmConfig {
        // HF_API_TOKEN wins; HF_TOKEN (the huggingface_hub name) is the fallback.
        let api_token = if self.is_set("HF_API_TOKEN") {
            self.secret("HF_API_TOKEN")
        } else {
            self.secret("HF_TOKEN")
        };
        let api_base = self.value("HF_API_BASE", DEFAULT_HF_API_BASE.into(), base_url);
        let model = self.value("HF_MODEL", DEFAULT_HF_MODEL.into(), model_id);
        let mode = self.value("HF_API_MODE", ApiMode::Chat, choice);
        let chat_url = self.optional("HF_CHAT_URL", http_url);
        let text_url = self.optional("HF_TEXT_URL", http_url);
        LlmConfig {
            api_token,
            chat_url: chat_url.unwrap_or_else(|| format!("{api_base}/v1/chat/completions").into()),
            text_url: text_url
                .unwrap_or_else(|| format!("{api_base}/hf-inference/models/{model}").into()),
            api_base: api_base.into(),
            model,
            mode,
            first_token_timeout: None,
            stream_idle_timeout: Duration::from_secs(10),
        }
    }
}

impl Source for Reader<'_> {
    fn read<T>(&mut self, key: Key, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        if key.blank_unsets {
            self.optional(key.var, parse)
        } else {
            self.present(key.var, parse)
        }
    }

    fn reject(&mut self, key: Key, reason: String) {
        let raw = self.raw(key.var);
        self.reject_value(key.var, &raw, reason);
    }

    fn name(&self, key: Key) -> &'static str {
        key.var
    }
}

fn warnings(
    vars: &HashMap<String, String>,
    known: &[&'static str],
    server: &ServerConfig,
) -> Vec<String> {
    let mut unknown: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|name| name.starts_with("BREAKWATER_") || name.starts_with("CIRCUIT_BREAKER_"))
        .filter(|name| !known.contains(name))
        .collect();
    unknown.sort_unstable();
    let mut warnings: Vec<String> = unknown
        .into_iter()
        .map(|name| format!("{name} is not a Breakwater variable and is ignored (a typo?)"))
        .collect();
    if !server.addr.ip().is_loopback() && server.api_token.is_none() {
        warnings.push(format!(
            "listening on {} without BREAKWATER_API_TOKEN: /api/* is open to anyone who can \
             reach it",
            server.addr
        ));
    }
    let hf_api_token = vars.get("HF_API_TOKEN").map(|v| v.trim());
    let hf_token = vars.get("HF_TOKEN").map(|v| v.trim());
    if let (Some(a), Some(b)) = (hf_api_token, hf_token)
        && !a.is_empty()
        && !b.is_empty()
        && a != b
    {
        warnings.push("HF_API_TOKEN and HF_TOKEN differ; using HF_API_TOKEN".to_owned());
    }
    warnings
}
