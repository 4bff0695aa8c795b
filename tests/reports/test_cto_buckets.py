"""The CTO brief's public buckets: a bucket whose policy AWS judges public is open only while its public
access block is not fully on. A full block overrides the policy, so such a bucket is named separately, as
not open today, and is not counted among the open ones."""

from __future__ import annotations

import json

from flows.config import load_config
from flows.pipeline import run_plain
from flows.period import parse_period
from tests.conftest import SAMPLE_PERIOD
from tests.reports.test_role_reports import section


def render_cto(portfolio_copy, buckets_by_tenant):
    data = portfolio_copy.parent / "data"
    for tenant, buckets in buckets_by_tenant.items():
        path = data / tenant / "aws-snapshot.json"
        snapshot = json.loads(path.read_text(encoding="utf-8"))
        snapshot["metrics"]["aws.s3_buckets"] = buckets
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
    assert "2 buckets open to the public" in cto
    buckets = section(cto, "## Public buckets")
    assert "2 bucket policies grant public access: anyone on the internet can use what they allow." in buckets
    assert "- dangerouscentaur-media-uploads (DangerousCentaur), and no public access block stops it" in buckets
    assert "- dangerouscentaur-drafts (DangerousCentaur), and its public access block is only partly on" in buckets
    assert "- jada-site" not in buckets
    assert ("1 bucket has a policy that would let anyone on the internet in, but its public access block is fully "
            "on and overrides it, so it is not open today: jada-site (JADA). Turning the block off would open it."
            ) in buckets


def test_when_every_public_policy_is_blocked_no_bucket_is_open(portfolio_copy):
    cto = render_cto(portfolio_copy, {
        "jada": [bucket("jada-site", "full")],
        "dangerouscentaur": [bucket("dangerouscentaur-media-uploads", "full")],
    })
    assert "0 buckets open to the public" in cto
    buckets = section(cto, "## Public buckets")
    assert "No bucket is open to the public." in buckets
    assert "anyone on the internet can use" not in buckets
    # Tenants in the portfolio's order: JADA first.
    assert "2 buckets have policies that would let anyone on the internet in, but their public access block is " \
           "fully on and overrides them, so they are not open today: jada-site (JADA) and " \
           "dangerouscentaur-media-uploads (DangerousCentaur). Turning the block off would open them." in buckets
