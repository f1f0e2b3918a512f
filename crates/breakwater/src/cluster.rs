//! Cluster mode: one breaker's state shared by every replica through Redis.
//!
//! Each replica keeps its own in-process breaker, so the closed-state hot path never waits
//! on Redis. What is shared, and how:
//!
//! - **Trips.** A replica whose breaker opens writes `open` to the breaker's hash in Redis
//!   with a new *epoch* and the time of the next trial, and publishes it; every replica
//!   applies it on receipt (pub/sub, well under 100 ms), so all of them open with the same
//!   next-trial time. A replica that trips while the period is already open joins it.
//! - **Failures.** Each replica's breaker keeps its run of failures in admission order
//!   (see the breaker crate); once a run is *settled* (no call admitted within it is still
//!   in flight, so no late success can break it up) its length is written to Redis, and
//!   when the settled runs of all replicas add up to the fail threshold the script opens
//!   the circuit for everyone. A run that ends is removed. Only runs write: a healthy
//!   circuit writes nothing.
//! - **One trial per open period.** A replica's half-open trial first takes a lease in Redis
//!   (`SET NX PX`); a replica that does not get it holds its circuit open until the lease
//!   ends or the trial's outcome arrives. The outcome is shared like a trip: a close with a
//!   new epoch, or a reopen.
//! - **Order.** Every state message carries its epoch; a message whose epoch is not newer
//!   than the last one applied is ignored, so a late or repeated message never moves a
//!   newer state. Times travel as "milliseconds from now" measured on Redis's clock, so
//!   replicas' clocks need not agree.
//! - **Redis slow or down.** Every Redis call has a deadline ([`DEADLINE`]); the lease is
//!   the only one a request waits for. If Redis fails, the request goes on with the local
//!   breaker alone, which keeps counting and tripping on its own. The subscription
//!   reconnects every second; on rejoining, the replica adopts a newer shared state, or
//!   shares the trip it made while Redis was away.
//!
//! Per replica, not shared: the in-flight bound, the adaptive latency, the backoff level
//! (the open time of a trip is decided by the replica that trips) and operator overrides.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};
use breaker::{CircuitBreaker, Event, Listener, OwnedPermit, State, Transition};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// How long one Redis call may take before the replica goes on without it.
pub const DEADLINE: Duration = Duration::from_millis(100);
/// The prefix of every key and channel; the version moves when the messages change shape.
const PREFIX: &str = "breakwater:v1:breaker";
/// How long the subscription waits before reconnecting to a Redis that went away.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// The settings the cluster-wide rules need from the breaker's configuration.
#[derive(Clone, Copy, Debug)]
pub struct SharedSettings {
    /// Failures in a row, across replicas, that open the circuit.
    pub fail_threshold: u32,
    /// The open time of a trip decided by the shared count.
    pub reset_timeout: Duration,
    /// How long a trial may run: the lease outlives it by a second.
    pub call_timeout: Duration,
    /// How long a replica's failure run is remembered in Redis without news of it.
    pub failure_window: Duration,
}

/// One breaker's link to the shared state. Cheap to clone.
#[derive(Clone)]
pub struct SharedBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    replica: String,
    settings: SharedSettings,
    keys: Keys,
    client: Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    breaker: OnceLock<CircuitBreaker>,
    notes: mpsc::UnboundedSender<Note>,
    /// Taken by [`SharedBreaker::attach`], which starts the task that reads it.
    received: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Note>>>,
    /// The newest epoch applied here (0: none yet).
    epoch: AtomicU64,
    /// This replica's settled failure run as last written to Redis (0: none).
    published_run: AtomicU32,
    /// Set while an operator's change from another replica is applied here, so that the
    /// listener does not share it back.
    applying: std::sync::atomic::AtomicBool,
}

struct Keys {
    state: String,
    failures: String,
    trial: String,
    channel: String,
}

