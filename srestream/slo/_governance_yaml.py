"""``srestream slo apply``: write approved changes into the SLO file.

Why splice text rather than dump YAML: an SLO file carries comments (why
this objective, who agreed) that a YAML round trip would drop.  Each
changed value that already exists in the file is replaced where it stands
(its span located by PyYAML's composer), comments and layout kept; the
result is read back and must equal the expected document.  When a change
adds or removes a field, or the read-back differs, the file is rewritten
whole from the expected document instead (and the caller says the
comments were lost).  The write is atomic (a temporary file renamed over
the original, its mode kept).

The file is written before the proposals are marked applied: a crash in
between leaves approved changes that are already in the file, which
applying again leaves unchanged (a change sets values, it does not add
to them).
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from ._governance import GovernanceStore, Proposal
from ._governance_changes import apply_changes, read_slo_document, slo_entry
from ._validate import parse_slos

__all__ = ["ApplyResult", "apply_approved"]


class ApplyResult(msgspec.Struct, frozen=True, kw_only=True):
    """Which proposals were written, and whether the file kept its comments."""

    applied: list[Proposal]
    comments_kept: bool = True


def _render(value: Any) -> str:
    import yaml

    text: str = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, allow_unicode=True)
    text = text.removesuffix("\n...\n")
    return text.rstrip("\n")


def _mapping_value(node: Any, key: str) -> Any:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _splice(text: str, subject: str, path: str, value: Any) -> str | None:
    """``text`` with the value at ``path`` of the SLO ``subject`` replaced
    in place; None when the value is not already in the file as a scalar
    or a flow collection (or ``value`` removes it)."""
    import yaml

    if value is None:
        return None
    root = yaml.compose(text)
    slos = _mapping_value(root, "slos")
    if not isinstance(slos, yaml.SequenceNode):
        return None
    service, _, name = subject.partition("/")
    target = None
    for item in slos.value:
        s, n = _mapping_value(item, "service"), _mapping_value(item, "name")
        if getattr(s, "value", None) == service and getattr(n, "value", None) == name:
            target = item
            break
    for part in path.split("."):
        target = _mapping_value(target, part)
    if target is None:
        return None
    if not (isinstance(target, yaml.ScalarNode) or getattr(target, "flow_style", False)):
        return None
    start, end = target.start_mark.index, target.end_mark.index
    return text[:start] + _render(value) + text[end:]


def apply_approved(slo_file: str, store: GovernanceStore, *, by: str,
                   now_ns: int | None = None) -> ApplyResult:
    """Write every approved change not yet in ``slo_file`` into it, in
    approval order, and record one ``apply`` audit entry per proposal."""
    import yaml

    waiting = sorted((p for p in store.proposals(state="approved") if not p.applied_ns),
                     key=lambda p: (p.decided_ns, p.proposal_id))
    if not waiting:
        return ApplyResult(applied=[])
    with open(slo_file, encoding="utf-8") as fh:
        text = fh.read()
    doc = read_slo_document(slo_file)
    expected = doc
    for p in waiting:
        expected = apply_changes(expected, p.subject, p.changes)
    parse_slos(expected, file=slo_file)  # never write a file that does not validate
    new_text: str | None = text
    for p in waiting:
        for path, value in p.changes.items():
            new_text = _splice(new_text, p.subject, path, value) if new_text is not None else None
    kept = new_text is not None and yaml.safe_load(new_text) == expected
    if not kept or new_text is None:
        new_text = yaml.safe_dump(expected, sort_keys=False, allow_unicode=True)
    tmp = f"{slo_file}.apply.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(new_text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, os.stat(slo_file).st_mode & 0o7777)
    os.replace(tmp, slo_file)
    subjects = {p.subject for p in waiting}
    applied = store.mark_applied(
        [p.proposal_id for p in waiting], actor=by, ts_ns=now_ns,
        file_before={s: msgspec.to_builtins(slo_entry(doc, s)) for s in subjects},
        file_after={s: msgspec.to_builtins(slo_entry(expected, s)) for s in subjects},
    )
    return ApplyResult(applied=applied, comments_kept=kept)
