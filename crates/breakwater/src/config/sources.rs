//! Where variables come from: `.env` files, the process environment and command-line flags,
//! layered into one map for [`Config::from_map`].

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::Path;

use super::redact::SECRET;
use super::values::choice;
use super::{Config, ConfigError, FileError, InvalidValue};

const BREAKWATER_ENV: &str = "BREAKWATER_ENV";

impl Config {
    /// Reads the configuration of this process: `.env` files in `dir` (`--env-dir`, the
    /// working directory by default), the real environment, then `overrides` (from
    /// [`crate::cli::Cli::overrides`]).
    ///
    /// The only function in the crate that reads `std::env`.
    pub fn from_process_env_in(
        dir: &Path,
        overrides: &[(&'static str, String)],
    ) -> Result<Config, ConfigError> {
        // `std::env::vars` panics on a value that is not UTF-8: read raw, keep the valid ones,
        // and reject a non-UTF-8 value only if it is one of ours.
        let mut process_env = Vec::new();
        let mut not_utf8 = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Ok(name) = name.into_string() else {
                continue;
            };
            match value.into_string() {
                Ok(value) => process_env.push((name, value)),
                Err(value) => {
                    if let Some(invalid) = not_utf8_value(&name, &value) {
                        not_utf8.push(invalid);
                    }
                }
            }
        }
        load(dir, process_env, overrides, not_utf8)
    }

    /// Layers the sources and parses them: defaults < `dir/.env` < `dir/.env.$BREAKWATER_ENV`
    /// < `process_env` < `overrides` (variable name, value).
    ///
    /// Missing files are skipped; a file that exists but cannot be read or parsed is reported
    /// with its path and line, together with any bad values. Files are read into a map (with
    /// dotenvy's parser; the last assignment of a name wins) and never change the process
    /// environment. `$NAME` and `${NAME}` in unquoted or double-quoted values are expanded by
    /// dotenvy, from the real process environment first, then earlier lines of the same file.
    /// A bad value that came from a flag names the flag too.
    ///
    /// ```
    /// use breakwater::config::Config;
    ///
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join(".env"), "HF_MODEL=from-dotenv\nHF_TOKEN=hf_x\n")?;
    /// let env = [("HF_MODEL".to_owned(), "from-env".to_owned())];
    /// let config = Config::load(dir.path(), env, &[("BREAKWATER_ADDR", "0.0.0.0:9000".into())])?;
    /// assert_eq!(config.llm.model, "from-env");
    /// assert_eq!(config.server.addr.port(), 9000);
    /// assert!(!config.excerpts_only());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(
        dir: &Path,
        process_env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(&'static str, String)],
    ) -> Result<Config, ConfigError> {
        load(dir, process_env, overrides, Vec::new())
    }
}

fn load(
    dir: &Path,
    process_env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(&'static str, String)],
    mut invalid: Vec<InvalidValue>,
) -> Result<Config, ConfigError> {
    let process_env: HashMap<String, String> = process_env.into_iter().collect();
    let overrides: HashMap<String, String> = overrides
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    let mut files = Vec::new();

    let mut dotenv = HashMap::new();
    if dir.is_dir() {
        dotenv = read_env_file(&dir.join(".env")).unwrap_or_else(|err| {
            files.push(err);
            HashMap::new()
        });
    } else {
        files.push(FileError {
            path: dir.to_path_buf(),
            line: None,
            reason: "not a directory (where .env files are looked up)".to_owned(),
        });
    }

    // BREAKWATER_ENV picks the second file, so it comes from the layers above it. A bad value
    // loads no file and is reported by `from_map`.
    let selected_env = [&overrides, &process_env, &dotenv]
        .into_iter()
        .find_map(|layer| layer.get(BREAKWATER_ENV))
        .cloned();
    let mut env_file = HashMap::new();
    if let Some(Ok(environment)) = selected_env
        .as_deref()
        .map(|name| choice::<super::Environment>(name.trim()))
        && dir.is_dir()
    {
        let path = dir.join(format!(".env.{environment}"));
        env_file = read_env_file(&path).unwrap_or_else(|err| {
            files.push(err);
            HashMap::new()
        });
    }

    let mut vars = dotenv;
    vars.extend(env_file);
    vars.extend(process_env);
    vars.extend(overrides.clone());
    // `.env.production` cannot switch itself to another environment.
    if let Some(name) = selected_env {
        vars.insert(BREAKWATER_ENV.to_owned(), name);
    }

    let config = Config::from_map(&vars);
    let mut error = match config {
        Ok(config)
            if files.is_empty()
                && invalid
                    .iter()
                    .all(|problem| overrides.contains_key(problem.variable)) =>
        {
            return Ok(config);
        }
        Ok(_) => ConfigError {
            files: Vec::new(),
            invalid: Vec::new(),
        },
        Err(error) => error,
    };
    // A flag replaces a process value that was not UTF-8.
    invalid.retain(|problem| !overrides.contains_key(problem.variable));
    invalid.append(&mut error.invalid);
    // The upstreams file's own problems (`BREAKWATER_CONFIG`).
    files.append(&mut error.files);
    for problem in &mut invalid {
        if overrides.contains_key(problem.variable) {
            problem.flag = crate::cli::flag_for(problem.variable);
        }
    }
    let error = ConfigError { files, invalid };
    debug_assert!(!error.is_empty());
    Err(error)
}

/// Reads one `.env` file into a map. A missing file is an empty map.
fn read_env_file(path: &Path) -> Result<HashMap<String, String>, FileError> {
    let file_error = |line, reason: String| FileError {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(err) => return Err(file_error(None, format!("cannot read: {err}"))),
    };
    let text = String::from_utf8(bytes).map_err(|err| {
        let valid = err.utf8_error().valid_up_to();
        let line = err.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        file_error(Some(line), "not valid UTF-8".to_owned())
    })?;
    // dotenvy strips a byte-order mark only when it loads into the environment.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);

    let mut vars = HashMap::new();
    for entry in dotenvy::from_read_iter(text.as_bytes()) {
        match entry {
            Ok((name, value)) => {
                vars.insert(name, value);
            }
            // The entry itself is not quoted: it may hold a secret.
            Err(dotenvy::Error::LineParse(entry, _)) => {
                return Err(file_error(
                    line_of(text, &entry),
                    "malformed line: expected NAME=value (check quotes and escapes)".to_owned(),
                ));
            }
            Err(err) => return Err(file_error(None, err.to_string())),
        }
    }
    Ok(vars)
}

/// The 1-based line of `text` where `entry` (a possibly multi-line entry) starts.
fn line_of(text: &str, entry: &str) -> Option<usize> {
    let mut start = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if text[start..].starts_with(entry) {
            return Some(index + 1);
        }
        start += line.len();
    }
    None
}

/// The error for a process variable whose value is not UTF-8, if it is one we read.
fn not_utf8_value(name: &str, value: &OsString) -> Option<InvalidValue> {
    let variable = Config::variables().iter().find(|known| **known == name)?;
    let value = if name.ends_with("TOKEN") {
        SECRET.to_owned()
    } else {
        value.to_string_lossy().into_owned()
    };
    Some(InvalidValue {
        variable,
        value,
        reason: "expected valid UTF-8".to_owned(),
        flag: None,
    })
}
