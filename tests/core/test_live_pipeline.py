"""The shipped pipeline files: every one validates cleanly, and
``pipelines/live.yaml`` runs as a long-lived process — a real tail of a
real file that grows, a real HTTP push, a stop with SIGINT and a resumed
run — giving the alerts of the recorded incident once each."""

from __future__ import annotations

import json
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

ROOT = pathlib.Path(__file__).parent.parent.parent
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
RECORDED = (ROOT / "tests" / "data" / "scenario_small" / "logs.jsonl").read_text().splitlines(True)


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_shipped_pipeline_validates_without_a_problem(path: pathlib.Path) -> None:
    r = subprocess.run([sys.executable, "-m", "srestream", "validate", str(path)],
                       check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def _wait(pred: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _alerts(out: pathlib.Path) -> list[dict[str, object]]:
    path = out / "alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def _append(log: pathlib.Path, lines: list[str]) -> None:
    with open(log, "a") as f:
        for i in range(0, len(lines), 400):  # as a service writes: in pieces
            f.writelines(lines[i : i + 400])
            f.flush()
            time.sleep(0.02)


def test_live_pipeline_tails_takes_pushes_stops_and_resumes(
    tmp_path: pathlib.Path, loopback_port: int
) -> None:
    # The pipeline as shipped, with only its HTTP port changed (a free one).
    (tmp_path / "pipelines" / "live").mkdir(parents=True)
    port = loopback_port
    text = (ROOT / "pipelines" / "live.yaml").read_text()
    assert "port: 9467" in text
    (tmp_path / "pipelines" / "live.yaml").write_text(text.replace("port: 9467", f"port: {port}"))
    shutil.copy(ROOT / "pipelines" / "live" / "slos.yaml", tmp_path / "pipelines" / "live")
    out = tmp_path / "out" / "live"
    (out / "logs").mkdir(parents=True)
    log = out / "logs" / "app.log"
    log.touch()
    half = len(RECORDED) // 2
    outage_start = "2026-01-05T08:50"  # orders-db fails (tests/data/scenario_small/README.md)

    def run(lines: list[str], push: bool) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "srestream", "run", str(tmp_path / "pipelines" / "live.yaml")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            _wait(lambda: _listening(port) or proc.poll() is not None, "the HTTP receiver listens")
            assert proc.poll() is None, proc.communicate()[0]
            _append(log, lines)
            if push:
                r = httpx.post(f"http://127.0.0.1:{port}/deploy", timeout=10, trust_env=False,
                               json={"service": "checkout", "version": "v42",
                                     "ts": "2026-01-05T08:45:00Z"})
                assert r.status_code == 200 and r.json() == {"status": "ok", "events": 1}
            n = len(_alerts(out))
            _wait(lambda: len(_alerts(out)) > n, "new alerts from the appended lines")
            time.sleep(1.0)  # let the tail catch up with what is left
        finally:
            proc.send_signal(signal.SIGINT)
            text_out = proc.communicate(timeout=30)[0]
        assert proc.returncode == 130, text_out  # stopped by SIGINT, gracefully (128 + 2)
        assert "checkpointed" in text_out
        return text_out

    run(RECORDED[:half], push=True)
    first = _alerts(out)
    pages = [a for a in first if a["tier"] == "page" and a["state"] == "firing"]
    assert any(a["service"] == "orders-db" and str(a["ts"]) >= outage_start for a in pages)
    status = (out / "slo_status.prom").read_text()
    assert 'srestream_slo_error_budget_remaining_ratio{service="orders-db"' in status

    # Stopped; the service keeps logging; the next run resumes where the first stopped.
    _append(log, RECORDED[half : half + 200])
    run(RECORDED[half + 200 :], push=False)
    alerts = _alerts(out)
    assert alerts[: len(first)] == first  # the first run's output is kept as it was
    keys = [(a["dedup_key"], a["state"], a["ts_ns"]) for a in alerts]
    assert len(keys) == len(set(keys))  # nothing twice across the restart
    resolved = {a["dedup_key"] for a in alerts if a["state"] == "resolved"}
    assert any(a["dedup_key"] in resolved for a in pages)  # the outage ended in the second run
    budgets = [json.loads(x) for x in (out / "budgets.jsonl").read_text().splitlines()]
    assert {b["service"] for b in budgets} >= {"web", "checkout", "orders-db"}
