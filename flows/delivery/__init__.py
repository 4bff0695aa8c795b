"""Delivery backends behind one interface: ``backend.send(email) -> DeliveryResult``.

One module per backend, picked by name in the config (``delivery.backend``). The outbox runs the
same message-building code as the network backends, so a preview is exactly what would be sent.
"""

from __future__ import annotations

from pathlib import Path

from flows.config import PortfolioConfig
from flows.delivery.base import DeliveryBackend, DeliveryResult, Email
from flows.errors import ConfigurationError

__all__ = ["DeliveryBackend", "DeliveryResult", "Email", "get_backend"]


def get_backend(config: PortfolioConfig, run_folder: str, *, outbox_dir: Path | None = None) -> DeliveryBackend:
    name = config.delivery.backend
    if name == "outbox":
        from flows.delivery.outbox import OutboxBackend

        return OutboxBackend((outbox_dir or config.outbox_path) / run_folder)
    raise ConfigurationError(f"{config.path}: delivery.backend: unknown backend {name!r} (available: outbox)")
