"""The call tree of one trace and its root-cause span.

A trace's spans form a tree through ``parent_span_id``.  Spans get lost
(sampling, a crashed exporter), so the tree is really a forest: a span whose
parent was never seen becomes a root of its own, and the number of missing
parents is reported rather than the trace being dropped.

The root cause of a failing trace is the erroring span none of whose
children errored (the error started there and propagated up); when several
branches failed independently the earliest one wins, by start time, then end
time, then span id so that the choice never depends on arrival order.

>>> from srestream import Span
>>> db = Span(trace_id="t", span_id="c", parent_span_id="b", service="db",
...           start_ts_ns=2, end_ts_ns=3, error=True)
>>> api = Span(trace_id="t", span_id="b", parent_span_id="a", service="api",
...            start_ts_ns=1, end_ts_ns=4, error=True)
>>> tree = CallTree.build([api, db])
>>> tree.root_cause().service, tree.missing_spans, tree.path_to(tree.root_cause())
('db', 1, ['api', 'db'])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .._records import Span

__all__ = ["CallTree"]


class CallTree:
    """Spans of one trace indexed by id, with each span's children."""

    __slots__ = ("by_id", "children", "missing_spans", "roots", "spans")

    def __init__(
        self,
        spans: Sequence[Span],
        by_id: dict[str, Span],
        children: dict[str, list[Span]],
        roots: list[Span],
        missing_spans: int,
    ) -> None:
        self.spans = spans
        self.by_id = by_id
        self.children = children
        self.roots = roots
        self.missing_spans = missing_spans

    @classmethod
    def build(cls, spans: Sequence[Span]) -> CallTree:
        by_id: dict[str, Span] = {}
        for s in spans:
            # A duplicate span id (a retried export) keeps the first copy.
            by_id.setdefault(s.span_id, s)
        children: dict[str, list[Span]] = {}
        roots: list[Span] = []
        missing: set[str] = set()
        for s in by_id.values():
            parent = s.parent_span_id
            if parent and parent in by_id and parent != s.span_id:
                try:
                    children[parent].append(s)
                except KeyError:
                    children[parent] = [s]
            else:
                if parent and parent != s.span_id:
                    missing.add(parent)
                roots.append(s)
        roots.sort(key=_order)
        return cls(spans, by_id, children, roots, len(missing))

    def entry(self) -> Span | None:
        """The span the trace started with: the earliest root."""
        return self.roots[0] if self.roots else None

    def root_cause_spans(self) -> list[Span]:
        """Erroring spans none of whose children errored, earliest first.

        With spans missing, an erroring span may look childless only because
        its failing child was lost: when a candidate hangs below a gap (its
        subtree's top has a missing parent) and another candidate of another
        subtree encloses it in time, the enclosing one is taken for a caller
        across the gap and dropped.
        """
        out = []
        children = self.children
        for s in self.by_id.values():
            if s.error and not any(c.error for c in children.get(s.span_id, ())):
                out.append(s)
        if self.missing_spans and len(out) > 1:
            top = {s.span_id: self._top(s) for s in out}
            below_gap = [s for s in out if top[s.span_id].parent_span_id]
            out = [
                p
                for p in out
                if not any(
                    top[c.span_id] is not top[p.span_id]
                    and p.start_ts_ns <= c.start_ts_ns
                    and c.end_ts_ns <= p.end_ts_ns
                    for c in below_gap
                )
            ]
        out.sort(key=_order)
        return out

    def _top(self, span: Span) -> Span:
        """The root of ``span``'s tree (the whole trace's, or a gap's)."""
        seen = {span.span_id}
        while span.parent_span_id in self.by_id and span.parent_span_id not in seen:
            span = self.by_id[span.parent_span_id]
            seen.add(span.span_id)
        return span

    def root_cause(self) -> Span | None:
        found = self.root_cause_spans()
        return found[0] if found else None

    def path_to(self, span: Span) -> list[str]:
        """Services from the top of ``span``'s tree down to it, with
        consecutive repeats folded (``api -> api -> db`` is ``api, db``)."""
        chain: list[str] = []
        seen: set[str] = set()
        cur: Span | None = span
        while cur is not None and cur.span_id not in seen:
            seen.add(cur.span_id)
            if not chain or chain[-1] != cur.service:
                chain.append(cur.service)
            cur = self.by_id.get(cur.parent_span_id) if cur.parent_span_id else None
        chain.reverse()
        return chain

    def edges(self) -> Iterator[tuple[Span, Span]]:
        """(caller span, callee span) for every call that crosses services."""
        by_id = self.by_id
        for s in by_id.values():
            p = by_id.get(s.parent_span_id) if s.parent_span_id else None
            if p is not None and p.service != s.service:
                yield p, s

    def walk(self) -> Iterator[tuple[Span, int]]:
        """(span, depth) depth first from each root, children by start time."""
        order = self.children
        stack = [(r, 0) for r in reversed(self.roots)]
        seen: set[str] = set()
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            yield span, depth
            kids = sorted(order.get(span.span_id, ()), key=_order)
            stack.extend((k, depth + 1) for k in reversed(kids))

    def covering_span(self, service: str, ts_ns: int) -> Span | None:
        """The narrowest span of ``service`` whose interval holds ``ts_ns``."""
        best: Span | None = None
        for s in self.by_id.values():
            if (
                s.service == service
                and s.start_ts_ns <= ts_ns <= s.end_ts_ns
                and (best is None or _narrower(s, best))
            ):
                best = s
        return best


def _order(s: Span) -> tuple[int, int, str]:
    return (s.start_ts_ns, s.end_ts_ns, s.span_id)


def _narrower(a: Span, b: Span) -> bool:
    da = a.end_ts_ns - a.start_ts_ns
    db = b.end_ts_ns - b.start_ts_ns
    return (da, a.span_id) < (db, b.span_id)
