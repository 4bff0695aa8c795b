"""The operations alert sent when a run fails or crashes: what failed, why, and where to look."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flows.core.config import PortfolioConfig
from flows.core.errors import ConfigurationError, DeliveryError
from flows.delivery import get_backend
from flows.delivery.message import Email
from flows.delivery.outbox import OutboxBackend
from flows.orchestrator.shards import shard_notes
from flows.render.email import render_email
from flows.templating.escape import escape_markdown


def operations_recipient(config: PortfolioConfig) -> str:
    address = config.delivery.operations_address or config.delivery.default_recipient
    if not address:
        raise ConfigurationError(f"{config.path}: set delivery.operations_address to receive failure alerts")
    return address


def run_period_label(config: PortfolioConfig, parameters: dict[str, Any], scheduled: dt.datetime | None,
                     from_deployment: bool = False) -> str:
    """The period a run reports on, from its parameters and scheduled time alone: a crashed run left no
    summary to read it from, and its alert is sent without the run's context. As for the run itself
    (``flows.flow.run_period``), ``default_period`` applies to local runs only, never to a deployment's."""
    from zoneinfo import ZoneInfo

    from flows.core.errors import ReportError
    from flows.core.period import resolve_period

    try:
        reference = (scheduled or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(config.portfolio.timezone)).date()
        default = None if from_deployment else config.portfolio.default_period
        return resolve_period(parameters.get("period") or default,
                              parameters.get("period_kind") or config.portfolio.period_kind, reference).label
    except ReportError:
        return str(parameters.get("period") or "")


def build_alert_email(config: PortfolioConfig, *, run_name: str, state_name: str, state_message: str,
                      run_url: str | None, summary: dict[str, Any] | None, period: str = "") -> Email:
    """``period``: the run's period when it left no summary (a crash), so the alert still names it."""
    period = (summary or {}).get("period") or period
    lines = [f"The run **{escape_markdown(run_name)}** ended **{escape_markdown(state_name)}**.", ""]
    if state_message:
        lines += [f"Reason: {escape_markdown(state_message)}", ""]
    if run_url:
        # The URL is ours (Prefect's UI address plus a UUID), not data, so it may be a link.
        lines += [f"See the run: <{run_url}>", ""]
    feedback = (summary or {}).get("delivery_feedback") or []
    if feedback:
        # Reported once, by the first run after SES said so; the address gets nothing until cleared.
        lines += [f"## {len(feedback)} address(es) suppressed after SES delivery feedback", ""]
        lines += [f"- {escape_markdown(entry['address'])}: {escape_markdown(entry['why'])} (since "
                  f"{escape_markdown(entry['since'])}); `exec-reports suppression clear` lifts it" for entry in feedback]
        lines += [""]
    if notes := shard_notes((summary or {}).get("shards") or []):
        lines += ["## Shards that needed another attempt or did not complete", ""]
        lines += [f"- {escape_markdown(note)}" for note in notes] + [""]
    if summary and (summary.get("failed") or not feedback):
        failed = summary.get("failed", [])
        lines += [f"## {len(failed)} failure(s)", ""]
        lines += [f"- {escape_markdown(item['report'])} / {escape_markdown(item['tenant'] or '-')}: "
                  f"{escape_markdown(item['reason'])}" for item in failed]
        lines += ["", f"Delivered anyway: {len(summary.get('sent', []))} message(s); "
                  f"skipped: {len(summary.get('skipped', []))}."]
    else:
        # A crashed run wrote neither its summary nor its delivery table: point only at what exists.
        lines += ["The run stopped before it finished, so it left no summary or delivery table. Its log "
                  "(see the run) shows how far it got; delivery records keep what it sent, so the next run of "
                  "the same period sends only what this one did not."]
    subject = f"[exec-reports] run {state_name}: {run_name}"
    if state_name == "Completed" and feedback:
        subject = f"[exec-reports] {len(feedback)} address(es) suppressed after bounces or complaints: {run_name}"
    rendered = render_email("\n".join(lines) + "\n", subject,
                            title="Report run failed" if state_name != "Completed" else "Delivery feedback",
                            footer=f"{config.portfolio.name} · exec-reports operations alert")
    recipient = operations_recipient(config)
    return Email(subject=subject, html=rendered.html, text=rendered.text, from_address=config.delivery.from_address,
                 to=(recipient,), role="operations-alert", tenant="portfolio", period=period or "unknown",
                 tags={"role": "operations-alert"})


def send_to_operations(config: PortfolioConfig, alert: Email, folder: str | None, run_name: str) -> str:
    """Send an operations email through the run's backend; where that fails, keep it in the local outbox."""
    log = logging.getLogger("exec_reports")
    folder = folder or f"alerts_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    try:
        result = get_backend(config, folder).send(alert)
        if result.status != "sent":
            raise DeliveryError(result.error or result.status)
    except Exception as exc:
        # The backend that failed the run (an unverified sender, a paused account) may fail the
        # alert too: keep it in the local outbox so it exists somewhere, and say where.
        result = OutboxBackend(config.outbox_path / folder).send(alert)
        log.error("run %s: the alert could not go through %s (%s: %s); written to %s instead", run_name,
                  config.delivery.backend, type(exc).__name__, exc, result.location)
    return result.location
