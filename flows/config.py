"""The portfolio configuration: tenants, their sources, recipients by role, and delivery settings.

Paths inside the file are relative to the file's own folder. Errors name the file, line and key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.errors import ConfigurationError
from flows.yamlsource import Located, YamlProblem, format_key_path, load_located

SLUG = r"^[a-z][a-z0-9_-]*$"
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def check_address(value: str) -> str:
    bare = value.strip()
    if "<" in bare and bare.endswith(">"):
        bare = bare[bare.index("<") + 1 : -1]
    if not _ADDRESS.match(bare):
        raise ValueError(f"not an email address: {value!r}")
    return value.strip()


EmailAddress = Annotated[str, AfterValidator(check_address)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantConfig(Strict):
    id: str = Field(pattern=SLUG)
    name: str
    domains: list[str] = []
    # Role -> addresses, for tenant-scope reports addressed to this business's own officers.
    recipients: dict[str, list[EmailAddress]] = {}
    sources: dict[str, dict[str, Any]] = {}


class DeliveryConfig(Strict):
    backend: Literal["outbox"] = "outbox"
    outbox_dir: str = "outbox"
    from_address: EmailAddress = "Executive Reports <reports@holdings.example>"
    # Used when a role has no recipients anywhere, so no report silently goes nowhere.
    default_recipient: EmailAddress | None = None
    # Receives one alert per failed or crashed run (falls back to default_recipient).
    operations_address: EmailAddress | None = None


class PortfolioInfo(Strict):
    name: str = "Portfolio"
    timezone: str = "UTC"
    period_kind: Literal["week", "month"] = "week"


class PortfolioConfig(Strict):
    portfolio: PortfolioInfo = PortfolioInfo()
    reports_dir: str = "reports"
    delivery: DeliveryConfig = DeliveryConfig()
    recipients: dict[str, list[EmailAddress]] = {}
    tenants: list[TenantConfig]

    # Not part of the file: where it was loaded from, for resolving relative paths.
    base_dir: Path = Field(default=Path("."), exclude=True)
    path: str = Field(default="", exclude=True)

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
        for tenant in self.tenants:
            if tenant.id == tenant_id:
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
        located = load_located(config_path.read_text(encoding="utf-8-sig"))
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
