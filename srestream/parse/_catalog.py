"""The service catalog: who owns a service and how critical it is.

A YAML (or JSON) file mapping each service to its team, tier, owner,
dependencies and runbook URL::

    services:
      checkout:
        team: payments
        tier: 1
        owner: alice@example.com
        dependencies: [payments-api, inventory]
        runbook_url: https://runbooks.example.com/checkout

Records of a listed service are enriched with these (a team already set on
the record wins: the log knows better than the catalog).
"""

from __future__ import annotations

import os

import msgspec

from .._errors import ConfigError, Problem

__all__ = ["ServiceCatalog", "ServiceEntry", "load_service_catalog"]


class ServiceEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    team: str = ""
    tier: str = ""
    owner: str = ""
    dependencies: tuple[str, ...] = ()
    runbook_url: str = ""


class ServiceCatalog(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    services: dict[str, ServiceEntry] = {}

    def get(self, service: str) -> ServiceEntry | None:
        return self.services.get(service)


def _tier_as_text(obj: object) -> object:
    # ``tier: 1`` is how people write it; keep it as text ("1") in records.
    if isinstance(obj, dict):
        for entry in (obj.get("services") or {}).values():
            if isinstance(entry, dict) and isinstance(entry.get("tier"), int | float):
                entry["tier"] = str(entry["tier"])
    return obj


def load_service_catalog(path: str, *, where: str = "$.catalog") -> ServiceCatalog:
    """Read and validate a catalog file; ConfigError names the file and the
    path of each problem."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(
            [Problem(where, f"cannot read service catalog: {exc.strerror}", path)]
        ) from None
    try:
        if os.path.splitext(path)[1].lower() == ".json":
            raw = msgspec.json.decode(data)
        else:
            raw = msgspec.yaml.decode(data)
        return msgspec.convert(_tier_as_text(raw), ServiceCatalog)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError([Problem(where, f"invalid service catalog: {exc}", path)]) from None
