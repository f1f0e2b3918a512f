//! `BREAKWATER_CONFIG`: the TOML file listing the LLM upstreams in order.
//!
//! ```toml
//! [[upstream]]
//! name = "hf-qwen"                       # the breaker's name
//! mode = "chat"                          # chat | text (default chat)
//! url = "https://router.huggingface.co/v1/chat/completions"
//! model = "Qwen/Qwen2.5-1.5B-Instruct"
//! token_env = "HF_API_TOKEN"             # the variable holding its token (optional)
//! fail_threshold = 3                     # optional: overrides CIRCUIT_BREAKER_* for it
//! ```
//!
//! Every entry is checked and every problem reported at once, each with the file, the key
//! (`upstream[1].url`) and its line. The values go through the same checks as the
//! environment's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::parse::{self, Key, Source};
use super::values::{breaker_name, choice, http_url, model_id, token};
use super::{BreakerConfig, FileError, LlmConfig};

/// One upstream of the chain: how to call it and the breaker in front of it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// The endpoint, mode, model, token and stream deadlines.
    pub llm: LlmConfig,
    /// Its breaker; `breaker.name` is the upstream's name.
    pub breaker: BreakerConfig,
}

impl UpstreamConfig {
    /// The upstream's name (its breaker's).
    pub fn name(&self) -> &str {
        &self.breaker.name
    }
}

type Entry = BTreeMap<Spanned<String>, Spanned<Value>>;

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    upstream: Vec<Spanned<Entry>>,
}

/// The upstreams in `text`, the file at `path`; `defaults` are the environment's settings
/// each entry starts from, `vars` where `token_env` names are looked up.
pub(super) fn parse(
    path: &Path,
    text: &str,
    (llm, breaker): (&LlmConfig, &BreakerConfig),
    vars: &HashMap<String, String>,
) -> Result<Vec<UpstreamConfig>, Vec<FileError>> {
    let mut errors = Errors {
        path,
        text,
        list: Vec::new(),
    };
    let syntax = |e: toml::de::Error| FileError {
        path: path.to_owned(),
        line: e.span().map(|s| line_of(text, s.start)),
        reason: format!("not valid TOML: {}", e.message()),
    };
    let top: BTreeMap<Spanned<String>, Spanned<Value>> =
        toml::from_str(text).map_err(|e| vec![syntax(e)])?;
    for key in top.keys().filter(|k| k.get_ref() != "upstream") {
        errors.at(
            key.span().start,
            format!(
                "{}: unknown key (expected [[upstream]] entries)",
                key.get_ref()
            ),
        );
    }
    let file: File = toml::from_str(text).map_err(|e| vec![syntax(e)])?;
    if file.upstream.is_empty() {
        errors.at(
            0,
            "no [[upstream]] entries: list at least one upstream".to_owned(),
        );
    }
    let mut names = HashSet::new();
    let mut upstreams = Vec::new();
    for (i, entry) in file.upstream.iter().enumerate() {
        let mut e = EntryReader {
            index: i,
            entry: entry.get_ref(),
            start: entry.span().start,
            asked: Vec::new(),
            errors: &mut errors,
        };
        let name = e.required("name", breaker_name);
        if let Some(name) = &name
            && !names.insert(name.clone())
        {
            e.reject_key(
                "name",
                format!("`{name}` names two upstreams; each needs its own"),
            );
        }
        let mode = e.optional("mode", choice).unwrap_or(llm.mode);
        let url = e.required("url", http_url);
        let model = e.required("model", model_id);
        let api_token = e.optional("token_env", |var| {
            let value = vars.get(var).map(|v| v.trim()).filter(|v| !v.is_empty());
            let value = value.ok_or_else(|| "no such variable is set".to_owned())?;
            token(value).map_err(|reason| format!("its value: {reason}"))
        });
        let (mut b, mut l) = (breaker.clone(), llm.clone());
        parse::overrides(&mut e, &mut b, &mut l);
        e.unknown_keys();
        let (Some(name), Some(url), Some(model)) = (name, url, model) else {
            continue;
        };
        b.name = name;
        l.api_token = api_token;
        l.api_base = url.clone();
        l.chat_url = url.clone();
        l.text_url = url;
        l.model = model;
        l.mode = mode;
        upstreams.push(UpstreamConfig { llm: l, breaker: b });
    }
    if errors.list.is_empty() {
        Ok(upstreams)
    } else {
        Err(errors.list)
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct Errors<'a> {
    path: &'a Path,
    text: &'a str,
    list: Vec<FileError>,
}

impl Errors<'_> {
    fn at(&mut self, offset: usize, reason: String) {
        self.list.push(FileError {
            path: self.path.to_owned(),
            line: Some(line_of(self.text, offset)),
            reason,
        });
    }
}