/// What the local breaker told the link (from its listener).
#[derive(Debug)]
enum Note {
    /// It tripped (or a trial failed): open for this long.
    Opened(Duration),
    /// A trial succeeded.
    Closed,
    /// A call ended while a failure run is under way: its settled length may have changed.
    Run,
    /// An operator set the state here (`forced_open`, `disabled`, or `closed` for a reset).
    Operator(&'static str),
}

/// A message on the breaker's channel, or a script's reply: a state (with its epoch), or
/// the cluster's settled failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    #[serde(default)]
    epoch: u64,
    /// `open` or `closed`; absent for a count of failures.
    #[serde(default)]
    state: Option<String>,
    /// For `open`: milliseconds until the next trial, on Redis's clock at publication.
    #[serde(default)]
    remaining_ms: u64,
    #[serde(default)]
    failures: Option<u32>,
    #[serde(default)]
    origin: String,
    /// Set by an operator: applied even over another operator's state.
    #[serde(default)]
    operator: bool,
}

/// What the trial lease said.
#[derive(Debug, PartialEq, Eq)]
pub enum Lease {
    /// This replica runs the open period's trial.
    Granted,
    /// Another replica runs it; this one stays open this long (or until its outcome).
    Held(Duration),
    /// Redis did not answer in time: the local breaker decides alone.
    Unreachable,
}

/// The shared state could not be set up from `REDIS_URL`.
#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL cannot be used for the shared breaker state: {0}")]
pub struct SharedBreakerError(#[from] RedisError);

impl SharedBreaker {
    /// A link for the breaker `name` through Redis at `url`, and the listener that breaker
    /// must be built with. Then call [`attach`](Self::attach) with the built breaker.
    ///
    /// # Errors
    ///
    /// When the Redis client rejects the URL.
    pub fn new(
        url: &str,
        name: &str,
        settings: SharedSettings,
    ) -> Result<(Self, Arc<dyn Listener>), SharedBreakerError> {
        let client = Client::open(url)?;
        let (notes, received) = mpsc::unbounded_channel();
        let base = format!("{PREFIX}:{name}");
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            replica: replica_id(),
            settings,
            keys: Keys {
                state: format!("{base}:state"),
                failures: format!("{base}:failures"),
                trial: format!("{base}:trial"),
                channel: base,
            },
            client,
            connection: tokio::sync::OnceCell::new(),
            breaker: OnceLock::new(),
            notes,
            received: std::sync::Mutex::new(Some(received)),
            epoch: AtomicU64::new(0),
            published_run: AtomicU32::new(0),
            applying: std::sync::atomic::AtomicBool::new(false),
        });
        let listener = Arc::new(LinkListener {
            inner: Arc::clone(&inner),
        });
        Ok((Self { inner }, listener))
    }

    /// Starts sharing `breaker`'s state (the one built with this link's listener): a task
    /// that subscribes, applies what other replicas publish and publishes what this one
    /// decides. Needs a Tokio runtime.
    pub fn attach(&self, breaker: CircuitBreaker) {
        if self.inner.breaker.set(breaker).is_err() {
            return;
        }
        let received = self
            .inner
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(received) = received {
            tokio::spawn(run(Arc::clone(&self.inner), received));
        }
    }

    /// This replica's id in the shared state (`origin` of what it publishes).
    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// Takes the open period's trial lease for `permit`, if it is a trial: a request waits
    /// at most [`DEADLINE`] for it. Returns the permit when the call may go ahead, or
    /// `None` when another replica runs the trial (this one then stays open meanwhile).
    pub async fn admit(&self, permit: OwnedPermit) -> Option<OwnedPermit> {
        if !permit.is_trial() {
            return Some(permit);
        }
        match self.lease().await {
            Lease::Granted | Lease::Unreachable => Some(permit),
            Lease::Held(left) => {
                drop(permit);
                if let Some(breaker) = self.inner.breaker.get() {
                    breaker.open_shared(left);
                }
                None
            }
        }
    }

    async fn lease(&self) -> Lease {
        let ttl = self.inner.settings.call_timeout + Duration::from_secs(1);
        let inner = &self.inner;
        let once = || async {
            let mut connection = inner.connection().await?;
            let mut invocation = scripts().lease.prepare_invoke();
            invocation
                .key(&inner.keys.state)
                .key(&inner.keys.failures)
                .key(&inner.keys.trial)
                .key(&inner.keys.channel)
                .arg(&inner.replica)
                .arg(millis(ttl));
            // 0: granted; n > 0: held elsewhere, or the period is still running, for n ms.
            let held: i64 = invocation.invoke_async(&mut connection).await?;
            Ok::<_, RedisError>(match u64::try_from(held) {
                Ok(ms) if ms > 0 => Lease::Held(Duration::from_millis(ms)),
                _ => Lease::Granted,
            })
        };
        let attempt = async {
            match once().await {
                Err(err) if err.is_io_error() => once().await,
                result => result,
            }
        };
        match tokio::time::timeout(DEADLINE, attempt).await {
            Ok(Ok(lease)) => lease,
            Ok(Err(err)) => {
                tracing::debug!(breaker = %inner.name, %err, "trial lease: Redis failed");
                Lease::Unreachable
            }
            Err(_) => Lease::Unreachable,
        }
    }
}

