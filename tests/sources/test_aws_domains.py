"""aws.domain_registrations: Route 53 Domains through moto's server, ListPrices through botocore's Stubber.

moto serves ListDomains and GetDomainDetail (and RegisterDomain, to seed them) but has no ListPrices, so
that one call comes from a Stubber on a second client; everything else is real HTTP to moto.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from sources.aws import gather_aws, live
from sources.registry import SourceContext

CONTACT = {"FirstName": "Sample", "LastName": "Owner", "ContactType": "PERSON", "AddressLine1": "1 Example Way",
           "City": "San Diego", "State": "CA", "CountryCode": "US", "ZipCode": "92101",
           "PhoneNumber": "+1.6195550100", "Email": "owner@example.com"}


@pytest.fixture
def endpoint(moto_endpoint, monkeypatch):
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(request, timeout=30).close()
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
                        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")):
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return moto_endpoint


def register(endpoint: str, name: str, years: int, auto_renew: bool) -> None:
    boto3.client("route53domains", region_name="us-east-1", endpoint_url=endpoint).register_domain(
        DomainName=name, DurationInYears=years, AutoRenew=auto_renew, AdminContact=CONTACT,
        RegistrantContact=CONTACT, TechContact=CONTACT)


class PricesFromStubber:
    """The moto client for every call but ListPrices, which moto lacks: that goes to a stubbed client whose
    answer for a TLD is queued when asked (the source asks in the order ListDomains returns the names)."""

    def __init__(self, real, prices: dict[str, str]):
        self.real = real
        self.prices = dict(prices)
        self.asked: list[str] = []
        self.priced = boto3.client("route53domains", region_name="us-east-1")
        self.stubber = Stubber(self.priced)
        self.stubber.activate()

    def list_prices(self, **params):
        tld = params["Tld"]
        self.asked.append(tld)
        self.stubber.add_response("list_prices", {"Prices": [
            {"Name": tld, "RenewalPrice": {"Price": float(self.prices[tld]), "Currency": "USD"},
             "RegistrationPrice": {"Price": float(self.prices[tld]), "Currency": "USD"}}]}, {"Tld": tld})
        return self.priced.list_prices(**params)

    def __getattr__(self, name):
        return getattr(self.real, name)


def gather(endpoint, tmp_path, monkeypatch, prices, calls: set[str] | None = None):
    """The source's values; ``calls`` collects the Route 53 Domains operations it made."""
    real_client = live.Clients.client
    stubs = []
    calls = set() if calls is None else calls

    def record(model, **_):
        calls.add(model.name)

    def client(self, service, region="us-east-1"):
        made = real_client(self, service, region)
        if service == "route53domains":
            made.meta.events.register("before-parameter-build", record)
            stubs.append(PricesFromStubber(made, prices))
            stubs[-1].priced.meta.events.register("before-parameter-build", record)
            return stubs[-1]
        return made

    monkeypatch.setattr(live.Clients, "client", client)
    context = SourceContext("alpha", "Alpha", dt.date(2026, 11, 16), dt.date(2026, 11, 22), tmp_path,
                            tenant_settings={"domains": ["alpha.example"]})
    values = gather_aws({"regions": ["us-east-1"], "endpoint_url": endpoint}, context)
    for stub in stubs:
        assert sorted(stub.asked) == sorted(set(stub.asked)) == sorted(prices)  # one ListPrices per TLD
    return values


def test_domain_registrations_list_expiry_auto_renew_and_the_tlds_renewal_price(endpoint, tmp_path, monkeypatch):
    # moto accepts registrations of more than one year only (its check counts from the second it runs).
    register(endpoint, "example.net", 3, auto_renew=False)
    register(endpoint, "example.com", 2, auto_renew=True)
    register(endpoint, "example.org", 2, auto_renew=True)
    # Three TLDs: three ListPrices calls, each asked once.
    values = gather(endpoint, tmp_path, monkeypatch, {"com": "15.00", "net": "17.00", "org": "13.00"})
    # moto registers for DurationInYears x 365 days from today.
    two_years = (dt.datetime.now(dt.UTC) + dt.timedelta(days=730)).date()
    three_years = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1095)).date()
    rows = values["aws.domain_registrations"]
    assert [r["domain"] for r in rows] == ["example.com", "example.org", "example.net"]  # soonest first, then name
    by_name = {r["domain"]: r for r in rows}
    assert abs((dt.date.fromisoformat(by_name["example.com"]["expires"]) - two_years).days) <= 1
    assert abs((dt.date.fromisoformat(by_name["example.net"]["expires"]) - three_years).days) <= 1
    assert by_name["example.com"]["auto_renew"] is True and by_name["example.net"]["auto_renew"] is False
    assert [by_name[n]["renewal_price"] for n in ("example.com", "example.org", "example.net")] == [15.0, 13.0, 17.0]
    # 15 + 13 + 17 a year for the three names
    assert sum(r["renewal_price"] for r in rows) == 45.0
    assert "Route 53 Domains" not in {e["service"] for e in values["aws.service_errors"]}


def test_no_registered_domains_is_an_empty_list_not_an_error(endpoint, tmp_path, monkeypatch):
    values = gather(endpoint, tmp_path, monkeypatch, {})
    assert values["aws.domain_registrations"] == []


def test_a_snapshot_carries_the_domain_registrations_unchanged(endpoint, tmp_path, monkeypatch):
    from sources.aws import read_snapshot, write_snapshot

    register(endpoint, "example.com", 2, auto_renew=True)
    values = gather(endpoint, tmp_path, monkeypatch, {"com": "15.00"})
    path = tmp_path / "snapshot.json"
    write_snapshot(path, values, "alpha", dt.date(2026, 11, 22))
    assert json.loads(path.read_text())["metrics"]["aws.domain_registrations"][0]["renewal_price"] == 15.0
    assert read_snapshot(path, "alpha")["aws.domain_registrations"] == values["aws.domain_registrations"]


def test_the_iam_policy_grants_exactly_the_route53domains_calls_the_source_makes(endpoint, tmp_path, monkeypatch):
    register(endpoint, "example.com", 2, auto_renew=True)
    calls: set[str] = set()
    gather(endpoint, tmp_path, monkeypatch, {"com": "15.00"}, calls)
    assert calls == {"ListDomains", "GetDomainDetail", "ListPrices"}
    policy = json.loads((Path(__file__).resolve().parents[2] / "deploy/iam/aws-source-policy.json").read_text())
    actions = set()
    for statement in policy["Statement"]:
        found = statement["Action"]
        actions.update([found] if isinstance(found, str) else found)
    assert {a for a in actions if a.startswith("route53domains:")} == {f"route53domains:{c}" for c in calls}
