"""The burn-rate detector stage: SLI rollups in, alerts and budgets out.

One :class:`~srestream.slo._slo_state.SloState` per (SLO, service) keeps
the alert windows, the budget over the period, the alert states and the
forecast (see that module for how, and for the memory figures).  The stage
routes each closed-bucket rollup to its key; everything is evaluated in
event time, so a replay gives the same alerts at any speed and batch size.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from .._component import Outputs
from ._alerting import HOUR_NS, MINUTE_NS
from ._policy import BudgetGate, GateDecision
from ._records import Budget, SliRollup
from ._slo_state import SloState
from ._spec import SLOSet

__all__ = ["BurnRateDetector", "SloState", "burn_rate_alerts"]


class BurnRateDetector:
    """The running logic of the burn-rate stage: one :class:`SloState` per
    (SLO, service) of the SLO set."""

    def __init__(
        self,
        slos: SLOSet,
        *,
        resolution_ns: int = MINUTE_NS,
        budget_interval_ns: int = HOUR_NS,
        forecast_step_ns: int = 5 * MINUTE_NS,
        outputs: Outputs | None = None,
    ) -> None:
        self.slos = slos
        self.outputs = outputs if outputs is not None else Outputs("burn_rate")
        self.states: dict[tuple[str, str], SloState] = {
            (s.name, s.service): SloState(
                s,
                resolution_ns=resolution_ns,
                budget_interval_ns=budget_interval_ns,
                forecast_step_ns=forecast_step_ns,
            )
            for s in slos.slos
        }
        self.unknown_rollups = 0
        self.resolution_ns = resolution_ns

    def process(self, batch: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        states = self.states
        res = self.resolution_ns
        for r in batch:
            if type(r) is not SliRollup:
                continue
            st = states.get((r.slo, r.service))
            if st is None:
                self.unknown_rollups += 1
                continue
            if r.bucket_ts_ns % res or r.resolution_ns % res or r.resolution_ns <= 0:
                self.outputs.deadletter(
                    repr(r), "sli_rollup", 0,
                    f"rollup of {r.resolution_ns} ns at {r.bucket_ts_ns} does not align with the "
                    f"burn_rate resolution of {res} ns (give both stages the same resolution)",
                )
                continue
            st.add(r, out)
        return out

    def flush(self) -> list[Any]:
        """End of input: a final budget record per key that saw data."""
        return [st.budget_record(st.now_ns) for st in self.states.values() if st.next_bucket is not None]

    def budgets(self) -> list[Budget]:
        """The current budget of every key (for status metrics and the gate)."""
        return self.flush()

    def deployment_allowed(self, service: str, at_ns: int | None = None) -> GateDecision:
        """Whether ``service`` may deploy, from the live budgets of this
        stage (at its current event time unless ``at_ns`` is given)."""
        now = max((st.now_ns for st in self.states.values()), default=0)
        return BudgetGate(self.slos, self.budgets()).deployment_allowed(
            service, now if at_ns is None else at_ns
        )

    async def __call__(
        self, batches: AsyncIterator[Sequence[Any]], /
    ) -> AsyncGenerator[list[Any], None]:
        async with aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                yield self.process(batch)
        yield self.flush()

    def snapshot(self) -> dict[str, Any]:
        return {f"{k[0]}\x1f{k[1]}": st.snapshot() for k, st in self.states.items()}

    def restore(self, state: dict[str, Any]) -> None:
        for k, st in self.states.items():
            s = state.get(f"{k[0]}\x1f{k[1]}")
            if s is not None:
                st.restore(s)


async def burn_rate_alerts(
    batches: AsyncIterator[Sequence[Any]],
    /,
    *,
    slos: SLOSet,
    resolution_ns: int = MINUTE_NS,
    budget_interval_ns: int = HOUR_NS,
    forecast_step_ns: int = 5 * MINUTE_NS,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[Any]]:
    """Evaluate multi-window multi-burn-rate alerts and error budgets over
    SLI rollups; yield :class:`Alert` and :class:`Budget` records."""
    logic = BurnRateDetector(
        slos,
        resolution_ns=resolution_ns,
        budget_interval_ns=budget_interval_ns,
        forecast_step_ns=forecast_step_ns,
        outputs=outputs,
    )
    async with aclosing(logic(batches)) as gen:
        async for out in gen:
            yield out
