"""Bearer-token (JWT) checks for the trigger API.

One algorithm per configuration, pinned: RS256 with a public key (PEM or JWKS file) or HS256 with a
shared secret. ``alg: none`` and algorithm confusion (an RS256 public key used as an HS256 secret)
are refused because the accepted algorithm never comes from the token itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from flows.core.errors import ConfigurationError, ReportError

ALL = "*"
NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")
DEFAULT_LEEWAY_SECONDS = 30
MAX_LEEWAY_SECONDS = 300


class AuthenticationError(ReportError):
    """No token, or a token that is not valid: HTTP 401."""


class PermissionDenied(ReportError):
    """A valid token whose claims do not allow what was asked: HTTP 403."""


@dataclass(frozen=True)
class TokenVerifier:
    algorithm: str  # "RS256" | "HS256"
    keys: tuple[Any, ...]  # RSA public keys, or the HMAC secret
    issuer: str
    audience: str
    # Clock difference tolerated on exp/nbf/iat between the token issuer and this handler.
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS

    @classmethod
    def rs256_from_pem(cls, pem: str | bytes, *, issuer: str, audience: str) -> TokenVerifier:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            key = load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
        except ValueError as exc:
            raise ConfigurationError(f"the RS256 public key is not a PEM public key: {exc}") from None
        return cls("RS256", (key,), issuer, audience)

    @classmethod
    def rs256_from_jwks(cls, jwks: Mapping[str, Any], *, issuer: str, audience: str) -> TokenVerifier:
        keys = []
        for entry in jwks.get("keys", []):
            if entry.get("kty") == "RSA" and entry.get("use", "sig") == "sig":
                keys.append(jwt.PyJWK(entry, algorithm="RS256"))
        if not keys:
            raise ConfigurationError("the JWKS holds no RSA signing key")
        return cls("RS256", tuple(keys), issuer, audience)

    @classmethod
    def hs256(cls, secret: str, *, issuer: str, audience: str) -> TokenVerifier:
        if len(secret.encode()) < 32:
            raise ConfigurationError("the HS256 secret must be at least 32 bytes")
        return cls("HS256", (secret,), issuer, audience)

    def verify(self, authorization: str | None) -> dict[str, Any]:
        if not isinstance(authorization, str | None):
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        if not authorization:
            raise AuthenticationError("missing Authorization header (expected 'Bearer <token>')")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("the token is not a JWT") from None
        if header.get("alg") != self.algorithm:
            raise AuthenticationError(f"token algorithm {header.get('alg')!r} is not accepted")
        last_error: Exception | None = None
        for key in self._candidate_keys(header):
            try:
                claims = jwt.decode(
                    token, key.key if isinstance(key, jwt.PyJWK) else key, algorithms=[self.algorithm],
                    audience=self.audience, issuer=self.issuer, leeway=self.leeway_seconds,
                    options={"require": ["exp", "iss", "aud"]})
                for what in ("roles", "tenants"):
                    claim_values(claims, what)  # a malformed scope claim is an invalid token, not a 500
                for what in NUMERIC_DATE_CLAIMS:
                    # PyJWT reads "exp": "1900000000" as a number; RFC 7519 says a NumericDate is a number.
                    if what in claims and (not isinstance(claims[what], int | float) or isinstance(claims[what], bool)):
                        raise AuthenticationError(f"the token's '{what}' claim must be a number of seconds")
                return claims
            except jwt.InvalidSignatureError as exc:
                last_error = exc
            except jwt.ExpiredSignatureError:
                raise AuthenticationError("the token has expired") from None
            except jwt.InvalidAudienceError:
                raise AuthenticationError("the token is not meant for this audience") from None
            except jwt.InvalidIssuerError:
                raise AuthenticationError("the token comes from an issuer that is not trusted") from None
            except jwt.MissingRequiredClaimError as exc:
                raise AuthenticationError(f"the token lacks the '{exc.claim}' claim") from None
            except jwt.PyJWTError as exc:
                raise AuthenticationError(f"the token is not valid: {type(exc).__name__}") from None
        raise AuthenticationError("the token signature is not valid") from last_error

    def _candidate_keys(self, header: Mapping[str, Any]) -> Iterable[Any]:
        kid = header.get("kid")
        keyed = [k for k in self.keys if isinstance(k, jwt.PyJWK) and kid and k.key_id == kid]
        return keyed or self.keys


def leeway_seconds(environ: Mapping[str, str]) -> int:
    """EXEC_REPORTS_JWT_LEEWAY_SECONDS: whole seconds of clock difference tolerated (default 30)."""
    raw = environ.get("EXEC_REPORTS_JWT_LEEWAY_SECONDS", "").strip()
    if not raw:
        return DEFAULT_LEEWAY_SECONDS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_LEEWAY_SECONDS:
        raise ConfigurationError(f"EXEC_REPORTS_JWT_LEEWAY_SECONDS must be a whole number of seconds from 0 to "
                                 f"{MAX_LEEWAY_SECONDS}, got {raw!r}")
    return value


def load_verifier(environ: Mapping[str, str], *, read_secret=None) -> TokenVerifier:
    """From the handler's environment; ``read_secret(secret_id) -> str`` fetches the HS256 secret."""
    from dataclasses import replace

    verifier = _load_verifier(environ, read_secret=read_secret)
    return replace(verifier, leeway_seconds=leeway_seconds(environ))


