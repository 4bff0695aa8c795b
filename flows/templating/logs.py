"""Log lines in words fit for an email: ``error_messages`` lists each distinct error message once, with
how often it was logged and where, the most frequent first.

The lines reach it already redacted by their source (a secret is "[redacted]" before it leaves the
source); this module takes out what an executive should not read either: a traceback's frames and the
file paths and line numbers of the code, which stay in the run summary."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flows.templating.tables import TopRows, names
from sources.registry import is_available

__all__ = ["error_message", "error_messages"]

# The longest message an email shows; the whole line is in the run summary.
MESSAGE_CHARS = 120

_TRACEBACK = re.compile(r"Traceback \(most recent call last\):?")
_ERROR_NAME = re.compile(r"\b(?:[\w]+\.)*[A-Z]\w*(?:Error|Exception|Fault|Timeout)\b:?")
# A Python frame: File "/var/task/handler.py", line 88, in handler
_FRAME = re.compile(r"""\s*File\s+["'][^"']*["'](?:,\s*line\s+\d+)?(?:,\s*in\s+[\w.<>]+)?""")
# A JavaScript frame: at handler (/var/task/index.js:12:5), at /var/task/index.js:12:5
_JS_FRAME = re.compile(r"""\s+at\s+(?:[\w.<>$\[\] ]+\s+)?\([^)]*:\d+(?::\d+)?\)|\s+at\s+\S+:\d+:\d+""")
# A source file, with the words that point at it: "in handler.py line 88", "at /var/task/index.js:12:5".
_SOURCE_FILE = re.compile(
    r"""(?:\s+(?:in|at|from)\s+)?\(?["']?(?:[A-Za-z]:)?[\w./\\-]*\.(?:py|js|mjs|cjs|ts|java|go|rb|cs|php)"""
    r"""["']?(?::\d+)*\)?(?:,?\s+line\s+\d+)?""")
# Any other absolute path: /var/task/lib, /opt/python/...
_PATH = re.compile(r"""(?:\s+(?:in|at|from)\s+)?(?<![\w.])/(?:[\w.@-]+/)+[\w.@-]*""")


def error_message(line: Any) -> str:
    """One error line as a reader should see it: its message (``MemoryError: image 9000x12000 px exceeds
    the resize limit``), without a traceback's frames, file paths or line numbers; at most 120
    characters. A traceback is named by its last error, the one that was raised."""
    text = " ".join(str(line or "").split())
    if _TRACEBACK.search(text):
        errors = list(_ERROR_NAME.finditer(text))
        text = text[errors[-1].start():] if errors else _TRACEBACK.sub("", text)
    text = _FRAME.sub("", text)
    text = _JS_FRAME.sub("", text)
    text = _SOURCE_FILE.sub("", text)
    text = _PATH.sub("", text)
    text = " ".join(text.split()).strip(" ,;:")
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS - 1].rstrip() + "…"
    return text or "an error without a readable message"


def error_messages(rows: Any, n: int = 5, attribute: str = "message") -> TopRows:
    """Each distinct error message once, the most frequent first (then the most recent): rows from
    ``rows_of(tenants, "aws.lambda_error_lines")`` become {message, times, repeated (times when more than
    once, else 0), where, last}, where ``where``
    names the function and its entity ("jada-booking-webhook (JADA)"), or the functions and how many
    entities logged it ("dc-image-resize at 25 entities"). Like ``top()`` the result has ``.more``
    (distinct messages left out), ``.total`` and ``.lines`` (the error lines they were read from)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"error_messages(): n must be a whole number >= 0, got {n!r}")
    grouped: dict[str, dict[str, Any]] = {}
    for row in rows or [] if is_available(rows) else []:
        if not isinstance(row, Mapping):
            raise ValueError("error_messages(): give rows with a message, such as "
                             "rows_of(tenants, \"aws.lambda_error_lines\")")
        message = error_message(row.get(attribute))
        group = grouped.setdefault(message, {"message": message, "times": 0, "last": "", "functions": [],
                                             "entities": []})
        group["times"] += 1
        group["last"] = max(group["last"], str(row.get("time") or ""))
        for key, value in (("functions", row.get("function")), ("entities", row.get("entity"))):
            if value and value not in group[key]:
                group[key].append(value)
    ranked = sorted(grouped.values(), key=lambda g: g["last"], reverse=True)
    ranked.sort(key=lambda g: g["times"], reverse=True)  # stable: among equals, the most recent first
    for group in ranked:
        functions, entities = group.pop("functions"), group.pop("entities")
        if len(entities) > 1:
            group["where"] = f"{names(functions, limit=2)} at {len(entities):,} entities"
        else:
            group["where"] = names(functions, limit=2) + (f" ({entities[0]})" if entities else "")
        group["repeated"] = group["times"] if group["times"] > 1 else 0
    shown = TopRows(ranked[:n])
    shown.total, shown.more = len(ranked), max(0, len(ranked) - n)
    shown.lines = sum(group["times"] for group in ranked)
    return shown
