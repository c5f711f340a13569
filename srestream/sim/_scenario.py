"""Scenario files: what world to simulate, decoded strictly into typed Structs.

A scenario names a service graph (how many services of each kind), the
traffic (a diurnal curve around a mean rate), the baseline behaviour, the
SLOs whose expected good/total go into ``truth.json``, the faults to inject
and the on-call behaviour.  Times of faults are offsets from ``start`` so a
scenario can be moved in time without touching its faults.

Decoding is msgspec with ``forbid_unknown_fields``; after the type check every
semantic problem (unknown service, fault outside the scenario, ratio outside
[0, 1] ...) is collected and reported at once with its JSON path.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import msgspec

from .._duration import Duration, dec_hook
from .._errors import ConfigError, Problem
from ..parse._time import parse_timestamp

__all__ = [
    "OUTPUT_FORMATS",
    "BadDeploy",
    "Baseline",
    "DataGap",
    "DependencyOutage",
    "Fault",
    "LatencyRegression",
    "OnCall",
    "Scenario",
    "ServiceCounts",
    "SloTemplate",
    "SlowBurn",
    "Traffic",
    "load_scenario",
    "parse_scenario",
]

ServiceKind = Literal["frontend", "gateway", "mid", "datastore"]
OutputFormat = Literal["jsonl", "logfmt", "syslog", "otlp", "openmetrics"]
OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "logfmt", "syslog", "otlp", "openmetrics")


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ServiceCounts(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How many services of each kind.  Unset kinds are derived from
    ``count`` (about 6% frontends, 6% gateways, 20% datastores, the rest mid
    services)."""

    count: int = 8
    frontends: int | None = None
    gateways: int | None = None
    datastores: int | None = None


