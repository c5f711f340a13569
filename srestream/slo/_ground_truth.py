"""Ground truth for backtesting: the incidents alerts should have caught.

Two forms are read (JSON or YAML, told apart by their content):

* a ``truth.json`` written by ``srestream sim``: every injected fault but
  data gaps is an incident (a fault that opened no on-call incident, such
  as a slow burn, still hurt users: a ticket should catch it).  Its id is
  the on-call incident id (else the fault id), its service the fault's
  root cause, its interval the fault's effect window ``[effect_start,
  end]`` and its ``affected`` services the callers the fault cascaded to;

* an incidents file an SRE writes from postmortems::

      incidents:
        - id: PM-2026-014            # optional (default: "#1", "#2", ... by position)
          service: orders-db         # the service at fault
          start: 2026-01-05T08:50:00Z  # RFC 3339 with a zone, or epoch seconds/ms/ns
          end: 2026-01-05T09:10:00Z
          slo: availability          # optional: only alerts of SLOs with this name count
          affected: [checkout, web]  # optional: dependents whose alerts count too
          summary: orders-db refused connections   # optional, free text

Every problem is reported at once with its JSON path and the file (a
missing field, a time that does not parse or has no zone, an end before
the start); services are checked against the history later (see
:func:`check_incident_services`), once the replay has seen them.
"""

from __future__ import annotations

import calendar
import difflib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from .._errors import ConfigError, Problem

__all__ = ["GroundTruth", "TruthIncident", "check_incident_services", "load_ground_truth", "parse_ground_truth"]

_FIELDS = ("id", "service", "start", "end", "slo", "affected", "summary")


class TruthIncident(msgspec.Struct, frozen=True, kw_only=True):
    """One incident of the ground truth: ``service`` was at fault over
    ``[start_ts_ns, end_ts_ns]``.  ``affected`` lists dependents whose
    alerts also count as detecting it; ``slo`` (when set) restricts the
    alerts that count to SLOs of that name.  ``where`` is its JSON path in
    its file (for problems found later)."""

    incident_id: str
    service: str
    start_ts_ns: int
    end_ts_ns: int
    slo: str = ""
    affected: tuple[str, ...] = ()
    summary: str = ""
    where: str = ""


class GroundTruth(msgspec.Struct, frozen=True, kw_only=True):
    """The incidents of one file, and which form the file had
    (``sim`` truth or an ``incidents`` file)."""

    file: str
    form: str
    incidents: tuple[TruthIncident, ...]
    service_field: str = "service"
    """The field holding an incident's service (``root_cause`` in sim truth)."""


