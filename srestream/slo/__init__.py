"""srestream.slo: SLO specs (and OpenSLO/Sloth importers), event-time SLI
windows, error budgets, multi-window multi-burn-rate alerts, forecasts,
budget policies, the budget ledger, compliance reports, Prometheus rules and
Grafana dashboards; SLO discovery from traces."""

from ._alerting import (
    AlertWindow,
    burn_rate_factor,
    dedup_key,
    default_alert_windows,
    detection_time_ns,
)
from ._backtest import (
    BacktestHistory,
    BacktestPage,
    BacktestReport,
    BacktestScore,
    BacktestVariant,
    BacktestVariantResult,
    backtest,
    objective_variant,
    replay_history,
    score_variant,
)
from ._backtest_render import render_backtest_json, render_backtest_markdown
from ._burn import BurnRateDetector, SloState, burn_rate_alerts
from ._dashboards import build_dashboards, render_dashboard, write_dashboards
from ._discovery import (
    Discovery,
    Journey,
    Refusal,
    SloProposal,
    discover_slos,
    find_journeys,
    read_trace_files,
)
from ._forecast import Forecast, forecast_exhaustion
from ._ground_truth import GroundTruth, TruthIncident, load_ground_truth, parse_ground_truth
from ._importers import ImportedSLO, import_documents, import_openslo, import_sloth, load_slo_file
from ._ledger import BudgetLedger, BudgetLedgerSink
from ._policy import (
    BudgetGate,
    GateDecision,
    PolicyAction,
    PolicyTracker,
    budget_policy_actions,
    load_budgets,
    triggered_rules,
)
from ._promql_sli import StreamingRefusal, streaming_slo, streaming_slo_set
from ._records import Alert, AlertState, Budget, SliRollup
from ._report import ComplianceReport, build_report, load_report_slos, render_json, render_markdown
from ._rules import build_rule_groups, render_rules
from ._spec import (
    AlertingSpec,
    AlertWindowSpec,
    Period,
    PolicyRule,
    SLILabels,
    SLISpec,
    SLOSet,
    SLOSpec,
    alert_windows,
    load_slos,
    parse_period,
    parse_slos,
    validate_slos,
)
from ._status import SloStatusWriter, slo_status_metrics
from ._windows import SliWindows, sli_windows

__all__ = [
    "Alert",
    "AlertState",
    "AlertWindow",
    "AlertWindowSpec",
    "AlertingSpec",
    "BacktestHistory",
    "BacktestPage",
    "BacktestReport",
    "BacktestScore",
    "BacktestVariant",
    "BacktestVariantResult",
    "Budget",
    "BudgetGate",
    "BudgetLedger",
    "BudgetLedgerSink",
    "BurnRateDetector",
    "ComplianceReport",
    "Discovery",
    "Forecast",
    "GateDecision",
    "GroundTruth",
    "ImportedSLO",
    "Journey",
    "Period",
    "PolicyAction",
    "PolicyRule",
    "PolicyTracker",
    "Refusal",
    "SLILabels",
    "SLISpec",
    "SLOSet",
    "SLOSpec",
    "SliRollup",
    "SliWindows",
    "SloProposal",
    "SloState",
    "SloStatusWriter",
    "StreamingRefusal",
    "TruthIncident",
    "alert_windows",
    "backtest",
    "budget_policy_actions",
    "build_dashboards",
    "build_report",
    "build_rule_groups",
    "burn_rate_alerts",
    "burn_rate_factor",
    "dedup_key",
    "default_alert_windows",
    "detection_time_ns",
    "discover_slos",
    "find_journeys",
    "forecast_exhaustion",
    "import_documents",
    "import_openslo",
    "import_sloth",
    "load_budgets",
    "load_ground_truth",
    "load_report_slos",
    "load_slo_file",
    "load_slos",
    "objective_variant",
    "parse_ground_truth",
    "parse_period",
    "parse_slos",
    "read_trace_files",
    "render_backtest_json",
    "render_backtest_markdown",
    "render_dashboard",
    "render_json",
    "render_markdown",
    "render_rules",
    "replay_history",
    "score_variant",
    "sli_windows",
    "slo_status_metrics",
    "streaming_slo",
    "streaming_slo_set",
    "triggered_rules",
    "validate_slos",
    "write_dashboards",
]
