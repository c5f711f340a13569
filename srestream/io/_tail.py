"""Following log files as they grow: the tail source.

Every ``poll_interval`` the glob patterns are expanded and each file is
known by its identity, (device, inode), not by its name, so that:

* **appends** are read in bounded chunks (``read_chunk_bytes`` per file per
  poll); a last line without its newline is held until it is complete;
* **rotation by rename** (``app.log`` -> ``app.log.1``, a new ``app.log``):
  the renamed file is still the same inode, read to its end; the new file
  at the old name is read only once the old one has been read to its end,
  so lines come out in the order they were written.  A renamed file that no
  longer matches the globs (or a deleted one) is drained through its open
  descriptor and closed after ``rotate_wait`` without growth;
* **copytruncate** (the file is copied, then truncated in place) is seen as
  a file shorter than what was read, or whose first line changed.  If the
  copy matches the globs (``app.log*``) it is recognised by its first line,
  left unread while it only duplicates what was read, and read from where
  the truncated file stood when the truncation is seen: nothing is lost.
  Without a visible copy, reading restarts at 0 (lines written between the
  last poll and the truncation are gone with copytruncate, by design);
* **new files** matching the globs are picked up at the next poll.

The snapshot lists, for each file, its path, (device, inode), the byte
offset and line number just past the last line *yielded*, and its first
line (to tell a truncated file or a reused inode apart).  A restart seeks
each file back there; a file rotated out of the globs while the process was
down is found again by its inode in its directory and read to its end.

When there is nothing to read the source still yields an empty batch every
poll, so checkpoint barriers pass while the files are idle.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any, Literal

import anyio

from .._component import BuildContext, Clock, SourceConfig, SystemClock
from .._duration import Duration
from .._records import RawLine
from .._registry import register
from ._lines import cut_lines, last_line

__all__ = ["FileTail", "TailSource"]

HEAD_MAX = 256
"""Bytes of a file's first line kept as its fingerprint."""


class _File:
    """One followed file.  ``pos``/``line_no``/``rest``/``ready`` are what has
    been read; ``offset``/``line`` what has been yielded (the checkpoint)."""

    __slots__ = (
        "after",
        "after_mark",
        "closed",
        "eof_count",
        "fd",
        "ghost",
        "head",
        "key",
        "last_growth",
        "line",
        "line_no",
        "name",
        "offset",
        "orphan_since",
        "path",
        "pos",
        "ready",
        "rest",
        "unsure",
    )

    def __init__(self, key: tuple[int, int], path: str, name: str, fd: int) -> None:
        self.key = key
        self.path = path
        self.name = name
        self.fd = fd
        self.pos = 0
        self.line_no = 0
        self.rest = b""
        self.ready: list[RawLine] = []
        self.offset = 0
        self.line = 0
        self.head = b""
        self.orphan_since: float | None = None
        self.last_growth = 0.0
        self.eof_count = 0
        self.after: _File | None = None
        self.after_mark = 0
        self.closed = False
        self.ghost = False
        """Lines read before a truncation with no copy: yielded, never checkpointed."""
        self.unsure = False
        """New, first line incomplete and the start of a followed file's: maybe a copy."""

    def head_complete(self) -> bool:
        return self.head.endswith(b"\n") or len(self.head) >= HEAD_MAX

    def at(self, offset: int, line: int) -> None:
        self.pos = self.offset = offset
        self.line_no = self.line = line

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def _read_head(fd: int) -> bytes:
    data = os.pread(fd, HEAD_MAX, 0)
    nl = data.find(b"\n")
    return data[: nl + 1] if nl >= 0 else data


