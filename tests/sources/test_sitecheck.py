"""The site-check source against real local servers: HTTPS with a certificate made here, plain HTTP.

The certificates are generated in the test with `cryptography` (a CA and a server certificate for
localhost), so every expected figure is known: the expiry date is the one written into the
certificate, the redirect is what the HTTP server answers.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
import time
from pathlib import Path

import pytest

from flows.core.errors import SourceError
from sources.catalogue import REGISTRY
from sources.registry import SourceContext
from sources.sitecheck import gather_site


def context(tmp_path: Path, domains: list[str]) -> SourceContext:
    return SourceContext(tenant_id="solo", tenant_name="Solo", period_start=dt.date(2026, 11, 16),
                         period_end=dt.date(2026, 11, 22), base_dir=tmp_path, tenant_settings={"domains": domains})


def make_certificates(folder: Path, days_valid: int) -> tuple[Path, Path, Path, dt.date]:
    """A CA, and a localhost certificate it signed expiring ``days_valid`` days from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Site check test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    expires = now + dt.timedelta(days=days_valid)
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(expires)
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file, expires.date()


class Servers:
    """An HTTPS server (home page, optionally slow) and an HTTP server (redirecting or not) on 127.0.0.1."""

    def __init__(self, cert_file: Path, key_file: Path, *, redirect: bool, delay: float = 0.0):
        delay_seconds = delay

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's naming)
                time.sleep(delay_seconds)
                body = b"<!doctype html><title>home</title>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        https_port_holder: list[int] = []

        class Plain(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if redirect:
                    self.send_response(301)
                    self.send_header("Location", f"https://localhost:{https_port_holder[0]}/")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert_file, key_file)
        self.https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.https.socket = tls.wrap_socket(self.https.socket, server_side=True)
        https_port_holder.append(self.https.server_address[1])
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self.https, self.http)]
        for thread in self.threads:
            thread.start()

    @property
    def ports(self) -> dict[str, int]:
        return {"https_port": self.https.server_address[1], "http_port": self.http.server_address[1]}

    def stop(self) -> None:
        for server in (self.https, self.http):
            server.shutdown()
            server.server_close()


@pytest.fixture
def servers(tmp_path):
    started: list[Servers] = []

    def start(days_valid: int, *, redirect: bool, delay: float = 0.0):
        ca_file, cert_file, key_file, expires = make_certificates(tmp_path, days_valid)
        made = Servers(cert_file, key_file, redirect=redirect, delay=delay)
        started.append(made)
        return made, ca_file, expires

    yield start
    for made in started:
        made.stop()


def test_a_healthy_site_reports_its_certificate_expiry_redirect_and_response_time(servers, tmp_path):
    made, ca_file, expires = servers(200, redirect=True)
    values = gather_site({**made.ports, "ca_file": str(ca_file), "timeout_seconds": 5}, context(tmp_path, ["localhost"]))
    [row] = values["site.checks"]
    today = dt.datetime.now(dt.UTC).date()
    assert row["domain"] == "localhost" and row["checked_on"] == today
    assert row["tls_expires"] == expires and row["tls_days_left"] == (expires - today).days == 200
    assert row["redirects_to_https"] is True and row["status"] == 200
    assert 0 <= row["response_ms"] < 2000
    assert row["problems"] == "" and values["site.problem_count"] == 0


def test_soon_expiring_untrusted_certificate_slow_page_and_missing_redirect_are_each_named(servers, tmp_path):
    made, ca_file, expires = servers(12, redirect=False, delay=0.3)
    settings = {**made.ports, "ca_file": str(ca_file), "slow_after_ms": 100, "tls_warning_days": 30}
    [row] = gather_site(settings, context(tmp_path, ["localhost"]))["site.checks"]
    assert row["tls_days_left"] == 12 and row["redirects_to_https"] is False
    assert row["response_ms"] >= 300
    assert row["problems"] == (f"the certificate expires in 12 days ({expires:%b %-d, %Y}); "
                               "http:// does not redirect to https://; "
                               f"the home page took {row['response_ms'] / 1000:.1f} s to load")
    # Without the test CA the certificate is not trusted: said so, and its expiry is still read.
    [untrusted] = gather_site({**made.ports, "tls_warning_days": 5}, context(tmp_path, ["localhost"]))["site.checks"]
    assert untrusted["tls_expires"] == expires and untrusted["status"] == 200
    assert "its certificate is not trusted" in untrusted["problems"]


def test_an_unreachable_domain_is_a_row_with_its_reason_and_the_others_are_still_checked(servers, tmp_path):
    made, ca_file, _ = servers(90, redirect=True)
    settings = {**made.ports, "ca_file": str(ca_file), "timeout_seconds": 2}
    values = gather_site(settings, context(tmp_path, ["localhost", "nothing-here.invalid"]))
    rows = {row["domain"]: row for row in values["site.checks"]}
    assert rows["localhost"]["problems"] == ""
    broken = rows["nothing-here.invalid"]
    assert broken["tls_expires"] is None and broken["response_ms"] is None
    assert broken["problems"] == ("https:// could not be reached (the name does not resolve); "
                                  "http:// could not be reached (the name does not resolve)")
    assert values["site.problem_count"] == 1
    # A closed port is a refusal, also a row and not a failure.
    made.stop()
    [closed] = gather_site(settings, context(tmp_path, ["localhost"]))["site.checks"]
    assert "https:// could not be reached" in closed["problems"]