/// Reads the keys of one `[[upstream]]` entry, recording each problem with its line.
struct EntryReader<'a, 'e> {
    index: usize,
    entry: &'a Entry,
    start: usize,
    /// The keys read so far: after the last read, any other key is unknown.
    asked: Vec<&'static str>,
    errors: &'a mut Errors<'e>,
}

impl<'a> EntryReader<'a, '_> {
    fn get(&mut self, key: &'static str) -> Option<(&'a Spanned<String>, &'a Spanned<Value>)> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        self.entry.iter().find(|(k, _)| k.get_ref() == key)
    }

    fn unknown_keys(&mut self) {
        let unknown: Vec<(usize, String)> = self
            .entry
            .keys()
            .filter(|k| !self.asked.contains(&k.get_ref().as_str()))
            .map(|k| (k.span().start, k.get_ref().clone()))
            .collect();
        for (offset, key) in unknown {
            let reason = format!(
                "upstream[{}].{key}: unknown key (expected one of {})",
                self.index,
                self.asked.join(", ")
            );
            self.errors.at(offset, reason);
        }
    }

    fn reject_key(&mut self, key: &'static str, reason: String) {
        let offset = self.get(key).map_or(self.start, |(_, v)| v.span().start);
        self.errors
            .at(offset, format!("upstream[{}].{key}: {reason}", self.index));
    }

    /// A key's value checked by `parse` (numbers are checked as they are written).
    fn optional<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let (_, value) = self.get(key)?;
        let text = match value.get_ref() {
            Value::String(s) => s.clone(),
            Value::Integer(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            other => {
                let reason = format!("expected a string or a number, got a {}", other.type_str());
                self.reject_key(key, reason);
                return None;
            }
        };
        match parse(text.trim()) {
            Ok(parsed) => Some(parsed),
            Err(reason) => {
                self.reject_key(key, format!("{text:?}: {reason}"));
                None
            }
        }
    }

    fn required<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if self.get(key).is_none() {
            self.reject_key(
                key,
                "missing (every upstream needs name, url and model)".to_owned(),
            );
            return None;
        }
        self.optional(key, parse)
    }
}

impl Source for EntryReader<'_, '_> {
    fn read<T>(&mut self, key: Key, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        self.optional(key.file, parse)
    }

    fn reject(&mut self, key: Key, reason: String) {
        self.reject_key(key.file, reason);
    }

    fn name(&self, key: Key) -> &'static str {
        key.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn defaults() -> (LlmConfig, BreakerConfig) {
        let config = crate::config::Config::default();
        (config.llm, config.breaker)
    }

