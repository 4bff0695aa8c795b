"""Bounded YAML: size, aliases, nesting and alias expansion are refused with one located error, before
anything is expanded (case 1 of the second hardening pass: a 1 KB alias bomb ran for 100 s and died)."""

from __future__ import annotations

import time

import pytest

from flows.core.config import load_config
from flows.core.errors import ConfigurationError
from flows.core.yamlsource import MAX_ALIASES, MAX_DEPTH, YamlProblem, load_located


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic 'billion laughs': each level lists the one above ``width`` times."""
    lines = ["lol0: &lol0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"lol{level}: &lol{level} [" + ", ".join([f"*lol{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once_with_the_line_that_expands_it():
    bomb = alias_bomb()
    assert len(bomb) < 1200
    started = time.monotonic()
    with pytest.raises(YamlProblem) as caught:
        load_located(bomb, line_offset=1)
    assert time.monotonic() - started < 1
    assert "aliases expand to" in caught.value.message and "alias bomb" in caught.value.message
    # lol4 is the first level whose alias alone would expand past the share of one alias; line 5 of
    # the text, 6 with the front matter's offset.
    assert caught.value.line == 6


def test_a_few_aliases_that_expand_modestly_still_work():
    located = load_located("base: &base [a@x.example, b@x.example]\none: *base\ntwo: *base\n")
    assert located.data == {"base": ["a@x.example", "b@x.example"], "one": ["a@x.example", "b@x.example"],
                            "two": ["a@x.example", "b@x.example"]}


def test_too_many_aliases_are_refused_with_their_line():
    text = "base: &b 1\nmany:\n" + "".join("  - *b\n" for _ in range(MAX_ALIASES + 1))
    with pytest.raises(YamlProblem) as caught:
        load_located(text)
    assert caught.value.line == 3 and f"more than {MAX_ALIASES} YAML aliases" in caught.value.message


def test_a_recursive_alias_is_refused_not_recursed_into():
    with pytest.raises(YamlProblem) as caught:
        load_located("ok: 1\nloop: &loop [1, *loop]\n")
    assert caught.value.line == 2 and "recursive alias" in caught.value.message


def test_nesting_deeper_than_the_bound_is_refused_with_its_line():
    deep = "top:\n" + "".join("  " * (level + 1) + f"k{level}:\n" for level in range(MAX_DEPTH + 5)) + "  " * (
        MAX_DEPTH + 6) + "leaf\n"
    with pytest.raises(YamlProblem) as caught:
        load_located(deep)
    assert f"nested deeper than {MAX_DEPTH} levels" in caught.value.message
    assert caught.value.line == MAX_DEPTH  # where the first value past the bound (a key) is written
    flow = "x: " + "[" * 500 + "]" * 500
    with pytest.raises(YamlProblem, match="nested deeper"):
        load_located(flow)


def test_a_document_over_the_size_bound_is_refused_before_parsing():
    with pytest.raises(YamlProblem) as caught:
        load_located("a: " + "x" * 2_000, line_offset=1, max_bytes=1_000)
    assert caught.value.line == 2 and "2,003 bytes; at most 1,000 are read" in caught.value.message


def test_an_alias_bomb_in_the_config_is_one_located_configuration_error(portfolio_copy):
    text = portfolio_copy.read_text()
    portfolio_copy.write_text(alias_bomb().replace("lol", "x_lol") + text)
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        load_config(portfolio_copy)
    assert time.monotonic() - started < 2
    assert "portfolio.yaml:5: YAML aliases expand to" in str(caught.value)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("a: 1\nb: \x1f\n", 3, "the character U+001F is not allowed in YAML"),
    ("a: 1\nb: !0 x\n", 3, "could not determine a constructor for the tag '!0'"),
    ("a: 1\nb: !!int abc\n", 3, "'tag:yaml.org,2002:int' cannot hold 'abc'"),
    ("a: !!python/object:os.system x\n", 2, "could not determine a constructor"),
])
def test_characters_and_tags_yaml_refuses_are_located_problems_not_exceptions(text, line, message):
    # Found by the front matter fuzz test (tests/flows/plan/test_fuzz_front_matter.py).
    with pytest.raises(YamlProblem) as caught:
        load_located(text, line_offset=1)
    assert caught.value.line == line and message in caught.value.message


def test_check_over_an_alias_bomb_in_one_report_exits_at_once_naming_file_and_line(portfolio_copy, capsys):
    from flows.operate.cli import main

    ceo = portfolio_copy.parent.parent / "reports" / "ceo.md"
    ceo.write_text("---\n" + alias_bomb() + ceo.read_text(encoding="utf-8")[4:], encoding="utf-8")
    started = time.monotonic()
    assert main(["check", "--config", str(portfolio_copy)]) == 1  # it ran 104 s and died with MemoryError
    assert time.monotonic() - started < 60
    err = capsys.readouterr().err
    assert "reports/ceo.md:6: YAML aliases expand to 490,329," in err and "(an alias bomb?)" in err
