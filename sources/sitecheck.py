"""Site checks: what a visitor of each of the tenant's domains meets before the first page.

For every domain in the tenant's ``domains``: when its TLS certificate expires, whether http://
redirects to https://, and how long the home page takes to answer. Live mode connects for real
(socket, ssl, http.client, short timeouts); a domain that cannot be checked becomes a row saying
why, never a failed source. Snapshot mode reads the same rows from a CSV file (the sample's
domains are reserved .example names that cannot be reached).

Settings (``tenants[i].sources.site``): see ``KNOWN_KEYS``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext, reject_unknown_keys
from sources.tabular import read_csv_rows

if TYPE_CHECKING:
    import ssl

# socket, ssl and http.client are imported where the checks run: importing the sources stays cheap.

KNOWN_KEYS = {
    "snapshot": "CSV file of earlier checks to read instead of checking live (columns: domain, checked_on, "
                "tls_expires, redirects_to_https, response_ms, status, error)",
    "timeout_seconds": "how long to wait for each connection and answer (default 5)",
    "slow_after_ms": "a home page answering slower than this is a problem (default 2000)",
    "tls_warning_days": "a certificate expiring within this many days is a problem (default 30)",
    "http_port": "port of the plain-HTTP check (default 80)",
    "https_port": "port of the TLS and home-page checks (default 443)",
    "ca_file": "PEM file of extra certificate authorities to trust (an internal CA)",
}
SNAPSHOT_COLUMNS = ["domain", "checked_on", "tls_expires", "redirects_to_https", "response_ms", "status", "error"]
BODY_LIMIT = 2_000_000  # bytes of the home page read for the timing; enough for any real first page
REDIRECTS = (301, 302, 303, 307, 308)

METRICS = [
    MetricSpec("site.checks", "Each of the tenant's domains as a visitor meets it (rows: domain, checked_on, "
               "tls_expires, tls_days_left, redirects_to_https, response_ms, status, problems = plain-language "
               "list, empty when all is well).", "table"),
    MetricSpec("site.problem_count", "Domains with at least one problem: certificate expiring soon or not "
               "trusted, no http-to-https redirect, slow or failing home page, or unreachable.", "number"),
]


@REGISTRY.register("site", "Site checks per domain: TLS certificate expiry, HTTP-to-HTTPS redirect, home page "
                           "response time.", METRICS)
def gather_site(raw: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    settings = parse_settings(raw, context.tenant_id)
    if settings["snapshot"]:
        rows = read_snapshot(context.resolve(settings["snapshot"]))
    else:
        domains = [str(d).strip().lower().rstrip(".") for d in context.tenant_settings.get("domains") or []]
        if not domains:
            raise SourceError(f"tenant '{context.tenant_id}': the site source needs the tenant's `domains`")
        rows = [check_domain(domain, settings) for domain in domains]
    checks = [judge(row, settings) for row in rows]
    return {"site.checks": checks, "site.problem_count": sum(1 for row in checks if row["problems"])}


def parse_settings(raw: Mapping[str, Any], tenant_id: str) -> dict[str, Any]:
    where = f"tenant '{tenant_id}': sources.site"
    reject_unknown_keys(raw, KNOWN_KEYS, where)

    def number(key: str, default: float, low: float, high: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise SourceError(f"{where}.{key}: expected a number from {low:g} to {high:g}, got {value!r}")
        return value

    for key in ("snapshot", "ca_file"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise SourceError(f"{where}.{key}: expected a file path, got {raw[key]!r}")
    return {
        "snapshot": raw.get("snapshot"),
        "timeout": number("timeout_seconds", 5, 0.1, 60),
        "slow_after_ms": number("slow_after_ms", 2000, 1, 600_000),
        "tls_warning_days": int(number("tls_warning_days", 30, 0, 365)),
        "http_port": int(number("http_port", 80, 1, 65535)),
        "https_port": int(number("https_port", 443, 1, 65535)),
        "ca_file": raw.get("ca_file"),
    }


# ---- live checks -----------------------------------------------------------------------------------


def check_domain(domain: str, settings: Mapping[str, Any], today: dt.date | None = None) -> dict[str, Any]:
    """One row for one domain. Every network failure becomes the row's error, in plain words."""
    import http.client
    import ssl
    row: dict[str, Any] = {"domain": domain, "checked_on": today or dt.datetime.now(dt.UTC).date(),
                           "tls_expires": None, "redirects_to_https": None, "response_ms": None, "status": None,
                           "error": ""}
    errors = []
    trusted = _context(settings)
    try:
        row["tls_expires"], untrusted_reason = _certificate_expiry(domain, settings, trusted)
        if untrusted_reason:
            errors.append(f"its certificate is not trusted ({untrusted_reason})")
        page_context = trusted if not untrusted_reason else _unverified()
        row["status"], row["response_ms"] = _time_home_page(domain, settings, page_context)
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        errors.append(f"https:// could not be reached ({_plain(exc, settings)})")
    try:
        row["redirects_to_https"] = _redirects_to_https(domain, settings)
    except (OSError, http.client.HTTPException) as exc:
        row["redirects_to_https"] = False
        errors.append(f"http:// could not be reached ({_plain(exc, settings)})")
    row["error"] = "; ".join(errors)
    return row


