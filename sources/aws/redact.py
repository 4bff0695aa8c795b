"""Redacting secrets from log lines before they travel anywhere (metrics, snapshots, emails, logs).

Log lines are free text written by the tenant's code, so a secret can appear in any shape. The
rules below remove the shapes that matter most (cloud keys, tokens, passwords in key=value or JSON
form, credentials in URLs, email addresses) and, as a backstop, any long random-looking token.
Over-redacting a harmless id costs a reader little; leaking a key costs the business a lot.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# key = value / "key": "value" / key: value, where the key names a secret. The value ends at
# whitespace, a quote, a comma or a closing bracket.
_SECRET_KEY = (r"(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
               r"|client[_-]?secret|auth(?:orization)?|credentials?|session[_-]?id|cookie|signature)")
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?[\w.-]*{_SECRET_KEY}[\w.-]*["']?\s*[:=]\s*)(?P<quote>["']?)(?P<value>(?:Bearer\s+|Basic\s+)?[^\s"',;}}\]]+)""",
    re.IGNORECASE)
_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),             # AWS access key ids
    re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"),                          # JSON web tokens
    re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{8,}"),              # Stripe keys
    re.compile(r"\bgh[pousr]_[0-9A-Za-z]{20,}"),                              # GitHub tokens
    re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),                           # Slack tokens
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),                                 # Google API keys
    re.compile(r"\bSG\.[\w-]{16,}\.[\w-]{16,}"),                              # SendGrid keys
    re.compile(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),                            # user:password@host
    re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),                          # email addresses
]
# Backstop: 24+ characters of key alphabet mixing letters and digits (a 40-character AWS secret
# key, a hex API key). Request ids and ARNs are mostly shorter segments or contain separators.
_LONG_TOKEN = re.compile(r"(?<![\w/+=-])[A-Za-z0-9/+=_-]{24,}(?![\w/+=-])")


def _looks_random(token: str) -> bool:
    return (any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
            and token.count("-") < 4)  # UUID-like request ids have four dashes and are not secrets


def redact(text: str) -> str:
    """The text with every secret-looking part replaced by ``[redacted]``."""
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['quote']}{REDACTED}", text)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _LONG_TOKEN.sub(lambda m: REDACTED if _looks_random(m.group()) else m.group(), text)
