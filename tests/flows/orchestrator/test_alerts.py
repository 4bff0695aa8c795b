"""The operations alert of a crashed run names its period (case 10 of the second hardening pass: it said
``period=unknown``, since a crashed run leaves no summary to read the period from)."""

from __future__ import annotations

import datetime as dt

from flows.orchestrator.alerts import build_alert_email, run_period_label


def test_a_crashed_runs_alert_names_the_period_from_its_parameters_and_schedule(sample_config):
    monday = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
    sample = run_period_label(sample_config, {"config": "x"}, monday)
    assert sample == "2026-W47"  # the sample pins its default period
    assert run_period_label(sample_config, {"period": "2026-10"}, monday) == "2026-10"
    live = sample_config.model_copy(update={"portfolio": sample_config.portfolio.model_copy(
        update={"default_period": None})})
    assert run_period_label(live, {}, monday) == "2026-W48"  # the last complete week before the schedule
    assert run_period_label(live, {"period": "not-a-period"}, monday) == "not-a-period"

    alert = build_alert_email(sample_config, run_name="2026-W47 all roles", state_name="Crashed",
                              state_message="the process was killed", run_url=None, summary=None, period=sample)
    assert alert.period == "2026-W47"
    assert "period=2026-W47" in alert.to_mime()["X-Exec-Reports-Report"]
    without = build_alert_email(sample_config, run_name="r", state_name="Crashed", state_message="", run_url=None,
                                summary=None)
    assert without.period == "unknown"  # only when nothing says which period it was


def test_a_crashed_deployment_runs_alert_names_the_period_its_schedule_implies_not_the_snapshots():
    from flows.core.config import load_config
    from tests.conftest import SAMPLE_CONFIG

    config = load_config(SAMPLE_CONFIG)  # default_period: 2026-W47, the sample snapshot's week
    scheduled = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)  # Monday Dec 7: the week before is 2026-W49
    assert run_period_label(config, {}, scheduled) == "2026-W47"  # a local run reports on the snapshot
    assert run_period_label(config, {}, scheduled, from_deployment=True) == "2026-W49"
    assert run_period_label(config, {"period": "2026-W40"}, scheduled, from_deployment=True) == "2026-W40"


def test_a_sharded_runs_alert_names_the_shard_that_needed_another_attempt_and_the_one_that_never_completed(
        sample_config):
    shards = [
        {"shard": 1, "tenants": ["jada", "queenofsandiego"], "flow_runs": ["a"], "attempts": 1, "state": "Completed",
         "reason": ""},
        {"shard": 2, "tenants": ["quickdumpnow"], "flow_runs": ["b", "c"], "attempts": 2, "state": "Completed",
         "reason": "no heartbeat for 93 s: its process or worker is gone"},
        {"shard": 3, "tenants": ["dangerouscentaur"], "flow_runs": ["d", "e"], "attempts": 2, "state": "Crashed",
         "reason": "Execution was aborted"}]
    summary = {"period": "2026-W47", "sent": [], "skipped": [], "shards": shards, "failed": [
        {"report": "gm", "tenant": "dangerouscentaur", "recipients": [], "reason": "shard 3 did not complete"}]}

    text = " ".join(build_alert_email(sample_config, run_name="2026-W47 all roles", state_name="Failed",
                                      state_message="", run_url=None, summary=summary).text.split())

    assert "Shards that needed another attempt or did not complete" in text
    assert "shard 1" not in text  # a shard that simply completed is not news
    assert "shard 2 (quickdumpnow) completed on attempt 2, after: no heartbeat for 93 s" in text
    assert "shard 3 (dangerouscentaur) did not complete after 2 attempt(s): Crashed: Execution was aborted." in text
