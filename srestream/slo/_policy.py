"""Budget policies: budget thresholds -> actions, and the deployment gate.

A policy is a list of rules ``{remaining_at_most: <percent>, action:
notify|ticket|freeze}``; a rule is *triggered* for an SLO when its budget
remaining (percent) is at or below the threshold.  Deployment of a service
is refused while any of its SLOs triggers a ``freeze`` rule.

>>> from srestream.slo import parse_slos
>>> slos = parse_slos({"slos": [{"name": "availability", "service": "checkout",
...     "objective": 99.9, "sli": {"kind": "availability", "total": {},
...     "good": {"status": {"lt": 500}}}}]})
>>> from srestream.slo import Budget
>>> b = Budget(ts_ns=10, slo="availability", service="checkout", objective=99.9,
...     period="30d", good=990, total=1000, budget_remaining=-9.0, burn_rate_1h=0.0)
>>> gate = BudgetGate(slos, [b])
>>> gate.deployment_allowed("checkout", at_ns=20).allowed
False
"""

from __future__ import annotations

import bisect
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from typing import Any, Protocol

import msgspec

from .._errors import ConfigError, Problem
from ._records import Budget
from ._spec import PolicyRule, SLOSet, SLOSpec

__all__ = [
    "BudgetGate",
    "GateAudit",
    "GateDecision",
    "PolicyAction",
    "budget_policy_actions",
    "budgets_from_ledger",
    "load_budgets",
    "triggered_rules",
]


class PolicyAction(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="policy_action"
):
    """A budget policy rule that started (``state: triggered``) or stopped
    (``state: cleared``) applying to one (SLO, service)."""

    ts_ns: int
    slo: str
    service: str
    action: str
    state: str
    remaining_at_most: float
    budget_remaining: float
    note: str = ""


