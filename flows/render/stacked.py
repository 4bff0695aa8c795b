"""Tables that hold on a phone in every mail client: a table of more than ``MAX_TABLE_COLUMNS`` columns (or
one whose long words could not fit side by side) is drawn as stacked rows, each row a block with its first cell as the title and the other cells as
"label value" pairs that wrap like text. It needs no media query (Gmail's apps and Outlook for Windows
ignore them) and no ``overflow`` (Outlook for Windows, Windows Mail and Outlook for Android ignore it), so
no column is ever hidden or pushed past the screen. Narrow tables stay tables.

Only the HTML part changes: the Markdown, the plain-text part and the report artifacts keep the table."""

from __future__ import annotations

from markdown_it.token import Token

# A table of up to this many columns fits 375 px as a table; wider ones are stacked.
MAX_TABLE_COLUMNS = 3
# A narrower table is stacked too when the longest words of its columns, which a client without
# overflow-wrap cannot break ("api.dangerouscentaur.example", a distribution id), add up to more
# characters than a 341 px column holds at the table's 13 px.
MAX_UNBREAKABLE_CHARS = 40
STACKED_TABLE = "exec_stacked_table"


def _rows(tokens: list[Token], start: int) -> tuple[list[Token], list[list[Token]], int]:
    """The header's inline tokens, each body row's inline tokens, and the index of the table_close."""
    header: list[Token] = []
    rows: list[list[Token]] = []
    current: list[Token] | None = None
    in_head = False
    index = start + 1
    while tokens[index].type != "table_close":
        token = tokens[index]
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open" and not in_head:
            current = []
        elif token.type == "tr_close" and not in_head and current is not None:
            rows.append(current)
            current = None
        elif token.type == "inline":
            (header if in_head else current if current is not None else header).append(token)
        index += 1
    return header, rows, index


def _unbreakable_width(header: list[Token], rows: list[list[Token]]) -> int:
    """The sum over the columns of each column's longest word, in characters."""
    widest = [0] * len(header)
    for row in [header, *rows]:
        for column, cell in enumerate(row[:len(widest)]):
            words = cell.content.replace("\\", "").split()
            widest[column] = max(widest[column], max((len(word) for word in words), default=0))
    return sum(widest)


def stack_wide_tables(tokens: list[Token]) -> list[Token]:
    """A new token list for the HTML part: each table wider than MAX_TABLE_COLUMNS replaced by one
    STACKED_TABLE token (meta: header, rows of inline tokens). The given list is not changed."""
    result: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "table_open":
            header, rows, close = _rows(tokens, index)
            if len(header) > MAX_TABLE_COLUMNS or _unbreakable_width(header, rows) > MAX_UNBREAKABLE_CHARS:
                stacked = Token(STACKED_TABLE, "", 0, block=True, map=token.map)
                stacked.meta = {"header": header, "rows": rows}
                result.append(stacked)
                index = close + 1
                continue
        result.append(token)
        index += 1
    return result


def render_stacked_table(self, tokens, index, options, env) -> str:
    """Each row: its first cell in bold, then "label value" for each other cell that has a value."""
    meta = tokens[index].meta
    labels = [self.renderInline(cell.children or [], options, env) for cell in meta["header"]]
    blocks = []
    for row in meta["rows"]:
        cells = [self.renderInline(cell.children or [], options, env) for cell in row]
        title = cells[0] if cells else ""
        # "Label: value", the label in the text's own colour: a styled span per figure was a fifth of
        # a brief's inline styles.
        pairs = [f"{label}: {value}" for label, value in zip(labels[1:], cells[1:], strict=False) if value.strip()]
        blocks.append(f'<p class="stack-row"><strong>{title}</strong>'
                      + ("<br>" + " · ".join(pairs) if pairs else "") + "</p>")
    return '<div class="stacked">' + "".join(blocks) + "</div>\n"
