"""Static analysis: which metrics a parsed template reads (``ns.name``, ``x.ns.name``, ``ns['name']`` and
metric paths given as text to the aggregate helpers), with their lines, so ``check`` can refuse a
template that uses a metric its front matter does not declare."""

from __future__ import annotations

from jinja2 import nodes


def metric_references(tree: nodes.Node, namespaces: set[str]) -> list[tuple[str, int, bool]]:
    """Every ``ns.name`` (or ``x.ns.name``, ``ns['name']``) in a parsed template, with its line, and whether it
    is compared with an earlier period (a path given to ``compare``, ``kpi_strip`` or ``what_changed``): the
    run gathers those metrics for the prior period too."""
    found: list[tuple[str, int, bool]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = node.node
        if isinstance(base, nodes.Name):
            base_name = base.name
        elif isinstance(base, nodes.Getattr):
            base_name = base.attr
        elif isinstance(base, nodes.Getitem) and isinstance(base.arg, nodes.Const):
            base_name = base.arg.value
        else:
            continue
        if base_name not in namespaces:
            continue
        if isinstance(node, nodes.Getattr):
            leaf = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            leaf = node.arg.value
        else:
            continue
        found.append((f"{base_name}.{leaf}", node.lineno, False))
    # Metric paths given as text to the helpers: total(tenants, "finance.burn_rate"), kpi_strip([...]).
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name in PATH_HELPERS | COMPARISON_HELPERS):
            continue
        compared = call.node.name in COMPARISON_HELPERS
        for argument in [*call.args, *(keyword.value for keyword in call.kwargs)]:
            if isinstance(argument, nodes.List | nodes.Tuple):
                items = argument.items
            elif isinstance(argument, nodes.Dict):  # kpi_strip({"finance.cash_on_hand": "Cash"}), columns
                items = [pair.key for pair in argument.items]
            else:
                items = [argument]
            for item in items:
                if isinstance(item, nodes.Const) and isinstance(item.value, str) and "." in item.value:
                    namespace = item.value.split(".", 1)[0]
                    if namespace in namespaces:
                        found.append((".".join(item.value.split(".")[:2]), call.lineno, compared))
    return found


# Helpers that take a metric path as text; the compile step checks those paths like any other reference.
PATH_HELPERS = frozenset({"total", "count", "unavailable_in", "totals_by", "top", "ranked_table", "rows_of"})
# Helpers that compare a metric with the prior period: the run gathers those metrics' prior values.
COMPARISON_HELPERS = frozenset({"compare", "kpi_strip", "what_changed"})
