"""Delivery backends behind one interface: ``backend.send(email) -> DeliveryResult``.

One module per backend, picked by name in the config (``delivery.backend``). The outbox runs the
same message-building code as the network backends, so a preview is exactly what would be sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flows.core.errors import ConfigurationError
from flows.delivery.message import DeliveryBackend, DeliveryResult, Email

if TYPE_CHECKING:  # the config (pydantic) is imported where a backend is built, not with the package:
    from flows.core.config import (
        PortfolioConfig,  # the Lambda trigger imports flows.delivery.feedback without it
    )

__all__ = ["DeliveryBackend", "DeliveryResult", "Email", "get_backend", "with_backend"]


def get_backend(config: PortfolioConfig, run_folder: str, *, outbox_dir: Path | None = None) -> DeliveryBackend:
    name = config.delivery.backend
    if name == "outbox":
        from flows.delivery.outbox import OutboxBackend

        return OutboxBackend((outbox_dir or config.outbox_path) / run_folder)
    if name == "ses":
        from flows.delivery.ses import SesBackend

        return SesBackend(config.delivery.ses, config.delivery.from_address)
    if name == "smtp":
        from flows.delivery.smtp import SmtpBackend

        return SmtpBackend(config.delivery.smtp, config.delivery.from_address)
    from flows.core.config import BACKENDS

    raise ConfigurationError(f"{config.path}: delivery.backend: unknown backend {name!r} "
                             f"(available: {', '.join(BACKENDS)})")


def with_backend(config: PortfolioConfig, name: str | None) -> PortfolioConfig:
    """The config with ``delivery.backend`` replaced for this run (``run --delivery``), checked by name."""
    from flows.core.config import BACKENDS

    if not name or name == config.delivery.backend:
        return config
    if name not in BACKENDS:
        raise ConfigurationError(f"unknown delivery backend {name!r} (available: {', '.join(BACKENDS)})")
    return config.model_copy(update={"delivery": config.delivery.model_copy(update={"backend": name})})
