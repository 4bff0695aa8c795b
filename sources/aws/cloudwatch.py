"""CloudWatch over the report period: Lambda and API Gateway latency (p95), errors and throttles, and
the newest error lines of each function's logs (secrets redacted, busy windows narrowed)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from sources.aws.clients import Clients, client_error_code

log = logging.getLogger("exec_reports.sources.aws")


# ---- CloudWatch: latency and errors over the report period ----------------------------------------

# CloudWatch names differ between REST APIs (dimension ApiName, 5XXError/4XXError) and HTTP or
# WebSocket APIs (dimension ApiId, 5xx/4xx).
API_METRICS = {
    "REST": {"dimension": "ApiName", "server_errors": "5XXError", "client_errors": "4XXError"},
    "HTTP": {"dimension": "ApiId", "server_errors": "5xx", "client_errors": "4xx"},
}
# Lines that count as errors. The same words go to CloudWatch as a filter pattern; they are
# checked again here because a pattern the service cannot honour must not let other lines through.
ERROR_PATTERN = '?ERROR ?Error ?Exception ?Traceback ?"Task timed out" ?FATAL ?CRITICAL'
_ERROR_LINE = re.compile(r"ERROR|Error|Exception|Traceback|Task timed out|FATAL|CRITICAL")
_LOG_NOISE = re.compile(r"^\[?(?:ERROR|Error)\]?\s*|\b\d{4}-\d\d-\d\dT[\d:.]+Z?\s*|"
                        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b\s*")
LOG_LINE_CHARS = 240
LOG_PAGES = 10  # per window read, at 100 events a page: bounded for a noisy function
# Pages one function's scan may use beyond one page a day of the period: room to narrow in on the
# newest lines of a few busy days. Past it the scan stops and says so.
LOG_EXTRA_PAGES = 30
LOG_SHORTEST_WINDOW = dt.timedelta(minutes=1)  # a busier minute than LOG_PAGES pages is not split further


def period_window(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The report period as UTC instants: from the first day's midnight to the midnight after the last."""
    return (dt.datetime.combine(start, dt.time(), dt.UTC),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC))


def percentile_client(clients: Clients, region: str):
    """The client p95 statistics are asked from. Its own function so tests can answer these calls
    with botocore's Stubber: moto's GetMetricStatistics ignores ExtendedStatistics."""
    return clients.client("cloudwatch", region)


def _statistic_sum(client, namespace: str, metric: str, dimensions: list[dict[str, str]],
                   start: dt.datetime, end: dt.datetime) -> float:
    answer = client.get_metric_statistics(Namespace=namespace, MetricName=metric, Dimensions=dimensions,
                                          StartTime=start, EndTime=end, Period=_period_seconds(start, end),
                                          Statistics=["Sum"])
    return float(sum(point.get("Sum", 0.0) for point in answer.get("Datapoints", [])))


def _statistic_p95(client, namespace: str, metric: str, dimensions: list[dict[str, str]],
                   start: dt.datetime, end: dt.datetime) -> float | None:
    answer = client.get_metric_statistics(Namespace=namespace, MetricName=metric, Dimensions=dimensions,
                                          StartTime=start, EndTime=end, Period=_period_seconds(start, end),
                                          ExtendedStatistics=["p95"])
    # One period spans the whole window, so one datapoint is the p95 of the window. Should the service
    # split it anyway, the highest is kept: percentiles of parts cannot be combined exactly, and the
    # slower part is the one a reader needs to know about.
    values = [float(point["ExtendedStatistics"]["p95"]) for point in answer.get("Datapoints", [])
              if "p95" in (point.get("ExtendedStatistics") or {})]
    return max(values) if values else None


def _period_seconds(start: dt.datetime, end: dt.datetime) -> int:
    return int((end - start).total_seconds())


