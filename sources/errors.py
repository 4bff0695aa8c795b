"""The errors a source raises, at the bottom of the tree so that a source can raise them without
importing the engine. ``ReportError`` is the base of every error exec-reports raises; the engine's own
kinds (definition, delivery, configuration, ...) are in ``flows.core.errors``."""

from __future__ import annotations


class ReportError(Exception):
    """Base for every error exec-reports raises on purpose (as opposed to a bug)."""


class SourceError(ReportError):
    """A source could not provide its metrics (bad settings, an unreadable file, a failed API call)."""
