"""An online, Drain-like template miner built for unbounded streams.

How it works (after He et al., "Drain: An Online Log Parsing Approach with
Fixed Depth Tree", ICWS 2017; written here from the paper's description):

1. A message is split into tokens and masked (:mod:`._masking`): numbers,
   IPs, ids, hex, UUIDs, times, sizes and durations become typed variables
   (``<NUM>``...), the variable segments of paths and URLs too.
2. The tokens walk a fixed-depth prefix tree: first by token count, then by
   the first ``depth - 2`` tokens (variables take the ``<*>`` branch, and so
   does any token once a node has ``max_children`` branches).
3. In the leaf, the cluster whose template shares the most tokens with the
   line wins if that share reaches ``similarity_threshold`` and the line
   contradicts at most ``max_differences`` of the template's constant
   tokens, none of them an upper-case enum value (``RUNNING``), an
   exception class name, or text built around a variable whose constant
   part differs (``(uid=<NUM>)`` vs ``LOGIN(uid=<NUM>)``); the template then turns the positions where the
   two differ into ``<*>`` (``key=<*>`` for two values of one key; a key
   left empty, ``rhost=``, is not a value).  Otherwise the line starts a
   new cluster.  (Drain merges on similarity
   alone; a template that loses several constant words at once to one line
   is how "Bye Bye" and "disconnected by user" become one event, and the
   one-difference rule is what lifts Grouping Accuracy on Loghub with one
   configuration for every system.)

What makes it fit a stream:

* **Bounded memory.** At most ``max_clusters`` clusters live at once; the
  least recently matched one is evicted (LRU) and the tree nodes it alone
  used are pruned, so memory is bounded on an unbounded stream.
* **Stable ids.** A cluster's id is a hash of the template it was created
  with, so the same first line gets the same id after an eviction or in
  another process; a snapshot keeps every live cluster (template, id, tree
  path, LRU order) and :meth:`TemplateMiner.restore` rebuilds exactly the
  same tree, so a restart continues with the same ids.
* **Speed.** A line whose masked tokens were seen before, in a length
  subtree unchanged since, reuses the earlier decision (a transparent
  cache: the answer is the one the full search would give).
* **Determinism.** The outcome depends only on the order of messages, never
  on batch boundaries; ties go to the oldest cluster.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any, Final

from ._masking import Tokenizer, is_variable

__all__ = ["WILDCARD", "Cluster", "TemplateMiner"]

WILDCARD: Final = "<*>"
_SNAPSHOT_VERSION: Final = 1


class Cluster:
    """One template and the lines it has matched."""

    __slots__ = (
        "count",
        "first_ts_ns",
        "last_ts_ns",
        "path",
        "seq",
        "service",
        "template_id",
        "tokens",
    )

    def __init__(
        self,
        template_id: str,
        tokens: tuple[str, ...],
        seq: int,
        path: tuple[Any, ...],
        *,
        count: int = 1,
        first_ts_ns: int = 0,
        last_ts_ns: int = 0,
        service: str = "",
    ) -> None:
        self.template_id = template_id
        self.tokens = tokens
        self.count = count
        self.seq = seq
        self.path = path
        self.first_ts_ns = first_ts_ns
        self.last_ts_ns = last_ts_ns
        self.service = service

    @property
    def template(self) -> str:
        return " ".join(self.tokens)

    def __repr__(self) -> str:
        return f"Cluster({self.template_id}, {self.template!r}, count={self.count})"


class _Node:
    __slots__ = ("children", "clusters", "version")

    def __init__(self) -> None:
        self.children: dict[Any, _Node] = {}
        self.clusters: list[Cluster] = []
        self.version = 0


def template_id_for(tokens: tuple[str, ...], salt: int = 0) -> str:
    """The id of a cluster created with ``tokens`` (``salt`` > 0 only when
    that id is already taken by another live cluster)."""
    text = " ".join(tokens) if not salt else " ".join(tokens) + f"#{salt}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class TemplateMiner:
    """Mine templates from messages, one at a time, in stream order.

    >>> m = TemplateMiner()
    >>> a = m.add("Connection from 10.0.0.1 closed after 12ms")[0]
    >>> b = m.add("Connection from 10.0.0.7 closed after 3ms")[0]
    >>> a is b, a.template
    (True, 'Connection from <IP> closed after <DURATION>')
    """

    def __init__(
        self,
        *,
        similarity_threshold: float = 0.5,
        depth: int = 4,
        max_children: int = 100,
        max_differences: int = 1,
        max_clusters: int = 10_000,
        max_line_cache: int = 50_000,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        if not 0.0 <= similarity_threshold <= 1.0:
            raise ValueError("similarity_threshold must be within [0, 1]")
        if depth < 3:
            raise ValueError("depth must be at least 3 (root, length, one prefix token)")
        if max_clusters < 1 or max_children < 2 or max_differences < 0:
            raise ValueError(
                "max_clusters must be >= 1, max_children >= 2 and max_differences >= 0"
            )
        self.similarity_threshold = similarity_threshold
        self.prefix_depth = depth - 2
        self.max_children = max_children
        self.max_differences = max_differences
        self.max_clusters = max_clusters
        self.max_line_cache = max_line_cache
        self.tokenizer = tokenizer or Tokenizer()
        self._root: dict[int, _Node] = {}
        self._clusters: OrderedDict[str, Cluster] = OrderedDict()
        self._line_cache: dict[tuple[str, ...], tuple[Cluster, _Node, int]] = {}
        self._seq = 0
        self.evictions = 0
        self.cache_hits = 0

    # ------------------------------------------------------------------ API
    def __len__(self) -> int:
        return len(self._clusters)

    def clusters(self) -> list[Cluster]:
        """Live clusters, least recently matched first."""
        return list(self._clusters.values())

    def get(self, template_id: str) -> Cluster | None:
        return self._clusters.get(template_id)

    def statistics(self) -> dict[str, int]:
        """Live clusters and tree nodes, evictions, line-cache hits and the
        sizes of the (bounded) caches."""
        nodes = 0
        stack = list(self._root.values())
        while stack:
            node = stack.pop()
            nodes += 1
            stack.extend(node.children.values())
        cached_tokens, cached_lines = self.tokenizer.cache_sizes()
        return {
            "clusters": len(self._clusters),
            "tree_nodes": nodes,
            "evictions": self.evictions,
            "cache_hits": self.cache_hits,
            "cached_token_sequences": len(self._line_cache),
            "cached_tokens": cached_tokens,
            "cached_lines": cached_lines,
        }

    def add(self, message: str, *, ts_ns: int = 0, service: str = "") -> tuple[Cluster, int]:
        """Match ``message`` and learn from it.  Returns the cluster and what
        happened: 0 matched unchanged, 1 created, 2 template generalised."""
        return self.add_tokens(self.tokenizer.tokens(message), ts_ns=ts_ns, service=service)

    def add_tokens(
        self, tokens: tuple[str, ...], *, ts_ns: int = 0, service: str = ""
    ) -> tuple[Cluster, int]:
        hit = self._line_cache.get(tokens)
        if hit is not None and hit[1].version == hit[2]:
            cluster = hit[0]
            self.cache_hits += 1
            self._touch(cluster, ts_ns)
            return cluster, 0
        length_node = self._root.get(len(tokens))
        found = self._best_match(length_node, tokens) if length_node is not None else None
        if found is None or length_node is None:
            cluster = self._create(tokens, ts_ns, service)
            status = 1
            length_node = self._root[len(tokens)]
        else:
            cluster = found
            self._touch(cluster, ts_ns)
            merged = _merge(cluster.tokens, tokens)
            if merged != cluster.tokens:
                cluster.tokens = merged
                length_node.version += 1
                status = 2
            else:
                status = 0
        cache = self._line_cache
        if len(cache) >= self.max_line_cache:
            cache.clear()
        cache[tokens] = (cluster, length_node, length_node.version)
        return cluster, status

    # ------------------------------------------------------------- matching
    def _leaf(self, length_node: _Node, tokens: tuple[str, ...]) -> _Node | None:
        node = length_node
        for tok in tokens[: self.prefix_depth]:
            children = node.children
            nxt = children.get(WILDCARD if is_variable(tok) else tok)
            if nxt is None:
                nxt = children.get(WILDCARD)
                if nxt is None:
                    return None
            node = nxt
        return node

    def _best_match(self, length_node: _Node, tokens: tuple[str, ...]) -> Cluster | None:
        leaf = self._leaf(length_node, tokens)
        if leaf is None or not leaf.clusters:
            return None
        best: Cluster | None = None
        best_key = (-1.0, -1, 0)
        threshold = self.similarity_threshold
        max_differences = self.max_differences
        for cluster in leaf.clusters:
            sim, params = _similarity(cluster.tokens, tokens, max_differences)
            if sim < threshold:
                continue
            key = (sim, params, -cluster.seq)
            if key > best_key:
                best, best_key = cluster, key
        return best

    # ------------------------------------------------------------ lifecycle
    def _touch(self, cluster: Cluster, ts_ns: int) -> None:
        cluster.count += 1
        cluster.last_ts_ns = max(cluster.last_ts_ns, ts_ns)
        self._clusters.move_to_end(cluster.template_id)

    def _create(self, tokens: tuple[str, ...], ts_ns: int, service: str) -> Cluster:
        salt = 0
        tid = template_id_for(tokens)
        while tid in self._clusters:
            salt += 1
            tid = template_id_for(tokens, salt)
        path = self._insert_path(tokens)
        cluster = Cluster(
            tid, tokens, self._seq, path, first_ts_ns=ts_ns, last_ts_ns=ts_ns, service=service
        )
        self._seq += 1
        self._attach(cluster)
        while len(self._clusters) > self.max_clusters:
            self._evict_oldest()
        return cluster

    def _insert_path(self, tokens: tuple[str, ...]) -> tuple[Any, ...]:
        """The tree path a new cluster of ``tokens`` goes to (Drain's rule:
        a variable or an overflowing node takes the ``<*>`` branch)."""
        path: list[Any] = [len(tokens)]
        node = self._root.get(len(tokens))
        for tok in tokens[: self.prefix_depth]:
            key = WILDCARD if is_variable(tok) else tok
            if node is not None:
                children = node.children
                if key not in children and len(children) >= self.max_children - 1:
                    key = WILDCARD
                node = children.get(key)
            path.append(key)
        return tuple(path)

    def _attach(self, cluster: Cluster) -> None:
        path = cluster.path
        node = self._root.get(path[0])
        if node is None:
            node = self._root[path[0]] = _Node()
        length_node = node
        for key in path[1:]:
            nxt = node.children.get(key)
            if nxt is None:
                nxt = node.children[key] = _Node()
            node = nxt
        node.clusters.append(cluster)
        length_node.version += 1
        self._clusters[cluster.template_id] = cluster

    def _evict_oldest(self) -> None:
        _, cluster = self._clusters.popitem(last=False)
        self.evictions += 1
        path = cluster.path
        length_node = self._root[path[0]]
        length_node.version += 1
        trail = [length_node]
        node = length_node
        for key in path[1:]:
            node = node.children[key]
            trail.append(node)
        node.clusters.remove(cluster)
        # Prune the nodes this cluster alone kept alive, deepest first.
        for depth in range(len(trail) - 1, 0, -1):
            child = trail[depth]
            if child.clusters or child.children:
                return
            del trail[depth - 1].children[path[depth]]
        if not length_node.children and not length_node.clusters:
            del self._root[path[0]]

    # ------------------------------------------------------------ snapshots
    def snapshot(self) -> dict[str, Any]:
        """Every live cluster, least recently matched first (msgspec-encodable)."""
        return {
            "version": _SNAPSHOT_VERSION,
            "seq": self._seq,
            "evictions": self.evictions,
            "clusters": [
                [
                    c.template_id,
                    list(c.tokens),
                    c.count,
                    c.seq,
                    list(c.path),
                    c.first_ts_ns,
                    c.last_ts_ns,
                    c.service,
                ]
                for c in self._clusters.values()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the clusters by those of a :meth:`snapshot`."""
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unknown template miner snapshot version {state.get('version')!r}")
        self._root = {}
        self._clusters = OrderedDict()
        self._line_cache = {}
        for tid, tokens, count, seq, path, first, last, service in state["clusters"]:
            self._attach(
                Cluster(
                    tid,
                    tuple(tokens),
                    seq,
                    tuple(path),
                    count=count,
                    first_ts_ns=first,
                    last_ts_ns=last,
                    service=service,
                )
            )
        self._seq = int(state["seq"])
        self.evictions = int(state.get("evictions", 0))


