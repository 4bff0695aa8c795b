"""Every source, registered: importing this module fills ``REGISTRY`` with each source's metrics.

Importing it must stay cheap (``exec-reports check`` imports it): heavy clients such as boto3 are
imported inside the gather functions, never at module level. A new source is one module here.
"""

from sources.registry import REGISTRY, MetricSpec, Source, SourceContext, Unavailable, is_available

# Importing a source module registers it.
from sources import handoffs, ledger, marketing  # noqa: E402, F401  isort: skip
from sources import kpis, sales  # noqa: E402, F401  isort: skip
from sources import aws  # noqa: E402, F401  isort: skip
from sources import sitecheck  # noqa: E402, F401  isort: skip
from sources import customers, equity  # noqa: E402, F401  isort: skip
from sources import cost_share  # noqa: E402, F401  isort: skip
from sources import marketing_plan  # noqa: E402, F401  isort: skip

__all__ = ["REGISTRY", "MetricSpec", "Source", "SourceContext", "Unavailable", "is_available"]