impl std::fmt::Debug for SharedBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBreaker")
            .field("name", &self.inner.name)
            .field("replica", &self.inner.replica)
            .field("epoch", &self.inner.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Forwards what the local breaker does to the link's task. Called on the request's thread:
/// only a channel send, and only for the rare events (a success only while a shared failure
/// count is under way).
struct LinkListener {
    inner: Arc<Inner>,
}

impl Listener for LinkListener {
    fn on_event(&self, _breaker: &str, event: &Event) {
        let note = match *event {
            Event::Failure => Note::Run,
            // A completion matters only while a run is under way here or was shared.
            Event::Success | Event::Ignored
                if self.inner.published_run.load(Ordering::Relaxed) > 0
                    || self
                        .inner
                        .breaker()
                        .is_some_and(|b| b.failure_run().is_some()) =>
            {
                Note::Run
            }
            Event::StateChanged {
                to: State::Open,
                reason,
                ..
            } if reason != Transition::Shared => {
                let open_for = self
                    .inner
                    .breaker
                    .get()
                    .and_then(|b| b.status().retry_after_seconds)
                    .map_or(self.inner.settings.reset_timeout, Duration::from_secs_f64);
                Note::Opened(open_for)
            }
            Event::StateChanged {
                to: State::Closed,
                reason: Transition::TrialsSucceeded,
                ..
            } => Note::Closed,
            Event::StateChanged { reason, .. } if !self.inner.applying.load(Ordering::Acquire) => {
                match reason {
                    Transition::ForcedOpen => Note::Operator("forced_open"),
                    Transition::Disabled => Note::Operator("disabled"),
                    Transition::Reset => Note::Operator("closed"),
                    _ => return,
                }
            }
            _ => return,
        };
        // The task ends only with the process; a failed send loses nothing that matters.
        let _ = self.inner.notes.send(note);
    }
}

impl Inner {
    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(DEADLINE * 10))
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    fn breaker(&self) -> Option<&CircuitBreaker> {
        self.breaker.get()
    }

    /// Runs one of the scripts below within the deadline; its reply is a message to apply.
    async fn script(&self, script: &Script, args: &[String]) -> Option<Message> {
        let once = || async {
            let mut connection = self.connection().await?;
            let mut invocation = script.prepare_invoke();
            invocation
                .key(&self.keys.state)
                .key(&self.keys.failures)
                .key(&self.keys.trial)
                .key(&self.keys.channel);
            for arg in args {
                invocation.arg(arg);
            }
            invocation.invoke_async::<String>(&mut connection).await
        };
        // The connection manager answers the first call after a drop with the I/O error
        // and only then reconnects: one more try finds a Redis that is back.
        let call = async {
            match once().await {
                Err(err) if err.is_io_error() => once().await,
                result => result,
            }
        };
        match tokio::time::timeout(DEADLINE, call).await {
            Ok(Ok(reply)) => serde_json::from_str(&reply).ok(),
            Ok(Err(err)) => {
                tracing::debug!(breaker = %self.name, %err, "shared breaker state: Redis failed");
                None
            }
            Err(_) => {
                tracing::debug!(breaker = %self.name, "shared breaker state: Redis too slow");
                None
            }
        }
    }

    /// Shares what the local breaker did.
    async fn share(&self, note: Note) {
        let origin = self.replica.clone();
        let reply = match note {
            Note::Opened(open_for) => {
                self.script(&scripts().trip, &[millis(open_for).to_string(), origin])
                    .await
            }
            Note::Closed => self.script(&scripts().close, &[origin]).await,
            Note::Operator(state) => {
                self.script(&scripts().operator, &[state.to_owned(), origin])
                    .await
            }
            Note::Run => {
                // The note was sent from the listener, which runs just before the breaker
                // counts the outcome: let that land first.
                tokio::task::yield_now().await;
                let Some(breaker) = self.breaker() else {
                    return;
                };
                let settled = match breaker.failure_run() {
                    Some(run) if run.settled => run.failures,
                    _ => 0,
                };
                if self.published_run.swap(settled, Ordering::Relaxed) == settled {
                    return;
                }
                let s = &self.settings;
                let args = [
                    settled.to_string(),
                    origin,
                    s.fail_threshold.to_string(),
                    millis(s.failure_window).to_string(),
                    millis(s.reset_timeout).to_string(),
                ];
                self.script(&scripts().run, &args).await
            }
        };
        if let Some(message) = reply {
            // Our own decision (or the period we joined): applied here directly, since
            // our own messages are skipped when they come back on the channel.
            self.apply(&message, true);
        }
    }

    /// Applies a state message if it is newer than what this replica has.
    fn apply(&self, message: &Message, own_reply: bool) {
        let Some(state) = message.state.as_deref() else {
            return;
        };
        if !own_reply && message.origin == self.replica {
            return;
        }
        // Newer only: a late or repeated message never moves a newer state.
        if self.epoch.fetch_max(message.epoch, Ordering::AcqRel) >= message.epoch {
            return;
        }
        let Some(breaker) = self.breaker() else {
            return;
        };
        if message.operator {
            self.apply_operator(breaker, state, message);
            return;
        }
        // An operator's override on this replica stands.
        if matches!(breaker.state(), State::ForcedOpen | State::Disabled) {
            return;
        }
        match state {
            "open" => {
                let left = Duration::from_millis(message.remaining_ms);
                let local = breaker.status();
                // Already open with this very period (we decided it): nothing to move.
                let same = local.state == State::Open
                    && local
                        .retry_after_seconds
                        .is_some_and(|s| (s - left.as_secs_f64()).abs() < 0.05);
                if !same {
                    breaker.open_shared(left);
                }
                // A new period: every replica's runs were cleared with it.
                self.published_run.store(0, Ordering::Relaxed);
                tracing::info!(
                    breaker = %self.name, epoch = message.epoch, origin = %message.origin,
                    next_trial_in_seconds = left.as_secs_f64(), "shared state: open"
                );
            }
            "closed" => {
                if breaker.state() != State::Closed {
                    breaker.close_shared();
                }
                // A new period: every replica's runs were cleared with it.
                self.published_run.store(0, Ordering::Relaxed);
                tracing::info!(
                    breaker = %self.name, epoch = message.epoch, origin = %message.origin,
                    "shared state: closed"
                );
            }
            _ => {}
        }
    }

    /// An operator's change made on another replica, made here too.
    fn apply_operator(&self, breaker: &CircuitBreaker, state: &str, message: &Message) {
        let change: fn(&CircuitBreaker) = match state {
            "forced_open" => CircuitBreaker::force_open,
            "disabled" => CircuitBreaker::disable,
            "closed" => CircuitBreaker::reset,
            _ => return,
        };
        self.applying.store(true, Ordering::Release);
        change(breaker);
        self.applying.store(false, Ordering::Release);
        self.published_run.store(0, Ordering::Relaxed);
        tracing::info!(
            breaker = %self.name, epoch = message.epoch, origin = %message.origin,
            state, "shared state: set by an operator"
        );
    }

    /// On (re)joining: adopt the shared state if it is newer, or share a trip made while
    /// Redis was away.
    async fn rejoin(&self) {
        let Some(breaker) = self.breaker() else {
            return;
        };
        let local_open = breaker.state() == State::Open;
        match self.script(&scripts().read, &[]).await {
            Some(shared) if shared.state.as_deref() == Some("open") => {
                self.apply(&shared, true);
            }
            Some(shared) if local_open => {
                // The cluster is closed (or never opened) but this replica tripped alone.
                self.epoch.fetch_max(shared.epoch, Ordering::AcqRel);
                let open_for = breaker
                    .status()
                    .retry_after_seconds
                    .map_or(self.settings.reset_timeout, Duration::from_secs_f64);
                self.share(Note::Opened(open_for)).await;
            }
            Some(shared) => self.apply(&shared, true),
            None => {}
        }
    }
}

