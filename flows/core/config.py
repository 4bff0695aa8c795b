"""The portfolio configuration: tenants, their sources, recipients by role, and delivery settings.

Paths inside the file are relative to the file's own folder. Errors name the file, line and key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from flows.core.addresses import check_header_text, check_mailbox
from flows.core.errors import ConfigurationError, ReportError
from flows.core.identifiers import check_identifier
from flows.core.yamlsource import Located, YamlProblem, format_key_path, load_located, read_utf8

# Every address a config file, a report's front matter or the environment gives: exactly one
# mailbox, parsed strictly (flows.core.addresses); the value is a Mailbox, a str whose .address is the
# envelope address.
check_address = check_mailbox
EmailAddress = Annotated[str, AfterValidator(check_mailbox)]
# A tenant id, role or check id: a short plain name, since it names files and delivery records.
Identifier = Annotated[str, AfterValidator(check_identifier)]
# A name that appears in subjects, footers and headers: no control or bidi characters.
HeaderName = Annotated[str, AfterValidator(lambda value: check_header_text(value, "the name"))]


def refuse_secret_in_file(data: Any, key: str, where_instead: str) -> Any:
    """Secrets come from the environment or a secret store; a config file is shared and committed."""
    if isinstance(data, dict) and key in data:
        raise ValueError(f"a {key} never goes in the config file: set the variable named by {where_instead}")
    return data


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantConfig(Strict):
    id: Identifier
    name: HeaderName
    domains: list[str] = []
    # Role -> addresses, for tenant-scope reports addressed to this business's own officers.
    recipients: dict[str, list[EmailAddress]] = {}
    sources: dict[str, dict[str, Any]] = {}


def _from_env(variable: str, default: str | None = None, check=None):
    """A default read from the environment when the key is absent from the file (file > env > default).

    A bad value names the variable, since no file line is to blame."""

    def factory():
        value = os.environ.get(variable, "").strip()
        if not value:
            # A default goes through the same check, so it has the same type as a set value.
            return check(default) if check is not None and default is not None else default
        if check is not None:
            try:
                return check(value)
            except ValueError as exc:
                raise ConfigurationError(f"environment variable {variable}: {exc}") from None
        return value

    return factory


def _positive_rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None
    if rate <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return rate


_SES_TAG = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class SesConfig(Strict):
    """Amazon SES settings. Credentials come from the boto3 chain or a prefect-aws AwsCredentials block."""

    region: str | None = Field(default_factory=_from_env("SES_REGION"))
    configuration_set: str | None = Field(default_factory=_from_env("SES_CONFIGURATION_SET"))
    # Extra message tags for SES event publishing; tenant, role and period are always added.
    tags: dict[str, str] = {}
    # Can only lower the account's MaxSendRate (from GetSendQuota), never raise it.
    max_send_rate: float | None = Field(default_factory=_from_env("SES_MAX_SEND_RATE", check=_positive_rate),
                                        gt=0)
    endpoint_url: str | None = Field(default_factory=_from_env("SES_ENDPOINT_URL"))
    credentials_block: str | None = None
    # GetAccountSendingEnabled needs its own IAM permission; turn off only where it is not granted.
    check_account_enabled: bool = True
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    quota_wait_seconds: float = Field(default=300.0, gt=0)
    quota_attempts: int = Field(default=3, ge=1)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for name, tag_value in value.items():
            for part in (name, tag_value):
                if not _SES_TAG.match(str(part)):
                    raise ValueError(f"SES tag {name!r}: {part!r} may hold only letters, digits, '_' and '-'")
        return value


class SmtpConfig(Strict):
    """An SMTP relay (for example the SES SMTP interface). The password is never in this file."""

    host: str | None = Field(default_factory=_from_env("SMTP_HOST"))
    port: int = Field(default_factory=_from_env("SMTP_PORT", 587, check=int))
    starttls: bool = True
    username: str | None = Field(default_factory=_from_env("SMTP_USERNAME"))
    # Name of the variable holding the password (not the password itself).
    password_env: str = "SMTP_PASSWORD"
    # Or an AWS Secrets Manager secret id / a prefect-aws AwsSecret block name holding it.
    password_secret_id: str | None = Field(default_factory=_from_env("SMTP_PASSWORD_SECRET_ID"))
    password_secret_block: str | None = None
    secrets_region: str | None = None
    secrets_endpoint_url: str | None = None
    ca_file: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_send_rate: float | None = Field(default=None, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    quota_wait_seconds: float = Field(default=300.0, gt=0)
    quota_attempts: int = Field(default=3, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _no_password_in_file(cls, data: Any) -> Any:
        return refuse_secret_in_file(data, "password", "password_env (default SMTP_PASSWORD), or "
                                                       "password_secret_id / password_secret_block")


class RecordsConfig(Strict):
    """Where delivery records live (what was sent for which period), so re-runs send nothing twice."""

    store: Literal["local", "s3", "postgres"] = Field(default_factory=_from_env("EXEC_REPORTS_RECORDS", "local"))
    # Local folder, relative to this file; default .deliveries beside the outbox folder.
    path: str | None = Field(default_factory=_from_env("EXEC_REPORTS_RECORDS_PATH"))
    bucket: str | None = Field(default_factory=_from_env("EXEC_REPORTS_RECORDS_BUCKET"))
    prefix: str = "exec-reports/deliveries"
    region: str | None = None
    endpoint_url: str | None = None
    # store 'postgres': the environment variable holding the connection string (it may carry a password).
    dsn_env: str = "EXEC_REPORTS_RECORDS_DSN"
    # How long a claim taken right before a provider call stays live without an outcome; longer than any
    # one provider call can take. After it, a claim without an outcome counts as "unknown".
    lease_seconds: float = Field(default=300.0, ge=1)

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> RecordsConfig:
        if self.store == "s3" and not self.bucket:
            raise ValueError("store 's3' needs a bucket (delivery.records.bucket or EXEC_REPORTS_RECORDS_BUCKET)")
        return self


BACKENDS = ("outbox", "ses", "smtp")


class DeliveryConfig(Strict):
    backend: Literal["outbox", "ses", "smtp"] = "outbox"
    outbox_dir: str = "outbox"
    from_address: EmailAddress = Field(default_factory=_from_env(
        "SES_FROM_ADDRESS", "Executive Reports <reports@holdings.example>", check=check_address))
    # Used when a role has no recipients anywhere, so no report silently goes nowhere.
    default_recipient: EmailAddress | None = Field(default_factory=_from_env("SES_TO_ADDRESS", check=check_address))
    # Receives one alert per failed or crashed run (falls back to default_recipient).
    operations_address: EmailAddress | None = None
    # Archive copy of every message; never visible to the recipients.
    bcc_address: EmailAddress | None = Field(default_factory=_from_env("SES_BCC_ADDRESS", check=check_address))
    # One message per recipient unless true; then the recipients of a report share one message and see each other.
    group_recipients: bool = False
    ses: SesConfig = Field(default_factory=SesConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    records: RecordsConfig = Field(default_factory=RecordsConfig)


class TasksConfig(Strict):
    """The task system that receives the reports' agenda items (JSON over HTTPS, bearer token)."""

    url: str
    # The bearer token: this environment variable, else an AWS Secrets Manager secret. Never in the file.
    token_env: str = "EXEC_REPORTS_TASKS_TOKEN"
    token_secret_id: str | None = None
    secrets_region: str | None = None
    secrets_endpoint_url: str | None = None
    timeout_seconds: float = Field(default=10, gt=0)
    attempts: int = Field(default=4, ge=1, le=10)
    # Only actions at or above this priority are handed off.
    min_priority: Literal["critical", "high", "medium", "low"] = "low"

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        from urllib.parse import urlparse

        parsed = urlparse(value)
        local = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
            raise ValueError(f"must be an https:// URL (plain http only to localhost), got {value!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_token_in_file(cls, data: Any) -> Any:
        return refuse_secret_in_file(data, "token", "token_env (default EXEC_REPORTS_TASKS_TOKEN) or token_secret_id")


class PortfolioInfo(Strict):
    name: HeaderName = "Portfolio"
    timezone: str = "UTC"
    period_kind: Literal["week", "month"] = "week"
    # The period a run reports on when none is given, instead of the last complete one: for data that is a
    # fixed snapshot (the sample portfolio), so `make run` keeps working with it on any later day.
    default_period: str | None = None
    # Split a run's tenants into this many shards, each its own flow run on the work pool ("auto": one per
    # 50 tenants, at most one per online worker); 1 runs the whole period in one process. A run's `shards`
    # parameter overrides it. See docs/operations.md, Fan-out.
    shards: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    # The longest one tenant's sources may take in a run (all of them, retries included); what is not
    # gathered by then is unavailable with that said, and the run goes on with the next tenant. None: no limit.
    source_timeout_seconds: float | None = Field(default=600.0, gt=0)

    @field_validator("default_period")
    @classmethod
    def _a_period(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from flows.core.period import parse_period

        try:
            return parse_period(value).label
        except ReportError as exc:
            raise ValueError(str(exc)) from None


def _positive_int(value: str | int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"not a whole number: {value!r}") from None
    if number <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return number


class LimitsConfig(Strict):
    """Per-report resource limits: a report over them fails alone, with the limit named."""

    # Wall time for one report's checks, template, Markdown and email layout.
    render_seconds: float = Field(default_factory=_from_env("EXEC_REPORTS_RENDER_SECONDS", 10.0,
                                                            check=_positive_rate), gt=0)
    # Largest rendered report (the template's Markdown, then the email's HTML) and largest value a
    # template may build, in bytes.
    render_bytes: int = Field(default_factory=_from_env("EXEC_REPORTS_RENDER_BYTES", 5_000_000,
                                                        check=_positive_int), gt=0)
    # How much one report's render may grow the process's memory, in bytes.
    render_memory_bytes: int = Field(default_factory=_from_env("EXEC_REPORTS_RENDER_MEMORY_BYTES", 512_000_000,
                                                               check=_positive_int), gt=0)


class PortfolioConfig(Strict):
    portfolio: PortfolioInfo = PortfolioInfo()
    reports_dir: str = "reports"
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    recipients: dict[str, list[EmailAddress]] = {}
    tenants: list[TenantConfig]
    # Where agenda items are handed off; none configured means they stay in the run summary only.
    tasks: TasksConfig | None = None

    # Not part of the file: where it was loaded from, for resolving relative paths.
    base_dir: Path = Field(default=Path("."), exclude=True)
    path: str = Field(default="", exclude=True)
    _tenant_index: tuple[list[TenantConfig], dict[str, TenantConfig]] | None = PrivateAttr(default=None)

    @field_validator("tenants")
    @classmethod
    def _unique(cls, value: list[TenantConfig]) -> list[TenantConfig]:
        seen: set[str] = set()
        for tenant in value:
            if tenant.id in seen:
                raise ValueError(f"tenant id {tenant.id!r} appears twice")
            seen.add(tenant.id)
        return value

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()

    @property
    def reports_path(self) -> Path:
        return self.resolve(self.reports_dir)

    @property
    def outbox_path(self) -> Path:
        return self.resolve(self.delivery.outbox_dir)

    def tenant(self, tenant_id: str) -> TenantConfig:
        # Looked up for every report, check and gather: by index, not by scanning the list (at 1,000 tenants a
        # scan per lookup made the run grow with the square of the tenants). Rebuilt if the list is replaced.
        if self._tenant_index is None or self._tenant_index[0] is not self.tenants:
            self._tenant_index = (self.tenants, {tenant.id: tenant for tenant in self.tenants})
        tenant = self._tenant_index[1].get(tenant_id)
        if tenant is not None:
            return tenant
        known = ", ".join(t.id for t in self.tenants)
        raise ConfigurationError(f"{self.path}: unknown tenant {tenant_id!r} (configured: {known})")

    def recipients_for(self, role: str, tenant: TenantConfig | None) -> list[str]:
        """Tenant-level recipients win for tenant-scope reports, then the portfolio's, then the default."""
        if tenant is not None and tenant.recipients.get(role):
            return list(tenant.recipients[role])
        if self.recipients.get(role):
            return list(self.recipients[role])
        if self.delivery.default_recipient:
            return [self.delivery.default_recipient]
        return []


DEFAULT_CONFIG_ENV = "EXEC_REPORTS_CONFIG"


def default_config_path() -> str:
    return os.environ.get(DEFAULT_CONFIG_ENV, "examples/portfolio.yaml")


def load_config(path: str | Path | None = None) -> PortfolioConfig:
    config_path = Path(path or default_config_path())
    if not config_path.is_file():
        raise ConfigurationError(
            f"portfolio config not found: {config_path} (pass --config PATH or set {DEFAULT_CONFIG_ENV})"
        )
    shown = _display(config_path)
    try:
        located = load_located(read_utf8(config_path))
    except YamlProblem as exc:
        where = f"{shown}:{exc.line}" if exc.line else shown
        raise ConfigurationError(f"{where}: {exc.key + ': ' if exc.key else ''}{exc.message}") from None
    if not isinstance(located.data, dict):
        raise ConfigurationError(f"{shown}: expected a mapping with at least a 'tenants' key")
    try:
        config = PortfolioConfig.model_validate(located.data)
    except ValidationError as exc:
        raise ConfigurationError("\n".join(_describe(shown, located, error) for error in exc.errors())) from None
    return config.model_copy(update={"base_dir": config_path.resolve().parent, "path": shown})


def _describe(shown: str, located: Located, error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    line = located.line_of(loc)
    where = f"{shown}:{line}" if line else shown
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{where}: {format_key_path(loc)}: {message}"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_LOADED_CONFIGS: dict[tuple, PortfolioConfig] = {}


def load_config_once(path: str | Path) -> PortfolioConfig:
    """``load_config``, parsed once per process and file version: the CLI, the run's name, the flow body
    and the failure hook all need the config of one run (a large portfolio's YAML takes a noticeable time
    to parse and check). The config's defaults come from environment variables too, so they are part of
    the key, as a digest (no secret value is kept in memory as a cache key)."""
    import hashlib

    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return load_config(path)  # raises the clear "not found" error
    settings_env = hashlib.sha256(repr(sorted((name, value) for name, value in os.environ.items()
                                              if name.startswith(("SES_", "SMTP_", "EXEC_REPORTS_")))).encode())
    key = (str(resolved), stat.st_mtime_ns, stat.st_size, settings_env.hexdigest())
    if key not in _LOADED_CONFIGS:
        _LOADED_CONFIGS.clear()
        _LOADED_CONFIGS[key] = load_config(path)
    return _LOADED_CONFIGS[key]
