"""Load and validate report definitions: ``reports/*.md`` = YAML front matter + a Jinja template.

Like a compile step, this collects every problem across every file (unknown keys, wrong types,
unknown metrics with a "did you mean", YAML errors, template syntax errors, metrics a template uses
without declaring them) and reports each with ``file:line``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from jinja2 import Template, TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flows.core.config import EmailAddress, Identifier
from flows.core.errors import DefinitionError, Problem
from flows.core.yamlsource import (
    MAX_FRONT_MATTER_BYTES,
    Located,
    YamlProblem,
    format_key_path,
    load_located,
    read_utf8,
)
from flows.plan.lint import raw_html_warnings
from flows.templating.compiled import compile_report_template
from sources.catalogue import REGISTRY
from sources.registry import SourceRegistry


class CheckSpec(BaseModel):
    """A declarative shortfall rule, evaluated per tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Identifier
    when: str = Field(min_length=1)
    severity: Literal["critical", "high", "medium", "low", "info"]
    message: str = Field(min_length=1)
    # What the agenda asks for when the check fires (default: the message), who owns it (a role; default:
    # the report's role) and in how many days after the day the report is sent it is due (default: by severity).
    owner: Identifier | None = None
    fix: str | None = Field(default=None, min_length=1)
    due_in_days: int | None = Field(default=None, ge=0, le=366)
    # A word that groups checks for a section of the brief ("equity"): the template lists a topic's
    # checks with ``checks | selectattr("topic", "equalto", "equity")`` instead of a list of ids.
    topic: Identifier | None = None


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Identifier
    title: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    scope: Literal["portfolio", "tenant"]
    metrics: list[str] = Field(min_length=1)
    # Metrics the report can show as "unavailable (reason)" instead of failing.
    optional_metrics: list[str] = []
    # Portfolio scope: a tenant whose required metrics are unavailable is left out of the report (named,
    # with the reason, at the top) and the others are still sent; "fail" fails the whole report instead.
    on_missing_tenant: Literal["leave_out", "fail"] = "leave_out"
    recipients: list[EmailAddress] | None = None
    checks: list[CheckSpec] = []
    description: str | None = None
    # Skip the email (recorded as skipped) unless this expression is true, e.g. "checks | length > 0".
    send_if: str | None = None
    # A/B test: this file is variant `variant` of `role`, sent to `split` percent of its recipients.
    variant: Identifier | None = None
    split: int | None = Field(default=None, ge=1, le=99)

    @model_validator(mode="after")
    def _variant_needs_split(self) -> FrontMatter:
        if (self.variant is None) != (self.split is None):
            raise ValueError("a variant needs both 'variant' (its name) and 'split' (percent of recipients)")
        return self


@dataclass(frozen=True)
class CompiledCheck:
    spec: CheckSpec
    condition: Any  # jinja2 TemplateExpression
    message: Template
    metrics: tuple[str, ...]
    when_line: int = 1  # the line of ``when`` in the report file


@dataclass
class ReportDefinition:
    path: Path
    shown_path: str
    front: FrontMatter
    template: Template
    subject: Template
    checks: list[CompiledCheck] = field(default_factory=list)
    role_line: int = 2
    send_if: Any = None  # compiled expression
    # Set for reports/tenants/<tenant>/<role>.md: replaces the default report for that tenant.
    tenant_override: str | None = None
    send_if_line: int = 1
    # Metrics the body compares with the prior period (kpi_strip, compare, what_changed): gathered for it too.
    compared: tuple[str, ...] = ()
    statements: StatementCount | None = None
    # What `check` warns the authors about without failing the report (raw HTML shown as text).
    warnings: list[str] = field(default_factory=list)

    @property
    def variant(self) -> str:
        return self.front.variant or ""

    @property
    def role(self) -> str:
        return self.front.role

    @property
    def scope(self) -> str:
        return self.front.scope

    @property
    def all_metrics(self) -> list[str]:
        return list(dict.fromkeys([*self.front.metrics, *self.front.optional_metrics]))


