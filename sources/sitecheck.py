"""Site checks: what a visitor of each of the tenant's domains meets before the first page.

For every domain in the tenant's ``domains``: when its TLS certificate expires, whether http://
redirects to https://, and how long the home page takes to answer. Live mode connects for real
(socket, ssl, http.client, short timeouts, and an overall limit per domain so a server that answers a
byte at a time cannot hold up the tenant's other domains); a domain that cannot be checked becomes a row
saying why in plain words (the technical detail goes to the log), never a failed source. Snapshot mode reads the same rows from a CSV file (the sample's
domains are reserved .example names that cannot be reached).

Settings (``tenants[i].sources.site``): see ``KNOWN_KEYS``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sources.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext, reject_unknown_keys
from sources.tabular import read_csv_rows

if TYPE_CHECKING:
    import ssl

LOG = logging.getLogger(__name__)

# socket, ssl and http.client are imported where the checks run: importing the sources stays cheap.

KNOWN_KEYS = {
    "snapshot": "CSV file of earlier checks to read instead of checking live (columns: domain, checked_on, "
                "tls_expires, redirects_to_https, response_ms, status, error)",
    "timeout_seconds": "how long to wait for each connection and answer (default 5)",
    "domain_deadline_seconds": "most time spent on one domain, all its checks together; a server still "
                               "answering by then is given up on (default 30)",
    "slow_after_ms": "a home page answering slower than this is a problem (default 2000)",
    "tls_warning_days": "a certificate expiring within this many days is a problem (default 30)",
    "http_port": "port of the plain-HTTP check (default 80)",
    "https_port": "port of the TLS and home-page checks (default 443)",
    "ca_file": "PEM file of extra certificate authorities to trust (an internal CA)",
}
SNAPSHOT_COLUMNS = ["domain", "checked_on", "tls_expires", "redirects_to_https", "response_ms", "status", "error"]
BODY_LIMIT = 2_000_000  # bytes of the home page read for the timing; enough for any real first page
READ_CHUNK = 65_536
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
    settings = parse_settings(raw, context)
    if settings["snapshot"]:
        rows = read_snapshot(context.resolve(settings["snapshot"]))
    else:
        domains = [str(d).strip().lower().rstrip(".") for d in context.tenant_settings.get("domains") or []]
        if not domains:
            raise SourceError(f"tenant '{context.tenant_id}': the site source needs the tenant's `domains`")
        rows = [check_domain(domain, settings) for domain in domains]
    checks = [judge(row, settings) for row in rows]
    return {"site.checks": checks, "site.problem_count": sum(1 for row in checks if row["problems"])}


def parse_settings(raw: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    where = f"tenant '{context.tenant_id}': sources.site"
    reject_unknown_keys(raw, KNOWN_KEYS, where)

    def number(key: str, default: float, low: float, high: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise SourceError(f"{where}.{key}: expected a number from {low:g} to {high:g}, got {value!r}")
        return value

    for key in ("snapshot", "ca_file"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise SourceError(f"{where}.{key}: expected a file path, got {raw[key]!r}")
    ca_file = None
    if raw.get("ca_file"):
        # Checked once here: a wrong path is a configuration mistake to fix, not a network hiccup to retry.
        ca_file = context.resolve(raw["ca_file"])
        if not ca_file.is_file():
            raise SourceError(f"{where}.ca_file: no such file {raw['ca_file']!r} (looked for {ca_file})")
        import ssl

        try:
            ssl.create_default_context().load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(f"{where}.ca_file: {raw['ca_file']!r} ({ca_file}) holds no readable PEM "
                              f"certificates ({exc})") from None
    return {
        "snapshot": raw.get("snapshot"),
        "timeout": number("timeout_seconds", 5, 0.1, 60),
        "deadline": number("domain_deadline_seconds", 30, 0.5, 600),
        "slow_after_ms": number("slow_after_ms", 2000, 1, 600_000),
        "tls_warning_days": int(number("tls_warning_days", 30, 0, 365)),
        "http_port": int(number("http_port", 80, 1, 65535)),
        "https_port": int(number("https_port", 443, 1, 65535)),
        "ca_file": str(ca_file) if ca_file else None,
    }


# ---- live checks -----------------------------------------------------------------------------------


def check_domain(domain: str, settings: Mapping[str, Any], today: dt.date | None = None) -> dict[str, Any]:
    """One row for one domain. Every failure becomes the row's error, in plain words; the technical
    detail is logged for the operator. All checks of the domain together stop at the domain's deadline."""
    import http.client
    import ssl
    row: dict[str, Any] = {"domain": domain, "checked_on": today or dt.datetime.now(dt.UTC).date(),
                           "tls_expires": None, "redirects_to_https": None, "response_ms": None, "status": None,
                           "error": ""}
    if not _valid_domain_name(domain):
        row["error"] = "this is not a valid domain name, so it could not be checked"
        return row
    errors = []
    deadline = _Deadline(settings["deadline"], settings["timeout"])
    # ValueError: a name the IDNA codec refuses, a certificate cryptography cannot parse.
    failures = (OSError, ssl.SSLError, http.client.HTTPException, ValueError)
    try:
        row["tls_expires"], untrusted_reason = _certificate_expiry(domain, settings, deadline)
        if untrusted_reason is not None:
            errors.append(f"its certificate is not trusted{untrusted_reason}")
        page_context = _context(settings["ca_file"]) if untrusted_reason is None else _unverified()
        row["status"], row["response_ms"] = _time_home_page(domain, settings, page_context, deadline)
    except failures as exc:
        errors.append(f"https:// could not be reached ({_plain(exc, settings, domain, 'https', deadline)})")
    try:
        row["redirects_to_https"], elsewhere = _redirects_to_https(domain, settings, deadline)
        if elsewhere:
            errors.append(f"http:// sends visitors to another site ({elsewhere})")
    except failures as exc:
        row["redirects_to_https"] = False
        errors.append(f"http:// could not be reached ({_plain(exc, settings, domain, 'http', deadline)})")
    row["error"] = "; ".join(errors)
    return row


