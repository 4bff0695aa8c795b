"""One report instance from rendered email to delivered messages: its recipients (the tenant's own
officers first), their A/B variant, suppressed addresses skipped, one message per recipient, each
delivered once through the delivery records. Returns outcomes; never raises for a report's problem."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Any

from flows.core.config import PortfolioConfig
from flows.core.errors import ConfigurationError, ReportError
from flows.core.period import Period
from flows.delivery.feedback import SuppressionList
from flows.delivery.message import DeliveryBackend, Email, slug
from flows.delivery.records import DeliveryKey, RecordStore, RunLiveness, deliver_once
from flows.orchestrator.summary import Outcome
from flows.plan.definitions import ReportDefinition
from flows.plan.plan import PORTFOLIO, MetricValues, ReportInstance
from flows.plan.selection import Selection
from flows.render.checks import CheckResult
from flows.render.email import RenderedEmail
from flows.render.report import ReportSkipped, build_report

log = logging.getLogger("exec_reports")


def recipients_of(instance: ReportInstance, config: PortfolioConfig) -> list[str]:
    definition = instance.definition
    tenant = None if instance.key == PORTFOLIO else config.tenant(instance.key)
    # A tenant's own officers come first for its tenant-scope reports, so a definition's shared list
    # can never send one business's figures to another's people.
    if tenant is not None and tenant.recipients.get(definition.role):
        recipients = list(tenant.recipients[definition.role])
    else:
        recipients = definition.front.recipients or config.recipients_for(definition.role, tenant)
    if not recipients:
        raise ConfigurationError(
            f"no recipients for role '{definition.role}': set recipients.{definition.role} in {config.path}, "
            f"'recipients' in {definition.shown_path}, or delivery.default_recipient")
    return recipients


def assign_variant(role: str, recipient: str, default: ReportDefinition,
                   variants: tuple[ReportDefinition, ...]) -> ReportDefinition:
    """The same recipient always gets the same variant of a role (stable across runs and machines)."""
    if not variants:
        return default
    bucket = int(hashlib.sha256(f"{role}:{recipient.strip().lower()}".encode()).hexdigest(), 16) % 100
    threshold = 0
    for variant in sorted(variants, key=lambda d: d.variant):
        threshold += variant.front.split or 0
        if bucket < threshold:
            return variant
    return default


def make_email(instance: ReportInstance, definition: ReportDefinition, rendered: RenderedEmail,
               recipient: str | tuple[str, ...], config: PortfolioConfig, period: Period) -> Email:
    """One message per recipient (nobody sees another recipient's address); a tuple when the config groups."""
    delivery = config.delivery
    # A portfolio report built for only some tenants is another message than the full one: its own
    # delivery key, so it can neither block nor be blocked by the scheduled full run.
    tenant_label = instance.key
    if instance.key == PORTFOLIO and set(instance.tenant_ids) != {t.id for t in config.tenants}:
        tenant_label = f"{PORTFOLIO}:{'+'.join(sorted(instance.tenant_ids))}"
    tags = {**delivery.ses.tags, "tenant": slug(tenant_label), "role": definition.role, "period": period.label}
    if definition.variant:
        tags["variant"] = definition.variant
    return Email(subject=rendered.subject, html=rendered.html, text=rendered.text,
                 from_address=delivery.from_address, to=(recipient,) if isinstance(recipient, str) else recipient,
                 role=definition.role, tenant=tenant_label, period=period.label, variant=definition.variant,
                 tags=tags, bcc=(delivery.bcc_address,) if delivery.bcc_address else (),
                 configuration_set=delivery.ses.configuration_set, images=tuple(rendered.images))


@dataclass
class ProducedReport:
    outcomes: list[Outcome]
    checks: list[CheckResult]
    rendered: dict[str, RenderedEmail]  # variant ("" for the default) -> rendered email

    def without_messages(self) -> ProducedReport:
        """Outcomes, checks and agenda items without the rendered messages (HTML, text, charts): what a
        run keeps of a report once it is delivered, so one message at a time is in memory, not all."""
        return replace(self, rendered={variant: replace(rendered, markdown="", html="", text="", images=[])
                                       for variant, rendered in self.rendered.items()})


@dataclass
class PreparedReport:
    """A report instance rendered and not yet delivered: per variant (in order), the outcome that ended it
    (skipped, failed) or what to deliver (its definition, recipients and rendered email)."""

    instance: ReportInstance
    produced: ProducedReport
    variants: list[Outcome | tuple[str, ReportDefinition, list[str], RenderedEmail]]


def produce_report(instance: ReportInstance, values: MetricValues, config: PortfolioConfig, period: Period,
                   backend: DeliveryBackend | None, *, dry_run: bool = False, records: RecordStore | None = None,
                   run: str = "", resend: bool = False, run_name: str = "", only: Selection | None = None,
                   run_is_over: RunLiveness | None = None, every_variant: bool = False,
                   generated_at: dt.datetime | None = None, draw_charts: bool = True) -> ProducedReport:
    """Render and deliver one report instance. Never raises for report-level problems: returns outcomes.

    With ``records``, each message goes through ``deliver_once``: sent once per period unless ``resend``,
    claimed right before its provider call under this ``run``. With ``only``, messages it does not select
    are not delivered (nor listed). With ``every_variant`` (``check``, ``preview``), the default and every
    variant are rendered even when no recipient is assigned to them (listed as dry-run with no recipients).
    """
    prepared = prepare_report(instance, values, config, period, every_variant=every_variant,
                              generated_at=generated_at, draw_charts=draw_charts)
    return deliver_report(prepared, config, period, backend, dry_run=dry_run, records=records, run=run,
                          resend=resend, run_name=run_name, only=only, run_is_over=run_is_over)


def prepare_report(instance: ReportInstance, values: MetricValues, config: PortfolioConfig, period: Period, *,
                   every_variant: bool = False, generated_at: dt.datetime | None = None,
                   draw_charts: bool = True) -> PreparedReport:
    """The first half of ``produce_report``: recipients, their variants, and each variant rendered (its
    charts may still be drawing in a worker process)."""
    role, key = instance.role, instance.key
    prepared = PreparedReport(instance, ProducedReport([], [], {}), [])
    try:
        recipients = recipients_of(instance, config)
    except ReportError as exc:
        log.error("report %s failed: %s", instance.label, exc)
        prepared.variants.append(Outcome(role, key, [], "failed", reason=str(exc)))
        return prepared
    by_definition: dict[str, tuple[ReportDefinition, list[str]]] = {}
    for recipient in recipients:
        chosen = assign_variant(role, recipient, instance.definition, instance.variants)
        by_definition.setdefault(chosen.variant, (chosen, []))[1].append(recipient)
    if every_variant:
        for definition in instance.all_definitions:
            by_definition.setdefault(definition.variant, (definition, []))
    for variant, (definition, assigned) in sorted(by_definition.items()):
        try:
            rendered, checks = build_report(instance, values, config, period, generated_at, definition=definition,
                                            render_skipped=every_variant, draw_charts=draw_charts)
        except ReportSkipped as skipped:
            prepared.variants.append(Outcome(role, key, assigned, "skipped", reason=str(skipped), variant=variant))
            continue
        except ReportError as exc:
            log.error("report %s failed: %s", instance.label, exc)
            prepared.variants.append(Outcome(role, key, assigned, "failed", reason=str(exc), variant=variant))
            continue
        except Exception as exc:  # a bug in one report must not hide the others' outcomes
            log.exception("report %s failed unexpectedly", instance.label)
            prepared.variants.append(Outcome(role, key, assigned, "failed", variant=variant,
                                             reason=f"unexpected error: {type(exc).__name__}: {exc}"))
            continue
        if not prepared.produced.checks:
            prepared.produced.checks = checks
        prepared.produced.rendered[variant] = rendered
        prepared.variants.append((variant, definition, assigned, rendered))
    return prepared


def deliver_report(prepared: PreparedReport, config: PortfolioConfig, period: Period,
                   backend: DeliveryBackend | None, *, dry_run: bool = False, records: RecordStore | None = None,
                   run: str = "", resend: bool = False, run_name: str = "", only: Selection | None = None,
                   run_is_over: RunLiveness | None = None) -> ProducedReport:
    """The second half of ``produce_report``: one message per recipient (or group), each delivered once."""
    instance, produced = prepared.instance, prepared.produced
    role, key = instance.role, instance.key
    # Addresses that bounced for good or complained get nothing until an operator clears them. Looked up
    # per address (one read each, once per report), not by listing the whole suppression list for every
    # report: on S3 a listing costs one request per entry.
    suppressions = None if records is None or dry_run else SuppressionList(records)
    suppressed: dict[str, Any] = {}

    def suppression_of(recipient: Any) -> Any:
        address = _bare_address(recipient)
        if address not in suppressed:
            suppressed[address] = suppressions.entry(address) if suppressions is not None else None
        return suppressed[address]

    for entry in prepared.variants:
        if isinstance(entry, Outcome):
            produced.outcomes.append(entry)
            continue
        variant, definition, assigned, rendered = entry
        for warning in rendered.warnings:
            log.warning("report %s: %s", instance.label, warning)
        groups = [tuple(assigned)] if config.delivery.group_recipients else [(r,) for r in assigned]
        if not assigned:  # rendered for check/preview only: nobody is assigned this variant
            produced.outcomes.append(Outcome(role, key, [], "dry-run", subject=rendered.subject,
                                             warnings=rendered.warnings, variant=variant))
        for recipient in groups:
            blocked = [r for r in recipient if suppression_of(r) is not None]
            for address in blocked:
                produced.outcomes.append(Outcome(role, key, [address], "skipped", variant=variant,
                                                 reason=suppressed_reason(suppression_of(address))))
            recipient = tuple(r for r in recipient if r not in blocked)
            if not recipient:
                continue
            message = make_email(instance, definition, rendered, recipient, config, period)
            if only is not None and not only.selects(DeliveryKey.for_email(message)):
                continue
            if dry_run or backend is None:
                produced.outcomes.append(Outcome(role, key, list(recipient), "dry-run", subject=message.subject,
                                                 warnings=rendered.warnings, variant=variant))
                continue
            try:
                if records is not None:
                    result = deliver_once(backend, message, records, run=run, run_name=run_name, resend=resend,
                                          lease_seconds=config.delivery.records.lease_seconds,
                                          run_is_over=run_is_over)
                else:
                    result = backend.send(message)
                produced.outcomes.append(Outcome(role, key, list(result.recipients), result.status, result.location,
                                                 result.error, message.subject, rendered.warnings, variant))
            except Exception as exc:  # one recipient's failure never stops the others
                log.error("report %s to %s failed: %s", instance.label, ", ".join(recipient), exc)
                produced.outcomes.append(Outcome(role, key, list(recipient), "failed", subject=message.subject,
                                                 reason=f"{type(exc).__name__}: {exc}", variant=variant))
    return produced


def _bare_address(recipient: Any) -> str:
    return str(getattr(recipient, "address", recipient)).strip().lower()


def suppressed_reason(entry: Any) -> str:
    return (f"not sent: the address is suppressed since {entry.updated_at[:10]} ({entry.reason}); "
            f"`exec-reports suppression clear {entry.key.recipient}` lifts it")
