//! The shared state of a fake upstream: its fault and its counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::fault::{Fault, FaultMode, InvalidFault};

/// A fake LLM upstream: its fault configuration and call counters.
///
/// Cloning is cheap and every clone shares the same fault and counters, so a test can keep
/// one to switch faults while the server runs with another.
#[derive(Clone, Debug, Default)]
pub struct FakeLlm {
    shared: Arc<Shared>,
}

/// Counters of a fake upstream, as served by `GET /admin/stats`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// LLM calls received (chat + text generation), counted on arrival.
    pub calls: u64,
    /// Chat-completion calls received.
    pub chat_calls: u64,
    /// Text-generation calls received.
    pub text_calls: u64,
    /// Calls that got a fault instead of an answer (injected error, hang or malformed body).
    pub failures_injected: u64,
    /// Streamed answers begun (their headers sent).
    pub streams: u64,
    /// Streamed answers sent to their last event (whatever their stream fault).
    pub streams_finished: u64,
    /// Streamed answers whose client went away before the last event: the disconnect as
    /// the upstream sees it.
    pub streams_dropped: u64,
}

/// How long one streamed call waited for its first piece, as served by
/// `GET /admin/first-pieces`: the upstream's own first token, per call, so that a benchmark
/// can subtract it from what its client saw through a proxy.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FirstPiece {
    /// The last characters of the call's prompt (at most [`PROMPT_TAIL_CHARS`]): what tells
    /// one call from another.
    pub prompt_tail: String,
    /// Microseconds from the call's arrival (its admission) to its first piece being
    /// handed to the response body, which writes it at once.
    pub waited_us: u64,
}

/// How much of a prompt a [`FirstPiece`] keeps.
pub const PROMPT_TAIL_CHARS: usize = 120;
/// The [`FirstPiece`]s kept between two reads; the oldest go first.
const FIRST_PIECES_KEPT: usize = 20_000;

#[derive(Debug, Default)]
struct Shared {
    fault: Mutex<FaultState>,
    first_pieces: Mutex<VecDeque<FirstPiece>>,
    // Independent counters that guard no other data: Relaxed ordering is enough.
    calls: AtomicU64,
    chat_calls: AtomicU64,
    text_calls: AtomicU64,
    failures_injected: AtomicU64,
    streams: AtomicU64,
    streams_finished: AtomicU64,
    streams_dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct FaultState {
    fault: Fault,
    /// Calls seen in error mode since `fault` was set: the `n` of the failure-rate rule.
    /// Restarting it on every change makes "k calls after setting the fault" exact.
    error_calls: u64,
}

/// Which LLM endpoint a call came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    Chat,
    Text,
}

/// What the upstream decided for one call on its arrival.
#[derive(Clone, Debug)]
pub(crate) struct Admission {
    /// Number of this call since the last reset, from 1; used in response ids.
    pub(crate) number: u64,
    /// The fault in force when the call arrived; later changes do not affect this call.
    pub(crate) fault: Fault,
    /// Whether this call answers with a fault rather than normally.
    pub(crate) faulted: bool,
    /// When it arrived.
    pub(crate) arrived: Instant,
}

impl FakeLlm {
    /// A healthy upstream ([`Fault::ok`]) with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the fault; calls arriving from now on see it.
    ///
    /// # Panics
    ///
    /// If the fault is invalid (see [`Fault::validate`]): this is meant for test code,
    /// where a wrong fault is a bug in the test. Use [`FakeLlm::try_set_fault`] otherwise.
    pub fn set_fault(&self, fault: Fault) {
        if let Err(err) = self.try_set_fault(fault) {
            panic!("FakeLlm::set_fault: {err}");
        }
    }

    /// Replaces the fault if it is valid; otherwise leaves the current one in force.
    pub fn try_set_fault(&self, fault: Fault) -> Result<(), InvalidFault> {
        fault.validate()?;
        tracing::info!(?fault, "fault set");
        let mut state = self.lock_fault();
        state.fault = fault;
        state.error_calls = 0;
        Ok(())
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        self.lock_fault().fault.clone()
    }

