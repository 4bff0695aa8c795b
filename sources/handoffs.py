"""Handoff notes source: a folder of Markdown project-handoff documents per tenant.

Task-list items (``- [ ] ...`` / ``- [x] ...``) are the action items; each keeps the file and the
nearest heading above it so a reader can find it. Settings: ``path`` (the folder).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flows.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext

METRICS = [
    MetricSpec("handoffs.open_items", "Unchecked task-list items across the tenant's handoff notes "
               "(rows: text, file, heading).", "list"),
    MetricSpec("handoffs.done_items", "Checked task-list items (rows: text, file, heading).", "list"),
    MetricSpec("handoffs.open_count", "Number of open action items.", "number"),
]

_TASK = re.compile(r"^\s*[-*+]\s+\[(?P<mark>[ xX])\]\s+(?P<text>.+?)\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<text>.+?)\s*#*\s*$")


@REGISTRY.register("handoffs", "Project handoff notes kept as Markdown files.", METRICS)
def gather_handoffs(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if "path" not in settings:
        raise SourceError(f"tenant '{context.tenant_id}': sources.handoffs.path is not set")
    folder = context.resolve(settings["path"])
    if not folder.is_dir():
        raise SourceError(f"folder not found: {folder}")
    open_items: list[dict[str, str]] = []
    done_items: list[dict[str, str]] = []
    for note in sorted(folder.rglob("*.md")):
        heading = ""
        in_fence = False
        for line in note.read_text(encoding="utf-8-sig").splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            if match := _HEADING.match(line):
                heading = match["text"]
            elif match := _TASK.match(line):
                item = {"text": match["text"], "file": note.relative_to(folder).as_posix(), "heading": heading}
                (open_items if match["mark"] == " " else done_items).append(item)
    return {
        "handoffs.open_items": open_items,
        "handoffs.done_items": done_items,
        "handoffs.open_count": len(open_items),
    }
