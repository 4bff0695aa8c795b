"""The trigger tests' keys and handler environment (RS256 with a public key file)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flows.trigger import handler as handler_module

ISSUER = "https://auth.holdings.example/"
AUDIENCE = "exec-reports"
DEPLOYMENT = "send-exec-reports/handler-test"


@pytest.fixture(scope="module")
def rsa_keys():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"private": private, "other": other, "public_pem": public_pem}


@pytest.fixture
def rs256_env(rsa_keys, tmp_path, monkeypatch):
    key_file = tmp_path / "public.pem"
    key_file.write_bytes(rsa_keys["public_pem"])
    monkeypatch.setattr(handler_module, "_VERIFIERS", {})
    for name in ("EXEC_REPORTS_JWT_JWKS_FILE", "EXEC_REPORTS_JWT_HS256_SECRET_ID", "EXEC_REPORTS_HANDLER_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXEC_REPORTS_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("EXEC_REPORTS_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("EXEC_REPORTS_JWT_PUBLIC_KEY_FILE", str(key_file))
    monkeypatch.setenv("EXEC_REPORTS_DEPLOYMENT", DEPLOYMENT)
