"""YAML parsing that remembers where every value came from.

Report front matter and the portfolio config are both edited by hand, so every error must point at
a line. ``load_located`` returns plain Python data plus a map from key paths such as
``("metrics", 2)`` to 1-based line numbers; duplicate keys are errors, never last-one-wins.

Every document is bounded before it becomes Python data, because ``safe_load`` alone is not safe
against alias expansion (a kilobyte of nested anchors is billions of values): a size in bytes, a
number of aliases, a nesting depth and a number of values after expanding the aliases. Over any of
them the document is refused with one located error; nothing is expanded first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]

# libyaml's parser where PyYAML was built with it (several times faster on a large portfolio config);
# the nodes and their marks are the same, so line numbers do not change.
_FastSafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# The bounds. A report's front matter is a few dozen lines; a portfolio config is about 2 KB per tenant.
MAX_DOCUMENT_BYTES = 10_000_000
MAX_FRONT_MATTER_BYTES = 256_000
MAX_ALIASES = 100
MAX_DEPTH = 64
# Values that alias expansion may add to what the document spells out.
MAX_EXPANDED_VALUES = 100_000


class YamlProblem(Exception):
    def __init__(self, line: int | None, key: str | None, message: str):
        self.line, self.key, self.message = line, key, message
        super().__init__(message)


@dataclass
class Located:
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    line_offset: int = 0

    def line_of(self, path: KeyPath) -> int | None:
        """Line of the deepest existing prefix of ``path`` (pydantic may report a missing child)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path] + self.line_offset
            path = path[:-1]
        return self.lines.get((), 0) + self.line_offset if () in self.lines else None


def read_utf8(path) -> str:
    """A hand-edited file as text; one that is not UTF-8 (saved as Latin-1 or Windows-1252) is refused with
    the line and column of its first such byte, not Python's byte offset. Raises YamlProblem (line, message)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise YamlProblem(line, None, f"the file is not UTF-8: byte 0x{data[start]:02x} at line {line}, column "
                                      f"{column} (saved as Latin-1 or Windows-1252?); save it as UTF-8") from None


def format_key_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def load_located(text: str, line_offset: int = 0, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Located:
    """Parse one YAML document. ``line_offset`` is added to every reported line (front matter)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise YamlProblem(1 + line_offset, None, f"the YAML is {size:,} bytes; at most {max_bytes:,} are read")
    loader = _FastSafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark else None
        raise YamlProblem(line, None, f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: located by its position
        character = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        line = text.count("\n", 0, exc.position) + 1 + line_offset
        raise YamlProblem(line, None, f"the character U+{ord(character[:1] or ' '):04X} is not allowed in YAML "
                                      f"({exc.reason}); remove it") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(None, None, f"YAML error: {exc}") from None
    except RecursionError:  # the pure-Python composer on very deep nesting (libyaml stops at 1000 levels)
        raise YamlProblem(1 + line_offset, None, f"YAML nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    located = Located(data=None, line_offset=line_offset)
    if node is None:
        return located
    check_bounds(node, line_offset)
    constructor = yaml.SafeLoader("")
    located.data = _convert(node, (), located.lines, constructor, line_offset)
    return located


def check_bounds(root: yaml.Node, offset: int = 0) -> None:
    """Refuse a composed document over the bounds, before anything is expanded.

    PyYAML composes an alias as a second reference to its anchor's node, so the document is a graph:
    walked once (iteratively, never recursing), an edge to a node already seen is an alias, an edge back
    to a node still open is a recursive alias, and each node's size after expansion is summed from its
    children's."""
    seen: set[int] = set()
    open_nodes: set[int] = set()
    expanded: dict[int, int] = {}
    aliases = spelled = 0
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, leaving = stack.pop()
        line = node.start_mark.line + 1 + offset
        if leaving:
            open_nodes.discard(id(node))
            expanded[id(node)] = 1 + sum(expanded[id(child)] for child in _children(node))
            continue
        if depth > MAX_DEPTH:
            raise YamlProblem(line, None, f"YAML nested deeper than {MAX_DEPTH} levels")
        seen.add(id(node))
        open_nodes.add(id(node))
        spelled += 1
        stack.append((node, depth, True))
        for child in reversed(_children(node)):
            if id(child) in open_nodes:
                raise YamlProblem(line, None, "a YAML alias refers to the value that contains it (a recursive "
                                              "alias); write the value out")
            if id(child) in seen:
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise YamlProblem(line, None, f"more than {MAX_ALIASES} YAML aliases ('*name'); write the "
                                                  "values out")
                continue
            stack.append((child, depth + 1, False))
    if expanded[id(root)] > spelled + MAX_EXPANDED_VALUES:
        raise YamlProblem(_first_oversized_alias_line(root, expanded, offset), None,
                          f"YAML aliases expand to {expanded[id(root)]:,} values, more than "
                          f"{MAX_EXPANDED_VALUES:,} beyond the {spelled:,} written out (an alias bomb?); "
                          "write the values out")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _first_oversized_alias_line(root: yaml.Node, expanded: dict[int, int], offset: int) -> int:
    """The line of the collection holding the first alias whose expansion alone goes over the bound."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        seen.add(id(node))
        for child in _children(node):
            if id(child) in seen and expanded[id(child)] > MAX_EXPANDED_VALUES // MAX_ALIASES:
                return node.start_mark.line + 1 + offset
        stack.extend(child for child in reversed(_children(node)) if id(child) not in seen)
    return root.start_mark.line + 1 + offset


def _convert(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], constructor: yaml.SafeLoader, offset: int):
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlProblem(key_node.start_mark.line + 1 + offset, format_key_path(path) or None,
                                  "YAML merge keys ('<<') are not supported; write the keys out")
            key = _construct(constructor, key_node, offset)
            if not isinstance(key, str | int | bool | float) or key is None:
                raise YamlProblem(key_node.start_mark.line + 1 + offset, format_key_path(path) or None,
                                  f"mapping keys must be plain scalars, got {key!r}")
            if key in result:
                first = lines.get(path + (key,), 0) + offset
                raise YamlProblem(key_node.start_mark.line + 1 + offset, format_key_path(path + (key,)),
                                  f"duplicate key (first defined on line {first})")
            result[key] = _convert(value_node, path + (key,), lines, constructor, offset)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, constructor, offset) for i, item in enumerate(node.value)]
    return _construct(constructor, node, offset)


def _construct(constructor: yaml.SafeLoader, node: yaml.Node, offset: int) -> Any:
    """One scalar (or a key) as Python data; a tag YAML's safe loader does not know (``!python/x``, ``!0``)
    or a value its tag cannot hold (``!!int abc``) is a located problem, not an exception."""
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        raise YamlProblem(node.start_mark.line + 1 + offset, None, f"YAML error: {exc.problem or exc}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise YamlProblem(node.start_mark.line + 1 + offset, None,
                          f"YAML error: {node.tag!r} cannot hold {str(node.value)[:40]!r} ({type(exc).__name__})") from None
