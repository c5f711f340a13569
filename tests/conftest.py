from __future__ import annotations

import os
import pathlib

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


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PYTHONHASHSEED", "0")