class Traffic(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Requests entering at the frontends.  The rate follows one sine per day:
    ``requests_per_second * (1 + diurnal_amplitude * cos(2π (hour - peak_hour_utc) / 24))``."""

    requests_per_second: float = 5.0
    diurnal_amplitude: float = 0.5
    peak_hour_utc: float = 15.0
    client_error_ratio: float = 0.01
    """Share of requests answered 4xx (good for availability)."""


class Baseline(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the healthy system behaves."""

    error_ratio: float = 0.0005
    """Probability that a span fails on its own (status 500)."""
    error_propagation: float = 0.8
    """Probability that a caller fails when a callee failed (else it degrades: WARN, 200)."""
    latency_ms: float = 6.0
    """Median self time of a span, before the time of its calls is added."""
    call_probability: float = 0.75
    """Probability that a service calls each of its dependencies in a request."""


class SloTemplate(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An SLO applied to every service of the listed kinds (or the listed
    services); it becomes ``<service>-<name>`` in ``truth.json``.

    availability: good = status < 500; latency: good = latency_ms <= threshold_ms.
    """

    name: str
    sli: Literal["availability", "latency"]
    objective: float
    threshold_ms: float | None = None
    kinds: list[ServiceKind] = msgspec.field(default_factory=lambda: ["frontend", "gateway"])
    services: list[str] | None = None


class _FaultBase(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"):
    onset: Duration
    """Offset from the scenario start."""
    duration: Duration
    incident: bool = True
    """Whether responders work it (acks, escalations, chat notes, actions)."""


class BadDeploy(
    _FaultBase, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="bad_deploy"
):
    """A deploy of ``service`` at ``onset`` whose new version fails a share of
    requests from ``errors_after`` later until it is rolled back at the end."""

    service: str
    error_ratio: float = 0.2
    errors_after: Duration = Duration.parse("1m")
    version: str = "v2.0.0"
    previous_version: str = "v1.9.4"


class DependencyOutage(
    _FaultBase, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="dependency_outage"
):
    """``service`` (usually a datastore) fails most requests; callers fail
    in turn with the propagation probability: the outage cascades upward.

    ``mode: refused`` fails fast (503, connection refused); ``mode: timeout``
    hangs each failing request for ``timeout`` (504), so the outage also
    burns latency SLOs all the way up."""

    service: str
    error_ratio: float = 0.95
    mode: Literal["refused", "timeout"] = "refused"
    timeout: Duration = Duration.parse("2s")


class LatencyRegression(
    _FaultBase, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="latency_regression"
):
    """``service``'s own latency multiplied by ``latency_factor``; its callers
    slow down by the same added time, since latency adds up along the path."""

    service: str
    latency_factor: float = 5.0


class SlowBurn(_FaultBase, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="slow_burn"):
    """A small extra error ratio at ``service`` for a long time: the budget
    burns slowly (ticket, not page).  Constant, or with ``ramp_to`` growing
    linearly from ``error_ratio`` at the onset to ``ramp_to`` at the end
    (one step per minute): a known linear burn for forecasts."""

    service: str
    error_ratio: float = 0.003
    ramp_to: float | None = None


class DataGap(_FaultBase, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="data_gap"):
    """A monitoring outage: no logs, spans or metric samples from the listed
    services (all when unset) between onset and onset + duration.  The
    services keep serving; nobody sees it."""

    services: list[str] | None = None
    incident: bool = False


Fault = BadDeploy | DependencyOutage | LatencyRegression | SlowBurn | DataGap


class OnCall(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How responders behave in incidents (each drawn from the seed)."""

    detection_delay: Duration = Duration.parse("3m")
    ack_timeout: Duration = Duration.parse("5m")
    """An unacknowledged page escalates to the next person after this."""
    max_ack_delay: Duration = Duration.parse("9m")
    people_per_team: int = 2


class Scenario(_Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    start: str
    duration: Duration
    seed: int = 1
    environment: str = "prod"
    description: str = ""
    services: ServiceCounts = ServiceCounts()
    traffic: Traffic = Traffic()
    baseline: Baseline = Baseline()
    slos: list[SloTemplate] = msgspec.field(default_factory=list)
    faults: list[Fault] = msgspec.field(default_factory=list)
    oncall: OnCall = OnCall()
    outputs: list[OutputFormat] = msgspec.field(
        default_factory=lambda: ["jsonl", "logfmt", "syslog", "otlp", "openmetrics"]
    )
    metrics_interval: Duration = Duration.parse("1m")
    routine_deploys_per_day: float = 6.0
    """Healthy deploys of random services (noise around the bad one)."""

    @property
    def start_ns(self) -> int:
        return parse_timestamp(self.start)

    @property
    def end_ns(self) -> int:
        return self.start_ns + int(self.duration)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file (YAML); every problem is reported at once."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError([Problem(path="$", message=f"cannot read: {exc.strerror}", file=path)])
    return parse_scenario(raw, path=path)


def parse_scenario(raw: bytes | str, *, path: str = "scenario.yaml") -> Scenario:
    """Validate scenario text (YAML)."""
    try:
        obj = msgspec.yaml.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError([Problem(path="$", message=f"not valid YAML: {exc}", file=path)])
    return scenario_from_dict(obj, path=path)


def scenario_from_dict(obj: Any, *, path: str = "") -> Scenario:
    """Validate a scenario given as plain dicts and lists."""
    try:
        sc = msgspec.convert(obj, Scenario, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        msg, where = _split_path(str(exc))
        raise ConfigError([Problem(path="$" + where, message=msg, file=path)])
    problems = [Problem(path=p, message=m, file=path) for p, m in check_scenario(sc)]
    if problems:
        raise ConfigError(problems)
    return sc


def _split_path(msg: str) -> tuple[str, str]:
    marker = " - at `$"
    i = msg.rfind(marker)
    if i < 0:
        return msg, ""
    return msg[:i], msg[i + len(marker) :].rstrip("`")


def check_scenario(sc: Scenario) -> list[tuple[str, str]]:
    """Semantic checks after the type check: (path, message) per problem."""
    from ._graph import build_graph, split_counts

    out: list[tuple[str, str]] = []

    def ratio(p: str, v: float) -> None:
        if not 0.0 <= v <= 1.0:
            out.append((p, f"must be within [0, 1], got {v}"))

    try:
        start = parse_timestamp(sc.start)
        if start % 1_000_000:
            out.append(("$.start", "must be a whole millisecond"))
    except ValueError as exc:
        out.append(("$.start", f"not an RFC 3339 time: {exc}"))
    if sc.duration <= 0:
        out.append(("$.duration", "must be positive"))
    if sc.metrics_interval < 1_000_000_000:
        out.append(("$.metrics_interval", "must be at least 1s"))
    c = sc.services
    if not 5 <= c.count <= 300:
        out.append(("$.services.count", f"must be within [5, 300], got {c.count}"))
    else:
        try:
            split_counts(c)
        except ValueError as exc:
            out.append(("$.services", str(exc)))
    t = sc.traffic
    if t.requests_per_second <= 0:
        out.append(("$.traffic.requests_per_second", "must be positive"))
    if not 0.0 <= t.diurnal_amplitude < 1.0:
        # At 1 the trough rate is 0 and one inter-arrival gap could jump past
        # the rest of the day; below 1 every hour has traffic.
        out.append(
            ("$.traffic.diurnal_amplitude", f"must be within [0, 1), got {t.diurnal_amplitude}")
        )
    ratio("$.traffic.client_error_ratio", t.client_error_ratio)
    b = sc.baseline
    ratio("$.baseline.error_ratio", b.error_ratio)
    ratio("$.baseline.error_propagation", b.error_propagation)
    ratio("$.baseline.call_probability", b.call_probability)
    if b.latency_ms <= 0:
        out.append(("$.baseline.latency_ms", "must be positive"))
    if sc.routine_deploys_per_day < 0:
        out.append(("$.routine_deploys_per_day", "must not be negative"))
    if sc.oncall.people_per_team < 1:
        out.append(("$.oncall.people_per_team", "must be at least 1"))
    if out:
        return out
    names = {s.name for s in build_graph(sc.services, sc.seed).services}
    seen: set[str] = set()
    for i, slo in enumerate(sc.slos):
        p = f"$.slos[{i}]"
        if slo.name in seen:
            out.append((f"{p}.name", f"duplicate SLO name {slo.name!r}"))
        seen.add(slo.name)
        if not 0.0 < slo.objective < 100.0:
            out.append((f"{p}.objective", f"must be within (0, 100), got {slo.objective}"))
        if slo.sli == "latency" and (slo.threshold_ms is None or slo.threshold_ms <= 0):
            out.append((f"{p}.threshold_ms", "a latency SLI needs a positive threshold_ms"))
        if slo.sli == "availability" and slo.threshold_ms is not None:
            out.append((f"{p}.threshold_ms", "only a latency SLI takes a threshold"))
        for j, s in enumerate(slo.services or ()):
            if s not in names:
                out.append((f"{p}.services[{j}]", _unknown(s, names)))
    for i, f in enumerate(sc.faults):
        p = f"$.faults[{i}]"
        if f.onset < 0 or f.onset >= sc.duration:
            out.append((f"{p}.onset", "must fall within the scenario duration"))
        if f.duration <= 0:
            out.append((f"{p}.duration", "must be positive"))
        elif f.onset + f.duration > sc.duration:
            out.append((f"{p}.duration", "the fault must end within the scenario"))
        if isinstance(f, DataGap):
            for j, s in enumerate(f.services or ()):
                if s not in names:
                    out.append((f"{p}.services[{j}]", _unknown(s, names)))
            continue
        if f.service not in names:
            out.append((f"{p}.service", _unknown(f.service, names)))
        if isinstance(f, BadDeploy | DependencyOutage | SlowBurn):
            ratio(f"{p}.error_ratio", f.error_ratio)
        if isinstance(f, SlowBurn) and f.ramp_to is not None:
            ratio(f"{p}.ramp_to", f.ramp_to)
        if isinstance(f, BadDeploy) and not 0 <= f.errors_after < f.duration:
            out.append((f"{p}.errors_after", "must be within the fault's duration"))
        if isinstance(f, DependencyOutage) and f.timeout <= 0:
            out.append((f"{p}.timeout", "must be positive"))
        if isinstance(f, LatencyRegression) and f.latency_factor <= 0:
            out.append((f"{p}.latency_factor", "must be positive"))
    return out


def _unknown(name: str, names: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(names), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown service {name!r}{hint}; the graph has: {', '.join(sorted(names))}"
