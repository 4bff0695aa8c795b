"""The agenda: ``action`` (one task-list line with priority, due date and owner role), ``agenda`` (fired
checks and ``todos(...)`` most urgent first), ``rank_checks`` (the n most critical shortfalls) and
``days_after``. Severities and priorities are defined here, once."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flows.templating.escape import MarkdownSafe, escape_markdown, escape_plain, plain_text
from flows.templating.tables import TopRows, more_words
from sources.registry import is_available

# What report templates call (the helper reference in the docs lists these).
__all__ = ["action", "agenda", "agenda_entries", "check_list", "checks_by_id", "rank_checks", "days_after", "ActionCollector", "Action", "SEVERITIES",
           "ACTION_PRIORITIES"]

# A check's severity, most severe first (front matter ``checks[].severity``).
SEVERITIES = ("critical", "high", "medium", "low", "info")
ACTION_PRIORITIES = ("critical", "high", "medium", "low")


# ``![](action:N)``: the reference an agenda line carries to its recorded action (see ActionCollector). The
# image syntax cannot come from data: escape_markdown escapes "!" and "[" in every value.
ACTION_SRC_PREFIX = "action:"
_ROLE_SLUG = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True)
class Action:
    """One agenda item as data: what to do, how urgent, by when (ISO date or ""), which role owns it, and
    for which tenant ("" when the template did not say: the report's own tenant, or the portfolio)."""

    text: str
    priority: str
    due: str
    owner: str
    tenant: str = ""


def make_action(text: Any, priority: str = "medium", due: Any = None, owner: str | None = None,
                tenant: Any = None) -> Action:
    """Check an agenda item's fields and return it as data (the errors name the helper and the value)."""
    if priority not in ACTION_PRIORITIES:
        raise ValueError(f"action(): priority must be one of {', '.join(ACTION_PRIORITIES)}, got {priority!r}")
    due_text = f"{as_date(due, 'action(): due'):%Y-%m-%d}" if due is not None and is_available(due) else ""
    if owner and not _ROLE_SLUG.fullmatch(owner):
        raise ValueError(f"action(): owner must be a role slug like 'cto', got {owner!r}")
    return Action(plain_text(text), priority, due_text, owner or "", str(tenant) if tenant else "")


# How a role slug reads in an email: the executive's title, not the id ("owner ceo").
ROLE_TITLES = {"ceo": "CEO", "cfo": "CFO", "cto": "CTO", "cmo": "CMO", "coo": "COO", "accounting": "Accounting",
               "gm": "General manager", "ops": "Operations"}


def role_title(role: Any) -> str:
    """``role_title("cto")`` -> "CTO", ``role_title("gm")`` -> "General manager"; another role in words."""
    slug = str(role or "")
    return ROLE_TITLES.get(slug) or slug.replace("-", " ").replace("_", " ").capitalize()


def action_line(item: Action, entity: str = "") -> str:
    """The task-list line an executive reads: text, then who owns it, its priority and due date
    ("- [ ] Close the public bucket — CTO, high priority, due Dec 6, 2026"); ``entity`` in front of the
    text where the line must name whose it is ("JADA: Close the public bucket ...")."""
    parts = [role_title(item.owner)] if item.owner else []
    parts.append(f"{item.priority} priority")
    if item.due:
        parts.append(f"due {dt.date.fromisoformat(item.due):%b %-d, %Y}")
    shown = f"{entity}: {item.text}" if entity else item.text
    return f"- [ ] {escape_plain(shown)} — {', '.join(parts)}"


def action(text: Any, priority: str = "medium", due: Any = None, owner: str | None = None,
           tenant: Any = None) -> MarkdownSafe:
    """An agenda item: ``- [ ] text — CTO, high priority, due Dec 6, 2026``. In a report the run
    keeps it as a structured action (see ActionCollector); ``tenant`` says whose it is in a portfolio report."""
    return MarkdownSafe(action_line(make_action(text, priority, due, owner, tenant)))


class ActionCollector:
    """The agenda items one report writes, kept as data for the task system: ``action()`` and ``agenda()``
    of a report's context record each item and end its line with ``![](action:N)``, which the Markdown
    renderer resolves to nothing visible while noting the heading the line sits under. Nothing is ever
    read back out of the rendered text."""

    def __init__(self, portfolio: bool = False) -> None:
        self.actions: list[Action] = []
        self.portfolio = portfolio  # a portfolio brief: its decisions name their entity

    def action(self, text: Any, priority: str = "medium", due: Any = None, owner: str | None = None,
               tenant: Any = None, entity: str = "") -> MarkdownSafe:
        """Record the item (once: the same item listed twice, in the decisions and again in an agenda, is
        one action) and write its line."""
        item = make_action(text, priority, due, owner, tenant)
        if item in self.actions:
            number = self.actions.index(item)
        else:
            self.actions.append(item)
            number = len(self.actions) - 1
        return MarkdownSafe(f"{action_line(item, entity)}![]({ACTION_SRC_PREFIX}{number})")

    def agenda(self, checks: Any, *more: Any, empty: str = "Nothing open.", limit: int | None = None,
               skip: int = 0) -> MarkdownSafe:
        return agenda(checks, *more, empty=empty, limit=limit, skip=skip, write=self.action)

    def decisions(self, checks: Any, *more: Any, n: int = 3, empty: str = "No decision needed this week.",
                  rest: str = "", entity_names: bool | None = None) -> MarkdownSafe:
        """The few decisions needed: the ``n`` most urgent agenda items (fired checks, then ``todos``), each
        with its owner role and due date, then "and K more" (``rest`` says where they are). Only the ``n``
        shown are recorded as actions; in a portfolio brief each names its entity (``entity_names=false``
        under a heading that already names it)."""
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
            raise ValueError(f"decisions(): n must be a whole number from 1 to 10, got {n!r}")
        named = self.portfolio if entity_names is None else entity_names
        items = agenda_entries(checks, *more)
        if not items:
            return MarkdownSafe(escape_markdown(empty)) if empty else MarkdownSafe("")
        lines = [self.action(text, priority, due, owner, tenant,
                             entity=name if named and name and name not in text else "")
                 for text, priority, due, owner, tenant, name in items[:n]]
        if len(items) > n:
            left = len(items) - n
            lines.append(f"- *and {left:,} more{(' ' + escape_markdown(rest)) if rest else ''}*")
        return MarkdownSafe("\n".join(lines))


def as_date(value: Any, what: str) -> dt.date:
    """A date, or an ISO date text (a timestamp's date part counts); anything else is an error quoting the
    value whole, so the author sees what they wrote."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            try:
                return dt.datetime.fromisoformat(value).date()
            except ValueError:
                pass
    raise ValueError(f"{what} must be a date like 2026-11-30 or days_after(period.end, 14), got {value!r}")


def agenda_items(rows: Any, text: str, priority: str, due_in_days: int, owner: str, sent_on: dt.date,
                 tenant: Any = None) -> list[dict[str, Any]]:
    """Rows (handoff items, ...) as agenda items for ``agenda()``. A row that carries its own terms
    (``priority``, ``due_in_days``, ``owner``: a source's single definition, e.g. ``handoffs.agenda``) keeps
    them; the arguments are the terms of rows that do not. Due dates count from ``sent_on``, the day the
    report is sent, so nothing is due before the reader gets it."""
    items = []
    for row in rows if is_available(rows) else []:
        fields = row if isinstance(row, Mapping) else {"text": row}
        try:
            filled = text.format_map({k: v for k, v in fields.items() if isinstance(k, str)})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"todos(): cannot fill {text!r} from {sorted(fields)}: {exc}") from None
        terms = (fields.get("priority", priority), fields.get("due_in_days", due_in_days), fields.get("owner") or owner)
        if terms[0] not in ACTION_PRIORITIES:
            raise ValueError(f"todos(): priority must be one of {', '.join(ACTION_PRIORITIES)}, got {terms[0]!r}")
        items.append({"fix": filled, "priority": terms[0], "due": days_after(sent_on, terms[1]).isoformat(),
                      "owner": terms[2], "tenant": str(tenant) if tenant else ""})
    return items


def agenda_entries(checks: Any, *more: Any) -> list[tuple]:
    """The agenda's items most urgent first (critical, high, medium, low; checks before other items of the
    same priority): (text, priority, due, owner, tenant, entity name: a fired check's, else "")."""
    items = []
    for check in checks if is_available(checks) else []:
        priority = "low" if check["severity"] == "info" else check["severity"]
        items.append((ACTION_PRIORITIES.index(priority), 0, check.get("fix") or check["message"], priority,
                      check.get("due") or None, check.get("owner") or None, check.get("tenant") or None,
                      check.get("tenant_name") or ""))
    for rank, extra in enumerate(more, start=1):
        for item in extra or []:
            items.append((ACTION_PRIORITIES.index(item["priority"]), rank, item["fix"], item["priority"],
                          item["due"], item["owner"], item.get("tenant") or None, ""))
    items.sort(key=lambda item: item[:2])  # stable: the order within a group is kept
    return [item[2:] for item in items]


def agenda(checks: Any, *more: Any, empty: str = "Nothing open.", limit: int | None = None, skip: int = 0,
           write: Any = action) -> MarkdownSafe:
    """The agenda of fired checks (their ``fix``, ``owner`` and due date from the front matter) plus any
    ``todos(...)``, most urgent first (critical, high, medium, low; checks before other items of the same
    priority), as task-list lines the run turns into structured actions. ``skip``: leave out the first
    items, those a ``decisions(..., n=skip)`` over the same checks and todos already shows above, so no
    line is written twice."""
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        raise ValueError(f"agenda(): skip must be a whole number >= 0, got {skip!r}")
    items = agenda_entries(checks, *more)[skip:]
    if limit is not None:
        items = items[:limit]
    if not items:
        return MarkdownSafe(escape_markdown(empty)) if empty else MarkdownSafe("")
    return MarkdownSafe("\n".join(write(text, priority, due, owner, tenant)
                                  for text, priority, due, owner, tenant, _ in items))


def rank_checks(checks: Any, n: int = 8, impact: Iterable[str] = (), entities: Any = None) -> TopRows:
    """The ``n`` most critical fired checks: by severity (critical first), then by business impact, then,
    given ``entities`` (the report's tenants), the entity needing the most attention first, then in the
    order given. Impact is the order the report's front matter lists its checks in (a report lists its
    checks most consequential first), or ``impact``, a list of check ids, where given (ids it does not
    list come after). Like ``top()`` the result has ``.more``; ``.rest`` summarises the checks left out,
    one row per check id in the same ranking: {id, severity, fix, entities (tenant names), count}, so a
    report can say "and 14 more" with a compact list under it."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"rank_checks(): n must be a whole number >= 0, got {n!r}")
    order = {check_id: index for index, check_id in enumerate(impact or [])}
    attention = {entity["id"]: entity.get("attention", 0) for entity in entities or []}
    rows = list(checks or []) if is_available(checks) else []

    def impact_of(check: Any) -> int:
        return order.get(check["id"], len(order)) if order else check.get("rank", 0)

    rows.sort(key=lambda c: (SEVERITIES.index(c["severity"]), impact_of(c),
                             -attention.get(c.get("tenant"), 0)))  # stable: ties keep their order
    shown = TopRows(rows[:n])
    shown.total, shown.more = len(rows), max(0, len(rows) - n)
    groups: dict[str, dict[str, Any]] = {}
    for check in rows[n:]:
        group = groups.setdefault(check["id"], {"id": check["id"], "severity": check["severity"],
                                                "fix": check.get("fix") or check["message"], "entities": [],
                                                "count": 0, "owner": check.get("owner") or ""})
        group["count"] += 1
        if check["tenant_name"] not in group["entities"]:
            group["entities"].append(check["tenant_name"])
    shown.rest = list(groups.values())
    shown.rest_by_owner = rest_by_owner(shown.rest)
    return shown


def rest_by_owner(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many of the checks left out each owner role has, most first: {owner, count, words} with words
    like "5 for the CFO", so a brief can list its own role's items and route the rest in one line."""
    counts: dict[str, int] = {}
    for group in groups:
        counts[group["owner"]] = counts.get(group["owner"], 0) + group["count"]
    ranked = sorted(counts.items(), key=lambda item: (-item[1], role_title(item[0])))
    return [{"owner": owner, "count": count, "words": f"{count:,} for {owner_words(owner)}"} for owner, count in ranked]


def owner_words(owner: str) -> str:
    """"the CFO", "the general manager", "accounting", "no one named" (a check without an owner)."""
    if not owner:
        return "no one named"
    title = role_title(owner)
    if owner == "accounting":
        return "accounting"
    return f"the {title if title.isupper() else title.lower()}"


def check_list(checks: Any, n: int = 10, empty: str = "None this week.", more_text: str = "more",
               where: str = "", skip: int = 0, by_severity: bool = False) -> MarkdownSafe:
    """The ``n`` first fired checks as a bullet list, each with its severity ("- **HIGH** JADA has no
    live OTA listing."), then "and 4 more gaps" (``more_text`` "more gap|more gaps"; ``where`` says
    where to find them; ``by_severity=true`` counts them per severity: "and 12 more (3 high, 9 medium)").
    ``skip``: leave out the first checks, those ``decisions(checks, n=skip)`` already shows above."""
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        raise ValueError(f"check_list(): skip must be a whole number >= 0, got {skip!r}")
    rows = (list(checks or []) if is_available(checks) else [])[skip:]
    if not rows:
        return MarkdownSafe(escape_markdown(empty))
    lines = [f"- **{check['severity'].upper()}** {escape_markdown(check['message'])}" for check in rows[:n]]
    if len(rows) > n:
        rest = rows[n:]
        counted = [f"{sum(1 for c in rest if c['severity'] == severity):,} {severity}" for severity in SEVERITIES
                   if any(c["severity"] == severity for c in rest)] if by_severity else []
        lines.append(f"- *and {len(rest):,} {escape_markdown(more_words(len(rest), more_text))}"
                     + (f" ({', '.join(counted)})" if counted else "")
                     + (f" {escape_markdown(where)}" if where else "") + "*")
    return MarkdownSafe("\n".join(lines))


def checks_by_id(checks: Any, *ids: str) -> list[Any]:
    """The fired checks with one of these ids, in their order: ``names(checks_by_id(checks,
    "zero-ota-listings"), attribute="tenant_name")`` names the entities without a live OTA listing."""
    if not ids or not all(isinstance(check_id, str) for check_id in ids):
        raise ValueError(f"checks_by_id(): name the check ids, like checks_by_id(checks, \"zero-ota-listings\"), "
                         f"got {ids!r}")
    return [check for check in (checks if is_available(checks) else []) if check["id"] in ids]


def days_after(day: Any, days: int) -> dt.date:
    if not isinstance(days, int) or isinstance(days, bool):
        raise ValueError(f"days_after(): the number of days must be a whole number, got {days!r}")
    return as_date(day, "days_after(): the day") + dt.timedelta(days=days)
