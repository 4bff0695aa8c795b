"""The two template environments: ``environment()`` for report bodies (Markdown; every value escaped by
``finalize``) and ``plain_environment()`` for subjects and check messages (plain text). Both are the
limited sandbox with the same helpers."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

import sources.catalogue  # noqa: F401  (registers the sources' template helpers)
from flows.templating.agenda import action, check_list, checks_by_id, days_after, rank_checks
from flows.templating.escape import aside, escape_markdown, footnote, lead
from flows.templating.formatters import date, duration_ms, money, months, number, percent, percent_number
from flows.templating.logs import error_messages
from flows.templating.sandbox import LimitedSandbox
from flows.templating.tables import (
    bullet_list,
    count,
    how_many,
    label,
    more,
    names,
    plural,
    ranked_table,
    rows_of,
    rule_name,
    table,
    top,
    total,
    totals_by,
    unavailable_in,
)
from sources.registry import REGISTRY, is_available


def _finalize(value: Any) -> str:
    return escape_markdown(value)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = LimitedSandbox(
        undefined=StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(duration_ms=duration_ms, percent_number=percent_number, money=money, number=number, percent=percent, months=months, date=date,
                       table=table, ranked_table=ranked_table, rows_of=rows_of, bullet_list=bullet_list, action=action, days_after=days_after,
                       top=top, more=more, plural=plural, label=label, totals_by=totals_by,
                       rule_name=rule_name, names=names, total=total, count=count, unavailable_in=unavailable_in)
    env.filters.update(money=money, number=number, percent=percent, months=months, date=date, top=top,
                       rule_name=rule_name, label=label)
    env.tests["available"] = is_available
    env.globals["rank_checks"] = rank_checks  # kept apart from the update() above to keep merges clean
    env.globals.update(check_list=check_list, aside=aside, footnote=footnote, lead=lead, how_many=how_many)
    env.globals["error_messages"] = error_messages  # kept apart, like rank_checks, to keep merges clean
    env.globals["checks_by_id"] = checks_by_id
    # Helpers a source registers for figures worked from several sources (REGISTRY.add_helper).
    env.globals.update(REGISTRY.helpers)
    return env


@lru_cache(maxsize=1)
def plain_environment() -> SandboxedEnvironment:
    """For subjects and check messages: plain text, same helpers, no Markdown escaping."""
    env = LimitedSandbox(undefined=StrictUndefined, autoescape=False)
    env.globals.update(environment().globals)
    env.filters.update(money=money, number=number, percent=percent, months=months, date=date,
                       rule_name=rule_name, label=label)
    env.tests["available"] = is_available
    return env