def load_ground_truth(path: str) -> GroundTruth:
    """Read a sim ``truth.json`` or an incidents file (YAML or JSON);
    raise :class:`ConfigError` listing every problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError([Problem("$", f"cannot read the ground truth: {exc.strerror}", path)]) from exc
    doc: Any
    if path.endswith(".json"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError([Problem("$", f"invalid JSON: {exc}", path)]) from exc
    else:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError([Problem("$", f"invalid YAML: {exc}", path)]) from exc
    return parse_ground_truth(doc, file=path)


def parse_ground_truth(doc: Any, *, file: str = "") -> GroundTruth:
    """Decode a loaded ground-truth document (see the module doc)."""
    if isinstance(doc, dict) and "faults" in doc and "scenario" in doc:
        return _from_sim_truth(doc, file)
    problems: list[Problem] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("incidents"), list):
        raise ConfigError([Problem(
            "$.incidents",
            "expected a mapping with an 'incidents' list (or a truth.json from srestream sim)",
            file,
        )])
    for key in doc:
        if key not in ("incidents", "version", "description"):
            problems.append(Problem(f"$.{key}", "unknown field (known: incidents, version, description)", file))
    out = []
    ids: dict[str, int] = {}
    for i, raw in enumerate(doc["incidents"]):
        inc = _incident(raw, i, file, problems)
        if inc is None:
            continue
        if inc.incident_id in ids:
            problems.append(Problem(
                f"$.incidents[{i}].id",
                f"duplicate id {inc.incident_id!r} (also $.incidents[{ids[inc.incident_id]}])",
                file,
            ))
        ids.setdefault(inc.incident_id, i)
        out.append(inc)
    if problems:
        raise ConfigError(problems)
    return GroundTruth(file=file, form="incidents", incidents=tuple(out))


def _incident(raw: Any, i: int, file: str, problems: list[Problem]) -> TruthIncident | None:
    path = f"$.incidents[{i}]"
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"expected a mapping, got {type(raw).__name__}", file))
        return None
    before = len(problems)
    for key in raw:
        if key not in _FIELDS:
            problems.append(Problem(f"{path}.{key}", f"unknown field (known: {', '.join(_FIELDS)})", file))
    texts: dict[str, str] = {}
    for key in ("id", "service", "slo", "summary"):
        v = raw.get(key)
        if v is None:
            if key == "service":
                problems.append(Problem(f"{path}.service", "missing required field", file))
            continue
        if not isinstance(v, str) or not v:
            problems.append(Problem(f"{path}.{key}", f"expected a non-empty string, got {v!r}", file))
            continue
        texts[key] = v
    times: dict[str, int] = {}
    for key in ("start", "end"):
        if key not in raw:
            problems.append(Problem(f"{path}.{key}", "missing required field", file))
            continue
        try:
            times[key] = _time_ns(raw[key])
        except ValueError as exc:
            problems.append(Problem(f"{path}.{key}", str(exc), file))
    if len(times) == 2 and times["end"] <= times["start"]:
        problems.append(Problem(f"{path}.end", "the end is not after the start", file))
    affected = raw.get("affected", [])
    if not isinstance(affected, list) or not all(isinstance(a, str) and a for a in affected):
        problems.append(Problem(f"{path}.affected", "expected a list of service names", file))
        affected = []
    if len(problems) > before:
        return None
    return TruthIncident(
        incident_id=texts.get("id", f"#{i + 1}"),
        service=texts["service"],
        start_ts_ns=times["start"],
        end_ts_ns=times["end"],
        slo=texts.get("slo", ""),
        affected=tuple(dict.fromkeys(affected)),
        summary=texts.get("summary", ""),
        where=path,
    )


def _time_ns(v: Any) -> int:
    """A time as YAML or JSON gives it: a datetime with a zone (YAML),
    RFC 3339 text with a zone, or an epoch number."""
    from ..parse._time import parse_timestamp

    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise ValueError(f"{v.isoformat()} has no time zone (add Z or an offset such as +02:00)")
        return calendar.timegm(v.utctimetuple()) * 1_000_000_000 + v.microsecond * 1_000
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        # A bad value in the user's file: the caller reports it as a problem.
        raise ValueError(f"expected an RFC 3339 time or epoch seconds, got {v!r}")  # noqa: TRY004
    if isinstance(v, str):
        t = v.strip()
        if "T" in t and not (t.endswith(("Z", "z")) or "+" in t[10:] or "-" in t[10:]):
            raise ValueError(f"{v!r} has no time zone (add Z or an offset such as +02:00)")
    try:
        return parse_timestamp(v)
    except ValueError as exc:
        raise ValueError(f"bad time {v!r}: expected RFC 3339 (2026-01-05T08:50:00Z) or epoch seconds") from exc


def _from_sim_truth(doc: dict[str, Any], file: str) -> GroundTruth:
    """The non-data-gap faults of a ``srestream sim`` truth.json."""
    problems: list[Problem] = []
    out = []
    faults = doc.get("faults")
    if not isinstance(faults, list):
        raise ConfigError([Problem("$.faults", "expected a list", file)])
    for i, f in enumerate(faults):
        path = f"$.faults[{i}]"
        if not isinstance(f, dict):
            problems.append(Problem(path, "expected a mapping", file))
            continue
        if f.get("kind") == "data_gap":
            continue
        missing = [k for k in ("fault_id", "root_cause", "effect_start_ns", "end_ns") if k not in f]
        if missing:
            problems.extend(Problem(f"{path}.{k}", "missing required field", file) for k in missing)
            continue
        start, end = f["effect_start_ns"], f["end_ns"]
        if not isinstance(start, int) or not isinstance(end, int) or end <= start:
            problems.append(Problem(f"{path}.end_ns", "expected integer ns after effect_start_ns", file))
            continue
        svc = f["root_cause"]
        affected = f.get("affected_services") or []
        out.append(TruthIncident(
            incident_id=str(f.get("incident_id") or f["fault_id"]),
            service=str(svc),
            start_ts_ns=start,
            end_ts_ns=end,
            affected=tuple(dict.fromkeys(str(a) for a in affected)),
            summary=f"{f.get('kind', 'fault')} of {svc}",
            where=path,
        ))
    if problems:
        raise ConfigError(problems)
    return GroundTruth(file=file, form="sim", incidents=tuple(out), service_field="root_cause")


def check_incident_services(truth: GroundTruth, known: Iterable[str], slo_names: Iterable[str] = ()) -> None:
    """Refuse incidents naming a service neither the history nor the SLO
    files know, or an SLO name no SLO file has (a typo would otherwise
    read as a missed incident)."""
    names = sorted(set(known))
    slos = sorted(set(slo_names))
    problems = []

    def unknown(svc: str, path: str) -> None:
        close = difflib.get_close_matches(svc, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(Problem(
            path, f"unknown service {svc!r}: not in the history nor in the SLO files{hint}", truth.file,
        ))

    known_set = set(names)
    for inc in truth.incidents:
        if inc.service not in known_set:
            unknown(inc.service, f"{inc.where}.{truth.service_field}")
        for j, a in enumerate(inc.affected):
            if a not in known_set:
                field = "affected_services" if truth.form == "sim" else "affected"
                unknown(a, f"{inc.where}.{field}[{j}]")
        if inc.slo and inc.slo not in slos:
            problems.append(Problem(
                f"{inc.where}.slo", f"no SLO is named {inc.slo!r} (known: {', '.join(slos)})", truth.file,
            ))
    if problems:
        raise ConfigError(problems)