def _valid_domain_name(domain: str) -> bool:
    labels = domain.split(".")
    return bool(domain) and len(domain) <= 253 and all(0 < len(label) <= 63 for label in labels)


class DeadlineExceeded(TimeoutError):
    """The domain's overall time is used up (each socket operation only has its own timeout)."""


class _Deadline:
    def __init__(self, seconds: float, per_operation: float):
        self.seconds = seconds
        self.per_operation = per_operation
        self.ends = time.monotonic() + seconds

    def used_up(self) -> bool:
        return time.monotonic() >= self.ends

    def timeout(self) -> float:
        """The socket timeout for the next operation: the per-operation timeout or the time left."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"gave up after {self.seconds:g} s")
        return min(self.per_operation, left)


@functools.cache
def _socket_classes() -> tuple[type, type]:
    """Sockets that set their timeout to the time left before every read and write. A plain timeout
    restarts with every byte, so a server dripping a byte every few seconds would never time out."""
    import socket
    import ssl

    class DeadlineMixin:
        """Sets the socket's timeout to the time the deadline leaves before every read and write."""

        deadline: _Deadline | None = None

        def _tick(self) -> None:
            if self.deadline is not None:
                self.settimeout(self.deadline.timeout())

        def recv(self, *args, **kwargs):
            self._tick()
            return super().recv(*args, **kwargs)

        def recv_into(self, *args, **kwargs):
            self._tick()
            return super().recv_into(*args, **kwargs)

        def sendall(self, *args, **kwargs):
            self._tick()
            return super().sendall(*args, **kwargs)

    class DeadlineSocket(DeadlineMixin, socket.socket):
        pass

    class DeadlineSSLSocket(DeadlineMixin, ssl.SSLSocket):
        pass

    return DeadlineSocket, DeadlineSSLSocket


def _connect(host: str, port: int, deadline: _Deadline, context: ssl.SSLContext | None = None):
    """A connected socket (TLS-wrapped when ``context`` is given) whose every operation respects ``deadline``."""
    import socket

    plain_class, _ = _socket_classes()
    error: OSError | None = None
    for family, kind, proto, _name, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = plain_class(family, kind, proto)
        try:
            sock.settimeout(deadline.timeout())
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        if context is None:
            sock.deadline = deadline
            return sock
        try:
            sock.settimeout(deadline.timeout())  # the handshake as a whole gets the time left
            tls = context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        tls.deadline = deadline
        return tls
    raise error or OSError(f"no address for {host}")


@functools.cache
def _context(ca_file: str | None) -> ssl.SSLContext:
    import ssl

    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.sslsocket_class = _socket_classes()[1]
    return context


def _unverified() -> ssl.SSLContext:
    import ssl

    # Only to read an untrusted certificate's dates and time the page; the row already says "not trusted".
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _socket_classes()[1]
    return context


UNTRUSTED_REASONS = [  # OpenSSL's verify message -> plain words
    ("expired", "it has expired"),
    ("self-signed", "it is self-signed"),
    ("self signed", "it is self-signed"),
    ("local issuer", "it was issued by an authority browsers do not know"),
    ("hostname mismatch", "it was issued for a different name"),
    ("not yet valid", "it is not valid yet"),
    ("revoked", "it has been revoked"),
]


