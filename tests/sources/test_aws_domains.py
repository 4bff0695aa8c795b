"""aws.domain_registrations: Route 53 Domains through moto's server; ListPrices and ListTagsForDomain
through botocore's Stubber.

moto (5.2) serves ListDomains and GetDomainDetail (and RegisterDomain, to seed them) but has neither
ListPrices nor ListTagsForDomain, so those two calls come from a Stubber on a second client; everything else
is real HTTP to moto.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from sources.aws import clients as aws_clients
from sources.aws import gather_aws
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
    """The moto client for every call but ListPrices and ListTagsForDomain, which moto lacks: those go to a
    stubbed client whose answer is queued when asked (the source asks in the order ListDomains returns the
    names). ``domain_tags`` holds each domain's tags as the account owner set them."""

    def __init__(self, real, prices: dict[str, str], domain_tags: dict[str, dict[str, str]] | None = None):
        self.real = real
        self.prices = dict(prices)
        self.domain_tags = domain_tags or {}
        self.asked: list[str] = []
        self.tags_asked: list[str] = []
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

    def list_tags_for_domain(self, **params):
        name = params["DomainName"]
        self.tags_asked.append(name)
        tag_list = [{"Key": k, "Value": v} for k, v in self.domain_tags.get(name, {}).items()]
        self.stubber.add_response("list_tags_for_domain", {"TagList": tag_list}, {"DomainName": name})
        return self.priced.list_tags_for_domain(**params)

    def __getattr__(self, name):
        return getattr(self.real, name)


def gather(endpoint, tmp_path, monkeypatch, prices, calls: set[str] | None = None,
           domain_tags: dict[str, dict[str, str]] | None = None, tags: dict[str, str] | None = None):
    """The source's values; ``calls`` collects the Route 53 Domains operations it made. ``tags`` picks the
    tenant out of a shared account, ``domain_tags`` are the domains' tags in that account."""
    real_client = aws_clients.Clients.client
    stubs = []
    calls = set() if calls is None else calls

    def record(model, **_):
        calls.add(model.name)

    def client(self, service, region="us-east-1"):
        made = real_client(self, service, region)
        if service == "route53domains":
            made.meta.events.register("before-parameter-build", record)
            stubs.append(PricesFromStubber(made, prices, domain_tags))
            stubs[-1].priced.meta.events.register("before-parameter-build", record)
            return stubs[-1]
        return made

    monkeypatch.setattr(aws_clients.Clients, "client", client)
    context = SourceContext("alpha", "Alpha", dt.date(2026, 11, 16), dt.date(2026, 11, 22), tmp_path,
                            tenant_settings={"domains": ["alpha.example"]})
    values = gather_aws({"regions": ["us-east-1"], "endpoint_url": endpoint, **({"tags": tags} if tags else {})},
                        context)
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
    gather(endpoint, tmp_path, monkeypatch, {"com": "15.00"}, calls, domain_tags={"example.com": {"tenant": "alpha"}},
           tags={"tenant": "alpha"})  # a tenant picked out by tags also reads each domain's tags
    assert calls == {"ListDomains", "GetDomainDetail", "ListPrices", "ListTagsForDomain"}
    policy = json.loads((Path(__file__).resolve().parents[2] / "deploy/iam/aws-source-policy.json").read_text())
    actions = set()
    for statement in policy["Statement"]:
        found = statement["Action"]
        actions.update([found] if isinstance(found, str) else found)
    assert {a for a in actions if a.startswith("route53domains:")} == {f"route53domains:{c}" for c in calls}


def test_tenants_sharing_an_account_each_see_only_the_domains_carrying_their_tags(endpoint, tmp_path, monkeypatch):
    register(endpoint, "alpha.example.com", 2, auto_renew=True)
    register(endpoint, "alpha-shop.example.net", 3, auto_renew=False)
    register(endpoint, "beta.example.org", 2, auto_renew=True)
    register(endpoint, "untagged.example.com", 2, auto_renew=True)  # nobody's: neither tenant sees it
    domain_tags = {"alpha.example.com": {"tenant": "alpha", "env": "prod"},
                   "alpha-shop.example.net": {"tenant": "alpha"},
                   "beta.example.org": {"tenant": "beta"}}
    alpha = gather(endpoint, tmp_path, monkeypatch, {"com": "15.00", "net": "17.00"}, domain_tags=domain_tags,
                   tags={"tenant": "alpha"})
    assert [r["domain"] for r in alpha["aws.domain_registrations"]] == ["alpha.example.com", "alpha-shop.example.net"]
    # 15 (.com) + 17 (.net) a year: the beta and untagged names are not alpha's to pay for
    assert sum(r["renewal_price"] for r in alpha["aws.domain_registrations"]) == 32.0
    beta = gather(endpoint, tmp_path, monkeypatch, {"org": "13.00"}, domain_tags=domain_tags, tags={"tenant": "beta"})
    assert [r["domain"] for r in beta["aws.domain_registrations"]] == ["beta.example.org"]
    # Every tag asked for must match: alpha's production domain only.
    production = gather(endpoint, tmp_path, monkeypatch, {"com": "15.00"}, domain_tags=domain_tags,
                        tags={"tenant": "alpha", "env": "prod"})
    assert [r["domain"] for r in production["aws.domain_registrations"]] == ["alpha.example.com"]
