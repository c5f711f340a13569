"""The simulated service graph: frontends → gateways → mid services → datastores.

Names come from fixed vocabularies in order (so a scenario file can name
``orders-db`` without knowing the seed); which service calls which is drawn
from the seed.  Mid services sit in three layers and only call the next
layers and datastores, so the graph is a DAG and a request's call tree stays
bounded.  Every service except the frontends has at least one caller.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from ._scenario import ServiceCounts

__all__ = ["ServiceGraph", "SimService", "build_graph", "split_counts"]

_FRONTENDS = ("web", "mobile-bff", "partner-api", "admin-ui", "storefront", "checkout-ui")
_GATEWAYS = ("api-gateway", "edge-gateway", "internal-gateway", "graphql-gateway")
_MIDS = (
    "checkout",
    "cart",
    "payments",
    "inventory",
    "catalog",
    "search",
    "users",
    "orders",
    "shipping",
    "pricing",
    "recommendations",
    "notifications",
    "auth",
    "reviews",
    "promotions",
    "accounts",
    "billing",
    "fraud",
    "tax",
    "media",
    "loyalty",
    "returns",
    "invoices",
    "ledger",
)
_DATASTORES = (
    "orders-db",
    "users-db",
    "catalog-db",
    "session-cache",
    "search-index",
    "payments-db",
    "inventory-db",
    "events-queue",
    "media-store",
    "ledger-db",
    "pricing-cache",
    "audit-db",
)
_TEAMS = ("commerce", "identity", "discovery", "fulfillment", "money", "growth", "trust")
_VERBS = ("GET", "GET", "GET", "POST", "PUT")


class SimService(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: str
    team: str
    dependencies: list[str]
    endpoints: list[str]
    components: list[str]


class ServiceGraph(msgspec.Struct, frozen=True, kw_only=True):
    services: list[SimService]

    def index(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.services)}

    def callers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {s.name: [] for s in self.services}
        for s in self.services:
            for d in s.dependencies:
                out[d].append(s.name)
        return out

    def upstream_of(self, name: str) -> list[str]:
        """Every service whose requests may pass through ``name`` (its
        transitive callers), nearest first."""
        callers = self.callers()
        seen: list[str] = []
        frontier = [name]
        while frontier:
            nxt = []
            for n in frontier:
                for c in callers[n]:
                    if c not in seen:
                        seen.append(c)
                        nxt.append(c)
            frontier = nxt
        return seen


def split_counts(c: ServiceCounts) -> tuple[int, int, int, int]:
    """(frontends, gateways, mids, datastores); ValueError when they cannot add up."""
    n = c.count
    fe = c.frontends if c.frontends is not None else max(1, round(n * 0.06))
    gw = c.gateways if c.gateways is not None else max(1, round(n * 0.06))
    ds = c.datastores if c.datastores is not None else max(1, round(n * 0.2))
    mid = n - fe - gw - ds
    if min(fe, gw, ds) < 1 or mid < 1:
        raise ValueError(
            f"{n} services cannot hold {fe} frontends, {gw} gateways and {ds} datastores "
            "with at least one mid service (each kind needs at least one)"
        )
    return fe, gw, mid, ds


def _names(vocab: tuple[str, ...], n: int) -> list[str]:
    out = []
    for i in range(n):
        base = vocab[i % len(vocab)]
        k = i // len(vocab)
        out.append(base if k == 0 else f"{base}-{k + 1}")
    return out


def build_graph(counts: ServiceCounts, seed: int) -> ServiceGraph:
    """The service graph for ``counts``, its edges drawn from ``seed``."""
    rng = random.Random(f"{seed}:graph")
    fe_n, gw_n, mid_n, ds_n = split_counts(counts)
    fes, gws = _names(_FRONTENDS, fe_n), _names(_GATEWAYS, gw_n)
    mids, dss = _names(_MIDS, mid_n), _names(_DATASTORES, ds_n)
    # Three layers of mid services: layer k calls only layers > k.
    layers = [mids[i::3] for i in range(3)] if mid_n >= 3 else [mids]
    layer_of = {m: k for k, layer in enumerate(layers) for m in layer}
    deps: dict[str, list[str]] = {n: [] for n in fes + gws + mids + dss}
    for i, f in enumerate(fes):
        deps[f].append(gws[i % gw_n])
    for g in gws:
        deps[g].extend(rng.sample(layers[0], min(len(layers[0]), rng.randint(2, 4))))
    for m in mids:
        k = layer_of[m]
        lower = [x for layer in layers[k + 1 :] for x in layer]
        if lower:
            deps[m].extend(rng.sample(lower, min(len(lower), rng.randint(0, 2))))
        deps[m].extend(rng.sample(dss, min(ds_n, rng.randint(1, 2))))
    # Everyone but the frontends has a caller.
    called = {d for ds in deps.values() for d in ds}
    for m in [x for layer in layers[1:] for x in layer]:
        if m not in called:
            k = layer_of[m]
            upper = [x for layer in layers[:k] for x in layer]
            deps[rng.choice(upper)].append(m)
    for m in layers[0]:
        if m not in called:
            deps[rng.choice(gws)].append(m)
    called = {d for ds in deps.values() for d in ds}
    for d in dss:
        if d not in called:
            deps[rng.choice(mids)].append(d)
    services = []
    for kind, names in (("frontend", fes), ("gateway", gws), ("mid", mids), ("datastore", dss)):
        for i, name in enumerate(names):
            team = _team(kind, i)
            eps, comps = _endpoints(rng, kind, name)
            services.append(
                SimService(
                    name=name,
                    kind=kind,
                    team=team,
                    dependencies=deps[name],
                    endpoints=eps,
                    components=comps,
                )
            )
    return ServiceGraph(services=services)


def _team(kind: str, i: int) -> str:
    if kind == "frontend":
        return "web"
    if kind == "gateway":
        return "platform"
    if kind == "datastore":
        return "data"
    return _TEAMS[(i // 4) % len(_TEAMS)]


def _endpoints(rng: random.Random, kind: str, name: str) -> tuple[list[str], list[str]]:
    """Four request lines and the component (handler) serving each."""
    base = name.split("-")[0]
    camel = "".join(p.capitalize() for p in name.split("-"))
    if kind == "datastore":
        ops = ("SELECT", "INSERT", "UPDATE", "SELECT")
        return [f"{op} {base}" for op in ops], [f"{camel}Pool"] * 4
    nouns = ("items", "list", "status", "summary", "details", "history", "batch", "config")
    picked = rng.sample(nouns, 4)
    eps = [f"{_VERBS[rng.randrange(len(_VERBS))]} /v1/{base}/{n}" for n in picked]
    comps = [f"{camel}{n.capitalize()}Handler" for n in picked]
    return eps, comps
