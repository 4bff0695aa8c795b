"""Sessions and clients for one tenant's AWS account (its profile, role or Prefect credentials block,
its endpoint, standard retries), and ``guarded``: one service's reading, whose failure is recorded with
its reason while the other services carry on."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any

from sources.aws.settings import AwsSettings
from sources.errors import SourceError

log = logging.getLogger("exec_reports.sources.aws")


class ServiceFailure(Exception):
    """One service could not be read; the message is the reason shown in the report."""


def iso_timestamp(value: Any) -> str | None:
    """AWS returns datetimes or several string styles; the metrics carry one ISO form in UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = str(value)
        text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)  # Lambda's +0000 -> +00:00
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


# ---- sessions and clients ----------------------------------------------------------------------


class Clients:
    """Creates boto3 clients for one tenant: its credentials, its endpoint, standard retries."""

    def __init__(self, settings: AwsSettings):
        self.settings = settings
        self.session = open_session(settings)

    def client(self, service: str, region: str = "us-east-1"):
        from botocore.config import Config

        # Standard retry mode; the attempt count stays with AWS_MAX_ATTEMPTS / the profile (default 3).
        config = Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=30,
                        user_agent_extra="exec-reports")
        return self.session.client(service, region_name=region, endpoint_url=self.settings.endpoint_url,
                                   config=config)


def open_session(settings: AwsSettings):
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"tenant '{settings.tenant_id}': sources.aws"
    try:
        if settings.credentials_block:
            session = _session_from_block(settings.credentials_block, where)
        elif settings.profile:
            session = boto3.Session(profile_name=settings.profile)
        else:
            session = boto3.Session()
        if settings.role_arn:
            sts = session.client("sts", region_name=settings.regions[0], endpoint_url=settings.endpoint_url)
            arguments = {"RoleArn": settings.role_arn, "RoleSessionName": f"exec-reports-{settings.tenant_id}"[:64]}
            if settings.external_id:
                arguments["ExternalId"] = settings.external_id
            credentials = sts.assume_role(**arguments)["Credentials"]
            session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                    aws_secret_access_key=credentials["SecretAccessKey"],
                                    aws_session_token=credentials["SessionToken"])
    except (BotoCoreError, ClientError) as exc:
        # Credential errors name the profile or role, never a key: botocore keeps secrets out of them.
        raise SourceError(f"{where}: could not obtain AWS credentials: {describe_error(exc)}") from None
    return session


def _session_from_block(block_name: str, where: str):
    # prefect-aws is imported only here, and only when a tenant names a block: everything else in
    # the sources stays free of Prefect.
    try:
        from prefect_aws import AwsCredentials
    except ImportError:
        raise SourceError(f"{where}.credentials_block: prefect-aws is not installed") from None
    try:
        block = AwsCredentials.load(block_name)
    except Exception as exc:  # Prefect raises ValueError or HTTP errors depending on the server
        raise SourceError(f"{where}.credentials_block: could not load AwsCredentials block "
                          f"'{block_name}': {type(exc).__name__}") from None
    return block.get_boto3_session()


def describe_error(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or f"HTTP {exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode', '?')}"
        message = " ".join(str(error.get("Message", "")).split())[:300]
        return f"{code}: {message}" if message else code
    return f"{type(exc).__name__}: {exc}"


def guarded(service: str, read: Callable[[], Any], errors: dict[str, str], tenant_id: str = "") -> Any:
    """Run one service's reading; on failure record why and return None."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return read()
    except ServiceFailure as exc:
        reason = str(exc)
    except (BotoCoreError, ClientError) as exc:
        reason = describe_error(exc)
    errors[service] = reason
    log.warning("tenant %s: aws %s unavailable: %s", tenant_id, service, reason)
    return None


def client_error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""


def matches_tags(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(key) == value for key, value in wanted.items())


def tag_list(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["Key"]: item["Value"] for item in items or []}
