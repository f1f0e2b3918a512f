//! Why a configuration was rejected: every bad value and unreadable file, reported together.

use std::fmt;
use std::path::PathBuf;

/// The configuration could not be built; lists every problem found, not just the first.
///
/// `Display` prints one problem per line: files first, then variables in a fixed order, e.g.
///
/// ```text
/// /srv/breakwater/.env: line 3: malformed line: expected NAME=value (check quotes and escapes)
/// CIRCUIT_BREAKER_FAIL_THRESHOLD="abc": expected a whole number ≥ 1
/// --call-timeout=-1 (CIRCUIT_BREAKER_TIMEOUT_SECONDS): expected a number of seconds > 0, like 30 or 0.5
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.files, .invalid))]
pub struct ConfigError {
    /// `.env` files that exist but could not be read or parsed.
    pub files: Vec<FileError>,
    /// Variables whose values were rejected.
    pub invalid: Vec<InvalidValue>,
}

impl ConfigError {
    /// The names of the rejected variables, in report order.
    pub fn variables(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.invalid.iter().map(|invalid| invalid.variable)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.files.is_empty() && self.invalid.is_empty()
    }
}

fn render(files: &[FileError], invalid: &[InvalidValue]) -> String {
    let lines: Vec<String> = files
        .iter()
        .map(ToString::to_string)
        .chain(invalid.iter().map(ToString::to_string))
        .collect();
    lines.join("\n")
}

/// One variable whose value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// The variable, e.g. `CIRCUIT_BREAKER_FAIL_THRESHOLD`.
    pub variable: &'static str,
    /// The rejected value as given; `***` for tokens, credentials removed from URLs.
    pub value: String,
    /// What a valid value looks like, e.g. `expected a whole number ≥ 1`.
    pub reason: String,
    /// The command-line flag the value came from, when it came from one (e.g. `--fail-threshold`).
    pub flag: Option<&'static str>,
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.flag {
            Some(flag) if is_shell_word(&self.value) => write!(
                f,
                "{flag}={} ({}): {}",
                self.value, self.variable, self.reason
            ),
            Some(flag) => write!(
                f,
                "{flag}={:?} ({}): {}",
                self.value, self.variable, self.reason
            ),
            None => write!(f, "{}={:?}: {}", self.variable, self.value, self.reason),
        }
    }
}

/// Whether `value` can be shown after `--flag=` without quotes.
fn is_shell_word(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '$' | '`'))
}

/// A `.env` file that exists but could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file (or, for a missing `--env-dir`, the directory).
    pub path: PathBuf,
    /// The 1-based line where the malformed entry starts, when known.
    pub line: Option<usize>,
    /// What is wrong, e.g. `malformed line: expected NAME=value`. Never quotes the line itself,
    /// which may hold a secret.
    pub reason: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}
