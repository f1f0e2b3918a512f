"""What is run: the settings of a full or quick run, and the scenarios as timed phases of
the upstream's behaviour (the seed's load-test scenarios, driven by wrk)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    """Everything a run's figures depend on; written into the report."""

    mode: str = "full"
    notes: int = 10_000
    users: int = 10
    questions: int = 400
    # Server (CIRCUIT_BREAKER_*, BREAKWATER_CACHE_TTL_SECONDS).
    fail_threshold: int = 5
    call_timeout_s: float = 2.0
    reset_timeout_s: float = 10.0
    # Short enough that answers cached before an outage go stale during it, so the
    # `stale_cache` level shows (the default, 1 h, would keep them fresh: `cache`).
    cache_ttl_s: float = 30.0
    # Upstream when healthy in the fault scenarios: a small model's answer time.
    upstream_latency_ms: int = 500
    # Load.
    fault_rate: float = 100.0
    fault_connections: int = 256  # > rate x call timeout, so a hung upstream can't starve wrk
    overhead_rate: float = 1000.0
    overhead_connections: int = 32
    light_rate: float = 100.0
    # Durations, seconds.
    healthy_s: float = 30
    warm_s: float = 10
    outage_s: float = 60
    after_s: float = 10
    hang_s: float = 30
    flap_fail_s: float = 12
    flap_ok_s: float = 12
    recovery_outage_s: float = 20
    recovery_after_s: float = 30
    overhead_s: float = 30
    baseline_s: float = 15
    open_s: float = 20


QUICK = Settings(
    mode="quick", notes=2_000, questions=200, call_timeout_s=0.5, reset_timeout_s=1.0,
    cache_ttl_s=3.0, upstream_latency_ms=100, fault_rate=50.0, fault_connections=64,
    overhead_rate=300.0, overhead_connections=16, light_rate=50.0,
    healthy_s=2, warm_s=2, outage_s=4, after_s=2, hang_s=3, flap_fail_s=2, flap_ok_s=2,
    recovery_outage_s=2, recovery_after_s=3, overhead_s=2, baseline_s=1.5, open_s=2,
)


@dataclass(frozen=True)
class Phase:
    """A stretch of time during which the upstream behaves one way."""

    name: str
    seconds: float
    fault: dict
    failing: bool


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    phases: tuple[Phase, ...]
    rate: float
    connections: int
    target: str = "breakwater"  # or "fake-llm": a baseline straight at the upstream
    path: str = "/api/assistant/query"
    bodies: str | None = "queries"  # "queries", "chat" or None (GET)
    breaker_modes: tuple[bool, ...] = (True, False)
    tags: tuple[str, ...] = field(default_factory=tuple)
    # Server variables this scenario sets beyond the run's settings.
    env: tuple[tuple[str, str], ...] = ()

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)


def healthy(s: Settings, seconds: float, latency_ms: int | None = None) -> Phase:
    latency = s.upstream_latency_ms if latency_ms is None else latency_ms
    return Phase("healthy", seconds, {"mode": "ok", "latency_ms": latency}, False)


def outage(seconds: float) -> Phase:
    # A gateway answering 503 at once: failures are fast, as in a real full outage.
    return Phase("outage 5xx", seconds, {"mode": "error", "status": 503}, True)


def hang(seconds: float) -> Phase:
    return Phase("hung", seconds, {"mode": "hang"}, True)


def freeze(seconds: float) -> Phase:
    # A stopped server: the calls it was working on stall too, not only new ones.
    return Phase("frozen", seconds, {"mode": "freeze"}, True)


def fault_scenarios(s: Settings) -> list[Scenario]:
    def scenario(name: str, title: str, *phases: Phase) -> Scenario:
        return Scenario(name, title, tuple(phases), s.fault_rate, s.fault_connections)

    return [
        scenario("healthy", f"healthy upstream ({s.upstream_latency_ms} ms)",
                 healthy(s, s.healthy_s)),
        scenario("outage", f"full outage (5xx) for {s.outage_s:g} s",
                 healthy(s, s.warm_s), outage(s.outage_s), healthy(s, s.after_s)),
        scenario("hang", f"hung upstream for {s.hang_s:g} s (> {s.call_timeout_s:g} s timeout)",
                 healthy(s, s.warm_s), hang(s.hang_s), healthy(s, s.after_s)),
        scenario("flapping", "flapping: fails, recovers, fails again",
                 healthy(s, s.warm_s), outage(s.flap_fail_s), healthy(s, s.flap_ok_s),
                 outage(s.flap_fail_s), healthy(s, s.flap_ok_s)),
        scenario("recovery", f"recovery after a {s.recovery_outage_s:g} s outage",
                 healthy(s, s.warm_s), outage(s.recovery_outage_s),
                 healthy(s, s.recovery_after_s)),
    ]


