"""The compiled-template cache. Parsing, the limits transform (``flows.templating.sandbox``), code
generation and compile() cost most of loading the report definitions, and give the same code for the
same source. The code object and the metric references are kept in the on-disk cache
(``flows.core.cache``) under a key that covers the source, the file name shown in tracebacks, which
environment, the metric namespaces, the sandbox's source, Jinja's version and Python's bytecode version."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from flows.templating.environments import environment, plain_environment
from flows.templating.references import metric_references

COMPILATIONS = {"compiled": 0, "cached": 0}  # templates compiled vs. loaded from the cache (tests count them)
_ENVIRONMENT_KINDS = ("markdown", "plain")
# Modules whose source decides the compiled code (the sandbox, its limits, the helpers the environments
# resolve at compile time), so an edit to any of them invalidates the cache.
SANDBOX_MODULES = ("sandbox", "limits", "environments", "references", "compiled", "escape", "formatters",
                   "tables", "agenda")


@lru_cache(maxsize=1)
def _sandbox_fingerprint() -> str:
    import importlib.util
    import sys

    import jinja2

    from flows.core import cache

    return cache.cache_key(importlib.util.MAGIC_NUMBER, sys.version, jinja2.__version__,
                           cache.source_fingerprint(*(sys.modules[f"flows.templating.{name}"] for name in SANDBOX_MODULES), cache))


def compile_report_template(kind: str, source: str, filename: str | None, namespaces: Iterable[str], *,
                            expression: bool = False) -> tuple[Any, list[tuple[str, int]]]:
    """A report template (or, with ``expression``, a ``send_if``/``when`` expression) compiled in the
    ``kind`` environment ("markdown": ``environment()``, "plain": ``plain_environment()``), with the
    metrics it references. Raises TemplateSyntaxError like ``parse`` does."""
    import marshal

    from jinja2.environment import TemplateExpression

    from flows.core import cache

    if kind not in _ENVIRONMENT_KINDS:
        raise ValueError(f"unknown template environment {kind!r}")
    env = environment() if kind == "markdown" else plain_environment()
    namespaces = sorted(namespaces)
    # Jinja resolves filter and test names when it compiles (an unknown one is a compile error), so
    # the names the environment has are part of the key too.
    key = cache.cache_key(_sandbox_fingerprint(), kind, "expression" if expression else "template",
                          filename or "", ",".join(namespaces), ",".join(sorted(env.filters)),
                          ",".join(sorted(env.tests)), source)
    code = None
    payload = cache.read("templates", key)
    if payload is not None:
        try:
            references, code = marshal.loads(payload)
            references = [(str(metric), int(line), bool(compared)) for metric, line, compared in references]
        except (ValueError, TypeError, EOFError):
            code = None
    if code is None:
        parsed = env.parse(f"{{{{ {source} }}}}" if expression else source)
        references = metric_references(parsed, set(namespaces))
        if expression:
            code = env.compile(_expression_tree(env, source))
        else:
            # The tree parsed above, not the source a second time; the file's name in the code object is
            # how a run-time error is traced back to its line (see flows.plan.definitions.error_line).
            code = env.compile(parsed, filename=filename)
        COMPILATIONS["compiled"] += 1
        cache.write("templates", key, marshal.dumps((references, code)))
    else:
        COMPILATIONS["cached"] += 1
    template = env.template_class.from_code(env, code, env.make_globals(None), None)
    return (TemplateExpression(template, False) if expression else template), references


def _expression_tree(env: SandboxedEnvironment, source: str) -> nodes.Template:
    """What ``Environment.compile_expression`` compiles: ``result = <expression>``."""
    from jinja2.exceptions import TemplateSyntaxError
    from jinja2.parser import Parser

    parser = Parser(env, source, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
    expr.set_environment(env)
    return nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)
