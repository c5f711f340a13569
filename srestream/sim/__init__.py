"""srestream.sim: seeded scenario simulator with ground truth.

A scenario file (YAML) describes a service graph, diurnal traffic, SLOs and
injected faults; :func:`simulate` writes logs (JSONL, logfmt, syslog),
OTLP JSON traces, OpenMetrics, ``events.jsonl`` and ``truth.json``.  The
same seed gives the same bytes.
"""

from ._graph import ServiceGraph, SimService, build_graph
from ._scenario import (
    BadDeploy,
    DataGap,
    DependencyOutage,
    LatencyRegression,
    Scenario,
    SlowBurn,
    load_scenario,
    parse_scenario,
    scenario_from_dict,
)
from ._simulate import SimResult, simulate
from ._source import SimSource

__all__ = [
    "BadDeploy",
    "DataGap",
    "DependencyOutage",
    "LatencyRegression",
    "Scenario",
    "ServiceGraph",
    "SimResult",
    "SimService",
    "SimSource",
    "SlowBurn",
    "build_graph",
    "load_scenario",
    "parse_scenario",
    "scenario_from_dict",
    "simulate",
]
