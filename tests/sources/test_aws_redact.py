"""Secrets in Lambda log lines: neither the kept line nor its one-line summary (the part that reaches the
email) may carry any part of them. Each case is a shape a reviewer found leaking."""

from __future__ import annotations

import pytest

from sources.aws.cloudwatch import clean_log_line, error_summary

# (log line, the secret's parts that must not survive)
LEAKS = [
    ('[ERROR] login failed password: "correct horse battery staple"', ["correct", "horse", "battery", "staple"]),
    ("[ERROR] bad settings {'password': 'p@ss w0rd'}", ["p@ss", "w0rd"]),
    ("[ERROR] could not connect with password hunter2", ["hunter2"]),
    ("[ERROR] DB_PASSWORD hunter2secret rejected by the database", ["hunter2secret", "hunter2"]),
    ("[ERROR] mysql -uadmin -phunter2 exited with status 1", ["hunter2"]),
    ("[ERROR] Basic auth header dXNlcjpwYXNz rejected", ["dXNlcjpwYXNz"]),
    ("[ERROR] Basic auth header dXNlcjpwYXNz", ["dXNlcjpwYXNz"]),
    ("[ERROR] charge declined for card 4111111111111111", ["4111111111111111", "1111"]),
    ("[ERROR] charge declined for card 4242 4242 4242 4242.", ["4242"]),
    ("[ERROR] charge declined for card 5555-5555-5555-4444 (expired)", ["5555", "4444"]),
    ("[ERROR] login failed, password is opensesame", ["opensesame"]),
]


@pytest.mark.parametrize(("line", "parts"), LEAKS)
def test_no_part_of_a_secret_survives_in_the_line_or_its_summary(line, parts):
    kept = clean_log_line(line)
    summary = error_summary(kept)
    for part in parts:
        assert part not in kept, kept
        assert part not in summary, summary
        # The summary guards itself too, should a line ever reach it unredacted.
        assert part not in error_summary(line), error_summary(line)
    assert "[redacted]" in kept


def test_the_readable_part_of_the_line_is_kept():
    assert clean_log_line('[ERROR] login failed password: "correct horse battery staple"') == \
        'login failed password: "[redacted]"'
    assert clean_log_line("[ERROR] bad settings {'password': 'p@ss w0rd'}") == "bad settings {'password': '[redacted]'}"
    assert clean_log_line("[ERROR] mysql -uadmin -phunter2 exited with status 1") == \
        "mysql -uadmin -p[redacted] exited with status 1"
    assert error_summary(clean_log_line("[ERROR] could not connect with password hunter2")) == \
        "could not connect with password"
    # A card number goes, the amount and an AWS account id (12 digits) stay.
    assert clean_log_line("[ERROR] charge of 125.50 declined for card 4111111111111111 in 123456789012") == \
        "charge of 125.50 declined for card [redacted] in 123456789012"


def test_error_names_and_plain_words_still_summarise():
    assert error_summary("AccessDenied: s3 GetObject with token [redacted]") == "AccessDenied"
    assert error_summary("Task timed out after 30.03 seconds") == "Task timed out after 30.03 seconds"
    assert error_summary("Rate exceeded calling CalculateRoute") == "Rate exceeded calling CalculateRoute"
    assert error_summary("DynamoDB table missing: bookings") == "DynamoDB table missing"
    # An encoded credential is not a word, whatever case it starts with.
    assert error_summary("login refused QWxhZGRpbjpvcGVu") == "login refused"
    # "signatures" names no secret value: an error's name before a colon is not a key either.
    assert clean_log_line("[ERROR] StripeSignatureVerificationError: No signatures found matching the expected "
                          "signature") == \
        "StripeSignatureVerificationError: No signatures found matching the expected signature"
