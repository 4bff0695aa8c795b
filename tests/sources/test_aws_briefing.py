"""Figures worked from the other AWS figures once, for the checks and the engineering brief: the slow
functions, the APIs with server errors and what CloudFront serves from, each against rows written here."""

from __future__ import annotations

from sources.aws.briefing import SLOW_P95_MS, briefing_figures
from sources.registry import Unavailable, is_available


def function(name: str, p95: int | None) -> dict:
    return {"name": name, "region": "us-east-1", "invocations": 10, "errors": 0, "throttles": 0,
            "p95_duration_ms": p95}


def api(name: str, server_errors: int) -> dict:
    return {"name": name, "id": name, "kind": "HTTP", "region": "us-east-1", "requests": 100,
            "server_errors": server_errors, "client_errors": 0, "p95_latency_ms": 120}


def test_slow_functions_are_those_over_a_second_for_1_call_in_20_slowest_first():
    assert SLOW_P95_MS == 1000
    figures = briefing_figures({"aws.lambda_performance": [
        function("webhook", 1320), function("exactly-a-second", 1000), function("idle", None),
        function("nightly", 48200), function("fast", 90)]}, "jada")
    # 1,000 ms is not more than a second; a function that did not run has no p95 and is not slow.
    assert [f["name"] for f in figures["aws.slow_functions"]] == ["nightly", "webhook"]


def test_apis_with_server_errors_most_first_and_unavailable_when_the_apis_could_not_be_read():
    figures = briefing_figures({"aws.api_performance": [api("tours", 2), api("shop", 0), api("booking", 41)]}, "jada")
    assert [(a["name"], a["server_errors"]) for a in figures["aws.apis_with_server_errors"]] == [
        ("booking", 41), ("tours", 2)]
    unread = Unavailable("aws.api_performance", "CloudWatch: AccessDenied", "API figures not readable")
    figures = briefing_figures({"aws.api_performance": unread, "aws.lambda_performance": unread}, "jada")
    for name in ("aws.apis_with_server_errors", "aws.slow_functions"):
        assert not is_available(figures[name]) and figures[name].reason == "CloudWatch: AccessDenied"


def test_cloudfront_origins_name_each_kind_once():
    stacks = [{"domain": d, "origin_kind": kind} for d, kind in
              (("a.example", "S3"), ("api.a.example", "API Gateway"), ("b.example", "S3"), ("c.example", ""))]
    assert briefing_figures({"aws.stacks_by_domain": stacks}, "jada")["aws.cloudfront_origins"] == ["API Gateway", "S3"]
    assert not is_available(briefing_figures({}, "jada")["aws.cloudfront_origins"])