/// The link's task: keeps the subscription up, applies messages, shares notes.
async fn run(inner: Arc<Inner>, mut notes: mpsc::UnboundedReceiver<Note>) {
    loop {
        let subscribed = async {
            let mut pubsub = inner.client.get_async_pubsub().await?;
            pubsub.subscribe(&inner.keys.channel).await?;
            Ok::<_, RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(DEADLINE * 10, subscribed).await {
            Ok(Ok(pubsub)) => Some(pubsub),
            _ => None,
        };
        let Some(pubsub) = pubsub else {
            // Redis away: notes are still tried (a trip may yet be shared), then retried.
            let retry = tokio::time::sleep(RECONNECT_EVERY);
            tokio::pin!(retry);
            loop {
                tokio::select! {
                    () = &mut retry => break,
                    note = notes.recv() => match note {
                        Some(note) => inner.share(note).await,
                        None => return,
                    },
                }
            }
            continue;
        };
        tracing::info!(breaker = %inner.name, replica = %inner.replica, "shared breaker state: subscribed");
        inner.rejoin().await;
        let mut messages = pubsub.into_on_message();
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => {
                        let payload: String = message.get_payload().unwrap_or_default();
                        if let Ok(message) = serde_json::from_str::<Message>(&payload) {
                            inner.apply(&message, false);
                        }
                    }
                    None => {
                        tracing::warn!(breaker = %inner.name, "shared breaker state: Redis went away; local breaker alone");
                        break;
                    }
                },
                note = notes.recv() => match note {
                    Some(note) => inner.share(note).await,
                    None => return,
                },
            }
        }
    }
}

