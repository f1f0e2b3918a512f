//! The pure parse: a map of variables in, a validated [`Config`] or every problem out.

use std::collections::HashMap;
use std::time::Duration;

use super::redact::{self, SECRET};
use super::upstreams::{self, UpstreamConfig};
use super::values::{
    api_mode, base_url, boolean, breaker_name, database_url, environment, file_path, http_url,
    log_filter, log_format, max_in_flight, model_id, rate, redis_url, seconds, socket_addr, token,
    whole_count, whole_number, whole_usize, whole_usize_to,
};
use super::{
    BreakerConfig, CacheConfig, Config, ConfigError, InvalidValue, JwtConfig, JwtKey, LlmConfig,
    LogConfig, NotesConfig, ServerConfig,
};

/// Every variable read, in the order they are parsed and reported.
pub(super) const VARIABLES: &[&str] = &[
    "BREAKWATER_ENV",
    "BREAKWATER_ADDR",
    "BREAKWATER_API_TOKEN",
    "BREAKWATER_ADMIN_TOKEN",
    "BREAKWATER_HEADER_TIMEOUT_SECONDS",
    "BREAKWATER_BODY_TIMEOUT_SECONDS",
    "BREAKWATER_REQUEST_TIMEOUT_SECONDS",
    "BREAKWATER_MAX_CONNECTIONS",
    "BREAKWATER_JWT_SECRET",
    "BREAKWATER_JWT_PUBLIC_KEY",
    "BREAKWATER_JWT_AUDIENCE",
    "BREAKWATER_JWT_ISSUER",
    "BREAKWATER_MAX_BODY_BYTES",
    "BREAKWATER_DB",
    "BREAKWATER_TOP_K",
    "BREAKWATER_CONFIG",
    "HF_API_TOKEN",
    "HF_TOKEN",
    "HF_API_BASE",
    "HF_MODEL",
    "HF_API_MODE",
    "HF_CHAT_URL",
    "HF_TEXT_URL",
    "HF_FIRST_TOKEN_TIMEOUT_SECONDS",
    "HF_STREAM_IDLE_TIMEOUT_SECONDS",
    "CIRCUIT_BREAKER_ENABLED",
    "CIRCUIT_BREAKER_FAIL_THRESHOLD",
    "CIRCUIT_BREAKER_TIMEOUT_SECONDS",
    "CIRCUIT_BREAKER_RESET_TIMEOUT",
    "CIRCUIT_BREAKER_NAME",
    "CIRCUIT_BREAKER_MAX_RESET_TIMEOUT",
    "CIRCUIT_BREAKER_FAILURE_RATE",
    "CIRCUIT_BREAKER_WINDOW_SECONDS",
    "CIRCUIT_BREAKER_MIN_CALLS",
    "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS",
    "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
    "CIRCUIT_BREAKER_SLOW_CALL_SECONDS",
    "CIRCUIT_BREAKER_MAX_IN_FLIGHT",
    "CIRCUIT_BREAKER_SHARED",
    "BREAKWATER_CACHE_CAPACITY",
    "BREAKWATER_CACHE_TTL_SECONDS",
    "REDIS_URL",
    "DATABASE_URL",
    "BREAKWATER_DB_TIMEOUT_SECONDS",
    "BREAKWATER_LOG_FORMAT",
    "RUST_LOG",
];

impl Config {
    /// Parses and validates a configuration from variables (name → value), applying defaults.
    ///
    /// Pure: reads nothing but `vars`, so tests pass a map. Every variable is checked and all
    /// bad values are returned together; names not listed in [`Config::VARIABLES`] are
    /// ignored (an unknown `BREAKWATER_*` or `CIRCUIT_BREAKER_*` name adds a warning).
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
        let mut r = Reader {
            vars,
            invalid: Vec::new(),
        };
        let d = Config::default();