@dataclass(frozen=True)
class StatementCount:
    """How much program a report body holds, for its authors and reviewers (``exec-reports check`` prints
    it): ``{% ... %}`` tags (end tags included), ``{{ ... }}`` expressions, and the share of non-blank lines
    that are nothing but tags."""

    tags: int
    expressions: int
    statement_only_lines: int
    lines: int

    @property
    def statement_share(self) -> float:
        return self.statement_only_lines / self.lines if self.lines else 0.0


_TAG = re.compile(r"\{%.*?%\}", re.S)


def count_statements(body: str) -> StatementCount:
    lines = [line for line in body.splitlines() if line.strip()]
    only = sum(1 for line in lines if not _TAG.sub("", line).strip())
    return StatementCount(len(_TAG.findall(body)), body.count("{{"), only, len(lines))


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def split_front_matter(text: str) -> tuple[str, str, int] | None:
    """Return (front matter, body, 1-based line where the body starts), or None without front matter."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    return None


def load_definition(path: Path, registry: SourceRegistry = REGISTRY) -> tuple[ReportDefinition | None, list[Problem]]:
    shown = display_path(path)
    problems: list[Problem] = []
    try:
        text = read_utf8(path)
    except YamlProblem as exc:
        return None, [Problem(shown, exc.line, None, exc.message)]
    except OSError as exc:
        return None, [Problem(shown, None, None, f"cannot read the file: {exc}")]
    parts = split_front_matter(text)
    if parts is None:
        return None, [Problem(shown, 1, None, "missing YAML front matter: start the file with a '---' line, "
                                              "then the keys, then a closing '---' line")]
    front_text, body, body_line = parts
    try:
        located = load_located(front_text, line_offset=1, max_bytes=MAX_FRONT_MATTER_BYTES)
    except YamlProblem as exc:
        return None, [Problem(shown, exc.line, exc.key, exc.message)]
    if not isinstance(located.data, dict):
        return None, [Problem(shown, 2, None, "front matter must be a mapping of keys (role, title, ...)")]

    try:
        front = FrontMatter.model_validate(located.data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(_pydantic_problem(shown, located, error))
        return None, problems

    if front.variant is not None and front.recipients is not None:
        # Refused rather than honoured: a variant is a share (split) of its role's recipients, so a list of
        # its own would either be ignored or send some people two versions of the same report.
        problems.append(Problem(shown, located.line_of(("recipients",)), "recipients",
                                f"a variant cannot have its own recipients: variant '{front.variant}' goes to "
                                f"{front.split}% of the recipients of role '{front.role}' (set them on the default "
                                f"report or in the config); remove 'recipients' here"))

    declared = set()
    for list_name in ("metrics", "optional_metrics"):
        for index, name in enumerate(getattr(front, list_name)):
            line = located.line_of((list_name, index))
            if name not in registry.metrics:
                hint = registry.suggest(name)
                suffix = f" (did you mean '{hint}'?)" if hint else " (see `exec-reports metrics`)"
                problems.append(Problem(shown, line, f"{list_name}[{index}]", f"unknown metric '{name}'{suffix}"))
            elif name in declared:
                problems.append(Problem(shown, line, f"{list_name}[{index}]", f"metric '{name}' is listed twice"))
            declared.add(name)

    namespaces = registry.namespaces

    def compile_template(source: str, key: str, line_base: int, *, plain_text: bool = False,
                         expression: bool = False):
        if not expression:
            # A comment spanning the lines above makes Jinja's own line numbers (syntax errors, metric
            # references, the frames of a run-time error) the lines of the report file.
            source, line_base = line_padding(line_base) + source, 1
        try:
            # Cached on disk by source, sandbox and versions (flows/core/cache.py): unchanged reports are
            # not parsed and compiled again on every check or run.
            compiled, used = compile_report_template("plain" if plain_text else "markdown", source,
                                                     None if expression else shown, namespaces,
                                                     expression=expression)
        except TemplateSyntaxError as exc:
            problems.append(Problem(shown, line_base + (exc.lineno or 1) - 1, key, f"template syntax error: {exc.message}"))
            return None, [], []
        for metric, lineno, _compared in used:
            if metric not in declared:
                if metric in registry.metrics:
                    message = f"uses metric '{metric}' but does not declare it: add it to metrics"
                else:
                    hint = registry.suggest(metric)
                    message = f"uses unknown metric '{metric}'" + (f" (did you mean '{hint}'?)" if hint else "")
                problems.append(Problem(shown, line_base + lineno - 1, key, message))
        return compiled, [m for m, _, _ in used], [m for m, _, compared in used if compared]

    template, _, compared = compile_template(body, None, body_line)
    subject, _, _ = compile_template(front.subject, "subject", located.line_of(("subject",)) or 1, plain_text=True)

    compiled_checks: list[CompiledCheck] = []
    seen_ids: dict[str, int] = {}
    for index, check in enumerate(front.checks):
        check_line = located.line_of(("checks", index)) or 1
        if check.id in seen_ids:
            problems.append(Problem(shown, check_line, f"checks[{index}].id",
                                    f"check id '{check.id}' is used twice (first in checks[{seen_ids[check.id]}])"))
        seen_ids.setdefault(check.id, index)
        when_line = located.line_of(("checks", index, "when")) or check_line
        condition, used, _ = compile_template(check.when, f"checks[{index}].when", when_line,
                                           plain_text=True, expression=True)
        message, used_in_message, _ = compile_template(check.message, f"checks[{index}].message",
                                                    located.line_of(("checks", index, "message")) or check_line,
                                                    plain_text=True)
        if condition is not None and message is not None:
            compiled_checks.append(CompiledCheck(check, condition, message,
                                                 tuple(dict.fromkeys(used + used_in_message)), when_line))

    send_if = None
    send_if_line = located.line_of(("send_if",)) or 1
    if front.send_if is not None:
        send_if, _, _ = compile_template(front.send_if, "send_if", send_if_line, plain_text=True, expression=True)

    if problems or template is None or subject is None:
        return None, problems
    return ReportDefinition(path, shown, front, template, subject, compiled_checks,
                            located.line_of(("role",)) or 2, send_if, send_if_line=send_if_line,
                            compared=tuple(dict.fromkeys(compared)), statements=count_statements(body),
                            warnings=raw_html_warnings(body, body_line, shown)), []


def line_padding(line: int) -> str:
    """A Jinja comment that outputs nothing and moves the text after it to ``line``."""
    return "{#" + "\n" * (line - 1) + "#}" if line > 1 else ""


def error_line(error: BaseException, definition: ReportDefinition) -> int | None:
    """The report file's line where a template raised ``error``: Jinja rewrites a run-time traceback so
    its template frames carry the template's file name and line (padded to the file's lines at load)."""
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == definition.shown_path:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _pydantic_problem(shown: str, located: Located, error: dict[str, Any]) -> Problem:
    loc = tuple(error["loc"])
    line = located.line_of(loc)
    key = format_key_path(loc) or None
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        message = f"unknown key '{loc[-1]}'" + (f" (did you mean '{hint[0]}'?)" if hint else
                                                f" (allowed: {', '.join(allowed)})")
    elif error["type"] == "missing":
        message = "required key is missing"
        line = located.line_of(loc[:-1]) or 2
    else:
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and not isinstance(error["input"], dict | list):
            message += f" (got {error['input']!r})"
    return Problem(shown, line, key, message)


def _allowed_keys(parent: tuple) -> list[str]:
    model = CheckSpec if parent and parent[0] == "checks" else FrontMatter
    return list(model.model_fields)


def load_definitions(reports_dir: Path, registry: SourceRegistry = REGISTRY) -> tuple[list[ReportDefinition], list[Problem]]:
    """Every report in ``reports_dir``: ``*.md`` (defaults and variants) and ``tenants/<tenant>/*.md``
    (per-tenant overrides), plus every problem found in any of them."""
    if not reports_dir.is_dir():
        return [], [Problem(display_path(reports_dir), None, None, "reports folder not found")]
    definitions: list[ReportDefinition] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str], str] = {}  # (role, variant, override tenant) -> file
    paths = [(p, None) for p in sorted(reports_dir.glob("*.md")) if p.name.lower() != "readme.md"]
    overrides_dir = reports_dir / "tenants"
    if overrides_dir.is_dir():
        paths += [(p, p.parent.name) for p in sorted(overrides_dir.glob("*/*.md"))]
    for path, tenant in paths:
        definition, found = load_definition(path, registry)
        if found:
            role = definition.role if definition is not None else role_of_broken_file(path)
            problems.extend(replace(problem, role=role) for problem in found)
        if definition is None:
            continue
        definition.tenant_override = tenant
        identity = (definition.role, definition.variant, tenant or "")
        if identity in seen:
            what = f"role '{definition.role}'" + (f" variant '{definition.variant}'" if definition.variant else "")
            problems.append(Problem(definition.shown_path, definition.role_line, "role",
                                    f"{what} is already defined in {seen[identity]}", definition.role))
            continue
        seen[identity] = definition.shown_path
        definitions.append(definition)
    role_of_path = {d.shown_path: d.role for d in definitions}
    problems.extend(replace(p, role=role_of_path.get(p.path)) for p in _check_families(definitions))
    bad = {id(d) for d in definitions if any(p.path == d.shown_path for p in problems)}
    return [d for d in definitions if id(d) not in bad], problems


