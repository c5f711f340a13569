"""srestream: logs, traces and metrics in; SLO status, error budgets,
burn-rate alerts, on-call routing and incident timelines out.

Stages are async generator functions over batches, usable alone::

    async for batch in parse_json(source()):
        ...

or declared in a pipeline file and run by :class:`Runner`.
"""

from ._component import (
    Batch,
    BuildContext,
    Clock,
    Outputs,
    SinkConfig,
    SourceConfig,
    StageConfig,
    SystemClock,
)
from ._duration import Duration
from ._errors import (
    ConfigError,
    GraphError,
    Problem,
    SinkError,
    SrestreamError,
    StageError,
    StoreError,
)
from ._lift import filter_records, map_batches, map_records, passthrough
from ._output import encode_lines, rfc3339_ms, to_output
from ._pipeline import Pipeline, RuntimeConfig, load_pipeline, parse_pipeline, pipeline_from_dict
from ._records import DeadLetter, Event, Level, LogRecord, MetricSample, RawLine, Record, Span
from ._registry import ComponentInfo, components, register
from ._runner import Runner, RunnerStatistics, RunSummary, StageStatistics, run_pipeline
from ._store import Checkpoint, SQLiteStore, Store, open_store
from .parse import parse_json, parse_timestamp

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "BuildContext",
    "Checkpoint",
    "Clock",
    "ComponentInfo",
    "ConfigError",
    "DeadLetter",
    "Duration",
    "Event",
    "GraphError",
    "Level",
    "LogRecord",
    "MetricSample",
    "Outputs",
    "Pipeline",
    "Problem",
    "RawLine",
    "Record",
    "RunSummary",
    "Runner",
    "RunnerStatistics",
    "RuntimeConfig",
    "SQLiteStore",
    "SinkConfig",
    "SinkError",
    "SourceConfig",
    "Span",
    "SrestreamError",
    "StageConfig",
    "StageError",
    "StageStatistics",
    "Store",
    "StoreError",
    "SystemClock",
    "components",
    "encode_lines",
    "filter_records",
    "load_pipeline",
    "map_batches",
    "map_records",
    "open_store",
    "parse_json",
    "parse_pipeline",
    "parse_timestamp",
    "passthrough",
    "pipeline_from_dict",
    "register",
    "rfc3339_ms",
    "run_pipeline",
    "to_output",
]
