"""`exec-reports diff BASE_REF` in a temporary git repository with two commits, and the PR workflow's commands."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from flows.operate.cli import main
from tests.conftest import EXAMPLES, PROJECT_ROOT, SAMPLE_PERIOD

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "reports-pr.yml"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@example.com",
                           *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository holding the sample portfolio and the shipped reports: the first commit is the base."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "reports", root / "reports")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def commit_change(repo: Path) -> None:
    cfo = repo / "reports" / "cfo.md"
    cfo.write_text(cfo.read_text().replace("\n## ", "\n\nA sentence the pull request adds.\n\n## ", 1))
    git(repo, "commit", "-q", "-am", "cfo: one more sentence")


def test_diff_names_the_changed_report_shows_the_text_diff_and_writes_side_by_side_previews(repo, tmp_path, capsys):
    commit_change(repo)
    out = tmp_path / "previews"
    code = main(["diff", "HEAD~1", "--config", str(repo / "examples" / "portfolio.yaml"), "--period", SAMPLE_PERIOD,
                 "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "changed: portfolio-cfo (text, html)" in printed
    assert "+A sentence the pull request adds." in printed
    assert "1 report(s) changed, 8 unchanged since HEAD~1" in printed
    assert "portfolio-ceo" not in printed.split("\n\n")[0]  # only what changed is listed
    page = (out / "portfolio-cfo.html").read_text()
    assert page.count("<iframe srcdoc=") == 2 and "before (HEAD~1)" in page
    assert "A sentence the pull request adds." in page  # in the "after" frame only
    assert page.index("A sentence the pull request adds.") > page.index("after (working tree)")
    assert "+A sentence the pull request adds." in (out / "portfolio-cfo.diff").read_text()
    assert 'href="portfolio-cfo.html"' in (out / "index.html").read_text()
    # The working tree is untouched by rendering the base.
    assert git(repo, "status", "--porcelain") == ""


def test_diff_reports_a_subject_change_an_added_report_and_exit_code(repo, tmp_path, capsys):
    cmo = repo / "reports" / "cmo.md"
    lines = cmo.read_text().splitlines(keepends=True)
    subject = next(i for i, line in enumerate(lines) if line.startswith("subject:"))
    lines[subject] = 'subject: "Marketing {{ period.label }}"\n'
    cmo.write_text("".join(lines))
    shutil.copy(repo / "reports" / "cfo.md", repo / "reports" / "cfo-b.md")
    cfo_b = repo / "reports" / "cfo-b.md"
    cfo_b.write_text(cfo_b.read_text().replace("scope: portfolio\n", "scope: portfolio\nvariant: b\nsplit: 1\n", 1))
    code = main(["diff", "main", "--exit-code", "--config", str(repo / "examples" / "portfolio.yaml"),
                 "--period", SAMPLE_PERIOD, "-o", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 1
    assert "changed: portfolio-cmo (subject, html)" in printed or "changed: portfolio-cmo (subject, text, html)" in printed
    assert "+Subject: Marketing 2026-W47" in printed
    assert "added: portfolio-cfo-b" in printed


def test_diff_fails_when_the_working_tree_breaks_a_report(repo, tmp_path, capsys):
    cfo = repo / "reports" / "cfo.md"
    cfo.write_text(cfo.read_text() + "\n{{ 1 / 0 }}\n")
    code = main(["diff", "HEAD", "--config", str(repo / "examples" / "portfolio.yaml"), "--period", SAMPLE_PERIOD,
                 "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "reports/cfo.md" in captured.err and "ZeroDivisionError" in captured.err
    assert "failed: portfolio-cfo" in captured.out and "removed:" not in captured.out


def test_diff_of_an_unknown_ref_is_a_clear_error(repo, tmp_path, capsys):
    code = main(["diff", "no-such-branch", "--config", str(repo / "examples" / "portfolio.yaml"),
                 "--period", SAMPLE_PERIOD, "-o", str(tmp_path / "out")])
    assert code == 1 and "no-such-branch" in capsys.readouterr().err


def test_the_pull_request_workflow_runs_check_and_diff_and_uploads_the_previews(repo, tmp_path):
    """The workflow's own exec-reports commands, run as written in a repository with a base branch."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["pull_request"]["paths"] == ["reports/**"]  # YAML 1.1 reads `on` as true
    job = workflow["jobs"]["reports"]
    steps = job["steps"]
    commands = [step["run"] for step in steps if "exec-reports" in step.get("run", "")]
    assert [c.split()[1] for c in commands] == ["check", "diff"]
    [upload] = [step for step in steps if step.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["with"]["path"] == "report-diff/" and upload["if"] == "always()"

    git(repo, "checkout", "-q", "-b", "change")
    commit_change(repo)
    git(repo, "update-ref", "refs/remotes/origin/main", "main")  # what actions/checkout fetches
    old_environment, cwd = dict(os.environ), os.getcwd()
    os.environ.update({**job["env"], "GITHUB_BASE_REF": "main"})  # what GitHub sets for a pull request
    os.chdir(repo)
    try:
        for command in commands:
            argv = [os.path.expandvars(part) for part in shlex.split(command)]
            assert argv[0] == "exec-reports" and main(argv[1:]) == 0, command
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(old_environment)
    assert (repo / "report-diff" / "portfolio-cfo.html").is_file()


def test_a_cfo_edits_the_brief_as_a_document_and_the_diff_shows_just_that(repo, tmp_path, capsys):
    """Four edits a CFO makes by editing Markdown only: reword a paragraph, swap two sections, add a KPI
    to the strip, remove a table. `check` passes, and `diff` shows exactly those changes in the CFO brief."""
    cfo = repo / "reports" / "cfo.md"
    text = cfo.read_text()
    reworded = text.replace("Shortest runway first.", "The entities with the least runway come first.")
    costs = reworded[reworded.index("## AWS and domain costs"):reworded.index("## Revenue against target")]
    break_even = reworded[reworded.index("## Break-even"):reworded.index("## AWS and domain costs")]
    swapped = reworded.replace(break_even + costs, costs + break_even)
    with_kpi = swapped.replace('"finance.revenue_last_month": "Revenue last month"}) }}',
                               '"finance.revenue_last_month": "Revenue last month", '
                               '"finance.expenses_last_month": "Expenses last month"}) }}')
    capital = with_kpi[with_kpi.index("{{ ranked_table(tenants, \"attention\""):]
    capital = capital[:capital.index("}}\n") + 3]
    edited = with_kpi.replace(capital, "")
    assert edited != text and edited.count("{%") == text.count("{%")  # no statement added: Markdown edits only
    cfo.write_text(edited)
    git(repo, "commit", "-q", "-am", "cfo: reword, reorder, one more KPI, one table less")
    config = str(repo / "examples" / "portfolio.yaml")
    assert main(["check", "--config", config, "--period", SAMPLE_PERIOD]) == 0
    capsys.readouterr()
    assert main(["diff", "HEAD~1", "--config", config, "--period", SAMPLE_PERIOD, "-o", str(tmp_path / "d")]) == 0
    printed = capsys.readouterr().out
    assert "changed: portfolio-cfo (text, html)" in printed and "1 report(s) changed, 8 unchanged" in printed
    diff = (tmp_path / "d" / "portfolio-cfo.diff").read_text()
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert any("The entities with the least runway come first." in line for line in added)
    assert any("Shortest runway first." in line for line in removed)
    assert any(line.startswith("Expenses last month: $21,805") for line in added)  # the new KPI
    assert any("Next dollar goes to" in line for line in removed)  # the table that went
    assert not any("Next dollar goes to" in line for line in added)
    # The sections traded places: the diff moves one of them, heading and all, and nothing else.
    moved = [heading for heading in ("Break-even and margins", "AWS and domain costs against revenue")
             if heading in added and heading in removed]
    assert len(moved) == 1, (added, removed)
