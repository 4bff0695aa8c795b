"""The sandbox report writers work in: Jinja (sandboxed, StrictUndefined, with limits on time, size and
arithmetic), the helpers a template calls (formatters, tables, rankings, the agenda, chart specs), and
the static analysis that tells which metrics a template reads. Data values always become inert text."""
