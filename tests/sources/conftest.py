"""A moto server shared by the AWS source tests: real HTTP on 127.0.0.1, reset before each test."""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    # The server logs one line per request: noise in every failure report.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_api(endpoint: str, path: str, body: bytes | dict | None = b"") -> None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    # A form content type would make the server parse the body away from reset-auth's plain number.
    content_type = "application/json" if isinstance(body, dict) else "text/plain"
    request = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=data, method="POST",
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201), response.status


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """A clean moto account world per test, reached through the default credential chain."""
    moto_api(moto_endpoint, "reset")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    return moto_endpoint