        let environment = r.optional("BREAKWATER_ENV", environment);
        let server = ServerConfig {
            addr: r.value("BREAKWATER_ADDR", d.server.addr, socket_addr),
            api_token: r.secret("BREAKWATER_API_TOKEN"),
            jwt: r.jwt(),
            admin_token: r.secret("BREAKWATER_ADMIN_TOKEN"),
            header_timeout: r.value(
                "BREAKWATER_HEADER_TIMEOUT_SECONDS",
                d.server.header_timeout,
                seconds,
            ),
            body_timeout: r.value(
                "BREAKWATER_BODY_TIMEOUT_SECONDS",
                d.server.body_timeout,
                seconds,
            ),
            request_timeout: r.value(
                "BREAKWATER_REQUEST_TIMEOUT_SECONDS",
                d.server.request_timeout,
                seconds,
            ),
            max_connections: r.value("BREAKWATER_MAX_CONNECTIONS", None, |s| {
                if s.eq_ignore_ascii_case("auto") {
                    return Ok(None);
                }
                whole_usize(s, 1)
                    .map(Some)
                    .map_err(|_| "expected auto or a whole number ≥ 1".to_owned())
            }),
            max_body_bytes: r.value("BREAKWATER_MAX_BODY_BYTES", d.server.max_body_bytes, |s| {
                whole_usize(s, 1024)
            }),
        };
        let notes = NotesConfig {
            db: r.value("BREAKWATER_DB", d.notes.db, file_path),
            top_k: r.value("BREAKWATER_TOP_K", d.notes.top_k, |s| {
                whole_usize_to(s, 1, 20)
            }),
            db_timeout: r.value("BREAKWATER_DB_TIMEOUT_SECONDS", d.notes.db_timeout, seconds),
        };
        let config_file = r.optional("BREAKWATER_CONFIG", file_path);
        let llm = r.llm(d.llm);
        let breaker = r.breaker(d.breaker);
        let mut files = Vec::new();
        let upstreams = match &config_file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    upstreams::parse(path, &text, (&llm, &breaker), vars).unwrap_or_else(|errors| {
                        files = errors;
                        Vec::new()
                    })
                }
                Err(e) => {
                    let raw = r.raw("BREAKWATER_CONFIG");
                    r.reject(
                        "BREAKWATER_CONFIG",
                        &raw,
                        format!("cannot read the file: {e}"),
                    );
                    Vec::new()
                }
            },
            None if llm.api_token.is_some() => vec![UpstreamConfig {
                llm: llm.clone(),
                breaker: breaker.clone(),
            }],
            None => Vec::new(),
        };
        let cache = CacheConfig {
            capacity: r.value("BREAKWATER_CACHE_CAPACITY", d.cache.capacity, |s| {
                whole_number(s, 1, u64::MAX, false)
            }),
            ttl: r.value("BREAKWATER_CACHE_TTL_SECONDS", d.cache.ttl, seconds),
        };
        let redis_url = r.optional("REDIS_URL", redis_url);
        let database_url = r.optional("DATABASE_URL", database_url);
        let log = LogConfig {
            format: r.value("BREAKWATER_LOG_FORMAT", d.log.format, log_format),
            filter: r.optional("RUST_LOG", log_filter).unwrap_or(d.log.filter),
        };

        if !r.invalid.is_empty() || !files.is_empty() {
            return Err(ConfigError {
                files,
                invalid: r.invalid,
            });
        }
        let warnings = warnings(vars, &server);
        Ok(Config {
            environment,
            server,
            notes,
            llm,
            breaker,
            upstreams,
            cache,
            redis_url,
            database_url,
            log,
            warnings,
        })
    }
}

/// Reads variables from the map, recording every rejected value and carrying on with the
/// default so that all problems are found in one pass.
struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    invalid: Vec<InvalidValue>,
}

