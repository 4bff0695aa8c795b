"""Recipient and sender addresses: exactly one mailbox per entry, refused at load with file:line, and
the SMTP envelope is exactly the header's address (a real aiosmtpd server)."""

from __future__ import annotations

import json
import pickle
from email import policy
from email.parser import BytesParser

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.core.addresses import AddressError, Mailbox, header_text, parse_mailbox
from flows.core.config import load_config
from flows.core.errors import ConfigurationError
from flows.delivery.message import Email
from flows.plan.definitions import load_definitions

# The payloads from issue 15, and more of the same classes.
HIDDEN_RECIPIENTS = [
    "victim@evil.example, GM <gm@queenofsandiego.example>",
    "Bcc: victim@evil.example <gm@quickdumpnow.example>",
    "Evil\r\nBcc: victim@evil.example <gm@jada.example>",
    "Evil\nBcc: victim@evil.example <gm@jada.example>",
    "Evil\rBcc: victim@evil.example <gm@jada.example>",
    "gm@jada.example\x00victim@evil.example",
    "G\x00M <gm@jada.example>",
    "gm@jada.example; victim@evil.example",
    "GM <gm@jada.example>, victim@evil.example",
    "undisclosed-recipients:;",
    "team: gm@jada.example, victim@evil.example;",
    "GM <gm@jada.example> <victim@evil.example>",
    "\u202eelpmaxe.live@mitciv\u202c <gm@jada.example>",  # right-to-left override in the name
    "GM\u2066 <gm@jada.example>",  # an isolate
    "G\x85M <gm@jada.example>",  # a C1 control (NEL)
    "GM\x1b[31m <gm@jada.example>",  # an escape sequence
    "GM\u2028Bcc: victim@evil.example <gm@jada.example>",
    "gm@jada",
    "gm@[127.0.0.1]",
    "\"gm victim\"@jada.example",
    "<gm@jada.example",
    "",
    "   ",
]


@pytest.mark.parametrize("value", HIDDEN_RECIPIENTS)
def test_anything_but_exactly_one_clean_mailbox_is_refused(value):
    with pytest.raises(AddressError):
        Mailbox(value)


@pytest.mark.parametrize(("value", "name", "address", "text"), [
    ("gm@jada.example", "", "gm@jada.example", "gm@jada.example"),
    ("GM <gm@jada.example>", "GM", "gm@jada.example", "GM <gm@jada.example>"),
    ("  General Manager   <gm@jada.example> ", "General Manager", "gm@jada.example",
     "General Manager <gm@jada.example>"),
    ('"Doe, Jane" <jane.doe@jada.example>', "Doe, Jane", "jane.doe@jada.example", '"Doe, Jane" <jane.doe@jada.example>'),
    ('"J. Doe" <j@jada.example>', "J. Doe", "j@jada.example", '"J. Doe" <j@jada.example>'),
    ("Zoë Ångström <zoe@jada.example>", "Zoë Ångström", "zoe@jada.example", "Zoë Ångström <zoe@jada.example>"),
    ("ops+alerts@xn--bcher-kva.example", "", "ops+alerts@xn--bcher-kva.example", "ops+alerts@xn--bcher-kva.example"),
])
def test_one_mailbox_keeps_its_display_name_and_its_envelope_address(value, name, address, text):
    mailbox = Mailbox(value)
    assert (mailbox.display_name, mailbox.address, str(mailbox)) == (name, address, text)
    assert Mailbox(str(mailbox)) == mailbox  # the canonical form parses to itself
    assert pickle.loads(pickle.dumps(mailbox)).address == address


def test_the_errors_say_what_is_wrong():
    with pytest.raises(AddressError, match="holds 2 addresses; give exactly one per entry"):
        Mailbox("victim@evil.example, GM <gm@queenofsandiego.example>")
    with pytest.raises(AddressError, match="uses group syntax"):
        Mailbox("Bcc: victim@evil.example <gm@quickdumpnow.example>")
    with pytest.raises(AddressError, match=r"contains a control character \(U\+000D\)"):
        Mailbox("Evil\r\nBcc: victim@evil.example <gm@jada.example>")
    with pytest.raises(AddressError, match=r"contains a control character \(U\+0000\)"):
        Mailbox("gm@jada.example\x00")
    with pytest.raises(AddressError, match=r"bidirectional control character \(U\+202E\)"):
        Mailbox("\u202eGM <gm@jada.example>")


def test_header_text_from_data_drops_control_and_bidi_characters():
    assert header_text("Runway \u202e4 months\u202c for JADA\r\nBcc: victim@evil.example\x00") == \
        "Runway 4 months for JADA Bcc: victim@evil.example"


