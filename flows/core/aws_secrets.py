"""Reading one secret from AWS Secrets Manager.

Standard library plus boto3 (imported when a secret is read): the Lambda trigger uses it for its
HS256 key, and Lambda's Python runtime already has boto3.
"""

from __future__ import annotations

from flows.core.errors import ConfigurationError


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
