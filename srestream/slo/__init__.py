"""srestream.slo: SLO specs, event-time SLI windows, error budgets,
multi-window multi-burn-rate alerts, forecasts and budget policies."""

from ._alerting import (
    AlertWindow,
    burn_rate_factor,
    dedup_key,
    default_alert_windows,
    detection_time_ns,
)
from ._burn import BurnRateDetector, SloState, burn_rate_alerts
from ._forecast import Forecast, forecast_exhaustion
from ._policy import (
    BudgetGate,
    GateDecision,
    PolicyAction,
    PolicyTracker,
    budget_policy_actions,
    load_budgets,
    triggered_rules,
)
from ._records import Alert, AlertState, Budget, SliRollup
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
    "Budget",
    "BudgetGate",
    "BurnRateDetector",
    "Forecast",
    "GateDecision",
    "Period",
    "PolicyAction",
    "PolicyRule",
    "PolicyTracker",
    "SLILabels",
    "SLISpec",
    "SLOSet",
    "SLOSpec",
    "SliRollup",
    "SliWindows",
    "SloState",
    "SloStatusWriter",
    "alert_windows",
    "budget_policy_actions",
    "burn_rate_alerts",
    "burn_rate_factor",
    "dedup_key",
    "default_alert_windows",
    "detection_time_ns",
    "forecast_exhaustion",
    "load_budgets",
    "load_slos",
    "parse_period",
    "parse_slos",
    "sli_windows",
    "slo_status_metrics",
    "triggered_rules",
    "validate_slos",
]