impl Reader<'_> {
    /// The value of `var` with surrounding whitespace removed; `None` when absent.
    fn get(&self, var: &str) -> Option<&str> {
        self.vars.get(var).map(|value| value.trim())
    }

    /// The value of `var` exactly as given, for error messages.
    fn raw(&self, var: &str) -> String {
        self.vars.get(var).cloned().unwrap_or_default()
    }

    /// True when `var` is present and not blank.
    fn is_set(&self, var: &str) -> bool {
        self.get(var).is_some_and(|value| !value.is_empty())
    }

    /// Records a rejected value; credentials in URLs are removed before it is kept.
    fn reject(&mut self, variable: &'static str, value: &str, reason: String) {
        self.invalid.push(InvalidValue {
            variable,
            value: redact::url(value),
            reason,
            flag: None,
        });
    }

    /// A variable with a default: absent = default; present (even empty) must parse.
    fn value<T>(
        &mut self,
        var: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(value) = self.get(var) else {
            return default;
        };
        match parse(value) {
            Ok(parsed) => parsed,
            Err(reason) => {
                let raw = self.raw(var);
                self.reject(var, &raw, reason);
                default
            }
        }
    }

    /// An optional variable: absent or blank = `None`.
    fn optional<T>(
        &mut self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.get(var).filter(|value| !value.is_empty())?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(reason) => {
                let raw = self.raw(var);
                self.reject(var, &raw, reason);
                None
            }
        }
    }

    /// A token: optional, and its value never appears in an error.
    fn secret(&mut self, var: &'static str) -> Option<String> {
        let value = self.get(var).filter(|value| !value.is_empty())?;
        match token(value) {
            Ok(token) => Some(token),
            Err(reason) => {
                self.reject(var, SECRET, reason);
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
                self.reject(
                    "BREAKWATER_JWT_PUBLIC_KEY",
                    &path.display().to_string(),
                    reason,
                );
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
                        self.reject(var, &raw, reason);
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

    fn breaker(&mut self, d: BreakerConfig) -> BreakerConfig {
        let count = |max: u32| move |s: &str| whole_count(s, max);
        let enabled = self.value("CIRCUIT_BREAKER_ENABLED", d.enabled, boolean);
        let shared = self.value("CIRCUIT_BREAKER_SHARED", d.shared, boolean);
        let fail_threshold = self.value(
            "CIRCUIT_BREAKER_FAIL_THRESHOLD",
            d.fail_threshold,
            count(breaker::MAX_FAIL_THRESHOLD),
        );
        let call_timeout = self.value("CIRCUIT_BREAKER_TIMEOUT_SECONDS", d.call_timeout, seconds);
        let reset_timeout = self.value("CIRCUIT_BREAKER_RESET_TIMEOUT", d.reset_timeout, seconds);
        let name = self.value("CIRCUIT_BREAKER_NAME", d.name, breaker_name);
        let max_reset_timeout = self.optional("CIRCUIT_BREAKER_MAX_RESET_TIMEOUT", seconds);
        if let Some(max) = max_reset_timeout
            && max < reset_timeout
        {
            let raw = self.raw("CIRCUIT_BREAKER_MAX_RESET_TIMEOUT");
            let reason = format!(
                "must be at least CIRCUIT_BREAKER_RESET_TIMEOUT ({}s)",
                reset_timeout.as_secs_f64()
            );
            self.reject("CIRCUIT_BREAKER_MAX_RESET_TIMEOUT", &raw, reason);
        }
        BreakerConfig {
            enabled,
            shared,
            fail_threshold,
            call_timeout,
            name,
            max_reset_timeout: max_reset_timeout
                .unwrap_or(reset_timeout)
                .max(reset_timeout),
            reset_timeout,
            failure_rate: self.optional("CIRCUIT_BREAKER_FAILURE_RATE", rate),
            window: self.value("CIRCUIT_BREAKER_WINDOW_SECONDS", d.window, |s| {
                seconds(s).and_then(|d| {
                    (d >= Duration::from_millis(10))
                        .then_some(d)
                        .ok_or_else(|| "expected at least 0.01 seconds".to_owned())
                })
            }),
            min_calls: self.value("CIRCUIT_BREAKER_MIN_CALLS", d.min_calls, count(u32::MAX)),
            half_open_max_calls: self.value(
                "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS",
                d.half_open_max_calls,
                count(breaker::MAX_FAIL_THRESHOLD),
            ),
            success_threshold: self.value(
                "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
                d.success_threshold,
                count(65_535),
            ),
            slow_call: self.optional("CIRCUIT_BREAKER_SLOW_CALL_SECONDS", seconds),
            max_in_flight: self.value(
                "CIRCUIT_BREAKER_MAX_IN_FLIGHT",
                d.max_in_flight,
                max_in_flight,
            ),
        }
    }

    fn llm(&mut self, d: LlmConfig) -> LlmConfig {
        // HF_API_TOKEN wins; HF_TOKEN (the huggingface_hub name) is the fallback.
        let api_token = if self.is_set("HF_API_TOKEN") {
            self.secret("HF_API_TOKEN")
        } else {
            self.secret("HF_TOKEN")
        };
        let api_base = self.value("HF_API_BASE", d.api_base, base_url);
        let model = self.value("HF_MODEL", d.model, model_id);
        let mode = self.value("HF_API_MODE", d.mode, api_mode);
        let chat = self.optional("HF_CHAT_URL", http_url);
        let text = self.optional("HF_TEXT_URL", http_url);
        let first_token_timeout = self.optional("HF_FIRST_TOKEN_TIMEOUT_SECONDS", seconds);
        let stream_idle_timeout = self.value(
            "HF_STREAM_IDLE_TIMEOUT_SECONDS",
            d.stream_idle_timeout,
            seconds,
        );
        LlmConfig {
            api_token,
            chat_url: chat.unwrap_or_else(|| chat_url(&api_base)),
            text_url: text.unwrap_or_else(|| text_url(&api_base, &model)),
            api_base,
            model,
            mode,
            first_token_timeout,
            stream_idle_timeout,
        }
    }
}

/// The default chat completions URL for a base URL (without trailing slash).
pub(super) fn chat_url(base: &str) -> String {
    format!("{base}/v1/chat/completions")
}

/// The default text-generation URL for a base URL (without trailing slash) and a model.
pub(super) fn text_url(base: &str, model: &str) -> String {
    format!("{base}/hf-inference/models/{model}")
}

fn warnings(vars: &HashMap<String, String>, server: &ServerConfig) -> Vec<String> {
    let mut unknown: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|name| name.starts_with("BREAKWATER_") || name.starts_with("CIRCUIT_BREAKER_"))
        .filter(|name| !VARIABLES.contains(name))
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