def _similarity(
    template: tuple[str, ...], tokens: tuple[str, ...], max_differences: int
) -> tuple[float, int]:
    """(share of the line's tokens equal to the template's constant tokens,
    count of ``<*>`` in the template), or (-1, 0) when the line may not join:
    it contradicts more than ``max_differences`` constant tokens, or one of
    the differing tokens is an enum value (``RUNNING``, ``SCREEN_ON``) —
    upper-case identifiers name states and event types, they are what the
    event *is*, never a variable.  Typed masks (``<NUM>``) count as equal.
    """
    equal = 0
    params = 0
    differences = 0
    for t, x in zip(template, tokens):
        if t == x:
            if t == WILDCARD:
                params += 1
            else:
                equal += 1
        elif t == WILDCARD or (
            t.endswith(_KEY_WILDCARD) and len(x) > len(t) - 3 and x.startswith(t[:-3])
        ):
            params += 1
        else:
            differences += 1
            if differences > max_differences or _is_enum(t) or _is_enum(x):
                return -1.0, 0
            if "<" in t and "<" in x and _other_skeleton(t, x):
                return -1.0, 0
    return equal / len(tokens) if tokens else 1.0, params


_ENUM_STRIP: Final = "()[]{},;:.'\"!?"


_MASK = re.compile(r"<[A-Z*]+>")