    /// LLM calls received (chat + text generation); admin and health calls are not counted.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// All counters.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            calls: s.calls.load(Ordering::Relaxed),
            chat_calls: s.chat_calls.load(Ordering::Relaxed),
            text_calls: s.text_calls.load(Ordering::Relaxed),
            failures_injected: s.failures_injected.load(Ordering::Relaxed),
            streams: s.streams.load(Ordering::Relaxed),
            streams_finished: s.streams_finished.load(Ordering::Relaxed),
            streams_dropped: s.streams_dropped.load(Ordering::Relaxed),
        }
    }

    /// Back to a healthy upstream with zeroed counters.
    pub fn reset(&self) {
        let mut state = self.lock_fault();
        *state = FaultState::default();
        for counter in [
            &self.shared.calls,
            &self.shared.chat_calls,
            &self.shared.text_calls,
            &self.shared.failures_injected,
            &self.shared.streams,
            &self.shared.streams_finished,
            &self.shared.streams_dropped,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        lock(&self.shared.first_pieces).clear();
        tracing::info!("fault and counters reset");
    }

    /// Counts a call on its arrival and decides, under the fault in force, how it ends.
    ///
    /// Counting before any latency or hang lets tests assert that no call reached the
    /// upstream even when the calls that did would never finish.
    pub(crate) fn admit(&self, kind: CallKind) -> Admission {
        let number = self.shared.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let per_kind = match kind {
            CallKind::Chat => &self.shared.chat_calls,
            CallKind::Text => &self.shared.text_calls,
        };
        per_kind.fetch_add(1, Ordering::Relaxed);

        let (fault, faulted) = {
            let mut state = self.lock_fault();
            let faulted = match state.fault.mode {
                FaultMode::Ok => false,
                FaultMode::Hang | FaultMode::Freeze | FaultMode::Malformed => true,
                FaultMode::Error => {
                    let n = state.error_calls;
                    state.error_calls += 1;
                    state.fault.selects_failure(n)
                }
            };
            (state.fault.clone(), faulted)
        };
        if faulted {
            self.shared
                .failures_injected
                .fetch_add(1, Ordering::Relaxed);
        }
        Admission {
            number,
            fault,
            faulted,
            arrived: Instant::now(),
        }
    }

    /// Whether the fault in force now stops every call, the ones already in progress too.
    pub(crate) fn frozen(&self) -> bool {
        self.lock_fault().fault.mode == FaultMode::Freeze
    }

    /// Counts a stream as begun; the guard counts how it ends.
    pub(crate) fn stream_begun(&self) -> StreamEnd {
        self.shared.streams.fetch_add(1, Ordering::Relaxed);
        StreamEnd {
            llm: self.clone(),
            finished: false,
        }
    }

    /// The streamed calls' waits for their first piece since the last read (the latest
    /// 20,000), oldest first; reading clears them.
    pub fn take_first_pieces(&self) -> Vec<FirstPiece> {
        lock(&self.shared.first_pieces).drain(..).collect()
    }

    /// Notes that a streamed call sends its first piece now, `waited` after it arrived.
    pub(crate) fn first_piece(&self, prompt_tail: String, waited: Duration) {
        let piece = FirstPiece {
            prompt_tail,
            waited_us: u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
        };
        let mut kept = lock(&self.shared.first_pieces);
        if kept.len() == FIRST_PIECES_KEPT {
            kept.pop_front();
        }
        kept.push_back(piece);
    }

    fn lock_fault(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.shared.fault)
    }
}

/// The last [`PROMPT_TAIL_CHARS`] characters of `prompt`.
pub(crate) fn prompt_tail(prompt: &str) -> String {
    let start = prompt
        .char_indices()
        .rev()
        .nth(PROMPT_TAIL_CHARS - 1)
        .map_or(0, |(i, _)| i);
    prompt[start..].to_owned()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path panics while holding these locks, and their data is valid after any
    // partial update anyway, so a poisoned lock is safe to keep using.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts a stream's end when dropped: finished if marked so, else dropped by its client.
#[derive(Debug)]
pub(crate) struct StreamEnd {
    llm: FakeLlm,
    finished: bool,
}

impl StreamEnd {
    /// The stream sent its last event.
    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.llm.shared.streams_finished
        } else {
            &self.llm.shared.streams_dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_pieces_keep_the_latest_and_a_reset_clears_them() {
        let llm = FakeLlm::new();
        for i in 0..=FIRST_PIECES_KEPT {
            llm.first_piece(format!("question {i}"), Duration::from_micros(7));
        }
        let kept = llm.take_first_pieces();
        assert_eq!(kept.len(), FIRST_PIECES_KEPT);
        assert_eq!(kept[0].prompt_tail, "question 1", "the oldest went first");
        assert_eq!(kept[FIRST_PIECES_KEPT - 1].waited_us, 7);
        llm.first_piece("question x".to_owned(), Duration::ZERO);
        llm.reset();
        assert!(llm.take_first_pieces().is_empty());
    }

    #[test]
    fn a_prompt_tail_cuts_on_a_character_boundary() {
        assert_eq!(prompt_tail("short"), "short");
        let long = format!("{}{}", "x".repeat(10), "é".repeat(PROMPT_TAIL_CHARS));
        assert_eq!(prompt_tail(&long), "é".repeat(PROMPT_TAIL_CHARS));
    }
}
