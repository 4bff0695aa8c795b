"""The CTO brief's public buckets and error lines.

A bucket whose policy AWS judges public is open only while its public access block is not fully on. A full
block overrides the policy, so such a bucket is named separately, as not open today, and is not counted
among the open ones. A function whose log scan was cut short is named, and "no errors" is not claimed."""

from __future__ import annotations

import json

from flows.core.config import load_config
from flows.core.period import parse_period
from flows.orchestrator.run import run_plain
from tests.conftest import SAMPLE_PERIOD
from tests.reports.test_role_reports import section


def render_cto(portfolio_copy, buckets_by_tenant=None, metric="aws.s3_buckets", values_by_tenant=None):
    """The CTO brief after replacing one metric in some tenants' AWS snapshots."""
    data = portfolio_copy.parent / "data"
    for tenant, value in (values_by_tenant or buckets_by_tenant).items():
        path = data / tenant / "aws-snapshot.json"
        snapshot = json.loads(path.read_text(encoding="utf-8"))
        snapshot["metrics"][metric] = value
        path.write_text(json.dumps(snapshot), encoding="utf-8")
    summary, rendered = run_plain(load_config(portfolio_copy), parse_period(SAMPLE_PERIOD), roles=["cto"],
                                  dry_run=True)
    assert summary["failed"] == []
    return rendered["portfolio-cto"].markdown


def bucket(name, block, policy_public=True):
    return {"name": name, "policy_public": policy_public, "public_access_block": block,
            "public_policy": "unconditional" if policy_public else "none", "region": "us-east-1"}


def test_a_public_policy_behind_a_full_block_is_not_counted_as_open(portfolio_copy):
    cto = render_cto(portfolio_copy, {
        # JADA's site bucket: a public policy, but the full block overrides it.
        "jada": [bucket("jada-backups", "full", policy_public=False), bucket("jada-site", "full")],
        # DangerousCentaur: one open without a block (the sample's), one behind a partial block.
        "dangerouscentaur": [bucket("dangerouscentaur-media-uploads", "missing"),
                             bucket("dangerouscentaur-drafts", "partial")],
    })
    # Open: the two DangerousCentaur buckets, not JADA's.
    assert "Buckets open to the public: 2" in cto  # the KPI strip
    buckets = section(cto, "## Public buckets")
    assert "**2 bucket policies grant anyone on the internet** what they allow: dangerouscentaur-media-uploads " \
           "(DangerousCentaur: no public access block stops it); dangerouscentaur-drafts (DangerousCentaur: its " \
           "public access block is only partly on)." in buckets
    assert "jada-site (JADA):" not in buckets
    assert ("1 bucket has a policy that would let anyone on the internet in, but its public access block is fully "
            "on and overrides it, so it is not open today: jada-site (JADA). Turning the block off would open it."
            ) in buckets


def test_when_every_public_policy_is_blocked_no_bucket_is_open(portfolio_copy):
    cto = render_cto(portfolio_copy, {
        "jada": [bucket("jada-site", "full")],
        "dangerouscentaur": [bucket("dangerouscentaur-media-uploads", "full")],
    })
    assert "Buckets open to the public: 0" in cto  # the KPI strip
    buckets = section(cto, "## Public buckets")
    assert "No bucket is open to the public." in buckets
    assert "grants anyone on the internet" not in buckets and "grant anyone on the internet" not in buckets
    # Tenants in the portfolio's order: JADA first.
    assert "2 buckets have policies that would let anyone on the internet in, but their public access block is " \
           "fully on and overrides them, so they are not open today: jada-site (JADA) and " \
           "dangerouscentaur-media-uploads (DangerousCentaur). Turning the block off would open them." in buckets


CUT_SHORT_NOTE = ("*The logs of jada-booking-webhook (JADA) had too many lines to read to the end this week, so the "
                  "search for errors stopped early: there may be newer errors than those shown.*")


def test_a_log_scan_cut_short_is_named_under_the_error_lines(portfolio_copy):
    cto = render_cto(portfolio_copy, metric="aws.lambda_error_scan_cut_short", values_by_tenant={
        "jada": [{"function": "jada-booking-webhook", "region": "us-east-1"}]})
    latency = section(cto, "## Latency and errors")
    assert CUT_SHORT_NOTE in latency
    # The lines that were read are still listed, by their message.
    assert "- Task timed out after 6.01 seconds *(jada-booking-webhook (JADA))*" in latency


def test_no_errors_is_not_claimed_when_a_scan_was_cut_short(portfolio_copy):
    data = portfolio_copy.parent / "data"
    for tenant in ("jada", "queenofsandiego", "quickdumpnow", "dangerouscentaur"):
        path = data / tenant / "aws-snapshot.json"
        snapshot = json.loads(path.read_text(encoding="utf-8"))
        snapshot["metrics"]["aws.lambda_error_lines"] = []
        path.write_text(json.dumps(snapshot), encoding="utf-8")
    cto = render_cto(portfolio_copy, metric="aws.lambda_error_scan_cut_short", values_by_tenant={
        "jada": [{"function": "jada-booking-webhook", "region": "us-east-1"}]})
    latency = section(cto, "## Latency and errors")
    assert "No errors in the function logs this week." not in latency
    assert "No errors in the part of the function logs that could be read this week." in latency
    assert CUT_SHORT_NOTE in latency


def test_a_complete_scan_with_no_errors_says_so_plainly(portfolio_copy):
    cto = render_cto(portfolio_copy, metric="aws.lambda_error_lines", values_by_tenant={
        tenant: [] for tenant in ("jada", "queenofsandiego", "quickdumpnow", "dangerouscentaur")})
    latency = section(cto, "## Latency and errors")
    assert "No errors in the function logs this week." in latency
    assert "stopped early" not in latency


def test_a_security_check_names_the_finding_not_only_a_count():
    from flows.core.config import load_config
    from flows.core.period import parse_period
    from flows.orchestrator.run import run_plain
    from tests.conftest import SAMPLE_CONFIG, SAMPLE_PERIOD

    summary, rendered = run_plain(load_config(SAMPLE_CONFIG), parse_period(SAMPLE_PERIOD), roles=["cto"],
                                  dry_run=True, draw_charts=False)
    messages = {c["id"] + "/" + c["tenant"]: c["message"] for c in summary["checks"] if c["report"] == "cto"}
    # aws-snapshot.json: DangerousCentaur's one critical finding is its uploads bucket's "*" policy.
    assert messages["critical-findings/dangerouscentaur"] == (
        'DangerousCentaur: The policy of bucket dangerouscentaur-media-uploads allows Principal "*" with '
        "no condition: anyone on the internet has the granted actions.")
    # JADA has two high findings: the first is named, the other counted.
    assert messages["high-findings/jada"].endswith("anyone can call it (and 1 more high finding).")
