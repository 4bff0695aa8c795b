"""The metric registry: a source is a function registered under the metric names it provides.

A gather function receives one tenant's settings for that source and returns a mapping of metric
name -> value. It may return ``Unavailable(reason)`` for a metric it could not compute and keep the
others, or raise ``SourceError`` when nothing it provides can be trusted.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sources.errors import ReportError, SourceError

METRIC_TYPES = ("money", "number", "percent", "months", "date", "text", "table", "list", "mapping", "boolean")


# Whether a rise of a metric is good news ("up"), bad news ("down"), or neither (None).
BETTER = ("up", "down")


@dataclass(frozen=True)
class Components:
    """What a metric's change is made of, for the "what changed" line ("Cash down $3,200: Fuel -$1,500,
    Captain wages -$1,200"): a table metric of the same source whose rows, keyed by ``by``, split it.
    ``adds_up_to="value"``: the rows' ``amount`` add up to the figure itself (expenses by category), so each
    row's change against the prior period is its part of the change; ``"change"``: they add up to the
    change since the prior period (cash: the period's ledger entries by category)."""

    metric: str
    by: str
    amount: str = "amount"
    adds_up_to: str = "value"

    def __post_init__(self) -> None:
        if self.adds_up_to not in ("value", "change"):
            raise ValueError(f"Components.adds_up_to must be 'value' or 'change', got {self.adds_up_to!r}")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    type: str
    source: str = ""
    # Declared once per metric, for comparisons: is up good? Is the portfolio figure the sum of the
    # tenants' figures? Which metric holds its target (in the same tenant's values)?
    better: str | None = None
    total: bool = False
    target: str | None = None
    # A portfolio figure that is a ratio of two totals (numerator, denominator, scale): the portfolio's
    # runway is its total cash over its total monthly outflow, not a sum of runways.
    portfolio_ratio: tuple[str, str, float] | None = None
    # The rows its change is made of, named in a tenant's what-changed line (see Components).
    components: Components | None = None

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[1]


@dataclass(frozen=True)
class Unavailable:
    """Stands in for a metric that could not be gathered, carrying why. Never a silent zero."""

    metric: str
    reason: str  # technical: for the run summary, the log and the operations alert
    # For an executive, when the source can say it plainly (e.g. "books only through Oct 9, 2026").
    plain: str = ""

    def __str__(self) -> str:
        return f"unavailable ({self.reason})"

    def __bool__(self) -> bool:
        # Falsy would read "unavailable" as a real zero or an empty list (`{% if marketing.email_list_size %}`
        # taking the "no list" branch); the author has to say which they mean.
        raise UnavailableTruthTest(self)


class UnavailableTruthTest(ReportError):
    """A template (or check) tested an unavailable metric for truth, as if it were a real value."""

    def __init__(self, value: Unavailable):
        self.value = value
        super().__init__(
            f"'{value.metric}' is unavailable ({value.reason}) and was tested as true/false as if it were a value: "
            f"test `{value.metric} is available` first, e.g. `{{% if {value.metric} is available and "
            f"{value.metric} %}}`, and say what the reader should see when it is not")


def metric_words(metric: Any) -> str:
    """A metric id as words for an executive: ``finance.break_even_units`` -> "Break even units"."""
    short = str(metric).rsplit(".", 1)[-1].replace("_", " ").strip()
    return short[:1].upper() + short[1:]


def is_available(value: Any) -> bool:
    return not isinstance(value, Unavailable)


@dataclass(frozen=True)
class SourceContext:
    """What a gather call knows besides the tenant's own settings."""

    tenant_id: str
    tenant_name: str
    period_start: dt.date
    period_end: dt.date
    base_dir: Path
    # Everything the tenant config declares that is not source-specific (domains, tags, ...).
    tenant_settings: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, path: str | Path) -> Path:
        """Paths in the config are relative to the config file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()


GatherFunction = Callable[[Mapping[str, Any], SourceContext], Mapping[str, Any]]


def reject_unknown_keys(raw: Mapping[str, Any], known: Mapping[str, Any] | list[str], where: str) -> None:
    """A settings mapping may hold only ``known`` keys: the first other one is an error naming it
    (``tenant 'jada': sources.site.timout: unknown key (did you mean 'timeout_seconds'?)``)."""
    if not isinstance(raw, Mapping):
        raise SourceError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(known))})"
            raise SourceError(f"{where}.{key}: unknown key{hint}")


@dataclass(frozen=True)
class Derivation:
    """How a source that summarises other sources' metrics (KPI coverage) works inside a run: it names the
    metrics it reads (``inputs``, from its settings), the pipeline gathers those with everything else, once,
    and ``compute`` turns the gathered values into its own metrics. No source is read a second time."""

    inputs: Callable[[Mapping[str, Any], SourceContext], list[str]]
    compute: Callable[[Mapping[str, Any], Mapping[str, Any], SourceContext], Mapping[str, Any]]


@dataclass
class Source:
    name: str
    description: str
    metrics: dict[str, MetricSpec]
    gather: GatherFunction
    derivation: Derivation | None = None
    looks_back: bool = False  # can be gathered for an earlier period (see SourceRegistry.register)
    # (metric, plain words): the date the source's data runs through, and what an executive calls the
    # data ("books"); a report showing the source's figures says that date when it is before the period end.
    data_through: tuple[str, str] | None = None


class SourceRegistry:
    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._metrics: dict[str, MetricSpec] = {}
        self._suggestions: dict[tuple[str, int], str | None] = {}
        # Plain words for ids a source's values carry (a rule id -> "cash reserve"): the templates'
        # ``rule_name`` reads them here, so the engine never imports a specific source.
        self.labels: dict[str, str] = {}
        # Sources that can save a tenant's live data as a file (``exec-reports snapshot NAME``):
        # name -> function(settings, context, output path) -> list of warnings.
        self.snapshotters: dict[str, Callable[..., list[str]]] = {}
        # Template helpers for figures worked from more than one source's metrics (the CMO's 30/60/90-day
        # milestones read the channels, the revenue targets and the customers): name -> function.
        self.helpers: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, description: str, metrics: list[MetricSpec], *, looks_back: bool = False,
                 data_through: tuple[str, str] | None = None):
        """Decorator: ``@REGISTRY.register("ledger", "...", [MetricSpec(...), ...])``.

        ``looks_back``: the source can be gathered for an earlier period from the same data (a ledger, a
        dated export), so the engine can ask it for the prior period's values to compare with.
        ``data_through``: (one of its date metrics, plain words): how far its data reaches, gathered for
        every report that shows its figures, which then says the date when it is before the period end."""

        def decorator(function: GatherFunction) -> GatherFunction:
            if name in self._sources:
                raise ValueError(f"source {name!r} is registered twice")
            specs: dict[str, MetricSpec] = {}
            for spec in metrics:
                if "." not in spec.name:
                    raise ValueError(f"metric {spec.name!r} must be namespaced like 'finance.burn_rate'")
                if spec.type not in METRIC_TYPES:
                    raise ValueError(f"metric {spec.name!r} has unknown type {spec.type!r}")
                if spec.name in self._metrics:
                    raise ValueError(f"metric {spec.name!r} is provided by two sources")
                if spec.better not in (None, *BETTER):
                    raise ValueError(f"metric {spec.name!r}: better must be 'up', 'down' or None")
                full = replace(spec, source=name)
                specs[spec.name] = full
            if data_through is not None and specs.get(data_through[0], MetricSpec("", "", "")).type != "date":
                raise ValueError(f"source {name!r}: data_through must name one of its date metrics")
            self._metrics.update(specs)
            self._sources[name] = Source(name, description, specs, function, looks_back=looks_back,
                                         data_through=data_through)
            return function

        return decorator

    def add_labels(self, labels: Mapping[str, str]) -> None:
        """Plain words for ids that appear in a source's values (``rule_name`` in templates shows them)."""
        for key, words in labels.items():
            if self.labels.get(key, words) != words:
                raise ValueError(f"label {key!r} is registered twice with different words")
            self.labels[key] = words

    def add_helper(self, name: str, helper: Callable[..., Any]) -> None:
        """A function templates call by ``name``, for a figure that needs several sources' metrics: it
        takes an entity's metrics as the template sees them (``t``) and returns data, never Markdown; the
        template lays it out. Defined once here, so two briefs that show it show the same thing."""
        if name in self.helpers:
            raise ValueError(f"template helper {name!r} is registered twice")
        self.helpers[name] = helper

    def add_snapshotter(self, name: str, snapshot: Callable[..., list[str]]) -> None:
        """``exec-reports snapshot NAME``: ``snapshot(settings, context, output)`` writes the tenant's live
        data to ``output`` and returns warnings (services that failed)."""
        if name in self.snapshotters:
            raise ValueError(f"snapshotter {name!r} is registered twice")
        self.snapshotters[name] = snapshot

    def derive_from(self, name: str, inputs, compute) -> None:
        """Mark source ``name`` as derived (see Derivation); its gather function stays for use outside a run."""
        self._sources[name].derivation = Derivation(inputs, compute)

    def is_derived(self, source_name: str) -> bool:
        return self._sources[source_name].derivation is not None

    def derived_inputs(self, source_name: str, settings: Mapping[str, Any] | None, context: SourceContext) -> list[str]:
        """The metrics a derived source reads for this tenant; none when its settings are unusable (its own
        ``derive`` then reports why)."""
        derivation = self._sources[source_name].derivation
        if derivation is None or settings is None:
            return []
        try:
            return [name for name in derivation.inputs(settings, context)
                    if name in self._metrics and not self.is_derived(self._metrics[name].source)]
        except SourceError:
            return []

    def derive(self, source_name: str, wanted: list[str], settings: Mapping[str, Any] | None,
               values: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
        """A derived source's ``wanted`` metrics from the values already gathered (same contract as gather)."""
        source = self._sources[source_name]
        return self._produce(source_name, wanted, settings, context,
                             lambda: source.derivation.compute(settings, values, context))

    @property
    def sources(self) -> dict[str, Source]:
        return dict(self._sources)

    @property
    def metrics(self) -> dict[str, MetricSpec]:
        return dict(self._metrics)

    @property
    def namespaces(self) -> set[str]:
        return {spec.namespace for spec in self._metrics.values()}

    def source_of(self, metric: str) -> Source:
        return self._sources[self._metrics[metric].source]

    def suggest(self, unknown: str) -> str | None:
        # Asked once per tenant for the same unknown names (KPI coverage); difflib is slow enough to matter.
        key = (unknown, len(self._metrics))
        if key not in self._suggestions:
            close = difflib.get_close_matches(unknown, list(self._metrics), n=1, cutoff=0.6)
            self._suggestions[key] = close[0] if close else None
        return self._suggestions[key]

    def gather(self, source_name: str, wanted: list[str], settings: Mapping[str, Any] | None,
               context: SourceContext) -> dict[str, Any]:
        """Run one source for one tenant and return exactly the ``wanted`` metrics.

        Anything missing comes back as ``Unavailable`` with the reason, so one failing source can
        never stop the rest of a tenant's metrics or produce a silent default.
        """
        source = self._sources[source_name]
        return self._produce(source_name, wanted, settings, context, lambda: source.gather(settings, context))

    def _produce(self, source_name: str, wanted: list[str], settings: Mapping[str, Any] | None,
                 context: SourceContext, produce: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        if settings is None:
            reason = f"source '{source_name}' is not configured for tenant '{context.tenant_id}'"
            return {name: Unavailable(name, reason) for name in wanted}
        try:
            produced = dict(produce())
        except SourceError as exc:
            return {name: Unavailable(name, str(exc)) for name in wanted}
        result: dict[str, Any] = {}
        for name in wanted:
            if name in produced:
                result[name] = produced[name]
            else:
                result[name] = Unavailable(name, f"source '{source_name}' did not produce it")
        return result


REGISTRY = SourceRegistry()
