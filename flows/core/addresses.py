"""Email addresses and header text from configuration and data, checked strictly.

A recipient entry is exactly one mailbox: an optional display name and one address. It is parsed
with the standard library's RFC 5322 header parser (``email.headerregistry``) and refused on any
parse defect, so a display name can never smuggle in a second recipient, a group or a header line.
The address that goes on the SMTP envelope (or in SES ``Destinations``) is ``Mailbox.address``:
exactly the one the ``To``/``From`` header shows.

Text that ends up in a header (names, subjects) never carries control characters (C0, C1, DEL),
line or paragraph separators, or bidirectional overrides and isolates, which can make a name or a
subject read differently from what it is.
"""

from __future__ import annotations

import re
import unicodedata
from email import policy
from email.headerregistry import Address

# Bidirectional formatting characters: embeddings, overrides, isolates, and the marks.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
MAX_ADDRESS_LENGTH = 254  # RFC 5321's limit for a path, less the angle brackets

_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


_WITHOUT_BIDI = str.maketrans(dict.fromkeys(map(ord, BIDI_CONTROLS)))


def strip_bidi(text: str) -> str:
    """``text`` without bidirectional controls: a right-to-left override in a memo or a bucket name would
    make the rest of the line read backwards (``exe.tropeR`` for ``Report.exe``). Data is not refused for
    it, as one odd character in a memo must not fail a report: the characters are dropped."""
    return text.translate(_WITHOUT_BIDI)


class AddressError(ValueError):
    """Not exactly one valid mailbox; the message says what is wrong."""


def unsafe_character(text: str) -> str | None:
    """A description of the first character that must not appear in a header, or None."""
    for char in text:
        category = unicodedata.category(char)
        if char in BIDI_CONTROLS:
            return f"a bidirectional control character (U+{ord(char):04X})"
        if category == "Cc":
            return f"a control character (U+{ord(char):04X})"
        if category in ("Zl", "Zp", "Cs"):
            return f"a line separator or unpaired surrogate (U+{ord(char):04X})"
    return None


def check_header_text(value: str, what: str = "value") -> str:
    """Validator for names that go into headers (tenant and portfolio names): refuse, never repair."""
    problem = unsafe_character(value)
    if problem:
        raise ValueError(f"{what} contains {problem}; remove it")
    return value


def header_text(value: str) -> str:
    """Text built from data for a header (a subject): unsafe characters dropped, whitespace folded
    to single spaces. Data is not refused here: one odd character in a memo must not fail a report."""
    kept = []
    for char in value:
        if char in "\t\r\n\v\f" or unicodedata.category(char) in ("Zl", "Zp"):
            kept.append(" ")
        elif unsafe_character(char) is None:
            kept.append(char)
    return " ".join("".join(kept).split())


class Mailbox(str):
    """One mailbox, as text in its canonical header form (``GM <gm@jada.example>`` or
    ``gm@jada.example``), with ``display_name`` and ``address`` (the envelope address).

    A ``str`` subclass so it can stand wherever an address string was used (summaries, records,
    JSON); ``Mailbox(text)`` parses and refuses anything but exactly one valid mailbox.
    """

    display_name: str
    address: str

    def __new__(cls, value: str) -> Mailbox:
        if isinstance(value, Mailbox):
            return value
        display_name, address = parse_mailbox(value)
        text = str(Address(display_name=display_name, addr_spec=address)) if display_name else address
        mailbox = super().__new__(cls, text)
        mailbox.display_name, mailbox.address = display_name, address
        return mailbox

    def __reduce__(self):  # pickled (Prefect, multiprocessing) as its text, parsed again on load
        return (Mailbox, (str(self),))

    def __repr__(self) -> str:
        return f"Mailbox({str(self)!r})"


def parse_mailbox(value: object) -> tuple[str, str]:
    """``(display name, address)`` of the one mailbox in ``value``, or AddressError saying why not."""
    if not isinstance(value, str):
        raise AddressError(f"expected an email address as text, got {type(value).__name__}")
    problem = unsafe_character(value)
    if problem:
        raise AddressError(f"{value!r} contains {problem}")
    text = value.strip()
    if not text:
        raise AddressError("the address is empty")
    try:
        header = policy.strict.header_factory("To", text)
    except Exception as exc:  # the parser raises a few kinds on badly broken input
        raise AddressError(f"{value!r} is not an email address ({type(exc).__name__})") from None
    if any(group.display_name is not None for group in header.groups):
        raise AddressError(f"{value!r} uses group syntax ('name: addresses;'); give one address")
    if header.defects:
        hint = ("; a display name with punctuation goes in double quotes: \"J. Doe\" <j@example.com>"
                if "<" in text else "")
        raise AddressError(f"{value!r} is not an email address ({_defect_text(header.defects[0])}){hint}")
    if len(header.addresses) != 1:
        raise AddressError(f"{value!r} holds {len(header.addresses)} addresses; give exactly one per entry")
    mailbox = header.addresses[0]
    address = mailbox.addr_spec
    comment = _comment_in(text)
    if comment:
        # The parser drops a comment, so the mail goes to another address than the one a reader sees in
        # "victim@evil.example(gm@jada.example)".
        raise AddressError(f"{value!r} contains a comment in parentheses ({comment!r}), which mail programs drop: "
                           f"the mail would go to {address} only; remove it (a name goes in double quotes "
                           f"before the address: \"GM\" <gm@example.com>)")
    _check_addr_spec(value, address)
    name = mailbox.display_name or ""
    if "@" in name:
        raise AddressError(f"{value!r}: the display name {name!r} contains '@', so it reads as an address, but "
                           f"the mail goes to {address}; use a name without '@'")
    if unsafe_character(name):  # already refused above; kept so the invariant is local
        raise AddressError(f"{value!r}: the display name contains {unsafe_character(name)}")
    return name, address


def _check_addr_spec(value: str, address: str) -> None:
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise AddressError(f"{value!r} is not an email address (expected name@domain.example)")
    if len(address) > MAX_ADDRESS_LENGTH:
        raise AddressError(f"{value!r}: the address is longer than {MAX_ADDRESS_LENGTH} characters")
    if not address.isascii():
        raise AddressError(f"{value!r}: only ASCII addresses are supported (write an international domain "
                           "in its xn-- form)")
    for routing in "%!":
        if routing in local:
            raise AddressError(f"{value!r}: {local!r} contains {routing!r}, which some mail relays read as a route "
                               f"to another host; give the address of the mailbox itself")
    if not _LOCAL_PART.match(local):
        raise AddressError(f"{value!r}: {local!r} is not a plain mailbox name (no quotes or spaces)")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise AddressError(f"{value!r}: {domain!r} is not a domain name like example.com")


def _comment_in(text: str) -> str:
    """The first RFC 5322 comment ``( ... )`` outside quoted strings, or ''."""
    quoted = escaped = False
    start, depth = -1, 0
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"' and depth == 0:
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            start = index if depth == 0 else start
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return text[start:] if depth else ""


def _defect_text(defect: Exception) -> str:
    return str(defect).rstrip(".") or type(defect).__name__


def check_mailbox(value: object) -> Mailbox:
    """The pydantic validator: one Mailbox, or ValueError with the reason (located by the loader)."""
    return Mailbox(value)  # type: ignore[arg-type]
