//! Whatever an upstream sends back, whole or as stream events, reading it never panics,
//! and the wait it asks for is capped at five minutes.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if let Ok(answer) = breakwater::fuzzing::llm_answer(selector & 1 == 0, rest) {
        assert!(
            !answer.trim().is_empty(),
            "an empty answer is not an answer"
        );
    }
    if let Ok(data) = std::str::from_utf8(rest) {
        // Any event data: a piece, the end, or an error; never a panic.
        let _ = breakwater::fuzzing::llm_chunk(selector & 2 == 0, data);
    }
    // [status hi, status lo, header length, header..., body...]
    if rest.len() >= 3 {
        let status = 400 + u16::from_be_bytes([rest[0], rest[1]]) % 200;
        let split = (usize::from(rest[2]) + 3).min(rest.len());
        let wait = breakwater::fuzzing::llm_error(status, &rest[3..split], &rest[split..]);
        assert!(
            wait.is_none_or(|w| w <= Duration::from_secs(300)),
            "{wait:?}"
        );
    }
});
