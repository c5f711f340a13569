"""srestream.correlate re-exports every public name of its private modules."""

from __future__ import annotations

import importlib
import pkgutil

from srestream import correlate


def test_all_is_complete_and_importable() -> None:
    exported = set(correlate.__all__)
    for info in pkgutil.iter_modules(correlate.__path__):
        module = importlib.import_module(f"srestream.correlate.{info.name}")
        missing = set(getattr(module, "__all__", ())) - exported
        assert not missing, f"{info.name} exports {sorted(missing)} not in srestream.correlate"
    for name in exported:
        assert getattr(correlate, name) is not None
    assert len(exported) == len(correlate.__all__), "a name is listed twice"


def test_stages_are_registered_with_a_summary() -> None:
    from srestream._registry import components

    found = components()
    for kind in ("trace_correlator", "root_cause", "anomaly_detector"):
        assert found[kind].kind == "stage" and found[kind].summary
