"""The run page's data, without Prefect: short reasons, failures first, the whole reasons, charts the UI
can load, and the status board's layout (issue 28)."""

from __future__ import annotations

import base64
import datetime as dt

from flows.core.errors import Problem
from flows.orchestrator.history import STATUS_COLUMNS, update_status_board
from flows.orchestrator.run_page import (
    DELIVERY_COLUMNS,
    ChartInliner,
    delivery_rows,
    failures_markdown,
    short_reason,
)
from flows.orchestrator.summary import Outcome
from flows.templating.charts import ChartSpec

LONG = ("required metric unavailable: finance.burn_rate for jada: file not found: "
        "/srv/exec-reports/examples/data/jada/ledger.csv; finance.cash_on_hand for jada: file not found: "
        "/srv/exec-reports/examples/data/jada/ledger.csv")


def test_a_short_reason_keeps_the_first_clause_with_short_paths_and_counts_the_rest():
    assert short_reason(LONG) == ("required metric unavailable: finance.burn_rate for jada: file not found: "
                                  "…/jada/ledger.csv (+1 more)")
    cut = short_reason("skipped because " + "very " * 40 + "long")
    assert len(cut) <= 100 and cut.endswith("very…")
    assert short_reason("") == ""
    assert short_reason("already sent for 2026-W47 by run 2026-W47_20261203T061455Z (69171a29-2de1-4eb6-8526-"
                        "c9c8907d0c82) at 2026-12-03T06:14:56.466+00:00; --resend sends it again") == (
        "already sent for 2026-W47 by run 2026-W47_20261203T061455Z at 2026-12-03 06:14 UTC (+1 more)")


def test_the_deliveries_table_puts_failures_first_with_the_reason_beside_them():
    outcomes = [Outcome("ceo", "portfolio", ["ceo@holdings.example"], "sent", location="/tmp/outbox/x.eml"),
                Outcome("cfo", "portfolio", ["cfo@holdings.example"], "skipped", reason="already sent " + "x" * 200),
                Outcome("gm", "jada", ["gm@jada.example"], "failed", reason=LONG)]
    rows = delivery_rows(outcomes, [Problem("reports/broken.md", 6, "metrics[0]", "unknown metric 'x'")], "2026-W47")
    assert [tuple(row) for row in rows] == [DELIVERY_COLUMNS] * 4
    assert DELIVERY_COLUMNS[:4] == ("status", "report", "tenant", "reason")
    assert [(row["status"], row["report"]) for row in rows] == [
        ("failed", "gm"), ("failed", "reports/broken.md"), ("sent", "ceo"), ("skipped", "cfo")]
    assert all(len(row["reason"]) <= 100 for row in rows)

    details = failures_markdown(outcomes, [Problem("reports/broken.md", 6, "metrics[0]", "unknown metric 'x'")],
                                "2026-W47")
    assert details.startswith("# 2 failure(s), 2026-W47\n")
    assert "/srv/exec-reports/examples/data/jada/ledger.csv; finance.cash\\_on\\_hand" in details  # every word
    assert "- **gm / jada** (gm@jada.example): required metric" in details
    assert failures_markdown(outcomes[:2], [], "2026-W47") is None


def test_the_status_board_shows_recipients_and_failures_first_with_a_short_reason():
    now = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
    rows = [{"report": "ceo", "tenant": "portfolio", "recipients": "ceo@holdings.example", "status": "sent"},
            {"report": "gm", "tenant": "jada", "recipients": "gm@jada.example", "status": "failed", "reason": LONG},
            {"report": "gm", "tenant": "jada", "recipients": "owner@jada.example", "status": "sent"},
            {"report": "cfo", "tenant": "portfolio", "recipients": "cfo@holdings.example", "status": "skipped",
             "reason": "already sent for 2026-W47 " + "by an earlier run " * 10}]
    board = update_status_board([], rows, run_name="2026-W47 all roles", now=now)
    assert [tuple(row) for row in board] == [STATUS_COLUMNS] * 3
    assert STATUS_COLUMNS[:5] == ("last_outcome", "report", "tenant", "reason", "recipients")
    assert [(row["last_outcome"], row["report"]) for row in board] == [("FAILED", "gm"), ("sent", "ceo"),
                                                                        ("skipped", "cfo")]
    assert board[0]["recipients"] == "gm@jada.example, owner@jada.example"
    assert all(len(row["reason"]) <= 100 for row in board)
    # A board an earlier version left ("failed", "skipped: <reason>") reads in today's layout.
    old = [{"report": "cto", "tenant": "portfolio", "last_outcome": "skipped: already sent", "last_sent": "x"},
           {"report": "cmo", "tenant": "portfolio", "last_outcome": "failed", "last_failure_reason": "boom"}]
    board = update_status_board(old, [], run_name="r", now=now)
    assert [(row["last_outcome"], row["reason"]) for row in board] == [("FAILED", "boom"),
                                                                         ("skipped", "already sent")]


SPEC = ChartSpec("bar", "Cash by business", ("JADA", "QDN"), (("cash", (1200.0, None)),), "money")
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def test_charts_become_data_uris_within_the_budget_and_tables_beyond_it():
    markdown = "Cash:\n\n![Cash by business](chart:0)\n\nAgain ![Cash by business](chart:0)"
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    inline = ChartInliner(budget=len(uri) + 10)
    shown = inline(markdown, [SPEC], [PNG])
    assert shown.count(f"![Cash by business]({uri})") == 1 and "chart:0" not in shown
    # Past the budget (and where no image was drawn) the chart is the table of its figures.
    assert "| Cash by business | cash |\n|---|---|\n| JADA | $1,200 |\n| QDN | — |" in shown
    assert ChartInliner()(markdown, [SPEC], []).count("| JADA | $1,200 |") == 2
