"""The exec-reports command line (check, preview, metrics) as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from flows.operate.author_commands import STATEMENT_TAG_LIMIT
from flows.operate.cli import main
from tests.conftest import SAMPLE_CONFIG, SAMPLE_PERIOD


def test_check_passes_on_the_sample_portfolio(capsys):
    assert main(["check", "--config", str(SAMPLE_CONFIG), "--period", SAMPLE_PERIOD]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 6 report definition(s) valid; 9 report(s) rendered")
    # Every shipped report reads as a document: its logic lives in metrics and components, so check never
    # flags one as over the tag limit, and each is counted.
    counts = dict(re.findall(r"^reports/(\w+)\.md: (\d+) tags", out, re.MULTILINE))
    assert sorted(counts) == ["accounting", "ceo", "cfo", "cmo", "cto", "gm"]
    assert all(int(tags) <= STATEMENT_TAG_LIMIT for tags in counts.values()), counts
    assert "move the logic into a metric or a component" not in out


def test_check_lists_every_problem_and_exits_1(portfolio_copy, capsys):
    reports = portfolio_copy.parent.parent / "reports"
    cfo = reports / "cfo.md"
    cfo.write_text(cfo.read_text().replace("  - finance.cash_on_hand\n", "  - finance.cash_on_hnd\n"))
    (reports / "broken.md").write_text(textwrap.dedent("""\
        ---
        role: broken
        title: [unclosed
        ---
        """))
    assert main(["check", "--config", str(portfolio_copy), "--period", SAMPLE_PERIOD]) == 1
    err = capsys.readouterr().err
    assert "cfo.md:9: metrics[1]: unknown metric 'finance.cash_on_hnd' (did you mean 'finance.cash_on_hand'?)" in err
    assert "broken.md:" in err and "YAML syntax error" in err
    # the unknown metric, the YAML error, and the four places cfo.md uses the undeclared metric (the KPI
    # strip, the what-changed line, and the ranked table's column and format)
    assert "check failed: 6 definition problem(s)" in err
    printed = [line for line in err.splitlines()  # check's own lines (path:line: ...), not the run log's copies
               if re.match(r"^\S*cfo\.md:\d+: uses metric 'finance.cash_on_hand' but does not declare it", line)]
    assert len(printed) == 4


def test_check_fails_when_a_report_cannot_render(portfolio_copy, capsys):
    ceo = portfolio_copy.parent.parent / "reports" / "ceo.md"
    ceo.write_text(ceo.read_text() + "\n{{ ''.__class__.__mro__ }}\n")
    assert main(["check", "--config", str(portfolio_copy), "--period", SAMPLE_PERIOD]) == 1
    err = capsys.readouterr().err
    assert "ceo/portfolio:" in err and "template error" in err


def test_preview_writes_html_and_prints_its_path(tmp_path, capsys):
    code = main(["preview", "ceo", "--config", str(SAMPLE_CONFIG), "--period", SAMPLE_PERIOD,
                 "-o", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str((tmp_path / "portfolio-ceo.html").resolve())
    html = (tmp_path / "portfolio-ceo.html").read_text()
    assert "<table" in html
    # The CEO brief's chart shows in a browser: embedded, not a cid: reference.
    assert html.count('src="data:image/png;base64,') == 1 and "cid:" not in html


def test_preview_of_an_unknown_role_suggests_the_close_one(capsys):
    assert main(["preview", "cf0", "--config", str(SAMPLE_CONFIG)]) == 1
    assert "unknown role 'cf0' (did you mean 'cfo'?)" in capsys.readouterr().err


def test_metrics_lists_the_catalog(capsys):
    assert main(["metrics"]) == 0
    out = capsys.readouterr().out
    assert "finance.burn_rate" in out and "ledger" in out and "Average monthly net burn" in out
    for metric in ("aws.lambda_performance", "aws.api_performance", "aws.lambda_error_lines", "aws.code_repositories",
                   "site.checks", "site.problem_count"):
        assert metric in out, metric


def test_check_preview_and_metrics_do_not_import_prefect(tmp_path):
    code = ("import sys; from flows.operate.cli import main; "
            f"main(['check', '--config', {str(SAMPLE_CONFIG)!r}, '--period', {SAMPLE_PERIOD!r}]); "
            f"main(['preview', 'cfo', '--config', {str(SAMPLE_CONFIG)!r}, '-o', {str(tmp_path)!r}]); "
            "main(['metrics']); "
            "print('imported prefect:', 'prefect' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().endswith("imported prefect: False")
    assert list(tmp_path.glob("*.html"))


def test_a_missing_config_names_the_option_to_set(capsys):
    assert main(["check", "--config", "nowhere.yaml"]) == 1
    assert "portfolio config not found: nowhere.yaml (pass --config PATH or set EXEC_REPORTS_CONFIG)" in \
        capsys.readouterr().err
