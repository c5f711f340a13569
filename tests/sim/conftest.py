from __future__ import annotations

import json
import pathlib
from typing import Any

import msgspec
import pytest

from srestream.sim import load_scenario, simulate

ROOT = pathlib.Path(__file__).parent.parent.parent
SCENARIOS = ROOT / "pipelines" / "scenarios"


class Generated:
    """A scenario written to a directory, with its files decoded on demand."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.truth: dict[str, Any] = json.loads((path / "truth.json").read_text())
        self._logs: list[dict[str, Any]] | None = None

    @property
    def logs(self) -> list[dict[str, Any]]:
        if self._logs is None:
            dec = msgspec.json.Decoder()
            with open(self.path / "logs.jsonl", "rb") as f:
                self._logs = [dec.decode(line) for line in f]
        return self._logs

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in (self.path / "events.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def all_faults(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """pipelines/scenarios/all-faults.yaml in every format."""
    out = tmp_path_factory.mktemp("all-faults")
    # logfmt and syslog are checked on the small scenario.
    simulate(
        load_scenario(SCENARIOS / "all-faults.yaml"), out, formats=["jsonl", "otlp", "openmetrics"]
    )
    return Generated(out)


@pytest.fixture(scope="session")
def all_faults_logs(all_faults: Generated) -> list[dict[str, Any]]:
    """all-faults' log lines, decoded, with ``ts_ns``."""
    from srestream.parse import parse_timestamp

    return [{**r, "ts_ns": parse_timestamp(r["ts"])} for r in all_faults.logs]


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """pipelines/scenarios/small.yaml in every format."""
    out = tmp_path_factory.mktemp("small")
    simulate(load_scenario(SCENARIOS / "small.yaml"), out)
    return Generated(out)
