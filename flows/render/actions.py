"""A report's agenda as data for the task system: each action its template recorded (text, priority,
due date, owner role, tenant) that reached the email, with the heading it appears under and the report
that lists it. Nothing is parsed back out of the rendered text."""

from __future__ import annotations

from flows.plan.definitions import ReportDefinition
from flows.plan.plan import PORTFOLIO, ReportInstance
from flows.templating.agenda import Action


def structure_actions(recorded: list[Action], headings: dict[int, str], instance: ReportInstance,
                      definition: ReportDefinition) -> list[dict[str, str]]:
    """The actions that appear in the email, in the order they were written. An action's tenant is the one
    its template named (a check's tenant, ``todos(..., tenant=t.id)``, ``action(..., tenant=t.id)``); in a
    tenant's own report it is that tenant; otherwise the portfolio. Its owner is the role it names, or the
    report's role."""
    actions = []
    for number, item in enumerate(recorded):
        if number not in headings:
            continue
        tenant = instance.key if instance.key != PORTFOLIO else (item.tenant or PORTFOLIO)
        actions.append({
            "text": item.text,
            "owner": item.owner or definition.role,
            "tenant": tenant,
            "priority": item.priority,
            "due": item.due,
            "heading": headings[number],
            "report": definition.role,
        })
    return actions
