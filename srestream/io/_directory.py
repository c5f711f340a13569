"""The directory sink of SPEC §4: one JSON-lines file per record kind.

``deadletter.jsonl``, ``alerts.jsonl``, ``budgets.jsonl``,
``incidents.jsonl``, ``notifications.jsonl`` and ``timeline/<id>.jsonl``
(see :func:`srestream._output.output_file_for`).  The snapshot is the size
of each file at the checkpoint; a resumed run truncates back to it, so a
crash between checkpoints never leaves a record written twice.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any

import anyio

from .._component import BuildContext, SinkConfig
from .._output import encode_lines, output_file_for
from .._registry import register

__all__ = ["DirectorySink", "DirectoryWriter"]


class DirectoryWriter:
    """Running logic of a directory sink."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._files: dict[str, IO[bytes]] = {}
        self._restored: dict[str, int] | None = None

    def snapshot(self) -> dict[str, int]:
        for f in self._files.values():
            f.flush()
        sizes = dict(self._restored or {})
        sizes.update({name: f.tell() for name, f in self._files.items()})
        return sizes

    def restore(self, state: dict[str, int]) -> None:
        self._restored = {str(k): int(v) for k, v in state.items()}

    def flush(self) -> None:
        for f in self._files.values():
            f.flush()

    def _prepare(self) -> None:
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        keep = self._restored
        for root, _dirs, names in os.walk(self.path):
            for n in names:
                if not n.endswith(".jsonl"):
                    continue
                full = os.path.join(root, n)
                rel = os.path.relpath(full, self.path)
                if keep is not None and rel in keep:
                    with open(full, "r+b") as f:
                        f.truncate(keep[rel])
                elif rel == os.path.basename(rel) or rel.startswith("timeline" + os.sep):
                    os.remove(full)  # output of an earlier run, or written after the checkpoint

    def _open(self, rel: str) -> IO[bytes]:
        full = os.path.join(self.path, rel)
        os.makedirs(os.path.dirname(full), mode=0o700, exist_ok=True)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        f = os.fdopen(fd, "ab")
        self._files[rel] = f
        return f

    def write(self, batch: Sequence[Any]) -> None:
        if not batch:
            return
        first = output_file_for(batch[0])
        t0 = type(batch[0])
        groups: dict[str, Sequence[Any]]
        if not first.startswith("timeline/") and all(type(r) is t0 for r in batch):
            groups = {first: batch}
        else:
            groups = {}
            for r in batch:
                groups.setdefault(output_file_for(r), []).append(r)  # type: ignore[attr-defined]
        for rel, recs in groups.items():
            f = self._files.get(rel) or self._open(rel)
            f.write(encode_lines(recs))

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    async def __call__(self, batches: AsyncIterator[Sequence[Any]], /) -> None:
        await anyio.to_thread.run_sync(self._prepare)
        try:
            async for batch in batches:
                self.write(batch)
            self.flush()
        finally:
            self.close()


@register("Write records to an output directory, one JSON-lines file per kind (SPEC §4).")
class DirectorySink(SinkConfig, frozen=True, kw_only=True, tag="directory"):
    path: str = "out"
    """Output directory, relative to the pipeline file; --out overrides it."""

    def build(self, ctx: BuildContext) -> DirectoryWriter:
        return DirectoryWriter(ctx.out_dir or ctx.resolve(self.path))
