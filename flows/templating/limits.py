"""Limits on one report's render: time (CPU of the rendering thread), size (of what the template writes
and builds) and arithmetic. A report file is reviewed, but a mistake in it must cost that report, not
the run. ``render_budget`` sets the limits for a block; the sandbox (``flows.templating.sandbox``)
checks them on every loop iteration, call and intercepted operator."""

from __future__ import annotations

import re
import string
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from flows.core.errors import TemplateLimitError

# ---- resource limits ------------------------------------------------------------------------------
#
# A report file is reviewed, but a mistake in it must cost that report, not the run. Work in a
# template is bounded three ways: every loop iteration and every call checks the render's CPU time
# (``limits.render_seconds``); values cannot grow past ``limits.render_bytes`` (operators, string
# methods and filters that multiply their input are checked before they allocate); integers stay
# under MAX_INT_BITS, so one ``**`` cannot hold the interpreter for minutes. The intercepted
# operators are also never folded at compile time (Jinja skips constant folding of intercepted
# operators in a sandbox), so ``{{ 9**(9**9) }}`` is refused when rendered, not computed when loaded.

DEFAULT_RENDER_SECONDS = 10.0
DEFAULT_RENDER_BYTES = 5_000_000
# How much one render may grow the process's memory (resident set): many small values built in a loop
# pass every size check one at a time, and 10 s of CPU can fill gigabytes.
DEFAULT_RENDER_MEMORY_BYTES = 512_000_000
# The result of every integer operation, not its syntax: 2**4000 and (2**2000)*(2**2000) alike.
MAX_INT_BITS = 1024  # about 308 decimal digits: far beyond any money amount
MAX_RANGE = 10_000  # items in one range(); loops over data are bounded by the data


def resident_bytes() -> int | None:
    """The process's resident memory now (Linux /proc), else its peak (getrusage), else None."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return None


try:
    import os as _os

    _PAGE_SIZE = _os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):
    _PAGE_SIZE = 4096


@dataclass
class RenderBudget:
    """The limits of one report's render. Time is the CPU time of the rendering thread: reports render
    side by side, and a runaway one must not make its neighbours look slow."""

    seconds: float | None
    max_bytes: int
    memory_bytes: int | None = None
    started: float = field(default_factory=time.thread_time)
    _next_check: float = 0.0
    # What lists and dicts gained through +, append, extend, update, ...: one reference to a large
    # text costs its length, since writing the container out writes the text each time.
    grown: int = 0
    memory_at_start: int | None = None
    # The figures the report was given (its entities' views): a value a call returns may be as long as they
    # would be written out on top of max_bytes, since a list of every entity, ranked, re-arranges what the
    # report was given rather than running away (at 1,000 entities it is ~5 MB). Measured only when a
    # value is over max_bytes, which no report reaches below a few hundred entities.
    given_views: Any = None
    _given_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.memory_bytes is not None:
            self.memory_at_start = resident_bytes()

    @property
    def watching(self) -> bool:
        return self.seconds is not None or self.memory_at_start is not None

    def check_time(self) -> None:
        if self.seconds is not None and time.thread_time() - self.started > self.seconds:
            raise TemplateLimitError(f"the render took longer than {self.seconds:g} s (limits.render_seconds)")

    def check_memory(self) -> None:
        """The process's memory grown since the render began. Process-wide (Python cannot count one
        thread's allocations cheaply): the limit is set far above what any report needs, so only a
        runaway render, which is stopped here within 20 ms of crossing it, reaches it."""
        if self.memory_at_start is None or self.memory_bytes is None:
            return
        now = resident_bytes()
        if now is not None and now - self.memory_at_start > self.memory_bytes:
            raise TemplateLimitError(f"the render grew memory by {now - self.memory_at_start:,} bytes, over the "
                                     f"limit of {self.memory_bytes:,} (limits.render_memory_bytes)")

    def tick(self) -> None:
        """Called on every loop iteration and call: a cheap wall clock decides when to read the
        (slower) thread CPU clock and the process's memory, at most every 20 ms."""
        if not self.watching:
            return
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + 0.02
            self.check_time()
            self.check_memory()

    def grow(self, size: int, what: str) -> None:
        self.grown += size
        self.check_size(self.grown, what)

    def check_size(self, size: int, what: str) -> None:
        if size > self.max_bytes:
            raise TemplateLimitError(f"{what} would be {size:,} long, over the limit of {self.max_bytes:,} "
                                     "(limits.render_bytes)")

    def given(self, views: Any) -> None:
        """The figures the report was given: how long a call's result may be on top of ``max_bytes``."""
        self.given_views, self._given_bytes = views, None

    @property
    def given_bytes(self) -> int:
        if self._given_bytes is None:
            self._given_bytes = written_size(self.given_views, sys.maxsize) if self.given_views is not None else 0
        return self._given_bytes

    def value_size(self, value: Any) -> int:
        """How long a value a call returned would be written out, counted up to its limit."""
        size = written_size(value, self.max_bytes)
        return size if size <= self.max_bytes else written_size(value, self.max_bytes + self.given_bytes)

    def check_value_size(self, size: int, what: str) -> None:
        """A value a call returned: as long as the report's own figures plus ``max_bytes`` at most."""
        if size > self.max_bytes + self.given_bytes:
            raise TemplateLimitError(f"{what} would be {size:,} long, over the limit of {self.max_bytes:,} "
                                     f"(limits.render_bytes) plus the {self.given_bytes:,} of the figures the "
                                     "report was given")


