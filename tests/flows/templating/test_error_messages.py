"""error_messages(): the CTO brief names each reported log error by its message (issue 25), with the
secrets its source already redacted still out, and without tracebacks, file paths or line numbers."""

from __future__ import annotations

from flows.templating.logs import error_message, error_messages


def test_a_message_keeps_its_words_and_loses_the_file_and_line_it_names():
    assert error_message("KeyError: 'charter_date' in handler.py line 88") == "KeyError: 'charter_date'"
    assert error_message("MemoryError: image 9000x12000 px exceeds the resize limit") == \
        "MemoryError: image 9000x12000 px exceeds the resize limit"
    # What the source redacted stays redacted.
    assert error_message("Stripe request failed: Invalid API Key provided: [redacted]") == \
        "Stripe request failed: Invalid API Key provided: [redacted]"


def test_a_traceback_is_named_by_the_error_it_raised_without_its_frames():
    line = ('Traceback (most recent call last): File "/var/task/handler.py", line 88, in handler '
            'booking = event["charter"] KeyError: \'charter_date\'')
    assert error_message(line) == "KeyError: 'charter_date'"
    js = "TypeError: Cannot read properties of undefined (reading 'id') at handler (/var/task/index.js:12:5)"
    assert error_message(js) == "TypeError: Cannot read properties of undefined (reading 'id')"
    assert error_message("could not load /opt/python/lib/native.so") == "could not load"
    assert error_message("") == "an error without a readable message"
    assert len(error_message("ValueError: " + "x " * 200)) == 120


def test_each_message_is_listed_once_the_most_logged_first_with_where_it_was_logged():
    rows = [
        {"entity": "JADA", "function": "jada-booking-webhook", "time": "2026-11-20T09:21:00+00:00",
         "message": "Task timed out after 6.01 seconds"},
        {"entity": "DangerousCentaur 003", "function": "dc-image-resize", "time": "2026-11-17T09:00:00+00:00",
         "message": "MemoryError: image 9000x12000 px exceeds the resize limit"},
        {"entity": "DangerousCentaur 007", "function": "dc-image-resize", "time": "2026-11-18T09:00:00+00:00",
         "message": "MemoryError: image 9000x12000 px exceeds the resize limit"},
        {"entity": "JADA", "function": "jada-booking-webhook", "time": "2026-11-19T09:14:00+00:00",
         "message": "KeyError: 'charter_date' in handler.py line 88"},
    ]
    shown = error_messages(rows, 2)
    assert [(e["message"], e["where"], e["times"]) for e in shown] == [
        ("MemoryError: image 9000x12000 px exceeds the resize limit", "dc-image-resize at 2 entities", 2),
        ("Task timed out after 6.01 seconds", "jada-booking-webhook (JADA)", 1)]  # then the most recent
    assert (shown.more, shown.total) == (1, 3)
    assert error_messages([], 3) == [] and error_messages([], 3).more == 0
