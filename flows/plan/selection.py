"""``--only report/tenant[/recipient]``: the messages an operator picked, e.g. to resend exactly the
ones whose delivery state is unknown instead of the whole period.

``report`` is a role (``cfo``) or a role and A/B variant (``cfo:short``); ``tenant`` is a tenant id or
``portfolio`` (``portfolio:jada+qdn`` for a portfolio report built for some tenants); ``recipient`` is
one address (case does not matter). ``exec-reports deliveries unknown`` prints selectors in this form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from flows.core.errors import ConfigurationError

_ROLE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Selector:
    role: str
    variant: str | None  # None: any variant
    tenant: str
    recipient: str | None  # None: every recipient

    def selects(self, key) -> bool:
        if key.role != self.role or key.tenant != self.tenant:
            return False
        if self.variant is not None and key.variant != self.variant:
            return False
        return self.recipient is None or self.recipient in key.recipient.split(",")

    def __str__(self) -> str:
        report = f"{self.role}:{self.variant}" if self.variant is not None else self.role
        return "/".join(part for part in (report, self.tenant, self.recipient) if part)


@dataclass(frozen=True)
class Selection:
    selectors: tuple[Selector, ...]

    @classmethod
    def parse(cls, texts: list[str] | tuple[str, ...] | None) -> Selection | None:
        """None when nothing was given; a ConfigurationError naming the bad selector otherwise."""
        if not texts:
            return None
        return cls(tuple(parse_selector(text) for text in texts))

    def selects(self, key) -> bool:
        return any(selector.selects(key) for selector in self.selectors)

    @property
    def roles(self) -> list[str]:
        return list(dict.fromkeys(selector.role for selector in self.selectors))

    def as_strings(self) -> list[str]:
        return [str(selector) for selector in self.selectors]


def parse_selector(text: str) -> Selector:
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigurationError(f"--only {text!r}: expected report/tenant or report/tenant/recipient, "
                                 "e.g. cfo/portfolio/cfo@holdings.example")
    report, tenant = parts[0].strip().lower(), parts[1].strip().lower()
    role, _, variant = report.partition(":")
    if not _ROLE.match(role) or (variant and not _ROLE.match(variant)):
        raise ConfigurationError(f"--only {text!r}: {report!r} is not a report role (e.g. cfo or cfo:short)")
    recipient = None
    if len(parts) == 3:
        recipient = parseaddr(parts[2].strip())[1].lower()
        if "@" not in recipient:
            raise ConfigurationError(f"--only {text!r}: {parts[2]!r} is not an email address")
    return Selector(role, variant if report.count(":") else None, tenant, recipient)