def test_snapshot_rows_are_read_and_judged_like_live_ones(tmp_path):
    (tmp_path / "site.csv").write_text(
        "domain,checked_on,tls_expires,redirects_to_https,response_ms,status,error\n"
        "a.example,2026-11-22,2026-12-04,yes,640,200,\n"
        "b.example,2026-11-22,2027-05-01,no,3450,200,\n"
        "c.example,2026-11-22,,,,,https:// could not be reached (no answer within 5 s)\n", encoding="utf-8")
    values = gather_site({"snapshot": "site.csv"}, context(tmp_path, ["a.example"]))
    rows = {row["domain"]: row for row in values["site.checks"]}
    # Dec 4 is 12 days after Nov 22; 3,450 ms is over the default 2,000 ms.
    assert rows["a.example"]["tls_days_left"] == 12
    assert rows["a.example"]["problems"] == "the certificate expires in 12 days (Dec 4, 2026)"
    assert rows["b.example"]["problems"] == "http:// does not redirect to https://; the home page took 3.5 s to load"
    assert rows["c.example"]["problems"] == "https:// could not be reached (no answer within 5 s)"
    assert values["site.problem_count"] == 3


def test_a_bad_snapshot_cell_names_file_line_column_and_value(tmp_path):
    (tmp_path / "site.csv").write_text(
        "domain,checked_on,tls_expires,redirects_to_https,response_ms,status,error\n"
        "a.example,2026-11-22,2026-12-04,maybe,640,200,\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"site\.csv:2: column 'redirects_to_https': expected yes, no or nothing "
                                          r"\(value 'maybe'\)"):
        gather_site({"snapshot": "site.csv"}, context(tmp_path, []))
    with pytest.raises(SourceError, match=r"sources\.site\.timeout: unknown key \(did you mean 'timeout_seconds'\?\)"):
        gather_site({"timeout": 3}, context(tmp_path, ["a.example"]))


def test_the_site_metrics_are_catalogued():
    assert set(REGISTRY.sources["site"].metrics) == {"site.checks", "site.problem_count"}


def test_sample_site_checks_show_the_expiring_certificate_the_missing_redirect_and_the_slow_page(
        sample_config, sample_period):
    from flows.gather.gather import gather_source

    values = {t.id: gather_source(sample_config, t.id, "site", ["site.checks", "site.problem_count"], sample_period)
              for t in sample_config.tenants}
    # From examples/data/*/site-checks.csv: QueenofSanDiego's certificate ends Dec 4, 12 days after the
    # Nov 22 check; QuickDumpNow's http:// does not redirect and its page took 3,450 ms (> 2,000 ms).
    assert values["queenofsandiego"]["site.checks"][0]["tls_days_left"] == 12
    assert values["quickdumpnow"]["site.checks"][0]["problems"] == (
        "http:// does not redirect to https://; the home page took 3.5 s to load")
    assert {t: v["site.problem_count"] for t, v in values.items()} == {
        "jada": 0, "queenofsandiego": 1, "quickdumpnow": 1, "dangerouscentaur": 0}


# ---- review fixes: overall deadline, no escaping exceptions, plain errors, same-host redirect ----------


