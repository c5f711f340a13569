"""srestream.slo: SLO specs, event-time SLI windows, error budgets,
multi-window multi-burn-rate alerts, forecasts and budget policies."""

from ._alerting import AlertWindow, burn_rate_factor, default_alert_windows, detection_time_ns
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

__all__ = [
    "Alert",
    "AlertState",
    "AlertWindow",
    "AlertWindowSpec",
    "AlertingSpec",
    "Budget",
    "Period",
    "PolicyRule",
    "SLILabels",
    "SLISpec",
    "SLOSet",
    "SLOSpec",
    "SliRollup",
    "alert_windows",
    "burn_rate_factor",
    "default_alert_windows",
    "detection_time_ns",
    "load_slos",
    "parse_period",
    "parse_slos",
    "validate_slos",
]
