"""Incomplete data, honestly: one tenant's missing ledger and another's ledger cut off weeks early.

The portfolio briefs still go out for the others, naming who is left out and why in plain words; no
figure is computed from the truncated books; the run summary and ``exec-reports check`` say the same.
"""

from __future__ import annotations

import datetime as dt

import yaml

from flows.core.config import load_config
from flows.core.period import parse_period
from flows.delivery.outbox import OutboxBackend
from flows.operate.cli import main
from flows.templating.formatters import money
from sources.ledger import gather_ledger
from sources.registry import SourceContext
from tests.conftest import SAMPLE_PERIOD

PERIOD = parse_period(SAMPLE_PERIOD)
CUT_OFF = dt.date(2026, 10, 9)  # the export was cut off here; JADA's last entry on or before it is Oct 8
LAST_ENTRY = "2026-10-08"


def break_the_data(portfolio_copy):
    """JADA's ledger export stops on 2026-10-09; QuickDumpNow's ledger file is gone."""
    data = portfolio_copy.parent / "data"
    ledger = data / "jada" / "ledger.csv"
    lines = ledger.read_text().splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if dt.date.fromisoformat(line.split(",")[0]) <= CUT_OFF]
    ledger.write_text("\n".join(kept) + "\n")
    (data / "quickdumpnow" / "ledger.csv").unlink()


def truncated_cash(portfolio_copy) -> str:
    """What the CFO brief would have shown for JADA if the cut-off went unnoticed."""
    config = load_config(portfolio_copy)
    settings = {**config.tenant("jada").sources["ledger"], "max_data_age_days": 365}
    figures = gather_ledger(settings, SourceContext("jada", "JADA", PERIOD.start, PERIOD.end, config.base_dir))
    return money(figures["finance.cash_on_hand"])


def test_portfolio_briefs_leave_out_tenants_without_data_and_say_why_and_never_show_truncated_figures(
        portfolio_copy, tmp_path, capsys):
    from flows.orchestrator.run import run_plain

    break_the_data(portfolio_copy)
    wrong_cash = truncated_cash(portfolio_copy)
    config = load_config(portfolio_copy)

    summary, rendered = run_plain(config, PERIOD, roles=["ceo", "cfo", "accounting", "gm"],
                                  backend=OutboxBackend(tmp_path / "outbox"))

    sent = {(s["report"], s["tenant"]) for s in summary["sent"]}
    assert {("ceo", "portfolio"), ("cfo", "portfolio"), ("accounting", "portfolio")} <= sent
    for role in ("cfo", "accounting"):
        text = rendered[f"portfolio-{role}"].text
        notice = " ".join(text[:text.index("only.") + 5].split())  # the text part wraps at 76 columns
        # The first thing the reader sees names both businesses and says why, without file paths or metric ids.
        assert "Not in this report" in notice
        assert "JADA" in notice and "books only through Oct 8, 2026" in notice
        assert "QuickDumpNow" in notice and "financial figures unavailable" in notice
        assert "ledger.csv" not in notice and "finance." not in notice
        assert "covers the other 2 businesses only" in notice
        assert wrong_cash not in text
    assert wrong_cash not in rendered["portfolio-ceo"].text
    # The technical reasons go to the run summary.
    warnings = "\n".join(summary["warnings"])
    assert "cfo/portfolio: left out JADA (jada): finance.burn_rate, finance.cash_on_hand" in warnings
    assert f"data only through {LAST_ENTRY}" in warnings
    assert "left out QuickDumpNow (quickdumpnow)" in warnings and "ledger.csv" in warnings
    # A tenant-scope report of a tenant without figures fails alone, with the same reason.
    failed = {(f["report"], f["tenant"]): f["reason"] for f in summary["failed"]}
    assert f"data only through {LAST_ENTRY}" in failed[("gm", "jada")]
    assert ("gm", "queenofsandiego") in sent and ("gm", "dangerouscentaur") in sent

    # `check` no longer says ok: it names the stale ledger.
    assert main(["check", "--config", str(portfolio_copy), "--period", SAMPLE_PERIOD]) == 1
    err = capsys.readouterr().err
    assert "gm/jada: required metric unavailable" in err and f"data only through {LAST_ENTRY}" in err
    assert "warning: cfo/portfolio: left out JADA (jada)" in err


def test_a_report_may_choose_to_fail_rather_than_leave_tenants_out(portfolio_copy, tmp_path):
    from flows.orchestrator.run import run_plain

    break_the_data(portfolio_copy)
    cfo = portfolio_copy.parent.parent / "reports" / "cfo.md"
    front, body = cfo.read_text().split("---\n", 2)[1:]
    cfo.write_text("---\n" + yaml.safe_dump({**yaml.safe_load(front), "on_missing_tenant": "fail"},
                                            sort_keys=False) + "---\n" + body)

    summary, _ = run_plain(load_config(portfolio_copy), PERIOD, roles=["cfo", "accounting"],
                           backend=OutboxBackend(tmp_path / "outbox"))

    failed = {f["report"]: f["reason"] for f in summary["failed"]}
    assert "cfo" in failed and f"data only through {LAST_ENTRY}" in failed["cfo"]
    assert [s["report"] for s in summary["sent"]] == ["accounting"]