class GateDecision(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to "may ``service`` deploy at ``at_ns``", and why."""

    service: str
    at_ns: int
    allowed: bool
    reasons: list[str]
    actions: list[str] = []
    """Every action triggered for the service's SLOs (notify, ticket, freeze)."""

    def __bool__(self) -> bool:
        return self.allowed


def triggered_rules(rules: Iterable[PolicyRule], budget_remaining: float) -> list[PolicyRule]:
    """The rules whose threshold the remaining budget (ratio) is at or below."""
    pct = budget_remaining * 100.0
    return [r for r in rules if pct <= r.remaining_at_most]


class GateAudit(Protocol):
    """Where gate decisions are recorded (the governance store)."""

    def record_gate_decision(self, decision: GateDecision, *, actor: str = "") -> Any: ...


class BudgetGate:
    """Deployment gate over a history of budget records.

    ``deployment_allowed(service, at_ns)`` looks at the latest budget record
    at or before ``at_ns`` of each SLO of the service.  Given ``audit`` (a
    :class:`~srestream.slo.GovernanceStore`), every decision is appended to
    its audit trail, ``actor`` naming who asked.
    """

    def __init__(self, slos: SLOSet, budgets: Iterable[Budget], *, audit: GateAudit | None = None,
                 actor: str = "") -> None:
        self.slos = slos
        self.audit = audit
        self.actor = actor
        self._history: dict[tuple[str, str], tuple[list[int], list[Budget]]] = {}
        for b in sorted(budgets, key=lambda b: b.ts_ns):
            ts, recs = self._history.setdefault((b.slo, b.service), ([], []))
            ts.append(b.ts_ns)
            recs.append(b)

    def latest(self, slo: SLOSpec, at_ns: int) -> Budget | None:
        h = self._history.get((slo.name, slo.service))
        if h is None:
            return None
        i = bisect.bisect_right(h[0], at_ns)
        return h[1][i - 1] if i else None

    def deployment_allowed(self, service: str, at_ns: int) -> GateDecision:
        decision = self._decide(service, at_ns)
        if self.audit is not None:
            self.audit.record_gate_decision(decision, actor=self.actor)
        return decision

    def _decide(self, service: str, at_ns: int) -> GateDecision:
        specs = self.slos.for_service(service)
        if not specs:
            return GateDecision(
                service=service, at_ns=at_ns, allowed=True,
                reasons=[f"no SLO is defined for service {service!r}: nothing to protect"],
            )
        allowed = True
        reasons: list[str] = []
        actions: list[str] = []
        for spec in specs:
            b = self.latest(spec, at_ns)
            if b is None:
                reasons.append(f"{spec.name}: no budget data at or before this time (allowed)")
                continue
            pct = b.budget_remaining * 100.0
            fired = triggered_rules(self.slos.policy_for(spec), b.budget_remaining)
            for r in fired:
                if r.action not in actions:
                    actions.append(r.action)
            freezes = [r for r in fired if r.action == "freeze"]
            if freezes:
                allowed = False
                r = freezes[0]
                why = f" ({r.note})" if r.note else ""
                reasons.append(
                    f"{spec.name}: {pct:.1f}% of the error budget remains, at or below the "
                    f"freeze threshold {r.remaining_at_most:g}%{why}: deployments are frozen"
                )
            else:
                others = ", ".join(r.action for r in fired)
                reasons.append(
                    f"{spec.name}: {pct:.1f}% of the error budget remains"
                    + (f" (policy: {others})" if others else "")
                )
        return GateDecision(service=service, at_ns=at_ns, allowed=allowed, reasons=reasons, actions=actions)


_budget_decoder = msgspec.json.Decoder(Budget)


def load_budgets(path: str) -> list[Budget]:
    """Budget records from a ``budgets.jsonl`` file or an output directory
    holding one."""
    p = os.path.join(path, "budgets.jsonl") if os.path.isdir(path) else path
    out: list[Budget] = []
    problems: list[Problem] = []
    try:
        with open(p, "rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    out.append(_budget_decoder.decode(line))
                except msgspec.DecodeError as exc:
                    problems.append(Problem(f"line {n}", f"not a budget record: {exc}", p))
    except OSError as exc:
        raise ConfigError([Problem("$", f"cannot read budgets: {exc.strerror}", p)]) from exc
    if problems:
        raise ConfigError(problems)
    return out


_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS


def _ledger_sums(db: Any, slo: str, service: str, start: int, end: int) -> tuple[int, int]:
    """(good, total) of one SLO over [start, end) from the budget ledger's
    tables: whole days from ``sli_rollup_day``, whole hours from
    ``sli_rollup_hour``, the recent ragged minutes from
    ``sli_rollup_minute``.  The start is rounded down to its hour (minute
    rows that old may be compacted): at most one hour more than the period."""
    start -= start % _HOUR_NS
    end_hour = end - end % _HOUR_NS
    day0 = -(-start // _DAY_NS) * _DAY_NS
    day1 = end_hour - end_hour % _DAY_NS
    parts: list[tuple[str, int, int]] = []
    if day0 < day1:
        parts += [("hour", start, day0), ("day", day0, day1), ("hour", day1, end_hour)]
    else:
        parts.append(("hour", start, end_hour))
    parts.append(("minute", max(start, end_hour), end))
    good = total = 0
    for table, a, b in parts:
        if a >= b:
            continue
        row = db.execute(
            f"SELECT COALESCE(SUM(good), 0), COALESCE(SUM(total), 0) FROM sli_rollup_{table} "
            "WHERE slo = ? AND service = ? AND bucket_ts_ns >= ? AND bucket_ts_ns < ?",
            (slo, service, a, b),
        ).fetchone()
        good += int(row[0])
        total += int(row[1])
    return good, total


def budgets_from_ledger(path: str, slos: SLOSet, at_ns: int) -> list[Budget]:
    """The budget of every SLO at ``at_ns`` computed from the rollups kept in
    the budget ledger (an SQLite file written by the ``budget_ledger`` sink)."""
    import sqlite3

    from ._budget import consumed_ratio, period_bounds

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            out = []
            for spec in slos.slos:
                p = spec.parsed_period()
                start, _ = period_bounds(at_ns, rolling=p.rolling, length_ns=p.length_ns,
                                         unit=p.unit, time_zone=p.time_zone)
                good, total = _ledger_sums(db, spec.name, spec.service, start, at_ns)
                if total == 0:
                    continue
                consumed = consumed_ratio(good, total, spec.objective_ratio)
                out.append(Budget(
                    ts_ns=at_ns, slo=spec.name, service=spec.service, objective=spec.objective,
                    period=p.text, good=good, total=total, budget_remaining=1.0 - consumed,
                    burn_rate_1h=0.0, budget_consumed=consumed, period_start_ts_ns=start,
                    team=spec.labels.team, slo_tier=spec.labels.tier, component=spec.labels.component,
                    sli=spec.sli.kind,
                ))
            return out
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise ConfigError([Problem("$", f"cannot read the budget ledger: {exc}", path)]) from exc


class PolicyTracker:
    """Running logic of the ``budget_policy`` stage: emits a
    :class:`PolicyAction` each time a rule starts or stops applying."""

    def __init__(self, slos: SLOSet) -> None:
        self.slos = slos
        self.specs = {(s.name, s.service): s for s in slos.slos}
        self.active: dict[str, list[int]] = {}
        """"slo\\x1fservice" -> indexes of the rules currently triggered."""

    def process(self, batch: Sequence[Any]) -> list[PolicyAction]:
        out: list[PolicyAction] = []
        for b in batch:
            if type(b) is not Budget:
                continue
            spec = self.specs.get((b.slo, b.service))
            if spec is None:
                continue
            rules = self.slos.policy_for(spec)
            key = f"{b.slo}\x1f{b.service}"
            before = set(self.active.get(key, ()))
            now = {i for i, r in enumerate(rules) if b.budget_remaining * 100.0 <= r.remaining_at_most}
            for i in sorted(now - before):
                out.append(self._action(b, rules[i], "triggered"))
            for i in sorted(before - now):
                out.append(self._action(b, rules[i], "cleared"))
            self.active[key] = sorted(now)
        return out

    @staticmethod
    def _action(b: Budget, r: PolicyRule, state: str) -> PolicyAction:
        return PolicyAction(
            ts_ns=b.ts_ns, slo=b.slo, service=b.service, action=r.action, state=state,
            remaining_at_most=r.remaining_at_most, budget_remaining=b.budget_remaining, note=r.note,
        )

    async def __call__(
        self, batches: AsyncIterator[Sequence[Any]], /
    ) -> AsyncGenerator[list[PolicyAction], None]:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                yield self.process(batch)

    def snapshot(self) -> dict[str, list[int]]:
        return dict(self.active)

    def restore(self, state: dict[str, list[int]]) -> None:
        self.active = {str(k): [int(i) for i in v] for k, v in state.items()}


async def budget_policy_actions(
    batches: AsyncIterator[Sequence[Any]], /, *, slos: SLOSet
) -> AsyncIterator[list[PolicyAction]]:
    """Budget records in, policy actions (notify, ticket, freeze) out."""
    async with aclosing(PolicyTracker(slos)(batches)) as gen:
        async for out in gen:
            yield out
