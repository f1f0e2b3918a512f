//! What the status page shows beyond the breakers' own status: their last transitions,
//! the answers by source over the last 15 minutes, and each upstream's latency.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use breaker::{Event, Listener};
use serde::Serialize;

/// Transitions kept, newest first.
const TRANSITIONS: usize = 50;
/// Minutes of answers kept.
const MINUTES: u64 = 15;
/// Latency samples kept per upstream.
const SAMPLES: usize = 256;
/// The columns of the answers chart.
const SOURCES: [&str; 5] = ["llm", "cache", "stale_cache", "excerpts", "unavailable"];

/// The recent activity of one assistant. A [`Listener`] on each upstream's breaker.
#[derive(Debug, Default)]
pub struct Activity {
    state: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    transitions: VecDeque<TransitionRecord>,
    /// (the minute since the epoch, answers by [`SOURCES`] column), oldest first.
    minutes: VecDeque<(u64, [u64; 5])>,
    latencies: HashMap<String, VecDeque<f64>>,
}

/// One state change of a breaker.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TransitionRecord {
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Which breaker.
    pub breaker: String,
    /// The state before.
    pub from: breaker::State,
    /// The state after.
    pub to: breaker::State,
    /// Why (`consecutive_failures`, `failure_rate`, `trial_succeeded`, `forced`, ...).
    pub reason: String,
}

/// Answers given in one minute, by source.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MinuteOfAnswers {
    /// The minute's start, in seconds since the Unix epoch.
    pub minute_unix: u64,
    /// Answers by source: `llm`, `cache`, `stale_cache`, `excerpts`, `unavailable`.
    pub answers: HashMap<&'static str, u64>,
}

/// An upstream's recent call latency (successful calls; a stream's until its end).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UpstreamLatency {
    /// The upstream.
    pub upstream: String,
    /// Calls measured (the last 256 at most).
    pub samples: usize,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
}

/// What [`Activity::snapshot`] returns.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ActivitySnapshot {
    /// The last transitions of the breakers (the upstreams', Redis's, PostgreSQL's), newest
    /// first.
    pub transitions: Vec<TransitionRecord>,
    /// The last 15 minutes, oldest first (minutes without answers included).
    pub answers: Vec<MinuteOfAnswers>,
    /// Each upstream's latency, in chain order of first use.
    pub latency: Vec<UpstreamLatency>,
}

fn now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Activity {
    fn lock(&self) -> MutexGuard<'_, Recent> {
        // Counters only: a panic mid-update leaves nothing that matters inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an answer by its source (`unavailable` for a `503`).
    pub fn answered(&self, source: &str) {
        let Some(column) = SOURCES.iter().position(|s| *s == source) else {
            return;
        };
        let minute = now().as_secs() / 60;
        let mut recent = self.lock();
        if recent.minutes.back().is_none_or(|(m, _)| *m != minute) {
            recent.minutes.push_back((minute, [0; 5]));
        }
        while recent
            .minutes
            .front()
            .is_some_and(|(m, _)| *m + MINUTES <= minute)
        {
            recent.minutes.pop_front();
        }
        if let Some((_, counts)) = recent.minutes.back_mut() {
            counts[column] += 1;
        }
    }

    /// Records a successful call's duration for `upstream`.
    pub fn called(&self, upstream: &str, seconds: f64) {
        let mut recent = self.lock();
        // The name is copied once per upstream, not once per call.
        if !recent.latencies.contains_key(upstream) {
            recent
                .latencies
                .insert(upstream.to_owned(), VecDeque::with_capacity(SAMPLES));
        }
        let Some(samples) = recent.latencies.get_mut(upstream) else {
            return;
        };
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(seconds * 1_000.0);
    }

    /// The recent activity, for the status page.
    pub fn snapshot(&self) -> ActivitySnapshot {
        let recent = self.lock();
        let minute = now().as_secs() / 60;
        let answers = (minute + 1 - MINUTES..=minute)
            .map(|m| {
                let counts = recent
                    .minutes
                    .iter()
                    .find(|(at, _)| *at == m)
                    .map_or([0; 5], |(_, c)| *c);
                MinuteOfAnswers {
                    minute_unix: m * 60,
                    answers: SOURCES.iter().copied().zip(counts).collect(),
                }
            })
            .collect();
        let mut latency: Vec<UpstreamLatency> = recent
            .latencies
            .iter()
            .map(|(upstream, samples)| {
                let mut sorted: Vec<f64> = samples.iter().copied().collect();
                sorted.sort_by(f64::total_cmp);
                let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
                UpstreamLatency {
                    upstream: upstream.clone(),
                    samples: sorted.len(),
                    p50_ms: at(0.5),
                    p99_ms: at(0.99),
                }
            })
            .collect();
        latency.sort_by(|a, b| a.upstream.cmp(&b.upstream));
        ActivitySnapshot {
            transitions: recent.transitions.iter().cloned().collect(),
            answers,
            latency,
        }
    }
}

impl Listener for Activity {
    fn on_event(&self, breaker: &str, event: &Event) {
        let Event::StateChanged { from, to, reason } = event else {
            return;
        };
        let record = TransitionRecord {
            at_unix_ms: u64::try_from(now().as_millis()).unwrap_or(u64::MAX),
            breaker: breaker.to_owned(),
            from: *from,
            to: *to,
            reason: reason.as_str().to_owned(),
        };
        let mut recent = self.lock();
        recent.transitions.push_front(record);
        recent.transitions.truncate(TRANSITIONS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breaker::{CircuitBreaker, Outcome, State, TripPolicy};
    use std::sync::Arc;

    #[test]
    fn transitions_answers_and_latency_are_kept_for_the_page() {
        let activity = Arc::new(Activity::default());
        let b = CircuitBreaker::builder("llm")
            .trip_policy(TripPolicy::consecutive_failures(1))
            .listener(activity.clone())
            .build()
            .expect("valid");
        b.try_acquire().expect("closed").record(Outcome::Failure);
        b.force_open();
        for source in ["llm", "llm", "excerpts", "nonsense"] {
            activity.answered(source);
        }
        for ms in 1..=100 {
            activity.called("llm", f64::from(ms) / 1_000.0);
        }
        let snap = activity.snapshot();
        let moves: Vec<(State, State)> = snap.transitions.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(
            moves,
            [
                (State::Open, State::ForcedOpen),
                (State::Closed, State::Open)
            ]
        );
        assert_eq!(snap.transitions[1].reason, "consecutive_failures");
        assert_eq!(snap.answers.len(), 15);
        let last = &snap.answers[14].answers;
        assert_eq!((last["llm"], last["excerpts"], last["cache"]), (2, 1, 0));
        let latency = &snap.latency[0];
        assert_eq!(
            (
                latency.samples,
                latency.p50_ms.round(),
                latency.p99_ms.round()
            ),
            (100, 51.0, 99.0)
        );
    }
}
