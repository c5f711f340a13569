"""Declarative pipelines: YAML or TOML files decoded into typed configs.

A pipeline file has ``sources``, ``stages`` and ``sinks``, each a map of
snake_case ids to component entries with a ``type`` (and, for stages and
sinks, ``inputs``), plus optional ``name`` and ``runtime``.  Loading checks
everything and reports every problem at once, each with its path.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from ._component import SinkConfig, SourceConfig, StageConfig, _Component
from ._duration import Duration, dec_hook
from ._errors import ConfigError, Problem
from ._registry import components

__all__ = ["Pipeline", "RuntimeConfig", "load_pipeline", "parse_pipeline"]

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_SECTIONS: dict[str, type[SourceConfig] | type[StageConfig] | type[SinkConfig]] = {
    "sources": SourceConfig,
    "stages": StageConfig,
    "sinks": SinkConfig,
}
_TOP_KEYS = ("name", "description", "runtime", "sources", "stages", "sinks")


class RuntimeConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the graph runs."""

    batch_size: int = 1024
    """Records per batch that sources aim for."""
    edge_capacity_batches: int = 8
    """Batches each edge buffers before its producer waits (backpressure)."""
    checkpoint_interval: Duration = Duration.parse("10s")
    """How often source offsets and stage state are written to the store."""
    chain_stages: bool = True
    """Run a stage in the same task as the stage before it when it is that
    stage's only consumer and has no other input (operator chaining): a
    generator hop instead of a memory stream.  Off: one stream per edge."""
    store: str = "srestream.sqlite"
    """The SQLite file for checkpoints (and later incidents and budgets),
    relative to the pipeline file.  ``replay --out DIR`` keeps it in DIR."""


class Pipeline(msgspec.Struct, kw_only=True):
    """A validated pipeline: every component decoded, every input resolved."""

    name: str
    sources: dict[str, SourceConfig]
    stages: dict[str, StageConfig]
    sinks: dict[str, SinkConfig]
    runtime: RuntimeConfig = RuntimeConfig()
    description: str = ""
    path: str = ""
    """The file it came from ("" when built from a dict)."""

    @property
    def base_dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()

    def components(self) -> Iterator[tuple[str, _Component]]:
        yield from self.sources.items()
        yield from self.stages.items()
        yield from self.sinks.items()

    def component(self, component_id: str) -> _Component:
        for section in (self.sources, self.stages, self.sinks):
            if component_id in section:
                return section[component_id]
        raise KeyError(component_id)

    def topological_order(self) -> list[str]:
        """Component ids, each after all of its inputs."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(cid: str) -> None:
            if cid in seen:
                return
            seen.add(cid)
            for ref in getattr(self.component(cid), "inputs", ()):
                visit(ref.partition(".")[0])
            order.append(cid)

        for cid, _ in self.components():
            visit(cid)
        return order


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """Read and validate a pipeline file (``.yaml``, ``.yml`` or ``.toml``).

    Raises :class:`ConfigError` listing every problem, each with its path.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError([Problem(path="$", message=f"cannot read: {exc.strerror}", file=path)])
    return parse_pipeline(raw, path=path)


