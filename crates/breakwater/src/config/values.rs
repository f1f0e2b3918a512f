//! Value parsers: `Ok(value)` or `Err(reason)`, the reason saying what a valid value looks like.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use breaker::{Adaptive, InFlightLimit};

use super::{Secret, Url};

/// The longest accepted duration: one year. Bounds what later `Instant + Duration` can see.
const MAX_SECONDS: f64 = 31_536_000.0;

/// One of `T`'s names, in any case (`chat`, `TEXT`).
pub(super) fn choice<T: clap::ValueEnum>(s: &str) -> Result<T, String> {
    T::from_str(s, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| Some(v.to_possible_value()?.get_name().to_owned()))
            .collect();
        format!("expected {}", names.join(" or "))
    })
}

pub(super) fn boolean(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false (or 1/0, yes/no, on/off)".to_owned()),
    }
}

pub(super) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| "expected an IP address and port, like 127.0.0.1:8000 or [::]:8000".to_owned())
}

pub(super) fn file_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("expected a file path".to_owned());
    }
    Ok(PathBuf::from(s))
}

/// A whole number in `min..=max`. The reason shows the range when `show_range` is set or the
/// number is too large, else just the lower bound (`expected a whole number ≥ 1`).
pub(super) fn whole_number(s: &str, min: u64, max: u64, show_range: bool) -> Result<u64, String> {
    let range = || format!("expected a whole number from {min} to {max}");
    let too_small = || {
        if show_range {
            range()
        } else {
            format!("expected a whole number ≥ {min}")
        }
    };
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(too_small());
    }
    match digits.parse::<u64>() {
        Ok(n) if n < min => Err(too_small()),
        Ok(n) if n <= max => Ok(n),
        _ => Err(range()),
    }
}

/// A whole number of calls or failures, 1 to `max`.
pub(super) fn whole_count(s: &str, max: u32) -> Result<u32, String> {
    let n = whole_number(s, 1, u64::from(max), false)?;
    u32::try_from(n).map_err(|_| "expected a whole number ≥ 1".to_owned())
}

pub(super) fn whole_usize(s: &str, min: u64) -> Result<usize, String> {
    let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
    let n = whole_number(s, min, max, false)?;
    usize::try_from(n).map_err(|_| format!("expected a whole number from {min} to {max}"))
}

pub(super) fn whole_usize_to(s: &str, min: u64, max: u64) -> Result<usize, String> {
    let n = whole_number(s, min, max, true)?;
    usize::try_from(n).map_err(|_| format!("expected a whole number from {min} to {max}"))
}

/// Seconds, possibly fractional, > 0 and at most [`MAX_SECONDS`].
pub(super) fn seconds(s: &str) -> Result<Duration, String> {
    let reason = || "expected a number of seconds > 0, like 30 or 0.5".to_owned();
    let secs: f64 = s.parse().map_err(|_| reason())?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(reason());
    }
    if secs > MAX_SECONDS {
        return Err(format!("expected at most {MAX_SECONDS} seconds (one year)"));
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(reason()),
    }
}

/// A share in `(0, 1]`.
pub(super) fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err("expected a number above 0 and at most 1, like 0.5".to_owned()),
    }
}

/// `auto`, `0` (no bound) or a whole number of calls.
pub(super) fn max_in_flight(s: &str) -> Result<InFlightLimit, String> {
    let reason = || "expected auto, 0 (no bound) or a whole number of calls".to_owned();
    if s.eq_ignore_ascii_case("auto") {
        return Ok(InFlightLimit::Adaptive(Adaptive::default()));
    }
    match whole_number(s, 0, 1_000_000, true).map_err(|_| reason())? {
        0 => Ok(InFlightLimit::Off),
        n => u32::try_from(n)
            .map(InFlightLimit::Fixed)
            .map_err(|_| reason()),
    }
}

/// An `http://` or `https://` URL with a host.
pub(super) fn http_url(s: &str) -> Result<Url, String> {
    let reason = || "expected an http:// or https:// URL".to_owned();
    let url = reqwest::Url::parse(s).map_err(|_| reason())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(reason());
    }
    Ok(s.to_owned().into())
}

/// An `http(s)` URL that paths are appended to: no query or fragment, trailing `/` trimmed.
pub(super) fn base_url(s: &str) -> Result<String, String> {
    http_url(s)?;
    if s.contains(['?', '#']) {
        return Err("expected an http:// or https:// base URL without ?query or #fragment".into());
    }
    Ok(s.trim_end_matches('/').to_owned())
}

pub(super) fn model_id(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("expected a model id without spaces, like Qwen/Qwen2.5-1.5B-Instruct".into());
    }
    Ok(s.to_owned())
}

pub(super) fn breaker_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err("expected a non-empty name without control characters".to_owned());
    }
    // The shared cache's own breaker has this name; two breakers must not share one.
    if s == crate::cache::RedisCache::BREAKER_NAME {
        return Err(format!(
            "`{s}` is the shared cache's breaker; choose another name"
        ));
    }
    Ok(s.to_owned())
}

/// A bearer token: it goes into an HTTP header, so visible ASCII only.
pub(super) fn token(s: &str) -> Result<Secret, String> {
    if !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err("expected visible ASCII characters only (no spaces or line breaks)".into());
    }
    Ok(s.to_owned().into())
}

pub(super) fn redis_url(s: &str) -> Result<Url, String> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("rediss://") {
        return Err("TLS to Redis (rediss://) is not built in; use redis:// or unix://".to_owned());
    }
    let rest = ["redis://", "unix://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme));
    match rest {
        Some(rest) if !rest.is_empty() => Ok(s.to_owned().into()),
        _ => Err("expected a URL starting with redis:// or unix://".to_owned()),
    }
}

pub(super) fn database_url(s: &str) -> Result<Url, String> {
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Err("expected a PostgreSQL URL starting with postgres:// or postgresql://".into());
    }
    match s.parse::<tokio_postgres::Config>() {
        Ok(_) => Ok(s.to_owned().into()),
        Err(e) => Err(format!("not a PostgreSQL connection URL ({e})")),
    }
}

pub(super) fn log_filter(s: &str) -> Result<String, String> {
    match tracing_subscriber::EnvFilter::try_new(s) {
        Ok(_) => Ok(s.to_owned()),
        Err(err) => Err(format!(
            "expected a log filter like info or breakwater=debug,tower_http=warn ({err})"
        )),
    }
}
