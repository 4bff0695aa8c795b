"""How far the data behind a report reaches: a report that shows a source's figures (the ledger's) says
the date its data runs through when that is before the period end, next to the figures' title, so a
reader never takes books that stop on Nov 10 for the whole week to Nov 22. The freshness rule of a
source decides when data is too old to use at all; this says plainly how old the data in use is."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from flows.core.period import Period
from flows.plan.definitions import ReportDefinition
from flows.plan.plan import MetricValues
from sources.catalogue import REGISTRY
from sources.registry import SourceRegistry

# Up to this many entities behind, each is named with its date; past it, the dates are grouped.
LISTED_ENTITIES = 5
NAMED_PER_DATE = 2


def plain_date(day: dt.date, end: dt.date | None = None) -> str:
    """``Nov 10``, with the year when it is not the year of ``end`` (or no ``end`` is given)."""
    return f"{day:%b} {day.day}" + ("" if end is not None and day.year == end.year else f", {day.year}")


def coverage_notes(definition: ReportDefinition, views: Iterable[Mapping[str, Any]], values: MetricValues,
                   period: Period, registry: SourceRegistry = REGISTRY) -> list[str]:
    """One plain sentence per source whose figures the report shows and whose data stops before the period
    end for some of its tenants (``views``: the tenants in the report, with id and name)."""
    sources = []
    for metric in definition.all_metrics:
        spec = registry.metrics.get(metric)
        through = registry.sources[spec.source].data_through if spec is not None else None
        # A report that shows only the date itself already says it.
        if through is not None and through not in sources and metric != through[0]:
            sources.append(through)
    notes = []
    for metric, words in sources:
        behind = [(view["name"], plain_date(day, period.end)) for view in views
                  if isinstance(day := values.get(view["id"], {}).get(metric), dt.date) and day < period.end]
        if not behind:
            continue
        end = f"before the period's end ({plain_date(period.end)})"
        if definition.scope != "portfolio":
            notes.append(f"The {words} run through {behind[0][1]}, {end}: figures from them stop there.")
        elif len(behind) == 1:
            notes.append(f"{behind[0][0]}'s {words} run through {behind[0][1]}, {end}: its figures stop there.")
        else:
            notes.append(f"The {words} run through {_dates_for(behind)}, {end}: figures from them stop there.")
    return notes


def _dates_for(behind: list[tuple[str, str]]) -> str:
    """"Nov 10 for JADA and Dec 31, 2025 for Acme": each entity with its date; past ``LISTED_ENTITIES``,
    each date once (in the entities' order) with how many entities stop there and the first few names,
    so the note stays one sentence at any number of entities."""
    if len(behind) <= LISTED_ENTITIES:
        dates = [f"{day} for {name}" for name, day in behind]
        return ", ".join(dates[:-1]) + " and " + dates[-1]
    by_day: dict[str, list[str]] = {}
    for name, day in behind:
        by_day.setdefault(day, []).append(name)
    groups = []
    for day, entities in by_day.items():
        shown = ", ".join(entities[:NAMED_PER_DATE])
        rest = len(entities) - NAMED_PER_DATE
        groups.append(f"{day} for {len(entities):,} {'entity' if len(entities) == 1 else 'entities'} ({shown}"
                      + (f" and {rest:,} more)" if rest > 0 else ")"))
    return "; ".join(groups[:-1]) + ("; and " if len(groups) > 1 else "") + groups[-1]
