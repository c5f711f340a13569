"""PII redaction, applied inside the parse stage so that nothing carrying
PII leaves it (records, attrs, dead letters alike).

Each rule has a cheap guard: a line with no ``@`` cannot hold an email, one
with fewer than three dots no IPv4 address, fewer than two colons no IPv6,
no ``earer`` no bearer token; the regex only runs when the guard passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["Redaction", "RedactionRule", "Redactor"]


class RedactionRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A custom rule: every match of ``pattern`` becomes ``replacement``.
    ``contains`` (optional) is a literal every match contains: lines without
    it skip the regex."""

    name: str
    pattern: str
    replacement: str = "[REDACTED]"
    contains: str = ""


class Redaction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which PII to redact (the built-in kinds) plus custom rules."""

    emails: bool = True
    ipv4: bool = True
    ipv6: bool = True
    bearer_tokens: bool = True
    rules: list[RedactionRule] = []


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d])"
)
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = re.compile(
    r"(?<![0-9A-Fa-f:])(?:"
    rf"(?:{_H}:){{7}}{_H}"
    rf"|(?:{_H}:){{1,7}}:"
    rf"|(?:{_H}:){{1,6}}:{_H}"
    rf"|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}"
    rf"|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}"
    rf"|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}"
    rf"|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
    rf"|{_H}:(?::{_H}){{1,6}}"
    rf"|::(?:{_H}:){{0,5}}{_H}"
    r")(?![0-9A-Fa-f:])"
)
_BEARER = re.compile(r"([Bb]earer\s+)[A-Za-z0-9\-._~+/]+=*")

Guard = Callable[[str], bool]


def _contains(literal: str) -> Guard:
    return lambda s: literal in s


def _always(s: str) -> bool:
    return True


class Redactor:
    """Applies a :class:`Redaction` to text and to record attributes."""

    __slots__ = ("_steps", "enabled")

    def __init__(self, config: Redaction | None) -> None:
        steps: list[tuple[Guard, re.Pattern[str], str]] = []
        if config is not None:
            if config.emails:
                steps.append((lambda s: "@" in s, _EMAIL, "[EMAIL]"))
            if config.ipv4:
                steps.append((lambda s: s.count(".") >= 3, _IPV4, "[IPV4]"))
            if config.ipv6:
                steps.append((lambda s: s.count(":") >= 2, _IPV6, "[IPV6]"))
            if config.bearer_tokens:
                steps.append((lambda s: "earer" in s, _BEARER, r"\1[TOKEN]"))
            for rule in config.rules:
                lit = rule.contains
                guard: Guard = _contains(lit) if lit else _always
                steps.append((guard, re.compile(rule.pattern), rule.replacement))
        self._steps = tuple(steps)
        self.enabled = bool(steps)

    def text(self, s: str) -> str:
        """``s`` with every rule applied (the same object when nothing matched)."""
        for guard, rx, repl in self._steps:
            if guard(s):
                s = rx.sub(repl, s)
        return s

    def value(self, v: Any) -> Any:
        """Redact a field value: strings, and strings inside lists and dicts."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v

    def attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Redact attribute values in place (the dict is the stage's own)."""
        for k, v in attrs.items():
            if isinstance(v, str):
                if v:
                    r = self.text(v)
                    if r is not v:
                        attrs[k] = r
            elif isinstance(v, dict | list):
                attrs[k] = self.value(v)
        return attrs
