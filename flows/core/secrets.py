"""Secrets for delivery (the SMTP password), kept out of config, logs, errors and artifacts.

A ``Secret`` never shows its value in ``repr``/``str`` and drops it when pickled, so a backend that
ends up in a log line, a traceback or a Prefect parameter cannot carry the password along.
"""

from __future__ import annotations

import os

from flows.core.aws_secrets import read_secret_string  # noqa: F401 - re-exported for delivery settings
from flows.core.errors import ConfigurationError

REDACTED = "***"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """Remove the value from text a third party produced (a server reply, an exception message)."""
        return text.replace(self._value, REDACTED) if self._value else text

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__

    def __getstate__(self):
        return (REDACTED,)  # truthy, so unpickling calls __setstate__ and gets an empty secret

    def __setstate__(self, state) -> None:
        self._value = ""


def resolve_secret(*, env_var: str, secret_id: str | None, secret_id_key: str, region: str | None = None,
                   endpoint_url: str | None = None, block: str | None = None) -> Secret | None:
    """A secret from, in order: the environment variable ``env_var``, an AWS Secrets Manager secret id,
    a prefect-aws AwsSecret block. None when none of them is set."""
    value = os.environ.get(env_var)
    if value:
        return Secret(value)
    if secret_id:
        return Secret(read_secret_string(secret_id, key=secret_id_key, region=region, endpoint_url=endpoint_url))
    if block:
        return Secret(_from_aws_secret_block(block))
    return None


def smtp_password(settings) -> Secret | None:
    return resolve_secret(env_var=settings.password_env, secret_id=settings.password_secret_id,
                          secret_id_key="delivery.smtp.password_secret_id", region=settings.secrets_region,
                          endpoint_url=settings.secrets_endpoint_url, block=settings.password_secret_block)


def _from_aws_secret_block(block_name: str) -> str:
    # prefect-aws pulls in Prefect; only this optional path pays for it.
    try:
        from prefect_aws.secrets_manager import AwsSecret
    except ImportError:  # pragma: no cover - prefect-aws is a dependency
        raise ConfigurationError("delivery.smtp.password_secret_block needs prefect-aws installed") from None
    try:
        block = AwsSecret.load(block_name)
        value = block.read_secret()
    except Exception as exc:
        raise ConfigurationError(f"delivery.smtp.password_secret_block: cannot read AwsSecret block "
                                 f"{block_name!r} ({type(exc).__name__})") from None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def boto3_session(credentials_block: str | None):
    """The boto3 default chain, or a prefect-aws AwsCredentials block when the config names one."""
    import boto3

    if not credentials_block:
        return boto3.Session()
    try:
        from prefect_aws import AwsCredentials
    except ImportError:  # pragma: no cover - prefect-aws is a dependency
        raise ConfigurationError("delivery.ses.credentials_block needs prefect-aws installed") from None
    try:
        return AwsCredentials.load(credentials_block).get_boto3_session()
    except Exception as exc:
        raise ConfigurationError(f"delivery.ses.credentials_block: cannot load AwsCredentials block "
                                 f"{credentials_block!r} ({type(exc).__name__})") from None