class FileTail:
    """Running logic of a tail source."""

    def __init__(
        self,
        patterns: list[str],
        *,
        base_dir: str = ".",
        batch_size: int = 1024,
        poll_interval_s: float = 0.25,
        read_chunk_bytes: int = 1 << 20,
        max_line_bytes: int = 1 << 20,
        rotate_wait_s: float = 5.0,
        read_from: str = "beginning",
        clock: Clock | None = None,
    ) -> None:
        self.patterns = [p if os.path.isabs(p) else os.path.join(base_dir, p) for p in patterns]
        self.base_dir = os.path.abspath(base_dir)
        self.batch_size = max(1, batch_size)
        self.poll_interval_s = poll_interval_s
        self.read_chunk_bytes = max(1, read_chunk_bytes)
        self.max_line_bytes = max(1, max_line_bytes)
        self.rotate_wait_s = rotate_wait_s
        self.read_from = read_from
        self.clock = clock or SystemClock()
        self._files: list[_File] = []
        self._copies: dict[tuple[int, int], tuple[str, int, bytes]] = {}
        """Files that duplicate the start of a followed one (a copytruncate
        copy before the truncation is seen): key -> (path, fd, head)."""
        self._restored: list[dict[str, Any]] | None = None
        self._started = False

    # ------------------------------------------------------------ checkpoint
    def snapshot(self) -> dict[str, Any]:
        return {
            "files": [
                {
                    "path": f.path,
                    "name": f.name,
                    "dev": f.key[0],
                    "ino": f.key[1],
                    "offset": f.offset,
                    "line": f.line,
                    "head": f.head.hex(),
                }
                for f in self._files
                if not f.ghost and not f.unsure and not (f.closed and not f.ready)
            ]
            + (self._restored or [])
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._restored = [dict(x) for x in state.get("files", ())]

    # ------------------------------------------------------------------ scan
    def _name(self, path: str) -> str:
        rel = os.path.relpath(path, self.base_dir)
        return path if rel.startswith("..") else rel

    def _scan(self) -> dict[str, tuple[int, int, int]]:
        """path -> (dev, ino, size) of the regular files matching the globs."""
        out: dict[str, tuple[int, int, int]] = {}
        for pat in self.patterns:
            matches = glob.glob(pat, recursive=True) if glob.has_magic(pat) else [pat]
            for m in sorted(matches):
                m = os.path.normpath(m)
                if m in out:
                    continue
                try:
                    st = os.stat(m)
                except OSError:
                    continue  # gone between the glob and the stat, or never there
                if st.st_mode & 0o170000 == 0o100000:
                    out[m] = (st.st_dev, st.st_ino, st.st_size)
        return out

    def _open(self, path: str, key: tuple[int, int]) -> int | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != key:  # replaced between stat and open: next poll
            os.close(fd)
            return None
        return fd

    def _may_be_copy_in_progress(self, head: bytes) -> bool:
        """Whether an incomplete first line is the start of a followed file's."""
        return any(
            not f.closed and not f.ghost and f.head_complete() and f.head.startswith(head)
            for f in self._files
        )

    def _live_head_owner(self, head: bytes) -> _File | None:
        for f in self._files:
            if (not f.closed and not f.ghost and f.orphan_since is None and f.head == head
                    and f.head_complete()):
                return f
        return None

    def _discover(self, now: float) -> None:
        scan = self._scan()
        by_key = {f.key: f for f in self._files if not f.closed and not f.ghost}
        holder = {f.path: f for f in by_key.values()}
        seen: set[tuple[int, int]] = set()
        new: list[tuple[str, tuple[int, int], int]] = []
        for path, (dev, ino, size) in scan.items():
            key = (dev, ino)
            f = by_key.get(key)
            if f is not None:
                f.path = path
                f.orphan_since = None
                seen.add(key)
            elif key not in self._copies:
                new.append((path, key, size))
        for key in [k for k in self._copies if k not in {(d, i) for d, i, _ in scan.values()}]:
            os.close(self._copies.pop(key)[1])
        for f in by_key.values():
            if f.key not in seen and f.orphan_since is None:
                f.orphan_since = now  # renamed out of the globs or deleted: drain it
        restored = self._take_restored()
        first_start = not self._started and restored is None
        for path, key, size in new:
            fd = self._open(path, key)
            if fd is None:
                continue
            state = restored.pop(key, None) if restored else None
            if state is None:
                head = _read_head(fd)
                if head.endswith(b"\n") or len(head) >= HEAD_MAX:
                    if self._live_head_owner(head):
                        self._copies[key] = (path, fd, head)
                        continue
                    unsure = False
                else:
                    # Its first line is not all there yet: if it may still
                    # become a followed file's, it is a copytruncate copy
                    # being written; read now, it would be taken for a new
                    # file and read again from its start.  Held unread until
                    # its first line is whole (see _decided).
                    unsure = self._may_be_copy_in_progress(head)
            f = _File(key, path, self._name(path), fd)
            f.last_growth = now
            f.unsure = state is None and unsure
            if state is not None:
                f.name = str(state.get("name") or f.name)
                f.at(int(state["offset"]), int(state["line"]))
                f.head = bytes.fromhex(state.get("head", ""))
            elif first_start and self.read_from == "end":
                f.at(size, 0)
                f.head = _read_head(fd)
            old = holder.get(path)
            if old is not None and old.key != key:
                f.after, f.after_mark = old, old.eof_count
            self._files.append(f)
        if restored:
            self._find_rotated(restored, now)
        self._started = True

    def _take_restored(self) -> dict[tuple[int, int], dict[str, Any]] | None:
        if self._restored is None:
            return None
        out = {(int(s["dev"]), int(s["ino"])): s for s in self._restored}
        self._restored = None
        return out

    def _find_rotated(self, restored: dict[tuple[int, int], dict[str, Any]], now: float) -> None:
        """Files of the checkpoint no longer under the globs: look for their
        inode in their directory (rotated while we were down) and drain them."""
        for (dev, ino), s in restored.items():
            directory = os.path.dirname(str(s["path"])) or "."
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for e in entries:
                if e.inode() == ino and e.is_file(follow_symlinks=False):
                    fd = self._open(e.path, (dev, ino))
                    if fd is None:
                        continue
                    f = _File((dev, ino), e.path, str(s.get("name") or s["path"]), fd)
                    f.at(int(s["offset"]), int(s["line"]))
                    f.head = bytes.fromhex(s.get("head", ""))
                    f.orphan_since = f.last_growth = now
                    self._files.insert(0, f)
                    break

    # ------------------------------------------------------------------ read
    def _truncated(self, f: _File, size: int) -> bool:
        if size < f.pos:
            return True
        if size > f.pos and f.head and f.pos > 0:
            return os.pread(f.fd, len(f.head), 0) != f.head
        return False

    def _on_truncation(self, f: _File, now: float) -> None:
        """``f`` was truncated in place: continue in its copy if one is seen,
        else from the start of the new content."""
        for u in self._files:  # a copy still being written when last seen
            if u.unsure and not u.closed:
                self._decided(u)
        copy = next((k for k, c in self._copies.items() if c[2] == f.head), None)
        if copy is None:
            self._discover(now)  # the copy may have appeared since the scan
            copy = next((k for k, c in self._copies.items() if c[2] == f.head), None)
        idx = self._files.index(f)
        if copy is not None:
            path, fd, head = self._copies.pop(copy)
            c = _File(copy, path, f.name, fd)
            c.pos, c.line_no, c.rest, c.ready = f.pos, f.line_no, f.rest, f.ready
            c.offset, c.line, c.head = f.offset, f.line, head
            c.orphan_since = c.last_growth = now
            self._files.insert(idx, c)
            f.after, f.after_mark = c, c.eof_count
        elif f.ready:
            ghost = _File(f.key, f.path, f.name, -1)
            ghost.ready, ghost.ghost, ghost.closed = f.ready, True, True
            self._files.insert(idx, ghost)
        f.ready, f.rest, f.head = [], b"", b""
        f.at(0, 0)

    def _decided(self, f: _File) -> bool:
        """Whether an unsure file may be read: once its first line is whole it
        is either a copy of a followed file (moved to the copies, unread) or
        a file of its own."""
        head = _read_head(f.fd)
        if not (head.endswith(b"\n") or len(head) >= HEAD_MAX):
            if self._may_be_copy_in_progress(head):
                return False
        elif self._live_head_owner(head) is not None:
            self._copies[f.key] = (f.path, f.fd, head)
            f.fd = -1
            f.close()
            return False
        f.unsure = False
        return True

    def _read(self, f: _File, now: float) -> None:
        if f.unsure and not self._decided(f):
            return
        if f.after is not None:
            if not f.after.closed and f.after.eof_count <= f.after_mark:
                return  # the file it replaced is not read to its end yet
            f.after = None
        size = os.fstat(f.fd).st_size
        if self._truncated(f, size):
            self._on_truncation(f, now)
            if f.after is not None:
                self._read(f.after, now)
                return self._read(f, now)
        if size > f.pos:
            data = os.pread(f.fd, min(self.read_chunk_bytes, size - f.pos), f.pos)
            f.last_growth = now
            start = f.pos
            f.pos += len(data)
            f.line_no, end, f.rest = cut_lines(f.name, f.rest + data, f.line_no,
                                               start - len(f.rest), f.ready)
            while len(f.rest) > self.max_line_bytes:  # bounded memory: cut an endless line
                piece, f.rest = f.rest[: self.max_line_bytes], f.rest[self.max_line_bytes :]
                f.ready.append(last_line(f.name, piece, f.line_no, end))
                f.line_no += 1
                end += len(piece)
            if not f.head_complete():
                f.head = _read_head(f.fd)
        if f.pos >= size:
            f.eof_count += 1
            if f.orphan_since is not None and now - max(f.orphan_since, f.last_growth) >= (
                self.rotate_wait_s
            ):
                if f.rest:  # the file will not grow: its unterminated last line is whole
                    f.ready.append(last_line(f.name, f.rest, f.line_no, f.pos - len(f.rest)))
                    f.line_no += 1
                    f.rest = b""
                f.close()

    def _poll(self) -> int:
        """Discover files and read a chunk of each (blocking: run in a
        worker thread).  Returns the number of lines ready."""
        now = time.monotonic()
        self._discover(now)
        for f in list(self._files):
            if not f.closed:
                self._read(f, now)
        self._files = [f for f in self._files if not f.closed or f.ready]
        return sum(len(f.ready) for f in self._files)

    def _batches(self) -> Iterator[list[RawLine]]:
        """Everything read, cut into batches in file order.  Each file's
        checkpoint position moves to its last line in a batch just before
        that batch is handed out, so a snapshot taken between two batches
        counts exactly the lines yielded."""
        size = self.batch_size
        batch: list[RawLine] = []
        marks: list[tuple[_File, RawLine]] = []
        for f in list(self._files):
            ready, f.ready = f.ready, []
            k = 0
            while k < len(ready):
                take = ready[k : k + size - len(batch)]
                k += len(take)
                batch.extend(take)
                marks.append((f, take[-1]))
                if len(batch) >= size:
                    _commit(marks)
                    yield batch
                    batch, marks = [], []
        if batch:
            _commit(marks)
            yield batch
        self._files = [f for f in self._files if not f.closed or f.ready]

    async def __call__(self) -> AsyncGenerator[list[RawLine], None]:
        if self._files:  # a second run of the same logic: start over from the positions
            self._restored = self.snapshot()["files"]
            self._files = []
        try:
            while True:
                n = await anyio.to_thread.run_sync(self._poll)
                if n:
                    for batch in self._batches():
                        yield batch
                else:
                    yield []
                    await self.clock.sleep(self.poll_interval_s)
        finally:
            # Release the descriptors but keep the files listed: the runner
            # may take the final snapshot after closing this generator.
            for f in self._files:
                if f.fd >= 0:
                    os.close(f.fd)
                    f.fd = -1
            for _path, fd, _head in self._copies.values():
                os.close(fd)
            self._copies.clear()


def _commit(marks: list[tuple[_File, RawLine]]) -> None:
    for f, last in marks:
        if not f.ghost:
            f.offset, f.line = last.offset, last.position


@register("Follow log files as they grow (globs, rotation, copytruncate), resuming from checkpoints.")
class TailSource(SourceConfig, frozen=True, kw_only=True, tag="tail"):
    """Follows files by identity (device, inode), not by name.  Appends are
    read in bounded chunks and a partial last line waits for its newline.
    A file renamed away (``app.log`` -> ``app.log.1``) is read to its end
    before the new ``app.log``; a copytruncated file is seen shorter or with
    a new first line, and its copy, when the globs match it, is read from
    where the original stood.  The checkpoint holds each file's (device,
    inode, offset, line, first line): a restart neither loses nor repeats a
    line, even for files rotated while it was down.  An idle source yields an
    empty batch every poll so checkpoints pass."""

    paths: list[str]
    """Files or glob patterns to follow, relative to the pipeline file.  A
    pattern may match nothing yet: files are picked up when they appear."""
    poll_interval: Duration = Duration.parse("250ms")
    """How often the globs are expanded and the files checked for new data."""
    read_chunk_bytes: int = 1 << 20
    """At most this many bytes are read from one file per poll."""
    max_line_bytes: int = 1 << 20
    """A line longer than this is cut into pieces of this size."""
    rotate_wait: Duration = Duration.parse("5s")
    """How long a file rotated out of the globs (or deleted) is still read
    after it stopped growing, for writers that reopen late."""
    read_from: Literal["beginning", "end"] = "beginning"
    """Where to start in files that exist at the first start (without a
    checkpoint).  Files that appear later are always read from the start."""

    def build(self, ctx: BuildContext) -> FileTail:
        return FileTail(
            self.paths,
            base_dir=ctx.base_dir,
            batch_size=ctx.batch_size,
            poll_interval_s=self.poll_interval.seconds,
            read_chunk_bytes=self.read_chunk_bytes,
            max_line_bytes=self.max_line_bytes,
            rotate_wait_s=self.rotate_wait.seconds,
            read_from=self.read_from,
            clock=ctx.clock,
        )