# ---- property: any text is one mailbox or a clear refusal, never another exception --------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
       | st.builds(lambda name, local, domain: f"{name} <{local}@{domain}>",
                   st.text(max_size=15), st.text(max_size=10), st.text(max_size=12)))
def test_any_text_parses_to_one_clean_mailbox_or_is_refused(value):
    try:
        mailbox = Mailbox(value)
    except AddressError as refusal:
        assert str(refusal)
        return
    # A valid parse: one address, no unsafe characters anywhere, and the header form means the same.
    assert mailbox.address.count("@") == 1 and mailbox.address.isascii()
    assert not any(c in str(mailbox) for c in "\r\n\x00\u202e")
    assert parse_mailbox(str(mailbox)) == (mailbox.display_name, mailbox.address)
    # Nothing a reader could take for another address: no '@' in the name, no comment, no routing.
    assert "@" not in mailbox.display_name and "(" not in str(mailbox).replace(f'"{mailbox.display_name}"', "")
    assert not set("%!") & set(mailbox.address.rpartition("@")[0])
    header = policy.strict.header_factory("To", str(mailbox))
    assert [a.addr_spec for a in header.addresses] == [mailbox.address]


# ---- refused at load, with file and line, before any run ----------------------------------------------------


def _config_with(portfolio_copy, change) -> None:
    data = yaml.safe_load(portfolio_copy.read_text())
    change(data)
    portfolio_copy.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _line_of(path, needle: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("value", [
    "victim@evil.example, GM <gm@queenofsandiego.example>",
    "Bcc: victim@evil.example <gm@quickdumpnow.example>",
    "Evil\r\nBcc: victim@evil.example <gm@jada.example>",
    "gm@jada.example\x00",
])
def test_a_config_recipient_hiding_another_is_refused_with_file_and_line(portfolio_copy, value):
    original = "recipients: {gm: [gm@jada.example]}"
    text = portfolio_copy.read_text()
    assert original in text
    portfolio_copy.write_text(text.replace(original, f"recipients: {{gm: [{json.dumps(value)}]}}"))
    with pytest.raises(ConfigurationError) as refused:
        load_config(portfolio_copy)
    line = _line_of(portfolio_copy, "recipients: {gm: [")
    assert f"portfolio.yaml:{line}: tenants[0].recipients.gm[0]: " in str(refused.value)


def test_a_bad_sender_operations_or_archive_address_is_refused_at_load(portfolio_copy):
    _config_with(portfolio_copy, lambda data: data["delivery"].update(
        operations_address="ops@holdings.example, victim@evil.example"))
    with pytest.raises(ConfigurationError, match=r"delivery.operations_address: .* holds 2 addresses"):
        load_config(portfolio_copy)


@pytest.mark.parametrize(("variable", "value"), [
    ("SES_FROM_ADDRESS", "Evil\r\nBcc: victim@evil.example <gm@jada.example>"),
    ("SES_FROM_ADDRESS", "reports@holdings.example, victim@evil.example"),
    ("SES_TO_ADDRESS", "Bcc: victim@evil.example <gm@quickdumpnow.example>"),
    # (an environment variable cannot hold NUL; BEL and ESC are the same class)
    ("SES_BCC_ADDRESS", "archive@holdings.example\x07victim@evil.example"),
    ("SES_BCC_ADDRESS", "Archive\x1b <archive@holdings.example>"),
])
def test_an_address_from_the_environment_is_parsed_as_strictly(portfolio_copy, monkeypatch, variable, value):
    key = {"SES_FROM_ADDRESS": "from_address", "SES_TO_ADDRESS": "default_recipient",
           "SES_BCC_ADDRESS": "bcc_address"}[variable]
    _config_with(portfolio_copy, lambda data: data["delivery"].pop(key, None))
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"environment variable {variable}: "):
        load_config(portfolio_copy)


def test_a_nul_or_bidi_override_in_a_tenant_or_portfolio_name_is_refused_at_load(portfolio_copy):
    _config_with(portfolio_copy, lambda data: data["tenants"][1].update(name="Queen\x00 of San Diego"))
    with pytest.raises(ConfigurationError, match=r"tenants\[1\].name: the name contains a control character"):
        load_config(portfolio_copy)
    _config_with(portfolio_copy, lambda data: (data["tenants"][1].update(name="Queen of San Diego"),
                                               data["portfolio"].update(name="Sample \u202eHoldings")))
    with pytest.raises(ConfigurationError, match=r"portfolio.name: the name contains a bidirectional control"):
        load_config(portfolio_copy)


