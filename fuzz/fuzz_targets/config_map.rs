//! Any set of variables parses to a configuration or to errors that name each bad variable;
//! it never panics, and a secret's value never appears in an error.
#![no_main]

use std::collections::HashMap;

use breakwater::config::Config;
use libfuzzer_sys::fuzz_target;

const SECRETS: [&str; 5] = [
    "HF_API_TOKEN",
    "HF_TOKEN",
    "BREAKWATER_API_TOKEN",
    "BREAKWATER_ADMIN_TOKEN",
    "BREAKWATER_JWT_SECRET",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One `NAME=value` per line; a name without `=` is taken as a known variable's index,
    // so the fuzzer reaches the real names quickly.
    let mut vars = HashMap::new();
    for line in text.lines() {
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let n = line.bytes().map(usize::from).sum::<usize>();
                let name = Config::variables()[n % Config::variables().len()];
                (name.to_owned(), line.to_owned())
            }
        };
        vars.insert(name, value);
    }
    match Config::from_map(&vars) {
        Ok(config) => {
            let _ = config.summary();
        }
        Err(err) => {
            let shown = err.to_string();
            assert!(!err.invalid.is_empty());
            for invalid in &err.invalid {
                assert!(shown.contains(invalid.variable), "{shown}");
            }
            // The same variables with every secret's letters and digits changed (so each
            // secret keeps its validity): text of a secret that shows in that error too is
            // the messages' own wording, not the secret.
            let masked: HashMap<String, String> = vars
                .iter()
                .map(|(name, value)| {
                    let value = if SECRETS.contains(&name.as_str()) {
                        value
                            .chars()
                            .map(|c| match c {
                                'x' => 'y',
                                c if c.is_ascii_alphanumeric() => 'x',
                                c => c,
                            })
                            .collect()
                    } else {
                        value.clone()
                    };
                    (name.clone(), value)
                })
                .collect();
            let wording = Config::from_map(&masked)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            for secret in SECRETS {
                if let Some(value) = vars.get(secret).map(|v| v.trim())
                    && value.len() >= 8
                    && !wording.contains(value)
                {
                    assert!(!shown.contains(value), "{secret} leaked: {shown}");
                }
            }
        }
    }
});