def role_of_broken_file(path: Path) -> str:
    """The role a definition that failed to load was meant to be: its ``role:`` value when the front
    matter still reads as YAML, else the file's name (``reports/coo.md`` -> ``coo``)."""
    try:
        parts = split_front_matter(read_utf8(path))
        data = load_located(parts[0], line_offset=1, max_bytes=MAX_FRONT_MATTER_BYTES).data if parts else None
    except (OSError, YamlProblem):
        data = None
    role = data.get("role") if isinstance(data, dict) else None
    return role if isinstance(role, str) and role else path.stem.lower()


@dataclass
class RoleReports:
    """A role's default report, its A/B variants and its per-tenant overrides."""

    default: ReportDefinition
    variants: list[ReportDefinition] = field(default_factory=list)
    overrides: dict[str, ReportDefinition] = field(default_factory=dict)


def group_by_role(definitions: list[ReportDefinition]) -> dict[str, RoleReports]:
    groups: dict[str, RoleReports] = {}
    for definition in definitions:
        if not definition.variant and not definition.tenant_override:
            groups[definition.role] = RoleReports(definition)
    for definition in definitions:
        group = groups.get(definition.role)
        if group is None:
            continue
        if definition.tenant_override:
            group.overrides[definition.tenant_override] = definition
        elif definition.variant:
            group.variants.append(definition)
    return groups


