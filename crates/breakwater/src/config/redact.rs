//! Removing credentials from values before they reach logs, `Debug` output or error messages.

use std::fmt;

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

/// A token: its value never reaches `Debug` output (it prints `"***"`); read it with `&*`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// A URL that may carry credentials: `Debug` prints it with them removed ([`url`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Url(String);

// Both wrap a `String` and read as a `&str`; only their `Debug` differs.
macro_rules! string_newtype {
    ($($ty:ident),*) => {$(
        impl From<String> for $ty {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl std::ops::Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    )*};
}
string_newtype!(Secret, Url);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(SECRET, f)
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&url(&self.0), f)
    }
}
