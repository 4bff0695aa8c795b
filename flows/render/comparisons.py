"""Comparisons by the engine: a metric's value against the prior period (and the same period a year
before, where the data reaches) and against its target, with whether the change is good news.

What a metric is compared with is declared once, on its ``MetricSpec`` (``better``: is up good;
``total``: is the portfolio figure the sum of the tenants'; ``target``: the metric holding its target).
The prior values were gathered by the run (``metric@previous``, ``metric@year_ago``: see
``flows.plan.plan.LOOKBACKS``), so a template never does date arithmetic: it asks, and gets words."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flows.core.period import Period
from flows.plan.plan import lookback_key
from flows.templating.components import Kpi
from flows.templating.formatters import money, months, number
from flows.templating.tables import label as metric_words
from sources.registry import MetricSpec, is_available

# A change smaller than this share of the earlier value is "about the same" in a what-changed line.
NOTABLE_CHANGE = 0.01
# How many entities a what-changed line names as having moved a portfolio total.
MAX_CONTRIBUTORS = 2


@dataclass(frozen=True)
class Comparison:
    """One metric for one tenant (or summed over the portfolio's tenants, where the metric totals)."""

    metric: str
    label: str
    type: str
    better: str | None
    value: Any
    previous: Any = None
    year_ago: Any = None
    target: Any = None
    period: Period | None = None
    # Tenants whose figure is unavailable and so not in a portfolio total (names).
    left_out: tuple[str, ...] = field(default=())
    # What moved the figure, largest first: for a portfolio total each entity's own change
    # (compare_portfolio); for one tenant's figure each of its components' (MetricSpec.components).
    contributions: tuple[tuple[str, float], ...] = field(default=())
    # Whether the contributions are one tenant's components (named even when one explains it all) rather
    # than the entities of a portfolio total (named only when more than one entity counts).
    by_component: bool = False

    @property
    def available(self) -> bool:
        return _number(self.value) is not None

    @property
    def change(self) -> float | None:
        now, before = _number(self.value), _number(self.previous)
        return None if now is None or before is None else now - before

    @property
    def change_percent(self) -> float | None:
        before = _number(self.previous)
        change = self.change
        return None if change is None or not before else change / abs(before) * 100

    @property
    def good(self) -> bool | None:
        """Whether the change is good news: None when the metric has no direction or nothing changed."""
        change = self.change
        if change is None or change == 0 or self.better is None:
            return None
        return (change > 0) == (self.better == "up")

    @property
    def value_text(self) -> str:
        return self.format(self.value)

    @property
    def change_text(self) -> str:
        """"▲ $1,200 vs last week", "no change vs last month", or "" when there is nothing to compare."""
        change = self.change
        if change is None or self.period is None:
            return ""
        since = f"vs {self.period.words}"
        if self.format_change(change) == self.format_change(0):
            return f"no change {since}"
        arrow = "▲" if change > 0 else "▼"
        return f"{arrow} {self.format_change(abs(change))} {since}"

    @property
    def year_text(self) -> str:
        now, then = _number(self.value), _number(self.year_ago)
        if now is None or then is None:
            return ""
        return f"{self.format(self.year_ago)} a year before"

    @property
    def target_text(self) -> str:
        """"92% of the $13,000 target"; for a "lower is better" metric, how far under or over it is."""
        now, target = _number(self.value), _number(self.target)
        if now is None or target is None:
            return ""
        if self.better == "down":
            return f"{self.format_change(abs(target - now))} {'under' if now <= target else 'over'} target"
        if target == 0:
            return f"target {self.format(self.target)}"
        return f"{number(now / target * 100)}% of the {self.format(self.target)} target"

    def format(self, value: Any) -> str:
        if self.type == "money":
            return money(value)
        if self.type == "months":
            return months(value)
        if self.type == "percent":  # metrics of type percent hold percent units (25.3 is 25.3%)
            return number(value, 1) + "%" if _number(value) is not None else number(value, 1)
        return number(value, 1 if isinstance(value, float) and not float(value).is_integer() else 0)

    def format_change(self, change: float) -> str:
        if self.type == "money":
            return money(change)
        if self.type == "months":
            return months(change)
        if self.type == "percent":
            return f"{number(change, 1)} pts"
        return number(change, 1 if not float(change).is_integer() else 0)

    def kpi(self, label: str | None = None) -> Kpi:
        note = ""
        if self.left_out:
            note = f"leaves out {', '.join(self.left_out)}"
        return Kpi(label or self.label, self.value_text, self.change_text, self.good, self.target_text, note)

    def contributors_text(self, n: int = MAX_CONTRIBUTORS) -> str:
        """What moved the figure most, with its own change: the entities of a portfolio total ("JADA
        -$3,100, QuickDumpNow -$1,900") or a tenant figure's components ("Fuel -$1,500"); "" when nothing
        moved."""
        shown = [(name, change) for name, change in self.contributions
                 if self.format_change(abs(change)) != self.format_change(0)][:n]
        return ", ".join(f"{name} {'+' if change > 0 else '-'}{self.format_change(abs(change))}"
                         for name, change in shown)

    def sentence(self) -> str:
        """"Cash on hand down $1,200 (-2.1%) vs last week", or "" when it did not change notably; a
        portfolio total says which entities moved it: "...: JADA -$900, QuickDumpNow -$300"."""
        change, share = self.change, self.change_percent
        if change is None or self.period is None:
            return ""
        if share is not None and abs(share) < NOTABLE_CHANGE * 100 or change == 0:
            return ""
        percent = f" ({'+' if change > 0 else '-'}{number(abs(share), 1)}%)" if share is not None else ""
        why = self.contributors_text() if len(self.contributions) > (0 if self.by_component else 1) else ""
        return (f"{self.label} {'up' if change > 0 else 'down'} {self.format_change(abs(change))}{percent} "
                f"vs {self.period.words}" + (f": {why}" if why else ""))


def _number(value: Any) -> float | None:
    if value is None or not is_available(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        result = float(value)
        return None if math.isnan(result) or math.isinf(result) else result
    return None


def as_shown(value: float | None, metric_type: str) -> float | None:
    """A figure as an email shows it: money to the dollar. Portfolio totals add figures as shown, so a
    total always equals the sum of the rows it totals."""
    if value is None:
        return None
    return float(round(Decimal(str(value)))) if metric_type == "money" else value


def summed(key: str | None, among: list[tuple[str, dict[str, Any]]], metric_type: str = "money") -> Any:
    """The sum over ``among`` of each tenant's ``key`` as shown; None if any of them lacks it."""
    if key is None or not among:
        return None
    numbers = [as_shown(_number(values.get(key)), metric_type) for _, values in among]
    return None if any(n is None for n in numbers) else sum(numbers)


def _portfolio_ratio(spec: MetricSpec, tenants: list[tuple[str, dict[str, Any]]], period: Period) -> Comparison:
    numerator, denominator, scale = spec.portfolio_ratio
    counted = [(name, values) for name, values in tenants
               if _number(values.get(numerator)) is not None and _number(values.get(denominator)) is not None]
    left_out = tuple(name for name, _ in tenants if name not in {n for n, _ in counted})

    def ratio(suffix: str) -> float | None:
        top = summed(numerator + suffix, counted, "exact")
        bottom = summed(denominator + suffix, counted, "exact")
        return None if top is None or not bottom else top / bottom * scale

    return Comparison(spec.name, metric_words(spec.name), spec.type, spec.better, ratio(""),
                      ratio("@previous"), ratio("@year_ago"), None, period, left_out)


def compare_tenant(spec: MetricSpec, values: dict[str, Any], period: Period) -> Comparison:
    """One tenant's metric against its own prior values and target; where the metric declares its
    components, the rows that moved it most ("Fuel -$1,500")."""
    target = values.get(spec.target) if spec.target else None
    return Comparison(spec.name, metric_words(spec.name), spec.type, spec.better, values.get(spec.name),
                      values.get(lookback_key(spec.name, "previous")), values.get(lookback_key(spec.name, "year_ago")),
                      target, period, contributions=component_changes(spec, values), by_component=True)


def component_changes(spec: MetricSpec, values: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """Each component's part of the metric's change since the prior period (as shown), largest first;
    () when the metric has no components or they are not available for both periods."""
    parts = spec.components
    if parts is None:
        return ()

    def amounts(rows: Any) -> dict[str, float] | None:
        if rows is None or not is_available(rows) or not isinstance(rows, list):
            return None
        found: dict[str, float] = {}
        for row in rows:
            amount = as_shown(_number(row.get(parts.amount)), spec.type)
            if amount is not None:
                found[str(row.get(parts.by))] = found.get(str(row.get(parts.by)), 0.0) + amount
        return found

    now = amounts(values.get(parts.metric))
    if now is None:
        return ()
    if parts.adds_up_to == "change":
        changes = now
    else:
        before = amounts(values.get(lookback_key(parts.metric, "previous")))
        if before is None:
            return ()
        changes = {key: now.get(key, 0.0) - before.get(key, 0.0) for key in {*now, *before}}
    moved = [(key, change) for key, change in changes.items() if change]
    return tuple(sorted(moved, key=lambda item: (-abs(item[1]), item[0])))


def compare_portfolio(spec: MetricSpec, tenants: list[tuple[str, dict[str, Any]]], period: Period) -> Comparison:
    """The portfolio's figure: the sum over the tenants whose value is available, for a metric that
    totals; its prior value sums the same tenants, so the change compares like with like."""
    if spec.portfolio_ratio is not None:
        return _portfolio_ratio(spec, tenants, period)
    if not spec.total:
        raise ValueError(f"{spec.name} has no portfolio figure: it does not add up across entities "
                         "(compare it per entity, e.g. compare(\"" + spec.name + "\", t))")
    counted = [(name, values) for name, values in tenants if _number(values.get(spec.name)) is not None]
    left_out = tuple(name for name, values in tenants if _number(values.get(spec.name)) is None)

    value = summed(spec.name, counted, spec.type)
    previous = summed(lookback_key(spec.name, "previous"), counted, spec.type)
    year_ago = summed(lookback_key(spec.name, "year_ago"), counted, spec.type)
    target = summed(spec.target, counted, spec.type)
    return Comparison(spec.name, metric_words(spec.name), spec.type, spec.better, value, previous, year_ago, target,
                      period, left_out, contributions(spec, counted))


def contributions(spec: MetricSpec, tenants: list[tuple[str, dict[str, Any]]]) -> tuple[tuple[str, float], ...]:
    """Each entity's change against its own prior value (as shown), largest first: what moved the total.
    The changes add up to the total's change, since the total is the sum of the same figures."""
    changes = []
    for name, values in tenants:
        now = as_shown(_number(values.get(spec.name)), spec.type)
        before = as_shown(_number(values.get(lookback_key(spec.name, "previous"))), spec.type)
        if now is not None and before is not None and now != before:
            changes.append((name, now - before))
    return tuple(sorted(changes, key=lambda item: -abs(item[1])))


class FigureHelpers:
    """What a template calls to compare figures, for one render: ``compare(metric, tenant=None)``,
    ``kpi_strip(metrics, tenant=None)`` and ``what_changed(metrics, tenant=None)``. Without ``tenant`` a
    tenant's report compares its own figures and a portfolio report the portfolio's totals; with
    ``tenant`` (``t`` in a loop over ``tenants``) that tenant's."""

    def __init__(self, specs: dict[str, MetricSpec], values: dict[str, dict[str, Any]],
                 tenants: list[tuple[str, str]], period: Period, portfolio: bool, components: Any):
        self._specs, self._values, self._tenants = specs, values, tenants  # tenants: (id, name) included
        self._period, self._portfolio, self._components = period, portfolio, components
        self.headline = ""  # the report's first what-changed line: the inbox preview shows it

    def _spec(self, metric: Any, helper: str) -> MetricSpec:
        spec = self._specs.get(str(metric))
        if spec is None:
            raise ValueError(f"{helper}(): unknown metric {metric!r}")
        return spec

    def compare(self, metric: str, tenant: Any = None) -> Comparison:
        spec = self._spec(metric, "compare")
        if tenant is None and self._portfolio:
            return compare_portfolio(spec, [(name, self._values.get(tenant_id, {}))
                                            for tenant_id, name in self._tenants], self._period)
        tenant_id = tenant.get("id") if isinstance(tenant, dict) else (tenant or self._tenants[0][0])
        if tenant_id not in self._values:
            raise ValueError(f"compare(): no tenant {tenant_id!r} in this report")
        return compare_tenant(spec, self._values[tenant_id], self._period)

    @staticmethod
    def _labelled(comparison: Comparison, label: str | None) -> Comparison:
        from dataclasses import replace

        return replace(comparison, label=label) if label else comparison

    def kpi_strip(self, metrics: Any, tenant: Any = None) -> Any:
        """``{{ kpi_strip({"finance.cash_on_hand": "Cash", "finance.burn_rate": "Net burn"}) }}``: 1 to
        MAX_KPIS figures, each with its change against the prior period and its target where it has one."""
        from flows.templating.components import MAX_KPIS, KpiStrip

        labels = dict(metrics) if isinstance(metrics, dict) else {metric: None for metric in metrics}
        if not 1 <= len(labels) <= MAX_KPIS:
            raise ValueError(f"kpi_strip(): give 1 to {MAX_KPIS} metrics, got {len(labels)}")
        items = tuple(self.compare(metric, tenant).kpi(label) for metric, label in labels.items())
        return self._components.add(KpiStrip(items))

    def what_changed(self, metrics: Any, tenant: Any = None, empty: str = "") -> str:
        """One sentence: the figures that moved notably since the prior period, largest share first.
        ``metrics``: a list of metric paths, or a mapping of path to the words for it."""
        labels = dict(metrics) if isinstance(metrics, dict) else {metric: None for metric in metrics}
        compared = [self._labelled(self.compare(metric, tenant), label) for metric, label in labels.items()]
        moved = sorted((c for c in compared if c.sentence()), key=lambda c: -abs(c.change_percent or 0))
        line = "; ".join(c.sentence() for c in moved) + "." if moved else empty
        if line and not self.headline:
            self.headline = line  # the first what-changed line is the email's preheader
        return line
