"""Role and tenant ids: one pattern for config files, report definitions and trigger requests.

An id names files (the outbox, the local delivery records), record keys (S3 object keys, database rows),
message tags and Prefect run parameters, so it is short and plain: lower-case letters, digits, - and _,
starting with a letter, at most 63 characters (a DNS label's length, which every store and file system
takes, also with the other parts of a file name around it).

Standard library only: the Lambda trigger (flows.trigger.handler) checks ids with it without loading the
config code and its dependencies.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 63
SLUG = r"^[a-z][a-z0-9_-]*$"
_SLUG = re.compile(SLUG)


def is_slug(value: object) -> bool:
    """True for a role or tenant id: lower-case letters, digits, - and _, starting with a letter, at most 63."""
    return (isinstance(value, str) and len(value) <= MAX_ID_LENGTH
            and _SLUG.fullmatch(value) is not None)  # "$" alone would let "cfo\n" through


def check_identifier(value: str) -> str:
    """The pydantic validator behind every id in a config or front matter: refuse with the rule and the length."""
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"an id is at most {MAX_ID_LENGTH} characters (it names files and delivery records), "
                         f"this one has {len(value)}: {value[:20]!r}...")
    if not is_slug(value):
        raise ValueError(f"{value!r} is not an id: use lower-case letters, digits, '-' and '_', starting with a letter")
    return value