class DrippingServer:
    """A raw TCP server (TLS when given a certificate) that answers every connection a byte at a time,
    ``interval`` seconds apart, for up to ``lasts`` seconds: each byte arrives well within the socket
    timeout, so only an overall limit stops the check."""

    def __init__(self, answer: bytes, interval: float, lasts: float, tls: ssl.SSLContext | None = None):
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()

        def serve_one(connection):
            try:
                if tls is not None:
                    connection = tls.wrap_socket(connection, server_side=True)
                connection.recv(65536)  # the request
                ends = time.monotonic() + lasts
                for byte in answer:
                    if self.stopped.is_set() or time.monotonic() > ends:
                        break
                    connection.sendall(bytes([byte]))
                    time.sleep(interval)
            except OSError:
                pass
            finally:
                connection.close()

        def accept():
            while not self.stopped.is_set():
                try:
                    connection, _ = self.listener.accept()
                except OSError:
                    return
                threading.Thread(target=serve_one, args=(connection,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def stop(self):
        self.stopped.set()
        self.listener.close()


def test_a_server_dripping_bytes_is_given_up_on_at_the_domain_deadline(tmp_path):
    # Headers a byte every 0.2 s (timeout 1 s is never hit) on http://; on https:// a TLS server whose
    # headers come at once and whose 5,000-byte body drips. Without an overall limit this runs 20 s.
    ca_file, cert_file, key_file, _ = make_certificates(tmp_path, 200)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    headers = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
    plain = DrippingServer(headers + b"x" * 5000, interval=0.2, lasts=20)
    secure = DrippingServer(headers + b"x" * 5000, interval=0.2, lasts=20, tls=tls)
    try:
        settings = {"https_port": secure.port, "http_port": plain.port, "ca_file": str(ca_file),
                    "timeout_seconds": 1, "domain_deadline_seconds": 2}
        started = time.monotonic()
        [row] = gather_site(settings, context(tmp_path, ["localhost"]))["site.checks"]
        elapsed = time.monotonic() - started
    finally:
        plain.stop()
        secure.stop()
    assert elapsed < 2 + 1.0, elapsed
    assert row["tls_days_left"] == 200 and row["status"] is None
    assert "https:// could not be reached (still no complete answer after 2 s, gave up)" in row["problems"]
    assert "http:// could not be reached (still no complete answer after 2 s, gave up)" in row["problems"]


@pytest.mark.parametrize("bad_name", ["a" * 64 + ".example", ".shop.example", "shop..example"])
def test_a_malformed_domain_is_a_row_and_the_other_domains_are_still_checked(servers, tmp_path, bad_name):
    made, ca_file, _ = servers(90, redirect=True)
    values = gather_site({**made.ports, "ca_file": str(ca_file)}, context(tmp_path, [bad_name, "localhost"]))
    rows = {row["domain"]: row for row in values["site.checks"]}
    assert rows["localhost"]["problems"] == ""
    assert rows[bad_name]["problems"] == "this is not a valid domain name, so it could not be checked"
    assert values["site.problem_count"] == 1


def test_a_value_error_during_a_check_is_a_row_not_a_failed_source(servers, tmp_path, monkeypatch):
    # cryptography raises ValueError on a certificate it cannot parse: forced here on the untrusted path.
    from cryptography import x509

    made, _, _ = servers(90, redirect=True)

    def unreadable(_der):
        raise ValueError("error parsing asn1 value")

    monkeypatch.setattr(x509, "load_der_x509_certificate", unreadable)
    [row] = gather_site({**made.ports}, context(tmp_path, ["localhost"]))["site.checks"]
    assert "https:// could not be reached (the site's certificate could not be read)" in row["problems"]
    assert row["redirects_to_https"] is True


def test_ca_file_is_resolved_from_the_config_folder_and_a_wrong_one_is_a_settings_error(servers, tmp_path):
    made, ca_file, _ = servers(90, redirect=True)
    # Relative to the config's folder (context.base_dir), like every other path in the config.
    [row] = gather_site({**made.ports, "ca_file": ca_file.name}, context(tmp_path, ["localhost"]))["site.checks"]
    assert row["problems"] == ""
    with pytest.raises(SourceError, match=r"tenant 'solo': sources\.site\.ca_file: no such file 'missing\.pem'"):
        gather_site({**made.ports, "ca_file": "missing.pem"}, context(tmp_path, ["localhost"]))
    (tmp_path / "junk.pem").write_text("not a certificate", encoding="utf-8")
    with pytest.raises(SourceError, match=r"sources\.site\.ca_file: 'junk\.pem' .* holds no readable PEM"):
        gather_site({**made.ports, "ca_file": "junk.pem"}, context(tmp_path, ["localhost"]))


def test_connection_failures_are_said_in_plain_words(tmp_path):
    # http:// port: a server that closes without answering; https:// port: plain HTTP where TLS is expected.
    closes = DrippingServer(b"", interval=0, lasts=1)
    speaks_plain = DrippingServer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", interval=0, lasts=1)
    try:
        [row] = gather_site({"https_port": speaks_plain.port, "http_port": closes.port},
                            context(tmp_path, ["localhost"]))["site.checks"]
    finally:
        closes.stop()
        speaks_plain.stop()
    assert row["problems"] == ("https:// could not be reached (the secure connection failed); "
                               "http:// could not be reached (the site closed the connection)")


def test_a_redirect_to_another_host_is_not_a_redirect_to_https(tmp_path):
    def redirecting_to(location: str) -> DrippingServer:
        answer = f"HTTP/1.1 301 Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        return DrippingServer(answer, interval=0, lasts=1)

    elsewhere, www = redirecting_to("https://parked-ads.other/"), redirecting_to("https://www.localhost/")
    try:
        [away] = gather_site({"http_port": elsewhere.port, "https_port": 1}, context(tmp_path, ["localhost"]))[
            "site.checks"]
        [same] = gather_site({"http_port": www.port, "https_port": 1}, context(tmp_path, ["localhost"]))[
            "site.checks"]
    finally:
        elsewhere.stop()
        www.stop()
    assert away["redirects_to_https"] is False
    assert "http:// does not redirect to https://" in away["problems"]
    assert "http:// sends visitors to another site (parked-ads.other)" in away["problems"]
    # Adding www. is the same site.
    assert same["redirects_to_https"] is True and "redirect" not in same["problems"]
