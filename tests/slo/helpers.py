"""Traffic generators and runners shared by the SLO tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from srestream import LogRecord
from srestream.slo import SLOSet, parse_slos
from srestream.slo._burn import BurnRateDetector
from srestream.slo._windows import SliWindows
from srestream.testing import ListSource

S = 1_000_000_000
MIN = 60 * S
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_700_006_400 * S  # 2023-11-15T00:00:00Z, a whole day


def slo_set(*slos: dict[str, Any]) -> SLOSet:
    return parse_slos({"slos": list(slos)})


def availability(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "availability", "service": "checkout", "objective": 99.9, "period": "30d",
        "sli": {"kind": "availability", "total": {}, "good": {"status": {"lt": 500}}},
    }
    base.update(over)
    return base


def traffic(
    start_ns: int,
    seconds: int,
    *,
    service: str = "checkout",
    per_second: int = 1,
    failing: Callable[[int], bool] = lambda ts: False,
    latency_ns: int | None = None,
) -> list[LogRecord]:
    """``per_second`` requests each second from ``start_ns``; status 500 when
    ``failing(ts)``."""
    out = []
    step = S // per_second
    for i in range(seconds * per_second):
        ts = start_ns + i * step
        out.append(
            LogRecord(ts_ns=ts, service=service, status=500 if failing(ts) else 200,
                      latency_ns=latency_ns)
        )
    return out


async def run_engine(
    slos: SLOSet,
    records: Sequence[Any],
    *,
    batch_size: int = 1024,
    resolution_ns: int = MIN,
    allowed_lateness_ns: int = 0,
    budget_interval_ns: int = HOUR,
) -> tuple[list[Any], SliWindows, BurnRateDetector]:
    """windows -> burn rate over ``records``; everything the burn stage yielded."""
    win = SliWindows(slos, resolution_ns=resolution_ns, allowed_lateness_ns=allowed_lateness_ns)
    burn = BurnRateDetector(slos, resolution_ns=resolution_ns, budget_interval_ns=budget_interval_ns)
    src = ListSource(records, batch_size=batch_size)
    out: list[Any] = []
    async for batch in burn(win(src())):
        out.extend(batch)
    return out, win, burn
