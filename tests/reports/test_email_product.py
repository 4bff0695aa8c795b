"""The emails as an executive receives them: the sample run's messages as written to the outbox
(byte for byte what SES or SMTP would send), and a 100-entity synthetic portfolio for size."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest
from lxml import html as lxml_html

from bench.synthetic import make_portfolio
from flows.core.config import load_config
from flows.core.period import parse_period
from flows.delivery.outbox import OutboxBackend
from flows.devtools.email_layout import inline_style_share
from flows.orchestrator.run import run_plain
from flows.render.email import GMAIL_CLIP_BYTES
from flows.templating.charts import CHART_SCALE, CHART_WIDTH_PX
from sources.catalogue import REGISTRY
from tests.conftest import SAMPLE_CONFIG, SAMPLE_PERIOD

PORTFOLIO_ROLES = ("ceo", "cfo", "cto", "cmo", "accounting")


@pytest.fixture(scope="module")
def outbox(tmp_path_factory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("outbox")
    summary, _ = run_plain(load_config(SAMPLE_CONFIG), parse_period(SAMPLE_PERIOD), backend=OutboxBackend(folder))
    assert summary["failed"] == [] and len(summary["sent"]) == 9
    return summary, folder


def messages(folder: Path) -> dict[str, email.message.EmailMessage]:
    return {path.stem: email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(folder.glob("*.eml"))}


def visible_text(markup: str) -> str:
    tree = lxml_html.fromstring(markup)
    for node in tree.xpath("//style|//head"):
        node.getparent().remove(node)
    return " ".join(tree.text_content().split())


# ---- plain language --------------------------------------------------------------------------------


DEVELOPER_TEXT = {
    "config key": re.compile(r"\bsources\.[a-z_]+"),
    "file path or file:line": re.compile(r"\b[\w-]+\.(csv|xlsx|json|ya?ml|md|py)\b|\bdata/[\w-]+/|\.\w+:\d+\b"),
    "Python boolean": re.compile(r"\b(True|False|None)\b"),
    "negative zero": re.compile(r"(?<![\w$])-\$?0(?:\.0+)?(?![\d.,])"),
    "literal backtick": re.compile(r"`"),
    "(s) plural": re.compile(r"\w\(s\)"),
    # A name quoted in a log error's message ("KeyError: 'charter_date'") is the message's own words.
    "snake_case id": re.compile(r"(?<![\w'])[a-z]+_[a-z_]+(?![\w'])"),
    "traceback": re.compile(r"Traceback \(most recent call last\)|\bFile \"/|, line \d+\b|\bline \d+\b"),
    "secret": re.compile(r"sk_live_|\bAKIA[0-9A-Z]{16}\b|guest7@example\.com"),
    "did-you-mean hint": re.compile(r"did you mean"),
}


def test_no_body_of_the_sample_run_contains_developer_text(outbox):
    _, folder = outbox
    metric_ids = re.compile(r"\b(" + "|".join(re.escape(name) for name in REGISTRY.metrics) + r")\b")
    for name, message in messages(folder).items():
        bodies = {"html": visible_text(message.get_body(("html",)).get_content()),
                  "text": message.get_body(("plain",)).get_content()}
        for part, text in bodies.items():
            found = metric_ids.search(text)
            assert not found, f"{name} ({part}): metric id {found.group(0)!r}"
            for what, pattern in DEVELOPER_TEXT.items():
                found = pattern.search(text)
                assert not found, f"{name} ({part}): {what}: ...{text[max(0, found.start() - 60):found.end() + 40]}..."
    # The CTO brief names each reported log error by its message, not only its class: the redacted
    # message of the log line, without the file and line it came from (handler.py line 88) or the secret.
    cto = next(m for n, m in messages(folder).items() if n.startswith("portfolio-cto-"))
    for part in (visible_text(cto.get_body(("html",)).get_content()), " ".join(cto.get_body(("plain",)).get_content().split())):
        assert "Task timed out after 6.01 seconds (jada-booking-webhook (JADA))" in part
        assert "KeyError: 'charter_date' (jada-booking-webhook (JADA))" in part
        assert "ThrottlingException: Rate exceeded calling CalculateRoute (qdn-quote (QuickDumpNow))" in part
        assert "handler.py" not in part and "line 88" not in part


def test_the_technical_reasons_left_out_of_the_emails_are_in_the_run_summary(outbox):
    summary, _ = outbox
    warnings = "\n".join(summary["warnings"])
    # The config key behind "No billing model is set up for QueenofSanDiego and DangerousCentaur".
    assert "finance.unit_economics unavailable for queenofsandiego, dangerouscentaur: " \
           "sources.ledger.unit_economics is not set" in warnings
    # The file:line of the ledger row that the CEO, CFO and GM briefs footnote as left out.
    assert "quickdumpnow: ledger row left out: data/quickdumpnow/ledger.csv:382" in warnings


def test_figures_that_leave_out_unreadable_ledger_rows_say_so_in_every_brief_showing_them(outbox):
    _, folder = outbox
    for name, message in messages(folder).items():
        text = message.get_body(("plain",)).get_content()
        notes = text.split("\nAbout these figures\n", 1)[1] if "\nAbout these figures\n" in text else ""
        if name.startswith(("portfolio-ceo", "portfolio-cfo", "quickdumpnow-gm")):
            # After the brief, not before it: the first screen is the figures and the decisions.
            assert notes.lstrip().startswith("Note: "), name
            assert "leave out" in notes, name
        if name.startswith(("portfolio-ceo", "portfolio-cfo")):
            assert "QuickDumpNow *" in text, name  # the marked row in the figures table
        if name.startswith(("jada-gm", "portfolio-cmo", "portfolio-cto")):
            # Nothing of theirs leaves data out: their only note (if any) is how far the books reach.
            notes = [part for part in text.split("\n\n") if part.startswith("Note: ")]
            assert all("leave out" not in note for note in notes), name
            assert len(notes) == (0 if name.startswith("portfolio-cto") else 1), name


def test_every_brief_showing_ledger_figures_says_the_date_the_books_run_through(outbox):
    """Case 2 of the second hardening pass: books that stop before the period end passed the freshness
    rule (by design) but no email said how far they reached. The sample's books stop on Nov 15-20 of a
    week that ends on Nov 22; the CTO brief shows no ledger figure."""
    _, folder = outbox
    found = {}
    for name, message in messages(folder).items():
        text = " ".join(message.get_body(("plain",)).get_content().split())
        html = visible_text(message.get_body(("html",)).get_content())
        found[name.split("--")[0]] = [sentence for sentence in (text, html) if "books run through" in sentence]
    assert found.pop("portfolio-cto") == []
    assert all(len(both) == 2 for both in found.values()), found
    every = ("The books run through Nov 19 for JADA, Nov 15 for QueenofSanDiego, Nov 20 for QuickDumpNow and "
             "Nov 15 for DangerousCentaur, before the period's end (Nov 22, 2026): figures from them stop there.")
    for name in ("portfolio-ceo", "portfolio-cfo", "portfolio-cmo", "portfolio-accounting"):
        assert every in found[name][0] and every in found[name][1], name
    assert ("The books run through Nov 19, before the period's end (Nov 22, 2026): figures from them stop there."
            in found["jada-gm"][0])
    assert "The books run through Nov 15, before" in found["dangerouscentaur-gm"][0]


def test_subjects_count_what_the_bodies_list(outbox):
    summary, folder = outbox
    by_report = {(item["report"], item["tenant"]): item["subject"] for item in summary["sent"]}
    for role, heading in (("ceo", "Critical shortfalls, most severe first"), ("cto", "Issues, most severe first"),
                          ("accounting", "Bookkeeping issues"), ("cmo", "Needs a decision"), ("cfo", "Needs a decision")):
        text = next(m for n, m in messages(folder).items() if n.startswith(f"portfolio-{role}-")) \
            .get_body(("plain",)).get_content()
        body = text.split(heading + "\n", 1)[1].split("\n\n", 1)[1].split("\n\n", 1)[0]
        if role == "ceo":  # the numbered top four, then "And N more" counted per owner role
            body = re.split(r"\n\n[^\n]+\n=+\n", text.split(heading + "\n", 1)[1], maxsplit=1)[0]
        listed = [line for line in body.splitlines()
                  if re.match(r"(- |\d+\. )(CRITICAL|HIGH|MEDIUM|LOW|INFO)\b|- ☐ ", line)]
        if role == "ceo":  # the equity risks, listed once in their own section above the shortfalls
            equity = text.split("Equity risks:\n", 1)[1].lstrip("\n").split("\n\n", 1)[0]
            listed += [line for line in equity.splitlines() if line.startswith("- ")]
        if role in ("cto", "accounting"):  # the list goes on from the decisions above it, not repeating them
            decisions = text.split("Needs a decision\n", 1)[1].split("\n\n", 1)[1].split("\n\n", 1)[0]
            listed += [line for line in decisions.splitlines() if line.startswith("- ☐ ")]
        more = sum(int(m) for m in re.findall(r"^(?:- )?and (\d+) more", body, re.MULTILINE | re.IGNORECASE))
        count = re.search(r"(\d+) (?:[a-z]+ )*?(issue|item|gap|decision)s?\b", by_report[(role, "portfolio")])
        assert count and int(count.group(1)) == len(listed) + more, (role, by_report[(role, "portfolio")], body)


def test_automated_report_headers_and_plain_text_wrapped(outbox):
    _, folder = outbox
    for name, message in messages(folder).items():
        assert message["Auto-Submitted"] == "auto-generated", name
        assert message["X-Auto-Response-Suppress"] == "All", name
        text = message.get_body(("plain",)).get_content()
        prose_lines = 0
        for block in text.split("\n\n"):
            # Tables keep their columns on one line; every other line is wrapped to 76 characters.
            if re.search(r"^-+( +-+)+$", block, re.MULTILINE):
                continue
            for line in block.splitlines():
                prose_lines += 1
                assert len(line) <= 76 or not re.search(r"\s", line.strip()[60:]), (name, line)
        assert prose_lines > 5


# ---- charts ----------------------------------------------------------------------------------------


def test_charts_are_cid_images_with_alt_text_and_a_matching_related_part(outbox):
    _, folder = outbox
    charted = 0
    for name, message in messages(folder).items():
        html_part = message.get_body(("html",))
        cids = re.findall(r'<img[^>]*src="cid:([^"]+)"[^>]*>', html_part.get_content())
        if not cids:
            continue
        charted += 1
        images = {part["Content-ID"].strip("<>"): part for part in message.walk()
                  if part.get_content_type() == "image/png"}
        assert set(cids) == set(images), name
        related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
        assert related.get_payload()[0].get_content_type() == "text/html"
        for part in images.values():
            assert part.get_content_disposition() == "inline"
            data = part.get_content()
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            width = int.from_bytes(data[16:20], "big")
            assert width == CHART_SCALE * CHART_WIDTH_PX, "drawn at 3x the width a phone shows"
        for tag in re.findall(r"<img[^>]*>", html_part.get_content()):
            alt = re.search(r'alt="([^"]+)"', tag)
            assert alt and len(alt.group(1)) > 30 and " chart, " in alt.group(1), tag
        # The text part carries the chart's figures instead.
        assert "(chart)\n" in message.get_body(("plain",)).get_content()
        # The outbox preview shows the charts without a mail client: data: URIs, no cid: left.
        preview = (folder / f"{name}.html").read_text()
        assert "cid:" not in preview and preview.count('src="data:image/png;base64,') == len(cids)
    # The CEO brief and each GM brief; since issue 25 the CFO brief has none (the CEO brief has its revenue and
    # expenses chart), nor the CTO's (three months of AWS cost are a sentence) or the CMO's (its top 3 campaigns
    # are a list).
    assert charted == 5


def test_the_ceo_chart_shows_the_portfolios_monthly_totals(outbox):
    _, folder = outbox
    message = next(m for n, m in messages(folder).items() if n.startswith("portfolio-ceo-"))
    text = message.get_body(("plain",)).get_content()
    table = text.split("Portfolio revenue and expenses by month (chart)\n", 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()[2:]
    # Months by name, the year on the first: "May 2026", "Jun", ... "Oct".
    assert [row.split()[0] for row in rows] == ["May", "Jun", "Jul", "Aug", "Sep", "Oct"]
    assert rows[0].split()[1] == "2026"
    # October's revenue across the portfolio is the sum the CEO's KPI strip gives as "Revenue last month".
    assert rows[-1].split()[1] in text.split("Revenue last month: ", 1)[1][:20]


def test_rendering_without_sending_never_imports_the_chart_library():
    """check and preview stay fast: matplotlib is imported only when a PNG is drawn."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from flows.core.config import load_config\nfrom flows.core.period import parse_period\n"
            "from flows.orchestrator.run import run_plain\n"
            f"summary, rendered = run_plain(load_config({str(SAMPLE_CONFIG)!r}), parse_period({SAMPLE_PERIOD!r}), "
            "dry_run=True)\n"
            "assert sum(len(r.images) for r in rendered.values()) == 5\n"
            "print('matplotlib' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip().splitlines()[-1] == "False"