def _context(settings: Mapping[str, Any]) -> ssl.SSLContext:
    import ssl

    context = ssl.create_default_context()
    if settings.get("ca_file"):
        context.load_verify_locations(cafile=settings["ca_file"])
    return context


def _unverified() -> ssl.SSLContext:
    import ssl

    # Only to read an untrusted certificate's dates and time the page; the row already says "not trusted".
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _certificate_expiry(domain: str, settings: Mapping[str, Any],
                        context: ssl.SSLContext) -> tuple[dt.date | None, str]:
    """(expiry date, reason the certificate is not trusted or "")."""
    import socket
    import ssl

    address = (domain, settings["https_port"])
    try:
        with socket.create_connection(address, timeout=settings["timeout"]) as raw, \
                context.wrap_socket(raw, server_hostname=domain) as tls:
            not_after = tls.getpeercert()["notAfter"]
            return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC).date(), ""
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or "verification failed"
    with socket.create_connection(address, timeout=settings["timeout"]) as raw, \
            _unverified().wrap_socket(raw, server_hostname=domain) as tls:
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc.date(), reason


def _time_home_page(domain: str, settings: Mapping[str, Any], context: ssl.SSLContext) -> tuple[int, int]:
    """Status and milliseconds from connecting to the last byte of the home page (redirects not followed)."""
    import http.client

    started = time.perf_counter()
    connection = http.client.HTTPSConnection(domain, settings["https_port"], timeout=settings["timeout"],
                                             context=context)
    try:
        connection.request("GET", "/", headers={"User-Agent": "exec-reports site check"})
        response = connection.getresponse()
        response.read(BODY_LIMIT)
        return response.status, round((time.perf_counter() - started) * 1000)
    finally:
        connection.close()


def _redirects_to_https(domain: str, settings: Mapping[str, Any]) -> bool:
    import http.client

    connection = http.client.HTTPConnection(domain, settings["http_port"], timeout=settings["timeout"])
    try:
        connection.request("GET", "/", headers={"User-Agent": "exec-reports site check"})
        response = connection.getresponse()
        location = response.getheader("Location") or ""
        return response.status in REDIRECTS and location.lower().startswith("https://")
    finally:
        connection.close()


def _plain(exc: BaseException, settings: Mapping[str, Any]) -> str:
    import socket
    import ssl

    if isinstance(exc, socket.gaierror):
        return "the name does not resolve"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within {settings['timeout']:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or type(exc).__name__}"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


# ---- snapshot -------------------------------------------------------------------------------------


def read_snapshot(path: Path) -> list[dict[str, Any]]:
    return [_snapshot_row(path, line, raw) for line, raw in read_csv_rows(path, SNAPSHOT_COLUMNS)]


def _snapshot_row(path: Path, line: int, raw: Mapping[str, str]) -> dict[str, Any]:
    def bad(column: str, expected: str) -> SourceError:
        return SourceError(f"{path}:{line}: column '{column}': expected {expected} (value {raw[column]!r})")

    def date(column: str, required: bool) -> dt.date | None:
        if not raw[column]:
            if required:
                raise bad(column, "a date YYYY-MM-DD")
            return None
        try:
            return dt.date.fromisoformat(raw[column])
        except ValueError:
            raise bad(column, "a date YYYY-MM-DD") from None

    def whole(column: str) -> int | None:
        if not raw[column]:
            return None
        if not raw[column].isdigit():
            raise bad(column, "a whole number or nothing")
        return int(raw[column])

    redirect = raw["redirects_to_https"].lower()
    if redirect not in ("yes", "no", ""):
        raise bad("redirects_to_https", "yes, no or nothing")
    if not raw["domain"]:
        raise bad("domain", "a domain name")
    return {"domain": raw["domain"].lower(), "checked_on": date("checked_on", True),
            "tls_expires": date("tls_expires", False),
            "redirects_to_https": None if not redirect else redirect == "yes",
            "response_ms": whole("response_ms"), "status": whole("status"), "error": raw["error"]}


# ---- judging -------------------------------------------------------------------------------------


def judge(row: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The row as the metric carries it: days the certificate has left, and the problems in plain words."""
    days_left = (row["tls_expires"] - row["checked_on"]).days if row["tls_expires"] else None
    problems = []
    if days_left is not None and days_left < 0:
        problems.append(f"the certificate expired on {row['tls_expires']:%b %-d, %Y}")
    elif days_left is not None and days_left <= settings["tls_warning_days"]:
        problems.append(f"the certificate expires in {days_left} day{'s' if days_left != 1 else ''} "
                        f"({row['tls_expires']:%b %-d, %Y})")
    if row["redirects_to_https"] is False and "http:// could not" not in row["error"]:
        problems.append("http:// does not redirect to https://")
    if row["status"] is not None and row["status"] >= 400:
        problems.append(f"the home page answers with error {row['status']}")
    elif row["response_ms"] is not None and row["response_ms"] > settings["slow_after_ms"]:
        problems.append(f"the home page took {row['response_ms'] / 1000:.1f} s to load")
    if row["error"]:
        problems.append(row["error"])
    return {"domain": row["domain"], "checked_on": row["checked_on"], "tls_expires": row["tls_expires"],
            "tls_days_left": days_left, "redirects_to_https": row["redirects_to_https"],
            "response_ms": row["response_ms"], "status": row["status"], "problems": "; ".join(problems)}
