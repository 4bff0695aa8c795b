"""Every figure that two briefs show for the same entity and period is the same number, every action
has one priority, owner and due date whichever brief lists it, and every total equals the sum of the rows
it totals. Read from the sample run's emails, as an executive reading two of them side by side would."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import pytest

from flows.core.config import load_config
from flows.core.period import parse_period
from flows.gather.gather import gather_source
from flows.orchestrator.run import run_plain
from tests.conftest import SAMPLE_CONFIG, SAMPLE_PERIOD

# Column headers that name the same figure in different briefs.
CONCEPTS = {"Cash": "cash", "Burn / mo": "burn", "Runway": "runway",
            "Revenue": "revenue last month", "AWS bill": "aws bill", "Last month": None}
# A one-entity brief's KPI strip: its lines read "Cash: $12,617 (▼ $900 vs last week)".
KPI_CONCEPTS = {"Cash": "cash", "Monthly net burn": "burn", "Runway": "runway", "Revenue last month": "revenue last month"}


@pytest.fixture(scope="module")
def sample_run():
    config = load_config(SAMPLE_CONFIG)
    summary, rendered = run_plain(config, parse_period(SAMPLE_PERIOD), dry_run=True, draw_charts=False)
    assert summary["failed"] == []
    return config, summary, rendered


def tables(markdown: str) -> list[list[dict[str, str]]]:
    """Every Markdown table as rows of {header: cell}, cells unescaped."""
    found, lines = [], markdown.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("|") and index + 1 < len(lines) and re.match(r"^\|[-:|]+\|$", lines[index + 1]):
            header = [cell.strip() for cell in line.strip("|").split("|")]
            rows = []
            for body in lines[index + 2:]:
                if not body.startswith("|"):
                    break
                cells = [cell.strip().replace("\\", "") for cell in body.strip("|").split("|")]
                rows.append(dict(zip(header, cells, strict=False)))
            found.append(rows)
    return found


def amount(text: str) -> Decimal | None:
    match = re.fullmatch(r"(-?)\$([\d,]+(?:\.\d+)?)", text.strip())
    return Decimal(match.group(1) + match.group(2).replace(",", "")) if match else None


def figures_by_entity(sample_run) -> dict[tuple[str, str], dict[str, str]]:
    """(entity, figure) -> {brief: the cell it shows}."""
    config, _, rendered = sample_run
    names = {tenant.id: tenant.name for tenant in config.tenants}
    shown: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for key, email in rendered.items():
        tenant_key = key.rsplit("-", 1)[0]
        for table in tables(email.markdown):
            for row in table:
                entity = row.get("Entity", "").rstrip(" *") or names.get(tenant_key)
                if entity is None:
                    continue
                for header, concept in CONCEPTS.items():
                    if concept and header in row and row[header]:
                        shown[(entity, concept)][key] = row[header]
        if key == "portfolio-cto":
            # The CTO brief names the costliest entities' AWS bills in a sentence: "JADA **$18.73** ($13.17 this month)".
            cost = email.markdown.split("## AWS cost\n", 1)[1].split("\n## ", 1)[0]
            for entity, bill in re.findall(r"(\w[\w ]*?) \*\*(\$[\d,.]+)\*\* \(\$[\d,.]+ this month\)", cost):
                shown[(entity.strip(), "aws bill")][key] = bill
        if not key.startswith("portfolio-"):
            for label, concept in KPI_CONCEPTS.items():
                match = re.search(rf"^{re.escape(label)}: (.+?)(?: \(|$)", email.markdown, re.M)
                if match:
                    shown[(names[tenant_key], concept)][key] = match.group(1)
    return shown


def test_a_figure_two_briefs_show_for_the_same_entity_is_the_same(sample_run):
    shown = figures_by_entity(sample_run)
    compared = {pair: cells for pair, cells in shown.items() if len(cells) > 1}
    # The ledger's figures are in the CFO, CEO and general manager briefs; the AWS bill in the CTO and CFO briefs.
    assert {concept for _, concept in compared} >= {"cash", "burn", "runway", "revenue last month", "aws bill"}
    disagreeing = {pair: cells for pair, cells in compared.items() if len(set(cells.values())) > 1}
    assert disagreeing == {}


def test_an_action_has_one_priority_owner_and_due_date_in_every_brief(sample_run):
    _, summary, _ = sample_run
    terms: dict[tuple[str, str], set[tuple[str, str, str]]] = defaultdict(set)
    listed_by: dict[tuple[str, str], set[str]] = defaultdict(set)
    for action in summary["actions"]:
        terms[(action["tenant"], action["text"])].add((action["priority"], action["owner"], action["due"]))
        listed_by[(action["tenant"], action["text"])].add(action["report"])
    assert any(len(reports) > 1 for reports in listed_by.values())  # some item is in two briefs (CEO and GM)
    assert {item: found for item, found in terms.items() if len(found) > 1} == {}


def test_every_total_equals_the_sum_of_the_rows_it_totals(sample_run):
    _, _, rendered = sample_run
    checked = 0
    for key, email in rendered.items():
        for table in tables(email.markdown):
            totals = [row for row in table if next(iter(row.values()), "") == "Total"]
            for total in totals:
                rows = [row for row in table if row is not total]
                for header, cell in total.items():
                    if amount(cell) is None:
                        continue
                    column = [amount(row.get(header, "")) for row in rows]
                    assert sum(value for value in column if value is not None) == amount(cell), (key, header)
                    checked += 1
    assert checked >= 8  # the CFO's runway, costs and targets tables


def test_new_customers_are_one_figure_in_the_ceo_and_cmo_briefs(sample_run):
    """Each general manager brief's customers figures and the CMO's 90-day pace both count a customer whose first purchase falls in
    the window (customers.new_customers), whenever they signed up."""
    _, _, rendered = sample_run
    names = {"JADA": "jada", "QueenofSanDiego": "queenofsandiego", "QuickDumpNow": "quickdumpnow",
             "DangerousCentaur": "dangerouscentaur"}
    ceo = {name: re.search(r"^New customers: (\d+) \(", rendered[f"{tenant}-gm"].markdown, re.M).group(1)
           for name, tenant in names.items()}
    cmo_text = rendered["portfolio-cmo"].markdown
    compared = 0
    # The entity with the most gaps under its own heading, the next ones a line each.
    milestones = cmo_text.split("## 30/60/90-day milestones", 1)[1]
    for name, new in re.findall(r"(?:^### |^- \*\*)([^\n*]+?)(?:\*\*:|\n)[^\n]*?(?:\n\n[^\n]*?)?which brought (\d+) "
                                r"new customers? in the last", milestones, re.M):
        assert ceo[name] == new, name
        compared += 1
    assert compared >= 2  # JADA and QueenofSanDiego have the six months of targets the pace needs


def test_every_general_manager_brief_holds_what_the_ceo_brief_says_it_holds(sample_run):
    """The CEO brief sends the reader to each entity's general manager brief for its funnel, balance
    sheet, missing KPIs and open handoff items and blockers: each GM brief has each one the entity has."""
    config, summary, rendered = sample_run
    ceo = rendered["portfolio-ceo"].markdown
    assert "each entity's funnel is in its general manager brief" in ceo
    assert "each entity's balance sheet and largest holder are in its general manager brief" in ceo
    assert "Each general manager brief names its own missing KPIs" in ceo
    assert "Each entity's open handoff items and blockers are in its general manager brief." in ceo
    checked = 0
    for tenant in config.tenants:
        gm = rendered[f"{tenant.id}-gm"].markdown
        if "customers" in tenant.sources:
            assert "## Customers, last " in gm and re.search(r"^Sign-ups: \d+", gm, re.M), tenant.id
        if "equity" in tenant.sources:
            assert "## Balance sheet, " in gm and "Largest holder: " in gm, tenant.id
        missing = [c for c in summary["checks"] if c["report"] == "ceo" and c["id"] == "missing-kpis"
                   and c["tenant"] == tenant.id and c["status"] == "fired"]
        if missing:
            assert "**Expected KPIs without data**" in gm, tenant.id
        # Every open handoff item and blocker of the entity is an action of its GM brief.
        actions = {a["text"] for a in summary["actions"] if a["report"] == "gm" and a["tenant"] == tenant.id}
        if "handoffs" not in tenant.sources:
            continue
        gathered = gather_source(config, tenant.id, "handoffs", ["handoffs.agenda"], parse_period(SAMPLE_PERIOD))
        for item in gathered["handoffs.agenda"]:
            assert item["fix"].replace("`", "") in actions, (tenant.id, item["fix"])  # code marks are not text
            checked += 1
        blockers = [c for c in summary["checks"] if c["report"] == "ceo" and c["id"] == "blockers"
                    and c["tenant"] == tenant.id and c["status"] == "fired"]
        if blockers:
            assert any(text.startswith("Unblock: ") for text in actions), tenant.id
            checked += 1
    assert checked >= 8  # JADA's six handoff items and two entities' blockers, at least