def _load_verifier(environ: Mapping[str, str], *, read_secret=None) -> TokenVerifier:
    issuer = environ.get("EXEC_REPORTS_JWT_ISSUER")
    audience = environ.get("EXEC_REPORTS_JWT_AUDIENCE")
    if not issuer or not audience:
        raise ConfigurationError("set EXEC_REPORTS_JWT_ISSUER and EXEC_REPORTS_JWT_AUDIENCE for the trigger API")
    if path := environ.get("EXEC_REPORTS_JWT_JWKS_FILE"):
        return TokenVerifier.rs256_from_jwks(json.loads(Path(path).read_text()), issuer=issuer, audience=audience)
    if path := environ.get("EXEC_REPORTS_JWT_PUBLIC_KEY_FILE"):
        return TokenVerifier.rs256_from_pem(Path(path).read_bytes(), issuer=issuer, audience=audience)
    if secret_id := environ.get("EXEC_REPORTS_JWT_HS256_SECRET_ID"):
        if read_secret is None:
            raise ConfigurationError("HS256 needs a secret reader")
        return TokenVerifier.hs256(read_secret(secret_id), issuer=issuer, audience=audience)
    raise ConfigurationError("set one of EXEC_REPORTS_JWT_JWKS_FILE, EXEC_REPORTS_JWT_PUBLIC_KEY_FILE (RS256) or "
                             "EXEC_REPORTS_JWT_HS256_SECRET_ID (HS256, a Secrets Manager secret id)")


def claim_values(claims: Mapping[str, Any], what: str) -> list[str]:
    """The ``roles`` or ``tenants`` claim as a list of strings: absent is none, one string is one.
    Any other shape (a number, an object, a nested list) is an invalid token."""
    allowed = claims.get(what)
    if allowed is None:
        return []
    if isinstance(allowed, str):
        return [allowed]
    if isinstance(allowed, list) and all(isinstance(item, str) for item in allowed):
        return list(allowed)
    raise AuthenticationError(f"the token's '{what}' claim must be a string or a list of strings")


def scope_of(claims: Mapping[str, Any], what: str) -> set[str] | None:
    """What the token allows for ``what`` ("roles" or "tenants"): None for everything."""
    allowed = claim_values(claims, what)
    return None if ALL in allowed else set(allowed)


def authorise(claims: Mapping[str, Any], roles: list[str] | None, tenants: list[str] | None) -> None:
    """The ``roles`` and ``tenants`` claims list what the caller may trigger ("*" for everything);
    asking for all roles or all tenants needs "*"."""
    for what, requested in (("roles", roles), ("tenants", tenants)):
        allowed = claim_values(claims, what)
        if ALL in allowed:
            continue
        if requested is None:
            raise PermissionDenied(f"the token does not allow all {what}; name the {what} to run")
        refused = sorted(set(requested) - set(allowed))
        if refused:
            raise PermissionDenied(f"the token does not allow {what}: {', '.join(refused)}")
