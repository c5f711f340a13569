"""The component reference (docs/components.md), generated from the registry
so that it cannot drift from the code: ``srestream components --markdown``.

Each component gets the same sections: Configuration (every option with its
type, default and the comment written under it in the config class),
Telemetry (the statistics every component reports, and its side outputs),
Example (a pipeline entry with the required options) and How it works (the
config class docstring).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from typing import Any

import msgspec

from ._registry import ComponentInfo, components

__all__ = ["render_component_docs"]

_TELEMETRY = (
    "`records_in`, `records_out`, `batches_in`, `batches_out`, `errors` (dead letters), "
    "`queue_depth`, `lag_seconds`, `unrouted` — in `Runner.statistics()`, the run summary and "
    "`--metrics-addr` (`srestream_stage_*{component=...}`)."
)


def _field_docs(cls: type) -> dict[str, str]:
    """The string literal written right under each annotated field, walking
    the class and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for a, b in itertools.pairwise(body):
            if (
                isinstance(a, ast.AnnAssign)
                and isinstance(a.target, ast.Name)
                and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant)
                and isinstance(b.value.value, str)
            ):
                docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _example(info: ComponentInfo) -> str:
    lines = [f"type: {info.type}"]
    if info.kind != "source":
        lines.append("inputs: [upstream]")
    for f in msgspec.structs.fields(info.config):
        if f.name == "inputs" or f.required is False:
            continue
        lines.append(f"{f.encode_name}: ...  # required")
    return "\n".join(lines)


def _one(info: ComponentInfo) -> str:
    cfg: Any = info.config
    doc = inspect.cleandoc(cfg.__doc__ or "") if cfg.__doc__ else ""
    fdocs = _field_docs(cfg)
    out = [f"## `{info.type}` ({info.kind})", "", info.summary, "", "### Configuration", ""]
    opts = info.options()
    if info.kind != "source":
        out.append("- `inputs` (list of ids, required): the components (or `id.side_output`) it reads.")
    if not opts and info.kind == "source":
        out.append("No options.")
    for name, typ, default in opts:
        d = default if len(default) <= 60 else default[:57] + "..."
        line = f"- `{name}` ({typ}, {'required' if d == 'required' else 'default ' + d})"
        if fdocs.get(name):
            line += f": {fdocs[name]}"
        out.append(line)
    side = ", ".join(f"`.{s}`" for s in cfg.side_outputs) or "none"
    out += ["", "### Telemetry", "", _TELEMETRY, f"Side outputs: {side}.", ""]
    out += ["### Example", "", "```yaml", _example(info), "```", ""]
    out += ["### How it works", "", doc or info.summary, ""]
    return "\n".join(out)


def render_component_docs() -> str:
    """docs/components.md, from the registry."""
    infos = components()
    head = [
        "# Components",
        "",
        "Generated from the registry by `srestream components --markdown` (a test keeps it current).",
        "",
    ]
    for kind in ("source", "stage", "sink"):
        head.append(f"- {kind}s: " + ", ".join(
            f"[`{t}`](#{t}-{kind})" for t, i in infos.items() if i.kind == kind
        ))
    head.append("")
    return "\n".join(head + [_one(i) for i in infos.values() if i.module.startswith("srestream")])