_NO_TIME_LIMIT = RenderBudget(None, DEFAULT_RENDER_BYTES)  # outside build_report: checks, previews, tests
_BUDGET: ContextVar[RenderBudget | None] = ContextVar("exec_reports_render_budget", default=None)


def current_budget() -> RenderBudget:
    return _BUDGET.get() or _NO_TIME_LIMIT


@contextmanager
def render_budget(seconds: float | None = DEFAULT_RENDER_SECONDS, max_bytes: int = DEFAULT_RENDER_BYTES,
                  memory_bytes: int | None = DEFAULT_RENDER_MEMORY_BYTES) -> Iterator[RenderBudget]:
    """Limits for the templates rendered in this block (this thread or task only)."""
    budget = RenderBudget(seconds, max_bytes, memory_bytes)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def render_within_limits(template: Any, context: Mapping[str, Any]) -> str:
    """``template.render(**context)``, stopped as soon as the output outgrows the budget."""
    budget = current_budget()
    chunks: list[str] = []
    length = 0
    for chunk in template.generate(**context):
        length += len(chunk)
        if length > budget.max_bytes:  # characters <= bytes, so this is a lower bound
            budget.check_size(length, "the rendered report")
        chunks.append(chunk)
    text = "".join(chunks)
    budget.check_size(len(text.encode("utf-8", "surrogatepass")), "the rendered report")
    budget.check_time()
    budget.check_memory()
    return text


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_SEQUENCES = (str, bytes, list, tuple)
_CONTAINERS = (str, bytes, list, tuple, dict, set, frozenset)
_NESTED = (list, tuple, dict, set, frozenset)


def written_size(value: Any, limit: int, depth: int = 0) -> int:
    """About how long ``str(value)`` would be: a text its length, a container its items, counting a
    text again for every reference to it. Stops counting once past ``limit``."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, range):  # written out (or turned into a list) item by item
        return 2 + 2 * len(value)
    if not isinstance(value, _NESTED):
        return 1
    if depth > 50:  # a container nested this deep (or inside itself) is refused outright
        return limit + 1
    total = 2
    for item in value.items() if isinstance(value, dict) else value:
        total += 2 + written_size(item, limit - total, depth + 1)
        if total > limit:
            break
    return total
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_percent_format(text: str, budget: RenderBudget) -> None:
    for match in _PERCENT_FIELD.finditer(text):
        for number in match.groups():
            if number == "*":
                raise TemplateLimitError("'*' widths in % formatting are not allowed in report templates")
            if number and int(number) > budget.max_bytes:
                budget.check_size(int(number), "a formatted field")


def check_brace_format(text: str, budget: RenderBudget) -> None:
    for _, _, spec, _ in string.Formatter().parse(text):
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("nested fields in a format spec are not allowed in report templates")
        for number in re.findall(r"\d+", spec):
            budget.check_size(int(number), "a formatted field")
