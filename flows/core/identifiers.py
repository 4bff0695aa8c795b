"""Role and tenant ids: one pattern for config files, report definitions and trigger requests.

Standard library only: the Lambda trigger (flows.trigger.handler) checks ids with it without loading the
config code and its dependencies.
"""

from __future__ import annotations

import re

SLUG = r"^[a-z][a-z0-9_-]*$"
_SLUG = re.compile(SLUG)


def is_slug(value: object) -> bool:
    """True for a role or tenant id: lower-case letters, digits, - and _, starting with a letter."""
    return isinstance(value, str) and _SLUG.fullmatch(value) is not None  # "$" alone would let "cfo\n" through
