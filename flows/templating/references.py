"""Static analysis: which metrics a parsed template reads (``ns.name``, ``x.ns.name``, ``ns['name']`` and
metric paths given as text to the aggregate helpers), with their lines, so ``check`` can refuse a
template that uses a metric its front matter does not declare."""

from __future__ import annotations

from jinja2 import nodes


def metric_references(tree: nodes.Node, namespaces: set[str]) -> list[tuple[str, int]]:
    """Every ``ns.name`` (or ``x.ns.name``, ``ns['name']``) in a parsed template, with its line."""
    found: list[tuple[str, int]] = []
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
        found.append((f"{base_name}.{leaf}", node.lineno))
    # Metric paths given as text to the aggregate helpers: total(tenants, "finance.burn_rate").
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name in PATH_HELPERS):
            continue
        for argument in [*call.args, *(keyword.value for keyword in call.kwargs)]:
            if isinstance(argument, nodes.Const) and isinstance(argument.value, str) and "." in argument.value:
                namespace = argument.value.split(".", 1)[0]
                if namespace in namespaces:
                    found.append((".".join(argument.value.split(".")[:2]), call.lineno))
    return found


# Helpers that take a metric path as text; the compile step checks those paths like any other reference.
PATH_HELPERS = frozenset({"total", "count", "unavailable_in", "totals_by", "top"})
