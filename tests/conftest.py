from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

DATA = pathlib.Path(__file__).parent / "data"
ROOT = pathlib.Path(__file__).parent.parent


@pytest.fixture
def data_dir() -> pathlib.Path:
    return DATA


@pytest.fixture
def root_dir() -> pathlib.Path:
    return ROOT


@pytest.fixture(params=[1, 7, 1024], ids=lambda n: f"batch{n}")
def batch_size(request: pytest.FixtureRequest) -> int:
    """Every behaviour test that takes this runs at three batch sizes."""
    return int(request.param)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def loopback_port() -> int:
    """A port nothing listens on (free on 127.0.0.1 when asked)."""
    return free_port()


@contextlib.contextmanager
def _running_prometheus(tmp: pathlib.Path, openmetrics: str) -> Iterator[str]:
    """A real Prometheus on a free loopback port over ``openmetrics``
    backfilled by promtool; yields its base URL, stops it after."""
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not installed: run tests/install-servers.sh")
    (tmp / "data.om").write_text(openmetrics)
    (tmp / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics",
                    str(tmp / "data.om"), str(tmp / "tsdb")],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115  (closed after the server)
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=100y"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {(tmp / 'prometheus.log').read_text()[-2000:]}")
            try:
                if httpx.get(url + "/-/ready", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("prometheus not ready within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture(scope="session")
def start_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], contextlib.AbstractContextManager[str]]:
    """``with start_prometheus(openmetrics_text) as url:`` a real Prometheus
    (Debian package ``prometheus``) serving that data, on a free port."""

    def start(openmetrics: str) -> contextlib.AbstractContextManager[str]:
        return _running_prometheus(tmp_path_factory.mktemp("prometheus"), openmetrics)

    return start


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PYTHONHASHSEED", "0")
