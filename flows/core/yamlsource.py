"""YAML parsing that remembers where every value came from.

Report front matter and the portfolio config are both edited by hand, so every error must point at
a line. ``load_located`` returns plain Python data plus a map from key paths such as
``("metrics", 2)`` to 1-based line numbers; duplicate keys are errors, never last-one-wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]

# libyaml's parser where PyYAML was built with it (several times faster on a large portfolio config);
# the nodes and their marks are the same, so line numbers do not change.
_FastSafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def format_key_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def load_located(text: str, line_offset: int = 0) -> Located:
    """Parse one YAML document. ``line_offset`` is added to every reported line (front matter)."""
    loader = _FastSafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark else None
        raise YamlProblem(line, None, f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(None, None, f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    located = Located(data=None, line_offset=line_offset)
    if node is None:
        return located
    constructor = yaml.SafeLoader("")
    located.data = _convert(node, (), located.lines, constructor, line_offset)
    return located


def _convert(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], constructor: yaml.SafeLoader, offset: int):
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlProblem(key_node.start_mark.line + 1 + offset, format_key_path(path) or None,
                                  "YAML merge keys ('<<') are not supported; write the keys out")
            key = constructor.construct_object(key_node, deep=True)
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
    return constructor.construct_object(node, deep=True)
