"""Reading one secret from AWS Secrets Manager.

Standard library plus boto3 (imported when a secret is read): the Lambda trigger uses it for its
HS256 key, and Lambda's Python runtime already has boto3.
"""

from __future__ import annotations

import logging

from flows.core.errors import ConfigurationError


class _NoResponseBodies(logging.Filter):
    """botocore logs every response body at DEBUG ("Response body: b'{...SecretString...}'"): with the root
    logger at DEBUG (a Lambda's LOG_LEVEL, a debugging session) the secret would print. The record is kept,
    its body is not."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.lstrip().lower().startswith(("response body", "response headers")):
            record.msg, record.args = record.msg.split(":", 1)[0] + ": [withheld by exec-reports]", ()
        return True


def keep_secrets_out_of_botocore_logs() -> None:
    """botocore's loggers stay at INFO unless set on purpose, and its parser never logs a response body."""
    botocore = logging.getLogger("botocore")
    if botocore.level == logging.NOTSET:
        botocore.setLevel(logging.INFO)
    parsers = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, _NoResponseBodies) for f in parsers.filters):
        parsers.addFilter(_NoResponseBodies())


keep_secrets_out_of_botocore_logs()


def read_secret_string(secret_id: str, *, key: str, region: str | None = None,
                       endpoint_url: str | None = None) -> str:
    """A SecretString from AWS Secrets Manager. Errors name the config ``key`` and the secret id, never a value."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ConfigurationError(f"{key}: cannot read secret {secret_id!r} from AWS Secrets Manager ({code})") from None
    except BotoCoreError as exc:
        raise ConfigurationError(f"{key}: cannot read secret {secret_id!r}: {type(exc).__name__}") from None
    value = response.get("SecretString")
    if not value:
        raise ConfigurationError(f"{key}: secret {secret_id!r} has no SecretString")
    return value