def test_a_front_matter_recipient_hiding_another_is_a_definition_problem_with_its_line(tmp_path):
    report = tmp_path / "reports" / "gm.md"
    report.parent.mkdir()
    report.write_text("---\nrole: gm\ntitle: GM brief\nsubject: GM\nscope: tenant\nmetrics: [finance.burn_rate]\n"
                      "recipients:\n  - gm@jada.example\n  - \"victim@evil.example, GM <gm@queenofsandiego.example>\"\n"
                      "---\nBurn {{ money(finance.burn_rate) }}\n")
    definitions, problems = load_definitions(report.parent)
    assert definitions == []
    assert [(p.line, p.key) for p in problems] == [(9, "recipients[1]")]
    assert "holds 2 addresses" in problems[0].message


# ---- the envelope is exactly the header ----------------------------------------------------------------------


def test_an_email_built_from_plain_strings_is_parsed_strictly_too():
    with pytest.raises(AddressError):
        Email("s", "<p>x</p>", "x", "reports@holdings.example", ("victim@evil.example, gm@jada.example",),
              "gm", "jada", "2026-W47")


def test_subject_header_has_no_control_or_bidi_characters():
    email = Email("Runway \u202e4 months\u202c\r\nBcc: victim@evil.example", "<p>x</p>", "x",
                  "Executive Reports <reports@holdings.example>", ("GM <gm@jada.example>",), "gm", "jada", "2026-W47")
    raw = email.to_mime().as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "Runway 4 months Bcc: victim@evil.example"
    assert "Bcc" not in parsed.keys() and "\u202e" not in raw.decode("utf-8", "replace")


def test_a_subject_built_from_a_report_keeps_no_bidi_or_control_characters(portfolio_copy, sample_period):
    from flows.orchestrator.run import run_plain

    gm = portfolio_copy.parent.parent / "reports" / "gm.md"
    text = gm.read_text()
    original = 'subject: "{{ tenant.name }} {{ period.title }}'
    assert original in text
    gm.write_text(text.replace(original, 'subject: "\\u202e{{ tenant.name }}\\u202c\\u0007 {{ period.title }}'))
    summary, _ = run_plain(load_config(portfolio_copy), sample_period, roles=["gm"], tenants=["jada"], dry_run=True)
    [item] = summary["dry_run"]
    assert item["subject"].startswith("JADA Nov 16–22, 2026")
    assert not any(c in item["subject"] for c in "\u202e\u202c\x07")


# ---- look-alike recipients: the envelope matched the header, but a reviewer read another address ------------
# (case 5 of the second hardening pass)

LOOK_ALIKES = [
    ("victim@evil.example(gm@jada.example)",
     "contains a comment in parentheses ('(gm@jada.example)'), which mail programs drop: the mail would go to "
     "victim@evil.example only"),
    ("gm@jada.example (GM) ", "contains a comment in parentheses ('(GM)')"),
    ('"gm@jada.example" <victim@evil.example>',
     "the display name 'gm@jada.example' contains '@', so it reads as an address, but the mail goes to "
     "victim@evil.example"),
    ('"GM <gm@jada.example>" <victim@evil.example>', "the display name 'GM <gm@jada.example>' contains '@'"),
    ("victim%evil.example@jada.example",
     "'victim%evil.example' contains '%', which some mail relays read as a route to another host"),
    ("evil.example!victim@jada.example", "contains '!', which some mail relays read as a route"),
]


@pytest.mark.parametrize(("value", "reason"), LOOK_ALIKES)
def test_a_look_alike_recipient_is_refused_with_the_reason(value, reason):
    with pytest.raises(AddressError) as refused:
        Mailbox(value)
    assert reason in str(refused.value)


@pytest.mark.parametrize(("value", "reason"), LOOK_ALIKES[:1] + LOOK_ALIKES[2:5])
def test_a_look_alike_recipient_in_the_config_is_refused_at_load_with_file_line_and_reason(portfolio_copy, value,
                                                                                          reason):
    original = "recipients: {gm: [gm@jada.example]}"
    text = portfolio_copy.read_text()
    portfolio_copy.write_text(text.replace(original, f"recipients: {{gm: [{json.dumps(value)}]}}"))
    with pytest.raises(ConfigurationError) as refused:
        load_config(portfolio_copy)
    line = _line_of(portfolio_copy, "recipients: {gm: [")
    assert f"portfolio.yaml:{line}: tenants[0].recipients.gm[0]: " in str(refused.value)
    assert reason in str(refused.value)


def test_quoted_parentheses_and_plain_names_are_still_accepted():
    assert Mailbox('"J. Doe (Finance)" <j@jada.example>').address == "j@jada.example"
    assert Mailbox("GM <gm+reports@jada.example>").display_name == "GM"
