"""CLI subcommands contributed by this package (see srestream._cli):

* ``srestream rules SLOFILE [-o FILE]``: Prometheus recording and alerting
  rules for the SLOs of a Sloth or OpenSLO file (PromQL SLIs);
* ``srestream report --store FILE --slos FILE [--incidents FILE]``: the
  compliance report (Markdown or JSON) computed from the budget ledger,
  with the budget each incident consumed when given incidents;
* ``srestream dashboards SLOFILE --out DIR``: one Grafana dashboard JSON
  per service, over srestream's status metrics or the exported rules;
* ``srestream backtest HISTORY... --slos FILE --truth FILE``: alert rules
  replayed over recorded logs and scored against known incidents (in
  ``_backtest_commands``);
* ``srestream discover TRACEFILES... [--out FILE]``: user journeys found in
  OTLP traces, proposed as span SLOs with objectives from the observed
  history (see ``_discovery``).
"""

from __future__ import annotations

import argparse
import os
import sys

from .._duration import parse_duration
from .._errors import ConfigError, Problem

__all__ = ["add_commands"]


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rules``, ``report``, ``dashboards``, ``backtest`` and
    ``discover``; each sets ``func=`` returning an exit code."""
    r = subparsers.add_parser(
        "rules",
        help="export Prometheus recording and multi-window burn-rate alerting rules for SLOs",
        description="Read a Sloth (prometheus/v1) or OpenSLO (v1, v1alpha) file whose SLIs are "
        "PromQL templates with {{.window}}, and write Prometheus recording rules and "
        "multi-window multi-burn-rate alerts (check them with `promtool check rules`).  "
        "srestream's own SLO files count records Prometheus never sees: they are refused, "
        "with the reason, SLO by SLO.",
    )
    r.add_argument("slo_file", metavar="SLOFILE")
    r.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    r.add_argument("--period", default="30d",
                   help="SLO period for specs that do not state one (Sloth): default 30d")
    r.add_argument("--windows", metavar="FILE",
                   help="a Sloth AlertWindows file giving the four window pairs")
    r.add_argument("--window-scaling", choices=("period", "none"), default="period",
                   help="how the Workbook windows adapt to periods other than 30d: scaled by "
                   "period/30d (srestream's detector default) or kept (Sloth's 28d catalogue)")
    r.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="extra label on every rule (repeatable)")
    r.set_defaults(func=_cmd_rules)

    rep = subparsers.add_parser(
        "report",
        help="SLO compliance report (Markdown or JSON) from the budget ledger",
    )
    rep.add_argument("--store", required=True, metavar="FILE", help="SQLite file of the ledger")
    rep.add_argument("--slos", required=True, metavar="FILE", help="the SLO file")
    rep.add_argument("--format", choices=("md", "json"), default="md")
    rep.add_argument("--at", metavar="TS",
                     help="report as of this time (RFC 3339 or epoch seconds); default: the "
                     "end of the newest rollup in the ledger")
    rep.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    rep.add_argument("--incidents", metavar="FILE",
                     help="an incidents file (postmortems: id, service, start, end, affected...) "
                     "or a sim truth.json: adds the error budget each incident consumed, per SLO "
                     "of its service and affected services")
    rep.set_defaults(func=_cmd_report)

    d = subparsers.add_parser(
        "dashboards",
        help="write one Grafana dashboard JSON per service for the SLOs",
        description="Write <service>.json into DIR for each service of SLOFILE: per SLO its "
        "objective, error budget remaining (thresholds at the budget policy), data coverage, "
        "events, forecast exhaustion, burn rate with the alert windows' factors, and firing "
        "alerts.  --source status queries srestream's own status metrics (the slo_status sink, "
        "--metrics-addr); --source rules queries the series `srestream rules` records for a "
        "Sloth or OpenSLO file (give it the same --period/--windows/--window-scaling).",
    )
    d.add_argument("slo_file", metavar="SLOFILE")
    d.add_argument("--out", required=True, metavar="DIR", help="directory to write into (created)")
    d.add_argument("--datasource", default="", metavar="UID",
                   help="preselected Prometheus data source uid (default: Grafana's default)")
    d.add_argument("--source", choices=("status", "rules"), default="status",
                   help="which series the panels query: srestream's status metrics (default) "
                   "or the recording rules of `srestream rules`")
    d.add_argument("--period", default="30d",
                   help="--source rules: SLO period for specs that do not state one (Sloth)")
    d.add_argument("--windows", metavar="FILE",
                   help="--source rules: the Sloth AlertWindows file given to `srestream rules`")
    d.add_argument("--window-scaling", choices=("period", "none"), default="period",
                   help="--source rules: as given to `srestream rules`")
    d.set_defaults(func=_cmd_dashboards)

    from ._backtest_commands import add_backtest_command

    add_backtest_command(subparsers)

    disc = subparsers.add_parser(
        "discover",
        help="find user journeys in OTLP traces and propose SLOs for them (YAML to review)",
        description="Read OTLP JSON trace files, find the user journeys (entry span operations "
        "and the call paths below them) and write an srestream SLO file proposing, per journey "
        "with enough requests, an availability and a latency SLO (source: spans) whose "
        "objective is the tightest of 99.99 .. 90 that the observed history meets with margin "
        "(bad fraction <= half the budget), the evidence in comments.  A service with more "
        "distinct entry operations than --max-operations (ids in span names) is refused per "
        "operation, with the reason, and proposed as one service-level SLO.",
    )
    disc.add_argument("trace_files", nargs="+", metavar="TRACEFILES")
    disc.add_argument("--out", metavar="FILE", help="write the SLO YAML here instead of stdout")
    disc.add_argument("--min-requests", type=int, default=100, metavar="N",
                      help="journeys with fewer requests get no SLO (default 100)")
    disc.add_argument("--max-operations", type=int, default=20, metavar="N",
                      help="cardinality guard: a service with more distinct entry operations "
                      "gets one service-level SLO instead (default 20)")
    disc.add_argument("--period", default="30d", help="SLO period of the proposals (default 30d)")
    disc.set_defaults(func=_cmd_discover)


def _write(text: str, output: str | None) -> None:
    if output:
        tmp = f"{output}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    else:
        sys.stdout.write(text)


def _cmd_rules(args: argparse.Namespace) -> int:
    from ._importers import load_slo_file
    from ._rules import build_rule_groups, load_alert_windows, render_rules

    try:
        period_ns = parse_duration(args.period)
    except ValueError as exc:
        raise ConfigError([Problem("--period", str(exc))]) from exc
    labels = {}
    for kv in args.label:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise ConfigError([Problem("--label", f"expected KEY=VALUE, got {kv!r}")])
        labels[k] = v
    windows = None
    if args.windows:
        w_period, windows = load_alert_windows(args.windows)
        period_ns = w_period
    slos = load_slo_file(args.slo_file, default_period_ns=period_ns)
    from .. import __version__ as version

    groups = build_rule_groups(slos, windows=windows, window_scaling=args.window_scaling,
                               extra_labels=labels, version=str(version))
    _write(render_rules(groups, source=os.path.basename(args.slo_file)), args.output)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ._report import run_report_command

    return run_report_command(args)


def _cmd_discover(args: argparse.Namespace) -> int:
    from ._discovery import discover_slos, read_trace_files

    spans, unreadable = read_trace_files(args.trace_files, lean=True)
    if unreadable:
        print(f"srestream discover: {unreadable} unreadable part(s) skipped", file=sys.stderr)
    if not spans:
        print("srestream discover: no span in the trace files", file=sys.stderr)
        return 1
    d = discover_slos(spans, min_requests=args.min_requests, max_operations=args.max_operations,
                      period=args.period, sources=args.trace_files)
    for r in d.refusals:
        print(f"srestream discover: refused per-operation SLOs for {r.service!r}: {r.reason}; "
              f"{r.suggestion}", file=sys.stderr)
    _write(d.yaml, args.out)
    print(f"srestream discover: {len(d.journeys)} journeys, {len(d.proposals)} SLOs proposed, "
          f"{len(d.refusals)} refused, {len(d.too_few)} with too few requests", file=sys.stderr)
    return 0


def _cmd_dashboards(args: argparse.Namespace) -> int:
    from ._dashboards import build_dashboards, write_dashboards
    from ._rules import load_alert_windows

    try:
        period_ns = parse_duration(args.period)
    except ValueError as exc:
        raise ConfigError([Problem("--period", str(exc))]) from exc
    windows = None
    if args.windows:
        period_ns, windows = load_alert_windows(args.windows)
    dashboards = build_dashboards(args.slo_file, source=args.source, datasource=args.datasource,
                                  period_ns=period_ns, windows=windows,
                                  window_scaling=args.window_scaling)
    for path in write_dashboards(dashboards, args.out):
        print(path)
    return 0
