"""Everything ``exec-reports run`` depends on, checked before a server is started or a run is created:
the config, the period, the delivery backend, the roles, the tenants and the ``--only`` selectors
(their roles, tenants, variants and recipients). A wrong one is a ``UsageError``: one line naming the
bad value and the valid ones, exit status 2, nothing started, nothing sent, no alert.

Plain Python: no Prefect here, so a mistake costs a second, not a server start.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr

from flows.core.config import BACKENDS, PortfolioConfig, default_config_path, load_config_once
from flows.core.errors import ReportError, UsageError
from flows.core.period import Period, resolve_period, today_in
from flows.plan.definitions import RoleReports, group_by_role, load_definitions
from flows.plan.plan import PORTFOLIO
from flows.plan.selection import Selection, Selector

DELIVERY_ENV = "EXEC_REPORTS_DELIVERY"


@dataclass(frozen=True)
class RunArguments:
    config: PortfolioConfig
    period: Period
    only: Selection | None


def _valid(names: Iterable[str]) -> str:
    return ", ".join(names) or "(none)"


def unknown(what: str, value: str, valid: list[str], note: str = "") -> str:
    """``unknown role 'cf0' (did you mean 'cfo'? valid: accounting, ceo, cfo)``."""
    hint = difflib.get_close_matches(value, valid, n=1)
    guess = f"did you mean '{hint[0]}'? " if hint else ""
    return f"unknown {what} '{value}' ({note}{guess}valid: {_valid(valid)})"


def validate_run_arguments(args) -> RunArguments:
    """The run's config, period and selection, or a UsageError about the first thing that is wrong."""
    try:
        config = load_config_once(args.config or default_config_path())
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    delivery = args.delivery
    if delivery and delivery not in BACKENDS:  # argparse checks --delivery; the variable reaches here as is
        source = "--delivery" if os.environ.get(DELIVERY_ENV) != delivery else DELIVERY_ENV
        raise UsageError(f"{source}: {unknown('delivery backend', delivery, list(BACKENDS))}")
    try:
        period = resolve_period(args.period or config.portfolio.default_period, config.portfolio.period_kind,
                                today_in(config.portfolio.timezone))
    except ReportError as exc:
        where = "--period" if args.period else f"{config.path}: portfolio.default_period"
        raise UsageError(f"{where}: {exc}") from None
    definitions, problems = load_definitions(config.reports_path)
    groups = group_by_role(definitions)
    # A role whose file is broken is still a role: the run fails it with the file's problems.
    roles = sorted({*groups, *(p.role for p in problems if p.role)})
    for role in args.roles or []:
        if role not in roles:
            raise UsageError(f"--roles: {unknown('role', role, roles)}")
    tenants = [tenant.id for tenant in config.tenants]
    for tenant in args.tenants or []:
        if tenant == PORTFOLIO:
            raise UsageError(f"--tenants: '{PORTFOLIO}' is not a tenant (a portfolio report covers every tenant "
                             f"the run chooses; valid: {_valid(tenants)})")
        if tenant not in tenants:
            raise UsageError(f"--tenants: {unknown('tenant', tenant, tenants)}")
    try:
        only = Selection.parse(args.only)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    for selector in only.selectors if only else ():
        check_selector(selector, config, groups, roles, args.roles)
    return RunArguments(config, period, only)


def check_selector(selector: Selector, config: PortfolioConfig, groups: dict[str, RoleReports], roles: list[str],
                   chosen_roles: list[str] | None) -> None:
    """A ``--only`` selector names a report the run can make: its role, variant, tenant and recipient."""
    where = f"--only '{selector}'"
    if selector.role not in roles:
        raise UsageError(f"{where}: {unknown('role', selector.role, roles)}")
    if chosen_roles and selector.role not in chosen_roles:
        raise UsageError(f"{where}: role '{selector.role}' is not among --roles (valid: {_valid(chosen_roles)})")
    group = groups.get(selector.role)
    if group is None:  # the role's file is broken: the run reports its problems
        return
    variants = ["", *(v.variant for v in group.variants)]
    if selector.variant and not variants[1:]:
        raise UsageError(f"{where}: {selector.role} has no A/B variants (valid: {selector.role}/...)")
    if selector.variant is not None and selector.variant not in variants:
        raise UsageError(f"{where}: {unknown(f'variant of {selector.role}', selector.variant, variants[1:])}")
    tenant_ids = [tenant.id for tenant in config.tenants]
    if group.default.scope == "portfolio":
        base, _, chosen = selector.tenant.partition(":")
        if base != PORTFOLIO:
            raise UsageError(f"{where}: '{selector.tenant}': {selector.role} is a portfolio report, so its tenant "
                             f"is '{PORTFOLIO}' (or '{PORTFOLIO}:a+b' for some tenants)")
        for tenant in filter(None, chosen.split("+")):
            if tenant not in tenant_ids:
                raise UsageError(f"{where}: {unknown('tenant', tenant, tenant_ids)}")
        tenant_config = None
    else:
        if selector.tenant not in tenant_ids:
            raise UsageError(f"{where}: {unknown('tenant', selector.tenant, tenant_ids)}")
        tenant_config = config.tenant(selector.tenant)
    if selector.recipient is not None:
        recipients = [parseaddr(address)[1].lower() for address in config.recipients_for(selector.role, tenant_config)]
        if selector.recipient not in recipients:
            raise UsageError(f"{where}: '{selector.recipient}' is not a recipient of this report "
                             f"(valid: {_valid(recipients)})")
