"""Gathering: every planned (tenant, source) is gathered exactly once, transient failures retried,
and anything that still fails becomes an ``Unavailable`` value with its reason, so one source never
stops the others. Derived metrics are computed from the gathered values, never by calling a source again."""
