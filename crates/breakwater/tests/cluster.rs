//! Cluster mode with real processes: three `breakwater` replicas on one PostgreSQL database
//! (a fresh one per test) and one Redis (the test's own, on a free port, stopped by its
//! pid), in front of one `fake-llm`.
//!
//! Real time is unavoidable here (three processes, a real Redis): waits are bounded polls
//! of the replicas' health, never sleeps whose length is the thing tested.

mod pg_common;
mod process_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use fake_llm::{FakeLlm, Fault, RunningFakeLlm};
use pg_common::TestDatabase;
use serde_json::{Value, json};
use tokio::process::Child;

const THRESHOLD: u64 = 5;

/// A Redis server of this test's own.
struct OwnRedis {
    port: u16,
    pidfile: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl OwnRedis {
    /// Starts `redis-server` on a free port, or `None` (printing why) without one, except
    /// under `CI=true`, where that fails the test.
    fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = process_common::free_port();
        let redis = Self {
            port,
            pidfile: dir.path().join("redis.pid"),
            _dir: dir,
        };
        match redis.launch() {
            Ok(()) => Some(redis),
            Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("cannot start redis-server ({why}); with CI=true the cluster tests must run")
            }
            Err(why) => {
                eprintln!("skipped: cannot start redis-server ({why})");
                None
            }
        }
    }

    fn launch(&self) -> Result<(), String> {
        let status = std::process::Command::new("redis-server")
            .args(["--daemonize", "yes", "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--port", &self.port.to_string()])
            .arg("--pidfile")
            .arg(&self.pidfile)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("redis-server exited with {status}"));
        }
        // Up when it accepts connections (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not come up".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection of the test's own, beside the replicas'.
    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("Redis answers")
    }

    /// Stops the server by its pid (SIGKILL: it goes away as in a crash).
    fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile) {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One replica process.
struct Replica {
    base: String,
    child: Child,
}

impl Drop for Replica {
    /// SIGTERM first, as an orchestrator stops a replica, so that it shuts down cleanly (and
    /// a coverage run gets its profile); `kill_on_drop` is the backstop after 5 s.
    fn drop(&mut self) {
        let Some(pid) = self.child.id() else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        for _ in 0..500 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Three replicas, their database, Redis and upstream.
struct Cluster {
    replicas: Vec<Replica>,
    upstream: RunningFakeLlm,
    redis: OwnRedis,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Cluster {
    async fn start(extra: &[(&str, &str)]) -> Option<Self> {
        let database = TestDatabase::create().await?;
        let redis = OwnRedis::start()?;
        let upstream = FakeLlm::new().spawn().await.expect("fake-llm starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut replicas = Vec::new();
        for _ in 0..3 {
            let addr = format!("127.0.0.1:{}", process_common::free_port());
            let mut command = process_common::isolated(env!("CARGO_BIN_EXE_breakwater"));
            command
                .args(["--env-dir", &dir.path().display().to_string(), "serve"])
                .env("BREAKWATER_ADDR", &addr)
                .env("DATABASE_URL", database.url())
                .env("REDIS_URL", redis.url())
                .env("HF_API_BASE", upstream.base_url())
                .env("HF_API_TOKEN", "test")
                .env("CIRCUIT_BREAKER_FAIL_THRESHOLD", THRESHOLD.to_string())
                .env("CIRCUIT_BREAKER_TIMEOUT_SECONDS", "5")
                .env("CIRCUIT_BREAKER_RESET_TIMEOUT", "2")
                .env("CIRCUIT_BREAKER_MAX_IN_FLIGHT", "0");
            for (name, value) in extra {
                command.env(name, value);
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .expect("the binary runs");
            replicas.push(Replica {
                base: format!("http://{addr}"),
                child,
            });
        }
        let cluster = Self {
            replicas,
            upstream,
            redis,
            _database: database,
            _dir: dir,
            client: reqwest::Client::new(),
        };
        for i in 0..3 {
            let cluster = &cluster;
            cluster
                .until(&format!("replica {i} is up"), || async move {
                    cluster.health(i).await.is_some()
                })
                .await;
        }
        Some(cluster)
    }

    /// Polls `check` every 10 ms until it holds; fails the test after 10 s.
    async fn until<F, Fut>(&self, what: &str, check: F) -> Duration
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !check().await {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "timed out waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    }

    async fn health(&self, replica: usize) -> Option<Value> {
        let url = format!(
            "{}/api/assistant/health/circuit-breaker",
            self.replicas[replica].base
        );
        let response = self.client.get(url).send().await.ok()?;
        response.json().await.ok()
    }

    /// The LLM breaker's status on `replica`.
    async fn llm_breaker(&self, replica: usize) -> Value {
        let health = self.health(replica).await.expect("health answers");
        health["breakers"]
            .as_array()
            .expect("breakers")
            .iter()
            .find(|b| b["name"] == "huggingface")
            .cloned()
            .expect("the LLM breaker")
    }

    async fn state(&self, replica: usize) -> String {
        self.llm_breaker(replica).await["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn ask(&self, replica: usize, query: &str) -> reqwest::Response {
        self.client
            .post(format!(
                "{}/api/assistant/query",
                self.replicas[replica].base
            ))
            .json(&json!({"user_id": "alice", "query": query}))
            .send()
            .await
            .expect("the replica answers")
    }

    async fn add_note(&self, replica: usize, title: &str, body: &str) {
        let response = self
            .client
            .post(format!("{}/api/notes", self.replicas[replica].base))
            .json(&json!({"user_id": "alice", "title": title, "body": body}))
            .send()
            .await
            .expect("the replica answers");
        assert_eq!(response.status(), 201);
    }

    /// Whether every replica's LLM breaker is in `state`.
    async fn all_in(&self, state: &str) -> bool {
        for i in 0..self.replicas.len() {
            if self.state(i).await != state {
                return false;
            }
        }
        true
    }

    /// Alice's one note, so that every question has an excerpt to fall back on.
    async fn seed(&self) {
        self.add_note(0, "Sourdough", "Feed the starter daily.")
            .await;
    }

    /// The upstream fails every call; questions go round-robin until every replica is open.
    async fn outage(&self) -> usize {
        self.seed().await;
        self.upstream.llm.set_fault(Fault::error(500));
        self.fail_until_all_open().await
    }

    /// Round-robin questions (each answered: the excerpts fall back) until every replica's
    /// circuit is open; returns how many questions it took.
    async fn fail_until_all_open(&self) -> usize {
        for asked in 0..60 {
            let response = self
                .ask(asked % 3, &format!("starter question {asked}"))
                .await;
            assert_eq!(response.status(), 200, "every question is answered");
            if self.all_in("open").await {
                return asked + 1;
            }
        }
        panic!("the replicas never all opened");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_on_one_replica_opens_every_replica_with_the_same_next_trial() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    cluster.seed().await;
    cluster.upstream.llm.set_fault(Fault::error(500));
    // Only replica 0 is asked: its five failures open everyone.
    for i in 0..THRESHOLD {
        assert_eq!(cluster.ask(0, &format!("starter {i}")).await.status(), 200);
    }
    assert_eq!(cluster.state(0).await, "open");
    let spread = cluster
        .until("replicas 1 and 2 are open", || async {
            cluster.state(1).await == "open" && cluster.state(2).await == "open"
        })
        .await;
    eprintln!("the trip reached every replica within {spread:?} of the first's");
    let mut next_trials = Vec::new();
    for i in 0..3 {
        let status = cluster.llm_breaker(i).await;
        next_trials.push(status["retry_after_seconds"].as_f64().expect("open"));
        if i > 0 {
            assert_eq!(status["last_transition"], "shared", "{status}");
        }
    }
    // Read one after another: the spread is the reads' own time, well under 0.3 s.
    let (min, max) = next_trials
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    assert!(max - min < 0.3, "next trials differ: {next_trials:?}");
    assert_eq!(cluster.upstream.llm.calls(), THRESHOLD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_opens_every_replica_after_about_threshold_failures_in_total() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    let asked = cluster.outage().await;
    let calls = cluster.upstream.llm.calls();
    eprintln!("shared: {calls} failing upstream calls, {asked} questions, until all open");
    assert!(calls <= THRESHOLD + 2, "{calls} upstream calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sharing_each_replica_needs_its_own_threshold() {
    let Some(cluster) = Cluster::start(&[("CIRCUIT_BREAKER_SHARED", "false")]).await else {
        return;
    };
    cluster.outage().await;
    let calls = cluster.upstream.llm.calls();
    eprintln!("per replica: {calls} failing upstream calls until all open");
    assert_eq!(calls, 3 * THRESHOLD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trial_cluster_wide_with_ten_concurrent_requests_on_each_replica() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    cluster.outage().await;
    // The upstream is back, slow enough that every request arrives during the trial.
    cluster
        .upstream
        .llm
        .set_fault(Fault::ok().with_latency_ms(500));
    let before = cluster.upstream.llm.calls();
    cluster
        .until("the open period ends", || async {
            cluster.llm_breaker(0).await["retry_after_seconds"]
                .as_f64()
                .is_some_and(|s| s == 0.0)
        })
        .await;
    let requests = (0..30).map(|i| {
        let cluster = &cluster;
        async move {
            cluster
                .ask(i % 3, &format!("starter trial {i}"))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        cluster.upstream.llm.calls() - before,
        1,
        "one trial call for the whole cluster"
    );
    cluster
        .until("the successful trial closes every replica", || async {
            cluster.all_in("closed").await
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_notes_are_shared_across_replicas() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    cluster
        .add_note(0, "Kayak", "The kayak lives in the garage.")
        .await;
    // Written on replica 0, searchable on replica 2 at once.
    let response = cluster.ask(2, "Where does the kayak live?").await;
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["metadata"]["source"], "llm", "{answer}");
    assert_eq!(answer["sources"][0]["title"], "Kayak", "{answer}");
    // The answer's write to Redis runs after the response (a request never waits for
    // Redis): wait for it to land before asking another replica.
    let connection = cluster.redis.connection().await;
    cluster
        .until("the answer is in Redis", || {
            let mut connection = connection.clone();
            async move {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg("breakwater:v2:fresh:*")
                    .query_async(&mut connection)
                    .await
                    .unwrap_or_default();
                !keys.is_empty()
            }
        })
        .await;
    // Answered on replica 2, a cache hit on replica 1.
    let again: Value = cluster
        .ask(1, "where does the kayak live")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(again["metadata"]["source"], "cache", "{again}");
    assert_eq!(again["answer"], answer["answer"]);
    assert_eq!(cluster.upstream.llm.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_gone_fails_no_request_and_replicas_rejoin_when_it_is_back() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    cluster.seed().await;
    for i in 0..6 {
        assert_eq!(
            cluster.ask(i % 3, &format!("starter {i}")).await.status(),
            200
        );
    }
    cluster.redis.kill();
    for i in 0..12 {
        let response = cluster
            .ask(i % 3, &format!("starter without redis {i}"))
            .await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "no request fails because of Redis: {body}");
    }
    // Each replica's own breaker still works: five failures on replica 0 open it alone.
    cluster.upstream.llm.set_fault(Fault::error(500));
    for i in 0..THRESHOLD {
        assert_eq!(
            cluster
                .ask(0, &format!("starter failing {i}"))
                .await
                .status(),
            200
        );
    }
    assert_eq!(cluster.state(0).await, "open");
    assert_eq!(cluster.state(1).await, "closed");

    // Redis back: replica 0 shares the trip it made alone, and the others adopt it.
    cluster.redis.launch().expect("redis-server restarts");
    cluster
        .until("the replicas rejoin and all are open", || async {
            cluster.state(1).await == "open" && cluster.state(2).await == "open"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_or_repeated_message_never_moves_a_newer_state() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    cluster.outage().await;
    let mut connection = cluster.redis.connection().await;
    let channel = "breakwater:v1:breaker:huggingface";
    // A close from before the trip (epoch 0), and one as old as the trip (epoch 1, its
    // repeat): applied, either would close every replica.
    for stale in [
        json!({"epoch": 0, "state": "closed", "origin": "elsewhere"}),
        json!({"epoch": 1, "state": "closed", "origin": "elsewhere"}),
    ] {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(stale.to_string())
            .query_async::<i64>(&mut connection)
            .await
            .expect("published");
    }
    // A newer message, published after them, is applied: once every replica shows it, the
    // stale ones (ahead of it on the same subscription) were seen and ignored.
    let marker =
        json!({"epoch": 1_000, "state": "open", "remaining_ms": 60_000, "origin": "elsewhere"});
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(marker.to_string())
        .query_async::<i64>(&mut connection)
        .await
        .expect("published");
    cluster
        .until("the newer message is applied everywhere", || async {
            let mut all = true;
            for i in 0..3 {
                let status = cluster.llm_breaker(i).await;
                all &= status["retry_after_seconds"]
                    .as_f64()
                    .is_some_and(|s| s > 30.0);
            }
            all
        })
        .await;
    for i in 0..3 {
        assert_eq!(cluster.state(i).await, "open", "replica {i}");
        // Neither stale message moved it: no shared close ever happened.
        let metrics = cluster
            .client
            .get(format!("{}/metrics", cluster.replicas[i].base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let count = |to: &str| -> f64 {
            metrics
                .lines()
                .filter(|l| {
                    l.starts_with("breakwater_circuit_breaker_transitions_total")
                        && l.contains("breaker=\"huggingface\"")
                        && l.contains(&format!("to=\"{to}\""))
                        && l.contains("reason=\"shared\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        assert_eq!(count("closed"), 0.0, "replica {i}: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_failures_under_concurrent_load_do_not_open_the_cluster() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    cluster.seed().await;
    // 5 % of calls fail, as slowly as the others answer; 30 requests always in flight.
    cluster.upstream.llm.set_fault(
        Fault::error(500)
            .with_failure_rate(0.05)
            .with_latency_ms(200),
    );
    let workers = (0..30).map(|w| {
        let cluster = &cluster;
        async move {
            for i in 0..12 {
                let response = cluster.ask(w % 3, &format!("starter {w} {i}")).await;
                assert_eq!(response.status(), 200);
            }
        }
    });
    futures::future::join_all(workers).await;
    let calls = cluster.upstream.llm.calls();
    assert!(calls >= 300, "the load reached the upstream: {calls} calls");
    for i in 0..3 {
        let status = cluster.llm_breaker(i).await;
        assert_eq!(status["state"], "closed", "replica {i}: {status}");
        assert_eq!(
            status["last_transition"],
            serde_json::Value::Null,
            "replica {i}: {status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_change_on_one_replica_reaches_every_replica() {
    let Some(cluster) = Cluster::start(&[("BREAKWATER_ADMIN_TOKEN", "admin-secret")]).await else {
        return;
    };
    let set = |replica: usize, state: &'static str| {
        let cluster = &cluster;
        async move {
            let response = cluster
                .client
                .post(format!(
                    "{}/api/assistant/circuit-breakers/huggingface/state",
                    cluster.replicas[replica].base
                ))
                .bearer_auth("admin-secret")
                .json(&json!({"state": state}))
                .send()
                .await
                .expect("answered");
            assert_eq!(response.status(), 200, "{state} on replica {replica}");
        }
    };
    for (replica, state) in [
        (0, "forced_open"),
        (2, "closed"),
        (1, "disabled"),
        (0, "closed"),
    ] {
        set(replica, state).await;
        cluster
            .until(&format!("every replica is {state}"), || {
                cluster.all_in(state)
            })
            .await;
    }
    // Forced open holds against the cluster's own trips and trials.
    set(1, "forced_open").await;
    cluster
        .until("every replica is forced open", || {
            cluster.all_in("forced_open")
        })
        .await;
    cluster.seed().await;
    for i in 0..6 {
        assert_eq!(
            cluster.ask(i % 3, &format!("starter {i}")).await.status(),
            200
        );
    }
    assert_eq!(cluster.upstream.llm.calls(), 0, "no call while forced open");
}