/// The Lua scripts: each runs atomically in Redis, reads Redis's own clock and returns the
/// resulting state as a JSON message (and publishes it, when it changed something).
struct Scripts {
    trip: Script,
    close: Script,
    run: Script,
    operator: Script,
    read: Script,
    lease: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        trip: Script::new(&format!("{COMMON}\n{TRIP}")),
        close: Script::new(&format!("{COMMON}\n{CLOSE}")),
        run: Script::new(&format!("{COMMON}\n{RUN}")),
        operator: Script::new(&format!("{COMMON}\n{OPERATOR}")),
        read: Script::new(&format!("{COMMON}\n{READ}")),
        lease: Script::new(&format!("{COMMON}\n{LEASE}")),
    })
}

/// KEYS: state hash, the replicas' failure runs, trial lease, channel.
const COMMON: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'until', 'origin')
local epoch = tonumber(s[1]) or 0
local state = s[2] or 'closed'
local untl = tonumber(s[3]) or 0
local origin = s[4] or ''
local function current()
  local left = 0
  if state == 'open' and untl > now then left = untl - now end
  return cjson.encode({epoch = epoch, state = state, remaining_ms = left, origin = origin})
end
local function open(ms, by)
  if state == 'open' and untl > now then return current() end
  if state == 'forced_open' or state == 'disabled' then return current() end
  epoch = epoch + 1
  state = 'open'
  untl = now + ms
  origin = by
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'state', state, 'until', untl, 'origin', by)
  redis.call('DEL', KEYS[2], KEYS[3])
  local msg = current()
  redis.call('PUBLISH', KEYS[4], msg)
  return msg
