"""Leading indicators: which anomalies came before an SLO breach, and by how much.

Over a replay (:func:`replay_leading_indicators` takes its output records
as they come), every breach (a firing alert, or anything with ``ts_ns``) is
paired with the anomalies whose onset lies in ``[breach - horizon, breach]``.
:func:`lead_time_summary` then says, per anomaly type, how many breaches it
preceded and with what lead time, so the SRE learns which signals are worth
watching.

>>> from srestream.correlate import Anomaly
>>> a = Anomaly(ts_ns=60, onset_ts_ns=50, anomaly_type="template_spike", method="m")
>>> class Breach:
...     ts_ns, service = 110, "api"
>>> [(i.anomaly_type, i.lead_ns) for i in leading_indicators([a], [Breach()], horizon_ns=100)]
[('template_spike', 60)]
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from ._records import Anomaly, LeadingIndicator

__all__ = ["breaches_from", "lead_time_summary", "leading_indicators"]


def breaches_from(records: Iterable[Any]) -> list[Any]:
    """The breaches of a replay's output: the first ``firing`` record of each
    alert (by ``dedup_key``, else by SLO and service)."""
    seen: set[Any] = set()
    out = []
    for r in records:
        if not hasattr(r, "root_cause_candidates") or getattr(r, "state", "firing") != "firing":
            continue
        key = getattr(r, "dedup_key", None) or (getattr(r, "slo", ""), getattr(r, "service", ""))
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def leading_indicators(
    anomalies: Iterable[Anomaly],
    breaches: Iterable[Any],
    *,
    horizon_ns: int = 3_600_000_000_000,
    same_service: bool = False,
) -> list[LeadingIndicator]:
    """Anomalies that started within ``horizon_ns`` before each breach (at
    or before its time), with their lead.  With ``same_service`` only
    anomalies of the breached service count (anomalies with no service,
    such as cross-service templates, always do)."""
    found = sorted(
        anomalies, key=lambda a: (a.onset_ts_ns, a.anomaly_type, a.service, a.template_id)
    )
    out: list[LeadingIndicator] = []
    for b in sorted(breaches, key=lambda b: (b.ts_ns, str(getattr(b, "service", "")))):
        bts = b.ts_ns
        service = str(getattr(b, "service", "") or "")
        name = str(getattr(b, "dedup_key", "") or getattr(b, "slo", "") or "")
        for a in found:
            if a.onset_ts_ns > bts:
                break
            if a.onset_ts_ns < bts - horizon_ns:
                continue
            if same_service and a.service and service and a.service != service:
                continue
            out.append(
                LeadingIndicator(
                    breach_ts_ns=bts, onset_ts_ns=a.onset_ts_ns, lead_ns=bts - a.onset_ts_ns,
                    anomaly_type=a.anomaly_type, breach_service=service, breach=name,
                    anomaly_service=a.service, template_id=a.template_id,
                )
            )  # fmt: skip
    return out


def lead_time_summary(
    indicators: Sequence[LeadingIndicator], breaches: int | None = None
) -> dict[str, dict[str, float]]:
    """Per anomaly type: ``breaches_preceded`` (distinct breaches),
    ``share`` of all breaches when their number is given, and the median
    and maximum lead in seconds (the longest lead per breach counts)."""
    best: dict[str, dict[tuple[int, str], int]] = {}
    for i in indicators:
        per = best.setdefault(i.anomaly_type, {})
        key = (i.breach_ts_ns, i.breach)
        if i.lead_ns > per.get(key, -1):
            per[key] = i.lead_ns
    out: dict[str, dict[str, float]] = {}
    for kind in sorted(best):
        leads = sorted(best[kind].values())
        row = {
            "breaches_preceded": float(len(leads)),
            "median_lead_seconds": statistics.median(leads) / 1e9,
            "max_lead_seconds": leads[-1] / 1e9,
        }
        if breaches:
            row["share"] = len(leads) / breaches
        out[kind] = row
    return out


def replay_leading_indicators(
    records: Iterable[Any], *, horizon_ns: int = 3_600_000_000_000, same_service: bool = False
) -> tuple[list[LeadingIndicator], dict[str, dict[str, float]]]:
    """From a replay's output (anomalies and alerts among other records):
    the leading indicators of each breach and their summary per anomaly type."""
    records = list(records)
    anomalies = [r for r in records if isinstance(r, Anomaly)]
    breaches = breaches_from(records)
    found = leading_indicators(
        anomalies, breaches, horizon_ns=horizon_ns, same_service=same_service
    )
    return found, lead_time_summary(found, breaches=len(breaches))