def collect_performance(clients: Clients, functions: list[dict[str, Any]], apis: list[dict[str, Any]],
                        start: dt.datetime, end: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """Per function and per API: counts summed over the window and the window's p95 duration/latency."""
    function_rows = []
    for function in functions:
        region = function["region"]
        counts, percentiles = clients.client("cloudwatch", region), percentile_client(clients, region)
        dimensions = [{"Name": "FunctionName", "Value": function["name"]}]
        row = {"name": function["name"], "region": region}
        for field, metric in (("invocations", "Invocations"), ("errors", "Errors"), ("throttles", "Throttles")):
            row[field] = round(_statistic_sum(counts, "AWS/Lambda", metric, dimensions, start, end))
        p95 = _statistic_p95(percentiles, "AWS/Lambda", "Duration", dimensions, start, end)
        row["p95_duration_ms"] = None if p95 is None else round(p95)
        function_rows.append(row)
    api_rows = []
    for api in apis:
        if api["kind"] == "WEBSOCKET":
            continue  # counts messages and connections, not requests: no figure here would mean the same
        region = api["region"]
        names = API_METRICS["REST" if api["kind"] == "REST" else "HTTP"]
        counts, percentiles = clients.client("cloudwatch", region), percentile_client(clients, region)
        dimensions = [{"Name": names["dimension"], "Value": api["name"] if api["kind"] == "REST" else api["id"]}]
        row = {"name": api["name"], "id": api["id"], "kind": api["kind"], "region": region,
               "requests": round(_statistic_sum(counts, "AWS/ApiGateway", "Count", dimensions, start, end)),
               "server_errors": round(_statistic_sum(counts, "AWS/ApiGateway", names["server_errors"], dimensions,
                                                     start, end)),
               "client_errors": round(_statistic_sum(counts, "AWS/ApiGateway", names["client_errors"], dimensions,
                                                     start, end))}
        p95 = _statistic_p95(percentiles, "AWS/ApiGateway", "Latency", dimensions, start, end)
        row["p95_latency_ms"] = None if p95 is None else round(p95)
        api_rows.append(row)
    return {"functions": function_rows, "apis": api_rows}


def clean_log_line(message: str) -> str:
    """One readable, redacted line: Lambda's level, timestamp and request id dropped, secrets removed."""
    from sources.aws.redact import redact

    text = " ".join(redact(message).split())
    text = " ".join(_LOG_NOISE.sub("", text).split()) or text
    return text if len(text) <= LOG_LINE_CHARS else text[:LOG_LINE_CHARS - 1] + "…"


_ERROR_NAME = re.compile(r"^(?:[\w.]+\.)?(?P<name>[A-Z]\w*(?:Error|Exception|Fault|Timeout))\b")
_SECRET_WORD = re.compile(r"pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
                          r"|auth|credential|session|cookie|signature|card", re.IGNORECASE)
# How people write words and names: lower case, Capitalised, CamelCase with an acronym at the end
# (DynamoDB), or all capitals. Encoded credentials switch case at random (dXNlcjpwYXNz, QWxhZGRpbjpvcGVu).
_WRITTEN_WORD = re.compile(r"^(?:[A-Z]?[a-z'-]+(?:[A-Z][a-z'-]+)*(?:[A-Z]{2,4})?|[A-Z]+)$")
_PLAIN_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*[,;]?$|^\d+(?:\.\d+)?$")


def _error_events(client, group: str, start: dt.datetime, end: dt.datetime,
                  max_pages: int) -> tuple[dict[str, tuple[int, str]], int, bool]:
    """Error events in [start, end), by event id: (found, pages read, whether the window was read to its end).

    The service answers oldest first and may answer empty pages that still carry a continuation token, so
    a window it could not finish within ``max_pages`` is reported as unfinished, never as clean."""
    arguments = {"logGroupName": group, "filterPattern": ERROR_PATTERN, "startTime": int(start.timestamp() * 1000),
                 "endTime": int(end.timestamp() * 1000) - 1, "limit": 100}
    found: dict[str, tuple[int, str]] = {}
    for pages in range(1, max_pages + 1):
        page = client.filter_log_events(**arguments)
        for event in page.get("events", []):
            if _ERROR_LINE.search(event.get("message", "")):
                key = event.get("eventId") or f"{event['timestamp']}:{event.get('logStreamName')}:{event['message']}"
                found[key] = (event["timestamp"], event["message"])
        if not page.get("nextToken") or page.get("nextToken") == arguments.get("nextToken"):
            return found, pages, True
        arguments["nextToken"] = page["nextToken"]
    return found, max_pages, False


def newest_error_events(client, group: str, start: dt.datetime, end: dt.datetime,
                        keep: int) -> tuple[list[tuple[int, str]], bool]:
    """The ``keep`` newest error events of the window, newest first, and whether the scan was cut short.

    Windows are read newest first: the period's days from the last back, stopping once ``keep`` lines are
    found in the stretch read completely. A day too busy to read within LOG_PAGES pages is split and its
    later half read first, so the lines kept are the newest, not the oldest of a busy day. When the page
    budget runs out before the newest ``keep`` lines are certain (or a single minute is too busy), the
    scan is reported as cut short, so "no errors" is never claimed of a log that was not read."""
    windows: list[tuple[dt.datetime, dt.datetime]] = []
    day_end = end
    while day_end > start:
        windows.append((max(start, day_end - dt.timedelta(days=1)), day_end))
        day_end = windows[-1][0]
    budget = len(windows) + LOG_EXTRA_PAGES
    found: dict[str, tuple[int, str]] = {}
    complete_from = end  # [complete_from, end) has been read to the last event
    cut_short = False

    def certain() -> int:
        floor = int(complete_from.timestamp() * 1000)
        return sum(1 for timestamp, _ in found.values() if timestamp >= floor)

    while windows and certain() < keep:
        if budget <= 0:
            cut_short = True
            break
        window_start, window_end = windows.pop(0)
        events, pages, finished = _error_events(client, group, window_start, window_end, min(LOG_PAGES, budget))
        budget -= pages
        found.update(events)
        if finished:
            complete_from = window_start
        elif window_end - window_start > LOG_SHORTEST_WINDOW:
            middle = window_start + (window_end - window_start) / 2
            windows[:0] = [(middle, window_end), (window_start, middle)]
        else:
            cut_short = True  # more error lines in one minute than LOG_PAGES pages: keep those read
            complete_from = window_start
    newest = sorted(found.values(), reverse=True)
    floor = int(complete_from.timestamp() * 1000)
    if cut_short:
        return newest[:keep], True
    return [event for event in newest if event[0] >= floor][:keep], False


def error_summary(line: str) -> str:
    """What went wrong, in words fit for an email: the error's name (KeyError), or the line's opening
    words up to the first detail (a colon, an identifier, a path), which stay in the full line.

    The summary is the one part of a log line that reaches the email, so it is guarded twice: the line
    is redacted again, and the words stop right after a secret's name (a password follows it) and at
    any long token mixing cases or digits (an encoded credential, a card number)."""
    from sources.aws.redact import redact

    line = redact(line)
    if match := _ERROR_NAME.match(line):
        return match["name"]
    words = []
    for word in line.split(":", 1)[0].split():
        if not _PLAIN_WORD.match(word) or _looks_like_token(word):
            break
        words.append(word)
        if len(words) == 8 or _SECRET_WORD.search(word):
            break
    return " ".join(words).rstrip(",;") or "an error without a readable description"


def _looks_like_token(word: str) -> bool:
    """8+ characters with a digit, or with capitals that are not a CamelCase name (AccessDenied):
    not a word a person wrote but an encoded credential (dXNlcjpwYXNz) or a number (a card)."""
    core = word.rstrip(",;")
    return len(core) >= 8 and (any(c.isdigit() for c in core) or not _WRITTEN_WORD.match(core))


def collect_error_lines(clients: Clients, functions: list[dict[str, Any]], start: dt.datetime,
                        end: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """The most recent error lines of each function's log group in the window, newest first per function
    (``lines``), and the functions whose scan stopped at its page budget (``cut_short``): their lines may
    leave out newer errors, and having none does not mean the log was clean."""
    from botocore.exceptions import ClientError

    keep = clients.settings.log_lines_per_function
    if keep == 0:
        return {"lines": [], "cut_short": []}
    rows, cut_short = [], []
    for function in functions:
        client = clients.client("logs", function["region"])
        try:
            found, stopped = newest_error_events(client, f"/aws/lambda/{function['name']}", start, end, keep)
        except ClientError as exc:
            if client_error_code(exc) != "ResourceNotFoundException":
                raise
            continue  # no log group: the function has never run
        if stopped:
            cut_short.append({"function": function["name"], "region": function["region"]})
        for timestamp, message in found:
            moment = dt.datetime.fromtimestamp(timestamp / 1000, dt.UTC)
            line = clean_log_line(message)
            rows.append({"function": function["name"], "region": function["region"],
                         "time": moment.isoformat(timespec="seconds"), "message": line, "summary": error_summary(line)})
    rows.sort(key=lambda r: r["time"], reverse=True)
    lines = sorted(rows, key=lambda r: (r["function"], r["region"]))  # stable: newest first per function
    return {"lines": lines, "cut_short": sorted(cut_short, key=lambda r: (r["function"], r["region"]))}