def _other_skeleton(t: str, x: str) -> bool:
    """Two tokens built around variables (``(uid=<NUM>)`` and
    ``LOGIN(uid=<NUM>)``) whose constant text differs come from different
    format strings: a different event, not a variable.  Paths are the
    exception: their depth varies within one event."""
    if "/" in t or "/" in x:
        return False
    return _MASK.sub("", t) != _MASK.sub("", x)


def _is_enum(token: str) -> bool:
    """An upper-case identifier (``RUNNING``, ``TASK_ABORT``, the last part of
    ``android.intent.action.SCREEN_ON``) or an exception class name, not a
    mask such as ``<NUM>``."""
    if token[:1] == "<":
        return False
    core = token.strip(_ENUM_STRIP).rpartition(".")[2]
    if core.endswith(_FAILURE_TYPES):
        return True
    return len(core) >= 2 and core.isupper() and "<" not in core


# Exception and error class names (``TimeoutError``, ``java.io.IOException``)
# say which failure it is: like enum values, they are never a variable.
_FAILURE_TYPES: Final = ("Error", "Exception", "Fault")


def _merge(template: tuple[str, ...], tokens: tuple[str, ...]) -> tuple[str, ...]:
    """The template generalised to cover ``tokens``: differing positions
    become ``<*>``, or ``key=<*>`` where both give the same key a value."""
    if template == tokens:
        return template
    return tuple(t if t == x else _generalise(t, x) for t, x in zip(template, tokens))


_KEY_WILDCARD: Final = "=" + WILDCARD


def _generalise(t: str, x: str) -> str:
    """One differing position: ``key=<*>`` when both give the same key a
    value (a key left empty, ``rhost=``, is another situation than a key
    with a value, so it does not become ``rhost=<*>``), else ``<*>``."""
    if t == WILDCARD:
        return t
    key, eq, value = t.partition("=")
    if eq and key and value and len(x) > len(key) + 1 and x.startswith(key + "="):
        return key + _KEY_WILDCARD
    return WILDCARD
