"""The author's commands: ``check`` (every report rendered against the data, short of delivering),
``preview`` (one role's reports as HTML), ``diff`` (what a change to reports/ does to the emails) and
``metrics`` (the catalogue). None of them imports Prefect, so the author loop stays fast."""

from __future__ import annotations

import sys
from pathlib import Path

from flows.operate.cli import config_and_period, quiet_pipeline_log


def cmd_check(args) -> int:
    """Everything a run would do, short of delivering: every definition loaded, every report instance,
    override and variant (the default too, assigned or not) rendered with its checks and ``send_if``
    over the config's data. Anything that can fail a run fails here."""
    from flows.orchestrator.run import run_plain
    from flows.orchestrator.summary import metric_usage
    from flows.plan.definitions import load_definitions

    quiet_pipeline_log()
    config, period = config_and_period(args)
    definitions, problems = load_definitions(config.reports_path)
    gathered: dict = {}
    summary, rendered = run_plain(config, period, dry_run=True, loaded=(definitions, problems), every_variant=True,
                                  gathered=gathered, draw_charts=False)
    definition_failures = [f for f in summary["failed"] if not f["tenant"]]
    render_failures = [f for f in summary["failed"] if f["tenant"]]
    for failure in definition_failures:
        print(failure["reason"], file=sys.stderr)
    for failure in render_failures:
        print(f"{failure['report']}/{failure['tenant']}: {failure['reason']}", file=sys.stderr)
    for warning in [warning for definition in definitions for warning in definition.warnings] + summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if definition_failures or render_failures:
        print(f"check failed: {len(definition_failures)} definition problem(s), {len(render_failures)} report(s) "
              f"that did not render", file=sys.stderr)
        return 1
    print(f"ok: {len(definitions)} report definition(s) valid; {len(rendered)} report(s) rendered for "
          f"{period.label} against {config.path}")
    for line in statement_counts(definitions):
        print(line)
    for line in metric_usage(definitions, gathered):
        print(line)
    return 0


# A report body is a document with a few components: past this many {% %} tags it has become a program
# whose logic belongs in a metric or a component.
STATEMENT_TAG_LIMIT = 40


def statement_counts(definitions) -> list[str]:
    """Per report file: its {% %} tags (end tags included), {{ }} expressions and the share of its lines
    that are only statements, so authors and reviewers see how much program a report holds."""
    lines = []
    for definition in sorted(definitions, key=lambda d: d.shown_path):
        count = definition.statements
        over = f" (over {STATEMENT_TAG_LIMIT}: move the logic into a metric or a component)" \
            if count.tags > STATEMENT_TAG_LIMIT else ""
        lines.append(f"{definition.shown_path}: {count.tags} tags, {count.expressions} expressions, "
                     f"{count.statement_share:.0%} of lines only statements{over}")
    total = sum(d.statements.tags for d in definitions)
    lines.append(f"all reports: {total} tags")
    return lines


def cmd_preview(args) -> int:
    from flows.core.errors import ConfigurationError
    from flows.delivery.message import embed_images
    from flows.orchestrator.run import run_plain
    from flows.orchestrator.summary import metric_usage
    from flows.plan.definitions import group_by_role, load_definitions
    from flows.plan.plan import select

    quiet_pipeline_log()
    config, period = config_and_period(args)
    definitions, problems = load_definitions(config.reports_path)
    role_reports = group_by_role(definitions).get(args.role)
    shown = [d for d in definitions if d.role == args.role]
    if args.variant is not None:
        if role_reports is None:
            raise ConfigurationError(f"no loaded report for role '{args.role}' to pick variant '{args.variant}' of")
        names = ["default", *sorted(v.variant for v in role_reports.variants)]
        select([args.variant], names, f"variant of '{args.role}'")
        wanted = "" if args.variant == "default" else args.variant
        shown = [d for d in shown if d.variant == wanted]
    gathered: dict = {}
    summary, rendered = run_plain(config, period, roles=[args.role], tenants=[args.tenant] if args.tenant else None,
                                  dry_run=True, loaded=(definitions, problems), every_variant=True, gathered=gathered)
    for failure in summary["failed"]:
        print(failure["reason"] if not failure["tenant"] else f"{failure['report']}/{failure['tenant']}: "
              f"{failure['reason']}", file=sys.stderr)
    if args.variant is not None:
        suffix = "" if args.variant == "default" else f"-{args.variant}"
        rendered = {key: email for key, email in rendered.items()
                    if key.endswith(f"-{args.role}{suffix}")}
    if not rendered:
        return 1
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for key, email in rendered.items():
        path = output / f"{key}.html"
        # Charts as data: URIs (cid: resolves only inside a message); drawing them is the only time
        # preview imports the chart library.
        path.write_text(embed_images(email.html, email.images), encoding="utf-8")
        (output / f"{key}.md").write_text(email.markdown, encoding="utf-8")
        print(path.resolve())
    for line in metric_usage(shown, gathered):
        print(line, file=sys.stderr)
    return 1 if summary["failed"] else 0


def cmd_diff(args) -> int:
    """What a change to reports/ does to the emails: exit 1 if the working tree's reports fail to render
    (or, with --exit-code, if any report changed)."""
    from flows.operate.reportdiff import diff_reports

    quiet_pipeline_log()
    config, period = config_and_period(args)
    output = Path(args.output)
    result = diff_reports(config, period, args.base_ref, output)
    for change in result.changes:
        print(f"{change.status}: {change.key} ({', '.join(change.parts)})")
    for change in result.changes:
        print()
        print(change.text_diff, end="")
    print(f"\n{len(result.changes)} report(s) changed, {len(result.unchanged)} unchanged since {args.base_ref} "
          f"({period.label}); side-by-side previews: {(output / 'index.html').resolve()}")
    for failure in result.failures:
        print(failure, file=sys.stderr)
    if result.failures:
        print(f"diff: {len(result.failures)} report(s) fail with the working tree's definitions", file=sys.stderr)
        return 1
    return 1 if args.exit_code and result.changes else 0


def cmd_metrics(args) -> int:
    from sources.catalogue import REGISTRY

    specs = sorted(REGISTRY.metrics.values(), key=lambda s: s.name)
    width = max(len(s.name) for s in specs)
    for spec in specs:
        print(f"{spec.name.ljust(width)}  {spec.type:<8} {spec.source:<10} {spec.description}")
    return 0