def _certificate_expiry(domain: str, settings: Mapping[str, Any],
                        deadline: _Deadline) -> tuple[dt.date | None, str | None]:
    """(expiry date, None when trusted, else " (plain reason)" or "")."""
    import ssl

    address = (domain, settings["https_port"])
    try:
        with _connect(*address, deadline, _context(settings["ca_file"])) as tls:
            not_after = tls.getpeercert()["notAfter"]
            return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC).date(), None
    except ssl.SSLCertVerificationError as exc:
        message = (exc.verify_message or "").lower()
        LOG.info("site check %s: certificate not trusted: %s", domain, exc.verify_message or exc)
        reason = next((f" ({plain})" for key, plain in UNTRUSTED_REASONS if key in message), "")
    with _connect(*address, deadline, _unverified()) as tls:
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc.date(), reason


def _http_connection(domain: str, port: int, deadline: _Deadline, context: ssl.SSLContext | None):
    """An http.client connection (HTTPS when ``context`` is given) that connects through ``_connect``, so the
    deadline covers every read of the answer."""
    import http.client

    base = http.client.HTTPSConnection if context is not None else http.client.HTTPConnection

    class Connection(base):  # type: ignore[misc, valid-type]
        def connect(self):
            self.sock = _connect(self.host, self.port, deadline, context)

    return Connection(domain, port, context=context) if context is not None else Connection(domain, port)


def _time_home_page(domain: str, settings: Mapping[str, Any], context: ssl.SSLContext,
                    deadline: _Deadline) -> tuple[int, int]:
    """Status and milliseconds from connecting to the last byte of the home page (redirects not followed)."""
    started = time.perf_counter()
    connection = _http_connection(domain, settings["https_port"], deadline, context)
    try:
        connection.request("GET", "/", headers={"User-Agent": "exec-reports site check"})
        response = connection.getresponse()
        read = 0
        while read < BODY_LIMIT:  # in chunks: each read is bounded by the time left
            chunk = response.read1(min(READ_CHUNK, BODY_LIMIT - read))
            if not chunk:
                break
            read += len(chunk)
        return response.status, round((time.perf_counter() - started) * 1000)
    finally:
        connection.close()


def _same_site(domain: str, host: str) -> bool:
    """``host`` is ``domain`` itself, or differs only by a leading ``www.``."""
    def bare(name: str) -> str:
        name = name.lower().rstrip(".")
        return name[4:] if name.startswith("www.") else name

    return bare(domain) == bare(host)


def _redirects_to_https(domain: str, settings: Mapping[str, Any], deadline: _Deadline) -> tuple[bool, str]:
    """(redirects to https:// on the same site, the other host when it sends visitors elsewhere or "")."""
    connection = _http_connection(domain, settings["http_port"], deadline, None)
    try:
        connection.request("GET", "/", headers={"User-Agent": "exec-reports site check"})
        response = connection.getresponse()
        if response.status not in REDIRECTS:
            return False, ""
        target = urllib.parse.urlsplit((response.getheader("Location") or "").strip())
        host = target.hostname or ""
        if host and not _same_site(domain, host):
            return False, host
        return target.scheme.lower() == "https" and bool(host), ""
    finally:
        connection.close()


def _plain(exc: BaseException, settings: Mapping[str, Any], domain: str, scheme: str, deadline: _Deadline) -> str:
    """The failure in words a reader of the email understands; the technical text goes to the log."""
    import http.client
    import socket
    import ssl

    LOG.info("site check %s (%s): %s: %s", domain, scheme, type(exc).__name__, exc)
    # A socket timeout cut short to the time left is the deadline, not a silent server.
    if isinstance(exc, DeadlineExceeded) or (isinstance(exc, TimeoutError | socket.timeout) and deadline.used_up()):
        return f"still no complete answer after {settings['deadline']:g} s, gave up"
    if isinstance(exc, socket.gaierror):
        return "the name does not resolve"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within {settings['timeout']:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, ssl.SSLError):
        return "the secure connection failed"
    if isinstance(exc, http.client.RemoteDisconnected | http.client.IncompleteRead | ConnectionResetError
                   | ConnectionAbortedError | BrokenPipeError):
        return "the site closed the connection"
    if isinstance(exc, http.client.HTTPException):
        return "the site's answer could not be understood"
    if isinstance(exc, UnicodeError):
        return "this is not a valid domain name"
    if isinstance(exc, ValueError):
        return "the site's certificate could not be read"
    return "the connection failed"


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