# Recovery with backoff: a short first open time that doubles after each failed trial.
BACKOFF_ENV = (("CIRCUIT_BREAKER_RESET_TIMEOUT", "2"), ("CIRCUIT_BREAKER_MAX_RESET_TIMEOUT", "60"))


def traffic_scenarios(s: Settings) -> list[Scenario]:
    """The breaker under real traffic (issue: no false trips, hung upstreams contained,
    fast recovery): breaker on only, with the default adaptive in-flight bound."""
    quick = s.mode == "quick"
    blip_s, backoff_outage_s = (2.0, 6.0) if quick else (5.0, 60.0)

    def scenario(name: str, title: str, rate: float, *phases: Phase, env=()) -> Scenario:
        return Scenario(name, title, tuple(phases), rate, s.fault_connections,
                        breaker_modes=(True,), env=env, tags=("traffic",))

    return [
        scenario("healthy50", f"healthy upstream ({s.upstream_latency_ms} ms) at 50 req/s", 50.0,
                 healthy(s, s.healthy_s)),
        scenario("healthy200", f"healthy upstream ({s.upstream_latency_ms} ms) at 200 req/s",
                 200.0, healthy(s, s.healthy_s)),
        scenario("hang50", f"hung upstream for {s.hang_s:g} s at 50 req/s", 50.0,
                 healthy(s, s.warm_s), hang(s.hang_s), healthy(s, s.after_s)),
        scenario("hang50-fast", f"hung upstream for {s.hang_s:g} s at 50 req/s, 100 ms answers "
                 "before", 50.0, healthy(s, s.warm_s, 100), hang(s.hang_s),
                 healthy(s, s.after_s, 100)),
        scenario("hang50-freeze", f"frozen upstream (the calls in progress stall too) for "
                 f"{s.hang_s:g} s at 50 req/s", 50.0, healthy(s, s.warm_s), freeze(s.hang_s),
                 healthy(s, s.after_s)),
        scenario("blip", f"{blip_s:g} s blip (5xx), reset 2 s doubling to 60 s", s.fault_rate,
                 healthy(s, s.warm_s), outage(blip_s), healthy(s, s.recovery_after_s),
                 env=BACKOFF_ENV),
        scenario("outage-backoff", f"{backoff_outage_s:g} s outage (5xx), reset 2 s doubling "
                 "to 60 s", s.fault_rate, healthy(s, s.warm_s), outage(backoff_outage_s),
                 # Long enough after it to see the trial that ends the grown open time.
                 healthy(s, s.recovery_after_s + 10), env=BACKOFF_ENV),
    ]


def all_scenarios(s: Settings) -> list[Scenario]:
    return overhead_scenarios(s) + fault_scenarios(s) + traffic_scenarios(s)


def overhead_scenarios(s: Settings) -> list[Scenario]:
    fast = healthy(s, s.overhead_s, latency_ms=0)
    return [
        Scenario("baseline-http", "GET /healthz (HTTP stack only)",
                 (healthy(s, s.baseline_s, 0),), s.overhead_rate, s.overhead_connections,
                 path="/healthz", bodies=None, breaker_modes=(True,), tags=("baseline",)),
        Scenario("baseline-upstream", "fake-llm chat call, direct (the upstream's own cost)",
                 (healthy(s, s.baseline_s, 0),), s.overhead_rate, s.overhead_connections,
                 target="fake-llm", path="/v1/chat/completions", bodies="chat",
                 breaker_modes=(True,), tags=("baseline",)),
        Scenario("overhead", f"healthy zero-latency upstream at {s.overhead_rate:g} req/s",
                 (fast,), s.overhead_rate, s.overhead_connections, tags=("overhead",)),
        Scenario("overhead-light", f"healthy zero-latency upstream at {s.light_rate:g} req/s",
                 (healthy(s, s.overhead_s, 0),), s.light_rate, s.overhead_connections,
                 breaker_modes=(True,), tags=("overhead",)),
        Scenario("open-circuit", f"upstream down (fast 5xx) at {s.overhead_rate:g} req/s",
                 (outage(s.open_s),), s.overhead_rate, s.overhead_connections,
                 tags=("overhead",)),
    ]
