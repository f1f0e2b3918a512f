//! Removing credentials from values before they reach logs, `Debug` output or error messages.

/// `url` with any `user:password@` replaced by `***@` and any `?query` by `?***`: Redis and
/// proxy URLs carry passwords there (`redis://:secret@host`, `unix:///sock?pass=secret`).
pub(super) fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(query) => format!("{}?***", &tail[..query]),
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The stand-in shown for a token's value.
pub(super) const SECRET: &str = "***";