def _check_families(definitions: list[ReportDefinition]) -> list[Problem]:
    """Variants and overrides only make sense next to a default report of the same role and scope."""
    problems = []
    defaults = {d.role: d for d in definitions if not d.variant and not d.tenant_override}
    split_total: dict[str, int] = {}
    for definition in definitions:
        if not definition.variant and not definition.tenant_override:
            continue
        default = defaults.get(definition.role)
        if default is None:
            problems.append(Problem(definition.shown_path, definition.role_line, "role",
                                    f"no default report for role '{definition.role}' (a variant or tenant override "
                                    f"needs reports/{definition.role}.md or another file with that role)"))
            continue
        if definition.tenant_override and definition.variant:
            problems.append(Problem(definition.shown_path, definition.role_line, "variant",
                                    "a tenant override cannot also be an A/B variant"))
        if definition.tenant_override and default.scope != "tenant":
            problems.append(Problem(definition.shown_path, definition.role_line, "scope",
                                    f"per-tenant overrides replace tenant-scope reports; '{definition.role}' "
                                    f"({default.shown_path}) has scope '{default.scope}'"))
        if definition.scope != default.scope:
            problems.append(Problem(definition.shown_path, definition.role_line, "scope",
                                    f"scope '{definition.scope}' differs from the default report's "
                                    f"'{default.scope}' ({default.shown_path})"))
        if definition.variant and not definition.tenant_override:
            split_total[definition.role] = split_total.get(definition.role, 0) + (definition.front.split or 0)
            if split_total[definition.role] > 99:
                problems.append(Problem(definition.shown_path, definition.role_line, "split",
                                        f"the variants of '{definition.role}' take {split_total[definition.role]}% "
                                        f"of recipients; at most 99% (the default keeps the rest)"))
    return problems


def load_definitions_or_raise(reports_dir: Path, registry: SourceRegistry = REGISTRY) -> list[ReportDefinition]:
    definitions, problems = load_definitions(reports_dir, registry)
    if problems:
        raise DefinitionError(problems)
    return definitions
