"""``exec-reports diff BASE_REF``: what a change to ``reports/`` does to the emails.

Every report (default, variants, overrides) is rendered twice over the same data, period and time: with
the report definitions of ``BASE_REF`` (taken with ``git archive``, so the working tree is never touched)
and with those of the working tree. Both renders use the working tree's code, config and data, so the
only difference is the reports folder: what a reviewer of a pull request needs to see.
"""

from __future__ import annotations

import datetime as dt
import difflib
import html
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from flows.core.config import PortfolioConfig
from flows.core.errors import ConfigurationError
from flows.core.period import Period
from flows.delivery.message import embed_images
from flows.render.email import RenderedEmail


@dataclass
class ReportChange:
    key: str  # portfolio-cfo, jada-gm, portfolio-cmo-b
    status: str  # changed | added | removed | failed (renders at the base, fails in the working tree)
    parts: list[str] = field(default_factory=list)  # subject, text, html
    text_diff: str = ""


@dataclass
class ReportDiff:
    base_ref: str
    changes: list[ReportChange]
    unchanged: list[str]
    # Reports that fail to render with the working tree's definitions (base failures are the base's problem).
    failures: list[str]


def _git(repo: Path, *args: str) -> bytes:
    try:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise ConfigurationError("`exec-reports diff` needs git on PATH") from exc
    if result.returncode != 0:
        raise ConfigurationError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def export_reports_at(ref: str, reports_path: Path, destination: Path) -> Path:
    """The reports folder as it was at ``ref``, extracted under ``destination``; returns its path there
    (an empty folder when the folder did not exist at ``ref``)."""
    reports_path = reports_path.resolve()
    root = Path(_git(reports_path, "rev-parse", "--show-toplevel").decode().strip()).resolve()
    relative = reports_path.relative_to(root).as_posix()
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    exported = destination / relative
    exported.mkdir(parents=True, exist_ok=True)
    listed = _git(root, "ls-tree", "-d", "--name-only", commit, "--", relative).decode().strip()
    if not listed:
        return exported
    archive = _git(root, "archive", "--format=tar", commit, "--", relative)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return exported


def render_all(config: PortfolioConfig, period: Period, generated_at: dt.datetime
               ) -> tuple[dict[str, RenderedEmail], list[str], set[str]]:
    """Every report of ``config.reports_path``, every variant included, without delivering anything:
    the rendered emails by key, the failures, and the keys (``tenant-role``) of the reports that failed."""
    from flows.orchestrator.run import run_plain

    summary, rendered = run_plain(config, period, dry_run=True, every_variant=True, generated_at=generated_at)
    failures = [failure["reason"] if not failure["tenant"] else
                f"{failure['report']}/{failure['tenant']}: {failure['reason']}" for failure in summary["failed"]]
    failed_keys = {f"{failure['tenant']}-{failure['report']}" for failure in summary["failed"] if failure["tenant"]}
    return rendered, failures, failed_keys


def diff_reports(config: PortfolioConfig, period: Period, base_ref: str, output: Path | None = None) -> ReportDiff:
    generated_at = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)  # one time for both renders
    with tempfile.TemporaryDirectory(prefix="exec-reports-base-") as temporary:
        base_reports = export_reports_at(base_ref, config.reports_path, Path(temporary))
        base_config = config.model_copy(update={"reports_dir": str(base_reports)})
        base, _, _ = render_all(base_config, period, generated_at)
    head, failures, failed_keys = render_all(config, period, generated_at)
    changes: list[ReportChange] = []
    unchanged: list[str] = []
    for key in sorted(set(base) | set(head)):
        before, after = base.get(key), head.get(key)
        if before is None or after is None:
            # A report the working tree fails to render is not "removed": it is broken.
            broken = after is None and any(key == k or key.startswith(k + "-") for k in failed_keys)
            status = "added" if before is None else "failed" if broken else "removed"
            changes.append(ReportChange(key, status, ["subject", "text", "html"],
                                        _text_diff(key, before, after)))
            continue
        parts = [name for name in ("subject", "text", "html") if getattr(before, name) != getattr(after, name)]
        if parts:
            changes.append(ReportChange(key, "changed", parts, _text_diff(key, before, after)))
        else:
            unchanged.append(key)
    if output is not None:
        write_previews(output, base_ref, changes, base, head)
    return ReportDiff(base_ref, changes, unchanged, failures)


def _as_text(email: RenderedEmail | None) -> list[str]:
    if email is None:
        return []
    return [f"Subject: {email.subject}\n", "\n", *email.text.splitlines(keepends=True)]


def _text_diff(key: str, before: RenderedEmail | None, after: RenderedEmail | None) -> str:
    lines = difflib.unified_diff(_as_text(before), _as_text(after), fromfile=f"a/{key}", tofile=f"b/{key}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


_SIDE_BY_SIDE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{margin:0;font-family:sans-serif}} header{{padding:8px 12px;background:#f3f4f6}}
main{{display:flex;height:calc(100vh - 48px)}} section{{flex:1;display:flex;flex-direction:column;min-width:0}}
h2{{font-size:14px;margin:6px 12px}} iframe{{flex:1;border:1px solid #ddd;width:100%}}</style></head>
<body><header><strong>{title}</strong> &middot; changed: {parts}</header>
<main><section><h2>before ({base})</h2>{before}</section><section><h2>after (working tree)</h2>{after}</section></main>
</body></html>
"""


def _frame(email: RenderedEmail | None) -> str:
    if email is None:
        return "<p style='margin:12px'>(no such report)</p>"
    return f'<iframe srcdoc="{html.escape(embed_images(email.html, email.images), quote=True)}"></iframe>'


def write_previews(output: Path, base_ref: str, changes: list[ReportChange], base: dict[str, RenderedEmail],
                   head: dict[str, RenderedEmail]) -> None:
    """``<key>.html`` side by side (before | after) for every changed report, ``<key>.diff`` with the text
    diff, and ``index.html`` linking them."""
    output.mkdir(parents=True, exist_ok=True)
    items = []
    for change in changes:
        page = _SIDE_BY_SIDE.format(title=html.escape(change.key), parts=html.escape(", ".join(change.parts)),
                                    base=html.escape(base_ref), before=_frame(base.get(change.key)),
                                    after=_frame(head.get(change.key)))
        (output / f"{change.key}.html").write_text(page, encoding="utf-8")
        (output / f"{change.key}.diff").write_text(change.text_diff, encoding="utf-8")
        items.append(f'<li><a href="{html.escape(change.key)}.html">{html.escape(change.key)}</a> '
                     f'({change.status}: {html.escape(", ".join(change.parts))})</li>')
    body = "\n".join(items) or "<li>No report changed.</li>"
    (output / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><title>Report changes since {html.escape(base_ref)}</title>"
        f"<h1>Report changes since {html.escape(base_ref)}</h1><ul>\n{body}\n</ul>\n", encoding="utf-8")
