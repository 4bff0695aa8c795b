"""One error family for the whole product, so callers can catch ``ReportError`` and know it is ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sources.errors import ReportError, SourceError

__all__ = ["ConfigurationError", "DefinitionError", "DeliveryError", "Problem", "RenderError", "ReportError",
           "ReportsFailed", "RunFailures", "SourceError", "TemplateLimitError",
           "UsageError"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located precisely enough to fix without searching."""

    path: str
    line: int | None
    key: str | None
    message: str
    # The role of the report the problem belongs to (when known), so a run of other roles is not
    # failed by it and a run of this role fails with it instead of "unknown role".
    role: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class DefinitionError(ReportError):
    """One or more report definitions are invalid. Holds every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RenderError(ReportError):
    """A valid definition could not be turned into an email (e.g. a required metric is unavailable)."""


class DeliveryError(ReportError):
    """A message could not be delivered."""


class ConfigurationError(ReportError):
    """The portfolio configuration is wrong or incomplete; the message names the key or variable to set."""


class UsageError(ConfigurationError):
    """A command's argument or setting is wrong: found before anything started, exit status 2."""


class FailedStateData(ReportError):
    """Data carried by a Failed Prefect state. Prefect resolves a Failed state's data into an exception (a
    dict there makes its engine log a TypeError carrying the whole payload), so the payload travels inside
    this exception; its text and repr are the short message only, so logs and tracebacks never carry the
    payload's addresses. ``args`` is (message, payload), so it pickles as it is."""

    def __init__(self, message: str, payload: Any):
        super().__init__(message, payload)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class RunFailures(FailedStateData):
    """A run that delivered what it could and failed the rest: the data of its Failed state."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message, summary)
        self.summary = summary


class ReportsFailed(FailedStateData):
    """The data of a Failed role task: some of its reports failed, and the flow still needs every report's
    outcome (the sent ones too)."""

    def __init__(self, message: str, results: list):
        super().__init__(message, results)
        self.results = results


class TemplateLimitError(RenderError):
    """A report's template went over a resource limit (time, size, a huge number): only that report fails."""

    located = False  # the message already names the file and line (a check's ``when``, ``send_if``)

    def at(self, where: str) -> TemplateLimitError:
        """The same limit, named where it was hit: ``reports/cfo.md:12: send_if: ...``."""
        located = TemplateLimitError(f"{where}: {self}")
        located.located = True
        return located