def parse_pipeline(raw: bytes | str, *, path: str = "pipeline.yaml") -> Pipeline:
    """Validate pipeline text; the format follows ``path``'s suffix."""
    if isinstance(raw, str):
        raw = raw.encode()
    lines: dict[str, int] = {}
    try:
        if path.endswith(".toml"):
            obj = msgspec.toml.decode(raw)
        else:
            obj = msgspec.yaml.decode(raw)
            lines = _yaml_lines(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError([Problem(path="$", message=f"not valid syntax: {exc}", file=path)])
    return pipeline_from_dict(obj, path=path, _lines=lines)


def pipeline_from_dict(
    obj: Any, *, path: str = "", _lines: Mapping[str, int] | None = None
) -> Pipeline:
    """Validate a pipeline given as plain dicts and lists."""
    problems: list[Problem] = []
    lines = _lines or {}

    def problem(p: str, message: str) -> None:
        line = lines.get(p) or lines.get(p.rsplit(".", 1)[0])
        file = f"{path}:{line}" if (path and line) else path
        problems.append(Problem(path=p, message=message, file=file))

    if not isinstance(obj, dict):
        problem("$", "a pipeline must be a mapping with sources, stages and sinks")
        raise ConfigError(problems)
    for key in obj:
        if key not in _TOP_KEYS:
            problem(f"$.{key}", f"unknown key{_suggest(str(key), _TOP_KEYS)}")

    registry = components()
    decoded: dict[str, dict[str, _Component]] = {s: {} for s in _SECTIONS}
    kind_of: dict[str, str] = {}
    for section, base in _SECTIONS.items():
        entries = obj.get(section, {}) or {}
        if not isinstance(entries, dict):
            problem(f"$.{section}", f"expected a mapping of id to component, got {_tname(entries)}")
            continue
        for cid, entry in entries.items():
            at = f"$.{section}.{cid}"
            if not isinstance(cid, str) or not _ID.match(cid):
                problem(at, "ids are snake_case: lowercase letters, digits and '_'")
            if cid in kind_of:
                problem(at, f"id {cid!r} is already used in {kind_of[cid]}")
                continue
            kind_of[cid] = section
            if not isinstance(entry, dict):
                problem(at, f"expected a mapping with a 'type', got {_tname(entry)}")
                continue
            type_name = entry.get("type")
            if type_name is None:
                problem(f"{at}.type", "missing: every component needs a 'type'")
                continue
            info = registry.get(type_name) if isinstance(type_name, str) else None
            if info is None or not issubclass(info.config, base):
                same_kind = [t for t, i in registry.items() if issubclass(i.config, base)]
                problem(
                    f"{at}.type",
                    f"unknown {base.kind} type {type_name!r}{_suggest(str(type_name), same_kind)}",
                )
                continue
            known = {f.encode_name for f in msgspec.structs.fields(info.config)} | {"type"}
            bad = False
            for key in entry:
                if key not in known:
                    problem(
                        f"{at}.{key}",
                        f"unknown option for {type_name!r}{_suggest(str(key), sorted(known))}",
                    )
                    bad = True
            if bad:
                continue
            if section != "sources" and "inputs" not in entry:
                entry = {**entry, "inputs": []}  # reported once, by the graph check below
            try:
                decoded[section][cid] = msgspec.convert(entry, info.config, dec_hook=dec_hook)
            except msgspec.ValidationError as exc:
                msg, sub = _split_path(str(exc))
                problem(at + sub, msg)

    runtime = RuntimeConfig()
    if "runtime" in obj:
        try:
            runtime = msgspec.convert(obj["runtime"], RuntimeConfig, dec_hook=dec_hook)
        except msgspec.ValidationError as exc:
            msg, sub = _split_path(str(exc))
            problem("$.runtime" + sub, msg)
        else:
            if runtime.batch_size < 1:
                problem("$.runtime.batch_size", "must be at least 1")
            if runtime.edge_capacity_batches < 1:
                problem("$.runtime.edge_capacity_batches", "must be at least 1")

    if not obj.get("sources"):
        problem("$.sources", "a pipeline needs at least one source")
    if not obj.get("sinks"):
        problem("$.sinks", "a pipeline needs at least one sink")

    # Inputs: each names a source or stage, optionally with a side output.
    graph: dict[str, list[str]] = {}
    for section in ("stages", "sinks"):
        entries = obj.get(section) or {}
        if not isinstance(entries, dict):
            continue
        for cid, entry in entries.items():
            if not isinstance(entry, dict):
                continue
            at = f"$.{section}.{cid}.inputs"
            inputs = entry.get("inputs")
            if not inputs:
                problem(at, "missing: a stage or sink needs at least one input")
                continue
            if not isinstance(inputs, list):
                continue  # the type error is already reported by the decoder
            graph[cid] = []
            for i, ref in enumerate(inputs):
                if not isinstance(ref, str):
                    continue
                name, _, port = ref.partition(".")
                if name not in kind_of:
                    problem(
                        f"{at}[{i}]",
                        f"unknown input {ref!r}{_suggest(name, [k for k, s in kind_of.items() if s != 'sinks'])}",
                    )
                    continue
                if kind_of[name] == "sinks":
                    problem(f"{at}[{i}]", f"{name!r} is a sink: sinks have no outputs")
                    continue
                if port:
                    comp = decoded[kind_of[name]].get(name)
                    if comp is not None and port not in comp.side_outputs:
                        outs = ", ".join(f"{name}.{p}" for p in comp.side_outputs) or "none"
                        problem(
                            f"{at}[{i}]",
                            f"{name!r} has no side output {port!r} (it has: {outs})",
                        )
                        continue
                if name == cid:
                    problem(f"{at}[{i}]", "a component cannot be its own input")
                    continue
                graph[cid].append(name)
    for cycle in _cycles(graph):
        problem(
            f"$.{kind_of[cycle[0]]}.{cycle[0]}.inputs",
            "cycle: " + " -> ".join(cycle + [cycle[0]]),
        )

    if problems:
        raise ConfigError(sorted(problems, key=lambda p: _line_of(p.file)))
    name = obj.get("name") or (os.path.splitext(os.path.basename(path))[0] if path else "pipeline")
    return Pipeline(
        name=str(name),
        description=str(obj.get("description", "")),
        sources=decoded["sources"],  # type: ignore[arg-type]
        stages=decoded["stages"],  # type: ignore[arg-type]
        sinks=decoded["sinks"],  # type: ignore[arg-type]
        runtime=runtime,
        path=path,
    )


def _line_of(file: str) -> int:
    head, _, tail = file.rpartition(":")
    return int(tail) if head and tail.isdigit() else 0


def _cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Each distinct cycle once (as the list of ids along it)."""
    white, grey, black = 0, 1, 2
    color: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()

    def visit(n: str) -> None:
        color[n] = grey
        stack.append(n)
        for m in graph.get(n, ()):
            c = color.get(m, white)
            if c == grey:
                cyc = stack[stack.index(m) :]
                key = frozenset(cyc)
                if key not in seen_sets:
                    seen_sets.add(key)
                    found.append(list(reversed(cyc)))
            elif c == white:
                visit(m)
        stack.pop()
        color[n] = black

    for n in graph:
        if color.get(n, white) == white:
            visit(n)
    return found


_AT = re.compile(r" - at `\$(.*)`$")


def _split_path(msg: str) -> tuple[str, str]:
    m = _AT.search(msg)
    if not m:
        return msg, ""
    return msg[: m.start()], m.group(1)


_TNAMES: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}


def _tname(obj: Any) -> str:
    return _TNAMES.get(type(obj), type(obj).__name__)


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _yaml_lines(raw: bytes) -> dict[str, int]:
    """Map JSON paths ($.a.b[0]) to 1-based line numbers, for error messages."""
    import yaml

    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[str, int] = {}

    def walk(node: Any, p: str) -> None:
        out.setdefault(p, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = f"{p}.{k.value}"
                out[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, f"{p}[{i}]")

    if root is not None:
        walk(root, "$")
    return out
