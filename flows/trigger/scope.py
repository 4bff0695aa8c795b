"""What a caller's token may see of a run's result: only the roles and tenants its claims grant, and no
recipient address of anyone else (an address in a warning is replaced)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flows.trigger.auth import scope_of

_ADDRESS_IN_TEXT = re.compile(r"[^\s<>(),;:'\"]+@[^\s<>(),;:'\"]+")


class Scope:
    """What a token may see: rows of its roles and tenants (portfolio-wide rows need every tenant),
    and recipient addresses only when it covers every tenant. /status and inline runs answer alike."""

    def __init__(self, roles: set[str] | None, tenants: set[str] | None):
        self.roles, self.tenants = roles, tenants

    @classmethod
    def of(cls, claims: Mapping[str, Any]) -> Scope:
        return cls(scope_of(claims, "roles"), scope_of(claims, "tenants"))

    def visible(self, entry: Mapping[str, Any]) -> bool:
        role_ok = self.roles is None or entry.get("report") in self.roles
        tenant_ok = self.tenants is None or entry.get("tenant") in self.tenants
        return role_ok and tenant_ok

    def entries(self, entries: Any) -> list[dict[str, Any]]:
        visible = [dict(entry) for entry in entries or [] if isinstance(entry, Mapping) and self.visible(entry)]
        if self.tenants is None:
            return visible
        for entry in visible:
            entry.pop("recipients", None)
            for key, value in entry.items():
                if isinstance(value, str):  # a provider's reason may quote an address
                    entry[key] = _ADDRESS_IN_TEXT.sub("(address hidden)", value)
        return visible


def scope_inline_result(result: Mapping[str, Any], claims: Mapping[str, Any]) -> dict[str, Any]:
    """An inline run's answer, cut to what GET /status would show the same token."""
    scope = Scope.of(claims)
    summary = result.get("summary")
    if scope.roles is None and scope.tenants is None:
        return dict(result)
    scoped: dict[str, Any] = {"state": result.get("state")}
    if not isinstance(summary, Mapping):
        scoped.update({"summary": None, "error": result.get("error")})
        return scoped
    scoped_summary = {"period": summary.get("period"), "run": summary.get("run")}
    for key in ("sent", "dry_run", "failed", "skipped", "checks", "actions"):
        scoped_summary[key] = scope.entries(summary.get(key))
    scoped_summary["warnings"] = [warning for warning in summary.get("warnings") or []
                                  if isinstance(warning, str) and scope.visible(_warning_entry(warning))]
    if scope.tenants is not None:
        scoped_summary["warnings"] = [_ADDRESS_IN_TEXT.sub("(address hidden)", w) for w in scoped_summary["warnings"]]
    scoped["summary"] = scoped_summary
    failures = len(scoped_summary["failed"])
    scoped["message"] = f"{len(scoped_summary['sent'])} sent, {failures} failed (of what this token may see)"
    return scoped


def _warning_entry(warning: str) -> dict[str, str]:
    """Summary warnings read "report/tenant: text"."""
    report, _, rest = warning.partition("/")
    return {"report": report, "tenant": rest.partition(":")[0]}
