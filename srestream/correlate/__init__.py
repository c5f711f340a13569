"""Trace correlation, root-cause ranking, anomaly detection, leading
indicators and log-to-metric correlation (SPEC §3.3, §3.4)."""

from __future__ import annotations

from ._anomaly import AnomalyDetector, detect_anomalies
from ._changepoint import Cusum, ErrorRateCusum, SeasonalBaseline
from ._components import AnomalyDetectorStage, RootCauseStage, TraceCorrelatorStage
from ._correlator import CORRELATIONS, REQUEST_ID_ATTRS, TraceCorrelator, correlate_traces
from ._graph import DependencyGraph, downstream_of
from ._leading import (
    breaches_from,
    lead_time_summary,
    leading_indicators,
    replay_leading_indicators,
)
from ._rca import WEIGHTS, EvidenceMemo, error_onsets, rank_root_causes
from ._records import (
    Anomaly,
    AnomalyType,
    CallNode,
    CallTreeRecord,
    CandidateEvidence,
    DependencyEdge,
    LeadingIndicator,
    Link,
    LinkMethod,
    RootCauseRanking,
    ServiceStats,
    SliCorrelation,
    TraceSummary,
)
from ._root_cause import RootCauseAnalyzer, rank_alert_causes
from ._sli_correlation import (
    bucket_series,
    correlate_with_sli,
    error_ratio_series,
    pearson,
    rank_sli_correlates,
    spearman,
)
from ._tree import CallTree

__all__ = [
    "CORRELATIONS",
    "REQUEST_ID_ATTRS",
    "WEIGHTS",
    "Anomaly",
    "AnomalyDetector",
    "AnomalyDetectorStage",
    "AnomalyType",
    "CallNode",
    "CallTree",
    "CallTreeRecord",
    "CandidateEvidence",
    "Cusum",
    "DependencyEdge",
    "DependencyGraph",
    "ErrorRateCusum",
    "EvidenceMemo",
    "LeadingIndicator",
    "Link",
    "LinkMethod",
    "RootCauseAnalyzer",
    "RootCauseRanking",
    "RootCauseStage",
    "SeasonalBaseline",
    "ServiceStats",
    "SliCorrelation",
    "TraceCorrelator",
    "TraceCorrelatorStage",
    "TraceSummary",
    "breaches_from",
    "bucket_series",
    "correlate_traces",
    "correlate_with_sli",
    "detect_anomalies",
    "downstream_of",
    "error_onsets",
    "error_ratio_series",
    "lead_time_summary",
    "leading_indicators",
    "pearson",
    "rank_alert_causes",
    "rank_root_causes",
    "rank_sli_correlates",
    "replay_leading_indicators",
    "spearman",
]
