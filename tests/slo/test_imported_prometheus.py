"""A Sloth spec evaluated live from a real Prometheus (Debian package): the
``prometheus`` source reads the raw counters backfilled with promtool, and
``sli_windows``/``burn_rate`` built from the Sloth file count them exactly as
they count the same samples handed over directly."""

from __future__ import annotations

import pathlib
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from srestream import MetricSample, Runner, pipeline_from_dict
from srestream.slo import Alert, SliRollup, load_slos
from srestream.testing import CaptureSink

from .test_imported_stream import SLOTH, evaluate

pytestmark = pytest.mark.integration

T0 = 1_769_904_000  # 2026-02-01T00:00:00Z, seconds
NS = 1_000_000_000
SCRAPE_S = 15
MINUTES = 150
OUTAGE_S = T0 + 120 * 60


def counters(seed: int = 3) -> dict[tuple[str, str, str], list[tuple[int, int]]]:
    """(job, instance, code) -> [(ts seconds, value)]: checkout's two
    instances, a search job on the same metric; checkout's instance b
    restarts at 1h (its counters start again from 0); every checkout request
    fails (500) from 2h on."""
    rnd = random.Random(seed)
    series = [("checkout", i, c) for i in ("a", "b") for c in ("200", "404", "429", "500")]
    series.append(("search", "a", "500"))
    out: dict[tuple[str, str, str], list[tuple[int, int]]] = {s: [] for s in series}
    value = {s: rnd.randrange(100, 900) for s in series}
    for k in range(MINUTES * 60 // SCRAPE_S + 1):
        ts = T0 + k * SCRAPE_S
        for s in series:
            job, inst, code = s
            if k:
                if job == "search":
                    inc = 7
                elif ts > OUTAGE_S:
                    inc = rnd.randint(30, 60) if code == "500" else 0
                elif code in ("200", "404"):
                    inc = rnd.randint(15, 30)
                else:
                    inc = 1 if ts <= T0 + 3600 and rnd.random() < 0.03 else 0
                if inst == "b" and ts - SCRAPE_S < T0 + 3600 <= ts:
                    value[s] = 0
                value[s] += inc
            out[s].append((ts, value[s]))
    return out


def openmetrics(data: dict[tuple[str, str, str], list[tuple[int, int]]]) -> str:
    lines = ["# HELP http_requests Requests served.", "# TYPE http_requests counter"]
    for (job, inst, code), points in data.items():
        lines += [f'http_requests_total{{job="{job}",instance="{inst}",code="{code}"}} {v} {ts}'
                  for ts, v in points]
    return "\n".join([*lines, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prometheus(start_prometheus: Callable[[str], AbstractContextManager[str]]) -> Iterator[str]:
    with start_prometheus(openmetrics(counters())) as url:
        yield url


async def test_sloth_spec_evaluated_from_prometheus(prometheus: str, tmp_path: pathlib.Path) -> None:
    (tmp_path / "sloth.yaml").write_text(SLOTH)
    pipeline = pipeline_from_dict({
        "name": "sloth_live",
        "sources": {"prom": {
            "type": "prometheus", "url": prometheus, "step": f"{SCRAPE_S}s",
            "start": "2026-02-01T00:00:00Z", "end": "2026-02-01T02:30:00Z",
            # The raw counters: their series carry job/instance/code, no service label.
            "queries": [{"query": 'http_requests_total{job=~"checkout|search"}'}],
        }},
        "stages": {
            "windows": {"type": "sli_windows", "inputs": ["prom"], "slos": "sloth.yaml"},
            "burn_rate": {"type": "burn_rate", "inputs": ["windows"], "slos": "sloth.yaml"},
        },
        "sinks": {"out": {"type": "capture", "inputs": ["burn_rate"]},
                  "ledger": {"type": "capture", "inputs": ["windows.rollups"]}},
    }, path=str(tmp_path / "pipeline.yaml"))
    out, ledger = CaptureSink(), CaptureSink()
    await Runner(pipeline, bindings={"out": out, "ledger": ledger}).run()

    # The same samples handed over directly (what was backfilled).
    data = counters()
    samples = sorted(
        (MetricSample(name="http_requests_total", ts_ns=ts * NS, value=float(v),
                      labels={"code": code, "instance": inst, "job": job})
         for (job, inst, code), points in data.items() for ts, v in points),
        key=lambda s: s.ts_ns)
    want_rollups, want = await evaluate(load_slos(tmp_path / "sloth.yaml"), samples, 1024)
    rollups = [r for r in ledger.records if isinstance(r, SliRollup)]
    assert rollups == want_rollups
    assert out.records == want

    requests = sum(pts[-1][1] - pts[0][1] for (job, inst, _), pts in data.items() if job == "checkout")
    requests += sum(  # instance b restarted at 1h: its counters before the reset
        max(v for ts, v in pts if ts < T0 + 3600)
        for (job, inst, _), pts in data.items() if (job, inst) == ("checkout", "b"))
    assert sum(r.total for r in rollups) == requests
    pages: list[Any] = [a for a in out.records if isinstance(a, Alert) and a.state == "firing"
                        and a.tier == "page" and a.long_window_ns == 3600 * NS]
    assert pages and pages[0].ts_ns == OUTAGE_S * NS + 2 * 60 * NS  # 105 s of counted outage > 51.84 s
