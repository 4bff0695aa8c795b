"""The commands the documentation shows run as written after `make install` (issue 28: the README used
bare `prefect ...` and `exec-reports ...`, which are not on PATH without the venv)."""

from __future__ import annotations

import re
import shlex

from tests.conftest import PROJECT_ROOT

# Installed into .venv/bin by `make install`, so not on PATH unless the venv is activated.
VENV_COMMANDS = {"exec-reports", "prefect", "mkdocs", "pytest", "ruff", "pip", "cfn-lint"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def documentation_files():
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]


def shell_lines(text: str):
    for language, body in FENCE.findall(text):
        if language not in ("sh", "bash", "shell", "console"):
            continue
        for line in body.splitlines():
            command = line.split(" #", 1)[0].strip().removeprefix("$ ")
            if command and not command.startswith("#"):
                yield line, command


def first_program(command: str) -> str:
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    words = [word for word in words if not re.match(r"^[A-Z_][A-Z0-9_]*=", word)]  # VAR=value prefixes
    return words[0] if words else ""


def test_every_shell_command_in_the_docs_runs_from_the_venv_after_make_install():
    bare = [f"{path.relative_to(PROJECT_ROOT)}: {line.strip()}" for path in documentation_files()
            for line, command in shell_lines(path.read_text(encoding="utf-8"))
            if first_program(command) in VENV_COMMANDS]
    assert bare == [], "write these as .venv/bin/<command>:\n" + "\n".join(bare)


def test_the_detector_catches_a_bare_command():
    text = "```sh\nexec-reports run   # comment\nPREFECT_HOME=x prefect server start\n.venv/bin/prefect deploy\n```\n"
    assert [first_program(command) for _, command in shell_lines(text)] == ["exec-reports", "prefect",
                                                                            ".venv/bin/prefect"]


def test_the_activate_step_is_shown_once():
    shown = [path.name for path in documentation_files()
             for _ in range(path.read_text(encoding="utf-8").count("source .venv/bin/activate"))]
    assert shown == ["getting-started.md"]
