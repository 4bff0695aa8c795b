"""Handoff notes source: a folder of Markdown project-handoff documents per tenant.

Task-list items (``- [ ] ...`` / ``- [x] ...``) are the action items; each keeps the file and the
nearest heading above it so a reader can find it, and its ``#tags`` (``#ux``) so reports can pick
items by topic. Blockers are list items or lines that start with
``Blocker:`` / ``Blocked:``, and every open item under a heading that names blockers.

A note's age comes from its ``Last updated: YYYY-MM-DD`` line when it has one, because a git
checkout resets file modification times; only without that line does the file's mtime count.
Settings: ``path`` (the folder), ``stale_after_days`` (default 30), ``owners`` (the role that owns the
items under a heading, e.g. ``{"Booking flow": cto, Listings: cmo}``, added to the defaults
``Engineering: cto``, ``Marketing: cmo``, ``Local SEO: cmo``; an item tagged ``#cto``, ``#cmo``... goes to
that role; every other item is the entity's general manager's).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from sources.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext

METRICS = [
    MetricSpec("handoffs.open_items", "Unchecked task-list items across the tenant's handoff notes "
               "(rows: text, file, heading, tags = the item's #hashtags in lower case, e.g. ux).", "list"),
    MetricSpec("handoffs.done_items", "Checked task-list items (rows: text, file, heading, tags).", "list"),
    MetricSpec("handoffs.open_count", "Number of open action items.", "number"),
    MetricSpec("handoffs.blockers", "Open blockers (rows: text, file, heading, line).", "list"),
    MetricSpec("handoffs.engineering_items", "Open items the CTO owns: under a heading the owners setting gives "
               "to cto (Engineering by default) or tagged #cto (rows: text, file, heading, tags, owner).", "list"),
    MetricSpec("handoffs.ux_items", "Open items tagged #ux (rows: text, file, heading, tags).", "list"),
    MetricSpec("handoffs.agenda", "The handoff notes as agenda items, one definition for every brief that lists "
               "them: each blocker (\"Unblock: ...\", high priority, due in 14 days), then every other open item "
               "(\"text (heading)\", medium priority, due in 30 days), each owned by the role its heading or tag "
               "names (owners setting), else the entity's general manager (rows: fix, priority, due_in_days, "
               "owner).", "list"),
    MetricSpec("handoffs.notes", "Each note with its last update and age "
               "(rows: file, last_updated, age_days, dated_by, open, done).", "table"),
    MetricSpec("handoffs.stale_notes", "Notes not updated for more than stale_after_days at the period end "
               "(rows: file, last_updated, age_days, dated_by).", "table"),
    MetricSpec("handoffs.problems", "Lines that could not be read as intended (e.g. a bad Last updated "
               "date), each with file and line.", "list"),
]

_TASK = re.compile(r"^\s*[-*+]\s+\[(?P<mark>[ xX])\]\s+(?P<text>.+?)\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<text>.+?)\s*#*\s*$")
_LAST_UPDATED = re.compile(r"^\W*last[ -]updated\W*:\W*(?P<value>\S+?)\W*$", re.IGNORECASE)
_BLOCKER_LINE = re.compile(r"^\s*(?:[-*+]\s+(?:\[[ xX]\]\s+)?)?\**(?:blocker|blocked)\**\s*:\**\s*(?P<text>.+?)\s*$",
                           re.IGNORECASE)
# "#ux" at the start of a word tags an item; "C#" or "issue #12" do not.
_TAG = re.compile(r"(?<![\w&#])#(?P<tag>[A-Za-z][\w-]*)")
_BLOCKER_HEADING = re.compile(r"\bblock(?:er|ers|ed|ing)\b", re.IGNORECASE)
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# Who owns the items under a heading unless the tenant's ``owners`` setting says otherwise.
DEFAULT_OWNERS = {"engineering": "cto", "marketing": "cmo", "local seo": "cmo"}
# Tags that route an item to a role whatever its heading (#cto, #cmo, ...).
ROLE_TAGS = ("ceo", "cfo", "cto", "cmo", "accounting")


@REGISTRY.register("handoffs", "Project handoff notes kept as Markdown files.", METRICS)
def gather_handoffs(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if "path" not in settings:
        raise SourceError(f"tenant '{context.tenant_id}': sources.handoffs.path is not set")
    folder = context.resolve(settings["path"])
    if not folder.is_dir():
        raise SourceError(f"folder not found: {folder}")
    stale_after = settings.get("stale_after_days", 30)
    if not isinstance(stale_after, int) or isinstance(stale_after, bool) or stale_after < 0:
        raise SourceError(f"tenant '{context.tenant_id}': sources.handoffs.stale_after_days must be a whole "
                          f"number of days, got {stale_after!r}")
    owners = heading_owners(settings.get("owners", {}), context.tenant_id)
    open_items: list[dict[str, Any]] = []
    done_items: list[dict[str, Any]] = []
    blockers: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    problems: list[str] = []
    for note in sorted(folder.rglob("*.md")):
        name = note.relative_to(folder).as_posix()
        heading = ""
        in_fence = False
        last_updated: dt.date | None = None
        counts = {"open": 0, "done": 0}
        for number, line in enumerate(note.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if line.lstrip().startswith(("```", "~~~")):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            if match := _HEADING.match(line):
                heading = match["text"]
                continue
            if last_updated is None and (match := _LAST_UPDATED.match(line)):
                try:
                    last_updated = dt.date.fromisoformat(match["value"])
                except ValueError:
                    problems.append(f"{name}:{number}: 'Last updated' is not a date in YYYY-MM-DD form "
                                    f"(value {match['value']!r}); using the file's modification time")
                continue
            task = _TASK.match(line)
            if task:
                tags = [m["tag"].lower() for m in _TAG.finditer(task["text"])]
                # The tags are for sorting items; the text a reader sees is the item without them.
                text = " ".join(_TAG.sub("", task["text"]).split()) if tags else task["text"]
                item = {"text": text, "file": name, "heading": heading, "tags": tags,
                        "owner": owner_of(heading, tags, owners)}
                is_open = task["mark"] == " "
                (open_items if is_open else done_items).append(item)
                counts["open" if is_open else "done"] += 1
                if not is_open:
                    continue
            if match := _BLOCKER_LINE.match(line):
                blockers.append({"text": match["text"], "file": name, "heading": heading, "line": number})
            elif task and _BLOCKER_HEADING.search(heading):
                blockers.append({"text": task["text"], "file": name, "heading": heading, "line": number})
        dated_by = "Last updated line"
        if last_updated is None:
            # Fallback only: checkouts and copies reset mtimes, so an explicit line is preferred.
            last_updated = dt.date.fromtimestamp(note.stat().st_mtime)
            dated_by = "file modification time"
        notes.append({"file": name, "last_updated": last_updated,
                      "age_days": (context.period_end - last_updated).days, "dated_by": dated_by,
                      "open": counts["open"], "done": counts["done"]})
    return {
        "handoffs.agenda": handoff_agenda(open_items, blockers),
        "handoffs.engineering_items": [item for item in open_items if item["owner"] == "cto"],
        "handoffs.ux_items": [item for item in open_items if "ux" in item["tags"]],
        "handoffs.open_items": open_items,
        "handoffs.done_items": done_items,
        "handoffs.open_count": len(open_items),
        "handoffs.blockers": blockers,
        "handoffs.notes": notes,
        "handoffs.stale_notes": [{k: n[k] for k in ("file", "last_updated", "age_days", "dated_by")}
                                 for n in notes if n["age_days"] > stale_after],
        "handoffs.problems": problems,
    }


# Who owns an entity's handoff items, how urgent a blocker and any other open item are, and by when:
# defined here once, so the CEO brief and the entity's own brief give the same item the same terms.
HANDOFF_OWNER = "gm"
BLOCKER_TERMS = ("high", 14)
OPEN_ITEM_TERMS = ("medium", 30)


def heading_owners(configured: Any, tenant_id: str) -> dict[str, str]:
    """The defaults with the tenant's ``owners`` setting over them, headings compared without case."""
    if not isinstance(configured, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and _ROLE.match(v) for k, v in configured.items()):
        raise SourceError(f"tenant '{tenant_id}': sources.handoffs.owners must map a heading to a role id "
                          f"(e.g. {{Booking flow: cto}}), got {configured!r}")
    return {**DEFAULT_OWNERS, **{heading.strip().lower(): role for heading, role in configured.items()}}


def owner_of(heading: str, tags: list[str], owners: Mapping[str, str]) -> str:
    """The role that owns an item: a role tag (#cto), else its heading's owner, else the general manager."""
    for tag in tags:
        if tag in ROLE_TAGS:
            return tag
    return owners.get(heading.strip().lower(), HANDOFF_OWNER)


def handoff_agenda(open_items: list[dict[str, Any]], blockers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blocked = {blocker["text"] for blocker in blockers}
    items = [{"fix": f"Unblock: {blocker['text']}", "priority": BLOCKER_TERMS[0], "due_in_days": BLOCKER_TERMS[1],
              "owner": HANDOFF_OWNER} for blocker in blockers]
    items.extend({"fix": f"{item['text']} ({item['heading']})", "priority": OPEN_ITEM_TERMS[0],
                  "due_in_days": OPEN_ITEM_TERMS[1], "owner": item.get("owner", HANDOFF_OWNER)}
                 for item in open_items if item["text"] not in blocked)
    return items
