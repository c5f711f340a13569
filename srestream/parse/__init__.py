"""Parsers and the normalizer: raw lines in, :class:`~srestream.LogRecord` out.

Formats: JSON lines, logfmt, syslog (RFC 5424 / 3164), Apache/Nginx access
logs, header templates for plain text; stack traces fold into their first
line first.  Every parser normalizes through :class:`Normalizer`
(timestamps, levels, field mapping, trace context, service catalog, PII
redaction) and sends lines it cannot use to the dead-letter output.
"""

from ._access import ParseAccessLogStage, parse_access_line, parse_access_log
from ._catalog import ServiceCatalog, ServiceEntry, load_service_catalog
from ._enrich import EnrichLogsStage, enrich_batch, enrich_logs
from ._json import ParseJsonStage, parse_json, parse_json_batch
from ._levels import level_number, syslog_severity_level
from ._logfmt import ParseLogfmtStage, parse_logfmt, parse_logfmt_line
from ._multiline import FoldStackTracesStage, StackTraceFolder, fold_stack_traces
from ._normalize import FieldError, FieldMapping, Normalizer, parse_duration_ns
from ._redact import Redaction, RedactionRule, Redactor
from ._stage import ParseStageConfig, parse_batch
from ._syslog import ParseSyslogStage, parse_syslog, parse_syslog_line
from ._template import HeaderTemplate, ParseTemplateStage, TemplateParser, parse_template
from ._time import TimestampParser, apache_to_ns, epoch_to_ns, parse_timestamp, syslog_to_ns
from ._trace import TraceContext, b3_from_headers, parse_b3, parse_traceparent

__all__ = [
    "EnrichLogsStage",
    "FieldError",
    "FieldMapping",
    "FoldStackTracesStage",
    "HeaderTemplate",
    "Normalizer",
    "ParseAccessLogStage",
    "ParseJsonStage",
    "ParseLogfmtStage",
    "ParseStageConfig",
    "ParseSyslogStage",
    "ParseTemplateStage",
    "Redaction",
    "RedactionRule",
    "Redactor",
    "ServiceCatalog",
    "ServiceEntry",
    "StackTraceFolder",
    "TemplateParser",
    "TimestampParser",
    "TraceContext",
    "apache_to_ns",
    "b3_from_headers",
    "enrich_batch",
    "enrich_logs",
    "epoch_to_ns",
    "fold_stack_traces",
    "level_number",
    "load_service_catalog",
    "parse_access_line",
    "parse_access_log",
    "parse_b3",
    "parse_batch",
    "parse_duration_ns",
    "parse_json",
    "parse_json_batch",
    "parse_logfmt",
    "parse_logfmt_line",
    "parse_syslog",
    "parse_syslog_line",
    "parse_template",
    "parse_timestamp",
    "parse_traceparent",
    "syslog_severity_level",
    "syslog_to_ns",
]
