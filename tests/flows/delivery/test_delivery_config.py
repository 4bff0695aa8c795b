"""Delivery settings: the config file wins over the environment, which wins over built-in defaults."""

from __future__ import annotations

import pytest

from flows.core.errors import ConfigurationError
from flows.delivery import get_backend, with_backend
from flows.delivery.ses import SesBackend

from .conftest import load, write_config

SES_VARIABLES = ("SES_REGION", "SES_FROM_ADDRESS", "SES_TO_ADDRESS", "SES_BCC_ADDRESS", "SES_CONFIGURATION_SET",
                 "SES_MAX_SEND_RATE", "SES_ENDPOINT_URL")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for variable in SES_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def test_environment_fills_the_ses_settings_the_file_leaves_out(monkeypatch, portfolio_copy):
    monkeypatch.setenv("SES_REGION", "eu-west-1")
    monkeypatch.setenv("SES_FROM_ADDRESS", "Reports <reports@ops.example>")
    monkeypatch.setenv("SES_TO_ADDRESS", "owner@ops.example")
    monkeypatch.setenv("SES_BCC_ADDRESS", "archive@ops.example")
    monkeypatch.setenv("SES_CONFIGURATION_SET", "exec-reports")

    delivery = load(write_config(portfolio_copy, {"backend": "ses"})).delivery

    assert (delivery.ses.region, delivery.from_address, delivery.default_recipient, delivery.bcc_address,
            delivery.ses.configuration_set) == ("eu-west-1", "Reports <reports@ops.example>", "owner@ops.example",
                                                "archive@ops.example", "exec-reports")


def test_the_config_file_wins_over_the_environment(monkeypatch, portfolio_copy):
    monkeypatch.setenv("SES_REGION", "eu-west-1")
    monkeypatch.setenv("SES_FROM_ADDRESS", "reports@ops.example")

    delivery = load(write_config(portfolio_copy, {"backend": "ses", "from_address": "reports@holdings.example",
                                                  "ses": {"region": "us-west-2"}})).delivery

    assert (delivery.ses.region, delivery.from_address) == ("us-west-2", "reports@holdings.example")


def test_a_bad_address_in_the_environment_names_the_variable(monkeypatch, portfolio_copy):
    monkeypatch.setenv("SES_BCC_ADDRESS", "not-an-address")

    with pytest.raises(ConfigurationError, match="environment variable SES_BCC_ADDRESS: 'not-an-address' is not an email address"):
        load(write_config(portfolio_copy, {"backend": "ses"}))


def test_an_s3_record_store_without_a_bucket_says_what_to_set(monkeypatch, portfolio_copy):
    monkeypatch.delenv("EXEC_REPORTS_RECORDS_BUCKET", raising=False)

    with pytest.raises(ConfigurationError, match="EXEC_REPORTS_RECORDS_BUCKET"):
        load(write_config(portfolio_copy, {"records": {"store": "s3"}}))


def test_a_run_time_backend_choice_replaces_the_files_and_unknown_names_are_refused(portfolio_copy):
    config = load(write_config(portfolio_copy, {"backend": "outbox", "ses": {"region": "us-east-1"}}))

    assert isinstance(get_backend(with_backend(config, "ses"), "run"), SesBackend)
    with pytest.raises(ConfigurationError, match="unknown delivery backend 'sess'"):
        with_backend(config, "sess")


def test_grouped_recipients_share_one_message_and_one_delivery_record(portfolio_copy, sample_period, tmp_path):
    from flows.delivery.outbox import OutboxBackend
    from flows.delivery.records import LocalRecordStore
    from flows.orchestrator.run import run_plain

    config = load(write_config(portfolio_copy, {"backend": "outbox", "group_recipients": True},
                               {"cfo": ["finance.lead@holdings.example", "controller@holdings.example"]}))
    records = LocalRecordStore(tmp_path / "records")

    first, _ = run_plain(config, sample_period, roles=["cfo"], backend=OutboxBackend(tmp_path / "out"),
                         records=records)
    again, _ = run_plain(config, sample_period, roles=["cfo"], backend=OutboxBackend(tmp_path / "out2"),
                         records=records)

    assert [s["recipients"] for s in first["sent"]] == [["finance.lead@holdings.example",
                                                         "controller@holdings.example"]]
    assert len(list((tmp_path / "out").glob("*.eml"))) == 1
    assert again["sent"] == [] and len(again["skipped"]) == 1
