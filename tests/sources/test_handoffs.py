"""Handoff notes: open and done items, blockers, staleness by 'Last updated' line or file time."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from flows.core.errors import SourceError
from sources.catalogue import REGISTRY, SourceContext, Unavailable
from sources.handoffs import gather_handoffs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "business" / "handoffs"


@pytest.fixture
def notes(tmp_path) -> Path:
    """A copy of the notes, with ops.md (no Last updated line) last modified on 2026-09-20."""
    folder = tmp_path / "handoffs"
    shutil.copytree(FIXTURES, folder)
    stamp = dt.datetime(2026, 9, 20, 12, 0).timestamp()
    for name in ("ops.md", "bad_date.md"):
        os.utime(folder / name, (stamp, stamp))
    return folder


def context(base: Path) -> SourceContext:
    return SourceContext("acme", "Acme", dt.date(2026, 9, 1), dt.date(2026, 9, 30), base)


def test_items_keep_their_file_and_heading_and_fenced_code_is_ignored(notes):
    figures = gather_handoffs({"path": "handoffs"}, context(notes.parent))
    open_texts = [(i["file"], i["heading"], i["text"]) for i in figures["handoffs.open_items"]]
    assert open_texts == [
        ("bad_date.md", "Notes", "Renew insurance"),
        ("booking.md", "Website", "Add authorization to the API"),
        ("booking.md", "Blockers", "Payment provider account is frozen"),
        ("ops.md", "Operations handoff", "Reconcile refunds"),
    ]
    assert [i["text"] for i in figures["handoffs.done_items"]] == ["Move the form", "Old blocker that was resolved"]
    assert figures["handoffs.open_count"] == 4


def test_blockers_are_blocked_lines_and_open_items_under_a_blockers_heading(notes):
    figures = gather_handoffs({"path": "handoffs"}, context(notes.parent))
    assert [(b["file"], b["line"], b["text"]) for b in figures["handoffs.blockers"]] == [
        ("booking.md", 8, "waiting for the owner's domain login"),
        ("booking.md", 11, "Payment provider account is frozen"),
    ]


def test_notes_older_than_the_limit_are_stale_preferring_the_last_updated_line(notes):
    figures = gather_handoffs({"path": "handoffs", "stale_after_days": 30}, context(notes.parent))
    by_file = {n["file"]: n for n in figures["handoffs.notes"]}
    # booking.md says 2026-08-01: 60 days before 2026-09-30, even though the copy was just written.
    assert (by_file["booking.md"]["last_updated"], by_file["booking.md"]["age_days"]) == (dt.date(2026, 8, 1), 60)
    assert by_file["booking.md"]["dated_by"] == "Last updated line"
    # ops.md has no line, so its modification time (2026-09-20) counts: 10 days.
    assert (by_file["ops.md"]["age_days"], by_file["ops.md"]["dated_by"]) == (10, "file modification time")
    assert [n["file"] for n in figures["handoffs.stale_notes"]] == ["booking.md"]


def test_an_impossible_last_updated_date_is_a_problem_with_file_and_line(notes):
    figures = gather_handoffs({"path": "handoffs"}, context(notes.parent))
    assert len(figures["handoffs.problems"]) == 1
    assert figures["handoffs.problems"][0].startswith("bad_date.md:3:")
    assert "'2026-02-30'" in figures["handoffs.problems"][0]
    by_file = {n["file"]: n for n in figures["handoffs.notes"]}
    assert by_file["bad_date.md"]["dated_by"] == "file modification time"


def test_a_missing_folder_makes_the_metrics_unavailable_with_the_path(tmp_path):
    values = REGISTRY.gather("handoffs", ["handoffs.open_items"], {"path": "nope"}, context(tmp_path))
    assert isinstance(values["handoffs.open_items"], Unavailable)
    assert str(tmp_path / "nope") in values["handoffs.open_items"].reason


def test_a_bad_stale_limit_is_named(notes):
    with pytest.raises(SourceError, match="stale_after_days"):
        gather_handoffs({"path": "handoffs", "stale_after_days": "a month"}, context(notes.parent))


def test_hashtags_tag_an_item_and_are_left_out_of_its_text(tmp_path):
    folder = tmp_path / "handoffs"
    folder.mkdir()
    (folder / "site.md").write_text(
        "# Site\n\n## Website\n"
        "- [ ] Make the quote page load faster on phones #ux\n"
        "- [ ] Rewrite the #UX copy #seo for the home page\n"
        "- [ ] Support C# clients and close issue #12\n"
        "- [x] Fix the date picker #ux\n", encoding="utf-8")
    figures = gather_handoffs({"path": "handoffs"}, context(tmp_path))
    assert [(i["text"], i["tags"]) for i in figures["handoffs.open_items"]] == [
        ("Make the quote page load faster on phones", ["ux"]),
        ("Rewrite the copy for the home page", ["ux", "seo"]),
        ("Support C# clients and close issue #12", []),
    ]
    assert [(i["text"], i["tags"]) for i in figures["handoffs.done_items"]] == [("Fix the date picker", ["ux"])]


def test_items_go_to_the_role_their_heading_or_tag_names_and_the_rest_to_the_general_manager(tmp_path):
    folder = tmp_path / "handoffs"
    folder.mkdir()
    (folder / "n.md").write_text("## Booking flow\n\n- [ ] Add authorization to /bookings\n\n## Engineering\n\n"
                                 "- [ ] Add CI\n\n## Notes\n\n- [ ] Renew insurance\n- [ ] Rotate the key #cto\n")
    figures = gather_handoffs({"path": "handoffs", "owners": {"booking flow": "cto"}}, context(tmp_path))
    owners = {item["text"]: item["owner"] for item in figures["handoffs.open_items"]}
    assert owners == {"Add authorization to /bookings": "cto", "Add CI": "cto", "Renew insurance": "gm",
                      "Rotate the key": "cto"}
    assert [i["text"] for i in figures["handoffs.engineering_items"]] == [
        "Add authorization to /bookings", "Add CI", "Rotate the key"]
    agenda = {row["fix"]: row["owner"] for row in figures["handoffs.agenda"]}
    assert agenda["Add authorization to /bookings (Booking flow)"] == "cto" and agenda["Renew insurance (Notes)"] == "gm"
    with pytest.raises(SourceError, match="sources.handoffs.owners must map a heading to a role id"):
        gather_handoffs({"path": "handoffs", "owners": {"Booking flow": "The CTO"}}, context(tmp_path))


def test_the_sample_routes_jadas_booking_flow_to_the_cto_in_the_gm_and_cto_briefs():
    from flows.core.config import load_config
    from flows.core.period import parse_period
    from flows.orchestrator.run import run_plain
    from tests.conftest import SAMPLE_CONFIG, SAMPLE_PERIOD

    summary, rendered = run_plain(load_config(SAMPLE_CONFIG), parse_period(SAMPLE_PERIOD), roles=["gm", "cto"],
                                  dry_run=True, draw_charts=False)
    item = "Add authorization to the /bookings API route"
    assert item in rendered["portfolio-cto"].markdown  # the CTO brief names it among its engineering items
    # JADA's general manager brief holds it as an action, owned by the CTO.
    terms = {(a["report"], a["tenant"], a["owner"]) for a in summary["actions"] if a["text"].startswith(item)}
    assert terms == {("gm", "jada", "cto")}
