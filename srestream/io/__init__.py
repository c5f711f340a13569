"""Sources and sinks: recorded files (replay), followed files (tail), OTLP
JSON files, Prometheus query_range, an HTTP push receiver, stdin/stdout and
output directories."""

from ._directory import DirectorySink, DirectoryWriter
from ._files import FileReplay, ReplaySource
from ._http import HttpReceiver, HttpReceiverSource
from ._otlp import OtlpFileReader, OtlpFileSource
from ._prometheus import (
    PrometheusQuery,
    PrometheusQueryError,
    PrometheusQueryRange,
    PrometheusSource,
)
from ._std import StdinSource, StdoutSink
from ._tail import FileTail, TailSource

__all__ = [
    "DirectorySink",
    "DirectoryWriter",
    "FileReplay",
    "FileTail",
    "HttpReceiver",
    "HttpReceiverSource",
    "OtlpFileReader",
    "OtlpFileSource",
    "PrometheusQuery",
    "PrometheusQueryError",
    "PrometheusQueryRange",
    "PrometheusSource",
    "ReplaySource",
    "StdinSource",
    "StdoutSink",
    "TailSource",
]