    fn parsed(text: &str, vars: &[(&str, &str)]) -> Result<Vec<UpstreamConfig>, Vec<String>> {
        let (llm, breaker) = defaults();
        let vars = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse(Path::new("up.toml"), text, (&llm, &breaker), &vars)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn two_upstreams_in_order_with_their_own_settings() {
        let text = r#"
[[upstream]]
name = "primary"
url = "http://127.0.0.1:9001/v1/chat/completions"
model = "big"
token_env = "PRIMARY_TOKEN"
fail_threshold = 3
call_timeout_seconds = 0.5

[[upstream]]
name = "secondary"
mode = "text"
url = "http://127.0.0.1:9002/models/small"
model = "small"
"#;
        let list = parsed(text, &[("PRIMARY_TOKEN", "sekrit")]).expect("valid");
        assert_eq!(list.len(), 2);
        let (p, s) = (&list[0], &list[1]);
        assert_eq!((p.name(), s.name()), ("primary", "secondary"));
        assert_eq!(p.llm.api_token.as_deref(), Some("sekrit"));
        assert_eq!(p.breaker.fail_threshold, 3);
        assert_eq!(p.breaker.call_timeout, Duration::from_millis(500));
        assert_eq!(
            p.llm.endpoint_url(),
            "http://127.0.0.1:9001/v1/chat/completions"
        );
        assert_eq!(s.llm.mode, crate::config::ApiMode::Text);
        assert_eq!(s.llm.endpoint_url(), "http://127.0.0.1:9002/models/small");
        assert_eq!(s.llm.api_token, None);
        assert_eq!(s.breaker.fail_threshold, defaults().1.fail_threshold);
    }

    #[test]
    fn an_entry_s_open_time_follows_its_reset_timeout_unless_the_environment_grows_it() {
        let text = "[[upstream]]\nname = \"a\"\nurl = \"http://h/x\"\nmodel = \"m\"\n\
                    reset_timeout_seconds = 10\n";
        // The environment's open time is constant (60 s): the entry's stays constant.
        let list = parsed(text, &[]).expect("valid");
        assert_eq!(list[0].breaker.reset_timeout, Duration::from_secs(10));
        assert_eq!(list[0].breaker.max_reset_timeout, Duration::from_secs(10));
        // The environment's grows to 300 s: the entry keeps that cap.
        let (llm, mut breaker) = defaults();
        breaker.max_reset_timeout = Duration::from_secs(300);
        let list = parse(
            Path::new("up.toml"),
            text,
            (&llm, &breaker),
            &HashMap::new(),
        )
        .expect("valid");
        assert_eq!(list[0].breaker.max_reset_timeout, Duration::from_secs(300));
    }

    #[test]
    fn a_value_of_the_wrong_kind_and_a_cap_below_the_reset_timeout_are_named() {
        let text = "[[upstream]]\nname = \"a\"\nurl = \"http://h/x\"\nmodel = \"m\"\n\
                    fail_threshold = true\nreset_timeout_seconds = 10\n\
                    max_reset_timeout_seconds = 5\n";
        let errors = parsed(text, &[]).expect_err("invalid");
        assert_eq!(
            errors,
            [
                "up.toml: line 5: upstream[0].fail_threshold: expected a string or a number, \
                 got a boolean",
                "up.toml: line 7: upstream[0].max_reset_timeout_seconds: must be at least \
                 reset_timeout_seconds (10s)",
            ]
        );
    }

    #[test]
    fn every_error_is_named_with_its_key_and_line_at_once() {
        let text = r#"[[upstream]]
name = "a"
url = "ftp://nowhere"
model = "m"
fail_threshold = 0
colour = "blue"

[[upstream]]
name = "a"
mode = "sideways"
token_env = "MISSING_TOKEN"
"#;
        let errors = parsed(text, &[]).expect_err("invalid");
        let expected = [
            "up.toml: line 3: upstream[0].url: \"ftp://nowhere\": expected an http:// or https:// URL",
            "up.toml: line 5: upstream[0].fail_threshold: \"0\": expected a whole number ≥ 1",
            "up.toml: line 6: upstream[0].colour: unknown key",
            "up.toml: line 9: upstream[1].name: `a` names two upstreams",
            "up.toml: line 10: upstream[1].mode: \"sideways\"",
            "up.toml: line 8: upstream[1].url: missing",
            "up.toml: line 8: upstream[1].model: missing",
            "up.toml: line 11: upstream[1].token_env: \"MISSING_TOKEN\": no such variable is set",
        ];
        for want in expected {
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{want} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    }

    #[test]
    fn broken_toml_and_an_empty_list_are_errors_with_a_line() {
        let errors = parsed("[[upstream]]\nname = \n", &[]).expect_err("invalid");
        assert!(
            errors[0].starts_with("up.toml: line 2: not valid TOML"),
            "{errors:?}"
        );
        let errors = parsed("title = \"x\"\n", &[]).expect_err("invalid");
        assert!(
            errors.iter().any(|e| e.contains("title: unknown key")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("no [[upstream]] entries")),
            "{errors:?}"
        );
    }
}
