"""Write the metric catalogue page (writing-reports/metrics.md) from the source registry at build time.

Run by the mkdocs-gen-files plugin (mkdocs.yml: plugins.gen-files.scripts). Every metric a report can
declare is registered by its source in ``sources.registry.REGISTRY``; this page is that registry, so it
cannot drift from the code. ``exec-reports metrics`` prints the same list.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

# The repository root (this file is docs/gen_metrics.py), so `sources` imports without an install.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Importing a source module registers its metrics; sources.catalogue imports every source.
from sources.catalogue import REGISTRY  # noqa: E402

if not REGISTRY.metrics:
    raise RuntimeError("sources.registry.REGISTRY holds no metrics: no source module was imported")

PAGE = "writing-reports/metrics.md"
# Characters that would end a table cell or start Markdown/HTML markup inside one.
_ESCAPES = {"\\": "\\\\", "|": "\\|", "*": "\\*", "_": "\\_", "`": "\\`", "[": "\\[", "]": "\\]",
            "<": "&lt;", ">": "&gt;", "&": "&amp;"}


def cell(text: object) -> str:
    """One table cell of plain text: on one line, and shown as written."""
    flat = " ".join(str(text or "").split())
    return "".join(_ESCAPES.get(char, char) for char in flat)


def is_derived(source: object) -> bool:
    return getattr(source, "derivation", None) is not None


def catalogue() -> str:
    metrics = REGISTRY.metrics
    sources = REGISTRY.sources
    by_source: dict[str, list] = {}
    for spec in metrics.values():
        by_source.setdefault(spec.source, []).append(spec)

    lines = [
        "# Metric catalogue",
        "",
        "Every metric a report can declare in its front matter (`metrics:` and `optional_metrics:`), "
        "grouped by the source that provides it. This page is generated when the site is built, from "
        "the registry in `sources.registry` (`REGISTRY`), so it always matches the code; "
        "`exec-reports metrics` prints the same list.",
        "",
        f"{len(metrics)} metrics from {len(by_source)} sources: "
        + ", ".join(f"[`{name}`](#{name})" for name in sorted(by_source)) + ".",
        "",
        "A metric's type says what its value is: `money`, `number`, `percent`, `months` and `date` are "
        "single figures (format them with the [helpers](helpers.md); the description says whether a "
        "percent is a fraction or already in percent); `table` and `list` are rows for `table()`, `top()` "
        "and `chart()`; `mapping` is keyed data; `text` and `boolean` are single values. Any metric may be "
        "unavailable for a tenant, with the reason: test `is available` before testing it as true or false.",
        "",
    ]
    for name in sorted(by_source):
        source = sources.get(name)
        description = getattr(source, "description", "") if source is not None else ""
        derived = " (derived from other sources' metrics)" if source is not None and is_derived(source) else ""
        lines += [f"## `{name}`", ""]  # its anchor is #name
        if description or derived:
            lines += [cell(description) + derived, ""]
        lines += ["| metric | type | source | description |", "|---|---|---|---|"]
        for spec in sorted(by_source[name], key=lambda spec: spec.name):
            lines.append(f"| `{spec.name}` | {cell(spec.type)} | {cell(spec.source)} | {cell(spec.description)} |")
        lines.append("")
    return "\n".join(lines)


with mkdocs_gen_files.open(PAGE, "w") as page:
    page.write(catalogue())
