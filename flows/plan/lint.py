"""What ``check`` tells a report's authors without failing the report: things in a body that will not
come out in the email as they look in the file."""

from __future__ import annotations

import re

# A Jinja tag, expression or comment: replaced by its line breaks, so the lines stay the file's lines.
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
# An HTML tag or comment as Markdown would pass it through if raw HTML were on (it is off): <b>, </p>,
# <br/>, <div class="x">, <!-- ... -->. Autolinks (<https://...>, <gm@example.com>) are not tags.
_HTML = re.compile(r"<!--|</?[A-Za-z][A-Za-z0-9-]*(?:\s+[^<>]*)?/?>")
_CODE = re.compile(r"`[^`\n]*`")


def raw_html_warnings(body: str, first_line: int, shown: str) -> list[str]:
    """One warning per line of the body that holds raw HTML: raw HTML in Markdown is off, so the email
    shows the tag as text (``<b>`` in the message itself) instead of formatting."""
    text = _JINJA.sub(lambda match: "\n" * match.group(0).count("\n"), body)
    warnings = []
    fenced = False
    for number, line in enumerate(text.splitlines(), start=first_line):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = None if fenced else _HTML.search(_CODE.sub("", line))
        if match:
            warnings.append(f"{shown}:{number}: raw HTML {match.group(0)[:40]!r} is shown as text in the email "
                            "(raw HTML in Markdown is off): write it in Markdown (**bold**, a blank line for a "
                            "paragraph) or with a component")
    return warnings