# ---- size --------------------------------------------------------------------------------------------


def test_every_portfolio_report_of_100_entities_stays_under_gmails_clip(tmp_path):
    config = load_config(make_portfolio(100, tmp_path, with_tenant_report=False))
    summary, rendered = run_plain(config, parse_period(SAMPLE_PERIOD), roles=list(PORTFOLIO_ROLES), dry_run=True)
    assert summary["failed"] == []
    sizes = {key: email_.html_bytes for key, email_ in rendered.items()}
    assert set(sizes) == {f"portfolio-{role}" for role in PORTFOLIO_ROLES}
    for key, size in sizes.items():
        assert size <= 80 * 1024 < GMAIL_CLIP_BYTES, f"{key}: {size / 1024:.0f} KB"  # room under Gmail's clip
        # Inline styles (premailer's output) are at most a third of the HTML: the rest is the brief.
        share = inline_style_share(rendered[key].html)
        assert share <= 0.35, f"{key}: inline styles are {share:.0%} of the HTML"
    # Summary first: the 100 entities are ranked and cut, not listed in full.
    ceo = rendered["portfolio-ceo"].markdown
    assert "*and 95 more entities*" in ceo
    assert not any(line.startswith("### ") for line in ceo)  # each entity's agenda is in its GM brief
    # The shortfalls beyond the top 4 are counted per owner role, not listed for 100 entities.
    assert re.search(r"And [\d,]+ more shortfalls: [\d,]+ for the ", ceo)
