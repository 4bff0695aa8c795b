"""Redacting secrets from log lines before they travel anywhere (metrics, snapshots, emails, logs).

Log lines are free text written by the tenant's code, so a secret can appear in any shape. The
rules below remove the shapes that matter most (cloud keys, tokens, passwords in key=value or JSON
form, credentials in URLs, email addresses) and, as a backstop, any long random-looking token.
Over-redacting a harmless id costs a reader little; leaking a key costs the business a lot.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# key = value / "key": "value" / key: value / key value, where the key names a secret. A quoted
# value runs to its closing quote (a passphrase has spaces); a bare value ends at whitespace, a quote,
# a comma or a closing bracket. With no separator at all ("with password hunter2", "DB_PASSWORD
# hunter2secret") the next word is taken as the value: over-redacting "password reset" costs a reader
# a word, leaking the password costs far more.
_SECRET_KEY = (r"(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
               r"|client[_-]?secret|auth(?:orization)?|credentials?|session[_-]?id|cookie|signature)")
_QUOTED_VALUE = r"""(?P<quoted>"(?:[^"\\]|\\.)*(?:"|$)|'(?:[^'\\]|\\.)*(?:'|$))"""
# A bare value does not start with "[": that is an earlier "[redacted]", not a value to redact again.
_BARE_VALUE = r"""(?P<value>(?:Bearer\s+|Basic\s+)?[^\s"',;}\][][^\s"',;}\]]*)"""
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?[\w.-]*{_SECRET_KEY}[\w.-]*["']?\s*[:=]\s*)(?:{_QUOTED_VALUE}|{_BARE_VALUE})""",
    re.IGNORECASE)
# The same pair with only words between: the key must end with the secret word ("DB_PASSWORD", not
# "passwords" or "tokens"), optionally followed by "is", "was", "set to".
_KEY_SPACE_VALUE = re.compile(
    rf"""(?P<key>(?<![\w.-])[\w.-]*{_SECRET_KEY}\b["']?\s+(?:(?:is|was|equals|set\s+to)\s+)?)"""
    rf"""(?:{_QUOTED_VALUE}|{_BARE_VALUE})""",
    re.IGNORECASE)
# "KeyError: ...", "StripeSignatureVerificationError: No signatures ...": an error's name, not a key.
_ERROR_NAME_KEY = re.compile(r"(?:Error|Exception)[\"']?\s*[:=]?\s*$")
# "Basic auth header dXNlcjpwYXNz", "Bearer: abc.def": the credential after the scheme, even when a few
# plain words sit between them. The credential is 8+ characters of token alphabet.
_AUTH_SCHEME = re.compile(
    r"\b(?P<scheme>Bearer|Basic)(?P<between>(?:\s+[a-z]{1,15}){0,3}?)(?P<gap>\s*[:=]?\s+)"
    r"[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
# A database client's password flag written against its value: mysql -uadmin -phunter2.
_PASSWORD_FLAG = re.compile(r"(?<![\w-])-p(?=[^\s-])\S+")
# Card-like numbers: 13 to 19 digits, optionally grouped by single spaces or dashes.
_CARD_NUMBER = re.compile(r"(?<!\w)(?<!\d[.,])\d(?:[ -]?\d){12,18}(?!\w|[.,]\d|[ -]\d)")
_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),             # AWS access key ids
    re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"),                          # JSON web tokens
    re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{8,}"),              # Stripe keys
    re.compile(r"\bgh[pousr]_[0-9A-Za-z]{20,}"),                              # GitHub tokens
    re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),                           # Slack tokens
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),                                 # Google API keys
    re.compile(r"\bSG\.[\w-]{16,}\.[\w-]{16,}"),                              # SendGrid keys
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),                            # user:password@host
    re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),                          # email addresses
]
# Backstop: 24+ characters of key alphabet mixing letters and digits (a 40-character AWS secret
# key, a hex API key). Request ids and ARNs are mostly shorter segments or contain separators.
_LONG_TOKEN = re.compile(r"(?<![\w/+=-])[A-Za-z0-9/+=_-]{24,}(?![\w/+=-])")


def _looks_random(token: str) -> bool:
    return (any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
            and token.count("-") < 4)  # UUID-like request ids have four dashes and are not secrets


def _redact_value(match: re.Match) -> str:
    if match["quoted"] is not None:
        quote = match["quoted"][0]
        return f"{match['key']}{quote}{REDACTED}{quote}"
    if _ERROR_NAME_KEY.search(match["key"]):
        return match.group()
    if match["value"].lower() in ("bearer", "basic"):
        return match.group()  # the scheme word before an already redacted credential
    return f"{match['key']}{REDACTED}"


def redact(text: str) -> str:
    """The text with every secret-looking part replaced by ``[redacted]``."""
    text = _AUTH_SCHEME.sub(lambda m: f"{m['scheme']}{m['between']}{m['gap']}{REDACTED}", text)
    text = _KEY_VALUE.sub(_redact_value, text)
    text = _KEY_SPACE_VALUE.sub(_redact_value, text)
    text = _PASSWORD_FLAG.sub(f"-p{REDACTED}", text)
    text = _CARD_NUMBER.sub(REDACTED, text)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _LONG_TOKEN.sub(lambda m: REDACTED if _looks_random(m.group()) else m.group(), text)
