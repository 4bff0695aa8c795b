"""Portfolio config validation and report periods."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.core.config import load_config
from flows.core.errors import ConfigurationError
from flows.core.period import parse_period, previous_period


def test_unknown_config_key_names_file_line_and_key(portfolio_copy):
    text = portfolio_copy.read_text().replace("    name: JADA\n", "    name: JADA\n    domian: jada.example\n")
    portfolio_copy.write_text(text)
    with pytest.raises(ConfigurationError) as raised:
        load_config(portfolio_copy)
    line = text.splitlines().index("    domian: jada.example") + 1
    assert f"portfolio.yaml:{line}: tenants[0].domian: unknown key" in str(raised.value)


def test_bad_recipient_address_in_config_is_rejected(portfolio_copy):
    portfolio_copy.write_text(portfolio_copy.read_text().replace("cfo: [cfo@holdings.example]", "cfo: [cfo-at-holdings]"))
    with pytest.raises(ConfigurationError, match=r"portfolio.yaml:23: recipients.cfo\[0\]: 'cfo-at-holdings' is not an email address"):
        load_config(portfolio_copy)


def test_duplicate_tenant_ids_are_rejected(portfolio_copy):
    portfolio_copy.write_text(portfolio_copy.read_text().replace("id: quickdumpnow", "id: jada"))
    with pytest.raises(ConfigurationError, match="tenant id 'jada' appears twice"):
        load_config(portfolio_copy)


def test_a_tenant_id_too_long_for_a_file_name_is_refused_at_load_with_its_line(portfolio_copy, capsys):
    """Case 9 of the second hardening pass: a 300-character tenant id passed `check`, then failed at delivery
    with "File name too long", recorded as "delivery state unknown"."""
    text = portfolio_copy.read_text()
    long_id = "q" * 300
    portfolio_copy.write_text(text.replace("id: quickdumpnow", f"id: {long_id}"))
    line = text.splitlines().index("  - id: quickdumpnow") + 1
    with pytest.raises(ConfigurationError) as raised:
        load_config(portfolio_copy)
    assert f"portfolio.yaml:{line}: tenants[2].id: an id is at most 63 characters (it names files and delivery " \
           f"records), this one has 300" in str(raised.value)
    from flows.operate.cli import main

    assert main(["check", "--config", str(portfolio_copy)]) == 1  # `check` fails on it now, before any run
    assert "an id is at most 63 characters" in capsys.readouterr().err
    portfolio_copy.write_text(text.replace("id: quickdumpnow", "id: " + "q" * 63))
    assert load_config(portfolio_copy).tenants[2].id == "q" * 63


@pytest.mark.parametrize("bad", ["QuickDump", "9lives", "quick dump", "../etc", "qdn\u202e"])
def test_a_tenant_id_outside_the_safe_characters_is_refused_at_load(portfolio_copy, bad):
    portfolio_copy.write_text(portfolio_copy.read_text().replace("id: quickdumpnow", f'id: "{bad}"'))
    with pytest.raises(ConfigurationError, match=r"tenants\[2\].id: .* is not an id: use lower-case letters"):
        load_config(portfolio_copy)


def test_paths_resolve_relative_to_the_config_file(sample_config):
    assert sample_config.reports_path.name == "reports" and sample_config.reports_path.is_dir()
    assert sample_config.outbox_path == sample_config.base_dir.parent / "outbox"


def test_periods_parse_weeks_and_months():
    week = parse_period("2026-W47")
    assert (week.start, week.end) == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    month = parse_period("2026-02")
    assert (month.start, month.end) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    with pytest.raises(ConfigurationError, match="expected an ISO week"):
        parse_period("last week")
    with pytest.raises(ConfigurationError, match="has no ISO week 54"):
        parse_period("2026-W54")


def test_the_default_period_is_the_last_complete_one():
    saturday = dt.date(2026, 11, 28)
    assert previous_period("week", saturday).label == "2026-W47"
    assert previous_period("week", dt.date(2026, 11, 23)).label == "2026-W47"  # a Monday run reports last week
    assert previous_period("month", saturday).label == "2026-10"
    assert previous_period("month", dt.date(2026, 1, 1)).label == "2025-12"


def test_a_portfolio_default_period_pins_runs_without_a_period_and_a_bad_one_is_named(portfolio_copy):
    import argparse

    import yaml

    from flows.core.errors import ConfigurationError
    from flows.core.period import previous_period, today_in
    from flows.operate.cli import config_and_period

    args = argparse.Namespace(config=str(portfolio_copy), period=None)
    config, period = config_and_period(args)
    assert config.portfolio.default_period == "2026-W47" and period.label == "2026-W47"
    assert config_and_period(argparse.Namespace(config=str(portfolio_copy), period="2026-10"))[1].label == "2026-10"

    data = yaml.safe_load(portfolio_copy.read_text())
    del data["portfolio"]["default_period"]
    portfolio_copy.write_text(yaml.safe_dump(data, sort_keys=False))
    _, live = config_and_period(args)
    assert live == previous_period("week", today_in("America/Los_Angeles"))

    data["portfolio"]["default_period"] = "2026-W99"
    portfolio_copy.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigurationError, match=r"portfolio.default_period: period '2026-W99'"):
        config_and_period(args)


def test_shards_are_one_by_default_a_number_or_auto_and_a_bad_value_is_named(portfolio_copy):
    import yaml

    from flows.core.errors import ConfigurationError

    assert load_config(portfolio_copy).portfolio.shards == 1
    data = yaml.safe_load(portfolio_copy.read_text())
    for value in (6, "auto"):
        data["portfolio"]["shards"] = value
        portfolio_copy.write_text(yaml.safe_dump(data, sort_keys=False))
        assert load_config(portfolio_copy).portfolio.shards == value
    data["portfolio"]["shards"] = 0
    portfolio_copy.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigurationError, match=r"portfolio\.shards"):
        load_config(portfolio_copy)
