"""Header templates for plain-text logs: ``<Date> <Time> <Level> <Component>: <Content>``.

The template syntax is Loghub/logparser's: ``<Name>`` is a field, the text
between fields is literal (it is a regular expression there, so ``\\[``
escapes a bracket and ``(\\[<PID>\\])?`` makes a part optional), a run of
spaces matches any run of whitespace, the line is stripped and the last
field takes the rest.  Each field matches as little as it can.

Speed: when every literal is plain text (escapes allowed) the template is
also compiled into a *split plan*: for each field, find the next literal
with ``str.find``.  Because fields are lazy and a run of spaces in the
template matches a whole run of whitespace, taking the first occurrence of
each literal yields exactly what the regular expression would, whenever it
succeeds; when it does not (a tab, a literal missing), the regular
expression decides.  Templates with regex syntax use the regex only.

The fields that make up the timestamp (``Date``, ``Day``, ``Month``,
``Time`` by default) are joined with a space into ``timestamp``; the
others keep their template names (``Level``, ``Component`` and ``Content``
are mapped to level, component and message by the default field mapping).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .._component import BuildContext, Outputs
from .._errors import ConfigError, Problem
from .._records import LogRecord, RawLine
from .._registry import register
from ._normalize import Normalizer
from ._stage import ParseLogic, ParseStageConfig, parse_batch, run_parser

__all__ = ["DEFAULT_TIME_FIELDS", "HeaderTemplate", "ParseTemplateStage", "parse_template"]

DEFAULT_TIME_FIELDS = ("Date", "Day", "Month", "Time", "Timestamp", "Datetime")
_FIELD = re.compile(r"<([^<>]+)>")
_META = set("()[]{}?*+|^$.\\")


def _plain_literal(lit: str) -> str | None:
    """The literal text if ``lit`` has no regex syntax (escapes resolved)."""
    out = []
    i = 0
    while i < len(lit):
        c = lit[i]
        if c == "\\":
            if i + 1 >= len(lit) or lit[i + 1].isalnum():
                return None  # \s, \d ... are classes, not characters
            out.append(lit[i + 1])
            i += 2
            continue
        if c in _META:
            return None
        out.append(c)
        i += 1
    return "".join(out)


def _without_optional_groups(template: str) -> str | None:
    """The template with every ``(...)?`` removed, or None if it has other
    regex syntax than optional groups (then nothing is known up front)."""
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        c = template[i]
        if c == "\\":
            out.append(template[i : i + 2])
            i += 2
            continue
        if c == "(":
            depth = 0
            j = i
            while j < n:
                if template[j] == "\\":
                    j += 2
                    continue
                if template[j] == "(":
                    depth += 1
                elif template[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n or template[j + 1 : j + 2] != "?":
                return None
            i = j + 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _piece(literal: str) -> str:
    """A literal (a space = a run of whitespace) as a pattern that consumes
    as little as it can (a trailing run matches one character)."""
    rx = r"\s+".join(re.escape(p) for p in literal.split(" "))
    if literal.endswith(" ") and rx.endswith(r"\s+"):
        rx = rx[:-3] + r"\s+?"
    return rx


def _feasibility(template: str) -> re.Pattern[str] | None:
    """A linear-time pattern that matches exactly the lines the template
    matches (without capturing anything).

    Every field matches anything (lazily), so a line matches exactly when
    the mandatory literals can be placed in order, each as early as
    possible.  Each placement is an atomic group: once found it is never
    revisited, so the check is linear where logparser's regex backtracks
    exponentially on lines it rejects.  None when the template has regex
    syntax beyond escapes and optional groups."""
    bare = _without_optional_groups(template)
    if bare is None:
        return None
    pieces = _FIELD.split(bare)
    literals = [_plain_literal(re.sub(" +", " ", lit)) for lit in pieces[0::2]]
    if any(lit is None for lit in literals):
        return None
    lits = [lit or "" for lit in literals]
    rx = _piece(lits[0]) if lits[0] else ""
    rx += "".join(f"(?>.*?{_piece(lit)})" for lit in lits[1:-1] if lit)
    if len(lits) > 1 and lits[-1]:
        rx += f".*?{_piece(lits[-1])}\\Z"
    return re.compile(rx, re.DOTALL)


_DIRECT_MAX_SPACES = 16
"""Lines with at most this many spaces go to the regex directly: its
backtracking over so few split points stays small even on a miss."""


class HeaderTemplate:
    """A compiled header template.

    >>> t = HeaderTemplate("<Date> <Time> <Level> <Component>: <Content>")
    >>> t.match("17/06/09 20:10:40 INFO spark.SecurityManager: Changing view acls to: yarn")
    {'Date': '17/06/09', 'Time': '20:10:40', 'Level': 'INFO', 'Component': 'spark.SecurityManager', 'Content': 'Changing view acls to: yarn'}
    """

    __slots__ = (
        "_need",
        "_optional",
        "_plan",
        "_prefix",
        "_steps",
        "_suffix",
        "names",
        "regex",
        "template",
    )

    def __init__(self, template: str) -> None:
        self.template = template
        pieces = _FIELD.split(template)
        literals = pieces[0::2]
        self.names = tuple(pieces[1::2])
        if not self.names:
            raise ValueError(f"template {template!r} has no <Field>")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"template {template!r} names a field twice")
        rx = ""
        for i, lit in enumerate(literals):
            rx += re.sub(" +", r"\\s+", lit)
            if i < len(self.names):
                # The last field, when the template ends with it, matches
                # greedily: with ``$`` right after it the result is the same
                # as lazily, without a ``$`` test at every character (half
                # the regex's time on a typical line).
                last = i == len(self.names) - 1 and not literals[-1]
                rx += f"(?P<{self.names[i]}>.*)" if last else f"(?P<{self.names[i]}>.*?)"
        try:
            self.regex = re.compile("^" + rx + "$", re.DOTALL)
        except re.error as exc:
            raise ValueError(f"template {template!r} is not a valid pattern: {exc}") from None
        # Runs of spaces match runs of whitespace: one space stands for the run.
        plain = [_plain_literal(re.sub(" +", " ", lit)) for lit in literals]
        self._plan: tuple[str, ...] | None = None
        self._prefix = self._suffix = ""
        inner = plain[1:-1]
        if all(p is not None for p in plain) and all(inner):  # adjacent fields: regex only
            self._plan = tuple(p for p in inner if p is not None)
            self._prefix = plain[0] or ""
            self._suffix = plain[-1] or ""
        # (literal, its length, starts with a space, ends with a space) per field
        self._steps = tuple((p, len(p), p[0] == " ", p[-1] == " ") for p in self._plan or ())
        # Unmatched optional groups come back as None: only then filter them.
        self._optional = self._plan is None and any(c in "?*|" for c in "".join(literals))
        self._need = _feasibility(template)

    def match(self, line: str) -> dict[str, str] | None:
        """The fields of ``line`` (stripped), or None if it does not match."""
        line = line.strip()
        if self._plan is not None and "\t" not in line:
            fields = self._split(line)
            if fields is not None:
                return fields
        if (
            self._need is not None
            and line.count(" ") + line.count("\t") > _DIRECT_MAX_SPACES
            and self._need.match(line) is None
        ):
            return None  # (and the regex is not tried: it backtracks badly on misses)
        m = self.regex.match(line)
        if m is None:
            return None
        fields = m.groupdict()
        if self._optional and None in fields.values():  # leave out unmatched optional parts
            return {k: v for k, v in fields.items() if v is not None}
        return fields

    def _split(self, line: str) -> dict[str, str] | None:
        pos = 0
        prefix = self._prefix
        if prefix:
            if prefix[-1] == " ":
                head = prefix.rstrip(" ")
                if not line.startswith(head) or line[len(head) : len(head) + 1] != " ":
                    return None
                pos = len(head)
                while pos < len(line) and line[pos] == " ":
                    pos += 1
            elif not line.startswith(prefix):
                return None
            else:
                pos = len(prefix)
        values: list[str] = []
        add = values.append
        find = line.find
        n = len(line)
        for lit, size, lead, trail in self._steps:
            at = find(lit, pos)
            if at < 0:
                return None
            end = at + size
            if lead:
                while at > pos and line[at - 1] == " ":
                    at -= 1
            if trail:
                while end < n and line[end] == " ":
                    end += 1
            add(line[pos:at])
            pos = end
        suffix = self._suffix
        if suffix:
            if not line.endswith(suffix) or n - len(suffix) < pos:
                return None
            last = line[pos : n - len(suffix)]
            add(last.rstrip(" ") if suffix[0] == " " else last)
        else:
            add(line[pos:])
        return dict(zip(self.names, values))


class TemplateParser:
    """Line parser: template fields plus ``timestamp`` from the time fields."""

    __slots__ = ("_desc", "template", "time_fields")

    def __init__(self, template: HeaderTemplate, time_fields: Sequence[str] | None = None) -> None:
        self.template = template
        if time_fields is None:
            time_fields = [n for n in template.names if n in DEFAULT_TIME_FIELDS]
        missing = [n for n in time_fields if n not in template.names]
        if missing:
            raise ValueError(f"time fields {missing} are not in the template")
        self.time_fields = tuple(time_fields)
        self._desc = f"line does not match template {template.template!r}"

    def __call__(self, line: str) -> dict[str, Any]:
        fields: dict[str, Any] | None = self.template.match(line)
        if fields is None:
            raise ValueError(self._desc + self._where(line))
        tf = self.time_fields
        if len(tf) == 1:
            fields["timestamp"] = fields.pop(tf[0])
        elif tf:
            fields["timestamp"] = " ".join([fields.pop(n) for n in tf])
        return fields

    def _where(self, line: str) -> str:
        """Which field the line stops matching at (for the dead letter)."""
        names = self.template.names
        for k in range(len(names) - 1, 0, -1):
            rx = self.template.regex.pattern
            cut = rx.find(f"(?P<{names[k]}>")
            try:
                if re.match(rx[:cut], line.strip(), re.DOTALL):
                    return f" (fields up to {names[k - 1]} match, {names[k]} does not)"
            except re.error:
                continue
        return f" (first field {names[0]} does not match)"


async def parse_template(
    batches: AsyncIterator[Sequence[RawLine]],
    /,
    *,
    template: str,
    time_fields: Sequence[str] | None = None,
    normalizer: Normalizer | None = None,
    outputs: Outputs | None = None,
) -> AsyncIterator[list[LogRecord]]:
    """Plain-text lines with a header template -> LogRecords."""
    outputs = outputs if outputs is not None else Outputs("parse_template")
    norm = normalizer if normalizer is not None else Normalizer()
    line_parser = TemplateParser(HeaderTemplate(template), time_fields)

    def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
        return parse_batch(batch, line_parser, norm, outs, "template")

    async for out in run_parser(batches, parse, outputs):
        yield out


@register(
    'Parse plain-text logs with a header template like "<Date> <Time> <Level> <Component>: <Content>"; bad lines go to .deadletter.'
)
class ParseTemplateStage(ParseStageConfig, frozen=True, kw_only=True, tag="parse_template"):
    """Loghub/logparser header templates: ``<Field>`` matches lazily,
    literal text between fields is a regular expression (``\\[`` for a
    bracket, ``(...)?`` optional), runs of spaces match whitespace.  Plain
    templates run as ``str.find`` splits, others as the regular expression
    after a linear check that rejects non-matching lines.  The time fields
    join into the timestamp (``time_format`` reads them)."""

    template: str
    """Header template, e.g. ``<Date> <Time> <Level> <Component>: <Content>``."""
    time_fields: list[str] | None = None
    """Fields joined (with a space) into the timestamp; default Date, Day,
    Month, Time, Timestamp, Datetime in template order."""

    def build(self, ctx: BuildContext) -> ParseLogic:
        where = f"$.stages.{ctx.component_id}"
        try:
            line_parser = TemplateParser(HeaderTemplate(self.template), self.time_fields)
        except ValueError as exc:
            problem = Problem(f"{where}.template", str(exc))
            try:
                self.create_normalizer(ctx)
            except ConfigError as more:
                raise ConfigError([problem, *more.problems]) from None
            raise ConfigError([problem]) from None
        norm = self.create_normalizer(ctx)

        def parse(batch: Sequence[RawLine], outs: Outputs) -> list[LogRecord]:
            return parse_batch(batch, line_parser, norm, outs, "template")

        return ParseLogic(parse, norm, ctx.outputs)