end
"#;

/// ARGV: open time (ms), origin. Joins a period already open.
const TRIP: &str = "return open(tonumber(ARGV[1]), ARGV[2])";

/// ARGV: origin. A trial succeeded: closed, for everyone.
const CLOSE: &str = r#"
epoch = epoch + 1
state = 'closed'
origin = ARGV[1]
redis.call('HSET', KEYS[1], 'epoch', epoch, 'state', state, 'until', 0, 'origin', origin)
redis.call('DEL', KEYS[2], KEYS[3])
local msg = current()
redis.call('PUBLISH', KEYS[4], msg)
return msg
"#;

/// ARGV: this replica's settled run, origin, threshold, window (ms), open time (ms).
/// Records the replica's run (0 removes it); opens the circuit for everyone once the
/// settled runs of all replicas add up to the threshold.
const RUN: &str = r#"
if state == 'open' and untl > now then return current() end
if state == 'forced_open' or state == 'disabled' then return current() end
if tonumber(ARGV[1]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
else
  redis.call('HDEL', KEYS[2], ARGV[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local sum = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do sum = sum + tonumber(v) end
if sum >= tonumber(ARGV[3]) then return open(tonumber(ARGV[5]), ARGV[2]) end
return cjson.encode({failures = sum, origin = ARGV[2]})
"#;

/// ARGV: origin, lease time (ms). The open period's one trial: granted (0) only once the
/// shared period has run out, to one replica; otherwise how long to stay open (ms). A new
/// period (a failed trial's reopen) ends the lease, and its own running time then holds.
const LEASE: &str = r#"
if state == 'open' and untl > now then return untl - now end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
return math.max(redis.call('PTTL', KEYS[3]), 1)
"#;

/// ARGV: state (`forced_open`, `disabled`, `closed`), origin. An operator's change, for
/// every replica; until another operator's change, trips and trials leave it alone.
const OPERATOR: &str = r#"
epoch = epoch + 1
state = ARGV[1]
origin = ARGV[2]
redis.call('HSET', KEYS[1], 'epoch', epoch, 'state', state, 'until', 0, 'origin', origin)
redis.call('DEL', KEYS[2], KEYS[3])
local msg = cjson.encode({epoch = epoch, state = state, remaining_ms = 0, origin = origin,
  operator = true})
redis.call('PUBLISH', KEYS[4], msg)
return msg
"#;

/// The shared state as it is.
const READ: &str = r#"
if state == 'forced_open' or state == 'disabled' then
  return cjson.encode({epoch = epoch, state = state, remaining_ms = 0, origin = origin,
    operator = true})
end
return current()
"#;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A replica's id: host name and process id, unique enough among replicas of one cluster.
fn replica_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}:{}:{nanos:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_a_state_is_a_failure_count() {
        let message: Message =
            serde_json::from_str(r#"{"failures": 3, "origin": "a"}"#).expect("parses");
        assert_eq!(message.failures, Some(3));
        assert_eq!(message.state, None);
        // Lua's cjson encodes an empty table field as absent: every field has a default.
        let open: Message =
            serde_json::from_str(r#"{"epoch": 4, "state": "open", "remaining_ms": 900}"#)
                .expect("parses");
        assert_eq!(open.epoch, 4);
    }
}
