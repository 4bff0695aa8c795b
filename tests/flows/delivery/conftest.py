"""Real servers for delivery tests: moto (SES, S3, Secrets Manager over HTTP) and aiosmtpd with
STARTTLS and AUTH, plus helpers to write a portfolio config with a given delivery block."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import socket
import ssl
import urllib.request
import uuid
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path

import boto3
import pytest
import yaml

from flows.core.config import load_config

REGION = "us-east-1"
SENDER = "reports@holdings.example"


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_url(moto_server, monkeypatch):
    """A clean moto state per test, and dummy credentials for every client the code builds itself."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "SES_REGION", "SES_FROM_ADDRESS", "SES_TO_ADDRESS",
                     "SES_BCC_ADDRESS", "SES_CONFIGURATION_SET", "SES_MAX_SEND_RATE", "SES_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    return moto_server


def aws_client(service: str, url: str):
    return boto3.client(service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def moto_sent_raw_messages(url: str) -> list[dict]:
    """What SES accepted, read back from moto's state dump (a real HTTP round trip)."""
    with urllib.request.urlopen(f"{url}/moto-api/data.json") as response:
        data = json.load(response)
    return data.get("ses", {}).get("RawMessage", [])


def parse_mime(raw: bytes | str):
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return BytesParser(policy=policy.default).parsebytes(raw)


def write_config(portfolio_copy: Path, delivery: dict, recipients: dict | None = None) -> Path:
    """The sample portfolio with its delivery block (and optionally recipients) replaced."""
    data = yaml.safe_load(portfolio_copy.read_text())
    data["delivery"] = {"outbox_dir": "../outbox", **delivery}
    if recipients is not None:
        data["recipients"] = recipients
    portfolio_copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return portfolio_copy


def load(path: Path):
    return load_config(path)


# ---- SMTP ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made fresh for this test session."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    authenticated: bool
    over_tls: bool


@dataclass
class SmtpServer:
    host: str
    port: int
    username: str
    password: str
    ca_file: str
    received: list[Received] = field(default_factory=list)
    # Replies to give to the next DATA commands instead of accepting, e.g. "451 4.3.0 try later".
    data_replies: list[str] = field(default_factory=list)
    login_attempts: int = 0


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, smtp_server, session, envelope):
        if self.server.data_replies:
            return self.server.data_replies.pop(0)
        self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                             bool(session.authenticated), session.ssl is not None))
        return "250 2.0.0 OK queued"


@pytest.fixture
def smtp_server(tls_files):
    """aiosmtpd on 127.0.0.1 requiring STARTTLS before AUTH, with a per-test random password."""
    import secrets

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert_path, key_path = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    state = SmtpServer("127.0.0.1", free_port(), "reports-relay", f"pw-{secrets.token_hex(12)}", str(cert_path))

    def authenticate(server, session, envelope, mechanism, auth_data):
        state.login_attempts += 1
        ok = (auth_data.login.decode(), auth_data.password.decode()) == (state.username, state.password)
        return AuthResult(success=ok, handled=False)

    controller = Controller(_Handler(state), hostname=state.host, port=state.port, tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True, auth_required=True,
                            auth_exclude_mechanism=["CRAM-MD5"])
    # The server's own chatter is not under test, and once Prefect's console handler is installed it
    # would be written to streams pytest has already closed.
    server_log = logging.getLogger("mail.log")
    previous_level = server_log.level
    server_log.setLevel(logging.ERROR)
    controller.start()
    yield state
    controller.stop()
    server_log.setLevel(previous_level)


# ---- PostgreSQL --------------------------------------------------------------------------------------


@pytest.fixture
def postgres_dsn():
    import psycopg

    admin = os.environ.get("EXEC_REPORTS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"exec_reports_records_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {admin}: {exc}")
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
